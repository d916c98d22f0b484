"""`milepost vendor list` and `milepost vendor question add|answer|list`: the vendors of the
inventory (milepost_vendors) and the questions register (milepost.oversight.questions).

Exit codes: 0 done (question list: also when questions are overdue, the table says so);
1 the ledger could not be written; 2 bad input (one line on stderr), nothing recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from milepost.cli.common import (
    InventoryOption,
    JsonOption,
    console,
    open_ledger,
    print_json,
    short_time,
)
from milepost.input_checks import check_text
from milepost.inventory.systems import load_systems
from milepost.inventory.vendors import load_vendors, vendor_of_host
from milepost.oversight.questions import answer, ask, check_question, questions
from milepost.oversight.scorecard import parse_period, scorecards
from milepost.patching import policy as patch_policy

vendor_app = typer.Typer(
    help="Vendors: their data and the questions register.", no_args_is_help=True
)
question_app = typer.Typer(
    help="Questions put to vendors, their answers and response deadlines.",
    no_args_is_help=True,
)
vendor_app.add_typer(question_app, name="question")


def _sources(inventory: Path | None) -> list[Path] | None:
    return [inventory] if inventory is not None else None


def _hours(value: float) -> str:
    return f"{value:g}"


@vendor_app.command("list")
def vendor_list(inventory: InventoryOption = None, as_json: JsonOption = False) -> None:
    """The inventory's vendors: role, groups, on-call contact and contract commitments."""

    vendors = load_vendors(_sources(inventory))
    if as_json:
        print_json([v.as_dict() for v in vendors.values()])
        return
    if not vendors:
        console.print("no vendors: set milepost_vendors in the inventory (group_vars/all)")
        return
    table = Table(
        "vendor", "name", "role", "groups", "on call", "patch days c/h/m/l", "answers", "uptime"
    )
    for v in vendors.values():
        contact = v.on_call
        reach = (
            f"{contact.name} {contact.phone or ''} {contact.email}".replace("  ", " ")
            if contact
            else "-"
        )
        days = v.commitments.patch_days
        table.add_row(
            escape(v.key),
            escape(v.name),
            escape(v.role),
            escape(", ".join(v.groups) or "-"),
            escape(reach),
            "/".join(str(days[s]) for s in ("critical", "high", "medium", "low")),
            f"{_hours(v.commitments.question_response_hours)} h",
            f"{_hours(v.commitments.interface_availability_percent)}%",
        )
    console.print(table)


@question_app.command("add")
def question_add(
    vendor: Annotated[
        str, typer.Option("--vendor", metavar="V", help="The vendor key (milepost_vendors).")
    ],
    subject: Annotated[
        str, typer.Option("--subject", metavar="TEXT", help="The question in one line.")
    ],
    body: Annotated[
        str | None,
        typer.Option("--body", metavar="TEXT", help="Details (several lines allowed)."),
    ] = None,
    inventory: InventoryOption = None,
) -> None:
    """Record a question put to a vendor; it is due within the vendor's committed
    question_response_hours."""

    check_question(subject, body)  # refuse bad text before reading the inventory
    vendors = load_vendors(_sources(inventory))
    ledger = open_ledger()
    try:
        asked = ask(ledger, vendors, vendor=vendor, subject=subject, body=body)
    finally:
        ledger.close()
    console.print(
        f"question {asked.question_id} recorded for {escape(asked.vendor)},"
        f" response due {short_time(asked.due_at)} UTC"
    )


@question_app.command("answer")
def question_answer(
    question_id: Annotated[str, typer.Argument(metavar="ID", help="The question (Q-...).")],
    text: Annotated[str, typer.Option("--text", metavar="TEXT", help="The vendor's answer.")],
) -> None:
    """Record the vendor's answer to a question (once; the first answer stands)."""

    ledger = open_ledger()
    try:
        done = answer(ledger, question_id, text)
    finally:
        ledger.close()
    timing = "late" if done.late else "on time"
    console.print(
        f"question {done.question_id} answered {timing}"
        f" ({_hours(done.response_hours_taken or 0.0)} h; due within"
        f" {_hours(done.response_hours)} h)"
    )


