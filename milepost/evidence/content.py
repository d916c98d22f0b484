"""What an evidence bundle says about a period, computed from the ledger segment alone (a
private ledger holding exactly the bundle's records, milepost.evidence.segment) with the
queries and rules the rest of Milepost uses: runs (milepost.ledger.queries), change plans
and their signatures checked with ssh-keygen (milepost.change_control), patch deadlines
judged as the vendor scorecards judge them (milepost.oversight.scorecard, from
milepost.patching.exposure), drift findings (milepost.drift.findings), emergencies.

``evidence(ledger, inputs)`` is a function of the segment and of ``inputs`` only (the
period, the time the bundle was made, the patch policy, the allowed-signers file): never of
the clock. `milepost evidence verify` calls it again on the bundle's own ledger.jsonl and
compares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.change_control import emergencies as change_emergencies
from milepost.change_control.approvals import (
    Approval,
    approvers,
    load_plans,
    load_signatures,
    verified,
)
from milepost.change_control.plans import Plan
from milepost.change_control.signing import check_allowed_signers
from milepost.drift.findings import findings
from milepost.errors import UserError
from milepost.evidence.segment import applied_plan, day_after
from milepost.ledger.bodies import collecting, usable, usable_run
from milepost.ledger.chain import format_time
from milepost.ledger.schema import records as T
from milepost.oversight.scorecard import PatchCompliance, Period, _judge
from milepost.patching.exposure import exposures, load_exceptions
from milepost.patching.policy import PatchPolicy, PatchSettings
from milepost.reports.maintenance import MAINTENANCE_KINDS

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger

FORMAT = "milepost-evidence/1"
QC_BAD = ("failed", "error")


@dataclass(frozen=True)
class Inputs:
    """What the evidence depends on besides the records: the period [start, end) and the
    time the bundle was made (ledger time text), the patch policy, the signers file."""

    start: str
    end: str
    made_at: str
    settings: PatchSettings
    allowed_signers: Path | None

    @property
    def as_of(self) -> str:
        """ "Now" for deadlines and emergency approvals: the period's end, or the time the
        bundle was made if that is earlier."""
        return min(self.end, self.made_at)

    def in_period(self, moment: str | None) -> bool:
        return moment is not None and self.start <= moment < self.end


def policy_data(settings: PatchSettings) -> dict[str, Any]:
    def one(policy: PatchPolicy) -> dict[str, Any]:
        return {
            "days": dict(sorted(policy.days.items())),
            "emergency_target_hours": policy.emergency_target_hours,
        }

    return {
        "policy": one(settings.policy),
        "host_policies": {h: one(p) for h, p in sorted(settings.host_policies.items())},
    }


def policy_from(data: Any) -> PatchSettings:
    """The patch settings an evidence.json states; UserError when they are malformed."""
    try:

        def one(value: Mapping[str, Any]) -> PatchPolicy:
            days = {str(k): int(v) for k, v in dict(value["days"]).items()}
            return PatchPolicy(
                days=days, emergency_target_hours=int(value["emergency_target_hours"])
            )

        return PatchSettings(
            policy=one(data["policy"]),
            host_policies={str(h): one(p) for h, p in dict(data["host_policies"]).items()},
            kev_products=(),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UserError("its patch_policy is malformed") from None


def signers_usable(path: Path | None) -> Path | None:
    """``path`` when it is an allowed-signers file that allows someone, else None (then no
    signature verifies)."""
    if path is None:
        return None
    try:
        check_allowed_signers(path)
    except UserError:
        return None
    return path


def _time(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return format_time(value)
    except ValueError:
        return None


def _signature(approval: Approval, good: Sequence[Approval]) -> dict[str, Any]:
    return {
        "role": approval.role,
        "principal": approval.principal,
        "fingerprint": approval.fingerprint,
        "recorded_at": approval.recorded_at,
        "seq": approval.seq,
        "verified": approval in good,
    }


def _plan_entry(
    plan: Plan, signatures: Sequence[Approval], signers: Path | None, applied_by: list[str]
) -> dict[str, Any]:
    mine = [
        s for s in signatures if (s.plan_id, s.content_hash) == (plan.plan_id, plan.content_hash)
    ]
    good = verified(plan, mine, signers) if mine and signers else []
    author = next((a.principal for a in good if a.role == "author"), None)
    return {
        "plan_id": plan.plan_id,
        "seq": plan.seq,
        "action": str(plan.content.get("action")),
        "created_by": plan.created_by,
        "created_at": plan.created_at,
        "expires": plan.expires,
        "hosts": plan.hosts(),
        "author": author,
        "approved_by": [a.principal for a in approvers(good)],
        "signatures": [_signature(s, good) for s in mine],
        "applied_by": applied_by,
    }


def _qc(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    results = [
        {
            "host": r.get("host"),
            "check": r["body"].get("check"),
            "status": r["body"].get("status"),
            "message": r["body"].get("message"),
        }
        for r in records
        if r.get("kind") == "qc_result"
    ]
    outcome = "none recorded"
    if results:
        outcome = "failed" if any(r["status"] in QC_BAD for r in results) else "passed"
    return {"outcome": outcome, "results": results}


def _changes(ledger: Ledger, inputs: Inputs) -> list[dict[str, Any]]:
    found = []
    for run in reversed(ledger.runs(limit=None)):
        if (
            not inputs.in_period(_time(run["started_at"]))
            or run["check_mode"]
            or run["kind"] not in MAINTENANCE_KINDS
        ):
            continue
        detail = usable_run(ledger.run(run["run_id"]))
        changes = [
            {
                "host": r["host"],
                "package": r["body"].get("package"),
                "from": r["body"].get("from_version"),
                "to": r["body"].get("to_version"),
            }
            for r in detail["records"]
            if r["kind"] == "package_change"
        ]
        found.append(
            {
                "run_id": run["run_id"],
                "kind": run["kind"],
                "playbook": run["playbook"],
                "operator": run["operator"],
                # How the operator is known: awx, change plan or self-declared.
                "identity": ((detail.get("start") or {}).get("identity") or {}).get("source")
                or "self-declared",
                "started_at": run["started_at"],
                "ended_at": run["ended_at"],
                "status": run["status"],
                "reason": run["reason"],
                "hosts": sorted(run["hosts"]),
                "package_changes": changes,
                "plan_id": applied_plan(detail.get("start")),
                "qc": _qc(detail["records"]),
            }
        )
    return found


def _deadlines(ledger: Ledger, inputs: Inputs) -> list[dict[str, Any]]:
    """Every (host, advisory, package) whose deadline falls in the period, was met or
    missed in it, or was still missed during it: judged as the scorecards judge them."""
    today = date.fromisoformat(inputs.as_of[:10])
    start_day = date.fromisoformat(inputs.start[:10])
    period = Period(label="evidence", start=start_day, end=day_after(inputs.end))
    found = []
    for e in exposures(ledger, inputs.settings, on=today):
        due = date.fromisoformat(e.due)
        closed = date.fromisoformat(e.closed_at[:10]) if e.closed_at else None
        if e.status == "fixed" and due < start_day and (closed is None or closed < start_day):
            continue  # met before the period
        judged = PatchCompliance()
        _judge(
            judged, due=due, closed=closed, fixed=e.status == "fixed", label=e.host,
            period=period, today=today, excepted=e.status == "excepted",
        )  # fmt: skip
        result = (
            "missed" if judged.missed else "met" if judged.met
            else "excepted" if judged.excepted else None
        )  # fmt: skip
        if result is None:
            continue  # neither due nor closed in the period
        found.append(
            {
                "host": e.host,
                "advisory_id": e.advisory_id,
                "package": e.package,
                "severity": e.severity,
                "kev": e.kev,
                "due": e.due,
                "installed": e.installed,
                "fixed": e.fixed,
                "status": e.status,
                "closed_at": e.closed_at,
                "closed_by": e.closed_by,
                "exception_id": e.exception_id,
                "result": result,
            }
        )
    return found


def _exceptions(ledger: Ledger, inputs: Inputs) -> list[dict[str, Any]]:
    return [
        {**e.as_dict(), "granted_in_period": inputs.in_period(e.added_at)}
        for e in load_exceptions(ledger)
        if inputs.in_period(e.added_at) or e.expires >= inputs.start[:10]
    ]


def _drift(ledger: Ledger, inputs: Inputs) -> list[dict[str, Any]]:
    return [
        {
            "id": f.id,
            "host": f.host,
            "resource": f.resource,
            "first_seen": f.first_seen,
            "state": f.state,
            "resolved_at": f.resolved_at,
            "resolution": f.resolution,
            "corrected_by_run": f.corrected_by_run,
            "class": f.cls,
            "change_id": f.change_id,
        }
        for f in findings(ledger)
        if inputs.in_period(f.first_seen) or inputs.in_period(f.resolved_at)
    ]


def _kind_rows(ledger: Ledger, kind: str) -> list[tuple[int, str | None, str, dict[str, Any]]]:
    with ledger.read_transaction() as conn:
        rows = conn.execute(
            select(T.c.seq, T.c.run_id, T.c.recorded_at, T.c.body)
            .where(T.c.kind == kind)
            .order_by(T.c.seq)
        ).all()
    return [
        (int(seq), run_id, str(at), body)
        for seq, run_id, at, text in rows
        if (body := usable(int(seq), kind, text)) is not None
    ]


def emergency_approvals(
    ledger: Ledger, signatures: Sequence[Approval], signers: Path | None, now: datetime
) -> list[dict[str, Any]]:
    """Each emergency's approval as of ``now``, as plain data (the rule is
    milepost.change_control.emergencies')."""
    found = change_emergencies.emergency_approvals(load_plans(ledger), signatures, signers, now)
    return [e.as_dict(now) for e in found]


