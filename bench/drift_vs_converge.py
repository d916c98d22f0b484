"""Drift check against converge: what playbooks/drift.yml (roles/baseline in check mode,
with diffs) costs on N lab hosts beside a converge of the same hosts to the same baseline.
The requirement: over 20 lab hosts, the check must not cost more than the converge.

Variants, each an ansible-playbook run under the real ansible.cfg:

- ``check``: playbooks/drift.yml, the drift check (`milepost drift check` runs it);
- ``converge``: bench/playbooks/baseline_converge.yml, roles/baseline not in check mode
  (remediate.yml's converge play without the RUC source role): the like-for-like converge;
- ``remediate`` (not run unless asked for): playbooks/remediate.yml as `milepost drift
  remediate --full` runs it, the RUC source role, the converge and the verifying check.

`--hosts N` runs on the first N lab hosts in the lab's order (pay-01, acct-01, ingest-01,
...) through --limit; `--limit HOST,HOST` names the hosts instead (to stay off hosts that
others are using).

Every run does the same real work. Before the first round an untimed playbooks/remediate.yml
converges the hosts to their baseline (its own check must find no drift), so later
converges correct only the drift put there for them. Before every timed run, drift is put
on every host over SSH (untimed): a hand edit of the host's /etc/ruc/<package>.conf
(log_level = DEBUG) and an undeclared sudoers drop-in, /etc/sudoers.d/vendor-support. The
run's own ledger must then show exactly those two resources as drift on each host: found
by the check, corrected by the converge (and, for remediate, none left by its check). A
check leaves the drift in place; the converge after it removes it.

The rest is bench/maintain_tuning.py's method, with its helpers: a fresh
MILEPOST_STATE_DIR, SQLite ledger and SSH control directory per run (no run inherits
another's SSH connections); only the ansible-playbook run is timed; the variants run
interleaved (check, converge; check, converge; ...); controller CPU is the user+sys time
of child processes, the SSH control masters included (this process adopts orphans).

Not a test: it prints medians, spreads, time per host and controller CPU of each variant,
and the check/converge ratios. Exit codes: 0 done (whether or not the requirement is met),
1 a run, the warm-up converge or putting drift on a host failed (failed runs are reported
and left out of the figures), 2 bad input or the lab not up.
Usage (after `scripts/lab up --hosts 20`):

    .venv/bin/python bench/drift_vs_converge.py [--hosts 20 | --limit HOST,HOST]
        [--rounds 5] [--variants check,converge,remediate] [--json FILE] [--logs DIR]
        [--dry-run]

`--dry-run` touches no host: it prints the hosts, the drift each gets and the commands a
round runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

# bench/ is on sys.path when this file is run as a script.
import maintain_tuning as mt

from milepost.lab.topology import LabHost

ROOT = mt.ROOT
DRIFT = ROOT / "playbooks" / "drift.yml"
CONVERGE = ROOT / "bench" / "playbooks" / "baseline_converge.yml"
REMEDIATE = ROOT / "playbooks" / "remediate.yml"
SUDOERS_DROPIN = "/etc/sudoers.d/vendor-support"


@dataclass(frozen=True)
class Variant:
    name: str
    playbook: Path
    what: str
    # The drift reports (drift_check records) each host's run must hold: (mode, True: the
    # drift put on the host, False: no drift).
    reports: tuple[tuple[str, bool], ...]

    @property
    def shown(self) -> str:
        return str(self.playbook.relative_to(ROOT))


VARIANTS = (
    Variant("check", DRIFT, "roles/baseline in check mode, with diffs", (("check", True),)),
    Variant("converge", CONVERGE, "roles/baseline, correcting, with diffs", (("converge", True),)),
    Variant(
        "remediate",
        REMEDIATE,
        "RUC source role, roles/baseline correcting, then roles/baseline in check mode",
        (("converge", True), ("check", False)),
    ),
)
DEFAULT_VARIANTS = "check,converge"
WARMUP = Variant("warm-up", REMEDIATE, "converge to the baseline", (("check", False),))


@dataclass(frozen=True)
class Host:
    name: str
    port: int
    package: str  # the host's RUC package, whose /etc/ruc/<package>.conf gets the drift

    @property
    def conf(self) -> str:
        return f"/etc/ruc/{self.package}.conf"

    def drift(self) -> dict[str, str]:
        """The drift put on this host: resource name -> the shell command (as root) that
        puts it there and fails if it is not there afterwards."""
        return {
            f"file:{self.conf}": (
                f'sed -i "s/^# log_level = INFO/log_level = DEBUG/" {self.conf}'
                f' && grep -q "^log_level = DEBUG" {self.conf}'
            ),
            f"sudoers:{SUDOERS_DROPIN}": (
                f'echo "ops ALL=(root) NOPASSWD: /usr/bin/tail" > {SUDOERS_DROPIN}'
                f" && chmod 0440 {SUDOERS_DROPIN}"
            ),
        }

    def command(self) -> str:
        return "sudo sh -c " + shlex.quote(" && ".join(self.drift().values()))


@dataclass
class Run:
    round: int
    wall: float
    cpu: float
    ok: bool
    inject: float = 0.0  # seconds putting drift on the hosts took before the run (untimed)
    error: str = ""


@dataclass
class Figures:
    variant: Variant
    runs: list[Run] = field(default_factory=list)

    @property
    def good(self) -> list[Run]:
        return [r for r in self.runs if r.ok]


# ---------------------------------------------------------------- hosts


def to_host(lab: LabHost) -> Host:
    from milepost.errors import MilepostError
    from milepost.lab.ruc_packages import package_for_group

    try:
        return Host(lab.name, lab.port, package_for_group(lab.group).name)
    except MilepostError as err:
        mt.fail(str(err), 2)


def select_hosts(args: argparse.Namespace) -> tuple[list[Host], int, str]:
    """The hosts to run on, the lab's size and where the names came from: the first
    --hosts lab hosts, or the lab hosts --limit names (in the order given)."""
    from milepost.lab.fleet import load_hosts
    from milepost.lab.topology import MAX_HOSTS, plan

    if not args.limit:
        names, size, source = mt.lab_hosts(args.hosts, args.dry_run)
        running = source == "the running lab"  # else a dry run's names, from the plan
        known = {h.name: h for h in (load_hosts() if running else plan(args.hosts))}
        return [to_host(known[n]) for n in names], size, source
    names = list(dict.fromkeys(n.strip() for n in args.limit.split(",") if n.strip()))
    lab = load_hosts()
    source = "the running lab"
    if not lab or not mt.INVENTORY.is_file():
        if not args.dry_run:
            mt.fail("the lab is not up: run `scripts/lab up --hosts 20`", 2)
        lab, source = plan(MAX_HOSTS), "the lab's plan (the lab is not up)"
    known = {h.name: h for h in lab}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        mt.fail(
            f"--limit: no lab host {', '.join(unknown) or '(none given)'}: choose from "
            + ", ".join(known),
            2,
        )
    return [to_host(known[n]) for n in names], len(lab), source


def ssh_argv(host: Host, command: str) -> list[str]:
    from milepost.lab.fleet import ssh_argv as lab_ssh_argv

    return lab_ssh_argv(host.port, command, connect_timeout=10)


def put_drift(hosts: list[Host]) -> float:
    """Put the drift on every host (in parallel); seconds it took. Exit 1 if a host fails."""

    def one(host: Host) -> str:
        try:
            proc = subprocess.run(
                ssh_argv(host, host.command()),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"{host.name}: timed out"
        if proc.returncode != 0:
            return f"{host.name}: exit code {proc.returncode}: {mt.tail(proc.stderr, 3)}"
        return ""

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        problems = [p for p in pool.map(one, hosts) if p]
    if problems:
        mt.fail("cannot put drift on the lab hosts: " + "; ".join(problems))
    return time.perf_counter() - start


# ---------------------------------------------------------------- one run


def check_ledger(url: str, hosts: list[Host], variant: Variant) -> str:
    """'' if the run's ledger holds one successful run with the drift reports ``variant``
    must leave on every host, else what is wrong."""
    detail, problem = mt.the_run(url)
    if problem:
        return problem
    found: dict[tuple[str, str], set[str]] = {}
    for record in detail["records"]:
        if record["kind"] == "drift_check":
            body = record["body"]
            drifted = {str(d.get("resource")) for d in body.get("drifted") or ()}
            found[(record["host"], str(body.get("mode")))] = drifted
    problems = []
    for host in hosts:
        for mode, drift in variant.reports:
            got = found.get((host.name, mode))
            want = set(host.drift()) if drift else set()
            if got is None:
                problems.append(f"no {mode} drift report from {host.name}")
            elif got != want:
                problems.append(
                    f"{host.name}'s {mode} drift report lists"
                    f" {', '.join(sorted(got)) or 'no drift'},"
                    f" not {', '.join(sorted(want)) or 'no drift'}"
                )
    return "; ".join(problems)


def run_once(
    variant: Variant,
    run_dir: Path,
    hosts: list[Host],
    limit: list[str] | None,
    logs: Path | None,
    label: str,
    inject: bool = True,
) -> Run:
    injected = put_drift(hosts) if inject else 0.0  # untimed
    run_dir.mkdir(parents=True)
    env = {**mt.base_env(), **mt.run_env(mt.ANSIBLE_CFG, run_dir)}
    argv = mt.playbook_argv(run_dir, limit, variant.playbook, controller=False)
    proc, wall, cpu = mt.timed_run(argv, env, run_dir / "cp")
    output = mt.keep_log(logs, label, argv, proc)
    if proc.returncode != 0:
        error = f"exit code {proc.returncode}\n{mt.tail(output)}"
        return Run(0, wall, cpu, False, injected, error)
    problem = check_ledger(env["MILEPOST_LEDGER_URL"], hosts, variant)
    return Run(0, wall, cpu, not problem, injected, problem)


# ---------------------------------------------------------------- dry run


def dry_run(
    variants: list[Variant],
    hosts: list[Host],
    source: str,
    limit: list[str] | None,
    args: argparse.Namespace,
    work: Path,
) -> None:
    print("drift_vs_converge dry run: nothing below is run, no lab host is touched.")
    print(f"hosts: {len(hosts)} from {source}: {', '.join(h.name for h in hosts)}")
    print(f"rounds: {args.rounds}, each: " + ", ".join(v.name for v in variants))
    for v in variants:
        print(f"  {v.name:<10} {v.shown}: {v.what}")
    print(f"ansible.cfg: {mt.ANSIBLE_CFG} (unchanged, for every run)")

    def command(variant: Variant, label: str) -> str:
        run_dir = work / label
        env = mt.run_env(mt.ANSIBLE_CFG, run_dir)
        argv = mt.playbook_argv(run_dir, limit, variant.playbook, controller=False)
        return (
            f"cd {shlex.quote(str(ROOT))} && "
            + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
            + " "
            + shlex.join(argv)
        )

    print(f"\n== once, untimed: the warm-up converge ({WARMUP.shown})")
    print(command(WARMUP, "warmup"))
    print("checked: exit code 0; its check finds no drift on any host")
    example = hosts[0]
    print(f"\n== before every timed run, untimed: drift on each host, e.g. {example.name}")
    for resource in example.drift():
        print(f"   {resource}")
    argv = ssh_argv(example, example.command())
    print(f"{shlex.join(argv[:-1])} \\\n    {argv[-1]}")
    print("\n== the timed runs of round 1 (r<round>-<variant>)")
    for v in variants:
        print(command(v, f"r1-{v.name}"))
        wants = " and ".join(
            f"a {mode} drift report listing " + ("those two resources" if drift else "no drift")
            for mode, drift in v.reports
        )
        print(f"checked: exit code 0; one successful run in its ledger, with {wants} on each host")
    print("untimed after each: ssh -O exit -o ControlPath=<socket> lab, for each socket in cp/")
    print("(ANSIBLE_* variables of the caller's environment are removed from every run)")


# ---------------------------------------------------------------- report


def report(figures: list[Figures], hosts: int, rounds: int) -> dict[str, Any]:
    print(
        f"\ndrift check against converge (roles/baseline) on {hosts} lab host(s),"
        f" {rounds} interleaved rounds, medians (min-max)"
    )
    print(f"{'variant':<10} {'playbook':<38} {'wall s':>20} {'cpu s':>7} {'s/host':>7}")
    rows: dict[str, dict[str, Any]] = {}
    for f in figures:
        v = f.variant
        walls = [r.wall for r in f.good]
        cpus = [r.cpu for r in f.good]
        failed = len(f.runs) - len(walls)
        row: dict[str, Any] = {
            "name": v.name,
            "playbook": v.shown,
            "runs": [r.__dict__ for r in f.runs],
            "failed_runs": failed,
        }
        rows[v.name] = row
        if not walls:
            print(f"{v.name:<10} {v.shown:<38} {'every run failed':>20}")
            continue
        wall, cpu = mt.median(walls), mt.median(cpus)
        row.update(
            median_wall_s=wall,
            min_wall_s=min(walls),
            max_wall_s=max(walls),
            median_cpu_s=cpu,
            min_cpu_s=min(cpus),
            max_cpu_s=max(cpus),
            s_per_host=wall / hosts,
        )
        spread = f"{wall:.1f} ({min(walls):.1f}-{max(walls):.1f})"
        print(
            f"{v.name:<10} {v.shown:<38} {spread:>20} {cpu:7.1f} {wall / hosts:7.2f}"
            + (f"  ({failed} failed run(s) left out)" if failed else "")
        )
    summary: dict[str, Any] = {"variants": list(rows.values())}
    check = rows.get("check", {})
    for other in ("converge", "remediate"):
        against = rows.get(other, {})
        if "median_wall_s" not in check or "median_wall_s" not in against:
            continue
        wall = check["median_wall_s"] / against["median_wall_s"]
        cpu = check["median_cpu_s"] / against["median_cpu_s"]
        met = wall <= 1.0
        print(
            f"check / {other}: wall {wall:.2f}, controller CPU {cpu:.2f}: the check costs"
            + (" no more than" if met else " MORE than")
            + f" the {other} run"
            + (" (requirement met)" if other == "converge" and met else "")
            + (" (requirement NOT met)" if other == "converge" and not met else "")
        )
        summary[f"check_vs_{other}"] = {"wall": wall, "cpu": cpu, "check_costs_no_more": met}
    return summary


# ---------------------------------------------------------------- main


def select(wanted: str) -> list[Variant]:
    by_name = {v.name: v for v in VARIANTS}
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        mt.fail(
            f"unknown variant(s) {', '.join(unknown) or '(none given)'}: choose from "
            + ", ".join(by_name),
            2,
        )
    return [v for v in VARIANTS if v.name in names]


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Cost of the drift check (playbooks/drift.yml) beside a converge of the"
        " same lab hosts to their baseline."
    )
    parser.add_argument("--hosts", type=int, default=20, help="the first N lab hosts (20)")
    parser.add_argument(
        "--limit", metavar="HOST,HOST", help="these lab hosts instead of the first --hosts"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument(
        "--variants",
        default=DEFAULT_VARIANTS,
        help=f"a comma-separated subset of check,converge,remediate ({DEFAULT_VARIANTS})",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to FILE")
    parser.add_argument("--logs", type=Path, help="keep each run's output in DIR")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = parser.parse_args()
    if args.rounds < 1:
        mt.fail("--rounds must be at least 1", 2)
    os.environ["MILEPOST_ROOT"] = str(ROOT)
    variants = select(args.variants)
    hosts, lab_size, source = select_hosts(args)
    names = [h.name for h in hosts]
    limit = names if len(hosts) < lab_size else None

    with tempfile.TemporaryDirectory(prefix="milepost-bench-") as tmp:
        work = Path(tmp)
        if args.dry_run:
            dry_run(variants, hosts, source, limit, args, work)
            return
        if not mt.adopt_orphans():
            print("note: cannot adopt orphans here: SSH masters' CPU is not counted")
        started = datetime.now(UTC).isoformat(timespec="seconds")
        warm = run_once(WARMUP, work / "warmup", hosts, limit, args.logs, "warmup", False)
        if not warm.ok:
            mt.fail(f"the warm-up converge ({WARMUP.shown}) failed: {warm.error}")
        print(f"warm-up converge: {warm.wall:.1f}s wall, untimed", flush=True)
        figures = [Figures(v) for v in variants]
        for round_no in range(1, args.rounds + 1):
            for f in figures:
                v = f.variant
                label = f"r{round_no}-{v.name}"
                run = run_once(v, work / label, hosts, limit, args.logs, label)
                run.round = round_no
                f.runs.append(run)
                state = f"{run.wall:.1f}s wall, {run.cpu:.1f}s cpu"
                state += f" (drift put on the hosts in {run.inject:.1f}s, untimed)"
                if not run.ok:
                    state += f", FAILED (not counted): {run.error}"
                print(f"round {round_no} {v.name}: {state}", flush=True)
    summary = report(figures, len(hosts), args.rounds)
    if args.json:
        summary.update(
            benchmark="drift_vs_converge",
            hosts=names,
            rounds=args.rounds,
            drift=["file:/etc/ruc/<package>.conf", f"sudoers:{SUDOERS_DROPIN}"],
            started_at=started,
            ansible_core=version("ansible-core"),
        )
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if any(not r.ok for f in figures for r in f.runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
