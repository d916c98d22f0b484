"""Emergency time-to-patch: scripts/emergency-patch against the same patch done by a plain
ansible-playbook run at Ansible's defaults, on N lab hosts. The requirement: from the
invocation to the last host verified, emergency-patch takes at most half as long.

Scenarios (--scenario):

- ``one-package`` (the usual emergency): the advisory (BENCH-2026-0001) is for
  ruc-payment-gateway, fixed in its newest release; the payment gateway hosts (every
  fifth lab host) run the old release. The ledger knows the fleet's packages, as it does
  after any maintenance cycle (an untimed bench/playbooks/package_facts.yml run records
  them), so emergency-patch goes to the exposed hosts only; the plain run checks the
  whole fleet, as a playbook that does not know where the package is must.
- ``every-host`` (the worst case): the advisory names every RUC package of the lab, each
  fixed in its newest release, so every lab host is exposed; the ledger is fresh, so
  emergency-patch checks every host live, exactly as the plain run does. This measures
  the execution settings alone.

Variants:

- ``emergency``: `scripts/emergency-patch --advisory BENCH-2026-0001 --yes`, as the on-call
  engineer runs it, under the real ansible.cfg;
- ``plain``: `ansible-playbook playbooks/emergency_patch.yml` over every RUC host with the
  same extra vars (the same patch, the same preflight, canary and health gate) under
  bench/maintain_tuning.py's ``stock`` configuration: what Milepost needs to work,
  everything else at Ansible's defaults (forks 5, no pipelining, Ansible's own ssh_args).

Every run does the same real work: before it, `scripts/lab reset` (untimed) puts every lab
host back on its old RUC release and the lab's SSH control masters are closed; the run's
ledger must show the timed run successful with a package change on every exposed host and
on no other. The rest is
bench/maintain_tuning.py's method and helpers: a fresh MILEPOST_STATE_DIR and SQLite ledger
per run, only the command is timed, variants interleaved, controller CPU counted with the
SSH control masters.

Not a test: it prints medians, spreads and the ratio. Exit codes: 0 done (whether or not
the requirement is met), 1 a run or a lab reset failed, 2 bad input or the lab not up.
Usage (after `scripts/lab up --hosts 20`):

    .venv/bin/python bench/emergency_patch.py [--hosts 20] [--rounds 5]
        [--scenario one-package|every-host] [--json FILE] [--logs DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

# bench/ is on sys.path when this file is run as a script.
import maintain_tuning as mt

from milepost.lab import ruc_packages

ROOT = mt.ROOT
EMERGENCY = ROOT / "scripts" / "emergency-patch"
PLAYBOOK = ROOT / "playbooks" / "emergency_patch.yml"
FACTS = ROOT / "bench" / "playbooks" / "package_facts.yml"
GATEWAY = "ruc-payment-gateway"
LAB_CONTROL_DIR = ROOT / ".milepost" / "lab" / "cp"
ADVISORY = "BENCH-2026-0001"
TARGET = 2.0  # emergency-patch must be at least this many times faster than plain
VARIANTS = ("emergency", "plain")
SCENARIOS = ("one-package", "every-host")


def fixed_versions(scenario: str) -> dict[str, str]:
    return {
        pkg.name: pkg.latest.version
        for pkg in ruc_packages.CATALOG
        if scenario == "every-host" or pkg.name == GATEWAY
    }


def exposed_hosts(scenario: str, hosts: list[str]) -> list[str]:
    from milepost.lab.fleet import load_hosts

    groups = {h.name: h.group for h in load_hosts()}
    names = set(fixed_versions(scenario))
    return [h for h in hosts if ruc_packages.package_for_group(groups[h]).name in names]


def add_advisory(env: dict[str, str], scenario: str) -> None:
    argv = [str(mt.BIN / "milepost"), "advisory", "add", "--id", ADVISORY, "--severity", "critical"]
    for name, fixed in fixed_versions(scenario).items():
        argv += ["--package", f"{name}={fixed}"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        mt.fail(f"could not add the advisory: {proc.stderr.strip()}")


def record_facts(env: dict[str, str], run_dir: Path, limit: list[str] | None) -> None:
    """Untimed: the fleet's installed packages into the run's ledger."""
    argv = mt.playbook_argv(run_dir, limit, FACTS, controller=False)
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    mt.close_masters(run_dir / "cp")
    if proc.returncode != 0:
        mt.fail(f"recording the fleet's packages failed:\n{mt.tail(proc.stdout + proc.stderr)}")


def check_run(url: str, exposed: list[str]) -> str:
    """'' if the ledger's newest run succeeded with a package change on exactly the exposed
    hosts, else what is wrong."""
    from milepost.errors import MilepostError
    from milepost.ledger import Ledger

    try:
        with Ledger.open(url) as ledger:
            newest = ledger.runs(limit=1)
            detail = ledger.run(newest[0]["run_id"]) if newest else {}
    except MilepostError as err:
        return f"cannot read the run's ledger: {err}"
    if not detail or detail["status"] != "successful":
        return f"the ledger records the run as {detail.get('status', 'missing')}"
    changed = sorted({r["host"] for r in detail["records"] if r["kind"] == "package_change"})
    if changed != sorted(exposed):
        return f"package changes on {', '.join(changed) or 'no host'}, not on {', '.join(exposed)}"
    return ""


def run_once(
    variant: str,
    scenario: str,
    stock: Path,
    run_dir: Path,
    hosts: list[str],
    limit: list[str] | None,
    logs: Path | None,
    label: str,
) -> mt.Run:
    reset = mt.reset_lab()  # untimed
    mt.close_masters(LAB_CONTROL_DIR)
    run_dir.mkdir(parents=True)
    if variant == "emergency":
        env = {**mt.base_env(), **mt.run_env(mt.ANSIBLE_CFG, run_dir)}
        add_advisory(env, scenario)  # untimed
        if scenario == "one-package":
            record_facts(env, run_dir, limit)  # untimed
        argv = [str(EMERGENCY), "--advisory", ADVISORY, "--yes"]
        if limit:
            argv += ["--limit", ",".join(limit)]
        control_dir = LAB_CONTROL_DIR
    else:
        env = {**mt.base_env(), **mt.run_env(stock, run_dir)}
        extra = run_dir / "emergency_vars.json"
        extra.write_text(
            json.dumps(
                {
                    "emergency_patch_advisory": ADVISORY,
                    "emergency_patch_packages": fixed_versions(scenario),
                    "emergency_patch_canary": 1,
                    "preflight_override_window": True,
                    "preflight_override_reason": f"emergency patch {ADVISORY}: bench",
                }
            )
        )
        argv = mt.playbook_argv(run_dir, limit, PLAYBOOK, controller=False)
        argv[1:1] = ["-e", f"@{extra}"]
        control_dir = run_dir / "cp"
    proc, wall, cpu = mt.timed_run(argv, env, control_dir)
    output = mt.keep_log(logs, label, argv, proc)
    if proc.returncode != 0:
        return mt.Run(0, wall, cpu, False, reset, f"exit code {proc.returncode}\n{mt.tail(output)}")
    problem = check_run(env["MILEPOST_LEDGER_URL"], exposed_hosts(scenario, hosts))
    return mt.Run(0, wall, cpu, not problem, reset, problem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=20, help="the first N lab hosts (20)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--scenario", choices=SCENARIOS, default="one-package")
    parser.add_argument("--json", type=Path, help="also write the figures to FILE")
    parser.add_argument("--logs", type=Path, help="keep each run's output in DIR")
    args = parser.parse_args()
    if args.rounds < 1:
        mt.fail("--rounds must be at least 1", 2)
    os.environ["MILEPOST_ROOT"] = str(ROOT)
    hosts, lab_size, _ = mt.lab_hosts(args.hosts, False)
    limit = hosts if len(hosts) < lab_size else None
    stock_variant = mt.build_variants()[0]
    runs: dict[str, list[mt.Run]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="milepost-bench-") as tmp:
        work = Path(tmp)
        stock = mt.write_configs([stock_variant], work / "configs")["stock"]
        mt.adopt_orphans()
        started = datetime.now(UTC).isoformat(timespec="seconds")
        for round_no in range(1, args.rounds + 1):
            for name in VARIANTS:
                label = f"r{round_no}-{name}"
                run = run_once(
                    name, args.scenario, stock, work / label, hosts, limit, args.logs, label
                )
                run.round = round_no
                runs[name].append(run)
                state = f"{run.wall:.1f}s wall, {run.cpu:.1f}s cpu (reset {run.reset:.0f}s)"
                if not run.ok:
                    state += f", FAILED (not counted): {run.error}"
                print(f"round {round_no} {name}: {state}", flush=True)
    exposed = exposed_hosts(args.scenario, hosts)
    print(
        f"\nemergency patch of {ADVISORY} ({args.scenario}: {len(exposed)} of {len(hosts)} lab"
        f" hosts exposed), {args.rounds} interleaved rounds, medians (min-max)"
    )
    summary: dict[str, object] = {
        "benchmark": "emergency_patch",
        "scenario": args.scenario,
        "exposed": exposed,
        "target_speedup": TARGET,
    }
    walls: dict[str, float] = {}
    for name in VARIANTS:
        good = [r for r in runs[name] if r.ok]
        if not good:
            print(f"{name:<10} every run failed")
            continue
        wall = mt.median([r.wall for r in good])
        cpu = mt.median([r.cpu for r in good])
        walls[name] = wall
        lo, hi = min(r.wall for r in good), max(r.wall for r in good)
        print(f"{name:<10} {wall:7.1f} s ({lo:.1f}-{hi:.1f}) wall, {cpu:6.1f} s controller CPU")
        summary[name] = {
            "median_wall_s": wall,
            "median_cpu_s": cpu,
            "runs": [r.__dict__ for r in runs[name]],
        }
    if len(walls) == 2:
        ratio = walls["plain"] / walls["emergency"]
        met = "" if ratio >= TARGET else ": NOT met"
        print(
            f"emergency-patch vs plain ansible-playbook at defaults: {ratio:.2f}x faster"
            f" (target >= {TARGET:g}x{met})"
        )
        summary["speedup"] = ratio
    if args.json:
        summary.update(
            hosts=hosts,
            rounds=args.rounds,
            started_at=started,
            ansible_core=version("ansible-core"),
        )
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if any(not r.ok for rs in runs.values() for r in rs):
        sys.exit(1)


if __name__ == "__main__":
    main()
