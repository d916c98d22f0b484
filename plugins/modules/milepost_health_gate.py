#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: milepost_health_gate
short_description: Health-check RUC services after a change; roll back, verify and fail if unhealthy
version_added: "0.1.0"
description:
  - The health gate for a change another task made (the baseline's pinned packages); the
    same gate, rollback, verdicts and one-line message as M(milepost_apt_pin) and
    M(milepost_os_patch) run inside their own module run (their option C(health_gate))
    (plugins/module_utils/milepost_health.py).
  - Runs C(DIR/PACKAGE health --wait SECONDS) for every package of O(packages), unless
    O(failure) says the change itself failed.
  - All healthy - returns C(health_gate_result=passed) as a fact. Otherwise restores every
    package of O(previous_versions) (downgrades allowed; a package that was not installed is
    removed), checks health again, and fails the host with one line saying what was rolled
    back, so C(serial) and C(max_fail_percentage) stop the run.
  - The rollback restores versions found before the run, so the advisory check of
    M(milepost_apt_pin) does not apply to it.
options:
  previous_versions:
    description:
      - Package name to the version before the change (null when it was not installed),
        which a rollback restores.
    type: dict
    default: {}
  packages:
    description: Packages whose service is health-checked (each has C(DIR/PACKAGE health)).
    type: list
    elements: str
    default: []
  failure:
    description: Why the change itself failed; not empty - no health check, roll back at once.
    type: str
    default: ""
  command_dir:
    description: Directory of the packages' commands (C(DIR/PACKAGE health)).
    type: path
    default: /usr/bin
  wait_seconds:
    description: Seconds each C(health --wait) retries before its service counts as unhealthy.
    type: int
    default: 20
  lock_timeout:
    description: Seconds the rollback waits for the dpkg lock.
    type: int
    default: 60
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
    details: The health checks run (read-only); nothing is rolled back.
  diff_mode:
    support: none
  platform:
    platforms: debian
notes:
  - In check mode a service that is unhealthy was unhealthy before the run; the module
    fails with a message starting C(Health gate (check mode, nothing changed)).
seealso:
  - module: milepost_apt_pin
"""

EXAMPLES = r"""
- name: AUDIT | Check the health of the changed services; roll back and fail the host if unhealthy
  milepost_health_gate:
    previous_versions:
      ruc-payment-gateway: "2.3.0"
    packages:
      - ruc-payment-gateway
"""

RETURN = r"""
ansible_facts:
  description:
    - C(health_gate_result) (passed) and C(health_gate_report) (the same as
      RV(milepost_health_gate)), and C(milepost_progress) C(verified), which the maintenance
      ledger records. A failed task sets no facts; its result carries RV(milepost_health_gate).
  returned: when the gate passed
  type: dict
milepost_health_gate:
  description:
    - C(result), C(checked), C(unhealthy), C(reasons), C(rolled_back) and, after a
      rollback, C(versions_now), C(versions_expected), C(still_unhealthy),
      C(rollback_error).
  returned: always
  type: dict
milepost_package_changes:
  description: The version changes the rollback made, for the maintenance ledger.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 - docs come first
from ansible.module_utils.milepost_health import gate, message  # noqa: E402

QUERY = ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n"]


#: dpkg states in which a package has no version on the host.
ABSENT = ("not-installed", "config-files")


def installed_versions(module, names):
    """{name: version on the host or None} of ``names``, from dpkg's status. A package left
    half-installed or half-configured has its version (as APT reports it)."""
    if not names:
        return {}
    _, out, _ = module.run_command(QUERY + ["--"] + list(names), expand_user_and_vars=False)
    found = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1] and parts[2] not in ABSENT:
            found[parts[0]] = parts[1]
    return dict((name, found.get(name)) for name in names)


def main():
    module = AnsibleModule(
        argument_spec={
            "previous_versions": {"type": "dict", "default": {}},
            "packages": {"type": "list", "elements": "str", "default": []},
            "failure": {"type": "str", "default": ""},
            "command_dir": {"type": "path", "default": "/usr/bin"},
            "wait_seconds": {"type": "int", "default": 20},
            "lock_timeout": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    previous = dict(
        (str(name), None if version in (None, "") else str(version))
        for name, version in module.params["previous_versions"].items()
    )
    report, rolled = gate(
        module,
        # Every package of previous_versions is restored, whatever the change reported.
        [{"package": name} for name in previous],
        previous,
        module.params["packages"],
        module.params["command_dir"],
        module.params["wait_seconds"],
        module.params["failure"] or "",
        lambda names: installed_versions(module, names),
        module.params["lock_timeout"],
        check_mode=module.check_mode,
    )
    if report["result"] == "passed":
        facts = {"health_gate_result": "passed", "health_gate_report": report}
        facts["milepost_progress"] = "verified"
        module.exit_json(
            changed=False, ansible_facts=facts, milepost_health_gate=report,
            milepost_package_changes=[],
        )  # fmt: skip
    module.fail_json(
        msg=message(report, check_mode=module.check_mode),
        changed=bool(rolled),
        milepost_health_gate=report,
        milepost_package_changes=rolled,
    )


if __name__ == "__main__":
    main()
