"""milepost.change_control.apply_checks: a plan is refused (exit 3) when expired, short of
approvals, given other options, or stale; each refusal one line naming what to do."""

from datetime import UTC, datetime, timedelta

import pytest
from test_plans import UPGRADE, dry_run, probe

from milepost.change_control.apply_checks import (
    check_approved,
    check_fresh,
    check_not_expired,
    check_same_options,
    plan_versions,
)
from milepost.change_control.approvals import Approval
from milepost.change_control.plans import build_content, new_plan, run_options
from milepost.errors import Refused

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def plan_of(limit=None, variables=None, upgrade=UPGRADE):
    content = build_content(
        "maintain",
        run_options(limit, variables or {}),
        dry_run(**{"acct-01": probe(["ruc-account-api"], [upgrade]), "pay-01": probe()}),
    )
    return new_plan(content, created_by="alice", dry_run="r1", now=NOW)


def signed(role, principal, fingerprint="SHA256:" + "a" * 43):
    return Approval("P-x", "sha256:x", role, principal, fingerprint, "sig", "t", 1)


def test_refusals_are_exit_3_and_one_line():
    plan = plan_of()
    check_not_expired(plan, NOW + timedelta(hours=23))
    with pytest.raises(Refused, match="expired") as raised:
        check_not_expired(plan, NOW + timedelta(hours=24))
    assert raised.value.exit_code == 3 and "\n" not in str(raised.value)


def test_approvals_as_the_hosts_rules_ask():
    plan = plan_of()
    with pytest.raises(Refused, match="not signed by its author"):
        check_approved(plan, 1, [])
    alice = signed("author", "alice@agency")
    with pytest.raises(Refused, match="0 of the 1 approval"):
        check_approved(plan, 1, [alice])
    # The author approving her own plan, or with her key, does not count.
    with pytest.raises(Refused, match="0 of the 1 approval"):
        check_approved(plan, 1, [alice, signed("approver", "alice@agency")])
    with pytest.raises(Refused, match="0 of the 1 approval"):
        check_approved(plan, 1, [alice, signed("approver", "eve@agency")])
    bob = signed("approver", "bob@agency", "SHA256:" + "b" * 43)
    assert check_approved(plan, 1, [alice, bob]) == ["bob@agency"]
    assert check_approved(plan, 0, []) == []


def test_the_same_options_or_none():
    plan = plan_of(limit="acct-01", variables={"ticket": "CHG-7"})
    check_same_options(plan, "acct-01", {"ticket": "CHG-7"})
    with pytest.raises(Refused, match="ticket differ"):
        check_same_options(plan, "acct-01", {"ticket": "CHG-8"})
    with pytest.raises(Refused, match="release differ"):
        check_same_options(plan, "acct-01", {"ticket": "CHG-7", "release": "x"})
    with pytest.raises(Refused, match="--limit"):
        check_same_options(plan, None, {"ticket": "CHG-7"})
    assert "CHG-7" not in str(plan.content)  # only its digest is kept


def test_a_plan_is_stale_when_a_new_dry_run_differs_and_names_where():
    plan = plan_of()
    check_fresh(plan, plan_of().content)
    newer = dict(UPGRADE, to_version="2.5.0-1+deb12u6")
    with pytest.raises(Refused, match="stale") as raised:
        check_fresh(plan, plan_of(upgrade=newer).content)
    assert "hosts.acct-01.packages differs" in str(raised.value)
    assert plan_versions(plan)["acct-01"] == {
        "os": {"libexpat1": "2.5.0-1+deb12u5"},
        "pins": {"ruc-account-api": "1.5.0"},
    }
