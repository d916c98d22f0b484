"""What a notice about a run says (milepost.notify.content): a run that completed (how it
went, what changed, what went wrong, per system) and an emergency patch (what is affected
at its start, the outcome per system at its end).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from milepost.errors import UserError
from milepost.inventory.systems import System, systems_of_hosts
from milepost.ledger.bodies import usable_run
from milepost.ledger.queries import run
from milepost.notify.content import (
    Content,
    _base,
    _listed,
    _Plain,
    _system_dict,
    _when,
    check_run_id,
)
from milepost.notify.content_glitch import _open_glitches
from milepost.patching.advisories import load_advisories

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger
    from milepost.notify.inventory import NotifySetup

__all__ = ["completed", "emergency"]

#: The callback's name for the health gate's rollback task (plugins/callback).
#: RUC software: named in a notice; every other package is an operating-system update.
RUC_PREFIX = "ruc-"
RUN_WORDS = {
    "scheduled": "scheduled maintenance",
    "manual": "maintenance",
    "emergency": "emergency security patching",
    "drift": "configuration check",
    "remediation": "configuration correction",
    "qc": "quality checks",
}
PROBLEM_WORDS = {
    "rolled_back": (
        "the update did not pass its checks on some servers and was undone; they run the"
        " previous version"
    ),
    "failed": "the work failed on some servers; engineers are looking into it",
    "unreachable": "some servers could not be reached and were not updated",
}
OUTCOME_WORDS = {
    "fixed": "fixed",
    "rolled_back": "rolled back, still exposed",
    "failed": "failed, still exposed",
    "unreachable": "could not be reached, still exposed",
    "exposed": "still exposed",
    "pending": "not finished",
}


def _net_changes(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, tuple[Any, Any]]]:
    """{host: {package: (first from_version, last to_version)}} of the run's changes."""
    found: dict[str, dict[str, tuple[Any, Any]]] = {}
    for record in records:
        if record.get("kind") != "package_change" or not record.get("host"):
            continue
        body = record.get("body") or {}
        package = str(body.get("package") or "")
        if not package:
            continue
        mine = found.setdefault(str(record["host"]), {})
        first = mine[package][0] if package in mine else body.get("from_version")
        mine[package] = (first, body.get("to_version"))
    return found


def _host_problems(detail: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, str]:
    """{host: rolled_back | failed | unreachable} from the run's task results (or, without
    them, its per-host counts)."""
    found: dict[str, str] = {}
    results = detail.get("task_results") or []
    for result in results:
        host = result.get("host")
        if not host:
            continue
        status = result.get("status")
        if status == "changed" and result.get("rollback") is True:
            found[host] = "rolled_back"
        elif status == "unreachable":
            found.setdefault(host, "unreachable")
        elif status == "failed" and not result.get("ignored"):
            found.setdefault(host, "failed")
    if not results:
        for host, counts in (detail.get("hosts") or {}).items():
            if counts.get("unreachable"):
                found.setdefault(host, "unreachable")
            elif counts.get("failed"):
                found.setdefault(host, "failed")
    for host, problem in list(found.items()):
        undone = any(first == last for first, last in (changes.get(host) or {}).values())
        if problem == "failed" and undone:
            found[host] = "rolled_back"
    return found


def _change_words(changes: Iterable[tuple[str, Any, Any]]) -> str:
    """'software updated (ruc-payment-gateway 2.3.0 to 2.4.0); security and operating-system
    updates installed (12 packages)'."""
    software: dict[str, None] = {}
    others: set[str] = set()
    for package, first, last in sorted(changes, key=lambda c: (c[0], str(c[1]), str(c[2]))):
        if package.startswith(RUC_PREFIX):
            if first is None:
                software[f"{package} {last} installed"] = None
            elif last is None:
                software[f"{package} removed"] = None
            else:
                software[f"{package} {first} to {last}"] = None
        else:
            others.add(package)
    parts = []
    if software:
        parts.append(f"software updated ({_listed(list(software))})")
    if others:
        count = len(others)
        parts.append(
            "security and operating-system updates installed"
            f" ({count} package{'s' if count != 1 else ''})"
        )
    return "; ".join(parts)