@question_app.command("list")
def question_list(
    only_open: Annotated[bool, typer.Option("--open", help="Only unanswered questions.")] = False,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only unanswered questions past their due time.")
    ] = False,
    vendor: Annotated[
        str | None, typer.Option("--vendor", metavar="V", help="Only this vendor's questions.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The questions register: when each was asked, when it is due, answered or not, late."""

    key = check_text(vendor, "--vendor", max_len=200) if vendor is not None else None
    ledger = open_ledger()
    try:
        found = questions(ledger)
    finally:
        ledger.close()
    if key is not None:
        found = [q for q in found if q.vendor == key]
    if only_open:
        found = [q for q in found if q.state == "open"]
    if overdue:
        found = [q for q in found if q.overdue]
    if as_json:
        print_json([q.as_dict() for q in found])
        return
    if not found:
        console.print(
            "no " + ("overdue " if overdue else "open " if only_open else "") + "questions"
        )
        return
    table = Table("id", "vendor", "subject", "asked (UTC)", "due", "state", "answered", "late")
    for q in found:
        if q.overdue:
            state = "[bold red]OVERDUE[/bold red]"
        elif q.state == "open":
            state = "[yellow]open[/yellow]"
        else:
            state = "[green]answered[/green]"
        table.add_row(
            escape(q.question_id),
            escape(q.vendor),
            escape(q.subject),
            short_time(q.asked_at),
            short_time(q.due_at),
            state,
            escape(short_time(q.answered_at)),
            "[red]late[/red]" if q.late else "-",
        )
    console.print(table)
    late = sum(1 for q in found if q.state == "answered" and q.late)
    console.print(
        f"{len(found)} question(s): {sum(1 for q in found if q.state == 'open')} open,"
        f" {sum(1 for q in found if q.overdue)} overdue, {late} answered late"
    )


@vendor_app.command("scorecard")
def vendor_scorecard(
    vendor: Annotated[
        str | None, typer.Option("--vendor", metavar="V", help="Only this vendor.")
    ] = None,
    period: Annotated[
        str | None,
        typer.Option("--period", metavar="YYYY-MM", help="The month (default: this month)."),
    ] = None,
    inventory: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """How each vendor met its commitments in a month: patch compliance of its hosts
    (against the agency's policy and its contract), interface availability, drift
    findings, failed and rolled-back runs, question response times, and follow-up actions
    of lessons from its glitches past their due date."""

    month = parse_period(period)
    sources = _sources(inventory)
    vendors = load_vendors(sources)
    settings = patch_policy.load(sources)
    systems = load_systems(sources)
    ledger = open_ledger()
    try:
        cards = scorecards(
            ledger, vendors, vendor_of_host(sources), settings, month, only=vendor, systems=systems
        )
    finally:
        ledger.close()
    if as_json:
        print_json([card.as_dict() for card in cards])
        return
    if not cards:
        console.print("no vendors: set milepost_vendors in the inventory (group_vars/all)")
        return
    table = Table(
        "vendor",
        "hosts",
        "patches met/missed (policy)",
        "(contract)",
        "interface uptime",
        "drift (open)",
        "failed runs",
        "rolled back",
        "questions on time/late/overdue",
        "median answer",
        "actions overdue",
        title=f"vendor scorecard {month.label}",
    )
    for card in cards:
        uptime = (
            "no checks"
            if card.availability_percent is None
            else f"{card.availability_percent:g}% (target {card.availability_target:g}%"
            + (", MISSED)" if card.availability_met is False else ")")
        )
        answer = (
            "-"
            if card.median_response_hours is None
            else f"{card.median_response_hours:g} h"
            f" (commitment {card.response_commitment_hours:g} h)"
        )
        table.add_row(
            escape(card.vendor),
            str(len(card.hosts)),
            f"{card.patch_policy.met}/{card.patch_policy.missed}",
            f"{card.patch_contract.met}/{card.patch_contract.missed}",
            uptime,
            f"{card.drift_findings} ({card.drift_open})",
            str(len(card.failed_runs)),
            str(len(card.rolled_back)),
            f"{card.answered_on_time}/{card.answered_late}/{card.open_overdue}",
            answer,
            f"[red]{len(card.actions_overdue)}[/red]" if card.actions_overdue else "0",
        )
    console.print(table)
    for card in cards:
        for item in card.patch_contract.missed_items:
            console.print(f"  {escape(card.vendor)}: missed patch deadline {escape(item)}")
        for action in card.actions_overdue:
            console.print(
                f"  {escape(card.vendor)}: overdue action {escape(action.action_id)}"
                f" ({escape(action.kind)}, owner {escape(action.owner)}, due {action.due},"
                f" {action.days_overdue} day(s) late; lesson {escape(action.lesson_id)}"
                f" from {escape(', '.join(action.glitches) or '-')}): {escape(action.title)}"
            )
