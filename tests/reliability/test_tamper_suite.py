"""The tamper suite: six ways of altering a realistic ledger behind its back, each applied
to random records, every one of them detected.

The ledger (SQLite) holds a few hundred records of several kinds from several maintenance
runs: advisories, run starts and ends, task results, package facts and changes, a patch
exception; a signed checkpoint is taken part-way and more runs are recorded after it. Each
trial copies that file, checks the copy verifies, tampers with it through raw SQL, and
checks that verify fails and names the first bad record:

- edit (a body value, the body cut short, host, kind, recorded_at or hash of one record),
  delete (one to three records, not at the end), reorder (swap two records or move one),
  insert (a forged, correctly chained record before an existing one): a plain verify
  catches them, and so does verify with the checkpoint;
- truncate (cut the tail off at or before the checkpointed record) and rehash (rewrite a
  record at or before it and recompute every hash after): verify with the checkpoint
  catches them; a plain verify cannot — the documented limit, shown once, along with a
  rehash newer than the checkpoint that even the checkpoint cannot see.

trials(fast=10, full=100) per tamper: 60 cases fast, 600 full, 100% detected. Once per
tamper kind `milepost ledger verify` (and `--checkpoint FILE`) runs in its own process on a
tampered copy: exit 1, one line naming the record, no traceback.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ledger_rows import COLUMNS, Row, execute, rehashed, stored_rows
from proving import tally, trials

from milepost.ledger import (
    GENESIS_HASH,
    Ledger,
    package_change,
    package_facts,
    run_ended,
    run_started,
    task_result,
)
from milepost.ledger.chain import canonical_body, format_time
from milepost.ledger.checkpoint import load_checkpoint, write_checkpoint

HOSTS = ["acct-api-1", "acct-api-2", "ingest-1", "ingest-2", "paygw-1", "sftp-1", "report-1"]
PACKAGES = {
    "ruc-account-api": "2.4.1",
    "ruc-mileage-ingest": "1.9.0",
    "ruc-payment-gateway": "3.1.2",
    "ruc-sftp-bridge": "1.2.7",
    "ruc-reporting": "4.0.3",
    "openssl": "3.0.15-1~deb12u1",
    "openssh-server": "1:9.2p1-2+deb12u3",
}
TASKS = [
    "AUDIT | Gather package facts",
    "AUDIT | Check free disk space",
    "PATCH | Update the APT cache",
    "PATCH | Upgrade security packages",
    "PATCH | Upgrade the RUC packages",
    "PATCH | Restart services whose libraries changed",
    "AUDIT | Check the vendor interface",
    "AUDIT | Run the QC checks",
]
STATUSES = ["ok", "changed", "failed", "unreachable", "skipped"]


# --------------------------------------------------------------------- the ledger


def finished_pid() -> int:
    """The pid of a process that has ended: the writer of a run recorded in the past."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def record_run(ledger: Ledger, build: random.Random, pid: int, kind: str) -> None:
    """One maintenance run as the callback records it: start, per-host facts, task
    results and package changes in batches, end."""
    start = run_started(playbook="playbooks/maintain.yml", kind=kind, operator="ops", pid=pid)
    run_id = start["run_id"]
    ledger.append([start])
    hosts = build.sample(HOSTS, build.randint(4, 6))
    for host in hosts:
        facts = {name: version for name, version in PACKAGES.items() if build.random() < 0.8}
        batch = [package_facts(run_id, host, facts)]
        for task in TASKS:
            status = build.choices(STATUSES, weights=[60, 25, 5, 2, 8])[0]
            summary = f"{task.split('| ')[1].lower()} on {host}"
            batch.append(
                task_result(run_id, host, task, status, round(build.random() * 9, 3), summary)
            )
            if task == "PATCH | Upgrade the RUC packages" and status == "changed":
                name = build.choice(sorted(PACKAGES))
                batch.append(
                    package_change(run_id, host, name, PACKAGES[name], PACKAGES[name] + "+1")
                )
        ledger.append(batch)
    ledger.append([run_ended(run_id, build.choice(["successful", "successful", "failed"]))])


def advisory(n: int) -> dict[str, Any]:
    return {
        "kind": "advisory",
        "run_id": None,
        "host": None,
        "body": {
            "advisory_id": f"CVE-2025-{1000 + n}",
            "source": "kev" if n % 2 else "vendor",
            "title": f"Remote code execution in package {n} \u2014 patch now",
            "severity": "critical",
            "kev": n % 2 == 1,
            "due_date": f"2025-0{n % 9 + 1}-15",
            "packages": {"openssl": "3.0.15-1~deb12u1"},
        },
    }


