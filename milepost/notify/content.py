"""What each notice says, read from the ledger and the inventory (never from Ansible's
output): the context its template is rendered with, and what the notice is about.

Every context has ``program``, ``contact``, ``generated_at`` (UTC, in words) and
``systems`` ([{key, name, serves, impact}]). Host names never reach the text: a host named
in a ledger text (a glitch title, an update) becomes "a <system> server".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from milepost.errors import UserError
from milepost.input_checks import check_text, shown
from milepost.inventory.systems import System, systems_of_hosts
from milepost.ledger.bodies import usable_run
from milepost.notify.upcoming import Opening, current_window, openings

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger
    from milepost.notify.inventory import NotifySetup
    from milepost.oversight.registers import Note

__all__ = [
    "Content",
    "completed",
    "emergency",
    "glitch",
    "human_time",
    "upcoming",
    "upcoming_openings",
]

#: The callback's name for the health gate's rollback task (plugins/callback).
ROLLBACK_TASK = "Roll every changed package back to its previous version"
#: RUC software: named in a notice; every other package is an operating-system update.
RUC_PREFIX = "ruc-"
#: Software changes named per system at most; the rest are counted.
MAX_NAMED = 4
AGREED_TIME = "at a time agreed with operations"
WHEN_DONE = "the work is done"
RUN_WORDS = {
    "scheduled": "scheduled maintenance",
    "manual": "maintenance",
    "emergency": "emergency security patching",
    "drift": "configuration check",
    "remediation": "configuration correction",
    "qc": "quality checks",
}
GLITCH_STATUS_WORDS = {
    "open": "open",
    "investigating": "being investigated",
    "resolved": "resolved",
    "closed": "closed",
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
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
GLITCH_ID = re.compile(r"G-[A-Za-z0-9._-]{1,64}")
#: How code names a run in a glitch title ("playbooks/maintain.yml run failed on ...").
PLAYBOOK_RUN = re.compile(r"(?:\bplaybooks/)?\b[\w.-]+\.ya?ml run\b")


@dataclass
class Content:
    """A notice ready to render: its template's context, what it is about (recorded with
    every delivery), the run it is about (or None) and the systems it concerns."""

    notice: str
    context: dict[str, Any]
    about: dict[str, Any]
    run_id: str | None
    systems: list[System] = field(default_factory=list)


# ------------------------------------------------------------------ words


def human_time(moment: datetime, zone: ZoneInfo | None = None) -> str:
    """'Sunday 6 December 2026, 02:00 PST' (in ``zone``, default the moment's own)."""
    local = moment.astimezone(zone) if zone is not None else moment
    return f"{local:%A} {local.day} {local:%B %Y}, {local:%H:%M} {local.tzname()}"


def _ledger_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(text: str | None, zone: ZoneInfo) -> str | None:
    moment = _ledger_time(text)
    return human_time(moment, zone) if moment else None


def _listed(items: Sequence[str], limit: int = MAX_NAMED) -> str:
    shown_items = list(items[:limit])
    more = len(items) - limit
    if more > 0:
        shown_items.append(f"{more} more")
    if len(shown_items) <= 1:
        return "".join(shown_items)
    return ", ".join(shown_items[:-1]) + " and " + shown_items[-1]


def _system_dict(system: System) -> dict[str, Any]:
    return {
        "key": system.key,
        "name": system.name,
        "serves": system.serves,
        "impact": system.impact,
    }


class _Plain:
    """Replaces host names in free text from the ledger with their system's plain name."""

    def __init__(self, systems: Mapping[str, System]) -> None:
        names = {host: system.name for system in systems.values() for host in system.hosts}
        self._names = names
        hosts = sorted(names, key=len, reverse=True)
        self._pattern = (
            re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, hosts)) + r")(?![\w-])")
            if hosts
            else None
        )

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        text = PLAYBOOK_RUN.sub("the maintenance run", text)
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: f"a {self._names[m.group(1)]} server", text)


