# ruff: noqa: F811
"""The learning loop on a real SQLite ledger: a glitch closes only with its root cause and a
lesson with a follow-up action (or a reason for none); actions have an owner and a due date,
and an overdue one shows in the vendor's scorecard, on the dashboard (in a real Chromium)
and in the steering export. The clock is injected wherever overdue is judged."""

import csv
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_dashboard import inventory as dashboard_inventory  # noqa: F401  (a fixture)

from milepost.cli.main import main
from milepost.drift.findings import glitch_record
from milepost.ledger import Ledger
from milepost.oversight.action_writing import add_action, update_action
from milepost.oversight.lesson_actions import actions, overdue
from milepost.oversight.register_export import ACTION_TYPE, CSV_FIELDS, export
from milepost.oversight.register_reading import notes
from milepost.oversight.register_writing import add_note, open_glitch, update_note
from milepost.oversight.scorecard import parse_period, scorecards
from milepost.patching import policy as patch_policy
from milepost.reports import write_dashboard
from milepost.reports.status_sections import _read_inventory

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from browser import DashboardDom, chromium, words  # noqa: E402

NOW = datetime.now(UTC)
TODAY = NOW.date()


def count(ledger: Ledger) -> int:
    with ledger.read_transaction() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM ledger_records").scalar_one())


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def note(ledger, note_id: str):
    return next(n for n in notes(ledger) if n.note_id == note_id)


