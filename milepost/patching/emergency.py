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
   run records it.
5. The summary is read from the ledger (patched, rolled back, failed, unreachable, still
   exposed) and recorded as an ``emergency_result`` record.

Exit codes: 0 every exposed host patched and verified (or none exposed); 1 some hosts
failed (failed hosts were rolled back), were unreachable or are still exposed; 2 bad input,
no host touched; 3 refused (fleet lock held, kill switch set); 130/143 interrupted.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from milepost.errors import MilepostError, UserError
from milepost.operator import operator_name
from milepost.patching.fleet_lock import FleetLock, Refused

PLAYBOOK = "emergency_patch.yml"
#: Seconds between two looks at the ledger for progress.
POLL_SECONDS = 1.0
MAX_CANARY = 50
MAX_REASON = 500
#: A host's progress as the view shows it, by rank: a host never moves back.
PHASE_RANK = {
    "waiting": 0,
    "checking": 1,
    "patching": 2,
    "verifying": 3,
    "verified": 4,
    "not exposed": 4,
    "failed": 5,
    "unreachable": 5,
}
#: The phase a recorded task of these roles puts a host in.
ROLE_PHASE = {
    "preflight": "checking",
    "ruc_apt_source": "checking",
    "app_update": "patching",
    "health_gate": "verifying",
}
#: Tasks (name prefixes) whose success says more than their role.
TASK_PHASE = {
    "PATCH | Release the maintenance lock of a host that is not exposed": "not exposed",
    "AUDIT | Pass the health gate when every service is healthy": "verified",
}
#: Tells staff about an emergency run: (run id, inventory sources).
Announce = Callable[[str, Sequence[Path] | None], object]


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


@dataclass
class Summary:
    """How the run left each candidate host (read from the ledger)."""

    run_id: str
    advisory_id: str
    status: str
    patched: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    not_exposed: list[str] = field(default_factory=list)
    still_exposed: list[str] = field(default_factory=list)
    #: Hosts the run never got to check (interrupted first) and the ledger knows nothing of.
    not_checked: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.status == "successful" and not (
            self.rolled_back
            or self.failed
            or self.unreachable
            or self.still_exposed
            or self.not_checked
        )


def check_request(
    *,
    advisory: str,
    limit: str | None,
    canary: str,
    reason: str | None,
    inventory: str | None,
    yes: bool,
    dry_run: bool,
) -> Request:
    """The request, every value checked (UserError, one line, otherwise)."""
    from milepost.input_checks import (
        check_advisory_id,
        check_limit,
        check_text,
        check_untemplated,
        shown,
    )

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
        check_text(inventory, "--inventory", max_len=4096)
        from milepost.inventory.checks import source_problem

        source = Path(inventory)
        unusable = source_problem(source)
        if unusable:
            raise UserError(unusable)
    return Request(advisory_id, checked_limit, int(text), why, source, yes, dry_run)


def record_refusal(advisory: object, problem: str, exit_code: int) -> None:
    """Append an emergency_refused record; the ledger being down is only a warning."""
    from milepost.input_checks import shown
    from milepost.ledger.spool import append_or_spool

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
    """What the run will do: the fixed versions, and which hosts and why."""

    packages: dict[str, str]
    exposed: list[str]
    unknown: list[str]
    excepted: list[str]
    fixed: list[str]

    @property
    def candidates(self) -> list[str]:
        return sorted({*self.exposed, *self.unknown})


def plan(request: Request) -> Plan:
    """The candidate hosts, from the ledger (UserError for an advisory that cannot be
    patched: unknown, no packages, no fixed version)."""
    from milepost.inventory.checks import check_inventory, default_inventory
    from milepost.ledger import Ledger
    from milepost.patching import policy as patch_policy
    from milepost.patching.advisories import get_advisory
    from milepost.patching.exposure import exposures
    from milepost.paths import project_root

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
        from milepost.patching.exposure import installed_packages

        known = set(installed_packages(ledger, scope))
    exposed = sorted({e.host for e in items if e.status == "exposed"})
    excepted = sorted({e.host for e in items if e.status == "excepted"} - set(exposed))
    fixed = sorted(known - set(exposed) - set(excepted))
    unknown = sorted(scope - known)
    return Plan(ansible_packages(advisory.packages), exposed, unknown, excepted, fixed)


