# ruff: noqa: F811
"""Emergencies under change control, with real SSH keys on a real ledger: where a host's
group asks for approvals, the emergency's change plan is recorded as it starts, signed by
the on-call engineer; each host checks for it before it is touched; an approval still
missing after the group's emergency_within_hours is overdue (the clock is injected), on
the dashboard in Chromium too, and a late approval is recorded as late."""

from datetime import UTC, datetime, timedelta

import pytest
from browser import chromium, words
from test_approvals import inventory, people  # noqa: F401  (fixtures)

from milepost.change_control import approvals as rules
from milepost.change_control.emergencies import emergency_approvals, emergency_records
from milepost.change_control.gate import check_host
from milepost.cli.main import main
from milepost.errors import Refused, UserError
from milepost.patching.emergency import Plan as Exposed
from milepost.patching.emergency import Request
from milepost.reports import write_dashboard

NEEDS_ONE = {"approvals": 1, "emergency_within_hours": 12}
FIXED = {"openssl": "3.0.15-1~deb12u1"}


def exposed(*hosts):
    return Exposed(
        packages=FIXED, install=FIXED, exposed=list(hosts), unknown=[], excepted=[], fixed=[],
        installed={h: {"openssl": "3.0.11-1~deb12u2"} for h in hosts},
    )  # fmt: skip


def request(inventory, key=None):
    return Request("DSA-5678-1", None, 1, "why", inventory / "hosts.yml", True, False, key)


def record_emergency(ledger, inventory, key, ran_at, run_id="em-1"):
    made = emergency_records(request(inventory, key), exposed("pay-01"), run_id, now=ran_at)
    ledger.append(made)
    return made[0]["body"]["plan_id"]


def states(ledger, inventory, now):
    allowed = inventory / "allowed_signers"
    found = emergency_approvals(
        rules.load_plans(ledger), rules.load_signatures(ledger), allowed, now
    )
    return [(e.plan_id, e.state(now), e.approved_by) for e in found]


def test_only_hosts_that_ask_for_approvals_get_an_emergency_plan_signed_by_its_author(
    ledger, inventory, people
):
    assert emergency_records(request(inventory), exposed("acct-01"), "em-0") == []
    with pytest.raises(UserError, match="ask for 1 approval.*within 12 hours.*--key"):
        emergency_records(request(inventory), exposed("acct-01", "pay-01"), "em-1")
    with pytest.raises(UserError, match="allowed"):
        emergency_records(request(inventory, people["mallory"]), exposed("pay-01"), "em-1")
    plan_record, author = emergency_records(
        request(inventory, people["alice"]), exposed("acct-01", "pay-01"), "em-1"
    )
    body = plan_record["body"]
    assert body["content"]["action"] == "emergency"
    assert body["content"]["options"]["advisory"] == "DSA-5678-1"
    assert body["dry_run"] == "em-1" and body["approvals_needed"] == 1
    moves = body["content"]["hosts"]["pay-01"]["packages"]
    assert moves == [{"package": "openssl", "from": "3.0.11-1~deb12u2",
                      "to": "3.0.15-1~deb12u1", "reason": "advisory"}]  # fmt: skip
    assert (author["body"]["role"], author["body"]["principal"]) == (
        "author",
        "alice@agency.example",
    )


def test_each_host_lets_an_emergency_in_only_with_its_recorded_plan(ledger, inventory, people):
    now = datetime.now(UTC)
    with pytest.raises(Refused, match="only through `milepost emergency-patch --key`"):
        check_host("pay-01", NEEDS_ONE, None, None, now, emergency=True, run_id="em-1")
    record_emergency(ledger, inventory, people["alice"], now)
    said = check_host("pay-01", NEEDS_ONE, None, None, now, emergency=True, run_id="em-1")
    assert "emergency run under change plan P-" in said and "to be approved by" in said
    with pytest.raises(Refused, match="emergency-patch"):
        check_host("pay-01", NEEDS_ONE, None, None, now, emergency=True, run_id="em-2")
    with pytest.raises(Refused, match="emergency-patch"):
        check_host("pay-02", NEEDS_ONE, None, None, now, emergency=True, run_id="em-1")
    # A group that asks for none is not held up.
    assert "no approval needed" in check_host("acct-01", None, None, None, now, emergency=True)


def test_an_approval_missing_after_the_deadline_is_overdue_and_a_late_one_says_so(
    ledger, inventory, people, capsys
):
    now = datetime.now(UTC)
    ran = now - timedelta(hours=13)
    plan_id = record_emergency(ledger, inventory, people["alice"], ran)
    assert states(ledger, inventory, ran + timedelta(hours=11)) == [(plan_id, "awaiting", [])]
    assert states(ledger, inventory, ran + timedelta(hours=12, seconds=1)) == [
        (plan_id, "overdue", [])
    ]

    # Overdue on the dashboard, in a real browser.
    index = write_dashboard(inventory.parent / "site", [inventory / "hosts.yml"], months=1)
    dom = words(chromium(inventory.parent, "--dump-dom", index.as_uri()).stdout)
    assert "Emergency changes and their approval" in dom
    assert "DSA-5678-1" in dom and "Approval overdue" in dom

    # The author cannot approve it; bob can, late, and it says so.
    hosts = str(inventory / "hosts.yml")
    assert main(["approve", plan_id, "--key", str(people["alice"]), "-i", hosts]) == 2
    assert "four eyes" in capsys.readouterr().err
    assert main(["approve", plan_id, "--key", str(people["bob"]), "-i", hosts]) == 0
    assert "late: due by" in capsys.readouterr().out
    assert states(ledger, inventory, datetime.now(UTC)) == [
        (plan_id, "approved late", ["bob@agency.example"])
    ]
    # Seen as of before the approval, it was still overdue.
    assert states(ledger, inventory, now - timedelta(minutes=1))[0][1] == "overdue"
    # An emergency maintenance plan is not applied again.
    assert main(["apply", plan_id, "-i", hosts]) == 2
    assert "has run: approve it" in capsys.readouterr().err


def test_an_approval_in_time_is_approved(ledger, inventory, people, capsys):
    ran = datetime.now(UTC) - timedelta(hours=1)
    plan_id = record_emergency(ledger, inventory, people["alice"], ran)
    hosts = str(inventory / "hosts.yml")
    assert main(["approve", plan_id, "--key", str(people["carol"]), "-i", hosts]) == 0
    assert "late" not in capsys.readouterr().out
    assert states(ledger, inventory, datetime.now(UTC)) == [
        (plan_id, "approved", ["carol@agency.example"])
    ]