@dataclass(frozen=True)
class Ground:
    """The built ledger: its file, its rows, and a checkpoint signed part-way."""

    db: Path
    rows: list[Row]
    checkpoint: Path
    checkpoint_seq: int
    public_key: str

    @property
    def head(self) -> int:
        return len(self.rows)


@pytest.fixture(scope="module")
def ground(tmp_path_factory: pytest.TempPathFactory) -> Ground:
    """Built once; every trial works on a copy of the file."""
    folder = tmp_path_factory.mktemp("tamper-ground")
    db = folder / "ledger.sqlite"
    ledger = Ledger.open(f"sqlite:///{db}")
    build = random.Random("tamper-suite-ledger")
    pid = finished_pid()
    ledger.append([advisory(n) for n in range(4)])
    for kind in ["scheduled", "scheduled", "manual", "emergency", "drift", "scheduled", "qc"]:
        record_run(ledger, build, pid, kind)
    ledger.append(
        [
            {
                "kind": "patch_exception",
                "run_id": None,
                "host": "report-1",
                "body": {
                    "exception_id": "EX-7",
                    "advisory_id": "CVE-2025-1001",
                    "hosts": ["report-1"],
                    "expires": "2025-12-31",
                    "reason": "vendor fix pending",
                },
            }
        ]
    )
    checkpoint = folder / "checkpoint.json"
    document = write_checkpoint(ledger, checkpoint, key_path=folder / "signing.key")
    for kind in ["qc", "scheduled"]:  # newer than the checkpoint: the chain alone guards them
        record_run(ledger, build, pid, kind)
    ledger.close()
    with closing(sqlite3.connect(db)) as conn:  # everything in the main file, to copy it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = stored_rows(db)
    assert 250 <= document["seq"] < len(rows) <= 600
    assert len({row[1] for row in rows}) >= 7 and len({row[2] for row in rows}) >= 8
    return Ground(db, rows, checkpoint, document["seq"], document["public_key"])


# ------------------------------------------------------------------------ tampers


@dataclass
class Case:
    """What a tamper did and which record verify must name."""

    what: str
    first_bad: int


Tamper = Callable[[Path, Ground, random.Random], Case]


def put(row: Row) -> tuple[str, tuple[Any, ...]]:
    """SQL that writes ``row``'s content (all but seq) at its seq."""
    sets = ", ".join(f"{c} = ?" for c in COLUMNS[1:])
    return f"UPDATE ledger_records SET {sets} WHERE seq = ?", (*row[1:], row[0])


def falsified(body_text: str, rng: random.Random) -> str:
    """The body an attacker would write: a value changed, still canonical JSON."""
    body = json.loads(body_text)
    if body.get("status") in STATUSES:
        body["status"] = rng.choice([s for s in STATUSES if s != body["status"]])
    elif body:
        key = rng.choice(sorted(body))
        body[key] = "tampered" if body[key] != "tampered" else "tampered again"
    else:
        body["tampered"] = True
    text = canonical_body(body)
    assert text != body_text
    return text


