"""A plan: exactly what a run would change, computed from its dry run's records (the probe
of each host, the batches, the tasks that would change, the refusals), with a content hash.

The content holds no time and no id: the same fleet in the same state with the same
options gives the same hash, so a plan is stale exactly when a new dry run gives another
hash. The plan record (kind ``change_plan``) adds its id (``P-`` and the hash's first 12
hex digits), who made it, when and until when it may be applied, and the dry run it was
read from.

Record bodies read back from the ledger are untrusted (docs/SAFETY.md, invariant 6): a
probe whose upgrades are not package names and Debian versions makes no plan (one line).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.inventory.debian import check_package_name, check_version
from milepost.ledger.bodies import skip, usable
from milepost.ledger.names import PLAN_ACTIONS as ACTIONS

PLAN_KIND = "change_plan"
#: How long a plan may be applied after it was made, unless the plan says otherwise.
DEFAULT_VALID = timedelta(hours=24)
#: Why a package moves: a pinned RUC version, an OS security update, another OS update.
REASONS = ("pin", "os-security", "os", "advisory")


@dataclass(frozen=True)
class Plan:
    """A recorded plan: its id, content hash and content, and the record's own fields."""

    plan_id: str
    content_hash: str
    content: dict[str, Any]
    created_by: str
    created_at: str
    expires: str
    dry_run: str
    seq: int = 0
    #: An emergency's plan (recorded as the emergency run starts, approved after it): the
    #: time its approvals are due by and how many its hosts need.
    approve_by: str | None = None
    approvals_needed: int | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "plan_id": self.plan_id,
            "content_hash": self.content_hash,
            "content": self.content,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "expires": self.expires,
            "dry_run": self.dry_run,
        }
        if self.approve_by is not None:
            body.update(approve_by=self.approve_by, approvals_needed=self.approvals_needed)
        return body

    @property
    def action(self) -> str:
        return str(self.content["action"])

    def signed_text(self) -> bytes:
        """What author and approvers sign: the plan's id, hash and expiry, one line."""
        return (
            f"milepost change plan {self.plan_id} {self.content_hash}"
            f" expires {self.expires}\n".encode()
        )

    def expired(self, now: datetime) -> bool:
        return now >= datetime.fromisoformat(self.expires)

    def hosts(self) -> list[str]:
        return sorted(self.content["hosts"])


def value_digests(variables: Mapping[str, Any]) -> dict[str, str]:
    """{name: sha256 of the value}: how a plan keeps extra vars (values may be secrets)."""
    return {
        name: "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()
        for name, value in sorted(variables.items())
    }


