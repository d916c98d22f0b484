"""QC's catch rate (milepost.oversight.catch_rate), from a real SQLite ledger built here with
known times: known glitches, runs, updates, QC results and changes in; known counts, rates,
mean times, recurrences, checks to review and flaky checks out. And `milepost qc report`."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from milepost.cli.main import main
from milepost.ledger.chain import format_time
from milepost.ledger.runs import package_change, run_started
from milepost.oversight.catch_rate import catch_rate, catch_rate_rows, detected_how

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def t(text: str) -> str:
    """'2026-04-01 06:00' in the ledger's time format."""
    return format_time(datetime.fromisoformat(text).replace(tzinfo=UTC))


def glitch(glitch_id, when, detected_by, *, title=None, runs=(), glitches=(), cause=None):
    body = {
        "glitch_id": glitch_id,
        "title": title or f"glitch {glitch_id}",
        "detected_at": t(when),
        "detected_by": detected_by,
        "status": "open",
        "links": {"runs": list(runs), "glitches": list(glitches), "notes": []},
        "run_id": runs[0] if runs else None,
        "hosts": [],
        "resources": [],
        "added_by": "alice",
    }
    if cause:
        body["cause"] = cause
    return {"kind": "glitch", "run_id": body["run_id"], "host": None, "recorded_at": t(when),
            "body": body}  # fmt: skip


def update(note_id, when, status=None, **fields):
    body = {"note_id": note_id, "status": status, "fields": fields,
            "links": {"runs": [], "glitches": [], "notes": []}, "comment": None,
            "updated_by": "alice"}  # fmt: skip
    return {"kind": "note_updated", "run_id": None, "host": None, "recorded_at": t(when),
            "body": body}  # fmt: skip


def run(run_id, when, kind="scheduled"):
    return {**run_started(playbook="playbooks/maintain.yml", kind=kind, run_id=run_id,
                          started_at=t(when)), "recorded_at": t(when)}  # fmt: skip


def qc(host, check, status, when, digest="d1"):
    body = {"check": check, "status": status, "message": None, "catalogue_sha256": digest}
    return {"kind": "qc_result", "run_id": f"q-{when}", "host": host, "recorded_at": t(when),
            "body": body}  # fmt: skip


def catalogue_change(note_id, when, digest):
    body = {"note_id": note_id, "type": "qc-process", "title": "QC change", "text": "why",
            "category": "technology", "status": "recorded",
            "links": {"runs": [], "glitches": [], "notes": []}, "added_by": "alice",
            "details": {"catalogue_sha256": digest, "files": {}, "changed": [],
                        "answers": {}}}  # fmt: skip
    return {"kind": "note", "run_id": None, "host": None, "recorded_at": t(when), "body": body}