def edit(db: Path, ground: Ground, rng: random.Random) -> Case:
    seq = rng.randint(1, ground.head)
    row = dict(zip(COLUMNS, ground.rows[seq - 1], strict=True))
    field, value = rng.choice(
        [
            ("body", falsified(row["body"], rng)),
            ("body", row["body"][: len(row["body"]) // 2]),  # cut short: not JSON any more
            ("host", "attacker-1" if row["host"] else "acct-api-1"),
            ("kind", "note" if row["kind"] != "note" else "task_result"),
            (
                "recorded_at",
                format_time(
                    datetime.fromisoformat(row["recorded_at"].removesuffix("Z"))
                    + timedelta(seconds=rng.choice([-3600, -1, 1, 86400]))
                ),
            ),
            ("hash", f"{rng.getrandbits(256):064x}"),
        ]
    )
    assert value != row[field]
    execute(db, (f"UPDATE ledger_records SET {field} = ? WHERE seq = ?", (value, seq)))
    return Case(f"edit the {field} of record {seq} ({row['kind']})", seq)


def delete(db: Path, ground: Ground, rng: random.Random) -> Case:
    # Not the last record: cutting the end off is truncation (see truncate).
    first = rng.randint(1, ground.head - 1)
    last = min(first + rng.choice([0, 0, 0, 1, 2]), ground.head - 1)
    execute(db, ("DELETE FROM ledger_records WHERE seq BETWEEN ? AND ?", (first, last)))
    return Case(f"delete records {first}..{last}", first)


def reorder(db: Path, ground: Ground, rng: random.Random) -> Case:
    first, other = sorted(rng.sample(range(1, ground.head + 1), 2))
    how = rng.choice(["swap", "move forward", "move back"])
    span = list(ground.rows[first - 1 : other])
    if how == "swap":
        span[0], span[-1] = span[-1], span[0]
    elif how == "move forward":
        span = [*span[1:], span[0]]
    else:
        span = [span[-1], *span[:-1]]
    execute(
        db,
        *(put((seq, *row[1:])) for seq, row in zip(range(first, other + 1), span, strict=True)),
    )
    return Case(f"reorder ({how}) records {first}..{other}", first)


def insert(db: Path, ground: Ground, rng: random.Random) -> Case:
    # Before an existing record: one slipped in after the head is an append, which no
    # hash chain can tell from an honest one.
    at = rng.randint(1, ground.head)
    neighbour = dict(zip(COLUMNS, ground.rows[at - 1], strict=True))
    forged = task_result(
        neighbour["run_id"] or "20250101T000000Z-deadbeef",
        rng.choice(HOSTS),
        "PATCH | Upgrade security packages",
        "ok",
        1.0,
        "forged: all patched",
    )
    fields = (at, forged["kind"], forged["run_id"], forged["host"], neighbour["recorded_at"])
    row = rehashed(
        (*fields, canonical_body(forged["body"]), None, None),
        ground.rows[at - 2][7] if at > 1 else GENESIS_HASH,
    )
    execute(
        db,
        ("UPDATE ledger_records SET seq = -seq WHERE seq >= ?", (at,)),
        ("UPDATE ledger_records SET seq = 1 - seq WHERE seq < 0", ()),
        (f"INSERT INTO ledger_records ({', '.join(COLUMNS)}) VALUES (?,?,?,?,?,?,?,?)", row),
    )
    return Case(f"insert a forged record before record {at}", at + 1)


def truncate(db: Path, ground: Ground, rng: random.Random) -> Case:
    cut = rng.randint(1, ground.checkpoint_seq)  # at or before the checkpointed record
    execute(db, ("DELETE FROM ledger_records WHERE seq >= ?", (cut,)))
    return Case(f"truncate from record {cut}", cut)


def rewrite_and_rehash(db: Path, ground: Ground, rng: random.Random, start: int) -> list[Row]:
    """Falsify record ``start`` and recompute every hash after it; the new rows."""
    row = ground.rows[start - 1]
    prev = row[6]
    new_rows = []
    for old in ground.rows[start - 1 :]:
        new = (
            rehashed(old, prev, body=falsified(old[5], rng)) if old is row else rehashed(old, prev)
        )
        new_rows.append(new)
        prev = new[7]
    execute(db, *(put(new) for new in new_rows))
    return new_rows


def rehash(db: Path, ground: Ground, rng: random.Random) -> Case:
    start = rng.randint(1, ground.checkpoint_seq)  # at or before the checkpointed record
    rewrite_and_rehash(db, ground, rng, start)
    return Case(f"rewrite record {start} and rehash everything after it", ground.checkpoint_seq)


#: tamper -> does a plain verify catch it (else only verify with the checkpoint does)
TAMPERS: dict[str, tuple[Tamper, bool]] = {
    "edit": (edit, True),
    "delete": (delete, True),
    "reorder": (reorder, True),
    "insert": (insert, True),
    "truncate": (truncate, False),
    "rehash": (rehash, False),
}


# ------------------------------------------------------------------------- trials


def tampered_copy(ground: Ground, folder: Path, name: str) -> tuple[Path, Ledger]:
    """A copy of the ground ledger, checked to verify (with its checkpoint) as built."""
    folder.mkdir()
    db = folder / "ledger.sqlite"
    shutil.copy(ground.db, db)
    ledger = Ledger.open(f"sqlite:///{db}")
    before = ledger.verify(load_checkpoint(ground.checkpoint, ground.public_key))
    assert before.ok, f"{name}: the untampered copy does not verify: {before.reason}"
    assert (before.count, before.head_hash) == (ground.head, ground.rows[-1][7])
    return db, ledger


@pytest.mark.parametrize("name", list(TAMPERS))
def test_every_tamper_of_random_records_is_detected_and_the_first_bad_record_named(
    name, ground, rng, tmp_path
):
    tamper, chain_catches = TAMPERS[name]
    for trial in range(trials(fast=10, full=100)):
        folder = tmp_path / f"trial-{trial}"
        db, ledger = tampered_copy(ground, folder, name)
        try:
            case = tamper(db, ground, rng)
            assert stored_rows(db) != ground.rows
            where = f"trial {trial} ({case.what})"
            signed = ledger.verify(load_checkpoint(ground.checkpoint, ground.public_key))
            assert not signed.ok, f"{where}: not detected with the checkpoint"
            assert signed.first_bad_seq == case.first_bad, f"{where}: {signed.reason}"
            if chain_catches:
                plain = ledger.verify()
                assert not plain.ok, f"{where}: not detected by a plain verify"
                assert plain.first_bad_seq == case.first_bad, f"{where}: {plain.reason}"
                assert re.search(rf"\brecords? {case.first_bad}\b", plain.reason or ""), (
                    f"{where}: {plain.reason}"
                )
        finally:
            ledger.close()
            shutil.rmtree(folder)
        tally("tamper cases detected")


def test_plain_verify_cannot_see_truncation_or_a_full_rehash_a_checkpoint_can(
    ground, rng, tmp_path
):
    """The documented limit, shown: without a checkpoint a truncated or completely
    rehashed chain is valid, just not the true one; a checkpoint taken before catches
    both; a rehash newer than the checkpoint passes even with it (checkpoint often)."""
    checkpoint = load_checkpoint(ground.checkpoint, ground.public_key)

    db, ledger = tampered_copy(ground, tmp_path / "truncated", "truncate")
    case = truncate(db, ground, rng)
    plain = ledger.verify()
    assert plain.ok and plain.count == case.first_bad - 1, (case.what, plain.reason)
    signed = ledger.verify(checkpoint)
    assert (signed.ok, signed.first_bad_seq) == (False, case.first_bad)
    assert "removed from the end" in (signed.reason or "")
    ledger.close()

    db, ledger = tampered_copy(ground, tmp_path / "rehashed", "rehash")
    case = rehash(db, ground, rng)
    plain = ledger.verify()
    assert plain.ok and plain.count == ground.head, (case.what, plain.reason)
    assert plain.head_hash != ground.rows[-1][7], "a different chain, every hash valid"
    signed = ledger.verify(checkpoint)
    assert (signed.ok, signed.first_bad_seq) == (False, ground.checkpoint_seq)
    assert "rewritten" in (signed.reason or "")
    ledger.close()

    db, ledger = tampered_copy(ground, tmp_path / "rehashed-after", "rehash after")
    start = rng.randint(ground.checkpoint_seq + 1, ground.head)
    rewrite_and_rehash(db, ground, rng, start)
    assert ledger.verify().ok
    assert ledger.verify(checkpoint).ok, "records newer than the checkpoint: chain only"
    ledger.close()
    tally("tamper cases detected", 2)


# ---------------------------------------------------------------------------- CLI


def milepost_cli(*args: str, url: str, state: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("milepost")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "milepost.cli.main"]
    env = dict(os.environ, MILEPOST_LEDGER_URL=url, MILEPOST_STATE_DIR=str(state))
    return subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def assert_one_line_failure(done: subprocess.CompletedProcess[str], first_bad: int) -> None:
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == 1, output
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith(f"ledger verify FAILED: record {first_bad}: "), lines[0]
    assert all(line.startswith("milepost: ") for line in done.stderr.splitlines()), output


@pytest.mark.parametrize("name", list(TAMPERS))
def test_the_cli_reports_each_tamper_in_one_line_with_exit_1(name, ground, rng, tmp_path):
    tamper, chain_catches = TAMPERS[name]
    db, ledger = tampered_copy(ground, tmp_path / "ledger", name)
    case = tamper(db, ground, rng)
    ledger.close()
    url, state = f"sqlite:///{db}", tmp_path / "state"
    before = stored_rows(db)
    plain = milepost_cli("ledger", "verify", url=url, state=state)
    if chain_catches:
        assert_one_line_failure(plain, case.first_bad)
    else:
        assert plain.returncode == 0 and "intact" in plain.stdout, plain.stdout + plain.stderr
    # verify is read-only: it closes no stale run (a truncation cuts runs' ends off), so
    # it never writes onto the chain it judges.
    assert "as aborted" not in plain.stderr, plain.stderr
    signed = milepost_cli(
        "ledger",
        "verify",
        "--checkpoint",
        str(ground.checkpoint),
        "--public-key",
        ground.public_key,
        url=url,
        state=state,
    )
    assert_one_line_failure(signed, case.first_bad)
    assert stored_rows(db) == before, "verify wrote to the ledger"
    tally("tamper cases detected")
