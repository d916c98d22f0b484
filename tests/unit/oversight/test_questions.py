"""The vendor questions register on a real SQLite ledger: asking, answering on time and
late, overdue questions, the CLI, and bad input refused with nothing recorded."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from inventories import vendors_yaml, write_inventory

from milepost.cli.main import main
from milepost.errors import UserError
from milepost.input_checks import check_multiline
from milepost.inventory.vendors import parse_vendors
from milepost.ledger import Ledger
from milepost.ledger.chain import format_time
from milepost.oversight.questions import (
    ANSWERED,
    ASKED,
    MAX_BODY,
    answer,
    ask,
    questions,
)

HOSTS = """\
all:
  children:
    ruc:
      children:
        payment_gateway:
          hosts:
            pay-01: {ansible_host: 127.0.0.1, ansible_port: 1}
          vars: {milepost_vendor: harbor_payments}
        reporting:
          hosts:
            report-01: {ansible_host: 127.0.0.1, ansible_port: 1}
          vars: {milepost_vendor: ledgerline_analytics}
"""


def vendor_entry(name: str, role: str, group: str, hours: float) -> dict:
    return {
        "name": name,
        "role": role,
        "contacts": [{"name": "On Call", "email": "oncall@vendor.example", "on_call": True}],
        "groups": [group],
        "commitments": {
            "patch_days": {"critical": 30, "high": 30, "medium": 90, "low": 180},
            "question_response_hours": hours,
            "interface_availability_percent": 99.0,
        },
    }


VENDORS = {
    "harbor_payments": vendor_entry(
        "Harbor Payments Inc.", "payment processor", "payment_gateway", 24
    ),
    "ledgerline_analytics": vendor_entry(
        "Ledgerline Analytics Ltd.", "reporting provider", "reporting", 72
    ),
}
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def at(hours: float) -> str:
    return format_time(T0 + timedelta(hours=hours))


@pytest.fixture
def vendors():
    return parse_vendors(
        VENDORS,
        groups={
            "all": frozenset({"pay-01", "report-01"}),
            "payment_gateway": frozenset({"pay-01"}),
            "reporting": frozenset({"report-01"}),
        },
    )


@pytest.fixture
def inventory(tmp_path):
    return write_inventory(tmp_path / "inventory", HOSTS, vendors=vendors_yaml(VENDORS))


def count(ledger: Ledger) -> int:
    with ledger.read_transaction() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM ledger_records").scalar_one())


def bodies(ledger: Ledger, kind: str) -> list[dict]:
    with ledger.read_transaction() as conn:
        rows = conn.exec_driver_sql(
            "SELECT body FROM ledger_records WHERE kind = ? ORDER BY seq", (kind,)
        )
        return [json.loads(text) for (text,) in rows]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ the model


def test_ask_records_a_question_due_within_the_vendors_commitment(ledger, vendors):
    asked = ask(
        ledger,
        vendors,
        vendor="harbor_payments",
        subject="  When is the  2.4.1 fix due? ",
        body="Line one\r\nline two  \n",
        asked_at=at(0),
    )
    assert re.fullmatch(r"Q-[0-9a-f]{8}", asked.question_id)
    assert (asked.vendor, asked.subject, asked.body) == (
        "harbor_payments",
        "When is the 2.4.1 fix due?",
        "Line one\nline two",
    )
    assert (asked.asked_at, asked.due_at, asked.response_hours) == (at(0), at(24), 24)
    assert asked.state == "open" and asked.answered_at is None and asked.asked_by == "alice"
    [body] = bodies(ledger, ASKED)
    assert body == {
        "question_id": asked.question_id,
        "vendor": "harbor_payments",
        "direction": "to_vendor",
        "subject": "When is the 2.4.1 fix due?",
        "body": "Line one\nline two",
        "asked_by": "alice",
        "response_hours": 24,
        "due_at": at(24),
    }


def test_an_answer_within_the_commitment_is_on_time(ledger, vendors):
    asked = ask(ledger, vendors, vendor="ledgerline_analytics", subject="Export?", asked_at=at(0))
    assert asked.due_at == at(72)
    done = answer(ledger, asked.question_id, "Friday.\nWith the\tfull export.", answered_at=at(23))
    assert done.state == "answered" and not done.late and not done.overdue
    assert (done.answer, done.answered_by, done.answered_at) == (
        "Friday.\nWith the\tfull export.",
        "alice",
        at(23),
    )
    assert done.response_hours_taken == 23.0
    assert bodies(ledger, ANSWERED) == [
        {"question_id": asked.question_id, "text": done.answer, "answered_by": "alice"}
    ]


def test_an_answer_after_the_due_time_is_late(ledger, vendors):
    asked = ask(ledger, vendors, vendor="harbor_payments", subject="Root cause?", asked_at=at(0))
    done = answer(ledger, asked.question_id, "A config error.", answered_at=at(25.5))
    assert done.late and done.state == "answered" and not done.overdue
    assert done.response_hours_taken == 25.5


def test_an_open_question_past_its_due_time_is_overdue(ledger, vendors):
    past = datetime.now(UTC) - timedelta(hours=30)
    asked = ask(ledger, vendors, vendor="harbor_payments", subject="Status?", asked_at=past)
    fresh = ask(ledger, vendors, vendor="ledgerline_analytics", subject="Status?", asked_at=past)
    by_id = {q.question_id: q for q in questions(ledger)}
    assert by_id[asked.question_id].overdue and by_id[asked.question_id].late
    assert not by_id[fresh.question_id].late  # 72 hours to answer
    earlier = {q.question_id: q for q in questions(ledger, now=past + timedelta(hours=1))}
    assert not earlier[asked.question_id].late
    # Answering now makes it answered, and late.
    done = answer(ledger, asked.question_id, "Done.")
    assert done.late and not done.overdue and done.response_hours_taken >= 30


def test_a_question_cannot_be_answered_twice_or_unknown(ledger, vendors):
    asked = ask(ledger, vendors, vendor="harbor_payments", subject="Why?", asked_at=at(0))
    answer(ledger, asked.question_id, "Because.", answered_at=at(1))
    before = count(ledger)
    with pytest.raises(UserError, match=rf"question {asked.question_id} was already answered"):
        answer(ledger, asked.question_id, "Again.", answered_at=at(2))
    with pytest.raises(UserError, match=r"no question 'Q-00000000' in the ledger"):
        answer(ledger, "Q-00000000", "Hm.")
    with pytest.raises(UserError, match=r"is before question"):
        other = ask(ledger, vendors, vendor="harbor_payments", subject="Y", asked_at=at(5))
        before += 1
        answer(ledger, other.question_id, "Early.", answered_at=at(4))
    with pytest.raises(UserError, match=r"--text is empty"):
        answer(ledger, asked.question_id, " \n ")
    assert count(ledger) == before


def test_two_ledgers_answering_the_same_question_one_wins(ledger, vendors):
    asked = ask(ledger, vendors, vendor="harbor_payments", subject="Race?", asked_at=at(0))
    other = Ledger.open()
    try:
        answer(other, asked.question_id, "First.", answered_at=at(1))
        with pytest.raises(UserError, match=r"already answered .* by alice"):
            answer(ledger, asked.question_id, "Second.", answered_at=at(1))
    finally:
        other.close()
    assert len(bodies(ledger, ANSWERED)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vendor": "acme"}, r"unknown vendor 'acme': .*harbor_payments, ledgerline_analytics"),
        ({"subject": "   "}, r"--subject is empty"),
        ({"subject": "x" * 201}, r"--subject .* is 201 characters long: at most 200"),
        ({"subject": "a\nb"}, r"--subject .* contains a newline"),
        ({"subject": "pay\u202egateway"}, r"--subject .* bidirectional control character U\+202E"),
        ({"body": "a\0b"}, r"--body .* contains a NUL character"),
        ({"body": "ok\nbad\u200bline"}, r"--body .* zero-width character U\+200B"),
        ({"body": "ok\u2028next"}, r"--body .* line break other than a newline \(U\+2028\)"),
        ({"body": "bell\x07"}, r"--body .* control character U\+0007"),
        ({"body": "x" * (MAX_BODY + 1)}, r"--body is 65537 characters long: at most 65536"),
        ({"asked_at": "yesterday"}, r"asked at 'yesterday' is not a time"),
    ],
)
def test_bad_questions_are_refused_and_nothing_is_recorded(ledger, vendors, kwargs, message):
    arguments = {"vendor": "harbor_payments", "subject": "A question", **kwargs}
    with pytest.raises(UserError, match=message) as refused:
        ask(ledger, vendors, **arguments)
    assert "\n" not in str(refused.value)
    assert count(ledger) == 0


def test_a_huge_body_is_refused_by_its_length_first():
    # Refused for its length, before any character is looked at (it is all U+202E).
    huge = "\u202e" * (1024 * 1024)
    with pytest.raises(UserError, match=r"--body is 1048576 characters long") as refused:
        check_multiline(huge, "--body", max_len=MAX_BODY)
    assert "bidirectional" not in str(refused.value)
    assert check_multiline("\n  a\r\n\tb  \n\n", "--body", max_len=20) == "  a\n\tb"


# ------------------------------------------------------------------ the CLI


def test_cli_add_answer_and_list(ledger, inventory, capsys):
    code, out, err = run_cli(
        capsys,
        "vendor",
        "question",
        "add",
        "--vendor",
        "harbor_payments",
        "--subject",
        "Is 2.4.0 PCI-certified?",
        "--body",
        "We need the\nattestation.",
        "-i",
        str(inventory),
    )
    assert code == 0, err
    found = re.fullmatch(
        r"question (Q-[0-9a-f]{8}) recorded for harbor_payments, response due"
        r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n",
        out,
    )
    assert found, out
    question_id = found[1]
    code, out, err = run_cli(capsys, "vendor", "question", "list", "--open")
    assert code == 0, err
    assert question_id in out and "Is 2.4.0 PCI-certified?" in out and "open" in out
    code, out, err = run_cli(capsys, "vendor", "question", "answer", question_id, "--text", "Yes.")
    assert code == 0, err
    assert out.startswith(f"question {question_id} answered on time")
    code, out, _ = run_cli(capsys, "vendor", "question", "list", "--open")
    assert out.strip() == "no open questions"
    code, out, _ = run_cli(capsys, "vendor", "question", "list", "--json")
    [item] = json.loads(out)
    assert (item["question_id"], item["state"], item["answer"], item["late"]) == (
        question_id,
        "answered",
        "Yes.",
        False,
    )
    assert item["body"] == "We need the\nattestation."
    code, out, err = run_cli(capsys, "ledger", "verify")
    assert code == 0, out + err


def test_cli_list_overdue_late_and_by_vendor(ledger, vendors, capsys):
    now = datetime.now(UTC)
    overdue = ask(
        ledger,
        vendors,
        vendor="harbor_payments",
        subject="Overdue one",
        asked_at=now - timedelta(hours=30),
    )
    late = ask(
        ledger,
        vendors,
        vendor="harbor_payments",
        subject="Late one",
        asked_at=now - timedelta(hours=40),
    )
    answer(ledger, late.question_id, "Sorry.", answered_at=now - timedelta(hours=1))
    fresh = ask(ledger, vendors, vendor="ledgerline_analytics", subject="Fresh one")
    code, out, err = run_cli(capsys, "vendor", "question", "list", "--overdue", "--json")
    assert code == 0, err
    assert [q["question_id"] for q in json.loads(out)] == [overdue.question_id]
    code, out, _ = run_cli(capsys, "vendor", "question", "list", "--open", "--json")
    assert {q["question_id"] for q in json.loads(out)} == {overdue.question_id, fresh.question_id}
    code, out, _ = run_cli(capsys, "vendor", "question", "list")
    rows = {line.split()[1]: line for line in out.splitlines() if "Q-" in line}
    assert "OVERDUE" in rows[overdue.question_id] and "late" in rows[overdue.question_id]
    assert "answered" in rows[late.question_id] and "late" in rows[late.question_id]
    assert "open" in rows[fresh.question_id] and "late" not in rows[fresh.question_id]
    assert "3 question(s): 2 open, 1 overdue, 1 answered late" in out
    code, out, _ = run_cli(
        capsys, "vendor", "question", "list", "--vendor", "ledgerline_analytics", "--json"
    )
    assert [q["question_id"] for q in json.loads(out)] == [fresh.question_id]
    code, out, _ = run_cli(capsys, "vendor", "question", "list", "--overdue", "--vendor", "x")
    assert out.strip() == "no overdue questions"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vendor", "acme", "--subject", "Hi"], "unknown vendor 'acme'"),
        (["--vendor", "harbor_payments", "--subject", " "], "--subject is empty"),
        (
            ["--vendor", "harbor_payments", "--subject", "Hi", "--body", "x" * (1024 * 1024)],
            "--body is 1048576 characters long",
        ),
        (
            ["--vendor", "harbor_payments", "--subject", "Hi", "--body", "a\u2066b"],
            "bidirectional control character U+2066",
        ),
    ],
)
def test_cli_refuses_bad_questions_in_one_line(ledger, inventory, capsys, args, message):
    before = count(ledger)
    code, out, err = run_cli(capsys, "vendor", "question", "add", *args, "-i", str(inventory))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err
    assert len(err) < 400
    assert count(ledger) == before


def test_cli_refuses_unknown_ids_and_second_answers(ledger, vendors, capsys):
    asked = ask(ledger, vendors, vendor="harbor_payments", subject="Once", asked_at=at(0))
    code, _, err = run_cli(capsys, "vendor", "question", "answer", asked.question_id, "--text", "A")
    assert code == 0, err
    before = count(ledger)
    code, out, err = run_cli(capsys, "vendor", "question", "answer", "Q-deadbeef", "--text", "B")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "no question 'Q-deadbeef' in the ledger" in err
    code, out, err = run_cli(
        capsys, "vendor", "question", "answer", asked.question_id, "--text", "B"
    )
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"question {asked.question_id} was already answered" in err
    code, out, err = run_cli(capsys, "vendor", "question", "answer", "Q-1\x1b[31m", "--text", "C")
    assert code == 2 and "\x1b" not in err and err.count("\n") == 1
    assert count(ledger) == before
    code, out, err = run_cli(capsys, "ledger", "verify")
    assert code == 0, out + err
