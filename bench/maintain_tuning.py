"""Maintenance cycle speed: playbooks/maintain.yml over N lab hosts under stock Ansible
settings, then with each tuning setting of ansible.cfg added one at a time, up to the real
ansible.cfg.

Variants, read from ansible.cfg (configparser), never hard-coded:

- ``stock``: a generated ansible.cfg holding only what Milepost needs to work (the plugin,
  role and inventory paths made absolute, callbacks_enabled, host_key_checking,
  interpreter_python, the inventory's unparsed_is_failed) and the settings that only shape
  what a run prints or leaves behind (callback_result_format, retry_files_enabled, nocows):
  every setting that can change speed is Ansible's default (forks 5, no pipelining,
  Ansible's own ssh_args);
- ``+<key>``: the variant before it plus the next speed setting of ansible.cfg, in file
  order;
- ``tuned``: the last setting added, which gives the real ansible.cfg: that file is used
  unchanged.

`--hosts N` runs on the first N lab hosts in the lab's order (pay-01, acct-01, ingest-01,
...) through --limit (with localhost, for the playbook's controller plays).

Every run does the same real work: before it, `scripts/lab reset` (untimed) puts every lab
host back on its old RUC release, and the run's own ledger must show a package change on
each host it ran on. Each run has a fresh MILEPOST_STATE_DIR, a fresh SQLite ledger and a
fresh SSH control directory (so no run inherits another's SSH connections); only the
ansible-playbook run is timed. Variants run interleaved (A B C, A B C, ...) after an
untimed warm-up run (`--warmup`), so machine noise hits them alike.

Controller CPU is the user+sys time of child processes (resource.getrusage). This process
adopts orphaned descendants (Linux PR_SET_CHILD_SUBREAPER), so the SSH control masters that
outlive ansible-playbook are counted too once closed after the run.

Not a test: it prints medians, spreads, time per host and each variant against stock (and
against the variant before). Exit codes: 0 done, 1 a run or the lab reset failed (failed
runs are reported and left out of the figures), 2 bad input or the lab not up.
Usage (after `scripts/lab up --hosts 20`):

    .venv/bin/python bench/maintain_tuning.py [--hosts 20] [--rounds 5]
        [--variants stock,tuned] [--json FILE] [--logs DIR] [--dry-run]

`--dry-run` touches no host: it prints the variants, their config files (and what
`ansible-config dump --only-changed` reads from each) and the commands a round runs.
"""

from __future__ import annotations

import argparse
import configparser
import ctypes
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ANSIBLE_CFG = ROOT / "ansible.cfg"
PLAYBOOK = ROOT / "playbooks" / "maintain.yml"
INVENTORY = ROOT / "inventory" / "lab" / "hosts.yml"
LAB = ROOT / "scripts" / "lab"
TARGET = 3.0  # tuned must be at least this many times faster than stock

# Kept in every variant: what Milepost needs to work at all, and what does not touch speed.
# Every other setting of ansible.cfg is a tuning step.
NEEDED = {
    "inventory",
    "roles_path",
    "library",
    "module_utils",
    "filter_plugins",
    "lookup_plugins",
    "callback_plugins",
    "action_plugins",
    "callbacks_enabled",
    "host_key_checking",
    "interpreter_python",
    # Correctness, not tuning ([inventory]): a malformed inventory fails the run.
    "unparsed_is_failed",
    # What a run prints or leaves behind, not how fast it runs: no variant is timed for them.
    "callback_result_format",
    "retry_files_enabled",
    "nocows",
}
# Path settings, relative to ansible.cfg's directory, and how Ansible splits their lists.
PATH_KEYS = {
    "inventory": ",",
    "roles_path": ":",
    "library": ":",
    "module_utils": ":",
    "filter_plugins": ":",
    "lookup_plugins": ":",
    "callback_plugins": ":",
    "action_plugins": ":",
}
PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    value: str

    def __str__(self) -> str:
        return f"[{self.section}] {self.key} = {self.value}"


