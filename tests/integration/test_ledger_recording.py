"""The maintenance_ledger callback against the lab: runs recorded, kills survived,
secrets kept out, a database outage spooled and replayed."""

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import INVENTORY, ROOT, ansible_env

PLAYBOOKS = Path(__file__).parent / "playbooks"


def env_for(ledger: Path, **extra: str) -> dict[str, str]:
    return {
        **ansible_env(),
        "MILEPOST_LEDGER_URL": f"sqlite:///{ledger}",
        "MILEPOST_ROOT": str(ROOT),
        **extra,
    }


def milepost(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["milepost", *args], capture_output=True, text=True, env=env)


def playbook(env: dict[str, str], name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", str(INVENTORY), str(PLAYBOOKS / name), *args],
        capture_output=True,
        text=True,
        env=env,
    )


def rows(ledger: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
        return db.execute(sql, params).fetchall()


def test_a_run_is_listed_with_per_host_counts_and_the_ledger_verifies(lab_hosts, tmp_path):
    env = env_for(tmp_path / "ledger.sqlite")
    # Two hosts of different groups (the first is the payment host checked below).
    two = [
        lab_hosts[0]["name"],
        next(h["name"] for h in lab_hosts if h["group"] != "payment_gateway"),
    ]
    limit = ["--limit", ",".join([*two, "localhost"])]
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(INVENTORY), str(ROOT / "playbooks/maintain.yml"), *limit],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    runs = json.loads(milepost(env, "ledger", "runs", "--json").stdout)
    assert len(runs) == 1
    run = runs[0]
    assert run["status"] == "successful" and run["playbook"] == "playbooks/maintain.yml"
    assert set(run["hosts"]) - {"localhost"} == set(two)
    assert all(counts["ok"] > 0 for counts in run["hosts"].values())
    assert milepost(env, "ledger", "verify").returncode == 0
    host = json.loads(milepost(env, "ledger", "host", lab_hosts[0]["name"], "--json").stdout)
    assert host["packages"]["ruc-payment-gateway"] == "2.4.0"


