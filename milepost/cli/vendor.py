"""`milepost vendor list` and `milepost vendor question add|answer|list|remind`: the vendors
of the inventory (milepost_vendors) and the questions register, both ways
(milepost.oversight.questions).

Exit codes: 0 done (question list and remind: also when questions are overdue or due soon,
the table says so); 1 the ledger could not be written, or a reminder could not be
delivered (recorded as failed); 2 bad input (one line on stderr), nothing recorded.
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
from milepost.errors import MilepostError, UserError
from milepost.input_checks import check_text
from milepost.inventory.question_commitments import load_commitments
from milepost.inventory.systems import load_systems
from milepost.inventory.vendors import load_vendors, vendor_of_host
from milepost.ledger.chain import utc_now
from milepost.notify import send_notice
from milepost.oversight.questions import (
    DIRECTIONS,
    REMIND_HOURS,
    TO_AGENCY,
    answer,
    ask,
    ask_agency,
    check_hours,
    check_question,
    due_soon,
    questions,
)
from milepost.oversight.scorecard import parse_period, scorecards
from milepost.patching import policy as patch_policy

vendor_app = typer.Typer(
    help="Vendors: their data and the questions register.", no_args_is_help=True
)
question_app = typer.Typer(
    help="Questions between the agency and its vendors, both ways: answers and deadlines.",
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
    from_vendor: Annotated[
        bool,
        typer.Option(
            "--from-vendor",
            help="The vendor asks the agency (default: the agency asks the vendor); needs"
            " --category.",
        ),
    ] = False,
    category: Annotated[
        str | None,
        typer.Option(
            "--category",
            metavar="C",
            help="With --from-vendor: the category (milepost_question_commitments), which"
            " sets the agency's answer time.",
        ),
    ] = None,
    asked_by: Annotated[
        str | None,
        typer.Option(
            "--asked-by", metavar="NAME", help="With --from-vendor: who at the vendor asked."
        ),
    ] = None,
    inventory: InventoryOption = None,
) -> None:
    """Record a question put to a vendor (due within the vendor's committed
    question_response_hours), or with --from-vendor one a vendor put to the agency (due
    within the days milepost_question_commitments sets for its --category)."""

    check_question(subject, body)  # refuse bad text before reading the inventory
    if not from_vendor and (category is not None or asked_by is not None):
        raise UserError("--category and --asked-by are for a vendor's question: add --from-vendor")
    if from_vendor and category is None:
        raise UserError(
            "--from-vendor needs --category: one of milepost_question_commitments' categories"
        )
    sources = _sources(inventory)
    vendors = load_vendors(sources)
    commitments = load_commitments(sources) if from_vendor else {}
    ledger = open_ledger()
    try:
        if from_vendor:
            asked = ask_agency(
                ledger,
                vendors,
                commitments,
                vendor=vendor,
                category=category or "",
                subject=subject,
                body=body,
                asked_by=asked_by,
            )
        else:
            asked = ask(ledger, vendors, vendor=vendor, subject=subject, body=body)
    finally:
        ledger.close()
    if asked.direction == TO_AGENCY:
        console.print(
            f"question {asked.question_id} from {escape(asked.vendor)} recorded"
            f" ({escape(asked.category or '')}), our answer due {short_time(asked.due_at)} UTC"
        )
        return
    console.print(
        f"question {asked.question_id} recorded for {escape(asked.vendor)},"
        f" response due {short_time(asked.due_at)} UTC"
    )


@question_app.command("answer")
def question_answer(
    question_id: Annotated[str, typer.Argument(metavar="ID", help="The question (Q-...).")],
    text: Annotated[str, typer.Option("--text", metavar="TEXT", help="The vendor's answer.")],
) -> None:
    """Record the answer to a question, the vendor's or the agency's (once; the first
    answer stands)."""

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
    direction: Annotated[
        str | None,
        typer.Option(
            "--direction",
            metavar="D",
            help="Only questions to_vendor (the agency asked) or to_agency (a vendor asked).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The questions register, both ways: when each was asked, when it is due, answered or
    not, late."""

    key = check_text(vendor, "--vendor", max_len=200) if vendor is not None else None
    if direction is not None and direction not in DIRECTIONS:
        raise UserError(f"--direction {direction[:40]!r} is not one of {', '.join(DIRECTIONS)}")
    ledger = open_ledger()
    try:
        found = questions(ledger)
    finally:
        ledger.close()
    if key is not None:
        found = [q for q in found if q.vendor == key]
    if direction is not None:
        found = [q for q in found if q.direction == direction]
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
    table = Table(
        "id", "vendor", "to", "subject", "asked (UTC)", "due", "state", "answered", "late"
    )
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
            "agency" + (f" ({escape(q.category)})" if q.category else "")
            if q.direction == TO_AGENCY
            else "vendor",
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
        "to us on time/late/overdue",
        "our median answer",
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
            f"{card.agency_answered_on_time}/{card.agency_answered_late}"
            f"/{card.agency_open_overdue}",
            "-"
            if card.agency_median_response_hours is None
            else f"{card.agency_median_response_hours:g} h",
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
        for question_id in card.agency_overdue_ids:
            console.print(
                f"  {escape(card.vendor)}: question {escape(question_id)} to the agency is OVERDUE"
            )


@question_app.command("remind")
def question_remind(
    within: Annotated[
        float,
        typer.Option(
            "--within",
            metavar="HOURS",
            help=f"Questions due within HOURS (default {REMIND_HOURS:g}).",
        ),
    ] = REMIND_HOURS,
    send: Annotated[
        bool,
        typer.Option(
            "--send",
            help="Also send the question_reminder notice (milepost_notify), each question"
            " once per audience.",
        ),
    ] = False,
    inventory: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Vendors' questions to the agency that are open and due soon: a reminder, listed
    and, with --send, sent through the notice channels."""

    hours = check_hours(within)
    ledger = open_ledger()
    try:
        soon = due_soon(questions(ledger), utc_now(), hours)
    finally:
        ledger.close()
    if as_json:
        print_json([q.as_dict() for q in soon])
    elif not soon:
        console.print(f"no vendor question to the agency is due within {hours:g} h")
    else:
        table = Table("id", "vendor", "category", "subject", "due (UTC)")
        for q in soon:
            table.add_row(
                escape(q.question_id),
                escape(q.vendor),
                escape(q.category or "-"),
                escape(q.subject),
                short_time(q.due_at),
            )
        console.print(table)
    if send:
        outcome = send_notice("question_reminder", sources=_sources(inventory), within_hours=hours)
        for line in outcome.skipped:
            console.print(escape(line))
        for d in outcome.deliveries:
            console.print(f"{escape(d.audience)}: {d.channel}: {d.result}")
        if outcome.failed:
            first = outcome.failed[0]
            raise MilepostError(
                f"the question_reminder notice to {first.audience} by {first.channel} failed:"
                f" {first.reason}; the failure is recorded"
            )
