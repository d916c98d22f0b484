"""Vendor scorecards from a real SQLite ledger and a small inventory: a late answer and a
missed patch deadline show; availability is judged against the vendor's target."""

import json

import pytest
from inventories import PATCH_POLICY, PAYMENTS_API, RUC_VENDORS, write_inventory

from milepost.cli.main import main
from milepost.inventory.vendors import load_vendors
from milepost.ledger import package_change, package_facts
from milepost.oversight.questions import answer, ask
from milepost.patching.advisories import add_advisory


@pytest.fixture
def inventory(tmp_path):
    return write_inventory(
        tmp_path / "inventory",
        patch_policy=PATCH_POLICY,
        interfaces=PAYMENTS_API,
        vendors=RUC_VENDORS,
    )


def at(record: dict, when: str) -> dict:
    return {**record, "recorded_at": when}


def interface_check(name: str, status: str, when: str) -> dict:
    body = {"name": name, "vendor": "harbor_payments", "kind": "https", "status": status}
    return {"kind": "interface_check", "run_id": None, "host": None, "recorded_at": when,
            "body": body}  # fmt: skip


def scorecard(capsys, inventory, vendor: str) -> dict:
    code = main(
        ["vendor", "scorecard", "--vendor", vendor, "--period", "2026-11", "--json",
         "-i", str(inventory)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    [card] = json.loads(out)
    return card


def test_a_missed_patch_deadline_a_late_answer_and_low_availability_show(ledger, inventory, capsys):
    facts = {"ruc-payment-gateway": "2.3.0"}
    ledger.append(
        [
            at(package_facts("r0", "pay-01", facts), "2026-10-30T00:00:00Z"),
            at(package_facts("r0", "pay-02", facts), "2026-10-30T00:00:00Z"),
            at(package_facts("r0", "acct-01", {"ruc-account-api": "1.4"}), "2026-10-30T00:00:00Z"),
            # pay-01 patched on day 9 (inside the contract's 15 days), pay-02 on day 19 (inside
            # the agency's 30 days, past the contract's 15).
            at(package_change("r1", "pay-01", "ruc-payment-gateway", "2.3.0", "2.4.0"),
               "2026-11-10T03:00:00Z"),
            at(package_change("r2", "pay-02", "ruc-payment-gateway", "2.3.0", "2.4.0"),
               "2026-11-20T03:00:00Z"),
            *[interface_check("payments-api", "ok", f"2026-11-0{d}T04:00Z") for d in range(1, 10)],
            interface_check("payments-api", "failed", "2026-11-10T04:00:00Z"),
            interface_check("payments-api", "failed", "2026-12-01T04:00:00Z"),  # not November
        ]
    )  # fmt: skip
    add_advisory(
        ledger,
        advisory_id="HPSA-2026-0042",
        packages={"ruc-payment-gateway": "2.4.0"},
        severity="critical",
        published="2026-11-01",
    )
    vendors = load_vendors([inventory])
    on_time = ask(
        ledger,
        vendors,
        vendor="harbor_payments",
        subject="Settlement file format",
        asked_at="2026-11-02T09:00:00Z",
    )
    answer(ledger, on_time.question_id, "Version 3.", answered_at="2026-11-02T15:00:00Z")
    late = ask(
        ledger,
        vendors,
        vendor="harbor_payments",
        subject="Patch window for 2.4.0",
        asked_at="2026-11-03T09:00:00Z",
    )
    answer(ledger, late.question_id, "Sunday.", answered_at="2026-11-05T09:00:00Z")
    ask(ledger, vendors, vendor="keystone_accounts", subject="Password reset tokens",
        asked_at="2026-11-04T09:00:00Z")  # fmt: skip

    card = scorecard(capsys, inventory, "harbor_payments")
    assert card["hosts"] == ["pay-01", "pay-02"]
    assert card["patch_policy"]["met"] == 2 and card["patch_policy"]["missed"] == 0
    assert card["patch_contract"]["met"] == 1 and card["patch_contract"]["missed"] == 1
    assert card["patch_contract"]["missed_items"] == [
        "pay-02 HPSA-2026-0042 ruc-payment-gateway (due 2026-11-16)"
    ]
    assert (card["interface_checks"], card["interface_up"]) == (10, 9)
    assert card["availability_percent"] == 90.0 and card["availability_met"] is False
    assert (card["questions"], card["answered_on_time"], card["answered_late"]) == (2, 1, 1)
    assert card["median_response_hours"] == 27.0  # 6 h and 48 h
    assert card["response_commitment_hours"] == 24

    other = scorecard(capsys, inventory, "keystone_accounts")
    assert other["questions"] == 1 and other["open_overdue"] == 1
    assert other["availability_percent"] is None

    # The table names the missed deadline.
    code = main(["vendor", "scorecard", "--period", "2026-11", "-i", str(inventory)])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "missed patch deadline pay-02 HPSA-2026-0042" in out


def test_exposure_uses_the_vendor_contract_as_the_hosts_deadline(ledger, inventory, capsys):
    ledger.append([package_facts("r0", "pay-01", {"ruc-payment-gateway": "2.3.0"})])
    add_advisory(
        ledger,
        advisory_id="HPSA-2026-0043",
        packages={"ruc-payment-gateway": "2.4.0"},
        severity="high",
        published="2026-11-01",
    )
    code = main(["exposure", "--json", "-i", str(inventory)])
    out, err = capsys.readouterr()
    assert code == 0, err
    [item] = json.loads(out)
    assert item["due"] == "2026-11-16"  # the contract's 15 days, not the agency's 30


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--period", "2026-13"], "is not a month"),
        (["--period", "last month"], "is not a month"),
        (["--vendor", "acme"], "unknown vendor 'acme'"),
    ],
)
def test_bad_scorecard_input_is_one_line_and_exit_2(ledger, inventory, capsys, args, problem):
    code = main(["vendor", "scorecard", *args, "-i", str(inventory)])
    _, err = capsys.readouterr()
    assert code == 2 and problem in err and len(err.strip().splitlines()) == 1
