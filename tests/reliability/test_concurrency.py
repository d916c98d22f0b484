"""Concurrency: two emergency patches of the same hosts started at once, and four
processes writing to one PostgreSQL ledger at once.

Two emergency patches (100 trials in the full run, 3 in the fast subset): both are started
within 50 ms of each other (a seeded random stagger) on the same host and the same state
directory, as two on-call engineers on one controller would. Every time exactly one takes
the fleet lock and proceeds, the other is refused (exit 3, one line naming the holder's
run, an ``emergency_refused`` record), and on the host no two apt-get runs are ever seen at
once (sampled inside the host every 10 ms). One trial in ten lets the winner patch the host
for real; in the others the winner is stopped with SIGTERM once the loser was refused (the
run is closed as aborted and the lock released: the next trial's race shows it).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from lab_runs import emergency_argv, env_for, lab_hosts, milepost, reset_lab, runs, verify
from proving import tally, trials

from milepost.ledger import Ledger

WRITER = Path(__file__).parent / "ledger_writer.py"
GATEWAY = "ruc-payment-gateway"


def watch_apt(host: dict) -> subprocess.Popen:
    """Inside the host, every 10 ms: how many apt-get installs run at once (printed when
    any does)."""
    return subprocess.Popen(
        [
            "docker", "exec", f"milepost-lab-{host['name']}", "sh", "-c",
            "while :; do n=$(pgrep -c -f '^(/usr/bin/)?[a]pt-get install') || true;"
            ' [ "${n:-0}" -gt 0 ] && echo "$n"; sleep 0.01; done',
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def most_at_once(watch: subprocess.Popen, host: dict) -> int:
    subprocess.run(
        ["docker", "exec", f"milepost-lab-{host['name']}", "pkill", "-f", "[w]hile :; do n="],
        capture_output=True,
    )
    watch.kill()
    out, _ = watch.communicate()
    return max((int(n) for n in out.split()), default=0)


@pytest.mark.lab
def test_two_emergency_patches_at_once_exactly_one_proceeds(tmp_path, rng):
    host = next(h for h in lab_hosts() if h["group"] == "payment_gateway")
    real_runs = apt_seen = 0
    for trial in range(trials(fast=3, full=100)):
        real = trial % 10 == 0
        where = f"trial {trial}"
        directory = tmp_path / f"t{trial}"
        directory.mkdir()
        env = env_for(tmp_path, ledger_url=f"sqlite:///{directory / 'ledger.sqlite'}")
        added = milepost(
            env, "advisory", "add", "--id", "RUC-2026-0960", "--package", f"{GATEWAY}=2.4.0",
            "--severity", "critical", "--title", "Settlement replay",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        if real:
            reset_lab()
        watch = watch_apt(host)
        logs = [(directory / f"{side}.log").open("w") for side in "ab"]
        procs = []
        for log in logs:
            procs.append(
                subprocess.Popen(
                    emergency_argv("RUC-2026-0960", host["name"]),
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    text=True,
                )
            )
            time.sleep(rng.uniform(0.0, 0.05))
        # The loser is refused at once; the winner runs on.
        while all(p.poll() is None for p in procs):
            time.sleep(0.05)
        loser = next(p for p in procs if p.poll() is not None)
        winner = procs[1 - procs.index(loser)]
        if not real:
            winner.send_signal(signal.SIGTERM)
        winner.wait(timeout=1200)
        for log in logs:
            log.close()
        at_once = most_at_once(watch, host)
        outputs = [(directory / f"{side}.log").read_text() for side in "ab"]
        lost_output = outputs[procs.index(loser)]

        assert loser.returncode == 3, f"{where}: {lost_output[-2000:]}"
        refusal_lines = [line for line in lost_output.splitlines() if "fleet lock" in line]
        assert len(refusal_lines) == 1, f"{where}: {lost_output[-2000:]}"
        assert winner.returncode == (0 if real else 128 + signal.SIGTERM), (
            f"{where}: {outputs[procs.index(winner)][-2000:]}"
        )
        exported = milepost(env, "ledger", "export", "--format", "jsonl").stdout.splitlines()
        kinds: dict[str, list[dict]] = {}
        for record in map(json.loads, exported):
            kinds.setdefault(record["kind"], []).append(record)
        (started,) = kinds["emergency_patch"]  # only the winner got past the fleet lock
        (refused,) = kinds["emergency_refused"]
        (result,) = kinds["emergency_result"]
        assert started["run_id"] in refusal_lines[0] and refused["body"]["exit_code"] == 3
        assert result["run_id"] == started["run_id"]
        assert result["body"]["status"] == ("successful" if real else "aborted"), result
        if real:
            (emergency_run,) = runs(env, "--kind", "emergency")
            assert emergency_run["status"] == "successful"
            assert result["body"]["patched"] == [host["name"]]
        assert at_once <= 1, f"{where}: {at_once} apt-get installs at once on {host['name']}"
        verify(env)
        real_runs += real
        apt_seen += at_once
        tally("races with exactly one winner")
    print(f"races: {trial + 1}, real patches: {real_runs}, apt-get seen in {apt_seen} of them")
    assert real_runs == 0 or apt_seen >= 1, "the real patches never ran apt-get on the host"


def test_four_processes_write_one_postgresql_ledger_at_once(pg_ledger):
    batches = trials(fast=25, full=250)
    writers = [
        subprocess.Popen(
            [sys.executable, str(WRITER), pg_ledger, f"writer-{w}", str(batches)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    acked: set[int] = set()
    for writer in writers:
        out, err = writer.communicate(timeout=900)
        assert writer.returncode == 0, err
        acked |= {int(seq) for seq in out.split()}
    with Ledger.open(pg_ledger) as ledger:
        assert ledger.verify().ok
    engine = sa.create_engine(pg_ledger)
    with engine.connect() as conn:
        stored = {seq for (seq,) in conn.execute(sa.text("SELECT seq FROM ledger_records"))}
    engine.dispose()
    assert stored == acked and len(stored) == sum(1 + b % 7 for b in range(batches)) * 4
    assert sorted(stored) == list(range(1, len(stored) + 1))
