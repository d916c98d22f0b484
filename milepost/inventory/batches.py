"""Rolling batches: a canary first, then batches in which no RUC group loses more than its
allowed number of hosts at once (safety invariant 2, docs/SAFETY.md).

The playbooks compute the plan once per run on the controller (filter `milepost_batches`)
and play the hosts in its order with `serial` set to its batch sizes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from milepost.errors import UserError

#: Hosts of one group that may be out of service at the same time, unless a group says more.
DEFAULT_MAX_UNAVAILABLE = 1
#: Groups that hold every host and so say nothing about redundancy.
NOT_REDUNDANCY_GROUPS = frozenset({"all", "ungrouped", "ruc"})


def max_unavailable(value: Any, where: str) -> int:
    """A group's milepost_max_unavailable: a whole number of hosts, at least 1."""
    if value is None:
        return DEFAULT_MAX_UNAVAILABLE
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UserError(
            f"milepost_max_unavailable of {where} must be a whole number >= 1, not {value!r}"
        )
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise UserError(
            f"milepost_max_unavailable of {where} must be a whole number >= 1, not {value!r}"
        )
    return int(text)


def _cap(entry: Any, total: int) -> int:
    """Hosts a batch may hold by one entry of a serial list (a count or 'N%')."""
    text = str(entry).strip()
    if text.endswith("%") and text[:-1].isdigit():
        return max(1, math.floor(total * int(text[:-1]) / 100))
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise UserError(
        f"serial entries must be counts or percentages such as 1 or '50%', not {entry!r}"
    )


def plan(
    hosts: Sequence[str],
    groups_of: Mapping[str, Sequence[str]],
    limits: Mapping[str, Any] | None = None,
    serial: Sequence[Any] = (1, "50%"),
) -> list[list[str]]:
    """The batches, in order, for hosts (in play order).

    groups_of: each host's groups; limits: each host's milepost_max_unavailable (its
    groups' value; the smallest over a group's hosts applies); serial: the most hosts a
    batch may hold, entry by entry, the last repeating (the first is the canary).
    """
    if not serial:
        raise UserError("serial must name at least one batch size")
    limits = limits or {}
    allowed: dict[str, int] = {}
    for host in hosts:
        limit = max_unavailable(limits.get(host), host)
        for group in groups_of.get(host, ()):
            if group not in NOT_REDUNDANCY_GROUPS:
                allowed[group] = min(allowed.get(group, limit), limit)
    waiting = list(dict.fromkeys(hosts))
    batches: list[list[str]] = []
    while waiting:
        cap = _cap(serial[min(len(batches), len(serial) - 1)], len(hosts))
        batch: list[str] = []
        taken: dict[str, int] = {}
        for host in list(waiting):
            if len(batch) >= cap:
                break
            mine = [g for g in groups_of.get(host, ()) if g in allowed]
            if all(taken.get(g, 0) < allowed[g] for g in mine):
                batch.append(host)
                waiting.remove(host)
                for group in mine:
                    taken[group] = taken.get(group, 0) + 1
        batches.append(batch)
    return batches


def batch_of(batches: Sequence[Sequence[str]], host: str) -> int | None:
    """The 1-based number of the batch that holds host, or None."""
    for number, batch in enumerate(batches, start=1):
        if host in batch:
            return number
    return None
