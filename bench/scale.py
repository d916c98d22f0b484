"""How cost grows with the fleet: the same small playbook (N tasks of `/bin/true` on every
host, read-only) on 1, 2, 5, 10, 20 and 50 lab hosts, under the real ansible.cfg with the
ledger recording (a fresh SQLite ledger per run).

For each fleet size: wall time, wall time per host, controller CPU (ansible-playbook, its
workers and the SSH control masters, which this process adopts and reaps), controller CPU
per task-host result and results per second. The sizes run interleaved (1 2 5 10 20 50,
1 2 5 ...) so machine noise hits them alike; each run starts without SSH connections (a
control directory of its own). The targets: controller CPU per task-host result flat within
20% from 10 to 50 hosts; and where throughput stops growing (saturation) on this machine.

Not a test: it prints medians and spreads. Exit codes: 0 done, 1 a run failed, 2 bad input
or the lab too small. Usage (after `scripts/lab up --hosts 50`):

    .venv/bin/python bench/scale.py [--sizes 1,2,5,10,20,50] [--tasks 10] [--rounds 5]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from maintain_tuning import (
    ANSIBLE_CFG,
    adopt_orphans,
    base_env,
    fail,
    lab_hosts,
    median,
    playbook_argv,
    run_env,
    tail,
    timed_run,
)

SIZES = (1, 2, 5, 10, 20, 50)
#: Controller CPU per result may vary this much from 10 to 50 hosts.
FLAT_WITHIN = 0.20
#: Throughput that grows less than this when the fleet grows counts as saturated.
SATURATED_GAIN = 0.10


def write_playbook(path: Path, tasks: int) -> Path:
    """A playbook of ``tasks`` read-only tasks (`/bin/true`) on every RUC host."""
    lines = [
        "---",
        "- name: Run small read-only tasks on every host",
        "  hosts: ruc",
        "  gather_facts: false",
        "  tasks:",
    ]
    for number in range(1, tasks + 1):
        lines += [
            f"    - name: AUDIT | Run step {number:02d} of the benchmark",
            "      ansible.builtin.command: /bin/true",
            "      changed_when: false",
            "      check_mode: false",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_size(work: Path, playbook: Path, hosts: list[str], label: str) -> tuple[float, float]:
    """One timed run on ``hosts``: (wall s, controller CPU s). Exits 1 if it failed."""
    run_dir = work / label
    run_dir.mkdir(parents=True)
    env = {**base_env(), **run_env(ANSIBLE_CFG, run_dir)}
    argv = playbook_argv(run_dir, hosts, playbook=playbook, controller=False)
    proc, wall, cpu = timed_run(argv, env, run_dir / "cp")
    if proc.returncode != 0:
        fail(f"the run on {len(hosts)} host(s) failed:\n{tail(proc.stdout + proc.stderr)}")
    return wall, cpu


def report(samples: dict[int, list[tuple[float, float]]], tasks: int) -> dict[str, Any]:
    print(
        f"\nscale: {tasks} tasks per host, medians (min-max) of {len(samples[min(samples)])} rounds"
    )
    print(
        f"{'hosts':>5} {'wall s':>20} {'s/host':>7} {'cpu s':>7} {'cpu ms/result':>14}"
        f" {'results/s':>10}"
    )
    rows = []
    for size, runs in sorted(samples.items()):
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        wall, cpu = median(walls), median(cpus)
        results = tasks * size
        row = {
            "hosts": size,
            "median_wall_s": wall,
            "min_wall_s": min(walls),
            "max_wall_s": max(walls),
            "s_per_host": wall / size,
            "median_cpu_s": cpu,
            "cpu_ms_per_result": 1000 * cpu / results,
            "results_per_s": results / wall,
        }
        rows.append(row)
        spread = f"{wall:.1f} ({min(walls):.1f}-{max(walls):.1f})"
        print(
            f"{size:>5} {spread:>20} {wall / size:7.2f} {cpu:7.1f}"
            f" {row['cpu_ms_per_result']:14.1f} {row['results_per_s']:10.2f}"
        )
    summary: dict[str, Any] = {"tasks": tasks, "sizes": rows}
    flat = [r["cpu_ms_per_result"] for r in rows if 10 <= r["hosts"] <= 50]
    if len(flat) >= 2:
        spread = max(flat) / min(flat) - 1
        met = "met" if spread <= FLAT_WITHIN else "NOT met"
        print(
            f"controller CPU per result from 10 to 50 hosts: {min(flat):.1f}-{max(flat):.1f} ms,"
            f" spread {100 * spread:.0f}% (target within {100 * FLAT_WITHIN:.0f}%: {met})"
        )
        summary["cpu_per_result_spread_10_to_50"] = spread
    saturated = None
    for before, after in zip(rows, rows[1:], strict=False):
        if after["results_per_s"] < before["results_per_s"] * (1 + SATURATED_GAIN):
            saturated = before["hosts"]
            break
    if saturated is not None:
        print(
            f"throughput stops growing (less than {100 * SATURATED_GAIN:.0f}% more results/s)"
            f" beyond {saturated} host(s) on this machine"
        )
    else:
        print("throughput still grows at the largest fleet measured")
    summary["saturates_after_hosts"] = saturated
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="Write the figures here.")
    args = parser.parse_args()
    try:
        sizes = sorted({int(part) for part in args.sizes.split(",") if part.strip()})
    except ValueError:
        fail(f"--sizes must be whole numbers separated by commas, not {args.sizes!r}", 2)
    if not sizes or sizes[0] < 1:
        fail("--sizes must hold fleet sizes of at least 1", 2)
    if not 1 <= args.tasks <= 200 or args.rounds < 1:
        fail("--tasks must be 1 to 200 and --rounds at least 1", 2)
    hosts, total, _ = lab_hosts(sizes[-1], dry_run=False)
    adopt_orphans()
    samples: dict[int, list[tuple[float, float]]] = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory(prefix="milepost-bench-scale-") as tmp:
        work = Path(tmp)
        playbook = write_playbook(work / "tasks.yml", args.tasks)
        run_size(work, playbook, hosts, "warmup")  # untimed: page cache, host-side Python
        for round_no in range(1, args.rounds + 1):
            for size in sizes:
                wall, cpu = run_size(work, playbook, hosts[:size], f"r{round_no}-h{size}")
                samples[size].append((wall, cpu))
                print(
                    f"round {round_no} hosts {size}: {wall:.1f}s wall, {cpu:.1f}s cpu",
                    flush=True,
                )
    summary = report(samples, args.tasks)
    summary.update(lab_hosts=total, rounds=args.rounds)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
