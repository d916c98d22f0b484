"""Efficiency: what one task on one host costs under Milepost's ansible.cfg, against the
physical floor of that work.

The floor of one `ansible.builtin.command: /bin/true` task on one host, measured directly
with OpenSSH on a warm multiplexed connection (ControlMaster, as ansible.cfg sets it up):

- ``ssh``: one command over the open connection (`ssh host true`);
- ``python``: a remote Python start on top of it (`ssh host /usr/bin/python3 -c pass`);
- ``work``: the module's own work on top of that (`ssh host /usr/bin/python3 -c` running
  `/bin/true` through subprocess, what the command module does) — this last one is the
  floor.

For where the rest goes, one more probe runs Ansible's real module payload for that task
(AnsiballZ_command.py, left on the host once by an ad-hoc run with keep_remote_files) the
same way: ``ansiballz``, the host's share of a task; the remainder of the measured cost is
the controller's (templating, a worker process per task and host, the callbacks).

The measured cost per task per host: ansible-playbook with 1 + N such tasks on one lab
host, minus the same playbook with 1 task, divided by N (start-up, inventory, the first
connection and the ledger's run records cancel out). Both under the real ansible.cfg with
the ledger recording. The target: measured within 2x of the floor.

Variants run interleaved; not a test. Exit codes: 0 done, 1 a run failed, 2 bad input or the
lab not up. Usage (after `scripts/lab up`):

    .venv/bin/python bench/efficiency.py [--tasks 20] [--rounds 5] [--probes 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from maintain_tuning import ROOT, fail, lab_hosts, median, tail
from scale import run_size, write_playbook

TARGET = 2.0
PYTHON = "/usr/bin/python3"
PROBES = {
    "ssh": ["true"],
    "python": [PYTHON, "-c", "pass"],
    "work": [PYTHON, "-c", "'import subprocess; subprocess.run([\"/bin/true\"], check=True)'"],
}


def ssh_argv(port: int, control: Path) -> list[str]:
    lab = ROOT / ".milepost" / "lab" / "ssh"
    return [
        "ssh",
        "-i",
        str(lab / "id_ed25519"),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={lab / 'known_hosts'}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ControlMaster=auto",
        "-o",
        f"ControlPath={control}",
        "-o",
        "ControlPersist=60s",
        "-p",
        str(port),
        "ops@127.0.0.1",
    ]


def probe(base: list[str], command: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([*base, *command], capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        fail(f"`{' '.join(command)}` over SSH failed: {proc.stderr.strip()[-300:]}")
    return took


def ansiballz(host: str, base: list[str], work: Path) -> list[str]:
    """The command to run Ansible's own payload of `command: /bin/true` on ``host``: an
    ad-hoc run keeps it there (keep_remote_files, no pipelining); found by its path."""
    from maintain_tuning import BIN, INVENTORY, base_env

    env = {
        **base_env(),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_KEEP_REMOTE_FILES": "1",
        "ANSIBLE_PIPELINING": "0",
        "MILEPOST_STATE_DIR": str(work / "adhoc-state"),
        "MILEPOST_LEDGER_URL": f"sqlite:///{work / 'adhoc.sqlite'}",
    }
    argv = [str(BIN / "ansible"), "-i", str(INVENTORY), host, "-m", "ansible.builtin.command"]
    proc = subprocess.run([*argv, "-a", "/bin/true"], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        fail(f"the ad-hoc run keeping the module payload failed: {tail(proc.stdout + proc.stderr)}")
    found = subprocess.run(
        [*base, "ls -t ~/.ansible/tmp/ansible-tmp-*/AnsiballZ_command.py | head -1"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not found:
        fail("the module payload was not left on the host (keep_remote_files)")
    return [PYTHON, found]


def floor(host: str, port: int, work: Path, probes: int) -> dict[str, list[float]]:
    """Each probe's times over one warm multiplexed connection, interleaved."""
    base = ssh_argv(port, work / "floor.sock")
    probe(base, ["true"])  # opens the master connection, untimed
    commands = {**PROBES, "ansiballz": ansiballz(host, base, work)}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(probes):
        for name, command in commands.items():
            times[name].append(probe(base, command))
    probe(base, ["rm", "-rf", "~/.ansible/tmp/ansible-tmp-*"])
    subprocess.run([*base, "-O", "exit"], capture_output=True, check=False)
    return times


def host_port(name: str) -> int:
    from milepost.lab.fleet import load_hosts

    return next(h.port for h in load_hosts() if h.name == name)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20, help="Tasks beyond the first one.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not 1 <= args.tasks <= 200 or args.rounds < 1 or args.probes < 1:
        fail("--tasks must be 1 to 200, --rounds and --probes at least 1", 2)
    (host,), _, _ = lab_hosts(1, dry_run=False)
    walls: dict[str, list[float]] = {"one": [], "many": []}
    with tempfile.TemporaryDirectory(prefix="milepost-bench-eff-") as tmp:
        work = Path(tmp)
        books = {
            "one": write_playbook(work / "one.yml", 1),
            "many": write_playbook(work / "many.yml", 1 + args.tasks),
        }
        run_size(work, books["many"], [host], "warmup")
        for round_no in range(1, args.rounds + 1):
            for name, book in books.items():
                wall, _ = run_size(work, book, [host], f"r{round_no}-{name}")
                walls[name].append(wall)
                print(f"round {round_no} {name}: {wall:.2f}s wall", flush=True)
        times = floor(host, host_port(host), work, args.probes)
    per_task = (median(walls["many"]) - median(walls["one"])) / args.tasks
    ssh_s = median(times["ssh"])
    python_s = median(times["python"])
    work_s = median(times["work"])
    ratio = per_task / work_s
    payload_s = median(times["ansiballz"])
    print(f"\nefficiency on {host}: medians of {args.rounds} rounds and {args.probes} probes")
    print(f"  one multiplexed SSH command        {1000 * ssh_s:8.1f} ms")
    print(f"  + remote Python start              {1000 * (python_s - ssh_s):8.1f} ms")
    print(f"  + the module's work (/bin/true)    {1000 * (work_s - python_s):8.1f} ms")
    print(f"  = physical floor per task per host {1000 * work_s:8.1f} ms")
    print(
        f"  measured per task per host         {1000 * per_task:8.1f} ms"
        f"  (({median(walls['many']):.2f} - {median(walls['one']):.2f}) s / {args.tasks} tasks)"
    )
    print(
        f"  of which the host runs Ansible's payload {1000 * payload_s:8.1f} ms"
        f" (AnsiballZ_command.py over the same connection), the controller the other"
        f" {1000 * (per_task - payload_s):.1f} ms"
    )
    met = "met" if ratio <= TARGET else "NOT met"
    print(f"measured / floor: {ratio:.2f}x (target within {TARGET:g}x: {met})")
    summary: dict[str, Any] = {
        "host": host,
        "tasks": args.tasks,
        "rounds": args.rounds,
        "walls": walls,
        "floor_ms": {name: 1000 * median(values) for name, values in times.items()},
        "measured_ms_per_task": 1000 * per_task,
        "ratio": ratio,
    }
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
