# ruff: noqa: F811
"""Safety invariant 6: ledger data is untrusted input.

Anyone on the team can append to the ledger. For every kind of record a reader uses, a
malformed body (wrong types, missing keys, a version that is not a Debian version, a bad
date, a body that is not an object, a huge string, template syntax) written into a real
SQLite ledger beside good records makes every reader warn ONCE naming the record's seq and
kind and carry on with the good records: exposure, the advisories list, the dashboard (also
in a real Chromium), emergency candidates, drift, the registers, scorecards and notices.
No command prints a traceback because of it.
"""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_dashboard import build_ledger
from test_dashboard import inventory as dashboard_inventory  # noqa: F401  (a fixture)

from milepost.change_control.approvals import load_plans, load_signatures
from milepost.drift.changes import changes
from milepost.drift.findings import findings
from milepost.errors import UserError
from milepost.ledger.bodies import collecting, usable_run
from milepost.ledger.chain import canonical_record, chain_hash, utc_now
from milepost.ledger.runs import run_started, task_result
from milepost.ledger.schema import records as T
from milepost.notify.send import _already_reminded, _already_told
from milepost.oversight.action_writing import add_action
from milepost.oversight.catch_rate import catch_rate
from milepost.oversight.lesson_actions import actions
from milepost.oversight.questions import questions
from milepost.oversight.register_reading import notes
from milepost.oversight.register_writing import add_note
from milepost.oversight.scorecard import parse_period, scorecards
from milepost.patching import policy as patch_policy
from milepost.patching.advisories import load_advisories
from milepost.patching.emergency import ansible_packages
from milepost.patching.exposure import exposures, installed_packages, load_exceptions
from milepost.reports.status import build_status
from milepost.reports.status_sections import _read_inventory

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from browser import chromium, words  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
MILEPOST = ROOT / ".venv" / "bin" / "milepost"
TEMPLATE = "{{ lookup('pipe','id') }}"
HUGE = "9" * 200_000
GOOD_ADVISORY = "RUC-2026-0101"  # build_ledger's: acct-01 is exposed to it


def append_raw(ledger, kind: str, body_text: str, host=None, run_id=None) -> int:
    """A record whose body is any text (not an object, say), chained as the ledger chains."""
    from sqlalchemy import insert, select

    with ledger.write_transaction() as conn:
        head = conn.execute(select(T.c.seq, T.c.hash).order_by(T.c.seq.desc()).limit(1)).first()
        seq, now = head.seq + 1, utc_now()
        digest = chain_hash(head.hash, canonical_record(seq, kind, run_id, host, now, body_text))
        conn.execute(
            insert(T),
            [{"seq": seq, "kind": kind, "run_id": run_id, "host": host, "recorded_at": now,
              "body": body_text, "prev_hash": head.hash, "hash": digest}],
        )  # fmt: skip
    return seq


def append(ledger, kind: str, body, host=None, run_id=None) -> int:
    if not isinstance(body, dict):
        return append_raw(ledger, kind, body, host, run_id)
    [seq] = ledger.append([{"kind": kind, "run_id": run_id, "host": host, "body": body}])
    return seq


NOT_AN_OBJECT = '["not", "an", "object"]'

