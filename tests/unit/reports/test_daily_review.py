"""Hypercare with dates and its daily review: one rule (milepost.inventory.phase.phase_at)
judged at an injected clock, hypercare ending on its own after its end day, an end before
the launch refused in one line, and the daily review read from a real SQLite ledger,
written to a file and mailed to a real SMTP server (aiosmtpd on 127.0.0.1)."""

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import load_module
from inventories import PATCH_POLICY, PAYMENTS_API, RUC_HOSTS, RUC_VENDORS, write_inventory
from test_dashboard import qc_result
from test_notify import notify_yaml

from milepost.cli.main import main
from milepost.errors import UserError
from milepost.inventory.phase import parse_phase, phase_at
from milepost.inventory.reading import inventory_phase
from milepost.inventory.vendors import load_vendors
from milepost.ledger.chain import format_time
from milepost.ledger.runs import run_ended, run_started, task_result
from milepost.oversight.questions import ask_agency
from milepost.oversight.register_writing import run_glitch_record
from milepost.reports.daily_review import daily_review

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from notice_servers import smtp_server  # noqa: E402

PHASE = {"name": "hypercare", "launch": date(2026, 12, 1), "end": date(2027, 1, 15)}
#: Payments launches with dates; the rest of the program is normal.
PAYMENTS_PHASE = "milepost_phase: {name: hypercare, launch: 2026-12-01, end: 2027-01-15}\n"
RUN = "20261210T020000Z-aa11bb22"
NOW = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)


def moment(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


@pytest.mark.parametrize(
    ("day", "phase"),
    [("2026-11-30", "normal"), ("2026-12-01", "hypercare"), ("2027-01-14", "hypercare"),
     ("2027-01-15", "hypercare"), ("2027-01-16", "normal")],
)  # fmt: skip
def test_hypercare_ends_on_its_own_after_its_end_day(day, phase):
    assert phase_at(PHASE, moment(day)) == phase
    assert phase_at({**PHASE, "launch": "2026-12-01", "end": "2027-01-15"}, moment(day)) == phase


def test_the_plain_names_still_work():
    assert phase_at("hypercare", moment("2030-01-01")) == "hypercare"
    assert phase_at("normal") == phase_at(None) == "normal"
    assert phase_at({"name": "hypercare", "end": date(2026, 12, 31)}, moment("2027-01-01")) == (
        "normal"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"name": "hypercare", "launch": "2027-01-15", "end": "2026-12-01"},
         "milepost_phase.end 2026-12-01 is before its launch 2027-01-15: give an end on or"
         " after the launch"),
        ({"name": "hypercare", "end": "15/01/2027"},
         "milepost_phase.end '15/01/2027' is not a date"),
        ({"name": "normal", "end": "2027-01-15"}, "dates are for hypercare"),
        ({"name": "launch"}, "is not one of normal, hypercare"),
        ({"name": "hypercare", "until": "2027-01-15"}, "unknown key(s) 'until'"),
        (["hypercare"], "must be normal or hypercare, or a mapping"),
    ],
)  # fmt: skip
def test_a_bad_phase_is_one_line(value, message):
    with pytest.raises(UserError) as raised:
        parse_phase(value)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_the_playbooks_filters_use_the_same_rule():
    from ansible.errors import AnsibleFilterError

    now_filter = load_module("milepost_phase_now", "filter").milepost_phase_now
    assert now_filter(PHASE, "2027-01-15") == "hypercare"
    assert now_filter(PHASE, "2027-01-16") == "normal"
    with pytest.raises(AnsibleFilterError, match="is before its launch"):
        now_filter({"name": "hypercare", "launch": "2027-01-15", "end": "2026-12-01"})
    hosts_filter = load_module("milepost_hypercare_hosts", "filter").milepost_hypercare_hosts
    hostvars = {"pay-01": {"milepost_phase": "hypercare"}, "acct-01": {}}
    assert hosts_filter(["acct-01", "pay-01"], hostvars) == ["pay-01"]


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


@pytest.fixture
def inventory(tmp_path, smtp):
    root = write_inventory(
        tmp_path / "inventory",
        RUC_HOSTS,
        vendors=RUC_VENDORS,
        interfaces=PAYMENTS_API,
        patch_policy=PATCH_POLICY,
        commitments="milepost_question_commitments: {security: 1, billing: 5}\n",
        notify=notify_yaml(smtp.port) + "    daily_review: [communications]\n",
    )
    (root / "group_vars" / "payment_gateway.yml").write_text(PAYMENTS_PHASE)
    return root


def records(ledger) -> int:
    with ledger.read_transaction() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM ledger_records").scalar_one()


def test_a_group_in_hypercare_makes_the_run_hypercare_on_its_days(inventory):
    assert inventory_phase([inventory], moment("2026-12-05")) == "hypercare"
    assert inventory_phase([inventory], moment("2027-01-16")) == "normal"
    # Only hosts outside the launching group: normal.
    assert inventory_phase([inventory], moment("2026-12-05"), hosts=["acct-01"]) == "normal"