def ansible_packages(packages: Mapping[str, str | None]) -> dict[str, str]:
    """The advisory's {package: fixed version}, which came from the ledger, checked again
    right before it goes to the playbook as an extra var (Ansible templates extra vars):
    Debian package names and versions only, so no template syntax ({{ {% {#}."""
    from milepost.input_checks import TEMPLATE_MARKERS, shown
    from milepost.inventory.debian import check_package_name, check_version

    checked: dict[str, str] = {}
    for name, version in packages.items():
        package = check_package_name(name, "advisory package name")
        fixed = check_version(version or "", f"fixed version of {package}")
        if any(marker in package + fixed for marker in TEMPLATE_MARKERS):
            raise UserError(f"advisory package {shown(package)} holds template syntax")
        checked[package] = fixed
    return checked


@dataclass
class HostProgress:
    """Where a host is in the run, and the package versions it went through."""

    phase: str = "waiting"
    versions: list[str] = field(default_factory=list)
    rolled_back: bool = False

    def text(self) -> str:
        return (
            self.phase
            + (f" ({' -> '.join(self.versions)})" if self.versions else "")
            + ("; rolled back" if self.rolled_back else "")
        )

    def advance(self, phase: str) -> None:
        if PHASE_RANK[phase.split(":")[0]] >= PHASE_RANK[self.phase.split(":")[0]]:
            self.phase = phase


def follow(records: Sequence[Mapping[str, Any]], hosts: dict[str, HostProgress]) -> None:
    """Move each host on by the records the run has just written to the ledger."""
    for record in records:
        host, body = record["host"], record["body"]
        if not host:
            continue
        progress = hosts.setdefault(host, HostProgress())
        if record["kind"] == "package_change":
            if not progress.versions:
                progress.versions.append(f"{body.get('package')} {body.get('from_version')}")
            progress.versions.append(str(body.get("to_version") or "removed"))
            continue
        if record["kind"] != "task_result":
            continue
        status, task = body.get("status"), str(body.get("task") or "")
        if status == "unreachable":
            progress.advance("unreachable")
        elif status == "failed" and not body.get("ignored"):
            progress.advance(f"failed: {task}")
        elif status in ("ok", "changed"):
            if status == "changed" and "Roll every changed package back" in task:
                progress.rolled_back = True
            phase = ROLE_PHASE.get(str(body.get("role") or ""))
            for prefix, named in TASK_PHASE.items():
                if prefix in task:
                    phase = named
            if phase:
                progress.advance(phase)


class _Progress:
    """Shows each host's phase while the run records it in the ledger."""

    def __init__(self, run_id: str, hosts: Sequence[str], console: Console) -> None:
        self.run_id = run_id
        self.hosts: dict[str, HostProgress] = {host: HostProgress() for host in hosts}
        self._shown: dict[str, str] = {}
        self.console = console
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="milepost-progress", daemon=True)
        self._last = 0

    def table(self) -> Table:
        table = Table("host", "progress", title=f"emergency run {self.run_id}")
        for host, progress in sorted(self.hosts.items()):
            table.add_row(escape(host), escape(progress.text()))
        return table

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _fetch(self, ledger: Any) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from milepost.ledger.bodies import usable
        from milepost.ledger.schema import records as T

        with ledger.read_transaction() as conn:
            rows = conn.execute(
                select(T.c.seq, T.c.kind, T.c.host, T.c.body)
                .where(T.c.run_id == self.run_id, T.c.seq > self._last)
                .order_by(T.c.seq)
            ).all()
        found = []
        for seq, kind, host, body in rows:
            self._last = max(self._last, seq)
            data = usable(seq, kind, body)
            if data is not None:
                found.append({"kind": kind, "host": host, "body": data})
        return found

    def _print_moves(self) -> None:
        """Without a terminal: one line per host whose progress changed."""
        for host, progress in sorted(self.hosts.items()):
            if progress.phase != "waiting" and self._shown.get(host) != progress.text():
                self._shown[host] = progress.text()
                self.console.print(f"  {escape(host)}: {escape(progress.text())}")

    def _watch(self) -> None:
        from milepost.ledger import Ledger

        try:
            ledger = Ledger.open()
        except (MilepostError, OSError):
            return  # the run spools; the summary says what happened
        live = (
            Live(self.table(), console=self.console, auto_refresh=False)
            if self.console.is_terminal
            else None
        )
        try:
            if live is not None:
                live.start()
            while True:
                stopping = self._stop.wait(POLL_SECONDS)
                try:
                    follow(self._fetch(ledger), self.hosts)
                except MilepostError:
                    pass
                if live is not None:
                    live.update(self.table(), refresh=True)
                else:
                    self._print_moves()
                if stopping:
                    break
        finally:
            if live is not None:
                live.stop()
            ledger.close()


