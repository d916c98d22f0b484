"""`milepost ledger ...` through milepost.cli.main.main, and bad input: one line, exit 2."""

import json
import sqlite3
import subprocess
import sys

import pytest
import sqlalchemy as sa
from ledger_helpers import plain_records, sample_run

from milepost.cli.main import main
from milepost.errors import UserError
from milepost.ledger import Ledger, run_started


def run_cli(capsys, *args):
    code = main(["ledger", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("milepost: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_runs_show_host_and_json(ledger, capsys):
    run_id = sample_run(ledger, hosts=2, tasks=2)
    code, out, _ = run_cli(capsys, "runs")
    assert code == 0 and run_id in out and "successful" in out
    code, out, _ = run_cli(capsys, "runs", "--json", "--host", "host1", "--since", "30d")
    assert code == 0 and [r["run_id"] for r in json.loads(out)] == [run_id]
    code, out, _ = run_cli(capsys, "show", run_id)
    assert code == 0 and "AUDIT | task 1" in out
    code, out, _ = run_cli(capsys, "show", run_id, "--json")
    shown = json.loads(out)
    # sample_run: host0 was ok then changed, host1 changed then failed.
    assert code == 0 and shown["hosts"] == {
        "host0": {"ok": 1, "changed": 1, "failed": 0, "unreachable": 0, "skipped": 0},
        "host1": {"ok": 0, "changed": 1, "failed": 1, "unreachable": 0, "skipped": 0},
    }
    assert [(r["host"], r["status"]) for r in shown["task_results"]] == [
        ("host0", "ok"),
        ("host1", "changed"),
        ("host0", "changed"),
        ("host1", "failed"),
    ]
    code, out, _ = run_cli(capsys, "host", "host0", "--json")
    assert code == 0 and json.loads(out)["runs"][0]["run_id"] == run_id
    code, out, _ = run_cli(capsys, "upgrade")
    assert code == 0 and "revision" in out


def test_verify_exit_codes_and_checkpoint(ledger, raw, capsys, tmp_path):
    ledger.append(plain_records(5))
    code, out, _ = run_cli(capsys, "verify")
    assert code == 0 and "intact" in out
    cp = tmp_path / "cp.json"
    code, out, _ = run_cli(capsys, "checkpoint", "--out", str(cp))
    assert code == 0 and cp.exists()
    code, out, _ = run_cli(capsys, "verify", "--checkpoint", str(cp))
    assert code == 0
    with raw.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_records SET body = :b WHERE seq = 3"), {"b": '{"i":7}'})
    code, out, _ = run_cli(capsys, "verify")
    assert code == 1 and "record 3" in out
    code, out, _ = run_cli(capsys, "verify", "--json")
    assert code == 1 and json.loads(out)["first_bad_seq"] == 3
    cp.write_text(cp.read_text().replace('"count": 5', '"count": 9'))
    code, _, err = run_cli(capsys, "verify", "--checkpoint", str(cp))
    assert code == 2 and "signature" in one_line_error(err)


def test_readers_answer_when_a_body_is_no_longer_json(ledger, raw, capsys):
    """A body altered behind the ledger's back (not JSON, or JSON but not an object) does
    not stop `runs`, `show` or `host`: they answer without it; `verify` names the record."""
    run_id = sample_run(ledger, hosts=2, tasks=2)
    with raw.begin() as conn:
        seqs = (
            conn.execute(
                sa.text("SELECT seq FROM ledger_records WHERE run_id = :r ORDER BY seq"),
                {"r": run_id},
            )
            .scalars()
            .all()
        )
        for seq, body in ((seqs[0], "{not json"), (seqs[2], "[1, 2]"), (seqs[-1], "")):
            conn.execute(
                sa.text("UPDATE ledger_records SET body = :b WHERE seq = :s"),
                {"b": body, "s": seq},
            )
    for args in (["runs"], ["runs", "--json"], ["show", run_id], ["host", "host0"]):
        code, out, err = run_cli(capsys, *args)
        assert code == 0 and "Traceback" not in out + err, (args, err)
    code, out, _ = run_cli(capsys, "verify")
    assert code == 1 and f"record {seqs[0]}" in out


def test_export_archive_replay(ledger, capsys, tmp_path):
    ledger.append([{**r, "recorded_at": "2025-01-01T00:00:00Z"} for r in plain_records(3)])
    ledger.append(plain_records(2))
    code, out, _ = run_cli(capsys, "export", "--format", "jsonl")
    assert code == 0 and len(out.splitlines()) == 5
    target = tmp_path / "out" / "ledger.csv"
    code, _, err = run_cli(capsys, "export", "--format", "csv", "--out", str(target))
    assert code == 0 and len(target.read_text().splitlines()) == 6 and "exported 5" in err
    archive = tmp_path / "a.jsonl"
    code, out, _ = run_cli(capsys, "archive", "--before", "2025-02-01", "--out", str(archive))
    assert code == 0 and "archived 3" in out
    code, out, _ = run_cli(capsys, "verify", "--archive", str(archive))
    assert code == 0 and "intact" in out
    code, out, _ = run_cli(capsys, "verify")
    assert code == 0

    from milepost.ledger.spool import spool

    spool(plain_records(2), reason="test")
    code, out, _ = run_cli(capsys, "replay")
    assert code == 0 and "replayed 2" in out


def test_commands_close_stale_runs_first(ledger, capsys):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    start = run_started(playbook="killed.yml", pid=child.pid)
    ledger.append([start])
    code, out, err = run_cli(capsys, "runs", "--json")
    assert code == 0 and start["run_id"] in err
    assert json.loads(out)[0]["status"] == "aborted"


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "--since", "last tuesday"],
        ["runs", "--kind", "weekly"],
        ["archive", "--before", "someday", "--out", "x.jsonl"],
        ["export", "--format", "xml"],
        ["show", "no-such-run"],
        ["host", "no-such-host"],
        ["verify", "--checkpoint", "/nonexistent/cp.json"],
    ],
)
def test_bad_input_is_one_line_exit_2(ledger, capsys, args):
    ledger.append(plain_records(1))
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    one_line_error(err)


