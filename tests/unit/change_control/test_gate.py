# ruff: noqa: F811
"""milepost.change_control.gate, the check each host makes before it is touched (the probe's
action plugin): no plan where approvals are needed is refused unless the run is an
emergency; a plan named by an extra var counts only as the ledger and the allowed-signers
file say."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_approvals import inventory, people, plan  # noqa: F401  (fixtures)
from test_plans import MOTD, REMEDIATE, SYSCTL, differs, drift_dry_run

from milepost.change_control import approvals as rules
from milepost.change_control.apply_checks import plan_versions
from milepost.change_control.gate import check_host, signers_path
from milepost.change_control.plans import build_remediate_content, new_plan, plan_record
from milepost.change_control.signing import sign
from milepost.errors import Refused, UserError

NEEDS_ONE = {"approvals": 1, "emergency_within_hours": 12}


def variable(made, **changes):
    return {"plan_id": made.plan_id, "content_hash": made.content_hash,
            "hosts": {**plan_versions(made), **changes}}  # fmt: skip


def test_no_plan_where_approval_is_needed_is_refused_unless_an_emergency(ledger):
    now = datetime.now(UTC)
    assert "no approval needed" in check_host("acct-01", None, None, None, now)
    with pytest.raises(Refused, match="needs an approved change plan"):
        check_host("pay-01", NEEDS_ONE, None, None, now)
    with pytest.raises(Refused, match=r"approval\(s\)\): correct it by hand$"):
        check_host("pay-01", NEEDS_ONE, None, None, now, how="correct it by hand")
    with pytest.raises(Refused, match="only through `milepost emergency-patch --key`"):
        check_host("pay-01", NEEDS_ONE, None, None, now, emergency=True, run_id="r1")
    with pytest.raises(UserError, match="approvals"):
        check_host("pay-01", {"approvals": "all"}, None, None, now)


def test_a_plan_counts_only_as_the_ledger_and_the_signers_say(ledger, inventory, people, plan):  # noqa: F811
    allowed = inventory / "allowed_signers"
    now = datetime.now(UTC)
    with pytest.raises(Refused, match="not signed by its author"):
        check_host("pay-01", NEEDS_ONE, variable(plan), allowed, now)
    rules.add_signature(ledger, plan, sign(plan.signed_text(), people["alice"]), allowed, "author")
    with pytest.raises(Refused, match="0 of the 1 approval"):
        check_host("pay-01", NEEDS_ONE, variable(plan), allowed, now)
    rules.add_signature(ledger, plan, sign(plan.signed_text(), people["bob"]), allowed, "approver")
    assert "approvals verified" in check_host("pay-01", NEEDS_ONE, variable(plan), allowed, now)
    # The operator the run records is the plan's verified author, never another name.
    signed = dict(variable(plan), author="alice@agency.example")
    assert "approvals verified" in check_host("pay-01", NEEDS_ONE, signed, allowed, now)
    with pytest.raises(Refused, match="not signed by 'bob@agency.example'"):
        check_host("pay-01", NEEDS_ONE, dict(signed, author="bob@agency.example"), allowed, now)
    # A maintenance plan does not let remediate.yml change the host.
    with pytest.raises(Refused, match="a plan to maintain, not to remediate"):
        check_host("pay-01", NEEDS_ONE, variable(plan), allowed, now, action="remediate")
    # Other versions than the plan's, a host not in it, an unknown plan, an expired one.
    forged = variable(plan, **{"acct-01": {"os": {"libexpat1": "9.9"}, "pins": {}}})
    with pytest.raises(Refused, match="not change plan"):
        check_host("pay-01", NEEDS_ONE, forged, allowed, now)
    with pytest.raises(Refused, match="not in change plan"):
        check_host("pay-02", NEEDS_ONE, variable(plan), allowed, now)
    with pytest.raises(UserError, match="no plan"):
        check_host("pay-01", NEEDS_ONE, dict(variable(plan), plan_id="P-000000000000"), allowed,
                   now)  # fmt: skip
    with pytest.raises(Refused, match="expired"):
        check_host("pay-01", NEEDS_ONE, variable(plan), allowed, now + timedelta(days=2))
    with pytest.raises(UserError, match="not a change plan"):
        check_host("pay-01", NEEDS_ONE, "P-1", allowed, now)
    with pytest.raises(UserError, match="no allowed-signers file"):
        check_host("pay-01", NEEDS_ONE, variable(plan), None, now)


def test_the_signers_file_is_found_beside_the_inventory(tmp_path):
    assert signers_path("allowed.txt", str(tmp_path)) == tmp_path / "allowed.txt"
    assert signers_path("/etc/milepost/allowed.txt", str(tmp_path)) == Path(
        "/etc/milepost/allowed.txt"
    )
    assert signers_path("", str(tmp_path)) is None


def test_a_remediation_plan_lets_in_exactly_its_resources(ledger, inventory, people):  # noqa: F811
    allowed = inventory / "allowed_signers"
    now = datetime.now(UTC)
    run = drift_dry_run(**{"pay-01": [differs(MOTD), differs(SYSCTL)]})
    made = new_plan(build_remediate_content(REMEDIATE, run, None), created_by="alice",
                    dry_run="r2")  # fmt: skip
    ledger.append([plan_record(made)])
    for person, role in (("alice", "author"), ("bob", "approver")):
        signature = sign(made.signed_text(), people[person])
        rules.add_signature(ledger, made, signature, allowed, role)
    said = check_host("pay-01", NEEDS_ONE, variable(made), allowed, now, action="remediate",
                      resources=[SYSCTL, MOTD])  # fmt: skip
    assert "approvals verified" in said
    # Fewer, more or no resources (a full converge) than the plan names: refused.
    for given in ([MOTD], [MOTD, SYSCTL, "file:/etc/issue"], [], None):
        with pytest.raises(Refused, match="other resources than change plan"):
            check_host("pay-01", NEEDS_ONE, variable(made), allowed, now, action="remediate",
                       resources=given)  # fmt: skip
    # A remediation plan does not let the maintenance cycle in.
    with pytest.raises(Refused, match="a plan to remediate, not to maintain"):
        check_host("pay-01", NEEDS_ONE, variable(made), allowed, now)