def _emergencies(
    ledger: Ledger, inputs: Inputs, signatures: Sequence[Approval], signers: Path | None
) -> list[dict[str, Any]]:
    """Each emergency run of the period: what it patched, how it ended, its approval."""
    now = datetime.fromisoformat(inputs.as_of.replace("Z", "+00:00"))
    approvals = {a["run_id"]: a for a in emergency_approvals(ledger, signatures, signers, now)}
    results = {run_id: body for _, run_id, _, body in _kind_rows(ledger, "emergency_result")}
    found = []
    for seq, run_id, at, body in _kind_rows(ledger, "emergency_patch"):
        if not inputs.in_period(at):
            continue
        result = results.get(run_id) or {}
        found.append(
            {
                "run_id": run_id,
                "seq": seq,
                "recorded_at": at,
                "advisory_id": body.get("advisory_id"),
                "operator": body.get("operator"),
                "reason": body.get("reason"),
                "candidates": list(body.get("candidates") or []),
                "status": result.get("status", "no result recorded"),
                "patched": list(result.get("patched") or []),
                "rolled_back": list(result.get("rolled_back") or []),
                "failed": list(result.get("failed") or []),
                "still_exposed": list(result.get("still_exposed") or []),
                "approval": approvals.pop(run_id, None) if run_id else None,
            }
        )
    # An emergency plan whose run left no emergency_patch record in the period.
    for approval in approvals.values():
        if inputs.in_period(_time(approval["ran_at"])) or inputs.in_period(
            _time(approval["approve_by"])
        ):
            found.append({"run_id": approval["run_id"], "seq": None, "recorded_at": None,
                          "advisory_id": approval["advisory"], "operator": approval["operator"],
                          "reason": None, "candidates": approval["hosts"],
                          "status": "no result recorded", "patched": [], "rolled_back": [],
                          "failed": [], "still_exposed": [], "approval": approval})  # fmt: skip
    return found


