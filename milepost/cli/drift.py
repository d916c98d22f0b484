"""`milepost drift report|check|remediate`: drift findings, drift checks and remediation.

Findings are computed from the ledger's drift_check records (milepost.drift.findings); planned
changes are change_opened / change_closed records (milepost.drift.changes). Exit codes: 0 done,
1 the ledger could not be written, 2 bad input (one line on stderr).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from milepost.ansible.runner import run_checked
from milepost.cli.common import (
    AllowDowngradeOption,
    InventoryOption,
    JsonOption,
    LimitOption,
    allow_downgrade_vars,
    console,
    dash,
    inventory_groups_of,
    open_ledger,
    parse_since,
    print_json,
    short_time,
)
from milepost.drift import findings as drift
from milepost.drift.findings import _drifted as drift_resources
from milepost.errors import MilepostError, UserError
from milepost.input_checks import TEMPLATE_MARKERS, check_limit
from milepost.input_checks import shown as _shown
from milepost.ledger.bodies import usable

drift_app = typer.Typer(help="Configuration drift findings.", no_args_is_help=True)


CLASS_STYLE = {"planned": "green", "unauthorised": "red"}
#: Groups named in an unknown-group error; the rest are counted.
GROUPS_NAMED = 10


def _cls(finding: dict[str, Any]) -> str:
    cls = str(finding["cls"])
    style = CLASS_STYLE.get(cls, "")
    text = escape(cls + (f" ({finding['change_id']})" if finding.get("change_id") else ""))
    return f"[{style}]{text}[/{style}]" if style else text


# ------------------------------------------------------------------ drift


@drift_app.command("report")
def drift_report(
    group: Annotated[
        str | None,
        typer.Option("--group", metavar="GROUP", help="Only findings of this inventory group."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only checks since: YYYY-MM-DD, ISO time, or an age: 30d."),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list resolved findings and who resolved them.")
    ] = False,
    inventory: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open drift findings, counts per group and vendor, and the trend per week."""

    when = parse_since(since, "--since") if since else None
    ledger = open_ledger()
    hosts: frozenset[str] | None = None
    if group is not None:
        known = {f.group for f in drift.findings(ledger) if f.group}
        if group not in known:
            try:
                groups = inventory_groups_of(inventory)
            except UserError:
                groups = {}
            if group not in groups:
                names = sorted(known | set(groups) - {"all", "ungrouped"})
                shown = ", ".join(names[:GROUPS_NAMED])
                if len(names) > GROUPS_NAMED:
                    shown += f" and {len(names) - GROUPS_NAMED} more"
                listed = f" (known: {shown})" if names else ""
                raise UserError(
                    f"unknown group {group!r}: no drift finding or inventory group has it{listed}"
                )
            hosts = groups[group]
    result = drift.report(ledger, group=group if hosts is None else None, since=when, hosts=hosts)
    result["group"] = group
    if not show_all:
        result.pop("resolved")
    if as_json:
        print_json(result)
        return
    _print_report(result, show_all)


def _counts_table(title: str, label: str, counts: dict[str, dict[str, int]]) -> Table:
    table = Table(label, "open", "planned", "unauthorised", "recurring", title=title)
    for name, row in counts.items():
        table.add_row(
            escape(name),
            str(row["open"]),
            str(row["planned"]),
            str(row["unauthorised"]),
            str(row["recurring"]),
        )
    return table


