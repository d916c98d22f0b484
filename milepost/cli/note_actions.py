"""`milepost note action ...`: the follow-up actions of lessons learned (a QC check, a
desired change, a runbook or a baseline change), each with an owner and a due date.

Exit codes: 0 done (list: also when actions are overdue, the table says so); 2 bad input
(one line on stderr, nothing appended).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from milepost.cli.common import JsonOption, console, open_ledger, print_json
from milepost.input_checks import check_text
from milepost.ledger.names import ACTION_KINDS
from milepost.oversight.action_writing import add_action, update_action
from milepost.oversight.lesson_actions import Action, actions

action_app = typer.Typer(
    help="Follow-up actions of lessons: a QC check, desired change, runbook or baseline"
    " change, with an owner and a due date.",
    no_args_is_help=True,
)

KINDS = ", ".join(ACTION_KINDS)
OwnerOption = Annotated[
    str | None, typer.Option("--owner", metavar="NAME", help="Who sees it done (required).")
]
DueOption = Annotated[
    str | None, typer.Option("--due", metavar="YYYY-MM-DD", help="When it is due (required).")
]
RefOption = Annotated[
    str | None,
    typer.Option(
        "--ref",
        metavar="REF",
        help="What it changes: the DC-... of a desired change (required for one), a QC"
        " check, a runbook's path, a baseline variable.",
    ),
]
CommentOption = Annotated[
    str | None, typer.Option("--comment", metavar="TEXT", help="Why, or what was done.")
]


def _state(action: Action, now: datetime) -> str:
    if action.status == "done":
        return f"[green]done[/green] {escape((action.done_at or '')[:10])}"
    if action.is_overdue(now):
        return f"[red]OVERDUE {action.days_overdue(now)} d[/red]"
    return "[yellow]open[/yellow]"


@action_app.command("add")
def action_add(
    lesson: Annotated[str, typer.Argument(metavar="L-ID", help="The lesson it follows from.")],
    kind: Annotated[str, typer.Option("--kind", metavar="K", help=f"One of {KINDS}.")],
    title: Annotated[
        str, typer.Option("--title", metavar="TEXT", help="What is to be done, one line.")
    ],
    owner: OwnerOption = None,
    due: DueOption = None,
    ref: RefOption = None,
    text: Annotated[
        str | None, typer.Option("--text", metavar="TEXT", help="The details (may span lines).")
    ] = None,
) -> None:
    """Record a follow-up action of a lesson learned."""

    ledger = open_ledger()
    try:
        added = add_action(
            ledger, lesson, kind=kind, title=title, owner=owner, due=due, ref=ref, text=text
        )
    finally:
        ledger.close()
    console.print(
        f"action {escape(added.action_id)} of {escape(added.lesson_id)} recorded:"
        f" {escape(added.kind)}, owner {escape(added.owner)}, due {added.due}"
    )


@action_app.command("list")
def action_list(
    lesson: Annotated[
        str | None, typer.Option("--lesson", metavar="L-ID", help="Only this lesson's.")
    ] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", metavar="NAME", help="Only this owner's.")
    ] = None,
    only_open: Annotated[bool, typer.Option("--open", help="Only those not done.")] = False,
    only_overdue: Annotated[
        bool, typer.Option("--overdue", help="Only those past their due date, not done.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Follow-up actions, oldest first, with their state: open, done or overdue."""

    wanted_lesson = check_text(lesson, "lesson", max_len=80) if lesson is not None else None
    wanted_owner = check_text(owner, "owner", max_len=100) if owner is not None else None
    now = datetime.now(UTC)
    ledger = open_ledger()
    try:
        found = actions(ledger)
    finally:
        ledger.close()
    found = [
        a
        for a in found
        if (wanted_lesson is None or a.lesson_id == wanted_lesson)
        and (wanted_owner is None or a.owner == wanted_owner)
        and (not only_open or a.status != "done")
        and (not only_overdue or a.is_overdue(now))
    ]
    if as_json:
        print_json([a.as_dict(now) for a in found])
        return
    if not found:
        console.print("no follow-up actions" + (" overdue" if only_overdue else "") + " recorded")
        return
    table = Table("id", "lesson", "kind", "title", "owner", "due", "state")
    for a in found:
        table.add_row(
            escape(a.action_id),
            escape(a.lesson_id),
            escape(a.kind),
            escape(a.title),
            escape(a.owner),
            a.due,
            _state(a, now),
        )
    console.print(table)
    late = sum(1 for a in found if a.is_overdue(now))
    console.print(f"{len(found)} action(s), {late} overdue")


@action_app.command("done")
def action_done(
    action_id: Annotated[str, typer.Argument(metavar="A-ID", help="The action.")],
    comment: CommentOption = None,
) -> None:
    """Mark an action done (say what was done with --comment)."""

    ledger = open_ledger()
    try:
        updated = update_action(ledger, action_id, done=True, comment=comment)
    finally:
        ledger.close()
    console.print(f"action {escape(updated.action_id)} done")


@action_app.command("update")
def action_update(
    action_id: Annotated[str, typer.Argument(metavar="A-ID", help="The action.")],
    owner: Annotated[
        str | None, typer.Option("--owner", metavar="NAME", help="A new owner.")
    ] = None,
    due: Annotated[
        str | None, typer.Option("--due", metavar="YYYY-MM-DD", help="A new due date.")
    ] = None,
    ref: RefOption = None,
    reopen: Annotated[bool, typer.Option("--reopen", help="Open a done action again.")] = False,
    comment: CommentOption = None,
) -> None:
    """Reassign, reschedule or reopen an action; the history is kept."""

    ledger = open_ledger()
    try:
        updated = update_action(
            ledger,
            action_id,
            done=False if reopen else None,
            owner=owner,
            due=due,
            ref=ref,
            comment=comment,
        )
    finally:
        ledger.close()
    console.print(
        f"action {escape(updated.action_id)} updated: {escape(updated.status)}, owner"
        f" {escape(updated.owner)}, due {updated.due}"
    )


def lesson_actions_text(lesson_id: str, found: list[Action], now: datetime) -> list[str]:
    """Lines for `note show L-...`: each action of the lesson and its state."""
    return [
        f"    {escape(a.action_id)} {escape(a.kind)}: {escape(a.title)} (owner"
        f" {escape(a.owner)}, due {a.due}, {_state(a, now)})"
        for a in found
        if a.lesson_id == lesson_id
    ]