def _base(setup: NotifySetup, systems: Iterable[System], now: datetime) -> dict[str, Any]:
    config = setup.config
    return {
        "program": setup.program,
        "contact": config.contact,
        "generated_at": human_time(now.astimezone(UTC)),
        "systems": [_system_dict(s) for s in systems],
    }


def check_run_id(value: str) -> str:
    text = check_text(value, "--run-id", max_len=128)
    if not RUN_ID.fullmatch(text):
        raise UserError(
            f"--run-id {shown(text)} is not a run id: `milepost ledger runs` lists them"
        )
    return text


# ------------------------------------------------------------------ upcoming


def upcoming_openings(
    setup: NotifySetup,
    *,
    now: datetime,
    within_hours: float = 48,
    systems: Sequence[str] | None = None,
    hosts: Sequence[str] | None = None,
    starting_now: bool = False,
) -> list[Opening]:
    """The openings a notice of upcoming maintenance tells of, in systems' order.

    Without ``starting_now``: each window opening within ``within_hours`` (a system without
    a window only when ``systems`` names it: at a time agreed with operations). With it
    (a run starting): the systems of ``hosts`` (or ``systems``), starting now, closing at
    their window's close if it is open, else when the work is done.
    """
    chosen = _chosen_systems(setup, systems, hosts)
    until = now + timedelta(hours=within_hours)
    found: list[Opening] = []
    for system in chosen:
        window, blackouts = setup.windows.get(system.key, (None, []))
        if starting_now:
            opened = current_window(window, blackouts, now) if window is not None else None
            found.append(
                Opening(
                    system.key,
                    opened[0] if opened else now.astimezone(UTC).replace(microsecond=0),
                    opened[1] if opened else None,
                    starting_now=True,
                )
            )
        elif window is None:
            if systems:
                found.append(Opening(system.key, None, None))
        else:
            for opens, closes in openings(window, blackouts, now, until):
                found.append(Opening(system.key, opens, closes))
    return found


def _chosen_systems(
    setup: NotifySetup, keys: Sequence[str] | None, hosts: Sequence[str] | None
) -> list[System]:
    if keys:
        unknown = [k for k in keys if k not in setup.systems]
        if unknown:
            raise UserError(
                f"--system {shown(unknown[0])} is not one of: {', '.join(setup.systems)}"
            )
        wanted = set(keys)
        return [s for s in setup.systems.values() if s.key in wanted]
    if hosts is not None:
        return systems_of_hosts(setup.systems, hosts)
    return list(setup.systems.values())


def _closes(opening: Opening) -> str:
    """When an opening closes: the time alone on the day it opened, else day and time."""
    if opening.closes is None:
        return WHEN_DONE
    if opening.opens is not None and opening.closes.date() == opening.opens.date():
        return f"{opening.closes:%H:%M} {opening.closes.tzname()}"
    return human_time(opening.closes)


def upcoming(
    setup: NotifySetup, chosen: Sequence[Opening], *, now: datetime, run_id: str | None = None
) -> Content:
    """A notice of upcoming maintenance of ``chosen`` openings."""
    systems = [setup.systems[o.system] for o in chosen]
    unique = list({s.key: s for s in systems}.values())
    windows: list[dict[str, Any]] = []
    for opening in chosen:
        system = setup.systems[opening.system]
        if opening.starting_now:
            opens = "now"
        elif opening.opens is not None:
            opens = human_time(opening.opens)
        else:
            opens = AGREED_TIME
        windows.append(
            {
                "key": opening.key,
                "system": system.name,
                "system_key": system.key,
                "serves": system.serves,
                "impact": system.impact,
                "opens": opens,
                "closes": _closes(opening),
                "starting_now": opening.starting_now,
                "agreed": opening.opens is None and not opening.starting_now,
            }
        )
    starting = any(o.starting_now for o in chosen)
    by_system: dict[str, dict[str, Any]] = {}
    for window in windows:
        entry = by_system.setdefault(
            window["system_key"],
            {key: window[key] for key in ("system", "system_key", "serves", "impact")},
        )
        entry.setdefault("times", []).append(
            {key: window[key] for key in ("opens", "closes", "starting_now", "agreed")}
        )
    context = {
        **_base(setup, unique, now),
        "windows": windows,
        "by_system": list(by_system.values()),
        "starting_now": starting,
        "run_id": run_id,
    }
    about: dict[str, Any] = {
        "windows": [o.key for o in chosen],
        "systems": [s.key for s in unique],
        "starting_now": starting,
    }
    if run_id:
        about["run_id"] = run_id
    return Content("upcoming", context, about, run_id, unique)


