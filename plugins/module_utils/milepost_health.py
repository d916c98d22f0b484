# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health gate inside the module run that made a change (milepost_apt_pin for the RUC
packages, milepost_os_patch for the operating system): restart what the change needs, ask
the RUC services for their health, and when one is unhealthy or the change failed, roll
the changed packages back to the versions found before, check again and judge.

The milepost_health_gate module runs the same gate for a change another task made (the
health_gate role, after the baseline's pinned packages).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

ENV = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none", "LC_ALL": "C"}
KEEP_CONFIG = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]


def _first_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0] if lines else ""


def restart(module, services):
    """Restart each service (its init script or systemd unit, through `service`); returns
    {service: why it failed} for those that did not restart."""
    failed = {}
    for name in services:
        rc, out, err = module.run_command(
            ["service", name, "restart"], environ_update=ENV, expand_user_and_vars=False
        )
        if rc != 0:
            failed[name] = "restart of %s failed (exit %d): %s" % (
                name,
                rc,
                _first_line(err or out) or "no output",
            )
    return failed


def check_health(module, packages, command_dir, wait_seconds):
    """{package: why it is unhealthy} for the packages whose `health` command fails."""
    unhealthy = {}
    for name in packages:
        argv = [os.path.join(command_dir, name), "health", "--wait", str(wait_seconds)]
        rc, out, err = module.run_command(argv, environ_update=ENV, expand_user_and_vars=False)
        if rc != 0:
            unhealthy[name] = _first_line(err or out) or "unhealthy (exit %d)" % rc
    return unhealthy


def rollback_commands(previous, lock_timeout):
    """apt-get argvs that put back the versions found before: install the packages that had
    one (downgrades allowed), remove those that were not installed."""
    back = dict((k, v) for k, v in previous.items() if v)
    gone = sorted(k for k, v in previous.items() if not v)
    commands = []
    if back:
        commands.append(
            ["apt-get", "install", "--yes", "--quiet", "--allow-downgrades"]
            + KEEP_CONFIG
            + ["-o", "DPkg::Lock::Timeout=%d" % lock_timeout, "--"]
            + ["%s=%s" % (name, back[name]) for name in sorted(back)]
        )
    if gone:
        commands.append(["apt-get", "remove", "--yes", "--quiet", "--"] + gone)
    return commands


def changes_between(before, after):
    """Every version change between two {name: version or None} maps."""
    return [
        {"package": name, "from_version": before.get(name), "to_version": after.get(name)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]


def verdict(previous, now, rollback_error, still_unhealthy):
    """rolled_back when the versions are as found, the rollback raised no error and every
    service is healthy again; else rollback_failed."""
    restored = all(now.get(name) == version for name, version in previous.items())
    if restored and not rollback_error and not still_unhealthy:
        return "rolled_back"
    return "rollback_failed"


def message(report, check_mode=False):
    """The one line the host fails with."""
    reasons = "; ".join(report["reasons"])
    if len(reasons) > 400:
        reasons = reasons[:397] + "..."
    what = (
        ", ".join(report["unhealthy"]) + " unhealthy" if report["unhealthy"] else "a failed change"
    )
    back = ", ".join(
        "%s %s -> %s" % (c["package"], c["from_version"] or "none", c["to_version"] or "removed")
        for c in report["rolled_back"]
    )
    if report["result"] == "rolled_back":
        outcome = "now %s, healthy" % ", ".join(
            "%s=%s" % (k, v) for k, v in sorted(report["versions_now"].items())
        )
    else:
        outcome = "NOT restored: versions now %s; still unhealthy: %s; %s" % (
            json.dumps(report["versions_now"], sort_keys=True),
            ", ".join(report["still_unhealthy"]) or "none",
            report["rollback_error"] or "no rollback error",
        )
    return "%s: %s after %s (%s); %s; %s" % (
        "Health gate (check mode, nothing changed)" if check_mode else "Health gate",
        report["result"],
        what,
        reasons,
        ("rolled back " + back) if back else "nothing to roll back",
        outcome,
    )


def gate(module, changes, previous, packages, command_dir, wait_seconds, failure, installed,
         lock_timeout, check_mode=False):  # fmt: skip
    """The health gate after a change.

    changes: what the change did; previous: {package: version before, None when it was not
    installed} of the packages to restore; packages: the RUC packages whose health is
    checked; failure: why the change itself failed ("" when it did not); installed(names):
    the installed versions now; check_mode: judge without rolling anything back. Returns
    (report, rollback changes): report["result"] is passed, rolled_back or rollback_failed.
    """
    unhealthy = {} if failure else check_health(module, packages, command_dir, wait_seconds)
    report = {
        "result": "passed",
        "checked": list(packages),
        "unhealthy": sorted(unhealthy),
        "reasons": ([failure] if failure else []) + [unhealthy[k] for k in sorted(unhealthy)],
        "rolled_back": [],
    }
    if not failure and not unhealthy:
        return report, []
    to_restore = dict(
        (k, v) for k, v in previous.items() if any(c["package"] == k for c in changes)
    )
    before = installed(sorted(to_restore))
    errors = []
    for argv in [] if check_mode else rollback_commands(to_restore, lock_timeout):
        rc, out, err = module.run_command(argv, environ_update=ENV, expand_user_and_vars=False)
        if rc != 0:
            tail = [line for line in (out + "\n" + err).splitlines() if line.strip()]
            errors.append("%s failed (exit %d): %s" % (" ".join(argv[:2]), rc, (tail or ["?"])[-1]))
    now = installed(sorted(to_restore))
    rolled = changes_between(before, now)
    # The packages' own scripts start the restored versions: no restart here.
    survivors = [name for name in packages if to_restore.get(name, True)]
    still = check_health(module, survivors, command_dir, wait_seconds)
    report.update(
        result=verdict(to_restore, now, "; ".join(errors), still),
        rolled_back=rolled,
        versions_now=now,
        versions_expected=to_restore,
        still_unhealthy=sorted(still),
        rollback_error="; ".join(errors),
    )
    return report, rolled
