"""Emergency patching of one advisory: `scripts/emergency-patch` (`milepost emergency-patch`).

1. The input is checked (advisory id, limit, canary, reason: one line and exit 2 for
   anything else, recorded as an ``emergency_refused`` record), the advisory must be in
   the ledger with a fixed version for each of its packages, the inventory is checked.
2. The candidate hosts come from the ledger: RUC hosts (after --limit) whose package facts
   show an affected package older than the fix, and hosts without package facts yet (the
   playbook checks those live). Fixed hosts, and hosts an unexpired exception covers, are
   left alone.
3. The kill switch and the fleet lock (milepost.patching.fleet_lock) are checked: refused, exit 3.
4. An ``emergency_patch`` record links the run to the advisory, then
   playbooks/emergency_patch.yml runs through milepost.ansible.runner (ansible-runner, fresh
   private data dir, env files suppressed) as an ``emergency`` run, the maintenance window
   overridden with the reason recorded. Progress per host is read from the ledger as the
   run records it (milepost.patching.emergency_progress).
5. The summary is read from the ledger (patched, rolled back, failed, unreachable, still
   exposed: milepost.patching.emergency_summary) and recorded as an ``emergency_result``
   record.

Exit codes: 0 every exposed host patched and verified (or none exposed); 1 some hosts
failed (failed hosts were rolled back), were unreachable or are still exposed; 2 bad input,
no host touched; 3 refused (fleet lock held, kill switch set); 130/143 interrupted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cmp_to_key
from pathlib import Path
from typing import Any

import typer
from debian.debian_support import version_compare
from rich.console import Console
from rich.markup import escape

from milepost.ansible.runner import Interrupted, run_playbook, signals_held
from milepost.archive.apt_state import AptState
from milepost.errors import Refused, UserError
from milepost.input_checks import (
    TEMPLATE_MARKERS,
    check_advisory_id,
    check_limit,
    check_text,
    check_untemplated,
    shown,
)
from milepost.inventory.checks import check_inventory
from milepost.inventory.debian import check_package_name, check_version
from milepost.inventory.reading import default_inventory, source_problem
from milepost.ledger import Ledger
from milepost.ledger.runs import new_run_id
from milepost.ledger.spool import append_or_spool
from milepost.operator import operator_name
from milepost.patching import kill_switch
from milepost.patching import policy as patch_policy
from milepost.patching.advisories import get_advisory
from milepost.patching.debian_archives import apt_state_dir, load_archives
from milepost.patching.emergency_progress import _Progress
from milepost.patching.emergency_summary import Summary, summarise
from milepost.patching.exposure import exposures, installed_packages
from milepost.patching.fleet_lock import FleetLock
from milepost.paths import project_root

PLAYBOOK = "emergency_patch.yml"
MAX_CANARY = 50
MAX_REASON = 500
#: Tells staff about an emergency run: (run id, inventory sources).
Announce = Callable[[str, Sequence[Path] | None], object]
#: The change-control records of an emergency run, appended with its emergency_patch
#: record: (request, plan, run id) -> records (milepost.change_control.emergencies).
Control = Callable[["Request", "Plan", str], Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class Request:
    """A checked emergency patch request."""

    advisory_id: str
    limit: str | None
    canary: int
    reason: str
    inventory: Path | None
    yes: bool
    dry_run: bool
    #: The on-call engineer's SSH key: signs the emergency's change plan as its author
    #: where the hosts' groups ask for approvals (milepost.change_control.emergencies).
    key: Path | None = None


def check_request(
    *,
    advisory: str,
    limit: str | None,
    canary: str,
    reason: str | None,
    inventory: Path | None,
    yes: bool,
    dry_run: bool,
    key: Path | None = None,
) -> Request:
    """The request, every value checked (UserError, one line, otherwise)."""

    advisory_id = check_advisory_id(advisory)
    checked_limit = check_limit(limit) if limit is not None else None
    text = canary.strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_CANARY:
        raise UserError(
            f"--canary must be a whole number of hosts from 1 to {MAX_CANARY}, not {shown(canary)}"
        )
    # The reason goes to the playbook as an extra var, which Ansible templates.
    why = (
        check_untemplated(reason, "--reason", max_len=MAX_REASON)
        if reason is not None
        else f"emergency patch for {advisory_id}"
    )
    source = None
    if inventory is not None:
        check_text(str(inventory), "--inventory", max_len=4096)
        source = inventory
        unusable = source_problem(source)
        if unusable:
            raise UserError(unusable)
    if key is not None and not key.is_file():
        raise UserError(f"--key {shown(str(key))} is not a file: name your SSH private key")
    return Request(advisory_id, checked_limit, int(text), why, source, yes, dry_run, key)


def record_refusal(advisory: object, problem: str, exit_code: int) -> None:
    """Append an emergency_refused record; the ledger being down is only a warning."""

    record = {
        "kind": "emergency_refused",
        "run_id": None,
        "host": None,
        "body": {
            "advisory": shown(str(advisory), limit=80),
            "problem": problem[:1000],
            "exit_code": exit_code,
            "operator": operator_name(),
        },
    }
    append_or_spool([record], "the refusal")


@dataclass(frozen=True)
class Plan:
    """What the run will do: the fixed versions, the versions installed to reach them, and
    which hosts and why."""

    packages: dict[str, str]
    #: {package: the version an exposed host gets}: the fixed one, or for a Debian advisory
    #: whose fixed version the archive no longer offers, the newest it offers above it.
    install: dict[str, str]
    exposed: list[str]
    unknown: list[str]
    excepted: list[str]
    fixed: list[str]
    #: {host: {package of the advisory: installed version}} from the ledger's facts.
    installed: dict[str, dict[str, str]]

    @property
    def candidates(self) -> list[str]:
        return sorted({*self.exposed, *self.unknown})


def plan(request: Request) -> Plan:
    """The candidate hosts, from the ledger (UserError for an advisory that cannot be
    patched: unknown, no packages, no fixed version)."""

    with Ledger.open() as ledger:
        ledger.close_stale_runs()
        advisory = get_advisory(ledger, request.advisory_id)
        if not advisory.packages:
            raise UserError(
                f"advisory {advisory.advisory_id} names no package of ours: map its product"
                " (milepost_kev_products) or add packages with `milepost advisory add`"
            )
        unfixed = sorted(name for name, fixed in advisory.packages.items() if not fixed)
        if unfixed:
            raise UserError(
                f"advisory {advisory.advisory_id} has no fixed version for"
                f" {', '.join(unfixed)}: add it with `milepost advisory add --id"
                f" {advisory.advisory_id} --package {unfixed[0]}=VERSION`"
            )
        sources = [request.inventory] if request.inventory else default_inventory()
        checked = check_inventory(
            sources, limit=request.limit, playbook_dir=project_root() / "playbooks"
        )
        scope = set(checked.hosts)
        settings = patch_policy.load(sources)
        items = exposures(
            ledger, settings, advisories={advisory.advisory_id: advisory}, hosts=scope
        )
        facts = installed_packages(ledger, scope)
    known = set(facts)
    exposed = sorted({e.host for e in items if e.status == "exposed"})
    excepted = sorted({e.host for e in items if e.status == "excepted"} - set(exposed))
    fixed = sorted(known - set(exposed) - set(excepted))
    unknown = sorted(scope - known)
    packages = ansible_packages(advisory.packages)
    install = (
        debian_install_versions(packages, request.inventory)
        if advisory.source == "debian"
        else packages
    )
    installed = {
        host: {name: have[name] for name in advisory.packages if name in have}
        for host, have in facts.items()
    }
    return Plan(packages, install, exposed, unknown, excepted, fixed, installed)


def debian_install_versions(fixed: Mapping[str, str], inventory: Path | None) -> dict[str, str]:
    """{package: what the configured Debian archives give it}: its fixed version when they
    offer it (a pinned RUC release), else the newest they offer above it (Debian keeps only
    the newest version of a package). UserError, one line, when an archive cannot be read
    or offers no version at or above the fix."""
    state = AptState(apt_state_dir(), load_archives(inventory))
    state.update()
    offers = state.offers(fixed)
    chosen: dict[str, str] = {}
    for package, version in fixed.items():
        good = [
            o.version for o in offers.get(package, []) if version_compare(o.version, version) >= 0
        ]
        if not good:
            raise UserError(
                f"the Debian archives offer no {package} at or above its fixed version {version}:"
                " update the mirror, then `milepost advisory sync`"
            )
        chosen[package] = version if version in good else max(good, key=cmp_to_key(version_compare))
    return ansible_packages(chosen)


def ansible_packages(packages: Mapping[str, str | None]) -> dict[str, str]:
    """The advisory's {package: fixed version}, which came from the ledger, checked again
    right before it goes to the playbook as an extra var (Ansible templates extra vars):
    Debian package names and versions only, so no template syntax ({{ {% {#}."""

    checked: dict[str, str] = {}
    for name, version in packages.items():
        package = check_package_name(name, "advisory package name")
        fixed = check_version(version or "", f"fixed version of {package}")
        if any(marker in package + fixed for marker in TEMPLATE_MARKERS):
            raise UserError(f"advisory package {shown(package)} holds template syntax")
        checked[package] = fixed
    return checked


def _record(
    kind: str, run_id: str, body: Mapping[str, Any], more: Sequence[Mapping[str, Any]] = ()
) -> None:
    append_or_spool(
        [{"kind": kind, "run_id": run_id, "host": None, "body": dict(body)}, *more],
        f"the {kind} record",
    )


def _print_plan(console: Console, request: Request, chosen: Plan) -> None:
    targets = ", ".join(
        f"{name} {version}"
        + (f" (fixed in {chosen.packages[name]})" if version != chosen.packages.get(name) else "")
        for name, version in sorted(chosen.install.items())
    )
    console.print(f"Emergency patch for {escape(request.advisory_id)}: install {escape(targets)}")
    console.print(f"  exposed (ledger): {escape(', '.join(chosen.exposed) or 'none')}")
    if chosen.unknown:
        console.print(f"  no package facts yet, checked live: {escape(', '.join(chosen.unknown))}")
    if chosen.excepted:
        console.print(
            f"  left alone, covered by an exception: {escape(', '.join(chosen.excepted))}"
        )
    if chosen.fixed:
        console.print(f"  already fixed: {escape(', '.join(chosen.fixed))}")
    console.print(
        f"  canary batch: {request.canary} host(s), then the rest at once; maintenance windows"
        f" overridden: {escape(request.reason)}"
    )


def _confirm(request: Request, chosen: Plan) -> None:
    if request.yes or request.dry_run:
        return
    if not sys.stdin.isatty():
        raise UserError("not run from a terminal: pass --yes to patch without asking")

    if not typer.confirm(f"Patch {len(chosen.candidates)} host(s) now?", default=False):
        raise UserError("not confirmed: nothing was done")


def emergency_patch(
    request: Request,
    console: Console,
    announce: Announce = lambda run_id, sources: None,
    control: Control = lambda request, chosen, run_id: [],
) -> Summary | None:
    """Run the emergency patch; None when nothing needed to run (dry run, none exposed).
    ``announce(run_id, inventory sources)`` tells staff, at the start and at the end (the
    CLI passes milepost.notify.notify_emergency: the emergency notice, when milepost_notify
    is configured; it never raises). ``control(request, plan, run id)`` gives the run's
    change-control records, appended with its emergency_patch record (the CLI passes
    milepost.change_control.emergencies.emergency_records; each host checks for them)."""

    chosen = plan(request)
    _print_plan(console, request, chosen)
    if not chosen.candidates:
        console.print(f"no host is exposed to {escape(request.advisory_id)}: nothing to patch")
        return None
    if request.dry_run:
        console.print("dry run: no host touched")
        return None
    switch = kill_switch.read()
    if switch is not None:
        raise Refused(
            f"the kill switch is set ({switch.get('reason')}, by {switch.get('by')} at"
            f" {switch.get('at')}): clear it with `milepost stop --clear` first"
        )
    _confirm(request, chosen)
    run_id = new_run_id()
    control_records = control(request, chosen, run_id)
    lock = FleetLock()
    # From the fleet lock on, Ctrl-C/SIGTERM no longer end the process: the emergency is
    # recorded, closed as aborted if the playbook never started, and the lock released.
    with signals_held() as interrupts:
        lock.acquire(
            {"run_id": run_id, "advisory_id": request.advisory_id, "operator": operator_name()}
        )
        try:
            _record(
                "emergency_patch",
                run_id,
                {
                    "advisory_id": request.advisory_id,
                    "packages": chosen.packages,
                    "install": chosen.install,
                    "reason": request.reason,
                    "operator": operator_name(),
                    "limit": request.limit,
                    "canary": request.canary,
                    "candidates": chosen.candidates,
                    "excepted": chosen.excepted,
                },
                control_records,
            )
            root = project_root()
            sources = [request.inventory] if request.inventory else []
            # The emergency notice (when milepost_notify is configured): at the start, and at
            # the end from the emergency_result record.
            announce(run_id, sources or default_inventory())
            progress = _Progress(run_id, chosen.candidates, console)
            progress.start()
            started = time.monotonic()
            try:
                result = run_playbook(
                    root / "playbooks" / PLAYBOOK,
                    inventory=sources,
                    limit=",".join(chosen.candidates),
                    extravars={
                        "emergency_patch_advisory": request.advisory_id,
                        "emergency_patch_packages": ansible_packages(chosen.packages),
                        "emergency_patch_canary": request.canary,
                        "preflight_override_window": True,
                        "preflight_override_reason": (
                            f"emergency patch {request.advisory_id}: {request.reason}"
                        ),
                    },
                    quiet=True,
                    env={"MILEPOST_RUN_KIND": "emergency"},
                    root=root,
                    run_id=run_id,
                    interrupts=interrupts,
                )
            finally:
                progress.stop()
            summary = summarise(
                run_id,
                request.advisory_id,
                chosen.packages,
                chosen.candidates,
                "aborted"
                if result.interrupted_by is not None
                else result.status
                if result.rc == 0
                else "failed",
            )
            _record(
                "emergency_result",
                run_id,
                {
                    **{k: v for k, v in asdict(summary).items() if k != "run_id"},
                    "seconds": round(time.monotonic() - started, 1),
                },
            )
            announce(run_id, sources or default_inventory())
            if result.interrupted_by is not None:
                raise Interrupted(result)
            return summary
        finally:
            lock.release()
