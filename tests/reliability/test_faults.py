"""Faults injected into real parts during real runs. Each test states what is expected:
what fails, what is rolled back, what is recorded, and what the next run does.

- a host powered off mid-run (its container stopped with SIGKILL);
- the dpkg front-end lock held by another process on a host;
- a package whose postinst fails (the lab's broken ruc-payment-gateway 2.3.1);
- a host whose apt archive filesystem is full;
- the SMTP server down when the notices are due;
- PostgreSQL restarted in the middle of a run recording into it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from lab_fleet import INVENTORY, ROOT, lab_status
from lab_runs import (
    EMERGENCY,
    dpkg_audit,
    env_for,
    lab_hosts,
    maintain_argv,
    milepost,
    query,
    reset_lab,
    runs,
    start,
    verify,
)
from proving import tally

# Every trial here runs on the lab fleet (scripts/lab up).
pytestmark = pytest.mark.lab

LONG_RUN = ROOT / "tests" / "integration" / "playbooks" / "long_run.yml"


@pytest.fixture(scope="module")
def hosts() -> dict[str, dict]:
    return {h["name"]: h for h in lab_hosts()}


def versions() -> dict[str, dict[str, str]]:
    return {row["name"]: row["versions"] for row in lab_status()}


def records(env: dict[str, str], kind: str | None = None) -> list[dict]:
    proc = milepost(env, "ledger", "export", "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    found = [json.loads(line) for line in proc.stdout.splitlines()]
    return [r for r in found if kind is None or r["kind"] == kind]


def results_of(env: dict[str, str], host: str) -> list[dict]:
    return [r for r in records(env, "task_result") if r["host"] == host]


def run(env: dict[str, str], argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1200
    )


def docker(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def wait_reachable(host: dict) -> None:
    for _ in range(300):
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", host["port"])) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"{host['name']} did not come back on port {host['port']}")


def test_a_host_powered_off_mid_run_is_recorded_unreachable_and_the_others_are_maintained(
    tmp_path, hosts
):
    """Expected: acct-01 is powered off once its preflight began. The run goes on without
    it: pay-01 is updated; the run ends failed; the ledger shows acct-01 unreachable and a
    glitch names it; acct-01's versions are unchanged. Powered on again, the next run
    takes over its stale maintenance lock and updates it."""
    reset_lab()
    env = env_for(tmp_path)
    ledger = tmp_path / "ledger.sqlite"
    down, up = hosts["acct-01"], hosts["pay-01"]
    before = versions()
    proc = start(env, maintain_argv("acct-01,pay-01,localhost"), tmp_path / "run.log")
    while proc.poll() is None and down["name"] not in results_of_sqlite(ledger):
        time.sleep(0.1)
    docker("stop", "--time", "0", f"milepost-lab-{down['name']}")
    try:
        assert proc.wait(timeout=1200) != 0
    finally:
        docker("start", f"milepost-lab-{down['name']}")
    (run_record,) = runs(env)
    assert run_record["status"] == "failed"
    assert run_record["hosts"][down["name"]]["unreachable"] >= 1
    wait_reachable(down)
    after = versions()
    assert after[down["name"]] == before[down["name"]]
    assert after[up["name"]] != before[up["name"]], "pay-01 was not maintained"
    glitches = records(env, "glitch")
    assert glitches and down["name"] in json.dumps(glitches[-1]["body"])
    verify(env)

    again = run(env, maintain_argv("acct-01,localhost"))
    assert again.returncode == 0, again.stdout[-3000:]
    assert versions()[down["name"]] != before[down["name"]]
    assert dpkg_audit(down) == ""
    tally("faults survived")


def results_of_sqlite(ledger: Path) -> list[str]:
    """Hosts of the task results committed so far (read straight from SQLite)."""
    return [h for (h,) in query(ledger, "SELECT host FROM ledger_records WHERE kind='task_result'")]


def test_a_held_dpkg_lock_fails_that_host_in_preflight_and_changes_nothing_on_it(tmp_path, hosts):
    """Expected: another process holds dpkg's front-end lock on ingest-01. Preflight waits
    its timeout, then fails ingest-01 naming the holder; nothing on ingest-01 changes;
    report-01 is maintained; the run ends failed. Once the lock is released the next run
    maintains ingest-01."""
    reset_lab()
    env = env_for(tmp_path)
    held, free = hosts["ingest-01"], hosts["report-01"]
    before = versions()
    holder = subprocess.Popen(
        [
            "docker", "exec", f"milepost-lab-{held['name']}", "python3", "-c",
            "import fcntl, time\n"
            "f = open('/var/lib/dpkg/lock-frontend', 'w')\n"
            "fcntl.lockf(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(900)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        proc = run(
            env,
            maintain_argv("ingest-01,report-01,localhost", "-e", "preflight_dpkg_lock_timeout=6"),
        )
    finally:
        subprocess.run(
            ["docker", "exec", f"milepost-lab-{held['name']}", "pkill", "-f", "[l]ockf"],
            capture_output=True,
        )
        holder.kill()
        holder.wait()
    assert proc.returncode != 0
    assert f"{held['name']}: dpkg is locked after waiting 6 s" in proc.stdout
    assert "python3" in proc.stdout  # the holder is named
    after = versions()
    assert after[held["name"]] == before[held["name"]]
    assert after[free["name"]] != before[free["name"]]
    (run_record,) = runs(env)
    assert run_record["status"] == "failed"
    failed = [r for r in results_of(env, held["name"]) if r["body"]["status"] == "failed"]
    assert failed and "dpkg is locked" in json.dumps(failed[0]["body"])

    again = run(env, maintain_argv("ingest-01,localhost"))
    assert again.returncode == 0, again.stdout[-3000:]
    assert versions()[held["name"]] != before[held["name"]]
    tally("faults survived")


def test_a_failing_postinst_is_rolled_back_and_leaves_dpkg_consistent(tmp_path, hosts):
    """Expected: the fix for an advisory is the lab's broken release (its postinst fails).
    emergency-patch installs it on pay-02 alone: dpkg fails configuring it, the host is
    rolled back to the release it had, dpkg is left consistent, the run ends failed with
    the rollback recorded (both package changes) and a glitch naming pay-02."""
    reset_lab()
    env = env_for(tmp_path)
    host = hosts["pay-02"]
    before = versions()
    added = milepost(
        env, "advisory", "add", "--id", "RUC-2026-0950", "--package",
        "ruc-payment-gateway=2.3.1", "--severity", "critical", "--title", "Broken fix",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    proc = run(
        env, [str(EMERGENCY), "--advisory", "RUC-2026-0950", "--limit", host["name"], "--yes"]
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    assert versions()[host["name"]] == before[host["name"]]
    assert dpkg_audit(host) == ""
    changes = [
        (r["body"]["from_version"], r["body"]["to_version"])
        for r in records(env, "package_change")
        if r["host"] == host["name"]
    ]
    assert changes == [("2.3.0", "2.3.1"), ("2.3.1", "2.3.0")]
    (glitch,) = records(env, "glitch")
    assert glitch["body"]["hosts"] == [host["name"]]
    verify(env)
    tally("faults survived")


def fill(host: dict, leave_mb: int) -> None:
    """Fill the host's apt archive filesystem (a tmpfs of its own in the lab) until only
    ``leave_mb`` MiB are free, as a full disk would be. A download running meanwhile takes
    space between df and fallocate: then fallocate fails and the rest is filled again."""
    script = (
        "set -eu; cd /var/cache/apt/archives; rm -f filler*; n=0;"
        " while :; do"
        "  free=$(df --output=avail --block-size=4096 . | tail -n 1 | tr -d ' ');"
        f"  want=$(( free * 4096 - {leave_mb} * 1024 * 1024 ));"
        '  [ "$want" -gt 0 ] || exit 0;'
        "  n=$((n + 1)); [ $n -le 20 ] || exit 1;"
        '  fallocate -l "$want" filler$n 2>/dev/null || rm -f filler$n;'
        " done"
    )
    docker("exec", f"milepost-lab-{host['name']}", "sh", "-c", script)


def unfill(host: dict) -> None:
    script = "rm -f /var/cache/apt/archives/filler*"
    docker("exec", f"milepost-lab-{host['name']}", "sh", "-c", script)


def test_a_full_disk_fails_the_update_cleanly_and_preflight_refuses_it_until_freed(tmp_path, hosts):
    """Expected: report-01's apt archive filesystem fills up after its preflight passed.
    Its update fails before dpkg touches anything: versions unchanged, dpkg consistent,
    the run failed and recorded. The next run, disk still full, is refused by preflight
    naming the filesystem and the space needed, and changes nothing. Once space is freed
    the next run maintains it."""
    reset_lab()
    env = env_for(tmp_path)
    ledger = tmp_path / "ledger.sqlite"
    host = hosts["report-01"]
    before = versions()
    proc = start(env, maintain_argv("report-01,localhost"), tmp_path / "run.log")
    try:
        # The probe checks the free space: fill the disk once its result is recorded.
        while proc.poll() is None and not probed(ledger, host["name"]):
            time.sleep(0.05)
        fill(host, leave_mb=0)
        assert proc.wait(timeout=1200) != 0
        assert versions()[host["name"]] == before[host["name"]]
        assert dpkg_audit(host) == ""
        (first,) = runs(env)
        assert first["status"] == "failed"
        failed = [r for r in results_of(env, host["name"]) if r["body"]["status"] == "failed"]
        assert failed, "no failed task recorded for the full disk"

        fill(host, leave_mb=100)
        refused = run(env, maintain_argv("report-01,localhost"))
        assert refused.returncode != 0
        assert f"not enough free disk space on {host['name']}" in refused.stdout
        assert "/var/cache/apt/archives has" in refused.stdout
        assert versions()[host["name"]] == before[host["name"]]
    finally:
        unfill(host)
    again = run(env, maintain_argv("report-01,localhost"))
    assert again.returncode == 0, again.stdout[-3000:]
    assert versions()[host["name"]] != before[host["name"]]
    verify(env)
    tally("faults survived")


def probed(ledger: Path, host: str) -> bool:
    return bool(
        query(
            ledger,
            "SELECT 1 FROM ledger_records WHERE kind='task_result' AND host=?"
            " AND body LIKE '%Probe the host%'",
            host,
        )
    )


NOTIFY = """\
milepost_notify:
  contact: RUC Operations, ops@ruc.example.gov
  from: RUC Operations <ruc-ops@ruc.example.gov>
  smtp: {{host: 127.0.0.1, port: {port}, attempts: 3, retry_delay_seconds: 0}}
  audiences:
    communications:
      email: [communications@ruc.example.gov]
  notices:
    upcoming: [communications]
    completed: [communications]