def summarise(
    run_id: str, advisory_id: str, packages: Mapping[str, str], hosts: Sequence[str], status: str
) -> Summary:
    """How the run left each host, from the ledger's records of the run and the exposure
    computed after it."""
    from milepost.ledger import Ledger
    from milepost.ledger.bodies import usable
    from milepost.patching.exposure import installed_packages, is_fixed

    summary = Summary(run_id=run_id, advisory_id=advisory_id, status=status)
    with Ledger.open() as ledger:
        detail = ledger.run(run_id)
        installed = installed_packages(ledger, set(hosts))
    failures: dict[str, str] = {}
    unreachable: set[str] = set()
    for result in detail["task_results"]:
        if usable(result["seq"], "task_result", result) is None:
            continue
        host = result.get("host")
        if result.get("status") == "unreachable":
            unreachable.add(host)
            failures.setdefault(host, str(result.get("summary") or "unreachable"))
        elif result.get("status") == "failed" and not result.get("ignored"):
            failures.setdefault(
                host, f"{result.get('task')}: {result.get('summary') or ''}".strip()
            )
    changed = {
        r["host"]
        for r in detail["records"]
        if r["kind"] == "package_change" and usable(r["seq"], r["kind"], r["body"]) is not None
    }
    for host in sorted(hosts):
        mine = installed.get(host, {})
        exposed = [
            name
            for name, fixed in packages.items()
            if name in mine and not is_fixed(mine[name], fixed)
        ]
        if host in unreachable:
            summary.unreachable.append(host)
        elif host in failures and host in changed:
            summary.rolled_back.append(host)
        elif host in failures:
            summary.failed.append(host)
        elif host in changed and not exposed:
            summary.patched.append(host)
        elif host not in installed:
            summary.not_checked.append(host)
        elif not exposed:
            summary.not_exposed.append(host)
        if exposed:
            summary.still_exposed.append(host)
        if host in failures:
            summary.reasons[host] = " ".join(failures[host].split())[:300]
    return summary


def _record(kind: str, run_id: str, body: Mapping[str, Any]) -> None:
    from milepost.ledger.spool import append_or_spool

    append_or_spool(
        [{"kind": kind, "run_id": run_id, "host": None, "body": dict(body)}], f"the {kind} record"
    )


def _print_plan(console: Console, request: Request, chosen: Plan) -> None:
    targets = ", ".join(f"{name} {version}" for name, version in sorted(chosen.packages.items()))
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


def print_summary(console: Console, summary: Summary) -> None:
    console.print(
        f"Emergency run {summary.run_id} for {escape(summary.advisory_id)}: {summary.status}"
    )
    for label, hosts in (
        ("patched and verified", summary.patched),
        ("rolled back", summary.rolled_back),
        ("failed", summary.failed),
        ("unreachable", summary.unreachable),
        ("not exposed", summary.not_exposed),
        ("still exposed", summary.still_exposed),
        ("not checked", summary.not_checked),
    ):
        console.print(f"  {label}: {escape(', '.join(hosts) or 'none')}")
    for host, why in sorted(summary.reasons.items()):
        console.print(f"  {escape(host)}: {escape(why)}")


def _confirm(request: Request, chosen: Plan) -> None:
    if request.yes or request.dry_run:
        return
    if not sys.stdin.isatty():
        raise UserError("not run from a terminal: pass --yes to patch without asking")
    import typer

    if not typer.confirm(f"Patch {len(chosen.candidates)} host(s) now?", default=False):
        raise UserError("not confirmed: nothing was done")


def emergency_patch(
    request: Request, console: Console, announce: Announce = lambda run_id, sources: None
) -> Summary | None:
    """Run the emergency patch; None when nothing needed to run (dry run, none exposed).
    ``announce(run_id, inventory sources)`` tells staff, at the start and at the end (the
    CLI passes milepost.notify.notify_emergency: the emergency notice, when milepost_notify
    is configured; it never raises)."""
    from milepost.ansible.runner import Interrupted, run_playbook, signals_held
    from milepost.inventory.checks import default_inventory
    from milepost.ledger.runs import new_run_id
    from milepost.patching import kill_switch
    from milepost.paths import project_root

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
                    "reason": request.reason,
                    "operator": operator_name(),
                    "limit": request.limit,
                    "canary": request.canary,
                    "candidates": chosen.candidates,
                    "excepted": chosen.excepted,
                },
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
