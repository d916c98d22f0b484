"""milepost.change_control.plans: a plan is read from a dry run's records; the same state
gives the same hash, any change in what would move gives another; a probe that is not what
the probe module writes makes no plan; a tampered plan record is not used."""

import copy
import json

import pytest

from milepost.change_control.plans import (
    build_content,
    build_remediate_content,
    content_hash,
    from_record,
    new_plan,
    plan_id,
    plan_record,
    plan_resources,
    summary_rows,
)
from milepost.errors import UserError
from milepost.ledger import bodies

OPTIONS = {"limit": None, "allow_downgrade": [], "extra_vars": {}}


def probe(pins_pending=(), os_upgrades=(), installed="1.4.0"):
    return {
        "asked": {"pins": {"ruc-account-api": "1.5.0"}, "os_scope": "all"},
        "os_upgrades": list(os_upgrades),
        "pins_pending": list(pins_pending),
        "ruc_packages": {"ruc-account-api": {"installed": installed, "candidate": "1.5.0"}},
        "reboot_required": False,
    }


def dry_run(**probes):
    records = [{"kind": "host_probe", "host": h, "body": b} for h, b in probes.items()]
    records += [
        {"kind": "batch_started", "host": None, "body": {"number": 1, "hosts": ["acct-01"]}},
        {"kind": "batch_started", "host": None, "body": {"number": 2, "hosts": ["pay-01"]}},
    ]
    # The probe at the end of the run (the "after") is not the plan's basis.
    records += [{"kind": "host_probe", "host": h, "body": probe()} for h in probes]
    results = [
        {"host": "acct-01", "status": "changed", "task": "app_update : PATCH | Install"},
        {"host": "pay-01", "status": "failed", "task": "app_update : PATCH | Install",
         "msg": "refused: ruc-payment-gateway 2.3.0 is vulnerable to RUC-2026-0001"},
    ]  # fmt: skip
    return {"records": records, "task_results": results}


UPGRADE = {"package": "libexpat1", "from_version": "2.5.0-1+deb12u2",
           "to_version": "2.5.0-1+deb12u5", "security": True}  # fmt: skip


def test_a_plan_says_what_moves_where_in_which_batch_and_what_was_refused():
    content = build_content(
        "maintain",
        OPTIONS,
        dry_run(**{"acct-01": probe(["ruc-account-api"], [UPGRADE]), "pay-01": probe()}),
    )
    acct = content["hosts"]["acct-01"]
    assert acct["packages"] == [
        {"package": "libexpat1", "from": "2.5.0-1+deb12u2", "to": "2.5.0-1+deb12u5",
         "reason": "os-security"},
        {"package": "ruc-account-api", "from": "1.4.0", "to": "1.5.0", "reason": "pin"},
    ]  # fmt: skip
    assert acct["batch"] == 1 and acct["would_change"] == ["app_update : PATCH | Install"]
    assert content["hosts"]["pay-01"]["refused"] == [
        "app_update : PATCH | Install: refused: ruc-payment-gateway 2.3.0 is vulnerable to"
        " RUC-2026-0001"
    ]
    rows = summary_rows(new_plan(content, created_by="alice", dry_run="r1"))
    assert (
        "1",
        "acct-01",
        "libexpat1",
        "2.5.0-1+deb12u2 -> 2.5.0-1+deb12u5",
        "os-security",
    ) in rows
    assert rows[-1][:4] == ("2", "pay-01", "-", "REFUSED")


def test_the_same_state_gives_the_same_hash_and_any_move_another():
    same = [
        build_content("maintain", OPTIONS, dry_run(**{"acct-01": probe([], [UPGRADE])}))
        for _ in range(2)
    ]
    assert content_hash(same[0]) == content_hash(same[1])
    newer = dict(UPGRADE, to_version="2.5.0-1+deb12u6")
    other = build_content("maintain", OPTIONS, dry_run(**{"acct-01": probe([], [newer])}))
    assert content_hash(other) != content_hash(same[0])
    limited = build_content(
        "maintain", dict(OPTIONS, limit="acct-01"), dry_run(**{"acct-01": probe([], [UPGRADE])})
    )
    assert content_hash(limited) != content_hash(same[0])
    plan = new_plan(same[0], created_by="alice", dry_run="r1")
    assert plan.plan_id == plan_id(plan.content_hash) and plan.plan_id.startswith("P-")
    assert plan.signed_text().decode().startswith(f"milepost change plan {plan.plan_id} sha256:")


