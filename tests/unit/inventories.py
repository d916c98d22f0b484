"""The small RUC inventory several unit tests share, and writing an inventory into a tmp dir.

Two systems: Payments (pay-01, pay-02, run by harbor_payments) and Customer accounts
(acct-01, run by keystone_accounts). No host is ever contacted (port 1)."""

from pathlib import Path

import yaml

#: Ends inside ruc's children: a test may add groups (indented 8 spaces) by appending them.
RUC_HOSTS = """\
all:
  children:
    ruc:
      children:
        payment_gateway:
          hosts:
            pay-01: {ansible_host: 127.0.0.1, ansible_port: 1}
            pay-02: {ansible_host: 127.0.0.1, ansible_port: 1}
          vars: {milepost_vendor: harbor_payments}
        account_management:
          hosts:
            acct-01: {ansible_host: 127.0.0.1, ansible_port: 1}
          vars: {milepost_vendor: keystone_accounts}
"""
RUC_VENDORS = """\
milepost_vendors:
  harbor_payments:
    name: Harbor Payments Inc.
    role: payment processor
    contacts: [{name: Dana Ortiz, email: dana@harbor.example, on_call: true}]
    groups: [payment_gateway]
    interfaces: [payments-api]
    commitments:
      patch_days: {critical: 15, high: 15, medium: 60, low: 90}
      question_response_hours: 24
      interface_availability_percent: 99.5
  keystone_accounts:
    name: Keystone Account Services LLC
    role: account manager
    contacts: [{name: Lee Park, email: lee@keystone.example}]
    groups: [account_management]
    interfaces: []
    commitments:
      patch_days: {critical: 30, high: 30, medium: 90, low: 180}
      question_response_hours: 72
      interface_availability_percent: 99.0
"""
#: The interface harbor_payments names in RUC_VENDORS.
PAYMENTS_API = """\
milepost_interfaces:
  - {name: payments-api, vendor: harbor_payments, kind: https, url: "https://127.0.0.1:1/"}
"""
PATCH_POLICY = """\
milepost_patch_policy:
  days: {kev: 14, critical: 30, high: 30, medium: 90, low: 180}
"""

#: Payments' maintenance window, as group_vars/payment_gateway.yml.
PAYMENTS_WINDOW = """\
milepost_window:
  cron: "0 2 * * 0"
  duration_minutes: 120
  timezone: America/Los_Angeles
"""


def ruc_vendors() -> dict:
    """RUC_VENDORS as a new dict (vendor key: entry), for a test to change and dump."""
    return yaml.safe_load(RUC_VENDORS)["milepost_vendors"]


def vendors_yaml(vendors: dict) -> str:
    """A milepost_vendors file holding ``vendors``."""
    return yaml.safe_dump({"milepost_vendors": vendors})


def write_inventory(root: Path, hosts: str = RUC_HOSTS, **group_vars_all: str | None) -> Path:
    """Write root/hosts.yml and each keyword as root/group_vars/all/<keyword>.yml (a keyword
    given None writes no file); return root, the inventory to name.

    A group_vars/all directory replaces group_vars/all.yml: Ansible reads every file in it."""
    all_vars = root / "group_vars" / "all"
    all_vars.mkdir(parents=True, exist_ok=True)
    (root / "hosts.yml").write_text(hosts)
    for name, text in group_vars_all.items():
        if text is not None:
            (all_vars / f"{name}.yml").write_text(text)
    return root
