"""Who must approve a plan and who did: the inventory's change-control rules
(milepost.inventory.change_rules), and the signatures over plans recorded in the ledger
(kind ``plan_approval``).

A plan needs the most approvals any of its hosts asks for. The allowed-signers file (the
format of ssh-keygen(1), as Git uses for signed commits) lists every person who may sign a
plan: its author and its approvers. A plan's author signs it first; an approval by the
author's own principal or key is refused (four eyes). Every signature is verified against
the file before it is recorded, and again whenever it is counted: the ledger is not
trusted to say who approved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.change_control.plans import PLAN_KIND, Plan, from_record
from milepost.change_control.signing import Signer, verify
from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.inventory.change_rules import SETTINGS_VAR, Rules, parse_rules
from milepost.inventory.reading import default_inventory, inventory_variables
from milepost.ledger.bodies import usable
from milepost.ledger.schema import records as T

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger

APPROVAL_KIND = "plan_approval"


@dataclass(frozen=True)
class Settings:
    """The change-control rules of an inventory."""

    allowed_signers: Path | None
    default: Rules = Rules()
    hosts: Mapping[str, Rules] = field(default_factory=dict)

    def rules(self, host: str) -> Rules:
        return self.hosts.get(host, self.default)

    def approvals_needed(self, hosts: Sequence[str]) -> int:
        return max((self.rules(h).approvals for h in hosts), default=self.default.approvals)

    def plan_needs(self, plan: Plan) -> int:
        """The approvals ``plan`` needs: an emergency's as recorded when it ran, another
        plan's as its hosts' groups ask now."""
        if plan.approvals_needed is not None:
            return plan.approvals_needed
        return self.approvals_needed(plan.hosts())

    def signers(self) -> Path:
        if self.allowed_signers is None:
            raise UserError(
                f"the inventory names no allowed-signers file: set {SETTINGS_VAR}.allowed_signers"
                " in group_vars/all (one line per person who may sign a plan)"
            )
        return self.allowed_signers


def load_settings(sources: Sequence[Path] | None = None) -> Settings:
    chosen = list(sources) if sources else default_inventory()
    controller, hosts = inventory_variables(chosen, [SETTINGS_VAR])
    own = controller.get(SETTINGS_VAR)
    default = parse_rules(own, "group all")
    signers = own.get("allowed_signers") if isinstance(own, Mapping) else None
    path = None
    if signers is not None:
        if not isinstance(signers, str) or not signers.strip():
            raise UserError(f"{SETTINGS_VAR}.allowed_signers must be a file path")
        path = Path(signers)
        if not path.is_absolute():
            base = chosen[0] if chosen[0].is_dir() else chosen[0].parent
            path = base / path
    per_host = {}
    for host, values in hosts.items():
        if values.get(SETTINGS_VAR) != own:
            per_host[host] = parse_rules(values.get(SETTINGS_VAR), f"host {host}")
    return Settings(allowed_signers=path, default=default, hosts=per_host)


@dataclass(frozen=True)
class Approval:
    """A signature over a plan as recorded: whose, with which key, as author or approver."""

    plan_id: str
    content_hash: str
    role: str
    principal: str
    fingerprint: str
    signature: str
    recorded_at: str
    seq: int


def load_plans(ledger: Ledger) -> list[Plan]:
    """Every usable plan in the ledger, oldest first (an unusable record is warned about)."""
    with ledger.read_transaction() as conn:
        rows = conn.execute(
            select(T.c.seq, T.c.body).where(T.c.kind == PLAN_KIND).order_by(T.c.seq)
        ).all()
    return [plan for seq, body in rows if (plan := from_record(seq, body)) is not None]


def load_plan(ledger: Ledger, wanted: str) -> Plan:
    """The plan with id ``wanted``; UserError when the ledger holds no usable one."""
    for plan in load_plans(ledger):
        if plan.plan_id == wanted:
            return plan
    raise UserError(f"no plan {shown(wanted)} in the ledger: `milepost plan list` lists them")


def load_signatures(ledger: Ledger) -> list[Approval]:
    """Every usable plan_approval record, oldest first, as recorded (not verified)."""
    with ledger.read_transaction() as conn:
        rows = conn.execute(
            select(T.c.seq, T.c.recorded_at, T.c.body)
            .where(T.c.kind == APPROVAL_KIND)
            .order_by(T.c.seq)
        ).all()
    found = []
    for seq, recorded_at, text in rows:
        body = usable(seq, APPROVAL_KIND, text)
        if body is None:
            continue
        found.append(
            Approval(
                plan_id=body["plan_id"],
                content_hash=body["content_hash"],
                role=body["role"],
                principal=body["principal"],
                fingerprint=body["fingerprint"],
                signature=body["signature"],
                recorded_at=str(recorded_at),
                seq=seq,
            )
        )
    return found


def recorded_signatures(ledger: Ledger, plan: Plan) -> list[Approval]:
    """The signatures recorded over ``plan`` (its id and content hash), not verified."""
    return [
        a
        for a in load_signatures(ledger)
        if (a.plan_id, a.content_hash) == (plan.plan_id, plan.content_hash)
    ]


def verified(plan: Plan, recorded: Sequence[Approval], allowed_signers: Path) -> list[Approval]:
    """The recorded signatures that verify now against ``allowed_signers`` and name the
    signer the record says (a record whose signature does not is left out)."""
    good = []
    for approval in recorded:
        try:
            signer = verify(plan.signed_text(), approval.signature, allowed_signers)
        except UserError:
            continue
        if (signer.principal, signer.fingerprint) == (approval.principal, approval.fingerprint):
            good.append(approval)
    return good


def author(approvals: Sequence[Approval]) -> Approval | None:
    return next((a for a in approvals if a.role == "author"), None)


def approvers(approvals: Sequence[Approval]) -> list[Approval]:
    """The approvals that count: by someone other than the author (principal and key), one
    per principal."""
    by = author(approvals)
    seen: dict[str, Approval] = {}
    for a in approvals:
        if a.role != "approver" or (by and a.principal == by.principal):
            continue
        if by and a.fingerprint == by.fingerprint:
            continue
        seen.setdefault(a.principal, a)
    return list(seen.values())


def signature_record(plan: Plan, signer: Signer, signature: str, role: str) -> dict[str, Any]:
    return {
        "kind": APPROVAL_KIND,
        "run_id": None,
        "host": None,
        "body": {
            "plan_id": plan.plan_id,
            "content_hash": plan.content_hash,
            "role": role,
            "principal": signer.principal,
            "fingerprint": signer.fingerprint,
            "signature": signature.strip() + "\n",
        },
    }


def add_signature(
    ledger: Ledger, plan: Plan, signature: str, allowed_signers: Path, role: str
) -> Approval:
    """Verify ``signature`` over ``plan`` and record it as ``role`` (author or approver).
    UserError, nothing recorded: a signer not allowed, an author signing twice, an approval
    by the author's principal or key, an approver approving twice, a plan not signed by its
    author yet."""
    signer = verify(plan.signed_text(), signature, allowed_signers)
    known = verified(plan, recorded_signatures(ledger, plan), allowed_signers)
    by = author(known)
    if role == "author":
        if by is not None:
            raise UserError(f"plan {plan.plan_id} is already signed by its author {by.principal}")
    else:
        if by is None:
            raise UserError(
                f"plan {plan.plan_id} has no author's signature: its author signs it first"
                " (`milepost plan ... --key`)"
            )
        if signer.principal == by.principal or signer.fingerprint == by.fingerprint:
            raise UserError(
                f"{signer.principal} wrote plan {plan.plan_id}: another person must approve it"
                " (four eyes)"
            )
        if any(a.role == "approver" and a.principal == signer.principal for a in known):
            raise UserError(f"{signer.principal} has already approved plan {plan.plan_id}")
    ledger.append([signature_record(plan, signer, signature, role)])
    mine = recorded_signatures(ledger, plan)[-1]
    return mine