def test_the_inventory_check_refuses_an_end_before_the_launch(ledger, tmp_path, capsys):
    root = write_inventory(
        tmp_path / "bad", RUC_HOSTS, vendors=RUC_VENDORS, interfaces=PAYMENTS_API
    )
    (root / "group_vars" / "payment_gateway.yml").write_text(
        "milepost_phase: {name: hypercare, launch: 2027-01-15, end: 2026-12-01}\n"
    )
    before = records(ledger)
    code = main(["maintain", "--check", "-i", str(root)])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "pay-01, pay-02: milepost_phase.end 2026-12-01 is before its launch 2027-01-15" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in out + err
    assert records(ledger) == before


def add_day(ledger, inventory) -> str:
    """The day before NOW: a failed run with its glitch, a failed QC check, an open vendor
    question to the agency (overdue); and an older run, outside the day."""
    old = "20261201T020000Z-00000000"
    ledger.append(
        [
            {
                **run_started(playbook="playbooks/maintain.yml", kind="scheduled", run_id=old),
                "recorded_at": "2026-12-01T02:00:00.000000Z",
            },
            {**run_ended(old, "successful"), "recorded_at": "2026-12-01T02:30:00.000000Z"},
        ]
    )
    when = format_time(NOW - timedelta(hours=6))
    ledger.append(
        [
            {**run_started(playbook="playbooks/maintain.yml", kind="scheduled", run_id=RUN),
             "recorded_at": when},
            {**task_result(RUN, "pay-01", "AUDIT | Pass the health gate", "failed",
                           summary="health check failed"), "recorded_at": when},
            {**run_glitch_record(RUN, "playbooks/maintain.yml run failed on pay-01", ["pay-01"]),
             "recorded_at": when},
            qc_result(RUN, "pay-02", "failed", when, message="port 8443 closed"),
            {**run_ended(RUN, "failed"), "recorded_at": when},
        ]
    )  # fmt: skip
    asked = ask_agency(
        ledger, load_vendors([inventory]), {"security": 1.0}, vendor="harbor_payments",
        category="security", subject="Rotate the SFTP key?", asked_at=NOW - timedelta(days=2),
    )  # fmt: skip
    return asked.question_id


def test_the_daily_review_lists_the_last_day(ledger, inventory):
    question = add_day(ledger, inventory)
    review = daily_review(ledger, [inventory], NOW)
    assert review.in_hypercare and review.hypercare_ends == "2027-01-15"
    assert review.hypercare_hosts == ["pay-01", "pay-02"]
    assert [(r["run_id"], r["status"], r["failed_hosts"]) for r in review.runs] == [
        (RUN, "failed", ["pay-01"])
    ]
    assert [g["title"] for g in review.glitches] == ["playbooks/maintain.yml run failed on pay-01"]
    assert [(q["host"], q["status"]) for q in review.qc_failures] == [("pay-02", "failed")]
    assert [(q["id"], q["to"], q["overdue"]) for q in review.questions] == [
        (question, "agency", True)
    ]
    # After the end day there is no review.
    assert not daily_review(ledger, [inventory], moment("2027-01-16")).in_hypercare


def test_the_daily_review_is_written_and_mailed(ledger, inventory, smtp, tmp_path, capsys):
    question = add_day(ledger, inventory)
    out = tmp_path / "review.txt"
    code = main(["report", "daily-review", "--out", str(out), "--send", "--at", NOW.isoformat(),
                 "-i", str(inventory)])  # fmt: skip
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert "communications: email: sent" in printed
    text = out.read_text()
    assert text.startswith("Hypercare daily review, Road Usage Charge program: 2026-12-10")
    assert f"{RUN} playbooks/maintain.yml (scheduled): failed; failed on pay-01" in text
    assert "pay-02 test_service_answers: failed (port 8443 closed)" in text
    assert f"{question} OVERDUE due" in text
    [message] = smtp.messages
    assert message["to"] == ["communications@ruc.example.gov"]
    assert smtp.subject() == (
        "Hypercare daily review 2026-12-10: 1 runs, 1 glitches, 1 QC failures"
    )
    mail = smtp.text()
    assert "in hypercare until 2027-01-15" in mail
    assert "OVERDUE harbor_payments to the agency (security): Rotate the SFTP key?" in mail
    with ledger.read_transaction() as conn:
        [about] = conn.exec_driver_sql(
            "SELECT json_extract(body, '$.about.day') FROM ledger_records WHERE kind = 'notice'"
        ).one()
    assert about == "2026-12-10"


def test_no_review_after_hypercare_ended(ledger, inventory, smtp, tmp_path, capsys):
    out = tmp_path / "review.txt"
    code = main(["report", "daily-review", "--out", str(out), "--send",
                 "--at", "2027-01-16T08:00:00Z", "-i", str(inventory)])  # fmt: skip
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert "no daily review: the program is not in hypercare on 2027-01-16" in printed
    assert not out.exists() and smtp.messages == []