def evidence(ledger: Ledger, inputs: Inputs, segment: Mapping[str, Any]) -> dict[str, Any]:
    """The evidence of the period as plain data (evidence.json). ``segment``: the bundle's
    segment and checkpoint (first_seq, last_seq, records, head_hash, checkpoint_created_at,
    public_key)."""
    signers = signers_usable(inputs.allowed_signers)
    with collecting() as skipped:
        changes = _changes(ledger, inputs)
        signatures = load_signatures(ledger)
        applied: dict[str, list[str]] = {}
        for change in changes:
            if change["plan_id"]:
                applied.setdefault(change["plan_id"], []).append(change["run_id"])
        run_ids = {c["run_id"] for c in changes}
        signed_in_period = {s.plan_id for s in signatures if inputs.in_period(s.recorded_at)}
        plans = [
            _plan_entry(plan, signatures, signers, applied.get(plan.plan_id, []))
            for plan in load_plans(ledger)
            if plan.plan_id in applied
            or plan.plan_id in signed_in_period
            or plan.dry_run in run_ids
            or inputs.in_period(_time(plan.created_at))
        ]
        emergencies = _emergencies(ledger, inputs, signatures, signers)
        deadlines = _deadlines(ledger, inputs)
        exceptions = _exceptions(ledger, inputs)
        drift = _drift(ledger, inputs)
    return {
        "format": FORMAT,
        "period": {"from": inputs.start, "to": inputs.end},
        "made_at": inputs.made_at,
        "as_of": inputs.as_of,
        "patch_policy": policy_data(inputs.settings),
        "allowed_signers": "allowed_signers" if signers is not None else None,
        "segment": dict(segment),
        "summary": {
            "changes": len(changes),
            "changes_failed": sum(1 for c in changes if c["status"] != "successful"),
            "qc_failed": sum(1 for c in changes if c["qc"]["outcome"] == "failed"),
            "plans": len(plans),
            "emergencies": len(emergencies),
            "emergency_approvals_overdue": sum(
                1 for e in emergencies if (e["approval"] or {}).get("state") == "overdue"
            ),
            "deadlines_met": sum(1 for d in deadlines if d["result"] == "met"),
            "deadlines_missed": sum(1 for d in deadlines if d["result"] == "missed"),
            "exceptions": len(exceptions),
            "drift_found": sum(1 for d in drift if inputs.in_period(d["first_seen"])),
            "drift_corrected": sum(1 for d in drift if d["resolution"] == "remediated"),
        },
        "changes": changes,
        "plans": plans,
        "emergencies": emergencies,
        "deadlines": deadlines,
        "exceptions": exceptions,
        "drift": drift,
        "skipped_records": sorted(skipped.messages),
    }
