"""Maintenance cycle against a baseline commit: `milepost maintain` (playbooks/maintain.yml)
at this checkout beside the same command at an older commit, on the same lab, for a cycle
that changes nothing and for one that updates every host, on 6 and on 20 hosts.

Variants:

- ``this``: this checkout as it is on disk (uncommitted changes included):
  `<ROOT>/.venv/bin/milepost maintain` with MILEPOST_ROOT=<ROOT> and
  ANSIBLE_CONFIG=<ROOT>/ansible.cfg, run from <ROOT>;
- ``baseline``: the commit `--baseline REF` (default 8db1a2e), checked out beside this one
  with `git worktree add --detach <ROOT>/.milepost/bench-baseline <REF>` (reused when it
  is there at that commit and unmodified, else removed and made again). It runs on the same
  virtualenv's Python, `<ROOT>/.venv/bin/python -m milepost.cli maintain`, from the
  worktree, with PYTHONPATH=<worktree>, MILEPOST_ROOT=<worktree> and
  ANSIBLE_CONFIG=<worktree>/ansible.cfg. This checkout's package is an editable install
  (`pip install -e .` in the Makefile): setuptools' finder is appended to sys.meta_path,
  after the PathFinder that searches sys.path, where PYTHONPATH comes before
  site-packages, so `import milepost` gives the worktree's package; the working directory
  (sys.path[0] under `-m`) is the worktree too. The processes a run starts inherit
  PYTHONPATH: ansible-playbook and its callback, the controller-side modules and the QC run
  (`.venv/bin/milepost qc run`, whose sys.path[0] is .venv/bin). Before its first run the
  bench checks that `import milepost` resolves to the worktree in that environment, and
  after every run that the ledger's run_started record names the variant's commit (the
  callback reads it from its own checkout). The lab inventory that `scripts/lab up` writes
  here (inventory/lab/hosts.yml, git-ignored, every path in it absolute) is copied into the
  worktree's inventory/lab/ before each baseline run; the worktree's own group_vars and
  templates sit beside it.

Cycles, each `milepost maintain` with no option (the lab's inventory sets no maintenance
window, so the window check passes):

- ``noop``: every host already current: an unmeasured run of the same variant converges
  the lab first, then the measured run, whose ledger must show no package change;
- ``updating``: `scripts/lab reset` first (unmeasured: every host back on its group's
  oldest RUC release and the base image's OS packages, the RUC package source, host locks
  and apt's lists and downloads removed), then the measured run, whose ledger must show a
  package change on every host.

Sizes (`--sizes 6,20`): `scripts/lab up --hosts N` before each (it removes the hosts beyond
N, or adds new hosts on their initial packages); the lab is left at the last size. Rounds
(`--rounds 5`) are interleaved: each round runs both variants in turn, each its updating
then its no-op cycle, the variants' order swapped every other round.

Every run, measured or not, has a fresh SQLite ledger (MILEPOST_LEDGER_URL) and state
directory (MILEPOST_STATE_DIR: spool, kill switch); ANSIBLE_*, MILEPOST_* and PYTHONPATH of
the caller's environment are not passed on. It must exit 0 and its ledger must show one
successful maintain.yml run; a failed run stops the bench with the tail of its output.

Measures per measured run:

- wall time of the command;
- controller CPU: user+sys time of every descendant (resource.getrusage RUSAGE_CHILDREN):
  milepost, ansible-playbook and its workers, ssh, the QC pytest run. This process adopts
  orphans (PR_SET_CHILD_SUBREAPER), so the SSH control masters in the lab's control
  directory, closed after the run (and before it, so none is inherited), are counted too
  (bench/maintain_tuning.py's method and helpers);
- host CPU: the lab hosts' containers' cgroup CPU accounting (cgroup v1
  cpuacct.usage, cgroup v2 cpu.stat usage_usec), read before and after, summed over the
  hosts (sshd, modules, apt and dpkg, service restarts; and what the hosts run anyway in
  that time). The lab's APT repository server is read the same way and shown apart;
- from the run's ledger (table ledger_records): task results per host (kind task_result,
  host not localhost; max and mean over the hosts), the same without role argument
  checks (validate_argument_spec: the baseline records their successes, this checkout
  does not), module runs per host (results that ran a module on the host: runs_on
  'host' where the result records it; for a ledger without runs_on, by action and status:
  skipped, controller-only actions and the baseline's two tasks delegated to the
  controller, by name, are not module runs), changed results and package changes.

Not a test: it prints, per size and cycle, medians (min-max) of both variants, the ratio
this/baseline, how CPU splits between controller and hosts, and the targets beside them
(no-op cycle on 6 hosts: wall at most 1/3 and controller CPU at most 1/4 of the
baseline's, ratios of medians; updating cycle on 20 hosts: wall at most 1/2; at most 12
task results and 6 module runs per host in a no-op cycle and 16 task results per host in
an updating one, for this checkout at every size, the most any host had in any run).
Exit codes: 0 done (whether or not the targets are met), 1 a run failed, 2 bad input or
the lab could not be brought up.

Usage (the bench brings the lab to each size itself):

    .venv/bin/python bench/cycle.py [--baseline 8db1a2e] [--sizes 6,20] [--rounds 5]
        [--cycles noop,updating] [--json FILE] [--logs DIR] [--dry-run]

`--dry-run` runs no cycle, changes nothing and touches no host (it asks git, `docker
inspect` when a lab is up and, when the worktree is there, where `import milepost` leads
in the baseline's environment): it checks the options, prints the variants, the worktree
and what would be done with it, each variant's command with its directory and
environment, the steps of a round, the cgroup files read and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, NoReturn

import yaml
from maintain_tuning import (
    ROOT,
    adopt_orphans,
    close_masters,
    cpu_seconds,
    fail,
    median,
    reap,
    tail,
)

VENV_BIN = ROOT / ".venv" / "bin"
LAB = ROOT / "scripts" / "lab"
INVENTORY = Path("inventory") / "lab" / "hosts.yml"  # relative to a checkout
WORKTREE = ROOT / ".milepost" / "bench-baseline"
DEFAULT_BASELINE = "8db1a2e"
DEFAULT_SIZES = (6, 20)
VARIANTS = ("this", "baseline")
CYCLES: tuple[str, ...] = ("updating", "noop")  # the order within a variant's turn
SHOWN: tuple[str, ...] = ("noop", "updating")  # the order of the report
CYCLE_NAMES = {"noop": "no-op cycle", "updating": "updating cycle"}
PLAYBOOK = "maintain.yml"
CGROUP = Path("/sys/fs/cgroup")

# Classifying a task result without runs_on (the baseline's): the actions that run no module
# on the host, as this checkout's maintenance_ledger callback classifies them ...
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "callback"))
from maintenance_ledger import CONTROLLER_ACTIONS  # noqa: E402

# ... nor do the baseline's tasks delegated to the controller on a RUC host's behalf
# (delegate_to: localhost, which a result does not record), named as the baseline names
# them (roles/preflight/tasks/main.yml, playbooks/tasks/qc.yml at 8db1a2e); the others it
# delegates are controller actions above.
CONTROLLER_TASKS = frozenset(
    {
        "AUDIT | Check the maintenance window of this host's group on the controller",
        "AUDIT | Run the QC checks of tests/qc on the hosts of this batch",
    }
)
ARGUMENT_CHECK = "validate_argument_spec"
# Per-host counts taken from a run's ledger; "results" etc. as in the module docstring.
COUNTS = (
    "results",
    "results_excl_argument_checks",
    "module_runs",
    "module_runs_classified",
    "changed",
    "skipped",
    "package_changes",
)


@dataclass(frozen=True)
class Target:
    cycle: str
    size: int | None  # None: every size measured
    measure: str  # wall | controller_cpu (this/baseline) | results | module_runs (per host)
    limit: float
    text: str

    @property
    def ratio(self) -> bool:
        return self.measure in ("wall", "controller_cpu")


TARGETS = (
    Target("noop", 6, "wall", 1 / 3, "wall at most 1/3 of the baseline's"),
    Target("noop", 6, "controller_cpu", 1 / 4, "controller CPU at most 1/4 of the baseline's"),
    Target("updating", 20, "wall", 1 / 2, "wall at most 1/2 of the baseline's"),
    Target("noop", None, "results", 12, "at most 12 task results per host"),
    Target("noop", None, "module_runs", 6, "at most 6 module runs per host"),
    Target("updating", None, "results", 16, "at most 16 task results per host"),
)


class Failed(Exception):
    """A run or a step before it failed: the bench stops (exit ``code``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(message, 2)


# ---------------------------------------------------------------- git and the variants


def git(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        fail(f"git {' '.join(args)} failed: {tail(proc.stderr or proc.stdout, 3)}", 2)
    return proc


def resolve_commit(ref: str) -> tuple[str, str]:
    """The full commit id of ``ref`` and its subject; exit 2 if it names no commit."""
    if not ref or ref.startswith("-"):
        fail(f"--baseline must name a commit, not {ref!r}", 2)
    proc = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0:
        fail(f"--baseline {ref}: no such commit in {ROOT}", 2)
    commit = proc.stdout.strip()
    subject = git("log", "-1", "--format=%s", commit).stdout.strip()
    return commit, subject


def head_state() -> tuple[str, int]:
    """This checkout's HEAD and how many tracked files differ from it."""
    head = git("rev-parse", "HEAD").stdout.strip()
    changed = git("status", "--porcelain", "--untracked-files=no").stdout.splitlines()
    return head, len(changed)


def registered_worktrees() -> dict[Path, str]:
    """Worktrees git knows of: path -> HEAD commit ('' when unknown)."""
    found: dict[Path, str] = {}
    path: Path | None = None
    for line in git("worktree", "list", "--porcelain").stdout.splitlines():
        if line.startswith("worktree "):
            path = Path(line.split(" ", 1)[1]).resolve()
            found[path] = ""
        elif line.startswith("HEAD ") and path is not None:
            found[path] = line.split(" ", 1)[1]
    return found


def worktree_state(path: Path, commit: str) -> str:
    """ready | absent | missing (registered, directory gone) | other:<commit> | modified |
    foreign (a directory git does not know as a worktree)."""
    known = registered_worktrees()
    where = path.resolve()
    if not path.exists():
        return "missing" if where in known else "absent"
    if where not in known:
        return "foreign"
    if known[where] != commit:
        return f"other:{known[where][:12]}"
    if git("status", "--porcelain", "--untracked-files=no", cwd=path).stdout.strip():
        return "modified"
    return "ready"


def worktree_plan(path: Path, commit: str) -> list[list[str]]:
    """The git commands that make ``path`` a clean worktree at ``commit``."""
    state = worktree_state(path, commit)
    add = ["git", "-C", str(ROOT), "worktree", "add", "--detach"]
    if state == "ready":
        return []
    if state == "absent":
        return [[*add, str(path), commit]]
    if state == "missing":
        return [[*add, "--force", str(path), commit]]
    if state == "foreign":
        fail(f"{path} exists but is not a worktree of {ROOT}: remove it or move it away", 2)
    # At another commit, or with tracked files changed: the bench's own directory, made again.
    return [
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
        [*add, str(path), commit],
    ]


def ensure_worktree(path: Path, commit: str) -> str:
    steps = worktree_plan(path, commit)
    for argv in steps:
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            fail(f"`{shlex.join(argv)}` failed: {tail(proc.stderr or proc.stdout, 3)}", 2)
    if worktree_state(path, commit) != "ready":
        fail(f"{path} is not a clean worktree at {commit[:12]} after {len(steps)} step(s)", 2)
    return "made" if steps else "reused"


@dataclass(frozen=True)
class Variant:
    name: str
    root: Path  # the checkout it runs from
    commit: str
    pythonpath: bool  # its package comes first on sys.path through PYTHONPATH

    def argv(self) -> list[str]:
        if self.pythonpath:
            return [str(VENV_BIN / "python"), "-m", "milepost.cli", "maintain"]
        return [str(VENV_BIN / "milepost"), "maintain"]

    def env_vars(self, run_dir: Path) -> dict[str, str]:
        """What the bench sets for a run (on top of the caller's environment without
        ANSIBLE_*, MILEPOST_* and PYTHONPATH)."""
        found = {
            "MILEPOST_ROOT": str(self.root),
            "ANSIBLE_CONFIG": str(self.root / "ansible.cfg"),
            "MILEPOST_LEDGER_URL": f"sqlite:///{run_dir / 'ledger.sqlite'}",
            "MILEPOST_STATE_DIR": str(run_dir / "state"),
        }
        if self.pythonpath:
            found["PYTHONPATH"] = str(self.root)
        return found

    def env(self, run_dir: Path) -> dict[str, str]:
        return {**clean_env(), **self.env_vars(run_dir)}


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANSIBLE_", "MILEPOST_")) and k != "PYTHONPATH"
    }
    env["PATH"] = f"{VENV_BIN}:{os.environ.get('PATH', os.defpath)}"
    return env


def lab_env() -> dict[str, str]:
    """scripts/lab's environment: the caller's (its MILEPOST_* name the lab's state), no
    ANSIBLE_* or PYTHONPATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ANSIBLE_") and k not in ("PYTHONPATH", "MILEPOST_RUN_ID")
    }
    env["MILEPOST_ROOT"] = str(ROOT)
    env["PATH"] = f"{VENV_BIN}:{os.environ.get('PATH', os.defpath)}"
    return env


def import_check(variant: Variant) -> str:
    """Where `import milepost` leads in the variant's environment and directory; '' if
    it is the variant's own checkout, else what is wrong."""
    code = "import milepost.cli, milepost.ledger; print(milepost.cli.__file__)"
    with tempfile.TemporaryDirectory(prefix="milepost-bench-cycle-") as tmp:
        proc = subprocess.run(
            [str(VENV_BIN / "python"), "-c", code],
            cwd=variant.root,
            env=variant.env(Path(tmp)),
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        return f"`import milepost` fails there: {tail(proc.stderr, 3)}"
    where = Path(proc.stdout.strip()).resolve()
    if not where.is_relative_to(variant.root.resolve()):
        return f"`import milepost` gives {where}, not the package of {variant.root}"
    return ""


# ---------------------------------------------------------------- the lab


def lab(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.perf_counter()
    proc = subprocess.run(
        [str(LAB), *args], cwd=ROOT, env=lab_env(), capture_output=True, text=True
    )
    return proc, time.perf_counter() - start


def lab_up(size: int) -> float:
    proc, took = lab("up", "--hosts", str(size))
    if proc.returncode != 0:
        raise Failed(
            f"the lab is not up: `scripts/lab up --hosts {size}` failed (exit"
            f" {proc.returncode}): {tail(proc.stderr or proc.stdout, 5)}",
            2,
        )
    return took


def lab_reset() -> float:
    proc, took = lab("reset")
    if proc.returncode != 0:
        raise Failed(
            f"`scripts/lab reset` failed (exit {proc.returncode}):"
            f" {tail(proc.stderr or proc.stdout, 10)}"
        )
    return took


def lab_containers() -> tuple[list[str], list[str], str]:
    """The lab's hosts (in its order), their containers and the repository server's."""
    from milepost.lab.fleet import REPO_CONTAINER, load_hosts

    hosts = load_hosts()
    return [h.name for h in hosts], [h.container for h in hosts], REPO_CONTAINER


def inventory_vars(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
        found = data["all"]["vars"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
        fail(f"cannot read the lab inventory {path}: {err}", 2)
    if not isinstance(found, dict):
        fail(f"the lab inventory {path} has no all.vars", 2)
    return found


def control_dir(path: Path) -> Path:
    """The SSH control directory the lab inventory names (runs of both variants use it)."""
    value = inventory_vars(path).get("ansible_control_path_dir")
    if not value:
        return ROOT / ".milepost" / "lab" / "cp"
    return Path(str(value))


def check_inventory_paths(path: Path) -> None:
    """The copy in the worktree works only if every path in the inventory is absolute."""
    found = inventory_vars(path)
    for key in ("ansible_ssh_private_key_file", "ansible_control_path_dir"):
        value = str(found.get(key) or "")
        if value and not Path(value).is_absolute():
            fail(f"the lab inventory's {key} is relative ({value}): cannot copy it", 2)


def copy_inventory(worktree: Path) -> None:
    target = worktree / INVENTORY
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / INVENTORY, target)


# ---------------------------------------------------------------- host CPU (cgroups)


def cgroup_file(container_id: str, pid: int) -> Path | None:
    """The file holding a container's CPU time: cgroup v1 cpuacct.usage (ns) or cgroup v2
    cpu.stat (usage_usec), found from its init process's /proc/<pid>/cgroup, else from
    Docker's usual paths for the container id."""
    candidates: list[Path] = []
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines() if pid > 0 else []
    except OSError:
        lines = []
    v2: list[Path] = []
    for line in lines:
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        rel = path.strip("/")
        if not rel:
            continue  # a cgroup namespace hides where it is
        if "cpuacct" in controllers.split(","):
            for mount in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
                candidates.append(CGROUP / mount / rel / "cpuacct.usage")
        elif hierarchy == "0":
            v2 += [CGROUP / rel / "cpu.stat", CGROUP / "unified" / rel / "cpu.stat"]
    candidates += [
        CGROUP / "cpuacct" / "docker" / container_id / "cpuacct.usage",
        CGROUP / "cpu,cpuacct" / "docker" / container_id / "cpuacct.usage",
        *v2,
        CGROUP / "system.slice" / f"docker-{container_id}.scope" / "cpu.stat",
        CGROUP / "docker" / container_id / "cpu.stat",
    ]
    return next((c for c in candidates if c.is_file()), None)


def cgroup_seconds(path: Path) -> float | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    if path.name == "cpuacct.usage":
        return int(text.strip()) / 1e9
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) / 1e6
    return None


@dataclass
class HostCpu:
    """The CPU time of the lab's containers, from their cgroups."""

    hosts: list[str]  # host containers
    repo: str
    files: dict[str, Path] = field(default_factory=dict)
    problem: str = ""

    def locate(self) -> None:
        names = [*self.hosts, self.repo]
        self.files, self.problem = {}, ""
        try:
            proc = subprocess.run(
                ["docker", "inspect", "-f", "{{.Name}} {{.Id}} {{.State.Pid}}", *names],
                capture_output=True,
                text=True,
            )
        except OSError as err:
            self.problem = f"{', '.join(names)}: docker inspect: {err}"
            return
        for line in proc.stdout.splitlines():
            name, cid, pid = (line.split() + ["", "", "0"])[:3]
            found = cgroup_file(cid, int(pid) if pid.isdigit() else 0)
            if found:
                self.files[name.lstrip("/")] = found
        missing = [n for n in names if n not in self.files]
        if missing:
            why = tail(proc.stderr, 1) if proc.returncode else "no cgroup CPU file found"
            self.problem = f"{', '.join(missing)}: {why}"

    def read(self) -> dict[str, float | None]:
        return {name: cgroup_seconds(path) for name, path in self.files.items()}

    def spent(
        self, before: dict[str, float | None], after: dict[str, float | None]
    ) -> tuple[float | None, float | None, dict[str, float | None]]:
        """Host CPU (None unless every host was read and no counter went back: a restarted
        container starts again at 0), the repository server's, and each container's."""
        each: dict[str, float | None] = {}
        for name in [*self.hosts, self.repo]:
            b, a = before.get(name), after.get(name)
            each[name] = a - b if a is not None and b is not None and a >= b else None
        host_values = [each[name] for name in self.hosts]
        hosts = None if None in host_values else sum(v for v in host_values if v is not None)
        return hosts, each[self.repo], each


# ---------------------------------------------------------------- the ledger


def short_action(action: Any) -> str:
    text = str(action or "")
    for prefix in ("ansible.builtin.", "ansible.legacy."):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def classify(body: dict[str, Any]) -> str | None:
    """Where a result ran, read from its action, status and task name: "host",
    "controller" or None (skipped), for a ledger that does not record runs_on."""
    if body.get("status") == "skipped":
        return None
    if short_action(body.get("action")) in CONTROLLER_ACTIONS:
        return "controller"
    name = str(body.get("task") or "")
    if name.split(" : ", 1)[-1] in CONTROLLER_TASKS:  # "<role> : <task>" for role tasks
        return "controller"
    return "host"


def read_ledger(db: Path) -> list[tuple[str, str | None, str | None, dict[str, Any]]]:
    if not db.is_file():
        raise Failed(f"the run left no ledger at {db}")
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = con.execute(
                "SELECT kind, run_id, host, body FROM ledger_records ORDER BY seq"
            ).fetchall()
        finally:
            con.close()
    except sqlite3.Error as err:
        raise Failed(f"cannot read the run's ledger {db}: {err}") from None
    found = []
    for kind, run_id, host, body in rows:
        try:
            parsed = json.loads(body)
        except (TypeError, ValueError):
            parsed = {}
        found.append((kind, run_id, host, parsed if isinstance(parsed, dict) else {}))
    return found


def examine(db: Path, hosts: list[str], cycle: str, variant: Variant) -> dict[str, Any]:
    """The run's figures from its ledger; Failed if it does not show one successful
    maintain.yml run from the variant's commit that did the cycle's work (noop: no package
    change; updating: a package change on every host; converge: either)."""
    rows = read_ledger(db)
    started = [
        (run_id, body)
        for kind, run_id, _, body in rows
        if kind == "run_started" and str(body.get("playbook", "")).endswith(PLAYBOOK)
    ]
    if len(started) != 1:
        raise Failed(f"the ledger holds {len(started)} {PLAYBOOK} runs, not 1")
    run_id, start = started[0]
    ended = [body for kind, rid, _, body in rows if kind == "run_ended" and rid == run_id]
    status = ended[-1].get("status") if ended else "not ended"
    if status != "successful":
        raise Failed(f"the ledger records run {run_id} as {status}")
    commit = str(start.get("git_commit") or "")
    if commit not in ("", "unknown") and commit != variant.commit:
        raise Failed(
            f"run {run_id} ran from commit {commit[:12]}, not {variant.name}'s"
            f" {variant.commit[:12]}: its callback was not {variant.root}'s"
        )
    per_host: dict[str, Counter[str]] = {h: Counter() for h in hosts}
    runs_on_recorded = False
    for kind, rid, host, body in rows:
        if rid != run_id or host in (None, "", "localhost"):
            continue
        counts = per_host.setdefault(str(host), Counter())
        if kind == "package_change":
            counts["package_changes"] += 1
        if kind != "task_result":
            continue
        counts["results"] += 1
        if short_action(body.get("action")) != ARGUMENT_CHECK:
            counts["results_excl_argument_checks"] += 1
        classified = classify(body)
        if "runs_on" in body:
            runs_on_recorded = True
            counts["module_runs"] += body.get("runs_on") == "host"
        else:
            counts["module_runs"] += classified == "host"
        counts["module_runs_classified"] += classified == "host"
        counts["changed"] += body.get("status") == "changed"
        counts["skipped"] += body.get("status") == "skipped"
    silent = [h for h in hosts if not per_host[h]["results"]]
    if silent:
        raise Failed(f"no task result recorded on {', '.join(silent)}")
    if cycle == "noop":
        changed = [h for h, c in per_host.items() if c["package_changes"]]
        if changed:
            raise Failed(
                f"the no-op run changed packages on {', '.join(changed)}: the lab was not converged"
            )
    elif cycle == "updating":
        unchanged = [h for h in hosts if not per_host[h]["package_changes"]]
        if unchanged:
            raise Failed(f"the updating run changed no package on {', '.join(unchanged)}")
    return {
        "run_id": run_id,
        "git_commit": commit,
        "runs_on_recorded": runs_on_recorded,
        "per_host": {h: {k: c[k] for k in COUNTS} for h, c in per_host.items()},
    }


def per_host_figures(per_host: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    """{count: {max, mean}} over the hosts."""
    found = {}
    for key in COUNTS:
        values = [c[key] for c in per_host.values()]
        found[key] = {
            "max": max(values) if values else 0,
            "mean": statistics.fmean(values) if values else 0.0,
        }
    return found


# ---------------------------------------------------------------- one run


@dataclass
class Run:
    size: int
    cycle: str
    variant: str
    round: int
    wall: float
    controller_cpu: float
    host_cpu: float | None
    repo_cpu: float | None
    prepare: str  # what ran before it, unmeasured
    prepare_s: float
    run_id: str
    git_commit: str
    runs_on_recorded: bool
    per_host: dict[str, dict[str, int]]
    per_host_figures: dict[str, dict[str, float]]
    container_cpu: dict[str, float | None]


def keep_log(logs: Path | None, label: str, argv: list[str], output: str) -> None:
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{label}.log").write_text(f"$ {shlex.join(argv)}\n{output}")


def execute(
    variant: Variant, run_dir: Path, control: Path, meter: HostCpu | None
) -> tuple[subprocess.CompletedProcess[str], float, float, dict[str, Any]]:
    """One `milepost maintain` of the variant: its result, wall and controller CPU seconds
    and the containers' cgroup readings before and after (when ``meter`` is given)."""
    run_dir.mkdir(parents=True)
    env = variant.env(run_dir)
    close_masters(control)  # no run inherits an SSH connection
    reap(0)  # anything orphaned before now is not this run's
    before_hosts = meter.read() if meter else {}
    before = cpu_seconds()
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            variant.argv(), cwd=variant.root, env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
        cpu = cpu_seconds() - before
    finally:
        close_masters(control)
    after_hosts = meter.read() if meter else {}
    closed = cpu_seconds()
    reap(15)
    cpu += cpu_seconds() - closed  # the SSH masters, not the `ssh -O exit` that closed them
    return proc, wall, cpu, {"before": before_hosts, "after": after_hosts}


def run_failed(label: str, proc: subprocess.CompletedProcess[str], why: str = "") -> Failed:
    reason = why or f"exit code {proc.returncode}"
    return Failed(f"{label}: {reason}\n{tail(proc.stdout + proc.stderr)}")


@dataclass
class Bench:
    work: Path
    logs: Path | None
    worktree: Path
    control: Path = Path()
    hosts: list[str] = field(default_factory=list)
    meter: HostCpu | None = None

    def start_size(self, size: int) -> float:
        took = lab_up(size)
        hosts, containers, repo = lab_containers()
        if len(hosts) != size:
            raise Failed(f"the lab has {len(hosts)} hosts after `scripts/lab up --hosts {size}`", 2)
        self.hosts = hosts
        self.control = control_dir(ROOT / INVENTORY)
        check_inventory_paths(ROOT / INVENTORY)
        self.meter = HostCpu(containers, repo)
        self.meter.locate()
        if self.meter.problem:
            print(f"note: host CPU not measured for {self.meter.problem}")
        return took

    def plain_run(self, variant: Variant, label: str) -> float:
        """An unmeasured run that must succeed (the no-op cycle's converge)."""
        if variant.pythonpath:
            copy_inventory(self.worktree)
        start = time.perf_counter()
        proc, _, _, _ = execute(variant, self.work / label, self.control, None)
        keep_log(self.logs, label, variant.argv(), proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise run_failed(f"{label} (unmeasured)", proc)
        try:
            examine(self.work / label / "ledger.sqlite", self.hosts, "converge", variant)
        except Failed as bad:
            raise run_failed(f"{label} (unmeasured)", proc, str(bad)) from None
        return time.perf_counter() - start

    def measured(self, size: int, cycle: str, variant: Variant, round_no: int) -> Run:
        label = f"s{size}-r{round_no}-{cycle}-{variant.name}"
        if cycle == "updating":
            prepare, prepare_s = "scripts/lab reset", lab_reset()
        else:
            prepare, prepare_s = "converge", self.plain_run(variant, f"{label}-converge")
        if variant.pythonpath:
            copy_inventory(self.worktree)
        assert self.meter is not None
        if set(self.meter.files) != {*self.meter.hosts, self.meter.repo}:
            self.meter.locate()  # a container came back since; try again
        proc, wall, cpu, readings = execute(variant, self.work / label, self.control, self.meter)
        keep_log(self.logs, label, variant.argv(), proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise run_failed(label, proc)
        try:
            found = examine(self.work / label / "ledger.sqlite", self.hosts, cycle, variant)
        except Failed as bad:
            raise run_failed(label, proc, str(bad)) from None
        hosts_cpu, repo_cpu, each = self.meter.spent(readings["before"], readings["after"])
        return Run(
            size=size,
            cycle=cycle,
            variant=variant.name,
            round=round_no,
            wall=wall,
            controller_cpu=cpu,
            host_cpu=hosts_cpu,
            repo_cpu=repo_cpu,
            prepare=prepare,
            prepare_s=prepare_s,
            run_id=found["run_id"],
            git_commit=found["git_commit"],
            runs_on_recorded=found["runs_on_recorded"],
            per_host=found["per_host"],
            per_host_figures=per_host_figures(found["per_host"]),
            container_cpu=each,
        )


def order(round_no: int) -> tuple[str, ...]:
    """Both variants in turn, the order swapped every other round."""
    return VARIANTS if round_no % 2 else tuple(reversed(VARIANTS))


# ---------------------------------------------------------------- report


def spread(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    return f"{median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def ratio(this: float | None, base: float | None) -> float | None:
    if this is None or base is None or base <= 0:
        return None
    return this / base


def fmt_ratio(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def summarize(runs: list[Run]) -> dict[str, Any]:
    """Medians and spreads of one variant's runs of one (size, cycle)."""
    walls = [r.wall for r in runs]
    cpus = [r.controller_cpu for r in runs]
    hosts = [r.host_cpu for r in runs if r.host_cpu is not None]
    repo = [r.repo_cpu for r in runs if r.repo_cpu is not None]
    found: dict[str, Any] = {
        "runs": len(runs),
        "wall_s": {"median": median(walls), "min": min(walls), "max": max(walls)},
        "controller_cpu_s": {"median": median(cpus), "min": min(cpus), "max": max(cpus)},
        "host_cpu_s": (
            {"median": median(hosts), "min": min(hosts), "max": max(hosts), "runs": len(hosts)}
            if hosts
            else None
        ),
        "repo_cpu_s": {"median": median(repo)} if repo else None,
    }
    for key in COUNTS:
        maxes = [r.per_host_figures[key]["max"] for r in runs]
        means = [r.per_host_figures[key]["mean"] for r in runs]
        found[key] = {"max": max(maxes), "mean": median(means), "means": means}
    return found


def target_figure(target: Target, tables: dict[tuple[int, str], dict[str, Any]]) -> list[Any]:
    """[(size, figure, met)] for every measured (size, cycle) the target covers."""
    found = []
    for (size, cycle), table in sorted(tables.items()):
        if cycle != target.cycle or (target.size is not None and size != target.size):
            continue
        if target.ratio:
            key = "wall_s" if target.measure == "wall" else "controller_cpu_s"
            value = ratio(table["this"][key]["median"], table["baseline"][key]["median"])
        else:
            value = table["this"][target.measure]["max"]
        found.append((size, value, value is not None and value <= target.limit))
    return found


def row(
    name: str,
    cells: list[str],
    value: float | None,
    target: Target | None = None,
    count: float | None = None,
) -> None:
    """A line of a table: the ratio this/baseline, and a target's verdict beside it (on the
    ratio, or on ``count``, this checkout's figure per host)."""
    line = f"{name:<38} {cells[0]:>22} {cells[1]:>22} {fmt_ratio(value):>9}"
    if target is not None:
        figure = value if target.ratio else count
        met = figure is not None and figure <= target.limit
        line += f"  {target.text}: {'met' if met else 'NOT met'}"
    print(line)


def report(
    runs: list[Run], sizes: list[int], cycles: list[str], labels: dict[str, str]
) -> dict[str, Any]:
    def pick(size: int, cycle: str, variant: str) -> list[Run]:
        return [r for r in runs if (r.size, r.cycle, r.variant) == (size, cycle, variant)]

    tables: dict[tuple[int, str], dict[str, Any]] = {}
    for size in sizes:
        for cycle in [c for c in SHOWN if c in cycles]:
            chosen = {v: pick(size, cycle, v) for v in VARIANTS}
            if all(chosen.values()):
                tables[(size, cycle)] = {v: summarize(rs) for v, rs in chosen.items()}
    for (size, cycle), table in tables.items():
        this, base = table["this"], table["baseline"]
        print(
            f"\n== {CYCLE_NAMES[cycle]} on {size} hosts: {this['runs']} interleaved round(s),"
            f" medians (min-max); this = {labels['this']}, baseline = {labels['baseline']}"
        )
        print(f"{'measure':<38} {'this':>22} {'baseline':>22} {'this/base':>9}  target")
        marks = {t.measure: t for t in TARGETS if t.cycle == cycle and t.size in (None, size)}

        for key, name, measure in (
            ("wall", "wall s", "wall"),
            ("controller_cpu", "controller CPU s", "controller_cpu"),
            ("host_cpu", "host CPU s (the lab hosts' cgroups)", ""),
        ):
            sides = [
                [v for v in (getattr(r, key) for r in pick(size, cycle, name_)) if v is not None]
                for name_ in VARIANTS
            ]
            value = ratio(*(median(side) if side else None for side in sides))
            row(name, [spread(side) for side in sides], value, marks.get(measure))
        for key, name in (
            ("results", "task results per host, max (mean)"),
            ("results_excl_argument_checks", "  without argument checks"),
            ("module_runs", "module runs per host, max (mean)"),
            ("changed", "changed results per host, max (mean)"),
        ):
            cells = [f"{t[key]['max']:g} ({t[key]['mean']:.1f})" for t in (this, base)]
            value = ratio(this[key]["mean"], base[key]["mean"])
            row(name, cells, value, marks.get(key), float(this[key]["max"]))
        shares = []
        for v, t in (("this", this), ("baseline", base)):
            ctrl = t["controller_cpu_s"]["median"]
            if not t["host_cpu_s"]:
                shares.append(f"{v}: host CPU not measured")
                continue
            total = ctrl + t["host_cpu_s"]["median"]
            shares.append(
                f"{v}: controller {100 * ctrl / total:.0f}%,"
                f" hosts {100 - 100 * ctrl / total:.0f}% of {total:.1f} s"
            )
        print("CPU split (medians): " + "; ".join(shares))
        repo = [t["repo_cpu_s"]["median"] if t["repo_cpu_s"] else None for t in (this, base)]
        print(
            "  not in either: the lab's APT repository server, "
            + " / ".join("-" if x is None else f"{x:.1f} s" for x in repo)
        )
        if not any(r.runs_on_recorded for r in pick(size, cycle, "this")):
            print("  note: this checkout's results carry no runs_on: its module runs classified")
    print("\ntargets:")
    verdicts = []
    for t in TARGETS:
        found = target_figure(t, tables)
        if not found:
            where = CYCLE_NAMES[t.cycle] + (f" on {t.size} hosts" if t.size else "")
            print(f"  {where}: {t.text}: not measured")
        for size, value, met in found:
            shown = f"{value:.2f} this/baseline" if t.ratio else f"{value:g} (this, max)"
            print(
                f"  {CYCLE_NAMES[t.cycle]} on {size} hosts: {t.text}:"
                f" {'-' if value is None else shown}: {'met' if met else 'NOT met'}"
            )
        verdicts.append(
            {**asdict(t), "results": [{"size": s, "figure": v, "met": m} for s, v, m in found]}
        )
    return {
        "tables": [
            {"size": size, "cycle": cycle, **table} for (size, cycle), table in tables.items()
        ],
        "targets": verdicts,
    }


# ---------------------------------------------------------------- dry run


def dry_run(
    variants: dict[str, Variant],
    args: argparse.Namespace,
    sizes: list[int],
    cycles: list[str],
    labels: dict[str, str],
) -> None:
    from milepost.lab.topology import plan

    base = variants["baseline"]
    print("cycle dry run: nothing below is run, no lab host is touched.")
    print(f"this:     {ROOT} at {labels['this']}")
    print(f"baseline: {base.root} at {labels['baseline']}")
    state = worktree_state(base.root, base.commit)
    steps = worktree_plan(base.root, base.commit)
    what = {"ready": "there, clean, at the commit: reused"}.get(state, f"{state}: to be made")
    print(f"worktree: {what}")
    for argv in steps:
        print(f"  would run: {shlex.join(argv)}")
    if state == "ready":
        problem = import_check(base)
        print(
            "  import check (PYTHONPATH, from the worktree): "
            + (problem or f"`import milepost` gives {base.root}/milepost: ok")
        )
    run_dir = Path(tempfile.gettempdir()) / "milepost-bench-cycle-XXXX" / "<run>"
    print("\nthe command of each variant (<run>: a fresh directory per run, measured or not):")
    for v in variants.values():
        env = " ".join(f"{k}={shlex.quote(x)}" for k, x in v.env_vars(run_dir).items())
        print(f"  {v.name}: cd {shlex.quote(str(v.root))} && {env} {shlex.join(v.argv())}")
        if v.pythonpath:
            print(f"    before each of its runs: cp {ROOT / INVENTORY} {v.root / INVENTORY}")
    print(f"\nsizes: {', '.join(map(str, sizes))}, in turn, each after (untimed):")
    for size in sizes:
        names = [h.name for h in plan(size)]
        print(f"  {LAB} up --hosts {size}    # {', '.join(names)}")
    print(
        f"then {args.rounds} round(s) per size, each variant in turn (round 1:"
        f" {', '.join(order(1))}; round 2: {', '.join(order(2))}; and so on), each variant's"
        " turn:"
    )
    for cycle in [c for c in CYCLES if c in cycles]:
        before = f"{LAB} reset" if cycle == "updating" else "the variant's command (converge)"
        print(f"  {CYCLE_NAMES[cycle]}: untimed {before}; then the variant's command, measured")
    print(
        "\nevery run: the caller's ANSIBLE_*, MILEPOST_* and PYTHONPATH are dropped; the SSH"
        " control masters in the lab's control directory are closed before and after"
        " (`ssh -O exit`); it must exit 0 and its ledger hold one successful maintain.yml"
        " run from the variant's commit, with a package change on every host (updating) or"
        " none (no-op)"
    )
    hosts, containers, repo = lab_containers()
    if hosts:
        meter = HostCpu(containers, repo)
        meter.locate()
        some = next(iter(meter.files.items()), None)
        print(
            f"host CPU: the lab is up with {len(hosts)} hosts; cgroup files found for"
            f" {len(meter.files)} of {len(containers) + 1} containers"
            + (f", e.g. {some[0]}: {some[1]}" if some else "")
            + (f"; missing: {meter.problem}" if meter.problem else "")
        )
    else:
        print(
            "host CPU: the lab is not up now; read from"
            f" {CGROUP}/cpuacct/docker/<id>/cpuacct.usage (cgroup v1) or"
            f" {CGROUP}/system.slice/docker-<id>.scope/cpu.stat (v2)"
        )
    print("targets:")
    for t in TARGETS:
        where = CYCLE_NAMES[t.cycle] + (f" on {t.size} hosts" if t.size else "")
        measured = t.cycle in cycles and (t.size is None or t.size in sizes)
        print(f"  {where}: {t.text}" + ("" if measured else " (not measured: not chosen)"))


# ---------------------------------------------------------------- main


def parse_sizes(text: str) -> list[int]:
    from milepost.lab.topology import MAX_HOSTS, MIN_HOSTS

    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        fail(f"--sizes must be host counts separated by commas, not {text!r}", 2)
    if not sizes or len(set(sizes)) != len(sizes):
        fail(f"--sizes must name each host count once, not {text!r}", 2)
    bad = [s for s in sizes if not MIN_HOSTS <= s <= MAX_HOSTS]
    if bad:
        fail(f"--sizes: {bad[0]} is outside {MIN_HOSTS}..{MAX_HOSTS}", 2)
    return sizes


def parse_cycles(text: str) -> list[str]:
    cycles = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [c for c in cycles if c not in CYCLES]
    if unknown or not cycles or len(set(cycles)) != len(cycles):
        fail(f"--cycles must be noop, updating or both, not {text!r}", 2)
    return cycles


def main() -> None:
    parser = Parser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="commit (8db1a2e)")
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="6,20")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--cycles", default="noop,updating", help="noop,updating")
    parser.add_argument("--json", type=Path, help="also write every raw figure to FILE")
    parser.add_argument("--logs", type=Path, help="keep each run's output in DIR")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = parser.parse_args()
    if args.rounds < 1:
        fail(f"--rounds must be at least 1, not {args.rounds}", 2)
    sizes = parse_sizes(args.sizes)
    cycles = parse_cycles(args.cycles)
    if args.json and not args.json.resolve().parent.is_dir():
        fail(f"--json {args.json}: no such directory {args.json.resolve().parent}", 2)
    for needed in (VENV_BIN / "python", VENV_BIN / "milepost", LAB, ROOT / "ansible.cfg"):
        if not needed.exists():
            fail(f"{needed} is missing: run `make venv` first", 2)
    os.environ["MILEPOST_ROOT"] = str(ROOT)
    commit, subject = resolve_commit(args.baseline)
    head, dirty = head_state()
    variants = {
        "this": Variant("this", ROOT, head, pythonpath=False),
        "baseline": Variant("baseline", WORKTREE, commit, pythonpath=True),
    }
    labels = {
        "this": head[:12] + (f" + uncommitted changes in {dirty} file(s)" if dirty else ""),
        "baseline": f"{commit[:12]} ({subject[:60]})",
    }
    if args.dry_run:
        dry_run(variants, args, sizes, cycles, labels)
        return

    started = datetime.now(UTC).isoformat(timespec="seconds")
    how = ensure_worktree(WORKTREE, commit)
    problem = import_check(variants["baseline"])
    if problem:
        fail(f"the baseline worktree {WORKTREE}: {problem}", 2)
    print(f"baseline worktree {WORKTREE} ({how}) at {labels['baseline']}; this: {labels['this']}")
    runs: list[Run] = []
    error, code = "", 0
    adopted = False
    with tempfile.TemporaryDirectory(prefix="milepost-bench-cycle-") as tmp:
        bench = Bench(Path(tmp), args.logs, WORKTREE)
        try:
            for size in sizes:
                took = bench.start_size(size)
                print(f"lab up with {size} hosts ({took:.0f}s, untimed)", flush=True)
                if not adopted:
                    # After the first `lab up`: a dockerd it starts is no child of the bench.
                    adopted = adopt_orphans()
                    if not adopted:
                        print("note: cannot adopt orphans here: SSH masters' CPU is not counted")
                for round_no in range(1, args.rounds + 1):
                    for name in order(round_no):
                        for cycle in [c for c in CYCLES if c in cycles]:
                            run = bench.measured(size, cycle, variants[name], round_no)
                            runs.append(run)
                            f = run.per_host_figures
                            host = "-" if run.host_cpu is None else f"{run.host_cpu:.1f}"
                            print(
                                f"{size} hosts round {round_no} {CYCLE_NAMES[cycle]} {name}:"
                                f" {run.wall:.1f}s wall, {run.controller_cpu:.1f}s controller"
                                f" CPU, {host}s host CPU, {f['results']['max']:g} results"
                                f" and {f['module_runs']['max']:g} module runs per host (max)"
                                f" ({run.prepare} {run.prepare_s:.0f}s before, untimed)",
                                flush=True,
                            )
        except Failed as bad:
            error, code = str(bad), bad.code
    summary = report(runs, sizes, cycles, labels) if runs else {"tables": [], "targets": []}
    if sizes:
        print(f"\nthe lab is left with {len(bench.hosts) or '?'} hosts")
    if args.json:
        summary.update(
            benchmark="cycle",
            command="milepost maintain (playbooks/maintain.yml)",
            started_at=started,
            ansible_core=version("ansible-core"),
            rounds=args.rounds,
            sizes=sizes,
            cycles=cycles,
            this={"root": str(ROOT), "commit": head, "uncommitted_files": dirty},
            baseline={"root": str(WORKTREE), "ref": args.baseline, "commit": commit},
            runs=[asdict(r) for r in runs],
            failed=error or None,
        )
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if error:
        fail(error, code)


if __name__ == "__main__":
    main()