# ------------------------------------------------------------------ completed


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
        task = str(result.get("task") or "")
        if status == "changed" and task.endswith(ROLLBACK_TASK):
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


def _open_glitches(
    ledger: Ledger, run_id: str, setup: NotifySetup, plain: _Plain
) -> list[dict[str, Any]]:
    from milepost.oversight.registers import GLITCH, notes

    found = []
    for note in notes(ledger, type=GLITCH):
        if note.is_open and (note.run_id == run_id or run_id in note.links.get("runs", [])):
            found.append(_glitch_summary(note, setup, plain))
    return found


def _glitch_systems(note: Note, setup: NotifySetup) -> list[System]:
    chosen = {s.key: s for s in systems_of_hosts(setup.systems, note.hosts)}
    by_name = {s.name.lower(): s for s in setup.systems.values()}
    for named in note.affected_systems:
        system = setup.systems.get(named) or by_name.get(named.lower())
        if system is not None:
            chosen.setdefault(system.key, system)
    return [s for s in setup.systems.values() if s.key in chosen]


def _glitch_summary(note: Note, setup: NotifySetup, plain: _Plain) -> dict[str, Any]:
    systems = _glitch_systems(note, setup)
    return {
        "id": note.note_id,
        "title": plain(note.title),
        "status": GLITCH_STATUS_WORDS.get(note.status, note.status),
        "systems": [s.name for s in systems],
    }


def completed(ledger: Ledger, setup: NotifySetup, run_id: str, *, now: datetime) -> Content:
    """A notice that a run finished: how it went, what changed, what went wrong, per
    system. UserError for an unknown run."""
    from milepost.ledger.queries import run

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


# ------------------------------------------------------------------ emergency


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
    from milepost.ledger.queries import run
    from milepost.patching.advisories import load_advisories

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


# ------------------------------------------------------------------ glitch


def glitch(ledger: Ledger, setup: NotifySetup, note_id: str, *, now: datetime) -> Content:
    """A notice about a glitch of the registers: what, since when, which systems, what is
    being done. UserError for an id that is not a glitch."""
    from milepost.oversight.registers import GLITCH, notes

    wanted = check_text(note_id, "--note", max_len=80)
    if not GLITCH_ID.fullmatch(wanted):
        raise UserError(
            f"--note {shown(wanted)} is not a glitch id (G-...): `milepost note list --type"
            " glitch` shows them"
        )
    found = next((n for n in notes(ledger) if n.note_id == wanted), None)
    if found is None or found.type != GLITCH:
        raise UserError(
            f"no glitch {shown(wanted)} in the registers: `milepost note list --type glitch`"
            " shows them"
        )
    zone = ZoneInfo(setup.config.timezone)
    plain = _Plain(setup.systems)
    systems = _glitch_systems(found, setup)
    impact = found.customer_impact if found.customer_impact not in (None, "unknown") else None
    latest = None
    for update in reversed(found.history):
        latest = update.get("comment") or (update.get("fields") or {}).get("text")
        if latest:
            break
    if found.status in ("resolved", "closed") and found.resolution:
        latest = found.resolution
    context = {
        **_base(setup, systems, now),
        "glitch": {
            "id": found.note_id,
            "title": plain(found.title),
            "status": GLITCH_STATUS_WORDS.get(found.status, found.status),
            "resolved": not found.is_open,
            "opened": _when(found.detected_at or found.added_at, zone),
            "impact": plain(impact),
            "being_done": plain(latest),
            "run_id": found.run_id,
        },
    }
    about = {"note_id": found.note_id, "systems": [s.key for s in systems]}
    if found.run_id:
        about["run_id"] = found.run_id
    return Content("glitch", context, about, found.run_id, systems)
