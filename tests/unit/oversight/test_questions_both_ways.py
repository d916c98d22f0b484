"""Questions both ways on a real SQLite ledger: vendors' questions to the agency, due within
the agency's commitment for their category (milepost_question_commitments), reminders of
those due soon (listed, and mailed to a real SMTP server on 127.0.0.1), both directions in
the scorecard, an overdue one on the dashboard in a real Chromium; bad input refused in one
line with nothing recorded."""

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from inventories import PATCH_POLICY, RUC_HOSTS, RUC_VENDORS, write_inventory
from test_notify import notify_yaml

from milepost.cli.main import main
from milepost.errors import UserError
from milepost.inventory.question_commitments import parse_commitments
from milepost.inventory.vendors import load_vendors
from milepost.ledger.chain import format_time
from milepost.notify import send_notice
from milepost.oversight.questions import TO_AGENCY, answer, ask, ask_agency, due_soon, questions
from milepost.oversight.scorecard import parse_period, scorecards
from milepost.patching import policy as patch_policy
from milepost.reports import write_dashboard

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from browser import chromium, words  # noqa: E402
from notice_servers import smtp_server  # noqa: E402

COMMITMENTS = """\
milepost_question_commitments:
  security: 1
  billing: 5
  operations: 0.5
"""
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
EXTRA_NOTICES = "    question_reminder: [customer_service]\n    daily_review: [communications]\n"


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


@pytest.fixture
def inventory(tmp_path, smtp):
    return write_inventory(
        tmp_path / "inventory",
        RUC_HOSTS,
        vendors=RUC_VENDORS,
        interfaces="milepost_interfaces:\n  - {name: payments-api, vendor: harbor_payments,"
        ' kind: https, url: "https://127.0.0.1:1/"}\n',
        patch_policy=PATCH_POLICY,
        commitments=COMMITMENTS,
        notify=notify_yaml(smtp.port) + EXTRA_NOTICES,
    )


def records(ledger) -> int:
    with ledger.read_transaction() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM ledger_records").scalar_one()


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_vendor_question_is_due_within_the_agencys_commitment(ledger, inventory):
    vendors = load_vendors([inventory])
    asked = ask_agency(
        ledger, vendors, parse_commitments({"billing": 5}), vendor="harbor_payments",
        category="billing", subject="Which statement format from January?",
        asked_by="Dana Ortiz", asked_at=at(0),
    )  # fmt: skip
    assert (asked.direction, asked.category, asked.asked_by) == (TO_AGENCY, "billing", "Dana Ortiz")
    assert asked.response_hours == 120 and asked.due_at == format_time(at(120))
    # Ours to them is still the vendor's contract (harbor_payments: 24 h).
    ours = ask(ledger, vendors, vendor="harbor_payments", subject="Patch date?", asked_at=at(0))
    assert (ours.direction, ours.category, ours.due_at) == ("to_vendor", None, format_time(at(24)))
    found = {q.question_id: q for q in questions(ledger, now=at(121))}
    assert found[asked.question_id].overdue and found[ours.question_id].overdue
    answer(ledger, asked.question_id, "The 2027 format.", answered_at=at(100))
    assert not questions(ledger, now=at(121))[0].late


def test_reminders_name_the_questions_due_soon_and_go_once_by_mail(ledger, inventory, smtp):
    vendors = load_vendors([inventory])
    commitments = parse_commitments({"security": 1, "billing": 5})
    soon = ask_agency(
        ledger,
        vendors,
        commitments,
        vendor="keystone_accounts",
        category="security",
        subject="Is CVE-2026-1111 in scope?",
        asked_at=at(0),
    )
    later = ask_agency(ledger, vendors, commitments, vendor="harbor_payments",
                       category="billing", subject="Invoice cycle?", asked_at=at(0))  # fmt: skip
    # 20 h after: the security question is due in 4 h, the billing one in 100 h.
    assert [q.question_id for q in due_soon(questions(ledger), at(20), 24)] == [soon.question_id]
    assert due_soon(questions(ledger), at(25), 24) == []  # overdue is no longer "soon"
    outcome = send_notice("question_reminder", sources=[inventory], within_hours=24, at=at(20))
    assert [d.result for d in outcome.deliveries] == ["sent"]
    assert smtp.messages[0]["to"] == ["cs-leads@ruc.example.gov"]
    assert "Reminder: 1 vendor question due" in smtp.subject(0)
    text = smtp.text(0)
    assert "Keystone Account Services LLC (security): Is CVE-2026-1111 in scope?" in text
    assert soon.question_id in text and later.question_id not in text
    again = send_notice("question_reminder", sources=[inventory], within_hours=24, at=at(21))
    assert again.deliveries == [] and "already reminded" in again.skipped[0]
    assert len(smtp.messages) == 1