def _print_report(result: dict[str, Any], show_all: bool) -> None:
    scope = f" in group {escape(result['group'])}" if result["group"] else ""
    scope += f" since {short_time(result['since'])}" if result["since"] else ""
    totals = result["totals"]
    if not result["trend"]:
        console.print(f"no drift findings{scope} in the ledger")
        return
    console.print(
        f"drift{scope}: {totals['open']} open ({totals['unauthorised']} unauthorised,"
        f" {totals['planned']} planned, {totals['recurring']} recurring),"
        f" {totals['resolved']} resolved"
    )
    if result["open"]:
        table = Table(
            "id",
            "host",
            "group",
            "vendor",
            "resource",
            "class",
            "recurring",
            "first seen (UTC)",
            "last seen (UTC)",
            "age (days)",
            title="open findings",
        )
        for f in result["open"]:
            table.add_row(
                escape(f["id"]),
                escape(f["host"]),
                dash(f["group"]),
                dash(f["vendor"]),
                escape(f["resource"]),
                _cls(f),
                "yes" if f["recurring"] else "no",
                short_time(f["first_seen"]),
                short_time(f["last_seen"]),
                f"{f['age_days']:.1f}",
            )
        console.print(table)
    if result["groups"]:
        console.print(_counts_table("per group (open findings)", "group", result["groups"]))
    if result["vendors"]:
        console.print(_counts_table("per vendor (open findings)", "vendor", result["vendors"]))
    trend = Table("week", "from", "new", "resolved", "open at end", title="trend per week")
    for week in result["trend"]:
        trend.add_row(
            week["week"], week["start"], str(week["new"]), str(week["resolved"]), str(week["open"])
        )
    console.print(trend)
    if show_all and result["resolved"]:
        done = Table(
            "id",
            "host",
            "resource",
            "class",
            "first seen (UTC)",
            "resolved (UTC)",
            "resolution",
            "by run",
            "corrected by run",
            title="resolved findings",
        )
        for f in result["resolved"]:
            done.add_row(
                escape(f["id"]),
                escape(f["host"]),
                escape(f["resource"]),
                _cls(f),
                short_time(f["first_seen"]),
                short_time(f["resolved_at"]),
                dash(f["resolution"]),
                dash(f["resolved_by_run"]),
                dash(f["corrected_by_run"]),
            )
        console.print(done)


def _drift_of_run(ledger: Any, run_id: str) -> dict[str, list[str]]:
    """host -> resources that differed, from the run's last drift_check record per host."""

    found: dict[str, list[str]] = {}
    for record in ledger.run(run_id)["records"]:
        if record["kind"] != "drift_check":
            continue
        body = usable(record["seq"], record["kind"], record["body"])
        if body is not None and body["mode"] == "check":
            found[str(record["host"])] = list(drift_resources(body))
    return found


def _failed_hosts(ledger: Any, run_id: str) -> list[str]:
    failed = {
        str(r["host"])
        for r in ledger.run(run_id)["task_results"]
        if usable(r["seq"], "task_result", r) is not None
        and (
            r.get("status") == "unreachable"
            or (r.get("status") == "failed" and not r.get("ignored"))
        )
    }
    return sorted(failed)


@drift_app.command("check")
def drift_check(inventory: InventoryOption = None, limit: LimitOption = None) -> None:
    """Check RUC hosts against their baselines (playbooks/drift.yml in check mode: nothing
    changes) and record what differs in the ledger.

    Exit codes: 0 checked (drift or not: `milepost drift report` lists it); 1 a host
    failed or was unreachable; 2 bad input; 130/143 interrupted.
    """

    result = run_checked(
        "drift.yml",
        inventory=inventory,
        limit=check_limit(limit) if limit is not None else None,
        check=True,
        diff=True,
        run_kind="drift",
    )
    drift = _drift_of_run(open_ledger(), result.run_id)
    differing = {host: found for host, found in drift.items() if found}
    console.print(
        f"drift check run {result.run_id}: {len(drift)} hosts checked,"
        f" {sum(len(v) for v in differing.values())} resources differ on"
        f" {len(differing)} hosts; `milepost drift report` lists the findings"
    )
    if not result.succeeded:
        raise MilepostError(
            f"drift check run {result.run_id} {result.status} (ansible-playbook exit"
            f" {result.rc}); see `milepost ledger show {result.run_id}`"
        )


#: The findings a remediation corrects (`drift remediate`, `plan remediate`).
FindingOption = Annotated[
    list[str] | None,
    typer.Option("--finding", metavar="ID", help="Correct this open finding (repeatable)."),
]
IncludePlannedOption = Annotated[
    bool,
    typer.Option("--include-planned", help="Also correct drift an open change covers."),
]


