"""Vendors as inventory data: loading, every kind of bad data, the committed inventories."""

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml
from inventories import PAYMENTS_API, ruc_vendors, vendors_yaml, write_inventory

from milepost.cli.main import main
from milepost.errors import UserError
from milepost.inventory.vendors import ROLES, load_vendors, parse_vendors, vendor_of_host
from milepost.lab import topology

ROOT = Path(__file__).resolve().parents[3]

INTERFACES = yaml.safe_load(PAYMENTS_API)
VENDORS = ruc_vendors()
# Harbor's on-call contact has a phone; Keystone leaves out interfaces (the default: none).
VENDORS["harbor_payments"]["contacts"][0]["phone"] = "+1-555-0100"
del VENDORS["keystone_accounts"]["interfaces"]
GROUPS = {
    "all": frozenset({"pay-01", "pay-02", "acct-01"}),
    "ruc": frozenset({"pay-01", "pay-02", "acct-01"}),
    "payment_gateway": frozenset({"pay-01", "pay-02"}),
    "account_management": frozenset({"acct-01"}),
}
OWNERS = {"pay-01": "harbor_payments", "pay-02": "harbor_payments", "acct-01": "keystone_accounts"}


def vendor_inventory(root: Path, vendors=VENDORS, interfaces=INTERFACES) -> Path:
    """The RUC inventory with ``vendors`` and ``interfaces`` (None: that file left out)."""
    return write_inventory(
        root,
        vendors=None if vendors is None else vendors_yaml(vendors),
        interfaces=None if interfaces is None else yaml.safe_dump(interfaces),
    )


def parse(vendors):
    return parse_vendors(
        vendors,
        groups=GROUPS,
        interfaces=INTERFACES["milepost_interfaces"],
        host_vendors=OWNERS,
    )


def test_vendors_load_from_the_inventory(tmp_path):
    inventory = vendor_inventory(tmp_path / "inventory")
    vendors = load_vendors([inventory])
    assert list(vendors) == ["harbor_payments", "keystone_accounts"]
    harbor = vendors["harbor_payments"]
    assert (harbor.name, harbor.role) == ("Harbor Payments Inc.", "payment processor")
    assert harbor.groups == ("payment_gateway",) and harbor.interfaces == ("payments-api",)
    assert harbor.commitments.patch_days == {"critical": 15, "high": 15, "medium": 60, "low": 90}
    assert harbor.commitments.question_response_hours == 24
    assert harbor.commitments.interface_availability_percent == 99.5
    assert harbor.on_call is not None and harbor.on_call.phone == "+1-555-0100"
    keystone = vendors["keystone_accounts"]
    assert keystone.interfaces == () and keystone.contacts[0].on_call is False
    assert keystone.on_call == keystone.contacts[0]  # no one on call: the first contact
    assert json.loads(json.dumps(harbor.as_dict()))["contacts"][0]["name"] == "Dana Ortiz"
    assert vendor_of_host([inventory]) == OWNERS


def test_an_inventory_without_vendors_has_none(tmp_path):
    inventory = vendor_inventory(tmp_path / "inventory", vendors=None)
    assert load_vendors([inventory]) == {}
    assert vendor_of_host([inventory])["acct-01"] == "keystone_accounts"


def test_a_host_whose_vendor_is_not_defined_is_refused(tmp_path):
    only_harbor = {"harbor_payments": VENDORS["harbor_payments"]}
    inventory = vendor_inventory(tmp_path / "inventory", vendors=only_harbor)
    with pytest.raises(UserError, match=r"acct-01 .*milepost_vendor 'keystone_accounts'"):
        load_vendors([inventory])


def test_a_group_the_inventory_lacks_is_refused(tmp_path):
    vendors = copy.deepcopy(VENDORS)
    vendors["keystone_accounts"]["groups"] = ["acount_management"]
    inventory = vendor_inventory(tmp_path / "inventory", vendors=vendors)
    with pytest.raises(
        UserError,
        match=r"milepost_vendors.keystone_accounts.groups names 'acount_management'.*not an",
    ):
        load_vendors([inventory])


def test_an_interface_not_in_milepost_interfaces_is_refused(tmp_path):
    inventory = vendor_inventory(tmp_path / "inventory", interfaces=None)
    with pytest.raises(
        UserError,
        match=r"harbor_payments.interfaces names 'payments-api'.*none are defined",
    ):
        load_vendors([inventory])