def build_catch_ledger(ledger) -> None:
    """Three months of glitches (April to June 2026) and a year of QC results."""
    ledger.append([run("m1", "2026-04-01 00:00"), run("m2", "2026-05-10 00:00")])
    ledger.append(
        [
            # Before the months shown: only an earlier cause for what recurs.
            glitch("G-0000000a", "2026-03-01 00:00", "customers", title="Statements late"),
            # April: QC (6 h after its run, corrected in 12 h), a customer report (48 h
            # after the run it is linked to, still open), monitoring (corrected in 24 h).
            glitch("G-a0000001", "2026-04-01 06:00", "qc", runs=["m1"]),
            glitch("G-a0000002", "2026-04-03 00:00", "customer service", runs=["m1"]),
            glitch("G-a0000003", "2026-04-05 00:00", "monitoring"),
            # May: QC 2 h after its run; a vendor's report of the same problem while it
            # was open (linked: counted once); staff report a disk full again.
            glitch("G-b0000001", "2026-05-10 02:00", "qc", runs=["m2"],
                   title="QC failed on pay-01: test_spool_has_room"),
            glitch("G-b0000002", "2026-05-10 05:00", "vendor", glitches=["G-b0000001"]),
            glitch("G-b0000003", "2026-05-20 00:00", "staff", cause="Disk  FULL"),
            # June: the QC failure of May again (same title); an old problem again.
            glitch("G-c0000001", "2026-06-02 00:00", "qc",
                   title="QC failed on pay-01: test_spool_has_room"),
            glitch("G-c0000002", "2026-06-03 00:00", "Customers", title="statements late"),
        ]
    )  # fmt: skip
    ledger.append(
        [
            update("G-a0000001", "2026-04-01 18:00", status="resolved"),
            update("G-a0000003", "2026-04-05 12:00", status="investigating"),
            update("G-a0000003", "2026-04-06 00:00", status="closed", cause="disk full"),
            # Resolved, reopened, closed again: corrected when last closed.
            update("G-b0000001", "2026-05-10 04:00", status="resolved"),
            update("G-b0000001", "2026-05-10 06:00", status="open"),
            update("G-b0000001", "2026-05-11 02:00", status="closed"),
        ]
    )
    results = []
    # Reliable since last year: failed once in November, never since (review it).
    results += [qc("pay-01", "test_old_reliable", "passed", f"2025-{m:02d}-01 00:00")
                for m in (10, 11, 12)]  # fmt: skip
    results += [qc("pay-01", "test_old_reliable", "failed", "2025-11-05 00:00"),
                qc("pay-01", "test_old_reliable", "passed", "2025-11-06 00:00")]  # fmt: skip
    results += [qc("pay-01", "test_old_reliable", "passed", f"2026-{m:02d}-01 00:00")
                for m in range(1, 7)]  # fmt: skip
    # Too new to judge.
    results += [qc("pay-01", "test_new", "passed", "2026-04-01 00:00")]
    # Old, but it failed in May.
    results += [qc("pay-01", "test_failing", "passed", "2025-10-01 00:00"),
                qc("pay-01", "test_failing", "failed", "2026-05-01 00:00")]  # fmt: skip
    # Flaky on pay-02 (failed, passed, nothing changed); then three passes after a change:
    # a package, another catalogue digest, a recorded catalogue change. Flaky on pay-01.
    results += [
        qc("pay-02", "test_flaky", "failed", "2026-05-03 00:00"),
        qc("pay-02", "test_flaky", "skipped", "2026-05-03 12:00"),
        qc("pay-02", "test_flaky", "passed", "2026-05-04 00:00"),
        qc("pay-02", "test_flaky", "failed", "2026-05-10 00:00"),
        qc("pay-02", "test_flaky", "passed", "2026-05-12 00:00"),
        qc("pay-02", "test_flaky", "failed", "2026-05-20 00:00"),
        qc("pay-02", "test_flaky", "passed", "2026-05-21 00:00", digest="d2"),
        qc("pay-02", "test_flaky", "error", "2026-05-25 00:00", digest="d2"),
        qc("pay-02", "test_flaky", "passed", "2026-05-27 00:00", digest="d2"),
        qc("pay-01", "test_flaky", "failed", "2026-06-01 00:00", digest="d2"),
        qc("pay-01", "test_flaky", "passed", "2026-06-02 00:00", digest="d2"),
    ]
    ledger.append(results)
    ledger.append(
        [
            {**package_change("m3", "pay-02", "ruc-payment-gateway", "2.3.0", "2.4.0"),
             "recorded_at": t("2026-05-11 00:00")},
            catalogue_change("QC-00000001", "2026-05-26 00:00", "d2"),
        ]
    )  # fmt: skip


EXPECTED_MONTHS = [
    {"month": "2026-04", "caught_by_qc": 1, "caught_by_monitoring": 1, "reported": 1,
     "caught_percent": 66.7, "detect_hours": 27.0, "detect_counted": 2,
     "correct_hours": 18.0, "correct_counted": 2, "recurring": 0, "caught": 2, "total": 3},
    {"month": "2026-05", "caught_by_qc": 1, "caught_by_monitoring": 0, "reported": 1,
     "caught_percent": 50.0, "detect_hours": 2.0, "detect_counted": 1,
     "correct_hours": 24.0, "correct_counted": 1, "recurring": 1, "caught": 1, "total": 2},
    {"month": "2026-06", "caught_by_qc": 1, "caught_by_monitoring": 0, "reported": 1,
     "caught_percent": 50.0, "detect_hours": None, "detect_counted": 0,
     "correct_hours": None, "correct_counted": 0, "recurring": 2, "caught": 1, "total": 2},
]  # fmt: skip