def completed(ledger: Ledger, setup: NotifySetup, run_id: str, *, now: datetime) -> Content:
    """A notice that a run finished: how it went, what changed, what went wrong, per
    system. UserError for an unknown run."""

    run_id = check_run_id(run_id)
    detail = usable_run(run(ledger, run_id))
    zone = ZoneInfo(setup.config.timezone)
    plain = _Plain(setup.systems)
    changes = _net_changes(detail.get("records") or [])
    problems = _host_problems(detail, changes)
    touched = {
        *(detail.get("hosts") or {}),
        *(r.get("host") for r in detail.get("task_results") or () if r.get("host")),
        *changes,
    }
    systems = systems_of_hosts(setup.systems, touched)
    changed, unchanged, troubled = [], [], []
    for system in systems:
        hosts = set(system.hosts)
        net = [
            (package, first, last)
            for host in sorted(hosts & set(changes))
            for package, (first, last) in changes[host].items()
            if first != last and problems.get(host) != "rolled_back"
        ]
        kinds = [problems[h] for h in sorted(hosts & set(problems))]
        entry = _system_dict(system)
        if net:
            changed.append({**entry, "what": _change_words(net)})
        if kinds:
            worst = next(k for k in PROBLEM_WORDS if k in kinds)
            troubled.append({**entry, "what": PROBLEM_WORDS[worst], "problem": worst})
        if not net and not kinds:
            unchanged.append(entry)
    status = str(detail.get("status") or "unknown")
    if status == "running":
        words = "is still in progress"
    elif status == "aborted":
        words = "was stopped before it finished"
    elif status == "successful" and not troubled:
        words = "completed successfully"
    else:
        words = "completed with problems"
    context = {
        **_base(setup, systems, now),
        "run": {
            "id": run_id,
            "what": RUN_WORDS.get(str(detail.get("kind")), "maintenance"),
            "status": words,
            "ok": status == "successful" and not troubled,
            "started": _when(detail.get("started_at"), zone),
            "ended": _when(detail.get("ended_at"), zone),
            "rehearsal": bool(detail.get("check_mode")),
        },
        "changed": changed,
        "unchanged": unchanged,
        "problems": troubled,
        "glitches": _open_glitches(ledger, run_id, setup, plain),
    }
    about = {"run_id": run_id, "systems": [s.key for s in systems], "status": status}
    return Content("completed", context, about, run_id, systems)


def _outcome(system: System, result: Mapping[str, Any], candidates: set[str]) -> str:
    hosts = set(system.hosts) & candidates

    def listed(name: str) -> set[str]:
        return hosts & {str(h) for h in result.get(name) or ()}

    for name in ("rolled_back", "failed", "unreachable"):
        if listed(name):
            return name
    if listed("still_exposed"):
        return "exposed"
    done = listed("patched") | listed("not_exposed")
    return "fixed" if done >= hosts else "pending"


def emergency(ledger: Ledger, setup: NotifySetup, run_id: str, *, now: datetime) -> Content:
    """A notice of an emergency patch: at its start (an emergency_patch record and no
    emergency_result yet) what is affected; at its end the outcome per system. UserError
    for a run that is not an emergency patch."""

    run_id = check_run_id(run_id)
    detail = usable_run(run(ledger, run_id))
    records = detail.get("records") or []
    patch = next((r["body"] for r in records if r.get("kind") == "emergency_patch"), None)
    result = next((r["body"] for r in records if r.get("kind") == "emergency_result"), None)
    if patch is None:
        raise UserError(
            f"run {run_id} is not an emergency patch (it has no emergency_patch record):"
            " give the run id `milepost emergency-patch` printed"
        )
    advisory_id = str(patch.get("advisory_id") or "")
    advisory = load_advisories(ledger).get(advisory_id)
    candidates = {str(h) for h in patch.get("candidates") or ()}
    systems = systems_of_hosts(setup.systems, candidates)
    zone = ZoneInfo(setup.config.timezone)
    outcomes = []
    if result is not None:
        for system in systems:
            kind = _outcome(system, result, candidates)
            outcomes.append(
                {**_system_dict(system), "outcome": OUTCOME_WORDS[kind], "fixed": kind == "fixed"}
            )
    stage = "end" if result is not None else "start"
    context = {
        **_base(setup, systems, now),
        "stage": stage,
        "advisory": {
            "id": advisory_id,
            "title": advisory.title if advisory else None,
            "severity": advisory.severity if advisory else "critical",
        },
        "run": {
            "id": run_id,
            "started": _when(detail.get("started_at"), zone),
            "ended": _when(detail.get("ended_at"), zone),
        },
        "outcomes": outcomes,
        "all_fixed": bool(outcomes) and all(o["fixed"] for o in outcomes),
    }
    about = {
        "run_id": run_id,
        "advisory_id": advisory_id,
        "stage": stage,
        "systems": [s.key for s in systems],
    }
    return Content("emergency", context, about, run_id, systems)