def _with(vendor: str, path: str, value):
    """VENDORS with ``path`` (dotted; a leading number indexes a list) of ``vendor`` set."""
    vendors = copy.deepcopy(VENDORS)
    node = vendors[vendor]
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is KeyError:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return vendors


@pytest.mark.parametrize(
    ("vendor", "path", "value", "message"),
    [
        ("harbor_payments", "colour", "blue", r"harbor_payments has unknown key\(s\) 'colour'"),
        ("harbor_payments", "name", KeyError, r"harbor_payments.name is missing"),
        ("harbor_payments", "name", 42, r"harbor_payments.name must be text, not int"),
        ("harbor_payments", "name", "Harbor\u202ePay", r"harbor_payments.name .*bidirectional"),
        ("harbor_payments", "role", "bank", r"harbor_payments.role is 'bank': use one of"),
        ("harbor_payments", "contacts", [], r"harbor_payments.contacts must be a list of at"),
        ("harbor_payments", "contacts", "dana", r"harbor_payments.contacts must be a list"),
        (
            "harbor_payments",
            "contacts.0.email",
            "dana.example",
            r"harbor_payments.contacts\[0\].email 'dana.example' is not an e-mail",
        ),
        (
            "harbor_payments",
            "contacts.0.phone",
            5550100,
            r"harbor_payments.contacts\[0\].phone must be text, not int .*quote it",
        ),
        (
            "harbor_payments",
            "contacts.0.on_call",
            "yes",
            r"harbor_payments.contacts\[0\].on_call must be true or false",
        ),
        (
            "harbor_payments",
            "contacts.0.pager",
            "x",
            r"harbor_payments.contacts\[0\] has unknown key\(s\) 'pager'",
        ),
        ("harbor_payments", "groups", "payment_gateway", r"harbor_payments.groups must be a list"),
        ("harbor_payments", "interfaces", [7], r"harbor_payments.interfaces entry must be text"),
        ("harbor_payments", "commitments", KeyError, r"harbor_payments.commitments is missing"),
        (
            "harbor_payments",
            "commitments.patch_days.critical",
            1.5,
            r"commitments.patch_days.critical must be a whole number of days >= 0, not 1.5",
        ),
        (
            "harbor_payments",
            "commitments.patch_days.high",
            -1,
            r"commitments.patch_days.high must be a whole number of days >= 0, not -1",
        ),
        (
            "harbor_payments",
            "commitments.patch_days.high",
            True,
            r"commitments.patch_days.high must be a whole number",
        ),
        (
            "harbor_payments",
            "commitments.patch_days.low",
            KeyError,
            r"harbor_payments.commitments.patch_days.low is missing",
        ),
        (
            "harbor_payments",
            "commitments.patch_days.kev",
            3,
            r"harbor_payments.commitments.patch_days names 'kev'",
        ),
        (
            "keystone_accounts",
            "commitments.question_response_hours",
            0,
            r"keystone_accounts.commitments.question_response_hours must be more than 0",
        ),
        (
            "keystone_accounts",
            "commitments.question_response_hours",
            "soon",
            r"keystone_accounts.commitments.question_response_hours must be a number",
        ),
        (
            "keystone_accounts",
            "commitments.interface_availability_percent",
            100.5,
            r"interface_availability_percent must be from 0 to 100, not 100.5",
        ),
        (
            "keystone_accounts",
            "commitments.interface_availability_percent",
            KeyError,
            r"keystone_accounts.commitments.interface_availability_percent is missing",
        ),
        (
            "keystone_accounts",
            "commitments.uptime",
            1,
            r"keystone_accounts.commitments has unknown key\(s\) 'uptime'",
        ),
    ],
)
def test_bad_vendor_data_is_one_line_naming_vendor_and_field(vendor, path, value, message):
    with pytest.raises(UserError, match=message) as refused:
        parse(_with(vendor, path, value))
    assert "\n" not in str(refused.value)


