"""What each notice says, read from the ledger and the inventory (never from Ansible's
output): the context its template is rendered with, and what the notice is about. Here: the
notice (:class:`Content`) and the words every notice uses; each notice's own content is in
milepost.notify.content_upcoming (upcoming maintenance), milepost.notify.content_runs (a
run completed, an emergency patch), milepost.notify.content_glitch (a glitch) and
milepost.notify.content_review (a question reminder, the hypercare daily review).

Every context has ``program``, ``contact``, ``generated_at`` (UTC, in words) and
``systems`` ([{key, name, serves, impact}]). Host names never reach the text: a host named
in a ledger text (a glitch title, an update) becomes "a <system> server".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from milepost.errors import UserError
from milepost.input_checks import check_text, shown
from milepost.inventory.systems import System

if TYPE_CHECKING:
    from milepost.notify.inventory import NotifySetup

__all__ = ["Content", "human_time"]

#: Software changes named per system at most; the rest are counted.
MAX_NAMED = 4
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
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