#: kind -> (host, run_id, malformed bodies).
MALFORMED = {
    "advisory": (
        None,
        None,
        [
            {
                "advisory_id": "RUC-2026-0999",
                "severity": "critical",
                "packages": {"ruc-account-api": "x y"},
            },
            {
                "advisory_id": "RUC-2026-0999",
                "severity": "critical",
                "packages": {"ruc-account-api": TEMPLATE},
            },
            {
                "advisory_id": "RUC-2026-0999",
                "severity": "high",
                "published": "2026-02-30",
                "packages": {"ruc-account-api": "9.0"},
            },
            {"advisory_id": 7, "severity": "high", "packages": {"ruc-account-api": "9.0"}},
            {"severity": "high", "packages": {"ruc-account-api": "9.0"}},
            {"advisory_id": "RUC-2026-0999", "severity": "high", "packages": ["ruc-account-api"]},
            {
                "advisory_id": "RUC-2026-0999",
                "severity": "high",
                "title": HUGE,
                "packages": {"ruc-account-api": "9.0"},
            },
            {
                "advisory_id": "DEB-ruc-account-api-9.0",
                "source": "debian",
                "severity": "high",
                "packages": {"ruc-account-api": "9.0"},
                "cves": ["CVE-26-1"],
            },
            {
                "advisory_id": "DEB-ruc-account-api-9.0",
                "source": "debian",
                "severity": "high",
                "packages": {"ruc-account-api": "9.0"},
                "cves": "CVE-2026-1234",
                "source_package": TEMPLATE,
            },
            NOT_AN_OBJECT,
        ],
    ),
    "package_facts": (
        "acct-01",
        "rx",
        [
            {"packages": {"ruc-account-api": "not a version"}},
            {"packages": {"ruc-account-api": HUGE}},
            {"packages": {TEMPLATE: "1.0"}},
            {"packages": "ruc-account-api=1.0"},
            {},
            NOT_AN_OBJECT,
        ],
    ),
    "package_change": (
        "acct-01",
        "rx",
        [
            {"package": "ruc-account-api", "from_version": "1.4.0", "to_version": "1.5 beta"},
            {"package": ["ruc-account-api"], "to_version": "1.5.0"},
            {"to_version": "1.5.0"},
            {"package": "ruc-account-api", "to_version": TEMPLATE},
            NOT_AN_OBJECT,
        ],
    ),
    "patch_exception": (
        None,
        None,
        [
            {
                "exception_id": "E-1",
                "advisory_id": GOOD_ADVISORY,
                "hosts": ["acct-01"],
                "expires": "next week",
                "reason": "r",
                "compensating_control": "c",
            },
            {
                "exception_id": "E-1",
                "advisory_id": GOOD_ADVISORY,
                "hosts": "acct-01",
                "expires": "2999-01-01",
                "reason": "r",
                "compensating_control": "c",
            },
            {
                "exception_id": "E-1",
                "advisory_id": TEMPLATE,
                "hosts": ["acct-01"],
                "expires": "2999-01-01",
            },
            NOT_AN_OBJECT,
        ],
    ),
    "note": (
        None,
        None,
        [
            {"note_id": "L-0000bad1", "type": "lesson", "title": {"x": 1}},
            {"type": "lesson", "title": "no id"},
            {"note_id": "L-0000bad1", "type": "lesson", "text": HUGE + HUGE},
            # A QC catalogue change whose checks-added-for-glitches map is not one.
            {"note_id": "QC-0000bad1", "type": "qc-process", "details": {"answers": ["test_x"]}},
            {
                "note_id": "QC-0000bad1",
                "type": "qc-process",
                "details": {"answers": {"test_x": "G-1"}},
            },
            {
                "note_id": "QC-0000bad1",
                "type": "qc-process",
                "details": {"answers": {"test_x": [7]}},
            },
            NOT_AN_OBJECT,
        ],
    ),
    "glitch": (
        None,
        None,
        [
            {"glitch_id": "G-bad00001", "title": "t", "hosts": "acct-01"},
            {"glitch_id": "G-bad00001", "title": "t", "detected_at": "yesterday"},
            NOT_AN_OBJECT,
        ],
    ),
    "note_updated": (
        None,
        None,
        [
            {"note_id": "G-x", "fields": ["owner"]},
            {"note_id": "G-x", "status": "closed", "fields": {"cause": ["x"]}},
            {"note_id": "G-x", "fields": {"lesson": "L-" + "x" * 100}},
            NOT_AN_OBJECT,
        ],
    ),
    "lesson_action": (
        None,
        None,
        [
            {
                "action_id": "A-0000bad1",
                "lesson_id": "L-0000bad1",
                "kind": "meeting",
                "title": "t",
                "owner": "o",
                "due": "2030-01-01",
            },
            {
                "action_id": "A-0000bad1",
                "lesson_id": "L-0000bad1",
                "kind": "runbook",
                "title": "t",
                "due": "2030-01-01",
            },
            {
                "action_id": "A-0000bad1",
                "lesson_id": "L-0000bad1",
                "kind": "runbook",
                "title": "t",
                "owner": "o",
                "due": "next friday",
            },
            {
                "lesson_id": "L-0000bad1",
                "kind": "runbook",
                "title": "t",
                "owner": "o",
                "due": "2030-01-01",
            },
            {
                "action_id": "A-0000bad1",
                "lesson_id": "L-0000bad1",
                "kind": "runbook",
                "title": TEMPLATE * 100,
                "owner": ["o"],
                "due": "2030-01-01",
            },
            NOT_AN_OBJECT,
        ],
    ),
    "lesson_action_updated": (
        None,
        None,
        [
            {"action_id": "A-0000bad1", "status": "finished"},
            {"action_id": "A-0000bad1", "fields": {"due": "2030-02-30"}},
            {"status": "done"},
            NOT_AN_OBJECT,
        ],
    ),
    "drift_check": (
        "pay-01",
        "rd",
        [
            {"mode": "check", "drifted": "file:/etc/ruc/x.conf"},
            {"mode": 3},
            NOT_AN_OBJECT,
        ],
    ),
    "change_opened": (
        None,
        None,
        [
            {"change_id": "C-0000bad1", "hosts": ["pay-01"], "resources": ["*"], "until": "soon"},
            {"change_id": "C-0000bad1", "hosts": "pay-01", "resources": ["*"]},
            NOT_AN_OBJECT,
        ],
    ),
    "vendor_question": (
        None,
        None,
        [
            {"question_id": "Q-bad", "vendor": "harbor_payments", "due_at": "tomorrow"},
            {"question_id": "Q-bad", "vendor": "harbor_payments", "response_hours": "72"},
            {"question_id": "Q-bad", "vendor": "harbor_payments", "direction": "sideways"},
            {
                "question_id": "Q-bad",
                "vendor": "harbor_payments",
                "direction": "to_agency",
                "category": ["billing"],
            },
            NOT_AN_OBJECT,
        ],
    ),
    "interface_check": (
        None,
        None,
        [
            {"name": "payments-api", "status": ["ok"]},
            {"status": "ok"},
            {"name": "payments-api", "status": "ok", "messages": [{"x": 1}]},
            NOT_AN_OBJECT,
        ],
    ),
    "qc_result": (
        "pay-01",
        "r1",
        [
            {"status": None, "check": "x"},
            {"status": "failed", "message": ["x"]},
            {"status": "failed", "check": "x", "answers": "G-1"},
            {"status": "failed", "check": "x", "answers": [{"glitch": "G-1"}]},
            NOT_AN_OBJECT,
        ],
    ),
    "run_started": (
        None,
        "rbad",
        [
            {"kind": "scheduled", "started_at": "at dawn"},
            {"kind": ["scheduled"]},
            NOT_AN_OBJECT,
        ],
    ),
    "run_ended": (
        None,
        "rbad",
        [
            {"status": 1},
            {"status": "successful", "reason": ["x"]},
        ],
    ),
    "task_result": (
        "pay-01",
        "r1",
        [
            {"status": "exploded", "task": "t"},
            NOT_AN_OBJECT,
        ],
    ),
    "notice": (
        None,
        None,
        [
            {"notice": "upcoming", "about": ["w1"]},
            {"about": {}},
            {"notice": "question_reminder", "about": {"questions": "Q-1"}},
            {"notice": "daily_review", "about": {"day": "yesterday"}},
            NOT_AN_OBJECT,
        ],
    ),
    "change_plan": (
        None,
        None,
        [
            {
                "plan_id": "P-0",
                "content_hash": "sha256:0",
                "content": {"action": "reboot"},
                "created_by": "x",
                "created_at": "2026-12-07T00:00:00+00:00",
                "expires": "2026-12-08T00:00:00+00:00",
                "dry_run": "r1",
            },
            {
                "plan_id": "P-0",
                "content_hash": "sha256:0",
                "content": {"action": "maintain", "hosts": {"pay-01": "all"}, "batches": []},
                "created_by": "x",
                "created_at": "2026-12-07T00:00:00+00:00",
                "expires": "2026-12-08T00:00:00+00:00",
                "dry_run": "r1",
            },
            {
                "plan_id": "P-0",
                "content_hash": "sha256:0",
                "content": {"action": "maintain", "hosts": {}, "batches": []},
                "created_by": "x",
                "created_at": "yesterday",
                "expires": "2026-12-08T00:00:00+00:00",
                "dry_run": "r1",
            },
            {
                "plan_id": "P-0",
                "content_hash": "sha256:0",
                "content": {"action": "maintain", "hosts": {}, "batches": []},
                "created_by": "x",
                "created_at": "2026-12-07T00:00:00+00:00",
                "expires": "2026-12-08T00:00:00+00:00",
                "dry_run": "r1",
            },
            NOT_AN_OBJECT,
        ],
    ),
    "plan_approval": (
        None,
        None,
        [
            {
                "plan_id": "P-0",
                "content_hash": "sha256:0",
                "role": "owner",
                "principal": "b",
                "fingerprint": "SHA256:x",
                "signature": "s",
            },
            {
                "plan_id": "P-0",
                "content_hash": "sha256:0",
                "role": "approver",
                "principal": 7,
                "fingerprint": "SHA256:x",
                "signature": "s",
            },
            {
                "plan_id": "P-0",
                "role": "approver",
                "principal": "b",
                "fingerprint": "SHA256:x",
                "signature": "s",
            },
            NOT_AN_OBJECT,
        ],
    ),
}
#: Kinds the dashboard does not read (notices, task results outside ledger.runs' counts,
#: change plans and their signatures).
NOT_ON_THE_DASHBOARD = ("task_result", "notice", "change_plan", "plan_approval")
CASES = [
    pytest.param(kind, host, run_id, body, id=f"{kind}-{i}")
    for kind, (host, run_id, bodies) in MALFORMED.items()
    for i, body in enumerate(bodies)
]
NOW = datetime.now(UTC)