"""


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_with_the_smtp_server_down_maintenance_completes_and_each_notice_is_recorded_failed(
    tmp_path, hosts
):
    """Expected: the mail server is down when `milepost maintain` sends its notices. The
    maintenance is not held up: the run succeeds and the command exits 0; each notice is
    recorded as failed after its 3 attempts, with the reason."""
    reset_lab()
    env = env_for(tmp_path)
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY.parent, inventory)
    (inventory / "group_vars" / "all" / "notify.yml").write_text(NOTIFY.format(port=closed_port()))
    proc = run(
        env, ["milepost", "maintain", "-i", str(inventory / "hosts.yml"), "--limit", "sftp-01"]
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    (run_record,) = runs(env)
    assert run_record["status"] == "successful"
    notices = records(env, "notice")
    assert [n["body"]["notice"] for n in notices] == ["upcoming", "completed"]
    for notice in notices:
        assert notice["body"]["about"]["run_id"] == run_record["run_id"]
        assert (notice["body"]["result"], notice["body"]["attempts"]) == ("failed", 3)
        assert notice["body"]["reason"].startswith("connection to the mail server 127.0.0.1:")
        assert notice["body"]["reason"].endswith(" refused")
    verify(env)
    tally("faults survived")


def pg_cluster(action: str) -> None:
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    version, cluster = clusters.stdout.split()[:2]
    subprocess.run(["pg_ctlcluster", version, cluster, action], check=True)


def spooled(state_dir: Path) -> list[Path]:
    return [p for p in state_dir.rglob("*.jsonl") if p.stat().st_size]


def test_a_postgresql_restart_mid_run_is_spooled_and_replayed_with_nothing_lost(
    tmp_path, hosts, pg_ledger
):
    """Expected: PostgreSQL restarts while a run records into it (stopped until the run
    has tried to write, then started again: a restart between two writes would go
    unnoticed, which is no test). The run is not disturbed (exit 0) and warns once that it
    records to the local spool; `milepost ledger replay` writes the spooled records in:
    every task result of the run is in the ledger once, the run is closed successful, the
    chain verifies and the spool is empty."""
    env = env_for(tmp_path, ledger_url=pg_ledger)
    spool_dir = Path(env["MILEPOST_STATE_DIR"])
    steps = 20
    pg_probe = sa.create_engine(pg_ledger)
    log = tmp_path / "run.log"
    proc = start(
        env,
        [
            "ansible-playbook", "-i", str(INVENTORY), str(LONG_RUN),
            "--limit", "pay-01,acct-01", "-e", f"long_run_steps={steps}",
        ],
        log,
    )  # fmt: skip
    try:
        for _ in range(3000):
            if proc.poll() is not None:
                break
            try:
                with pg_probe.connect() as conn:
                    count = conn.execute(sa.text("SELECT count(*) FROM ledger_records")).scalar()
            except sa.exc.SQLAlchemyError:
                count = 0
            if count and count >= 8:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before PostgreSQL could be restarted"
        pg_probe.dispose()
        pg_cluster("stop")
        try:
            for _ in range(600):
                if spooled(spool_dir) or proc.poll() is not None:
                    break
                time.sleep(0.1)
        finally:
            pg_cluster("start")
        assert spooled(spool_dir), "the run wrote nothing while PostgreSQL was down"
        assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
    finally:
        pg_probe.dispose()
    output = log.read_text()
    assert output.count("recording to the local spool instead") == 1, output[-3000:]
    replay = milepost(env, "ledger", "replay")
    assert replay.returncode == 0, replay.stderr
    (run_record,) = runs(env)
    assert run_record["status"] == "successful"
    results = records(env, "task_result")
    keys = [(r["host"], r["body"].get("task"), r["body"].get("item")) for r in results]
    per_host = {h: sum(1 for r in results if r["host"] == h) for h in ("pay-01", "acct-01")}
    assert per_host["pay-01"] == per_host["acct-01"] >= steps
    assert len(records(env, "run_ended")) == 1 and len(records(env, "run_started")) == 1
    assert len(keys) == len(results)
    verify(env)
    assert not spooled(spool_dir), spooled(spool_dir)
    tally("faults survived")