def run_options(limit: str | None, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a run as its plan holds them: the limit, the downgrades it names
    (milepost_allow_downgrade), and every other extra var by name with a digest of its
    value. Applying the plan must give the same ones."""
    rest = dict(variables)
    downgrades = rest.pop("milepost_allow_downgrade", None) or []
    return {
        "limit": limit,
        "allow_downgrade": sorted(downgrades),
        "extra_vars": value_digests(rest),
    }


def content_hash(content: Mapping[str, Any]) -> str:
    """sha256 of the content as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def plan_id(digest: str) -> str:
    return "P-" + digest.removeprefix("sha256:")[:12]


def _move(
    package: Any, from_version: Any, to_version: Any, reason: str, where: str
) -> dict[str, Any]:
    return {
        "package": check_package_name(str(package), f"{where}: package"),
        "from": check_version(str(from_version), f"{where}: version of {package}")
        if from_version not in (None, "")
        else None,
        "to": check_version(str(to_version), f"{where}: version of {package}"),
        "reason": reason,
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _host_moves(host: str, probe: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The packages the probe says the run would move, and what it could not tell."""
    where = f"the dry run's probe of {host}"
    moves: list[dict[str, Any]] = []
    unknown: list[str] = []
    upgrades = probe.get("os_upgrades")
    if upgrades is None:
        unknown.append("the OS updates (the APT cache could not be read)")
    elif not isinstance(upgrades, list):
        raise UserError(f"{where}: os_upgrades is not a list: record a new dry run")
    else:
        for entry in upgrades:
            if not isinstance(entry, dict):
                raise UserError(f"{where}: an OS upgrade is not an object: record a new dry run")
            reason = "os-security" if entry.get("security") is True else "os"
            moves.append(
                _move(entry.get("package"), entry.get("from_version"), entry.get("to_version"),
                      reason, where)
            )  # fmt: skip
    pins = _mapping(_mapping(probe.get("asked")).get("pins"))
    ruc = _mapping(probe.get("ruc_packages"))
    pending = probe.get("pins_pending") or []
    if not isinstance(pending, list):
        raise UserError(f"{where}: pins_pending is not a list: record a new dry run")
    for package in pending:
        if package not in pins:
            raise UserError(f"{where}: {shown(package)} is pending but not pinned")
        installed = _mapping(ruc.get(package)).get("installed")
        moves.append(_move(package, installed, pins[package], "pin", where))
    return sorted(moves, key=lambda m: (m["package"], m["reason"])), unknown


def _batches(dry_run: Mapping[str, Any]) -> list[dict[str, Any]]:
    batches = []
    for record in dry_run.get("records") or []:
        body = record.get("body")
        if record.get("kind") == "batch_started" and isinstance(body, dict):
            members, number = body.get("hosts"), body.get("number")
            if isinstance(members, list) and isinstance(number, int):
                batches.append({"number": number, "hosts": [str(h) for h in members]})
    return sorted(batches, key=lambda b: b["number"])


def _content(
    action: str,
    options: Mapping[str, Any],
    dry_run: Mapping[str, Any],
    hosts: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The content: each host's entry completed with the tasks the dry run would change,
    its refusals and its batch."""
    for result in dry_run.get("task_results") or []:
        host, status = result.get("host"), result.get("status")
        if host not in hosts:
            continue
        task = str(result.get("task") or "")
        if status == "changed" and task not in hosts[host]["would_change"]:
            hosts[host]["would_change"].append(task)
        elif status in ("failed", "unreachable"):
            message = " ".join(str(result.get("msg") or status).split())[:300]
            hosts[host]["refused"].append(f"{task}: {message}")
    batches = _batches(dry_run)
    batch_of = {h: b["number"] for b in batches for h in b["hosts"]}
    for host, entry in hosts.items():
        entry["batch"] = batch_of.get(host)
    return {"action": action, "options": dict(options), "hosts": hosts, "batches": batches}


def _entry(**more: Any) -> dict[str, Any]:
    return {"packages": [], "reboot_pending": False, "would_change": [], "refused": [],
            "unknown": [], **more}  # fmt: skip


def build_content(
    action: str, options: Mapping[str, Any], dry_run: Mapping[str, Any]
) -> dict[str, Any]:
    """The plan's content from a dry run as ``Ledger.run`` gives it (``usable_run``)."""
    if action not in ACTIONS:
        raise UserError(f"unknown plan kind {shown(action)}: one of {', '.join(ACTIONS)}")
    probes: dict[str, Mapping[str, Any]] = {}
    for record in dry_run.get("records") or []:
        body, host = record.get("body"), record.get("host")
        if record.get("kind") == "host_probe" and isinstance(body, dict) and host:
            probes.setdefault(str(host), body)  # the first: the state before the run
    if not probes:
        raise UserError(
            "the dry run probed no host (all refused before the probe, or none matched"
            " --limit): nothing to plan"
        )
    hosts: dict[str, dict[str, Any]] = {}
    for host, probe in sorted(probes.items()):
        moves, unknown = _host_moves(host, probe)
        hosts[host] = _entry(
            packages=moves, reboot_pending=probe.get("reboot_required") is True, unknown=unknown
        )
    return _content(action, options, dry_run, hosts)


def resource_digest(entry: Mapping[str, Any]) -> str:
    """sha256 of how a resource differs (expected, actual, diff): a plan to correct it is
    stale when it differs otherwise."""
    text = json.dumps(
        {k: entry.get(k) for k in ("expected", "actual", "diff")},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )  # fmt: skip
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def build_remediate_content(
    options: Mapping[str, Any],
    dry_run: Mapping[str, Any],
    selection: Mapping[str, Sequence[str]] | None,
) -> dict[str, Any]:
    """A remediation plan's content from a dry run of playbooks/remediate.yml: per host,
    the resources its last drift check found differing (within ``selection``, host ->
    resources; None: all), each with a digest of how it differs."""
    checks: dict[str, Mapping[str, Any]] = {}
    for record in dry_run.get("records") or []:
        body, host = record.get("body"), record.get("host")
        if record.get("kind") == "drift_check" and isinstance(body, dict) and host:
            checks[str(host)] = body  # the last: the full check after the correcting play
    wanted = sorted(selection) if selection is not None else sorted(checks)
    if not wanted:
        raise UserError("the dry run checked no host (none matched --limit): nothing to plan")
    hosts: dict[str, dict[str, Any]] = {}
    for host in wanted:
        check = checks.get(host)
        if check is None:
            hosts[host] = _entry(unknown=["its drift (the dry run did not check it)"])
            continue
        drifted = check.get("drifted") or []
        if not isinstance(drifted, list):
            raise UserError(f"the dry run's drift check of {host} is malformed: plan again")
        chosen = None if selection is None else set(selection[host])
        resources = sorted(
            (
                {"resource": str(d["resource"]), "digest": resource_digest(d)}
                for d in drifted
                if isinstance(d, dict) and d.get("resource")
                and (chosen is None or d["resource"] in chosen)
            ),
            key=lambda r: r["resource"],
        )  # fmt: skip
        hosts[host] = _entry(resources=resources)
    return _content("remediate", options, dry_run, hosts)


def plan_resources(plan: Plan) -> dict[str, list[str]]:
    """{host: [resource, ...]} a remediation plan corrects (hosts with none left out): what
    the run applying it takes as milepost_remediate, exactly."""
    return {
        host: [r["resource"] for r in entry.get("resources") or []]
        for host, entry in sorted(plan.content["hosts"].items())
        if entry.get("resources")
    }


def new_plan(
    content: dict[str, Any],
    *,
    created_by: str,
    dry_run: str,
    now: datetime | None = None,
    valid: timedelta = DEFAULT_VALID,
) -> Plan:
    made = (now or datetime.now(UTC)).replace(microsecond=0)
    digest = content_hash(content)
    return Plan(
        plan_id=plan_id(digest),
        content_hash=digest,
        content=content,
        created_by=created_by,
        created_at=made.isoformat(),
        expires=(made + valid).isoformat(),
        dry_run=dry_run,
    )


def plan_record(plan: Plan) -> dict[str, Any]:
    return {"kind": PLAN_KIND, "run_id": None, "host": None, "body": plan.body()}


def from_record(seq: int, body: object) -> Plan | None:
    """The plan of a change_plan record, or None (warned once) when it is not usable:
    fields missing, or a content whose hash is not the one recorded."""
    found = usable(seq, PLAN_KIND, body)
    if found is None:
        return None
    plan = Plan(
        plan_id=found["plan_id"],
        content_hash=found["content_hash"],
        content=found["content"],
        created_by=found["created_by"],
        created_at=found["created_at"],
        expires=found["expires"],
        dry_run=found["dry_run"],
        seq=seq,
        approve_by=found.get("approve_by"),
        approvals_needed=found.get("approvals_needed"),
    )
    if (
        content_hash(plan.content) != plan.content_hash
        or plan_id(plan.content_hash) != plan.plan_id
    ):
        skip(seq, PLAN_KIND, "its content does not match its hash")
        return None
    return plan


def summary_rows(plan: Plan) -> list[tuple[str, str, str, str, str]]:
    """(batch, host, package or resource, change, why) per package move and resource to
    correct, in batch order; a host with nothing to change or a refusal gets one row
    saying so."""
    rows = []
    hosts = plan.content["hosts"]
    order = sorted(hosts, key=lambda h: (hosts[h].get("batch") or 0, h))
    for host in order:
        entry = hosts[host]
        batch = str(entry.get("batch") or "-")
        for refusal in entry["refused"]:
            rows.append((batch, host, "-", "REFUSED", refusal))
        for move in entry["packages"]:
            rows.append(
                (batch, host, move["package"], f"{move['from'] or 'none'} -> {move['to']}",
                 move["reason"])
            )  # fmt: skip
        for resource in entry.get("resources") or []:
            rows.append((batch, host, resource["resource"], "back to its baseline", "drift"))
        for what in entry["unknown"]:
            rows.append((batch, host, "-", "unknown", what))
        if not (entry["packages"] or entry.get("resources") or entry["refused"]
                or entry["unknown"]):  # fmt: skip
            rows.append((batch, host, "-", "no change", ""))
    return rows