def read_everything(ledger, inventory_dir) -> dict:
    """Every reader of record bodies, on the ledger; what each found."""
    sources = [inventory_dir]
    settings = patch_policy.load(sources)
    advisories = load_advisories(ledger)
    found = {
        "advisories": advisories,
        "exposure": exposures(ledger, settings),
        "installed": installed_packages(ledger),
        "exceptions": load_exceptions(ledger),
        "drift": findings(ledger),
        "changes": changes(ledger),
        "notes": notes(ledger),
        "actions": actions(ledger),
        "questions": questions(ledger),
        "told": _already_told(ledger, "staff", False),
        "reminded": _already_reminded(ledger, "staff"),
        "run": usable_run(ledger.run("r1")),
        "status": build_status(ledger, sources, 2, NOW),
        "plans": load_plans(ledger),
        "qc_catch": catch_rate(ledger, 2, NOW),
        "signatures": load_signatures(ledger),
    }
    setup = _read_inventory(sources)
    period = parse_period(NOW.strftime("%Y-%m"))
    found["scorecards"] = scorecards(
        ledger, setup.vendors, setup.host_vendor, settings, period, today=NOW.date()
    )
    if GOOD_ADVISORY in advisories:
        # What the emergency patch would hand to Ansible: checked again.
        found["emergency"] = ansible_packages(advisories[GOOD_ADVISORY].packages)
    return found


