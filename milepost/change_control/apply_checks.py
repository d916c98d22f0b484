"""Whether a plan may be applied now: not expired, approved as its hosts' rules ask, given
the same extra vars, and not stale (a new dry run gives the same content). Each refusal is
one line saying what to do; the caller exits 3 (refused), nothing changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from milepost.change_control.approvals import Approval, approvers, author
from milepost.change_control.plans import Plan, content_hash, run_options
from milepost.errors import Refused


def check_not_expired(plan: Plan, now: datetime) -> None:
    if plan.expired(now):
        raise Refused(f"plan {plan.plan_id} expired at {plan.expires}: make a new plan")


def check_approved(plan: Plan, needed: int, good: Sequence[Approval]) -> list[str]:
    """The approvers' principals; Refused when ``needed`` approvals are more than the
    verified signatures ``good`` give (or the author never signed)."""
    counted = approvers(good)
    if needed and author(good) is None:
        raise Refused(
            f"plan {plan.plan_id} is not signed by its author: its hosts need {needed}"
            " approval(s) of a signed plan"
        )
    if len(counted) < needed:
        raise Refused(
            f"plan {plan.plan_id} has {len(counted)} of the {needed} approval(s) its hosts"
            f" need: ask another allowed signer to run `milepost approve {plan.plan_id}`"
        )
    return [a.principal for a in counted]


def check_same_options(plan: Plan, limit: str | None, variables: Mapping[str, Any]) -> None:
    """The options given now are the plan's: its limit, downgrades and extra vars (names
    and values, compared by digest)."""
    now = run_options(limit, variables)
    if (now["limit"], now["allow_downgrade"]) != (
        plan.content["options"].get("limit"),
        plan.content["options"].get("allow_downgrade"),
    ):
        raise Refused(
            f"plan {plan.plan_id} was made with --limit {plan.content['options'].get('limit')}"
            f" and downgrades {plan.content['options'].get('allow_downgrade')}: give the same,"
            " or make a new plan"
        )
    planned = plan.content["options"].get("extra_vars") or {}
    given = now["extra_vars"]
    if given != planned:
        names = sorted(set(given) ^ set(planned)) or sorted(
            n for n in given if given[n] != planned.get(n)
        )
        raise Refused(
            f"plan {plan.plan_id} was made with other extra vars ({', '.join(names)} differ):"
            " give the plan's -e values, or make a new plan"
        )


def _first_difference(old: Any, new: Any, where: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{where}.{key}".lstrip("."))
    return where or "the plan"


def check_fresh(plan: Plan, content: Mapping[str, Any]) -> None:
    """The new dry run's content is the plan's; Refused naming the first part that differs."""
    if content_hash(content) != plan.content_hash:
        where = _first_difference(plan.content, dict(content))
        raise Refused(
            f"plan {plan.plan_id} is stale: the fleet changed since it was made ({where}"
            " differs): make a new plan"
        )


def plan_versions(plan: Plan) -> dict[str, dict[str, dict[str, str]]]:
    """{host: {"os": {package: version}, "pins": {package: version}}}: every version the
    plan installs, the most a run applying it may (milepost_plan's hosts)."""
    return {
        host: {
            "os": {m["package"]: m["to"] for m in entry["packages"] if m["reason"] != "pin"},
            "pins": {m["package"]: m["to"] for m in entry["packages"] if m["reason"] == "pin"},
        }
        for host, entry in plan.content["hosts"].items()
    }
