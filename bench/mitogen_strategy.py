"""Optional accelerator: Mitogen's strategy (mitogen_linear, from the `mitogen` package in
bench/requirements.txt) against Ansible's own execution under Milepost's ansible.cfg, on
the same small playbook (N read-only tasks on H lab hosts), with a correctness check.

Mitogen replaces Ansible's per-task SSH command and remote Python start with one
persistent Python interpreter per host. It is a third-party strategy plugin, and
ansible-core 2.19 deprecates third-party strategy plugins, so Milepost does not use it:
this benchmark shows what it would gain. Correctness: each run's ledger must hold one ok
task result per task and host, the same for both variants; a run that differs is reported
and left out. If Mitogen is not installed or refuses this ansible-core, the benchmark says
so and exits 0 (it is optional).

Variants run interleaved; not a test. Exit codes: 0 done or skipped, 1 a run failed, 2 bad
input or the lab not up. Usage (after `scripts/lab up --hosts 20`):

    .venv/bin/python bench/mitogen_strategy.py [--hosts 20] [--tasks 10] [--rounds 5] [--json FILE]
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
from scale import write_playbook


def strategy_dir() -> Path | None:
    try:
        import ansible_mitogen
    except ImportError:
        return None
    return Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"


def results_ok(url: str) -> dict[str, int]:
    """{host: ok task results} of the run in the ledger at ``url``."""
    from milepost.ledger import Ledger, queries

    with Ledger.open(url) as ledger:
        (run,) = queries.runs(ledger)
    return {host: counts.get("ok", 0) for host, counts in run["hosts"].items()}


def run_variant(
    work: Path, playbook: Path, hosts: list[str], extra: dict[str, str], label: str
) -> tuple[float, float, dict[str, int] | str]:
    run_dir = work / label
    run_dir.mkdir(parents=True)
    env = {**base_env(), **run_env(ANSIBLE_CFG, run_dir), **extra}
    argv = playbook_argv(run_dir, hosts, playbook=playbook, controller=False)
    proc, wall, cpu = timed_run(argv, env, run_dir / "cp")
    if proc.returncode != 0:
        return wall, cpu, tail(proc.stdout + proc.stderr, 15)
    return wall, cpu, results_ok(env["MILEPOST_LEDGER_URL"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not 1 <= args.tasks <= 200 or args.rounds < 1:
        fail("--tasks must be 1 to 200 and --rounds at least 1", 2)
    strategies = strategy_dir()
    if strategies is None:
        print("mitogen: skipped: the mitogen package is not installed (bench/requirements.txt)")
        return
    hosts, _, _ = lab_hosts(args.hosts, dry_run=False)
    variants = {
        "ansible": {},
        "mitogen": {
            "ANSIBLE_STRATEGY_PLUGINS": str(strategies),
            "ANSIBLE_STRATEGY": "mitogen_linear",
        },
    }
    expected = dict.fromkeys(hosts, args.tasks)
    adopt_orphans()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    wrong: dict[str, list[str]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="milepost-bench-mitogen-") as tmp:
        work = Path(tmp)
        playbook = write_playbook(work / "tasks.yml", args.tasks)
        for name, extra in variants.items():  # untimed warm-up, and does Mitogen run here?
            _, _, found = run_variant(work, playbook, hosts, extra, f"warmup-{name}")
            if found != expected:
                if name == "mitogen":
                    print(f"mitogen: skipped: it does not run with this ansible-core:\n{found}")
                    return
                fail(f"the run without Mitogen failed:\n{found}")
        for round_no in range(1, args.rounds + 1):
            for name, extra in variants.items():
                wall, cpu, found = run_variant(work, playbook, hosts, extra, f"r{round_no}-{name}")
                if found != expected:
                    wrong[name].append(f"round {round_no}: {found}")
                    print(f"round {round_no} {name}: WRONG RESULTS, left out", flush=True)
                    continue
                samples[name].append((wall, cpu))
                print(f"round {round_no} {name}: {wall:.1f}s wall, {cpu:.1f}s cpu", flush=True)
    print(
        f"\nmitogen: {args.tasks} tasks x {len(hosts)} hosts, medians (min-max) of"
        f" {args.rounds} interleaved rounds"
    )
    summary: dict[str, Any] = {"hosts": len(hosts), "tasks": args.tasks, "variants": {}}
    for name, runs in samples.items():
        if not runs:
            print(f"{name:<8} every run gave wrong results")
            continue
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        summary["variants"][name] = {
            "median_wall_s": median(walls),
            "median_cpu_s": median(cpus),
            "wrong_runs": wrong[name],
        }
        print(
            f"{name:<8} {median(walls):7.1f} ({min(walls):.1f}-{max(walls):.1f}) s wall,"
            f" {median(cpus):6.1f} s cpu, correct runs {len(runs)}/{args.rounds}"
        )
    if samples["ansible"] and samples["mitogen"]:
        ratio = median([w for w, _ in samples["ansible"]]) / median(
            [w for w, _ in samples["mitogen"]]
        )
        print(f"mitogen vs ansible: {ratio:.2f}x faster (wall)")
        summary["speedup"] = ratio
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if any(wrong.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