def assert_good_records_used(found: dict) -> None:
    assert found["advisories"][GOOD_ADVISORY].packages == {"ruc-account-api": "1.5.0"}
    exposed = {(e.host, e.advisory_id) for e in found["exposure"] if e.status == "exposed"}
    assert ("acct-01", GOOD_ADVISORY) in exposed
    assert found["installed"]["pay-01"]["ruc-payment-gateway"] == "2.4.0"
    assert found["emergency"] == {"ruc-account-api": "1.5.0"}
    assert any(n.type == "glitch" and n.is_open for n in found["notes"])
    status = found["status"]
    assert {s.key: s.status for s in status.systems}["account_management"] == "overdue"
    assert status.exposure.hosts_overdue == 1
    assert found["scorecards"]
    assert [a.owner for a in found["status"].overdue_actions] == ["Lee"]
    assert [a.owner for a in found["actions"]] == ["Lee"]


def build_good(ledger) -> None:
    """The dashboard's scenario and a lesson of its open glitch with an overdue action."""
    glitch_id = build_ledger(ledger, NOW)
    lesson = add_note(ledger, "lesson", title="Stage the ingest update", category="technology",
                      links={"glitches": [glitch_id]})  # fmt: skip
    add_action(ledger, lesson.note_id, kind="qc-check", title="Check ingest after updates",
               owner="Lee", due="2020-01-01")  # fmt: skip


