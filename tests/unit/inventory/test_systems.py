"""The RUC systems in plain words (milepost_systems) checked against the inventory."""

from pathlib import Path

import pytest
import yaml

from milepost.errors import UserError
from milepost.inventory.systems import (
    GENERIC_IMPACT,
    load_systems,
    parse_systems,
    program_name,
    system_window,
    systems_of_hosts,
)

GROUPS = {
    "all": frozenset({"pay-01", "pay-02", "acct-01", "ctl-01"}),
    "ruc": frozenset({"pay-01", "pay-02", "acct-01"}),
    "payment_gateway": frozenset({"pay-01", "pay-02"}),
    "account_management": frozenset({"acct-01"}),
    "controllers": frozenset({"ctl-01"}),
    "ungrouped": frozenset(),
}
PAYMENTS = {"name": "Payments", "serves": "Takes payments.", "impact": "Payments may fail."}


def test_described_systems_come_first_and_other_ruc_groups_get_generic_words():
    found = parse_systems(
        {"payment_gateway": PAYMENTS},
        groups=GROUPS,
        host_vendors={"pay-01": "harbor", "pay-02": "harbor", "acct-01": "keystone"},
    )
    assert list(found) == ["payment_gateway", "account_management"]
    assert found["payment_gateway"].name == "Payments"
    assert found["payment_gateway"].hosts == ("pay-01", "pay-02")
    assert found["payment_gateway"].vendors == ("harbor",)
    assert found["account_management"].name == "Account management"
    assert found["account_management"].impact == GENERIC_IMPACT
    # controllers are not RUC hosts; all, ruc and ungrouped are never systems
    assert "controllers" not in found
    assert [s.key for s in systems_of_hosts(found, ["acct-01"])] == ["account_management"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"payments": PAYMENTS}, "names 'payments', which is not an inventory group"),
        ({"ruc": PAYMENTS}, "names 'ruc', which is not an inventory group"),
        ({"payment_gateway": {"name": "Payments"}}, "payment_gateway.serves is missing"),
        ({"payment_gateway": {**PAYMENTS, "colour": "red"}}, "unknown key(s) 'colour'"),
        ({"payment_gateway": {**PAYMENTS, "name": 3}}, "payment_gateway.name must be text"),
        ({"payment_gateway": {**PAYMENTS, "name": "Pay\u202ements"}}, "payment_gateway.name"),
        (["payment_gateway"], "must map inventory groups"),
    ],
)
def test_bad_systems_data_is_one_line_naming_the_field(value, message):
    with pytest.raises(UserError) as caught:
        parse_systems(value, groups=GROUPS)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_lab_inventory_describes_every_lab_group(tmp_path: Path):
    root = Path(__file__).resolve().parents[3]
    words = yaml.safe_load((root / "inventory/lab/group_vars/all/systems.yml").read_text())
    groups = [
        "account_management",
        "mileage_ingest",
        "payment_gateway",
        "sftp_exchange",
        "reporting",
    ]
    hosts = {
        "all": {
            "children": {
                "ruc": {
                    "children": {
                        group: {"hosts": {f"{group[:4]}-01": {"milepost_vendor": "v"}}}
                        for group in groups
                    }
                }
            }
        }
    }
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    (tmp_path / "group_vars" / "all" / "systems.yml").write_text(yaml.safe_dump(words))
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(hosts))
    found = load_systems([tmp_path / "hosts.yml"])
    assert sorted(found) == sorted(groups)
    assert all(system.impact != GENERIC_IMPACT for system in found.values())
    assert found["payment_gateway"].vendors == ("v",)


def test_the_program_name_defaults_and_must_be_one_line_of_text():
    assert program_name(None) == "Road Usage Charge program"
    assert program_name("  Oregon  OReGO ") == "Oregon OReGO"
    for bad in (3, "Ore\ngo", "x" * 101):
        with pytest.raises(UserError, match="milepost_program_name"):
            program_name(bad)


def test_a_systems_window_is_its_hosts_window_else_its_blackouts_alone():
    system = parse_systems({"payment_gateway": PAYMENTS}, groups=GROUPS)["payment_gateway"]
    window = {"cron": "0 2 * * 0", "duration_minutes": 120, "timezone": "UTC"}
    found, blackouts = system_window(
        system,
        {"pay-01": {"milepost_blackouts": ["2026-12-25"]}, "pay-02": {"milepost_window": window}},
    )
    assert found is not None and found.cron == "0 2 * * 0" and blackouts == []
    found, blackouts = system_window(system, {"pay-01": {"milepost_blackouts": ["2026-12-25"]}})
    assert found is None and len(blackouts) == 1
    with pytest.raises(UserError, match="payment_gateway"):
        system_window(system, {"pay-01": {"milepost_window": {"cron": "bad"}}})
