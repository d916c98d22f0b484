"""Emergencies under change control: an emergency patch may run before it is approved, but
never unrecorded. When any of its hosts' groups asks for approvals, `milepost
emergency-patch` records the emergency's own change plan as the run starts (action
``emergency``: per host, the advisory's packages and the versions they go to), signed by
the on-call engineer as its author, with the time its approvals are due by
(``approve_by``: the start plus the shortest ``emergency_within_hours`` of its hosts) and
how many are needed. Approvers then sign it with `milepost approve` as any plan.

Each host checks on the controller that its emergency run has that plan
(milepost.change_control.gate), so an emergency run started any other way is refused
where approvals are asked. An approval still missing after ``approve_by`` is overdue: the
dashboard and the evidence say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from milepost.change_control.approvals import (
    Approval,
    Settings,
    approvers,
    load_settings,
    signature_record,
    verified,
)
from milepost.change_control.plans import Plan, new_plan, plan_record
from milepost.change_control.signing import sign, verify
from milepost.errors import UserError
from milepost.ledger.chain import format_time
from milepost.operator import operator_name
from milepost.patching import emergency

EMERGENCY = "emergency"
#: What an emergency's approval is, at a given time.
STATES = ("approved", "approved late", "awaiting", "overdue")


def needs_approval(settings: Settings, hosts: Sequence[str]) -> tuple[int, int]:
    """(approvals needed, hours they are due within) for an emergency on ``hosts``;
    (0, 0) when no host's group asks for approvals."""
    asking = [settings.rules(h) for h in hosts if settings.rules(h).approvals]
    if not asking:
        return 0, 0
    return max(r.approvals for r in asking), min(r.emergency_within_hours for r in asking)


def emergency_content(
    advisory_id: str,
    options: Mapping[str, Any],
    install: Mapping[str, str],
    installed: Mapping[str, Mapping[str, str]],
    hosts: Sequence[str],
) -> dict[str, Any]:
    """The content of an emergency's plan: per host, each package of the advisory it has
    (``installed``: {host: {package: version}}; a host without package facts yet gets
    every package) going to the version the run installs."""
    entries = {}
    for host in sorted(hosts):
        have = installed.get(host) or {}
        moves = [
            {"package": name, "from": have.get(name), "to": version, "reason": "advisory"}
            for name, version in sorted(install.items())
            if not have or name in have
        ]
        entries[host] = {
            "packages": moves,
            "reboot_pending": False,
            "would_change": [],
            "refused": [],
            "unknown": [] if have else ["the installed versions (no package facts yet)"],
            "batch": None,
        }
    return {
        "action": EMERGENCY,
        "options": {"advisory": advisory_id, **dict(options)},
        "hosts": entries,
        "batches": [],
    }


def emergency_plan(
    content: dict[str, Any],
    *,
    created_by: str,
    run_id: str,
    now: datetime,
    needed: int,
    within_hours: int,
) -> Plan:
    """The plan of emergency run ``run_id``, due to be approved ``within_hours`` of ``now``
    (the plan stays valid as long: an approval after it is recorded as late)."""
    plan = new_plan(
        content, created_by=created_by, dry_run=run_id, now=now,
        valid=timedelta(hours=within_hours),
    )  # fmt: skip
    return replace(plan, approve_by=plan.expires, approvals_needed=needed)


def emergency_records(
    request: emergency.Request, chosen: emergency.Plan, run_id: str, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The emergency's change plan and its author's signature, where any candidate host's
    group asks for approvals (none otherwise). UserError, nothing recorded: no --key there,
    or a key the allowed-signers file does not list."""
    settings = load_settings([request.inventory] if request.inventory else None)
    needed, hours = needs_approval(settings, chosen.candidates)
    if not needed:
        return []
    if request.key is None:
        raise UserError(
            f"the exposed hosts' groups ask for {needed} approval(s) within {hours} hours:"
            " sign the emergency as its author with --key YOUR_SSH_KEY"
        )
    content = emergency_content(
        request.advisory_id,
        {"limit": request.limit, "canary": request.canary, "run": run_id},
        chosen.install,
        chosen.installed,
        chosen.candidates,
    )
    plan = emergency_plan(content, created_by=operator_name(), run_id=run_id,
                          now=now or datetime.now(UTC), needed=needed,
                          within_hours=hours)  # fmt: skip
    signature = sign(plan.signed_text(), request.key)
    signer = verify(plan.signed_text(), signature, settings.signers())
    return [plan_record(plan), signature_record(plan, signer, signature, "author")]


@dataclass(frozen=True)
class EmergencyApproval:
    """An emergency's plan and the approvals that count (verified)."""

    plan_id: str
    run_id: str
    advisory: str
    hosts: list[str]
    operator: str
    ran_at: str
    approve_by: str
    needed: int
    approved_by: list[str]
    #: When the approval that completed the count was recorded, if it has been.
    approved_at: str | None

    def state(self, now: datetime) -> str:
        due = datetime.fromisoformat(self.approve_by)
        if self.approved_at is not None:
            late = datetime.fromisoformat(self.approved_at) > due
            return "approved late" if late else "approved"
        return "overdue" if now > due else "awaiting"

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "run_id": self.run_id,
            "advisory": self.advisory,
            "hosts": self.hosts,
            "operator": self.operator,
            "ran_at": self.ran_at,
            "approve_by": self.approve_by,
            "needed": self.needed,
            "approved_by": self.approved_by,
            "approved_at": self.approved_at,
            "state": self.state(now),
        }


def emergency_approvals(
    plans: Sequence[Plan],
    signatures: Sequence[Approval],
    allowed_signers: Path | None,
    now: datetime,
) -> list[EmergencyApproval]:
    """Every emergency's plan with its approvals, oldest first. Signatures count only when
    they verify against ``allowed_signers`` now (none count without the file) and only
    those recorded before ``now`` (a report of the past sees the past)."""
    found = []
    for plan in plans:
        if plan.action != EMERGENCY or plan.approve_by is None:
            continue
        mine = [
            s
            for s in signatures
            if (s.plan_id, s.content_hash) == (plan.plan_id, plan.content_hash)
            and datetime.fromisoformat(s.recorded_at) <= now
        ]
        good = verified(plan, mine, allowed_signers) if mine and allowed_signers else []
        counted = sorted(approvers(good), key=lambda a: a.seq)
        needed = plan.approvals_needed or 0
        done = counted[needed - 1].recorded_at if needed and len(counted) >= needed else None
        found.append(
            EmergencyApproval(
                plan_id=plan.plan_id,
                run_id=plan.dry_run,
                advisory=str(plan.content["options"].get("advisory", "")),
                hosts=plan.hosts(),
                operator=plan.created_by,
                ran_at=plan.created_at,
                approve_by=plan.approve_by,
                needed=needed,
                approved_by=[a.principal for a in counted],
                approved_at=format_time(done) if done else None,
            )
        )
    return found