def start_long_run(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [
            "ansible-playbook",
            "-i",
            str(INVENTORY),
            str(PLAYBOOKS / "long_run.yml"),
            "-e",
            "long_run_steps=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


def wait_for_records(ledger: Path, count: int) -> list[tuple]:
    """(seq, hash) of the committed records, once there are at least `count` of them."""
    found: list[tuple] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(found) < count:
        time.sleep(0.3)
        try:
            found = rows(ledger, "SELECT seq, hash FROM ledger_records ORDER BY seq")
        except sqlite3.OperationalError:  # not created yet
            found = []
    return found


def test_sigkill_mid_run_leaves_a_verifying_ledger_with_the_run_aborted(lab_hosts, tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    env = env_for(ledger)
    proc = start_long_run(env)
    acknowledged = wait_for_records(ledger, 30)
    assert proc.poll() is None, "the playbook ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(acknowledged) >= 30

    assert milepost(env, "ledger", "verify").returncode == 0
    runs = json.loads(milepost(env, "ledger", "runs", "--json").stdout)
    assert [r["status"] for r in runs] == ["aborted"]
    after = dict(rows(ledger, "SELECT seq, hash FROM ledger_records"))
    assert all(after.get(seq) == digest for seq, digest in acknowledged)


@pytest.mark.parametrize("delay", [0.0, 0.37, 0.81, 1.3, 2.2])
def test_sigterm_closes_the_run_as_aborted(lab_hosts, tmp_path, delay):
    """SIGTERM at several points after the first results (the handler must not deadlock on
    the recorder's queue, whatever the main thread was doing)."""
    ledger = tmp_path / "ledger.sqlite"
    env = env_for(ledger)
    proc = start_long_run(env)
    assert len(wait_for_records(ledger, 3)) >= 3
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=300)
    ended = rows(ledger, "SELECT body FROM ledger_records WHERE kind='run_ended'")
    assert len(ended) == 1
    body = json.loads(ended[0][0])
    assert (body["status"], body["reason"]) == ("aborted", "terminated by SIGTERM")
    # The run stopped: it did not go on through its 200 steps on every host.
    results = rows(ledger, "SELECT count(*) FROM ledger_records WHERE kind='task_result'")
    assert results[0][0] < 100 * len(lab_hosts)


def test_canary_secrets_never_reach_the_ledger_or_its_exports(lab_hosts, tmp_path):
    vault_secret = "CanaryVault-7f3e9a1c"
    extra_secret = "CanaryExtra-2b8d4e6f"
    password_file = tmp_path / "vault-password"
    password_file.write_text("lab vault password\n")
    encrypted = subprocess.run(
        [
            "ansible-vault",
            "encrypt_string",
            "--vault-password-file",
            str(password_file),
            vault_secret,
            "--name",
            "canary_vault_secret",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=ansible_env(),
    ).stdout
    vars_file = tmp_path / "canary_vars.yml"
    vars_file.write_text("---\n" + encrypted)
    ledger = tmp_path / "ledger.sqlite"
    env = env_for(ledger)
    proc = playbook(
        env,
        "canary.yml",
        "--vault-password-file",
        str(password_file),
        "-e",
        f"canary_vars_file={vars_file}",
        "-e",
        f"canary_extra_secret={extra_secret}",
    )
    assert "CanaryVault" in proc.stdout, "the playbook did not use the secrets"
    milepost(env, "ledger", "checkpoint", "--out", str(tmp_path / "head.json"))
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"export.{fmt}"
        assert milepost(env, "ledger", "export", "--format", fmt, "--out", str(out)).returncode == 0
    stored = [p for p in tmp_path.iterdir() if p.name.startswith(("ledger.sqlite", "export"))]
    stored += (
        list((ROOT / ".milepost" / "spool").glob("*"))
        if (ROOT / ".milepost/spool").exists()
        else []
    )
    assert any(p.name == "ledger.sqlite" for p in stored)
    for path in stored:
        data = path.read_bytes()
        assert vault_secret.encode() not in data, path
        assert extra_secret.encode() not in data, path
    summaries = [
        json.loads(b)["summary"]
        for (b,) in rows(ledger, "SELECT body FROM ledger_records WHERE kind='task_result'")
    ]
    assert "censored (no_log)" in summaries
    assert any("could not log in with ***" in (s or "") for s in summaries)


def test_a_ledger_outage_is_spooled_with_one_warning_and_replayed(lab_hosts, tmp_path):
    """The ledger's location cannot be written during the run (a file stands where its
    directory should be, as when a mount is gone): the run is spooled with one warning;
    replay writes it in; nothing is lost."""
    ledger = tmp_path / "mount" / "ledger.sqlite"
    ledger.parent.write_text("not a directory")
    env = env_for(ledger, MILEPOST_STATE_DIR=str(tmp_path / "state"))
    two = [h["name"] for h in lab_hosts[:2]]
    proc = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(INVENTORY),
            str(ROOT / "playbooks/maintain.yml"),
            "--limit",
            ",".join([*two, "localhost"]),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    output = proc.stdout + proc.stderr
    assert output.count("recording to the local spool instead") == 1
    assert list((tmp_path / "state" / "spool").glob("*.jsonl"))

    ledger.parent.unlink()
    ledger.parent.mkdir()
    replay = milepost(env, "ledger", "replay")
    assert replay.returncode == 0, replay.stderr
    assert not list((tmp_path / "state" / "spool").glob("*.jsonl"))
    runs = json.loads(milepost(env, "ledger", "runs", "--json").stdout)
    assert [r["status"] for r in runs] == ["successful"]
    assert all(runs[0]["hosts"][name]["ok"] > 0 for name in two)
    assert milepost(env, "ledger", "verify").returncode == 0