def days(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


@pytest.fixture
def loop(ledger):
    """A glitch on pay-01 (Harbor Payments), a lesson from it without an action yet, a
    second lesson, a desired change."""
    glitch = open_glitch(ledger, title="Settlement file sent twice", detected_by="monitoring",
                         hosts=["pay-01"])  # fmt: skip
    lesson = add_note(ledger, "lesson", title="Check the file's sequence number first",
                      category="technology", links={"glitches": [glitch.note_id]})  # fmt: skip
    bare = add_note(ledger, "lesson", title="A lesson with no action", category="policy")
    change = add_note(ledger, "desired-change", title="Idempotent settlement",
                      category="technology")  # fmt: skip
    return {"glitch": glitch.note_id, "lesson": lesson.note_id, "bare": bare.note_id,
            "change": change.note_id}  # fmt: skip


def action_add(lesson="{lesson}", *, kind="runbook", owner="Dana", due="2030-01-01", more=()):
    """`note action add` arguments: a valid action but for what a case changes (None: the
    option left out)."""
    argv = ["action", "add", lesson, "--kind", kind, "--title", "x"]
    argv += ["--owner", owner] if owner is not None else []
    argv += ["--due", due] if due is not None else []
    return [*argv, *more]


BAD_INPUTS = [
    # Closing a glitch without its cause, or without a lesson with an action or a reason.
    (["close", "{glitch}", "--lesson", "{lesson}"], "needs its root cause"),
    (["close", "{glitch}", "--cause", "Retry"], "needs a lesson with an action"),
    (["close", "{glitch}", "--cause", "Retry", "--lesson", "{bare}"], "has no action yet"),
    (["close", "{glitch}", "--cause", "Retry", "--lesson", "L-00000000"], "not in the ledger"),
    (["close", "{glitch}", "--cause", "Retry", "--lesson", "{change}"], "not a lesson"),
    (["close", "{glitch}", "--cause", "Retry", "--status", "open"], "does not close"),
    (["close", "{lesson}", "--cause", "Retry"], "not a glitch ID"),
    (["update", "{glitch}", "--status", "closed"], "needs its root cause"),
    (["update", "{glitch}", "--status", "resolved", "--cause", "x"], "needs a lesson"),
    (["update", "{lesson}", "--cause", "x"], "for glitches only"),
    # A lesson for an unknown glitch.
    (
        ["add", "lesson", "--title", "x", "--category", "policy", "--glitch", "G-00000000"],
        "linked glitch",
    ),  # fmt: skip
    # Actions: no owner, a due date that is not a date, an unknown kind, an unknown lesson.
    (action_add(owner=None), "needs --owner"),
    (action_add(owner=" "), "needs --owner"),
    (action_add(due="next friday"), "is not a date"),
    (action_add(due="2026-02-30"), "is not a date"),
    (action_add(due=None), "needs --due"),
    (action_add(kind="meeting"), "action kind 'meeting' is not one of"),
    (action_add("L-00000000"), "not in the ledger"),
    (action_add("{glitch}"), "not a lesson"),
    (action_add(kind="desired-change"), "needs --ref DC-"),
    (action_add(kind="desired-change", more=("--ref", "{bare}")), "not a desired change"),
    (["action", "done", "A-00000000"], "unknown action"),
    (["action", "done", "L-00000000"], "not an action ID"),
    (["action", "update", "A-00000000", "--due", "soon"], "is not a date"),
]


@pytest.mark.parametrize(("args", "says"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_records_nothing(ledger, loop, capsys, args, says):
    before = count(ledger)
    code, out, err = run_cli(capsys, "note", *[a.format(**loop) for a in args])
    assert code == 2, out + err
    assert err.count("\n") == 1 and err.startswith("milepost: error: "), err
    assert says in err, err
    assert "Traceback" not in err
    assert count(ledger) == before
    assert note(ledger, loop["glitch"]).status == "open"


def test_a_glitch_closes_with_its_cause_and_a_lesson_that_has_an_action(ledger, loop, capsys):
    code, out, err = run_cli(
        capsys, "note", "action", "add", loop["lesson"], "--kind", "qc-check",
        "--title", "Check settlement sequence numbers after every run", "--owner", "Dana",
        "--due", days(14), "--ref", "tests/qc/test_settlement.py",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("action A-") and "owner Dana" in out
    code, out, err = run_cli(
        capsys, "note", "action", "add", loop["lesson"], "--kind", "desired-change",
        "--title", "Make settlement idempotent", "--owner", "Sam", "--due", days(60),
        "--ref", loop["change"],
    )  # fmt: skip
    assert code == 0, err

    code, out, err = run_cli(
        capsys, "note", "close", loop["glitch"], "--cause", "The processor retried a timeout",
        "--lesson", loop["lesson"], "--resolution", "Reversed the duplicates",
    )  # fmt: skip
    assert code == 0, err
    assert f"glitch {loop['glitch']} closed ({loop['lesson']})" in out
    closed = note(ledger, loop["glitch"])
    assert (closed.status, closed.cause, closed.lesson) == (
        "closed", "The processor retried a timeout", loop["lesson"])  # fmt: skip
    assert closed.resolution == "Reversed the duplicates"
    assert loop["lesson"] in closed.links["notes"]
    assert not closed.is_open

    code, out, err = run_cli(capsys, "note", "show", loop["glitch"])
    assert code == 0, err
    assert "root cause: The processor retried a timeout" in out
    code, out, err = run_cli(capsys, "note", "show", loop["lesson"])
    assert "Check settlement sequence numbers" in out and "owner Dana" in out

    code, out, err = run_cli(capsys, "note", "action", "list", "--json")
    listed = json.loads(out)
    assert [(a["kind"], a["owner"], a["overdue"]) for a in listed] == [
        ("qc-check", "Dana", False), ("desired-change", "Sam", False)]  # fmt: skip


def test_the_lesson_given_at_close_is_linked_to_the_glitch(ledger, loop):
    glitch = open_glitch(ledger, title="Another", detected_by="qc", hosts=["pay-02"])
    add_action(ledger, loop["bare"], kind="runbook", title="Write it down", owner="Lee",
               due=days(3))  # fmt: skip
    update_note(ledger, glitch.note_id, cause="Same retry")  # the cause may come first
    update_note(ledger, glitch.note_id, status="resolved", lesson=loop["bare"])
    assert glitch.note_id in note(ledger, loop["bare"]).links["glitches"]
    assert note(ledger, glitch.note_id).status == "resolved"


def test_a_reason_for_no_action_closes_a_glitch_without_a_lesson(ledger, loop, capsys):
    code, out, err = run_cli(
        capsys, "note", "close", loop["glitch"], "--status", "resolved", "--cause",
        "A one-off manual upload", "--no-action-reason", "Manual uploads were retired",
    )  # fmt: skip
    assert code == 0, err
    closed = note(ledger, loop["glitch"])
    assert closed.status == "resolved" and closed.lesson is None
    assert closed.no_action_reason == "Manual uploads were retired"


def test_old_glitches_still_read_and_closing_one_again_follows_the_rule(ledger):
    # A glitch written before the rule (the drift code's), closed before it too.
    record = glitch_record("r1", ["pay-01"], ["file:/etc/ruc/a.conf"], ["D1"], "converge failed")
    ledger.append([record])
    glitch_id = record["body"]["glitch_id"]
    ledger.append([{"kind": "note_updated", "run_id": None, "host": None,
                    "body": {"note_id": glitch_id, "status": "closed", "fields": {},
                             "links": {}, "comment": "old", "updated_by": "bob"}}])  # fmt: skip
    old = note(ledger, glitch_id)
    assert (old.status, old.cause, old.lesson, old.no_action_reason) == ("closed", None, None, None)
    buffer = io.StringIO()
    export(notes(ledger), "md", buffer, now=NOW)
    assert glitch_id in buffer.getvalue()

    update_note(ledger, glitch_id, status="open", comment="It came back")
    with pytest.raises(Exception, match="needs its root cause"):
        update_note(ledger, glitch_id, status="closed")


def test_overdue_is_judged_at_the_moment_given(ledger, loop):
    late = add_action(ledger, loop["lesson"], kind="baseline", title="Pin the retry count",
                      owner="Dana", due="2026-01-10")  # fmt: skip
    done = add_action(ledger, loop["lesson"], kind="runbook", title="Document the rerun",
                      owner="Sam", due="2026-01-10")  # fmt: skip
    update_action(ledger, done.action_id, done=True, comment="Runbook section 4")
    found = {a.action_id: a for a in actions(ledger)}
    on_due_day = datetime(2026, 1, 10, 23, 0, tzinfo=UTC)
    day_after = datetime(2026, 1, 11, 0, 1, tzinfo=UTC)
    assert not found[late.action_id].is_overdue(on_due_day)
    assert found[late.action_id].is_overdue(day_after)
    assert found[late.action_id].days_overdue(datetime(2026, 1, 20, tzinfo=UTC)) == 10
    # Done now: not overdue now; at a moment before it was done, it was.
    now = datetime.now(UTC)
    assert not found[done.action_id].is_overdue(now)
    assert found[done.action_id].is_overdue(day_after)
    assert [a.action_id for a in overdue(found.values(), now)] == [late.action_id]
    # Rescheduled: judged by the new date from then on, by the old one before.
    update_action(ledger, late.action_id, due=days(30), owner="Lee")
    again = next(a for a in actions(ledger) if a.action_id == late.action_id)
    assert (again.due, again.owner) == (days(30), "Lee")
    now = datetime.now(UTC)
    assert not again.is_overdue(now)
    assert again.is_overdue(day_after)
    assert again.as_dict(now)["overdue"] is False


def overdue_scenario(ledger) -> dict:
    """A glitch on pay-01 (Harbor Payments) and one naming the accounts system (Keystone),
    a lesson of each; Harbor's lesson has an action overdue, one done and one not yet due;
    Keystone's has one overdue."""
    pay = open_glitch(ledger, title="Card payments declined", detected_by="monitoring",
                      hosts=["pay-01"])  # fmt: skip
    acct = add_note(ledger, "glitch", title="Password resets slow", detected_by="customer service",
                    affected_systems=["Customer accounts"])  # fmt: skip
    pay_lesson = add_note(ledger, "lesson", title="Watch the card network's status page",
                          category="technology", links={"glitches": [pay.note_id]})  # fmt: skip
    acct_lesson = add_note(ledger, "lesson", title="Size the reset queue",
                           category="technology", links={"glitches": [acct.note_id]})  # fmt: skip
    late = add_action(ledger, pay_lesson.note_id, kind="qc-check",
                      title="Add a QC check of the card network status", owner="Dana Ortiz",
                      due=days(-3))  # fmt: skip
    done = add_action(ledger, pay_lesson.note_id, kind="runbook",
                      title="Runbook: declines on the card network", owner="Sam",
                      due=days(-3))  # fmt: skip
    update_action(ledger, done.action_id, done=True)
    later = add_action(ledger, pay_lesson.note_id, kind="baseline", title="Raise the timeout",
                       owner="Sam", due=days(20))  # fmt: skip
    acct_late = add_action(ledger, acct_lesson.note_id, kind="runbook",
                           title="Runbook: resets queue", owner="Kim", due=days(-10))  # fmt: skip
    return {"late": late.action_id, "done": done.action_id, "later": later.action_id,
            "acct_late": acct_late.action_id, "pay": pay.note_id}  # fmt: skip


def test_an_overdue_action_shows_in_its_vendors_scorecard(ledger, dashboard_inventory, capsys):
    ids = overdue_scenario(ledger)
    sources = [dashboard_inventory]
    setup = _read_inventory(sources)
    settings = patch_policy.load(sources)
    today = (NOW + timedelta(days=1)).date()  # the clock, injected
    cards = {
        c.vendor: c
        for c in scorecards(
            ledger,
            setup.vendors,
            setup.host_vendor,
            settings,
            parse_period(today.strftime("%Y-%m")),
            today=today,
            systems=setup.systems,
        )  # fmt: skip
    }
    harbor = cards["harbor_payments"].actions_overdue
    assert [a.action_id for a in harbor] == [ids["late"]]
    assert harbor[0].owner == "Dana Ortiz" and harbor[0].days_overdue == 4
    assert harbor[0].glitches == [ids["pay"]] and harbor[0].due == days(-3)
    assert [a.action_id for a in cards["keystone_accounts"].actions_overdue] == [ids["acct_late"]]
    assert cards["odometrix_devices"].actions_overdue == []
    # Judged on the due date itself, nothing is overdue yet.
    due_day = TODAY - timedelta(days=3)
    early = scorecards(ledger, setup.vendors, setup.host_vendor, settings,
                       parse_period(due_day.strftime("%Y-%m")), only="harbor_payments",
                       today=due_day, systems=setup.systems)  # fmt: skip
    assert early[0].actions_overdue == []

    code = main(["vendor", "scorecard", "--vendor", "harbor_payments", "-i",
                 str(dashboard_inventory)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"harbor_payments: overdue action {ids['late']}" in words(out)
    assert ids["done"] not in out and ids["later"] not in out and ids["acct_late"] not in out
    code = main(["vendor", "scorecard", "--vendor", "harbor_payments", "--json", "-i",
                 str(dashboard_inventory)])  # fmt: skip
    [card] = json.loads(capsys.readouterr().out)
    assert [a["action_id"] for a in card["actions_overdue"]] == [ids["late"]]


def test_an_overdue_action_shows_on_the_dashboard_in_a_real_browser(
    ledger, dashboard_inventory, tmp_path
):
    ids = overdue_scenario(ledger)
    now = NOW + timedelta(days=1)  # the clock, injected
    index = write_dashboard(tmp_path / "out", [dashboard_inventory], months=2, ledger=ledger,
                            now=now)  # fmt: skip
    dom_text = chromium(tmp_path, "--dump-dom", index.as_uri()).stdout
    dom = DashboardDom()
    dom.feed(dom_text)
    assert "For engineers: follow-up actions past their due date" in words(dom_text)
    rows = {k.split("=", 1)[1]: v for k, v in dom.rows.items() if k.startswith("data-action=")}
    assert list(rows) == [ids["acct_late"], ids["late"]]  # the longest overdue first
    late = words(rows[ids["late"]]["text"])
    assert "Add a QC check of the card network status" in late
    assert "Dana Ortiz" in late and days(-3) in late and "Overdue" in late
    assert "Payments" in late and "Harbor Payments Inc." in late and ids["pay"] in late
    assert rows[ids["late"]]["attrs"]["data-days-overdue"] == "4"
    # The table is headed and labelled for assistive technology.
    assert any(a.get("tag") == "section" and a.get("aria-labelledby") == "actions-heading"
               for a in dom.attrs_seen)  # fmt: skip
    assert 'id="actions-heading"' in dom_text and "<caption>Overdue follow-up actions" in dom_text
    data = json.loads((index.parent / "status.json").read_text())
    assert [a["action_id"] for a in data["overdue_actions"]] == [ids["acct_late"], ids["late"]]

    # Done, it leaves the table.
    update_action(ledger, ids["late"], done=True)
    update_action(ledger, ids["acct_late"], done=True)
    index = write_dashboard(tmp_path / "out", [dashboard_inventory], months=2, ledger=ledger,
                            now=now)  # fmt: skip
    html = index.read_text()
    assert "data-action=" not in html and "No follow-up action is past its due date." in html


def test_the_export_lists_actions_with_owner_due_date_and_overdue(ledger, loop, capsys, tmp_path):
    late = add_action(ledger, loop["lesson"], kind="qc-check", title="Check | sequence =1",
                      owner="Dana", due="2020-01-01")  # fmt: skip
    done = add_action(ledger, loop["lesson"], kind="desired-change", title="Idempotent files",
                      owner="Sam", due="2020-01-01", ref=loop["change"])  # fmt: skip
    update_action(ledger, done.action_id, done=True)
    later = add_action(ledger, loop["lesson"], kind="runbook", title="Rerun steps",
                       owner="Kim", due="2999-01-01")  # fmt: skip
    update_note(ledger, loop["glitch"], status="closed", cause="Retry storm", lesson=loop["lesson"])

    md_file = tmp_path / "registers.md"
    code, out, err = run_cli(capsys, "note", "export", "--format", "md", "--out", str(md_file))
    assert code == 0, err
    md = md_file.read_text()
    assert "\n## Follow-up actions\n" in md
    assert "3 actions: 2 open, 1 of them overdue" in md
    table = {line.split(" | ")[0][2:]: line for line in md.splitlines()
             if line.startswith("| A-")}  # fmt: skip
    assert set(table) == {late.action_id, done.action_id, later.action_id}
    assert "| Dana | 2020-01-01 | **OVERDUE since 2020-01-01** |" in table[late.action_id]
    assert "Check \\| sequence =1" in table[late.action_id]  # a pipe cannot break the table
    assert "| Sam | 2020-01-01 | done " in table[done.action_id]
    assert "| Kim | 2999-01-01 | open, due 2999-01-01 |" in table[later.action_id]
    assert loop["glitch"] in table[late.action_id]
    assert "- Root cause: Retry storm" in md and f"- Lesson: {loop['lesson']}" in md
    assert f"- Actions: {late.action_id} (OVERDUE since 2020-01-01)" in md
    # The steering export ends with QC's catch rate, one row per month of the last six.
    catch = md.split("\n## Quality control's catch rate\n", 1)[1]
    assert "| Month | Caught by QC |" in catch
    assert len([line for line in catch.splitlines() if line.startswith("| 20")]) == 6

    code, out, err = run_cli(capsys, "note", "export", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(rows[0]) == CSV_FIELDS
    by_id = {r["note_id"]: r for r in rows}
    row = by_id[late.action_id]
    assert (row["type"], row["owner"], row["due"], row["overdue"], row["status"]) == (
        ACTION_TYPE, "Dana", "2020-01-01", "yes", "open")  # fmt: skip
    assert row["title"] == "Check | sequence =1" and row["lesson"] == loop["lesson"]
    assert row["linked_glitches"] == loop["glitch"] and row["action_kind"] == "qc-check"
    assert (by_id[done.action_id]["overdue"], by_id[done.action_id]["status"]) == ("no", "done")
    assert by_id[done.action_id]["ref"] == loop["change"] and by_id[done.action_id]["done_at"]
    assert by_id[later.action_id]["overdue"] == "no"
    assert by_id[loop["glitch"]]["cause"] == "Retry storm"
    months = [r for r in rows if r["type"] == "catch-rate"]
    assert len(months) == 6 and "Caught by QC: " in months[-1]["text"]

    # The clock of the export is injected: before 2020-01-02 nothing was overdue.
    buffer = io.StringIO()
    export(notes(ledger), "csv", buffer, actions=actions(ledger),
           now=datetime(2020, 1, 1, 12, tzinfo=UTC))  # fmt: skip
    assert {r["overdue"] for r in csv.DictReader(io.StringIO(buffer.getvalue()))
            if r["type"] == ACTION_TYPE} == {"no"}  # fmt: skip