def test_bad_shapes_and_keys_are_refused():
    with pytest.raises(UserError, match=r"milepost_vendors must map vendor keys"):
        parse(["harbor_payments"])
    with pytest.raises(UserError, match=r"milepost_vendors key 'Harbor Payments' is not"):
        parse({"Harbor Payments": VENDORS["harbor_payments"]})
    with pytest.raises(UserError, match=r"milepost_vendors.harbor_payments must be a mapping"):
        parse({**VENDORS, "harbor_payments": "Harbor"})
    assert parse(None) == {}
    assert set(ROLES) >= {VENDORS[key]["role"] for key in VENDORS}


def test_a_group_operated_by_another_vendor_is_refused():
    vendors = _with("keystone_accounts", "groups", ["account_management", "payment_gateway"])
    with pytest.raises(UserError, match=r"pay-01, pay-02 have milepost_vendor harbor_payments"):
        parse(vendors)


def test_an_interface_another_vendor_runs_is_refused():
    vendors = _with("keystone_accounts", "interfaces", ["payments-api"])
    with pytest.raises(UserError, match=r"says vendor 'harbor_payments' runs it"):
        parse(vendors)


def test_the_example_inventory_vendors_load():
    vendors = load_vendors([ROOT / "inventory" / "example"])
    owners = vendor_of_host([ROOT / "inventory" / "example"])
    assert set(owners.values()) <= set(vendors)
    assert {v.role for v in vendors.values()} == set(ROLES)
    assert vendors["harbor_payments"].interfaces == ("payments-api",)
    assert vendors["relay_file_exchange"].interfaces == ("mileage-file-exchange",)


def test_the_lab_inventory_vendors_load(tmp_path):
    from milepost.lab import inventory as lab_inventory
    from milepost.lab import vendor_endpoints

    lab = tmp_path / "lab"
    shutil.copytree(ROOT / "inventory" / "lab" / "group_vars", lab / "group_vars")
    hosts = topology.plan(topology.MAX_HOSTS)
    served = vendor_endpoints.endpoints(tmp_path / "tls", topology.VENDOR_PORT_BASE)
    interfaces = lab_inventory.interfaces(
        served,
        tmp_path / "tls" / "ca.pem",
        vendor_endpoints.exchange_host(hosts),
        tmp_path / "id_ed25519",
        tmp_path / "known_hosts",
    )
    (lab / "hosts.yml").write_text(
        lab_inventory.render(
            hosts,
            key_file=tmp_path / "id_ed25519",
            known_hosts=tmp_path / "known_hosts",
            control_dir=tmp_path / "cp",
            repo_url="http://127.0.0.1:8780/",
            repo_key=tmp_path / "repo" / "milepost-lab.asc",
            interfaces=interfaces,
        )
    )
    vendors = load_vendors([lab])
    assert sorted(vendors) == sorted(vendor for _, _, vendor in topology.GROUPS)
    for group, _, key in topology.GROUPS:
        assert vendors[key].groups == (group,)
        # Each vendor runs its group's API; the file exchange's operator runs the exchange too.
        expected = (topology.VENDOR_APIS[group][0],)
        if group == topology.EXCHANGE_GROUP:
            expected += ("file-exchange",)
        assert vendors[key].interfaces == expected
    harbor = vendors["harbor_payments"].commitments
    assert harbor.patch_days == {"critical": 15, "high": 15, "medium": 60, "low": 90}
    assert (harbor.question_response_hours, harbor.interface_availability_percent) == (24, 99.5)
    other = vendors["ledgerline_analytics"].commitments
    assert other.patch_days == {"critical": 30, "high": 30, "medium": 90, "low": 180}
    assert (other.question_response_hours, other.interface_availability_percent) == (72, 99.0)


def test_vendor_list_cli(tmp_path, capsys):
    inventory = vendor_inventory(tmp_path / "inventory")
    assert main(["vendor", "list", "-i", str(inventory)]) == 0
    out = capsys.readouterr().out
    assert "harbor_payments" in out and "Dana Ortiz" in out and "15/15/60/90" in out
    assert main(["vendor", "list", "--json", "-i", str(inventory)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [v["key"] for v in data] == ["harbor_payments", "keystone_accounts"]
    assert data[0]["commitments"]["question_response_hours"] == 24


def test_vendor_list_cli_bad_data_is_one_line(tmp_path, capsys):
    inventory = vendor_inventory(
        tmp_path / "inventory", vendors=_with("harbor_payments", "role", "bank")
    )
    assert main(["vendor", "list", "-i", str(inventory)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "harbor_payments.role" in captured.err
