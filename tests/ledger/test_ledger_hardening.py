"""Safety invariant 7 for the ledger: its files are private (0600 whatever the umask), a
checkpoint is trusted only when signed by the configured key, a CSV export cannot carry a
spreadsheet formula, and the local PostgreSQL has no well-known password."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from ledger_helpers import plain_records

from milepost.cli.main import main
from milepost.errors import UserError
from milepost.ledger import Ledger
from milepost.ledger.archive import archive as archive_records
from milepost.ledger.archive import verify_archive
from milepost.ledger.checkpoint import (
    ENV_PUBLIC_KEY,
    load_checkpoint,
    load_or_create_key,
    raw_public_key,
    write_checkpoint,
)
from milepost.ledger.config import local_postgres_url, pg_password_file
from milepost.ledger.files import write_atomic
from milepost.ledger.spool import spool


def run_cli(capsys, *args):
    code = main(["ledger", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


# ------------------------------------------------------------------ file modes


def test_sqlite_ledger_and_its_wal_and_shm_are_0600(tmp_path, umask, monkeypatch):
    path = tmp_path / "state" / "ledger.sqlite"
    url = f"sqlite:///{path}"
    monkeypatch.setenv("MILEPOST_LEDGER_URL", url)
    with Ledger.open(url) as ledger:
        ledger.append(plain_records(3))
        with ledger.read_transaction() as conn:  # WAL mode: -wal and -shm exist now
            conn.exec_driver_sql("SELECT count(*) FROM ledger_records").all()
            files = {p.name: mode(p) for p in path.parent.iterdir()}
    assert {"ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"} <= set(files), files
    assert files["ledger.sqlite"] == 0o600
    assert files["ledger.sqlite-wal"] == 0o600
    assert files["ledger.sqlite-shm"] == 0o600


def test_spool_export_archive_checkpoint_and_keys_are_0600(
    ledger, tmp_path, project, umask, capsys
):
    ledger.append([{**r, "recorded_at": "2025-01-01T00:00:00Z"} for r in plain_records(3)])
    ledger.append(plain_records(2))
    spooled = spool(plain_records(1), reason="test", directory=tmp_path / "spool")
    assert mode(spooled) == 0o600

    for fmt in ("jsonl", "csv"):
        target = tmp_path / "out" / f"ledger.{fmt}"
        code, _, err = run_cli(capsys, "export", "--format", fmt, "--out", str(target))
        assert code == 0, err
        assert mode(target) == 0o600, fmt

    cp = tmp_path / "cp.json"
    code, _, err = run_cli(capsys, "checkpoint", "--out", str(cp))
    assert code == 0, err
    assert mode(cp) == 0o600
    state = project / ".milepost"
    assert mode(state / "ledger-signing.key") == 0o600
    assert mode(state / "ledger-signing.pub") == 0o600

    archive = tmp_path / "a.jsonl"
    code, _, err = run_cli(capsys, "archive", "--before", "2025-02-01", "--out", str(archive))
    assert code == 0, err
    assert mode(archive) == 0o600

    other = tmp_path / "plain.txt"
    write_atomic(other, "x\n")
    assert mode(other) == 0o600
    assert not [p for p in tmp_path.rglob("*.tmp")], "a temporary file was left behind"


# ------------------------------------------------------------------ checkpoint trust


def test_verify_checkpoint_without_a_configured_key_refuses(ledger, tmp_path, project, capsys):
    ledger.append(plain_records(3))
    cp = tmp_path / "cp.json"
    write_checkpoint(ledger, cp)
    (project / ".milepost" / "ledger-signing.pub").unlink()
    code, out, err = run_cli(capsys, "verify", "--checkpoint", str(cp))
    assert code == 2, out + err
    line = one_line(err)
    assert "no trusted checkpoint key" in line and "--public-key" in line
    with pytest.raises(UserError, match="no trusted checkpoint key"):
        ledger.verify(load_checkpoint(cp))
    with pytest.raises(UserError, match="no trusted checkpoint key"):
        verify_archive(tmp_path / "none.jsonl", checkpoint=cp)


def test_a_checkpoint_signed_by_another_key_fails_although_it_is_self_consistent(
    ledger, tmp_path, project, capsys, monkeypatch
):
    ledger.append(plain_records(4))
    write_checkpoint(ledger, tmp_path / "ours.json")  # makes the configured key and its .pub
    # An attacker able to rewrite the database signs its head with a key of their own: the
    # file is valid on its own terms (its signature matches the key it carries).
    forged = tmp_path / "forged.json"
    document = write_checkpoint(ledger, forged, key_path=tmp_path / "attacker.key")
    trusted = (project / ".milepost" / "ledger-signing.pub").read_text().strip()
    assert document["public_key"] != trusted

    code, out, err = run_cli(capsys, "verify", "--checkpoint", str(forged))
    assert code == 2, out + err
    assert "signed by key" in one_line(err) and trusted in err
    with pytest.raises(UserError, match="signed by key"):
        ledger.verify(load_checkpoint(forged))
    # Naming the attacker's key explicitly is the only way to accept it.
    assert ledger.verify(load_checkpoint(forged, document["public_key"])).ok
    code, _, err = run_cli(capsys, "verify", "--checkpoint", str(tmp_path / "ours.json"))
    assert code == 0, err

    # $MILEPOST_CHECKPOINT_PUBLIC_KEY overrides the .pub file; --public-key overrides both,
    # as a key or as a file holding one.
    monkeypatch.setenv(ENV_PUBLIC_KEY, document["public_key"])
    code, _, err = run_cli(capsys, "verify", "--checkpoint", str(tmp_path / "ours.json"))
    assert code == 2 and "signed by key" in one_line(err)
    code, _, err = run_cli(
        capsys,
        "verify",
        "--checkpoint",
        str(tmp_path / "ours.json"),
        "--public-key",
        str(project / ".milepost" / "ledger-signing.pub"),
    )
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "verify", "--checkpoint", str(forged), "--public-key", "not-a-key"
    )
    assert code == 2 and "neither a base64 Ed25519 public key" in one_line(err)


def test_archive_checkpoint_is_checked_against_the_configured_key(ledger, tmp_path, project):
    ledger.append([{**r, "recorded_at": "2025-01-01T00:00:00Z"} for r in plain_records(3)])
    forged = tmp_path / "forged.json"
    document = write_checkpoint(ledger, forged, key_path=tmp_path / "attacker.key")
    ours = load_or_create_key(project / ".milepost" / "ledger-signing.key")
    archive = tmp_path / "a.jsonl"
    assert archive_records(ledger, datetime(2025, 2, 1, tzinfo=UTC), archive) == 3
    with pytest.raises(UserError, match="signed by key"):
        verify_archive(archive, checkpoint=forged)
    assert verify_archive(archive, checkpoint=forged, public_key=document["public_key"]).ok
    assert raw_public_key(ours.public_key()) != document["public_key"]


# ------------------------------------------------------------------ CSV


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_export_escapes_formula_cells(ledger, start):
    hostile = f'{start}HYPERLINK("http://evil.example/","x")'
    ledger.append([{"kind": "note", "run_id": hostile, "host": hostile, "body": {"t": hostile}}])
    out = io.StringIO()
    assert ledger.export("csv", out) == 1
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["host"] == "'" + hostile and row["run_id"] == "'" + hostile
    assert row["seq"] == "1" and json.loads(row["body"]) == {"t": hostile}
    for value in row.values():
        assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row
    out = io.StringIO()
    ledger.export("jsonl", out)  # the jsonl export (for checking hashes) is unchanged
    assert json.loads(out.getvalue())["host"] == hostile


# ------------------------------------------------------------------ PostgreSQL


def test_local_postgres_has_a_private_random_password_not_the_old_one(pg_admin):
    if os.environ.get("MILEPOST_TEST_PG_URL"):
        pytest.skip("MILEPOST_TEST_PG_URL names another PostgreSQL")
    path = pg_password_file()
    assert mode(path) == 0o600
    password = path.read_text().strip()
    assert len(password) >= 32 and password != "milepost"
    assert f":{password}@127.0.0.1:" in local_postgres_url()
    well_known = "postgresql+psycopg://milepost:milepost@127.0.0.1:5432/milepost_test"
    engine = sa.create_engine(well_known, connect_args={"connect_timeout": 5})
    try:
        with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
            with engine.connect():
                pass
    finally:
        engine.dispose()


def test_local_postgres_url_without_the_password_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MILEPOST_PG_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(UserError, match="run `scripts/postgres`") as caught:
        local_postgres_url()
    assert "\n" not in str(caught.value)
    (tmp_path / "pw").write_text("ab12cd\n")
    monkeypatch.setenv("MILEPOST_PG_PASSWORD_FILE", str(tmp_path / "pw"))
    assert local_postgres_url() == (
        "postgresql+psycopg://milepost:ab12cd@127.0.0.1:5432/milepost_test"
    )