@drift_app.command("remediate")
def drift_remediate(
    finding: FindingOption = None,
    include_planned: IncludePlannedOption = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Converge every resource of the hosts (--limit), found drifting or not;"
            " this reverts planned changes too.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be corrected; change nothing.")
    ] = False,
    inventory: InventoryOption = None,
    limit: LimitOption = None,
    allow_downgrade: AllowDowngradeOption = None,
) -> None:
    """Correct drift (playbooks/remediate.yml), check again, and close the corrected
    findings with this run's id.

    Without --finding or --full: every open unauthorised finding (and planned ones with
    --include-planned). A finding still open after the run, or a host that failed, opens
    a glitch in the ledger. A host whose group asks for approvals is corrected only by an
    approved remediation plan (`milepost plan remediate`, `approve`, `apply`): here it
    fails untouched. Exit codes: 0 corrected (or nothing to correct); 1 the remediation
    failed (glitch opened); 2 bad input; 130/143 interrupted.
    """

    if limit is not None:
        limit = check_limit(limit)
    allow_downgrade_vars(allow_downgrade)
    ledger = open_ledger()
    targets, selection = remediation_targets(ledger, finding, include_planned, full)
    if not full and not selection:
        console.print("no open finding to correct: nothing to remediate")
        return
    variables: dict[str, Any] = {} if full else {"milepost_remediate": selection}
    variables.update(allow_downgrade_vars(allow_downgrade))
    result = run_checked(
        "remediate.yml",
        inventory=inventory,
        limit=remediation_limit(selection, limit, full),
        check=dry_run,
        diff=True,
        extravars=variables,
        run_kind="remediation",
    )
    if dry_run:
        console.print(f"remediation dry run {result.run_id}: nothing was changed")
        if not result.succeeded:
            raise MilepostError(f"remediation dry run {result.run_id} {result.status}")
        return
    check_remediation(ledger, result, targets)


def remediation_targets(
    ledger: Any, finding: list[str] | None, include_planned: bool, full: bool
) -> tuple[list[drift.Finding], dict[str, list[str]]]:
    """The open findings a remediation corrects, and per host their resources (what
    playbooks/remediate.yml takes as milepost_remediate); UserError for a bad choice."""
    if full and (finding or include_planned):
        raise UserError("--full converges everything: it takes no --finding or --include-planned")
    if finding and include_planned:
        raise UserError("--include-planned selects findings itself: drop it or --finding")
    open_now = drift.open_findings(ledger)
    if finding:
        by_id = {f.id: f for f in open_now}
        unknown = [fid for fid in finding if fid not in by_id]
        if unknown:
            raise UserError(
                f"no open finding {', '.join(map(_shown, unknown))}: `milepost drift report`"
                " lists them"
            )
        targets = [by_id[fid] for fid in dict.fromkeys(finding)]
    elif full:
        targets = list(open_now)
    else:
        targets = [f for f in open_now if include_planned or f.cls != "planned"]
    selection: dict[str, list[str]] = {}
    for target in targets:
        # The selection goes to the playbook as an extra var, which Ansible templates: a
        # resource a host reported under a name holding template syntax is not run.
        if any(marker in f"{target.host} {target.resource}" for marker in TEMPLATE_MARKERS):
            raise UserError(
                f"finding {target.id} names {_shown(target.resource)}, which holds template"
                " syntax Ansible would run: correct it by hand, then close it"
            )
        selection.setdefault(target.host, []).append(target.resource)
    return targets, selection


def remediation_limit(selection: dict[str, list[str]], limit: str | None, full: bool) -> str | None:
    """The run's --limit: the selected hosts (within --limit), or --limit for --full."""
    if full:
        return limit
    return ":".join(sorted(selection)) + (f":&{limit}" if limit else "")


def check_remediation(ledger: Any, result: Any, targets: list[drift.Finding]) -> None:
    """After a remediation run: a finding still open on a host the run touched, or a host
    that failed, opens a glitch (MilepostError, exit 1); else say what was closed."""
    still_open = {f.id: f for f in drift.open_findings(ledger)}
    touched = set(_drift_of_run(ledger, result.run_id))
    failed_hosts = _failed_hosts(ledger, result.run_id)
    left = [
        still_open[t.id]
        for t in targets
        if t.id in still_open and (t.host in touched or t.host in failed_hosts)
    ]
    if left or failed_hosts:
        hosts = {f.host for f in left} | set(failed_hosts)
        reason = f"{len(left)} findings still open after remediation run {result.run_id}" + (
            f"; hosts failed: {', '.join(failed_hosts)}" if failed_hosts else ""
        )
        record = drift.glitch_record(result.run_id, hosts, [f.resource for f in left], left, reason)
        ledger.append([record])
        raise MilepostError(
            f"remediation run {result.run_id} did not correct everything: {reason};"
            f" glitch {record['body']['glitch_id']} opened"
        )
    if not result.succeeded:
        raise MilepostError(
            f"remediation run {result.run_id} {result.status} (ansible-playbook exit"
            f" {result.rc}); see `milepost ledger show {result.run_id}`"
        )
    corrected = [t for t in targets if t.id not in still_open]
    console.print(
        f"remediation run {result.run_id}: {len(corrected)} findings corrected and closed"
        f" on {len(touched)} hosts"
    )