def sqlite_corrupt(tmp_path):
    path = tmp_path / "corrupt.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.executemany("INSERT INTO t VALUES (?)", [(str(i) * 100,) for i in range(200)])
    con.commit()
    con.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xde\xad\xbe\xef" * ((4096 - 100) // 4)
    path.write_bytes(bytes(data))
    return f"sqlite:///{path}"


def sqlite_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are not the records you are looking for\n")
    return f"sqlite:///{path}"


def sqlite_foreign(tmp_path):
    path = tmp_path / "other-app.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def sqlite_unwritable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return f"sqlite:///{blocker}/sub/ledger.sqlite"


def sqlite_directory(tmp_path):
    return f"sqlite:///{tmp_path}"


def pg_unreachable(tmp_path):
    return "postgresql+psycopg://milepost:hunter2@127.0.0.1:1/milepost"


def not_a_url(tmp_path):
    return "ledger.sqlite"


@pytest.mark.parametrize(
    "make_url",
    [
        sqlite_corrupt,
        sqlite_text_file,
        sqlite_foreign,
        sqlite_unwritable,
        sqlite_directory,
        pg_unreachable,
        not_a_url,
    ],
    ids=lambda f: f.__name__,
)
def test_bad_ledger_is_one_line_exit_2(make_url, tmp_path, capsys, monkeypatch):
    url = make_url(tmp_path)
    with pytest.raises(UserError) as caught:
        Ledger.open(url)
    message = str(caught.value)
    assert "\n" not in message and "hunter2" not in message
    monkeypatch.setenv("MILEPOST_LEDGER_URL", url)
    code, _, err = run_cli(capsys, "runs")
    assert code == 2
    line = one_line_error(err)
    assert "hunter2" not in line


def test_pg_database_with_other_tables_is_refused(ledger_url, raw):
    with raw.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
    with pytest.raises(UserError, match="not a Milepost ledger"):
        Ledger.open(ledger_url)