def test_known_glitches_and_results_give_known_figures(ledger):
    build_catch_ledger(ledger)
    rate = catch_rate(ledger, 3, NOW).as_dict()
    assert rate["months"] == EXPECTED_MONTHS
    assert rate["recurring"] == [
        {"cause": "statements late", "matched_on": "title",
         "glitches": ["G-0000000a", "G-c0000002"],
         "first_detected": t("2026-03-01 00:00"), "last_detected": t("2026-06-03 00:00")},
        {"cause": "qc failed on pay-01: test_spool_has_room", "matched_on": "title",
         "glitches": ["G-b0000001", "G-c0000001"],
         "first_detected": t("2026-05-10 02:00"), "last_detected": t("2026-06-02 00:00")},
        {"cause": "disk full", "matched_on": "cause", "glitches": ["G-a0000003", "G-b0000003"],
         "first_detected": t("2026-04-05 00:00"), "last_detected": t("2026-05-20 00:00")},
    ]  # fmt: skip
    assert rate["stale_checks"] == [
        {"check": "test_old_reliable", "first_result": t("2025-10-01 00:00"),
         "last_failed": t("2025-11-05 00:00"), "results": 6},
    ]  # fmt: skip
    assert rate["flaky_checks"] == [
        {"check": "test_flaky", "times": 2, "hosts": ["pay-01", "pay-02"],
         "last_failed": t("2026-06-01 00:00"), "last_passed": t("2026-06-02 00:00")},
    ]  # fmt: skip
    assert rate["stale_months"] == 6


def test_the_months_shown_decide_what_counts(ledger):
    build_catch_ledger(ledger)
    rate = catch_rate(ledger, 1, NOW)
    assert [m.month for m in rate.months] == ["2026-06"]
    # Recurrences and flaky passes are those of the months shown; stale needs six months.
    assert [r.cause for r in rate.recurring] == [
        "statements late",
        "qc failed on pay-01: test_spool_has_room",
    ]
    assert [(f.check, f.times, f.hosts) for f in rate.flaky_checks] == [
        ("test_flaky", 1, ["pay-01"])
    ]
    later = catch_rate(ledger, 2, NOW + timedelta(days=200))
    assert all(m.total == 0 and m.caught_percent is None for m in later.months)
    assert later.recurring == [] and later.flaky_checks == []
    assert later.stale_checks == []  # nothing run in the last six months


def test_the_rows_for_the_export_are_text():
    from milepost.oversight.catch_rate import CATCH_RATE_COLUMNS, CatchMonth, CatchRate

    rate = CatchRate(
        generated_at=t("2026-06-15 12:00"),
        months=[
            CatchMonth("2026-05", 2, 1, 1, 75.0, 0.5, 1, 30.25, 2, 1),
            CatchMonth("2026-06"),
        ],
        recurring=[],
        stale_checks=[],
        flaky_checks=[],
    )
    assert len(CATCH_RATE_COLUMNS) == 8
    assert catch_rate_rows(rate) == [
        ("2026-05", "2", "1", "1", "75%", "30 min", "30.2 hours", "1"),
        ("2026-06", "0", "0", "0", "-", "-", "-", "0"),
    ]


@pytest.mark.parametrize(
    ("words", "how"),
    [("qc", "qc"), ("QC", "qc"), ("quality control", "qc"), ("monitoring", "monitoring"),
     ("failed run", "monitoring"), ("remediation", "monitoring"), ("customer service", "reported"),
     ("vendor", "reported"), ("staff", "reported"), (None, "reported")],
)  # fmt: skip
def test_who_detected_a_glitch(words, how):
    assert detected_how(words) == how


def test_qc_report_json_and_text(ledger):
    now = datetime.now(UTC)
    when = now.strftime("%Y-%m-%d %H:%M")  # this month
    ledger.append([glitch("G-d0000001", when, "qc"), glitch("G-d0000002", when, "vendor")])
    result = CliRunner().invoke(_app(), ["report", "--json", "--months", "2"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"generated_at", "months", "recurring", "stale_checks",
                         "flaky_checks", "stale_months"}  # fmt: skip
    earlier, this = data["months"]
    assert this["month"] == now.strftime("%Y-%m") and earlier["total"] == 0
    assert (this["caught_by_qc"], this["reported"], this["caught_percent"]) == (1, 1, 50.0)
    text = CliRunner().invoke(_app(), ["report"])
    assert text.exit_code == 0, text.output
    assert "QC's catch rate, last 6 months" in text.stdout
    assert "Flaky checks (failed, then passed with no change between): none" in text.stdout


def _app():
    from milepost.cli.qc import qc_app

    return qc_app


@pytest.mark.parametrize("months", ["0", "37", "x", "-1"])
def test_bad_months_are_refused(ledger, capsys, months):
    code = main(["qc", "report", "--months", months])
    err = capsys.readouterr().err
    assert code == 2 and "--months" in err and len(err.strip().splitlines()) == 1
