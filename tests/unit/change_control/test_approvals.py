"""Approvals with real SSH keys on a real ledger: the author signs first, another person
approves (never the author's principal or key), only keys the inventory's allowed-signers
file lists count, and a signature is verified again whenever it is counted."""

import json

import pytest
from inventories import write_inventory
from test_plans import OPTIONS, UPGRADE, dry_run, probe
from test_signing import keypair, public

from milepost.change_control import approvals as rules
from milepost.change_control.plans import build_content, new_plan, plan_record
from milepost.change_control.signing import sign
from milepost.cli.main import main
from milepost.errors import UserError

CONTROL = """\
milepost_change_control:
  approvals: 0
  allowed_signers: allowed_signers
"""
PAYMENTS = """\
milepost_change_control:
  approvals: 1
  emergency_within_hours: 12
"""


@pytest.fixture
def people(tmp_path):
    found = {n: keypair(tmp_path, n) for n in ("alice", "bob", "carol", "mallory")}
    return found


@pytest.fixture
def inventory(tmp_path, people):
    root = write_inventory(tmp_path / "inventory", change_control=CONTROL)
    (root / "group_vars" / "payment_gateway").mkdir()
    (root / "group_vars" / "payment_gateway" / "change_control.yml").write_text(PAYMENTS)
    (root / "allowed_signers").write_text(
        "".join(f"{n}@agency.example {public(people[n])}\n" for n in ("alice", "bob", "carol"))
    )
    return root


@pytest.fixture
def plan(ledger):
    content = build_content(
        "maintain", OPTIONS, dry_run(**{"acct-01": probe([], [UPGRADE]), "pay-01": probe()})
    )
    made = new_plan(content, created_by="alice", dry_run="r1")
    ledger.append([plan_record(made)])
    return made


def test_the_inventory_says_who_needs_how_many_approvals(inventory):
    settings = rules.load_settings([inventory / "hosts.yml"])
    assert settings.signers() == inventory / "allowed_signers"
    assert settings.approvals_needed(["acct-01"]) == 0
    assert settings.approvals_needed(["acct-01", "pay-02"]) == 1
    assert settings.rules("pay-01").emergency_within_hours == 12


@pytest.mark.parametrize(
    "text",
    [
        "milepost_change_control: {approvals: -1}\n",
        "milepost_change_control: {approvals: two}\n",
        "milepost_change_control: {approvals: 1, approver: bob}\n",
        "milepost_change_control: [1]\n",
        "milepost_change_control: {emergency_within_hours: 100000}\n",
    ],
)
def test_bad_rules_are_one_line(tmp_path, text):
    root = write_inventory(tmp_path / "inventory", change_control=text)
    with pytest.raises(UserError) as raised:
        rules.load_settings([root / "hosts.yml"])
    assert "milepost_change_control" in str(raised.value) and "\n" not in str(raised.value)


def test_author_first_then_another_person_never_the_author(ledger, inventory, people, plan):
    allowed = inventory / "allowed_signers"

    def signed(name):
        return sign(plan.signed_text(), people[name])

    with pytest.raises(UserError, match="no author's signature"):
        rules.add_signature(ledger, plan, signed("bob"), allowed, "approver")
    rules.add_signature(ledger, plan, signed("alice"), allowed, "author")
    with pytest.raises(UserError, match="already signed by its author"):
        rules.add_signature(ledger, plan, signed("bob"), allowed, "author")
    with pytest.raises(UserError, match="four eyes"):
        rules.add_signature(ledger, plan, signed("alice"), allowed, "approver")
    with pytest.raises(UserError, match="not in the allowed-signers file"):
        rules.add_signature(ledger, plan, signed("mallory"), allowed, "approver")
    bob = rules.add_signature(ledger, plan, signed("bob"), allowed, "approver")
    assert (bob.role, bob.principal) == ("approver", "bob@agency.example")
    with pytest.raises(UserError, match="already approved"):
        rules.add_signature(ledger, plan, signed("bob"), allowed, "approver")
    good = rules.verified(plan, rules.recorded_signatures(ledger, plan), allowed)
    assert [a.principal for a in rules.approvers(good)] == ["bob@agency.example"]
    assert rules.author(good).principal == "alice@agency.example"


def test_a_recorded_approval_counts_only_while_it_verifies(ledger, inventory, people, plan):
    allowed = inventory / "allowed_signers"
    rules.add_signature(ledger, plan, sign(plan.signed_text(), people["alice"]), allowed, "author")
    carol = sign(plan.signed_text(), people["carol"])
    # A record that says bob approved, with carol's signature; one with a signature of
    # another text; and a key the allowed-signers file no longer lists.
    forged = rules.signature_record(plan, rules.Signer("bob@agency.example", "SHA256:x"), carol,
                                    "approver")  # fmt: skip
    other = sign(b"something else", people["bob"])
    ledger.append([forged, rules.signature_record(plan, rules.Signer("bob@agency.example",
                   "SHA256:y"), other, "approver")])  # fmt: skip
    rules.add_signature(ledger, plan, carol, allowed, "approver")
    good = rules.verified(plan, rules.recorded_signatures(ledger, plan), allowed)
    assert [a.principal for a in rules.approvers(good)] == ["carol@agency.example"]
    allowed.write_text(f"alice@agency.example {public(people['alice'])}\n")
    good = rules.verified(plan, rules.recorded_signatures(ledger, plan), allowed)
    assert rules.approvers(good) == []


def test_milepost_approve_and_plan_show(ledger, inventory, people, plan, capsys):
    hosts = str(inventory / "hosts.yml")
    allowed = inventory / "allowed_signers"
    rules.add_signature(ledger, plan, sign(plan.signed_text(), people["alice"]), allowed, "author")
    code = main(["approve", plan.plan_id, "--key", str(people["bob"]), "-i", hosts])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"plan {plan.plan_id} approved by bob@agency.example" in out
    assert "approvals: 1 of 1 needed" in out
    assert main(["approve", plan.plan_id, "--key", str(people["alice"]), "-i", hosts]) == 2
    assert "four eyes" in capsys.readouterr().err
    assert main(["approve", "P-000000000000", "--key", str(people["bob"]), "-i", hosts]) == 2
    assert "no plan 'P-000000000000'" in capsys.readouterr().err
    assert main(["plan", "show", plan.plan_id, "--json", "-i", hosts]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["author"], shown["approved_by"], shown["approvals_needed"]) == (
        "alice@agency.example",
        ["bob@agency.example"],
        1,
    )
    assert main(["plan", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["plan_id"] for p in listed] == [plan.plan_id]
    assert listed[0]["signatures"] == ["author:alice@agency.example", "approver:bob@agency.example"]
