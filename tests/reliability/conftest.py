"""Fixtures and the closing table of the reliability suite (see proving.py)."""

from __future__ import annotations

import json
import os
import random
import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from proving import FULL, LINES, SEED, TALLY_FILE, counts


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A random generator seeded from the suite's seed and the test's name: the same test
    makes the same choices on every run with the same seed."""
    return random.Random(f"{SEED}:{request.node.nodeid}")


@pytest.fixture
def pg_ledger() -> Iterator[str]:
    """The URL of a fresh PostgreSQL ledger database (scripts/postgres, its random password
    read from the file it keeps), dropped after."""
    from milepost.errors import UserError
    from milepost.ledger.config import local_postgres_url

    try:
        pg_url = os.environ.get("MILEPOST_TEST_PG_URL") or local_postgres_url()
    except UserError as missing:
        pytest.fail(f"PostgreSQL: {missing}", pytrace=False)
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"milepost_rel_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def pytest_report_header(config: pytest.Config) -> str:
    mode = "full" if FULL else "fast subset (MILEPOST_RELIABILITY=full for all trials)"
    return f"reliability: {mode}, seed {SEED}"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    mode = "full" if FULL else "fast subset"
    width = max(map(len, LINES))
    write = terminalreporter.write_line
    write("")
    chosen = config.getoption("markexpr") or ""
    part = f", tests marked {chosen!r}" if chosen else ""
    write(f"Reliability ({mode}{part}, seed {SEED}, exit status {int(exitstatus)})")
    for line in LINES:
        write(f"  {line.ljust(width)}  {counts[line]:>7}")
    TALLY_FILE.parent.mkdir(parents=True, exist_ok=True)
    table = {
        "mode": mode,
        "markers": chosen,
        "seed": SEED,
        "exit_status": int(exitstatus),
        **counts,
    }
    TALLY_FILE.write_text(json.dumps(table, indent=2) + "\n")