def test_cli_records_lists_and_reminds(ledger, inventory, capsys):
    code, out, err = run_cli(
        capsys, "vendor", "question", "add", "--from-vendor", "--vendor", "harbor_payments",
        "--category", "operations", "--subject", "Can we move the window?", "-i", str(inventory),
    )  # fmt: skip
    assert code == 0, err
    assert "from harbor_payments recorded (operations), our answer due" in out
    code, out, _ = run_cli(capsys, "vendor", "question", "list", "--direction", "to_agency",
                           "--json")  # fmt: skip
    [listed] = json.loads(out)
    assert (listed["direction"], listed["category"], listed["response_hours"]) == (
        "to_agency",
        "operations",
        12.0,
    )
    code, out, _ = run_cli(capsys, "vendor", "question", "remind", "--within", "24", "--json")
    assert [q["question_id"] for q in json.loads(out)] == [listed["question_id"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from-vendor", "--category", "parking"],
         "unknown question category 'parking': milepost_question_commitments has billing,"
         " operations, security"),
        (["--from-vendor"], "--from-vendor needs --category"),
        (["--category", "billing"], "add --from-vendor"),
    ],
)  # fmt: skip
def test_cli_refuses_an_unknown_category_in_one_line(ledger, inventory, capsys, args, message):
    before = records(ledger)
    code, out, err = run_cli(
        capsys, "vendor", "question", "add", "--vendor", "harbor_payments", "--subject", "Q?",
        "-i", str(inventory), *args,
    )  # fmt: skip
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in out + err and records(ledger) == before


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["billing"], "must map question categories to days"),
        ({"billing": "five"}, "milepost_question_commitments.billing must be a number of days"),
        ({"billing": 0}, "more than 0 and at most 365"),
        ({"billing": True}, "must be a number of days"),
        ({"Billing Team": 5}, "is not a category name"),
    ],
)
def test_a_malformed_commitments_mapping_is_one_line(value, message):
    with pytest.raises(UserError, match=message) as raised:
        parse_commitments(value)
    assert "\n" not in str(raised.value)


def test_the_inventory_check_refuses_malformed_commitments(ledger, tmp_path, capsys):
    root = write_inventory(
        tmp_path / "bad", RUC_HOSTS, vendors=RUC_VENDORS,
        commitments="milepost_question_commitments: {billing: -1}\n",
    )  # fmt: skip
    before = records(ledger)
    code, out, err = run_cli(capsys, "maintain", "--check", "-i", str(root))
    assert code == 2, (out, err)
    assert "milepost_question_commitments.billing must be a number of days" in err
    assert len(err.strip().splitlines()) == 1 and records(ledger) == before


def test_both_directions_in_the_scorecard_and_overdue_on_the_dashboard(
    ledger, inventory, tmp_path, capsys
):
    vendors = load_vendors([inventory])
    commitments = parse_commitments({"security": 1, "billing": 5})
    ours = ask(ledger, vendors, vendor="harbor_payments", subject="Fix date?", asked_at=at(0))
    answer(ledger, ours.question_id, "Friday.", answered_at=at(30))  # late (24 h)
    theirs = ask_agency(ledger, vendors, commitments, vendor="harbor_payments",
                        category="security", subject="Rotate the SFTP key?",
                        asked_at=at(0))  # fmt: skip
    answered = ask_agency(
        ledger,
        vendors,
        commitments,
        vendor="harbor_payments",
        category="billing",
        subject="Invoice date?",
        asked_at=at(1),
    )
    answer(ledger, answered.question_id, "The 5th.", answered_at=at(10))  # fmt: skip
    now = at(48)  # the security question (due at 24 h) is overdue
    sources = [inventory]
    [card] = scorecards(
        ledger, vendors, {"pay-01": "harbor_payments"}, patch_policy.load(sources),
        parse_period("2026-12"), only="harbor_payments", now=now,
    )  # fmt: skip
    assert (card.questions, card.answered_late, card.open_overdue) == (1, 1, 0)
    assert (card.agency_questions, card.agency_answered_on_time, card.agency_open_overdue) == (
        2,
        1,
        1,
    )
    assert card.agency_median_response_hours == 9.0
    assert card.agency_overdue_ids == [theirs.question_id]
    # One day earlier nothing of ours is overdue.
    [before] = scorecards(
        ledger,
        vendors,
        {},
        patch_policy.load(sources),
        parse_period("2026-12"),
        only="harbor_payments",
        now=at(12),
    )
    assert before.agency_overdue_ids == []  # fmt: skip

    index = write_dashboard(tmp_path / "site", sources, 1, ledger=ledger, now=now)
    dom = chromium(tmp_path, "--dump-dom", index.as_uri()).stdout
    page = words(dom)
    assert "Their questions past our answer time" in page
    # The cell as the browser's DOM holds it: the badge, the words, the ids for engineers.
    assert (
        '<td data-field="agency-questions"><span class="badge badge-problem">Overdue</span>'
        f' 1 question overdue<span class="detail engineers">{theirs.question_id}</span></td>'
    ) in page
    status = json.loads((index.parent / "status.json").read_text())
    [row] = [v for v in status["vendors"] if v["key"] == "harbor_payments"]
    assert row["agency_questions_overdue"] == 1
    [keystone] = [v for v in status["vendors"] if v["key"] == "keystone_accounts"]
    assert keystone["agency_questions_text"] == "None overdue"