@pytest.mark.parametrize(
    "bad",
    [
        {"os_upgrades": "libexpat1"},
        {"os_upgrades": ["libexpat1"]},
        {"os_upgrades": [dict(UPGRADE, to_version="$(reboot)")]},
        {"os_upgrades": [dict(UPGRADE, package="../etc")]},
        {"pins_pending": ["ruc-unknown"]},
        {"pins_pending": "ruc-account-api"},
    ],
)
def test_a_probe_that_is_not_what_the_module_writes_makes_no_plan(bad):
    with pytest.raises(UserError) as raised:
        build_content("maintain", OPTIONS, dry_run(**{"acct-01": {**probe(), **bad}}))
    assert "acct-01" in str(raised.value) and "\n" not in str(raised.value)


def test_a_dry_run_that_probed_nothing_and_an_unknown_action_make_no_plan():
    with pytest.raises(UserError, match="probed no host"):
        build_content("maintain", OPTIONS, {"records": [], "task_results": []})
    with pytest.raises(UserError, match="unknown plan kind"):
        build_content("reboot-everything", OPTIONS, dry_run(**{"acct-01": probe()}))


def test_a_plan_record_reads_back_and_a_tampered_one_is_skipped_with_a_warning():
    content = build_content("maintain", OPTIONS, dry_run(**{"acct-01": probe([], [UPGRADE])}))
    plan = new_plan(content, created_by="alice", dry_run="r1")
    body = json.loads(json.dumps(plan_record(plan)["body"]))
    assert from_record(7, body) == plan.__class__(**{**plan.body(), "seq": 7})
    tampered = copy.deepcopy(body)
    tampered["content"]["hosts"]["acct-01"]["packages"][0]["to"] = "2.5.0-1+deb12u1"
    with bodies.collecting() as skipped:
        assert from_record(8, tampered) is None
        assert from_record(9, {**body, "content": "everything"}) is None
    assert [m.split(" (")[0] for m in skipped.messages] == [
        "ledger record 8",
        "ledger record 9",
    ]
    assert "does not match its hash" in skipped.messages[0]


MOTD = "file:/etc/motd"
SYSCTL = "sysctl:net.ipv4.ip_forward"
REMEDIATE = {"limit": None, "allow_downgrade": [], "selection": None}


def drift_dry_run(**drifted):
    """A remediation dry run: per host a check of the selection, then the full check."""

    def check(entries):
        return {"mode": "check", "resources": 20, "drifted": entries}

    records = [{"kind": "drift_check", "host": h, "body": check(e[:1])} for h, e in drifted.items()]
    records += [{"kind": "drift_check", "host": h, "body": check(e)} for h, e in drifted.items()]
    return {"records": records, "task_results": []}


def differs(resource, actual="x"):
    return {"resource": resource, "expected": "baseline", "actual": actual, "diff": ""}


def test_a_remediation_plan_names_the_resources_to_correct_with_how_they_differ():
    run = drift_dry_run(**{"acct-01": [differs(MOTD), differs(SYSCTL)], "pay-01": []})
    full = build_remediate_content(REMEDIATE, run, None)
    assert full["action"] == "remediate"
    assert [r["resource"] for r in full["hosts"]["acct-01"]["resources"]] == [MOTD, SYSCTL]
    assert full["hosts"]["pay-01"]["resources"] == []
    chosen = build_remediate_content(REMEDIATE, run, {"acct-01": [SYSCTL], "report-01": [MOTD]})
    assert [r["resource"] for r in chosen["hosts"]["acct-01"]["resources"]] == [SYSCTL]
    assert chosen["hosts"]["report-01"]["unknown"] == ["its drift (the dry run did not check it)"]
    plan = new_plan(full, created_by="alice", dry_run="r1")
    assert plan_resources(plan) == {"acct-01": [MOTD, SYSCTL]}
    assert ("-", "acct-01", MOTD, "back to its baseline", "drift") in summary_rows(plan)
    # How a resource differs is in the hash: the same drift gives the same plan, other
    # drift another.
    assert content_hash(build_remediate_content(REMEDIATE, run, None)) == content_hash(full)
    other = drift_dry_run(**{"acct-01": [differs(MOTD, "y"), differs(SYSCTL)], "pay-01": []})
    assert content_hash(build_remediate_content(REMEDIATE, other, None)) != content_hash(full)
    assert bodies.check_body("change_plan", plan_record(plan)["body"]) is None


def test_a_remediation_dry_run_that_checked_nothing_makes_no_plan():
    with pytest.raises(UserError, match="checked no host"):
        build_remediate_content(REMEDIATE, {"records": [], "task_results": []}, None)
    bad = {"records": [{"kind": "drift_check", "host": "acct-01",
                        "body": {"mode": "check", "drifted": "all"}}]}  # fmt: skip
    with pytest.raises(UserError, match="malformed"):
        build_remediate_content(REMEDIATE, bad, None)
