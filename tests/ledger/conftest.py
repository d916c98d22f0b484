"""Ledger tests run against SQLite and a real PostgreSQL (every test that takes `ledger_url`
or `ledger` runs once per backend).

PostgreSQL: $MILEPOST_TEST_PG_URL, else the URL scripts/postgres prints (its random password
read from the 0600 file it keeps, see milepost.ledger.config.local_postgres_url). Each test
gets a fresh database (CREATE DATABASE milepost_t_<random>, dropped afterwards). If
PostgreSQL is unreachable the tests FAIL: run `scripts/postgres` (as root) first.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from milepost.errors import UserError
from milepost.ledger import Ledger
from milepost.ledger.config import local_postgres_url


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway checkout, so state (spool, signing key, default ledger) stays in tmp."""
    root = tmp_path / "checkout"
    (root / "playbooks").mkdir(parents=True)
    (root / "ansible.cfg").write_text("[defaults]\n")
    monkeypatch.setenv("MILEPOST_ROOT", str(root))
    monkeypatch.delenv("MILEPOST_LEDGER_URL", raising=False)
    return root


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    url = os.environ.get("MILEPOST_TEST_PG_URL", "")
    if not url:
        try:
            url = local_postgres_url()
        except UserError as missing:
            pytest.fail(f"PostgreSQL: {missing}", pytrace=False)
    engine = sa.create_engine(
        url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    problem = None
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as bad:
        problem = " ".join(str(bad.orig or bad).split())[:200]
    if problem is not None:
        engine.dispose()
        masked = make_url(url).render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL is unreachable at {masked} ({problem}):"
            " run `scripts/postgres` as root (or set MILEPOST_TEST_PG_URL)",
            pytrace=False,
        )
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh, empty ledger URL (also exported as MILEPOST_LEDGER_URL for CLI tests)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        monkeypatch.setenv("MILEPOST_LEDGER_URL", url)
        yield url
        return
    admin: sa.Engine = request.getfixturevalue("pg_admin")
    name = f"milepost_t_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("MILEPOST_LEDGER_URL", url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()


@pytest.fixture
def raw(ledger_url: str) -> Iterator[sa.Engine]:
    """A plain engine on the ledger's database, for tampering behind the Ledger's back."""
    engine = sa.create_engine(ledger_url)
    yield engine
    engine.dispose()