@dataclass(frozen=True)
class Variant:
    name: str
    adds: Setting | None  # the setting this step adds to the one before (None: stock)
    settings: tuple[Setting, ...]  # everything its config file sets
    real: bool = False  # True: the real ansible.cfg is used as it is

    @property
    def slug(self) -> str:
        return self.name.lstrip("+").replace(".", "-")


@dataclass
class Run:
    round: int
    wall: float
    cpu: float
    ok: bool
    reset: float = 0.0  # seconds `scripts/lab reset` took before the run (untimed)
    error: str = ""


@dataclass
class Figures:
    variant: Variant
    runs: list[Run] = field(default_factory=list)

    @property
    def good(self) -> list[Run]:
        return [r for r in self.runs if r.ok]


def fail(message: str, code: int = 1) -> NoReturn:
    # Named for the benchmark being run: the others import these helpers.
    print(f"{Path(sys.argv[0]).stem}: {message}", file=sys.stderr)
    sys.exit(code)


# ---------------------------------------------------------------- variants


def read_settings(path: Path) -> list[Setting]:
    """Every setting of an ansible.cfg, in file order, values raw (as Ansible reads them:
    ';' starts an inline comment; interpolation is left to Ansible)."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    try:
        parser.read_string(path.read_text(), source=str(path))
    except (OSError, configparser.Error) as err:
        fail(f"cannot read {path}: {err}", 2)
    return [
        Setting(section, key, value)
        for section in parser.sections()
        for key, value in parser.items(section, raw=True)
    ]


def absolute(setting: Setting) -> Setting:
    """A path setting made absolute (relative paths are relative to ansible.cfg's directory)."""
    sep = PATH_KEYS.get(setting.key)
    if sep is None:
        return setting
    parts = []
    for part in setting.value.split(sep):
        part = part.strip()
        if part and not part.startswith(("/", "~", "$")):
            part = str(ANSIBLE_CFG.parent / part)
        parts.append(part)
    return Setting(setting.section, setting.key, sep.join(parts))


def build_variants(path: Path = ANSIBLE_CFG) -> list[Variant]:
    settings = read_settings(path)
    kept = [absolute(s) for s in settings if s.key in NEEDED]
    steps = [s for s in settings if s.key not in NEEDED]
    variants = [Variant("stock", None, tuple(kept))]
    used = {"stock", "tuned"}
    added: set[Setting] = set()
    for i, step in enumerate(steps):
        added.add(step)
        # Keep the file's order: the needed settings and the steps added so far.
        content = tuple(absolute(s) for s in settings if s.key in NEEDED or s in added)
        if i == len(steps) - 1:
            variants.append(Variant("tuned", step, content, real=True))
            break
        name = f"+{step.key}"
        if name in used:
            name = f"+{step.section}.{step.key}"
        used.add(name)
        variants.append(Variant(name, step, content))
    if not steps:
        variants.append(Variant("tuned", None, tuple(kept), real=True))
    return variants


def config_text(variant: Variant) -> str:
    upto = f"ansible.cfg's speed settings up to {variant.adds.key}" if variant.adds else "none"
    lines = [
        f"# Written by bench/maintain_tuning.py, variant {variant.name}: what Milepost needs",
        "# to work (absolute paths) and its output settings; speed settings:",
        f"# {upto}; the rest is Ansible's defaults.",
    ]
    section = None
    for s in variant.settings:
        if s.section != section:
            section = s.section
            lines.append(f"[{section}]")
        lines.append(f"{s.key} = {s.value}")
    return "\n".join(lines) + "\n"


def write_configs(variants: list[Variant], directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, variant in enumerate(variants):
        if variant.real:
            paths[variant.name] = ANSIBLE_CFG
            continue
        path = directory / f"{i:02d}-{variant.slug}.cfg"
        path.write_text(config_text(variant))
        paths[variant.name] = path
    return paths


def describe(variants: list[Variant]) -> dict[str, str]:
    """What each variant sets beyond the one before it in ``variants`` (a subset skips
    steps, so one variant may add several settings)."""
    found: dict[str, str] = {}
    before: set[Setting] | None = None
    for v in variants:
        base = before if before is not None else {s for s in v.settings if s.key in NEEDED}
        added = "; ".join(str(s) for s in v.settings if s not in base)
        if not added:
            added = "what Milepost needs and its output settings; speed at Ansible's defaults"
        found[v.name] = added + (" (the real ansible.cfg)" if v.real else "")
        before = set(v.settings)
    return found


def select(variants: list[Variant], wanted: str | None) -> list[Variant]:
    if not wanted:
        return variants
    by_name = {v.name.lstrip("+"): v for v in variants}
    names = [w.strip().lstrip("+") for w in wanted.split(",") if w.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        fail(
            f"unknown variant(s) {', '.join(unknown) or '(none given)'}: choose from "
            + ", ".join(v.name for v in variants),
            2,
        )
    return [v for v in variants if v.name.lstrip("+") in names]


# ---------------------------------------------------------------- one run


def base_env() -> dict[str, str]:
    """The caller's environment without ANSIBLE_* variables (they would override the config
    being measured)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["MILEPOST_ROOT"] = str(ROOT)
    env["PATH"] = f"{BIN}:{os.environ.get('PATH', '')}"
    return env


def run_env(config: Path, run_dir: Path) -> dict[str, str]:
    return {
        "ANSIBLE_CONFIG": str(config),
        "MILEPOST_STATE_DIR": str(run_dir / "state"),
        "MILEPOST_LEDGER_URL": f"sqlite:///{run_dir / 'ledger.sqlite'}",
    }


def playbook_argv(
    run_dir: Path,
    limit: list[str] | None,
    playbook: Path = PLAYBOOK,
    controller: bool = True,
) -> list[str]:
    argv = [
        str(BIN / "ansible-playbook"),
        "-i",
        str(INVENTORY),
        # A control directory of its own: the run starts without SSH connections open.
        "-e",
        f"ansible_control_path_dir={run_dir / 'cp'}",
    ]
    if limit:
        # localhost too (controller): maintain.yml's controller plays (inventory check,
        # vendor interfaces, version table) are part of the cycle.
        argv += ["--limit", ",".join(["localhost", *limit] if controller else limit)]
    return [*argv, str(playbook)]


def adopt_orphans() -> bool:
    """Become the reaper of orphaned descendants (the SSH control masters), so their CPU
    time is counted in RUSAGE_CHILDREN when they are reaped here."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def reap(seconds: float) -> None:
    """Wait for adopted orphans to exit, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)


def close_masters(control_dir: Path) -> None:
    if not control_dir.is_dir():
        return
    for sock in control_dir.iterdir():
        subprocess.run(
            ["ssh", "-O", "exit", "-o", f"ControlPath={sock}", "lab"],
            capture_output=True,
            check=False,
            timeout=15,
        )


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def reset_lab() -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [str(LAB), "reset"], capture_output=True, text=True, env=base_env(), check=False
    )
    if proc.returncode != 0:
        fail(f"`scripts/lab reset` failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    return time.perf_counter() - start


def the_run(url: str) -> tuple[dict[str, Any], str]:
    """The only run in a run's own ledger, and '' if it was recorded as successful; else
    ({}, what is wrong)."""
    from milepost.errors import MilepostError
    from milepost.ledger import Ledger

    try:
        ledger = Ledger.open(url)
        try:
            runs = ledger.runs()
            if len(runs) != 1:
                return {}, f"the ledger holds {len(runs)} runs, not 1"
            detail = ledger.run(runs[0]["run_id"])
        finally:
            ledger.close()
    except MilepostError as err:
        return {}, f"cannot read the run's ledger: {err}"
    if detail["status"] != "successful":
        return {}, f"the ledger records the run as {detail['status']}"
    return detail, ""


def check_ledger(url: str, hosts: list[str]) -> str:
    """'' if the run's ledger shows one successful run with a package change on every host,
    else what is missing."""
    detail, problem = the_run(url)
    if problem:
        return problem
    changed = {r["host"] for r in detail["records"] if r["kind"] == "package_change"}
    missed = [h for h in hosts if h not in changed]
    if missed:
        return f"no package change recorded on {', '.join(missed)}"
    return ""


def tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def timed_run(
    argv: list[str], env: dict[str, str], control_dir: Path
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run ``argv`` from the checkout: its result, wall seconds and controller CPU seconds
    (the SSH control masters in ``control_dir`` included: they are closed after the run,
    untimed, and their CPU counted once reaped)."""
    reap(0)  # anything orphaned before now is not this run's
    before = cpu_seconds()
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        cpu = cpu_seconds() - before
    finally:
        close_masters(control_dir)
    closed = cpu_seconds()
    reap(15)
    cpu += cpu_seconds() - closed  # the SSH masters, not the `ssh -O exit` that closed them
    return proc, wall, cpu


def keep_log(
    logs: Path | None, label: str, argv: list[str], proc: subprocess.CompletedProcess[str]
) -> str:
    """A run's output; kept in ``logs``/<label>.log when ``logs`` is set."""
    output = proc.stdout + proc.stderr
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{label}.log").write_text(f"$ {shlex.join(argv)}\n{output}")
    return output


def run_once(
    variant: Variant,
    config: Path,
    run_dir: Path,
    hosts: list[str],
    limit: list[str] | None,
    logs: Path | None,
    label: str,
) -> Run:
    reset = reset_lab()  # untimed
    run_dir.mkdir(parents=True)
    env = {**base_env(), **run_env(config, run_dir)}
    argv = playbook_argv(run_dir, limit)
    proc, wall, cpu = timed_run(argv, env, run_dir / "cp")
    output = keep_log(logs, label, argv, proc)
    if proc.returncode != 0:
        return Run(0, wall, cpu, False, reset, f"exit code {proc.returncode}\n{tail(output)}")
    problem = check_ledger(env["MILEPOST_LEDGER_URL"], hosts)
    return Run(0, wall, cpu, not problem, reset, problem)


# ---------------------------------------------------------------- lab hosts


def lab_hosts(count: int, dry_run: bool) -> tuple[list[str], int, str]:
    """The first ``count`` lab hosts (in the lab's order), the lab's size, and where the
    names came from."""
    from milepost.lab.fleet import load_hosts
    from milepost.lab.topology import MAX_HOSTS, plan

    if not 1 <= count <= MAX_HOSTS:
        fail(f"--hosts must be between 1 and {MAX_HOSTS}, not {count}", 2)
    hosts = [h.name for h in load_hosts()]
    if dry_run and (len(hosts) < count or not INVENTORY.is_file()):
        why = f"the lab has {len(hosts)} hosts" if hosts else "the lab is not up"
        return [h.name for h in plan(count)], count, f"the lab's plan ({why})"
    if not INVENTORY.is_file() or not hosts:
        fail(f"the lab is not up: run `scripts/lab up --hosts {count}`", 2)
    if len(hosts) < count:
        fail(f"the lab has {len(hosts)} hosts, not {count}: `scripts/lab up --hosts {count}`", 2)
    return hosts[:count], len(hosts), "the running lab"


# ---------------------------------------------------------------- dry run


def ansible_config_lines(config: Path) -> list[str]:
    """What Ansible reads from a config file: `ansible-config dump --only-changed -t all`,
    one line per setting, named by plugin, the file's path shown as `cfg`."""
    proc = subprocess.run(
        [str(BIN / "ansible-config"), "dump", "--only-changed", "-t", "all"],
        capture_output=True,
        text=True,
        env={**base_env(), "ANSIBLE_CONFIG": str(config)},
        check=False,
    )
    if proc.returncode != 0:
        fail(f"ansible-config cannot read {config}: {tail(proc.stderr, 5)}")
    raw = proc.stdout.splitlines()
    found, kind, plugin = [], "", ""
    for i, line in enumerate(raw):
        underline = raw[i + 1] if i + 1 < len(raw) else ""
        if underline and set(underline) == {"="}:
            kind, plugin = line.rstrip(":").lower(), ""
        elif underline and set(underline) == {"_"}:
            plugin = line.rstrip(":")
        elif "(" in line and ") = " in line:
            name = f"{kind} {plugin}: " if plugin else ""
            found.append(name + line.replace(f"({config})", "(cfg)"))
    return found


def dry_run(
    variants: list[Variant],
    configs: dict[str, Path],
    hosts: list[str],
    source: str,
    limit: list[str] | None,
    args: argparse.Namespace,
    work: Path,
) -> None:
    print("maintain_tuning dry run: nothing below is run, no lab host is touched.")
    print(f"hosts: {len(hosts)} from {source}: {', '.join(hosts)}")
    print(f"rounds: {args.rounds} interleaved, after {args.warmup} untimed warm-up run(s)")
    print("variants (each adds speed settings of ansible.cfg to the one before):")
    for name, what in describe(variants).items():
        print(f"  {name:<24} {what}")
    previous: list[str] = []
    for v in variants:
        config = configs[v.name]
        print(f"\n== {v.name}: {config}{' (unchanged)' if v.real else ''}")
        print(config.read_text().rstrip())
        lines = ansible_config_lines(config)
        new = [line for line in lines if line not in previous]
        gone = [line for line in previous if line not in lines]
        if previous:  # the file's own name changes every time
            new = [line for line in new if not line.startswith("CONFIG_FILE(")]
            gone = [line for line in gone if not line.startswith("CONFIG_FILE(")]
        head = "reads" if v.name == variants[0].name else "reads beyond the variant before"
        print(f"-- ansible-config dump --only-changed -t all {head}:")
        for line in new or ["(nothing new)"]:
            print(f"   {line}")
        for line in gone:
            print(f"   no longer: {line}")
        previous = lines
    example = work / f"r1-{variants[0].slug}"
    env = run_env(configs[variants[0].name], example)
    print("\n== every timed run (round 1 of the first variant shown; r<round>-<variant>):")
    print(f"untimed: {LAB} reset")
    print(
        "timed:   cd "
        + shlex.quote(str(ROOT))
        + " && "
        + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        + " "
        + shlex.join(playbook_argv(example, limit))
    )
    print(
        f"checked: exit code 0; the run's ledger holds one successful run with a package"
        f" change on each of the {len(hosts)} hosts"
    )
    print(f"untimed: ssh -O exit -o ControlPath=<socket> lab, for each socket in {example / 'cp'}")
    print("(ANSIBLE_* variables of the caller's environment are removed from every run)")


# ---------------------------------------------------------------- report


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(figures: list[Figures], hosts: int, rounds: int) -> dict[str, Any]:
    print(
        f"\nmaintenance cycle (playbooks/maintain.yml) on {hosts} lab host(s),"
        f" {rounds} interleaved rounds, medians (min-max)"
    )
    described = describe([f.variant for f in figures])
    for name, what in described.items():
        print(f"  {name:<24} {what}")
    print(
        f"{'variant':<24} {'wall s':>22} {'cpu s':>8} {'s/host':>7} {'vs stock':>9}"
        f" {'vs previous':>12}"
    )
    stock = next((f for f in figures if f.variant.name == "stock" and f.good), None)
    stock_wall = median([r.wall for r in stock.good]) if stock else None
    rows = []
    prev_wall: float | None = None
    for f in figures:
        walls = [r.wall for r in f.good]
        cpus = [r.cpu for r in f.good]
        failed = len(f.runs) - len(walls)
        row: dict[str, Any] = {
            "name": f.variant.name,
            "adds": described[f.variant.name],
            "real_ansible_cfg": f.variant.real,
            "settings": [str(s) for s in f.variant.settings],
            "runs": [r.__dict__ for r in f.runs],
            "failed_runs": failed,
        }
        if not walls:
            print(f"{f.variant.name:<24} {'every run failed':>22}")
            rows.append(row)
            prev_wall = None
            continue
        wall, cpu = median(walls), median(cpus)
        vs_stock = stock_wall / wall if stock_wall else None
        vs_prev = prev_wall / wall if prev_wall else None
        row.update(
            median_wall_s=wall,
            min_wall_s=min(walls),
            max_wall_s=max(walls),
            median_cpu_s=cpu,
            s_per_host=wall / hosts,
            speedup_vs_stock=vs_stock,
            speedup_vs_previous=vs_prev,
        )
        rows.append(row)
        spread = f"{wall:.1f} ({min(walls):.1f}-{max(walls):.1f})"
        print(
            f"{f.variant.name:<24} {spread:>22} {cpu:8.1f} {wall / hosts:7.2f}"
            f" {f'{vs_stock:.2f}x' if vs_stock else '-':>9}"
            f" {f'{vs_prev:.2f}x' if vs_prev else '-':>12}"
            + (f"  ({failed} failed run(s) left out)" if failed else "")
        )
        prev_wall = wall
    summary: dict[str, Any] = {"variants": rows, "target_speedup": TARGET}
    tuned = next((r for r in rows if r["name"] == "tuned"), None)
    if tuned and tuned.get("speedup_vs_stock"):
        ratio = tuned["speedup_vs_stock"]
        word = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
        met = "" if ratio >= TARGET else ": NOT met"
        print(f"tuned vs stock: {word} (target >= {TARGET:g}x{met})")
        summary["tuned_vs_stock"] = ratio
    return summary


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Speed of playbooks/maintain.yml on the lab: stock Ansible settings, then"
        " ansible.cfg's settings added one at a time."
    )
    parser.add_argument("--hosts", type=int, default=20, help="the first N lab hosts (20)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (1)")
    parser.add_argument("--variants", help="a comma-separated subset, e.g. stock,tuned")
    parser.add_argument("--json", type=Path, help="also write the figures to FILE")
    parser.add_argument("--logs", type=Path, help="keep each run's output in DIR")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = parser.parse_args()
    if args.rounds < 1 or args.warmup < 0:
        fail("--rounds must be at least 1 and --warmup at least 0", 2)
    os.environ["MILEPOST_ROOT"] = str(ROOT)
    variants = select(build_variants(), args.variants)
    hosts, lab_size, source = lab_hosts(args.hosts, args.dry_run)
    limit = hosts if len(hosts) < lab_size else None

    with tempfile.TemporaryDirectory(prefix="milepost-bench-") as tmp:
        work = Path(tmp)
        configs = write_configs(variants, work / "configs")
        if args.dry_run:
            dry_run(variants, configs, hosts, source, limit, args, work)
            return
        if not adopt_orphans():
            print("note: cannot adopt orphans here: SSH masters' CPU is not counted")
        started = datetime.now(UTC).isoformat(timespec="seconds")
        for n in range(1, args.warmup + 1):
            last = variants[-1]
            label = f"warmup{n}-{last.slug}"
            run = run_once(last, configs[last.name], work / label, hosts, limit, args.logs, label)
            if not run.ok:
                fail(f"the warm-up run ({last.name}) failed: {run.error}")
            print(f"warm-up {n} ({last.name}): {run.wall:.1f}s wall, untimed", flush=True)
        figures = [Figures(v) for v in variants]
        for round_no in range(1, args.rounds + 1):
            for f in figures:
                v = f.variant
                label = f"r{round_no}-{v.slug}"
                run = run_once(v, configs[v.name], work / label, hosts, limit, args.logs, label)
                run.round = round_no
                f.runs.append(run)
                state = f"{run.wall:.1f}s wall, {run.cpu:.1f}s cpu (reset {run.reset:.0f}s)"
                if not run.ok:
                    state += f", FAILED (not counted): {run.error}"
                print(f"round {round_no} {v.name}: {state}", flush=True)
    summary = report(figures, len(hosts), args.rounds)
    if args.json:
        summary.update(
            benchmark="maintain_tuning",
            playbook="playbooks/maintain.yml",
            hosts=hosts,
            rounds=args.rounds,
            warmup=args.warmup,
            started_at=started,
            ansible_core=version("ansible-core"),
        )
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if any(not r.ok for f in figures for r in f.runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