@pytest.mark.parametrize(("kind", "host", "run_id", "body"), CASES)
def test_a_malformed_record_is_skipped_with_one_warning(
    ledger, dashboard_inventory, kind, host, run_id, body, capsys
):
    build_good(ledger)
    if kind == "run_ended":  # a run whose start is good
        ledger.append([run_started(playbook="maintain.yml", kind="scheduled", run_id=run_id)])
        ledger.append([task_result(run_id, "pay-01", "PATCH | x", "ok")])
    seq = append(ledger, kind, body, host, run_id)
    with collecting() as skipped:
        found = read_everything(ledger, dashboard_inventory)
    named = f"ledger record {seq} ({kind}) skipped: "
    assert [m for m in skipped.messages if m.startswith(named)] == skipped.messages
    assert len(skipped.messages) == 1, skipped.messages
    assert len(skipped.messages[0]) < 1000  # a huge value is shown cut short
    # The dashboard lists it; stderr has it once.
    if kind not in NOT_ON_THE_DASHBOARD:
        [listed] = found["status"].skipped_records
        assert listed.startswith(named)
    assert capsys.readouterr().err.count(named) <= 1
    assert_good_records_used(found)


def test_good_records_alone_raise_no_warning(ledger, dashboard_inventory):
    build_good(ledger)
    with collecting() as skipped:
        assert_good_records_used(read_everything(ledger, dashboard_inventory))
    assert skipped.messages == []


def test_the_newest_usable_facts_of_a_host_count(ledger, dashboard_inventory):
    build_ledger(ledger, NOW)
    seq = append(ledger, "package_facts", {"packages": {"ruc-account-api": "1 .0"}}, "acct-01")
    with collecting() as skipped:
        assert installed_packages(ledger)["acct-01"] == {"ruc-account-api": "1.4.0"}
    assert skipped.messages[0].startswith(f"ledger record {seq} (package_facts) skipped:")


def test_an_advisory_version_is_named_in_the_warning(ledger):
    seq = append(
        ledger,
        "advisory",
        {"advisory_id": "RUC-2026-0998", "severity": "high",
         "packages": {"ruc-payment-gateway": "x y"}},
    )  # fmt: skip
    with collecting() as skipped:
        assert load_advisories(ledger) == {}
    [message] = skipped.messages
    assert message.startswith(f"ledger record {seq} (advisory) skipped: fixed version of")
    assert "ruc-payment-gateway 'x y' is not a Debian version" in message


@pytest.mark.parametrize(
    "packages",
    [{"ruc-account-api": TEMPLATE}, {TEMPLATE: "1.0"}, {"ruc-account-api": None},
     {"ruc-account-api": "1.0{{x}}"}],
)  # fmt: skip
def test_nothing_from_the_ledger_reaches_ansible_unchecked(packages):
    with pytest.raises(UserError):
        ansible_packages(packages)


def test_the_dashboard_shows_the_warning_in_a_real_browser(ledger, dashboard_inventory, tmp_path):
    from milepost.reports import write_dashboard

    build_ledger(ledger, NOW)
    seq = append(
        ledger,
        "advisory",
        {"advisory_id": "RUC-2026-0999", "severity": "critical",
         "packages": {"ruc-account-api": "x y"}, "title": TEMPLATE},
    )  # fmt: skip
    index = write_dashboard(tmp_path / "site", [dashboard_inventory], 2, ledger=ledger, now=NOW)
    dom = chromium(tmp_path, "--dump-dom", index.as_uri()).stdout
    page = words(dom)
    assert 'data-skipped="1"' in dom
    assert "1 record left out" in page
    assert f"ledger record {seq} (advisory) skipped: fixed version of ruc-account-api" in page
    assert "Security update overdue" in page  # the good advisory still counts


def test_commands_warn_and_exit_0_without_a_traceback(ledger, dashboard_inventory, tmp_path):
    build_ledger(ledger, NOW)
    seq = append(
        ledger,
        "advisory",
        {"advisory_id": "RUC-2026-0999", "severity": "critical",
         "packages": {"ruc-account-api": "x y"}},
    )  # fmt: skip
    env = {**os.environ, "NO_COLOR": "1"}
    commands = [
        ["exposure", "-i", str(dashboard_inventory)],
        ["advisory", "list"],
        ["report", "dashboard", "--out", str(tmp_path / "out"), "-i", str(dashboard_inventory)],
    ]
    for args in commands:
        done = subprocess.run(
            [str(MILEPOST), *args], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stdout + done.stderr
        warning = f"ledger record {seq} (advisory) skipped: fixed version of ruc-account-api"
        assert done.stderr.count(warning) == 1, (args, done.stderr)
    assert "acct-01" in subprocess.run(
        [str(MILEPOST), "exposure", "-i", str(dashboard_inventory)],
        capture_output=True, text=True, env=env, timeout=300,
    ).stdout  # fmt: skip


def test_emergency_candidates_skip_a_malformed_advisory_update(ledger, dashboard_inventory):
    """A malformed newer record of an advisory leaves the last good one in force."""
    build_ledger(ledger, NOW)
    good_before = load_advisories(ledger)[GOOD_ADVISORY]
    append(
        ledger,
        "advisory",
        {"advisory_id": GOOD_ADVISORY, "severity": "critical",
         "packages": {"ruc-account-api": TEMPLATE}},
    )  # fmt: skip
    with collecting() as skipped:
        after = load_advisories(ledger)[GOOD_ADVISORY]
        settings = patch_policy.load([dashboard_inventory])
        items = exposures(ledger, settings, advisories={GOOD_ADVISORY: after})
    assert after == good_before
    assert ansible_packages(after.packages) == {"ruc-account-api": "1.5.0"}
    assert {e.host for e in items if e.status == "exposed"} == {"acct-01"}
    assert len(skipped.messages) == 1


def test_no_read_command_prints_a_traceback_on_any_malformed_record(
    ledger, dashboard_inventory, tmp_path
):
    """Every malformed body of every kind at once (and run_ended counts that are not
    counts), then every command that reads the ledger: each exits as it would on a clean
    ledger (0), with no traceback."""
    build_ledger(ledger, NOW)
    ledger.append([run_started(playbook="maintain.yml", kind="scheduled", run_id="rx")])
    ledger.append([task_result("rx", "pay-01", "PATCH | x", "ok")])
    for kind, host, run_id, body in (case.values for case in CASES):
        append(ledger, kind, body, host, run_id)
    append(ledger, "run_started", {"playbook": "x.yml", "kind": "manual"}, run_id="ry")
    append(
        ledger, "run_ended", {"status": "failed", "hosts": {"pay-01": {"ok": "many"}}}, run_id="ry"
    )
    append(ledger, "run_ended", {"status": "failed", "hosts": ["pay-01"]}, run_id="rx")
    inventory = str(dashboard_inventory)
    commands = [
        ["ledger", "runs"],
        ["ledger", "runs", "--json"],
        ["ledger", "show", "rx"],
        ["ledger", "show", "ry", "--json"],
        ["ledger", "host", "pay-01"],
        ["exposure", "-i", inventory],
        ["exposure", "-i", inventory, "--json"],
        ["advisory", "list"],
        ["exception", "list"],
        ["drift", "report", "--all"],
        ["change", "list"],
        ["plan", "list"],
        ["note", "list"],
        ["note", "export", "--format", "csv", "--out", str(tmp_path / "notes.csv")],
        ["vendor", "question", "list"],
        ["vendor", "scorecard", "-i", inventory],
        ["qc", "report"],
        ["qc", "report", "--json"],
        ["report", "dashboard", "--out", str(tmp_path / "out"), "-i", inventory],
        [
            "notify",
            "completed",
            "--run-id",
            "rx",
            "--dry-run",
            "-i",
            str(ROOT / "inventory/example"),
        ],
    ]
    env = {**os.environ, "NO_COLOR": "1"}
    for args in commands:
        done = subprocess.run(
            [str(MILEPOST), *args], capture_output=True, text=True, env=env, timeout=300
        )
        assert "Traceback" not in done.stdout + done.stderr, (args, done.stderr[-3000:])
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
