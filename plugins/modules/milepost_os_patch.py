#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: milepost_os_patch
short_description: Apply operating-system updates (all or security-only) and report what they need
version_added: "0.2.0"
description:
  - Upgrades the installed packages that have a newer version in the configured package
    sources, with APT on Debian-family hosts and dnf on RHEL-family hosts. Only packages
    already installed are upgraded; their new dependencies are installed as the package
    manager decides.
  - O(scope=security) upgrades only to versions published by a security source. With APT a
    version is a security update when one of its origins is a security archive (suite or
    codename ending in C(-security), as Debian's C(bookworm-security)) or carries a
    C(*Security) label (Debian's C(Debian-Security)); with dnf the selection is
    C(dnf --security), from the repositories' updateinfo.
  - Packages matching O(exclude) (shell-style patterns, for example C(ruc-*), whose versions
    are pinned elsewhere) and packages on hold (C(apt-mark hold)) are never upgraded.
  - The plan is made first and applied with exact versions (C(apt-get install --only-upgrade
    NAME=VERSION ...), C(dnf upgrade NAME-EVR.ARCH ...)), non-interactively, keeping locally
    changed configuration files. No shell is involved.
  - Returns C(milepost_package_changes), every package whose version changed (new
    dependencies included), which the maintenance_ledger callback records; in check mode
    it is empty and C(planned_changes) lists what would change.
  - Reports whether the host needs a reboot (C(/run/reboot-required) on Debian, C(dnf
    needs-restarting -r) on RHEL) as C(milepost_reboot_required), and which services run
    code that the upgrade replaced (processes mapping deleted files, attributed to their
    systemd unit or to the init script of the package that owns their program) as
    C(services_to_restart). It reboots nothing itself.
  - With O(restart_services=true) it restarts those services (but O(restart_exclude)) in
    the same module run, and with O(health_gate=true) (APT only) it then asks the RUC
    services (installed packages matching O(health_packages)) for their health; when one
    is unhealthy, or the upgrade or a restart failed, the changed packages go back to the
    versions found before, are asked again, and the task fails with one line (the same
    health gate as milepost_apt_pin's, RV(milepost_health_gate)).
options:
  scope:
    description: Which updates to apply.
    type: str
    choices: [all, security]
    default: all
  exclude:
    description: Shell-style patterns of package names never to upgrade.
    type: list
    elements: str
    default: []
  only:
    description:
      - Shell-style patterns of the package names to upgrade, nothing else (the packages of
        one advisory, in an emergency patch); empty - every package the scope selects.
    type: list
    elements: str
    default: []
  exact:
    description:
      - The OS packages and versions an approved change plan installs on this host
        ({package - version}; milepost apply). Only these are upgraded, to exactly these
        versions; when the host would now install another version of one, or not upgrade
        it, the task fails untouched (the plan is stale). Omitted - no change plan.
    type: dict
  package_manager:
    description: The package manager to use; V(auto) picks apt-get or dnf, whichever the host has.
    type: str
    choices: [auto, apt, dnf]
    default: auto
  lock_timeout:
    description: Seconds apt-get waits for the dpkg lock held by another process.
    type: int
    default: 60
  restart_services:
    description: Restart the services that run code the upgrade replaced (C(service NAME restart)).
    type: bool
    default: false
  restart_exclude:
    description: Services never restarted (for example C(ssh), the connection itself).
    type: list
    elements: str
    default: []
  health_gate:
    description: After a change, health-check the RUC services and roll back on failure (APT).
    type: bool
    default: false
  health_packages:
    description: Shell-style patterns of the installed packages whose health is checked.
    type: list
    elements: str
    default: ["ruc-*"]
  health_command_dir:
    description: Directory of their commands (C(DIR/PACKAGE health)).
    type: path
    default: /usr/bin
  health_wait_seconds:
    description: How long each health check may wait for its service.
    type: int
    default: 20
  error_lines:
    description: How many of the last lines of the package manager's output to return on failure.
    type: int
    default: 20
requirements:
  - on Debian-family hosts, python3-apt (the module re-runs itself under a system Python
    that has it when the discovered interpreter does not) and apt-get
  - on RHEL-family hosts, dnf and rpm; dnf-plugins-core for the reboot check
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
    details: Plans the upgrade and reports what would change, the pending reboot and the
      services to restart as they are now; changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: debian, rhel
seealso:
  - module: milepost_apt_pin
  - module: ansible.builtin.reboot
"""

EXAMPLES = r"""
- name: PATCH | Apply the security updates of the operating system
  milepost_os_patch:
    scope: security
    exclude:
      - ruc-*
  register: __os_patch_result
"""

RETURN = r"""
services_restarted:
  description: The services restarted (O(restart_services)).
  returned: always
  type: list
  elements: str
milepost_health_gate:
  description: The health gate's report (see milepost_apt_pin), with O(health_gate) after a change.
  returned: with health_gate, when something changed or failed
  type: dict
milepost_package_changes:
  description:
    - One entry per package whose installed version changed, sorted by name; the
      maintenance_ledger callback records them. Empty in check mode. Also returned when the
      task fails, with the changes that did happen.
  returned: always
  type: list
  elements: dict
  sample:
    - package: libssl3
      from_version: 3.0.17-1~deb12u2
      to_version: 3.0.17-1~deb12u3
planned_changes:
  description: The upgrades of the plan, shaped as milepost_package_changes, with C(security).
  returned: always
  type: list
  elements: dict
milepost_reboot_required:
  description:
    - Present when the host needs a reboot to finish an update; the packages that asked
      for it (Debian's C(/run/reboot-required.pkgs)), empty when the system does not say.
  returned: when a reboot is required
  type: dict
  sample: {"packages": ["linux-image-6.1.0-30-amd64"]}
reboot_required:
  description: Whether the host needs a reboot.
  returned: always
  type: bool
services_to_restart:
  description: Services (systemd units or init scripts) whose processes run replaced code.
  returned: always
  type: list
  elements: str
  sample: ["ruc-payment-gateway"]
processes_to_restart:
  description: Processes running replaced code that belong to no service (pid, program).
  returned: always
  type: list
  elements: dict
package_manager:
  description: The package manager used.
  returned: always
  type: str
failed_packages:
  description: Packages the package manager reported errors for.
  returned: failure of the package manager
  type: list
  elements: str
error_lines:
  description: The last lines of the package manager's output.
  returned: failure of the package manager
  type: list
  elements: str
"""

import os  # noqa: E402 - Ansible modules put the docs first
import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.milepost_apt import apt, apt_pkg, require_apt  # noqa: E402
from ansible.module_utils.milepost_health import gate, message, restart  # noqa: E402

# The plan's rules are shared with milepost_probe (plugins/module_utils/milepost_packages.py).
from ansible.module_utils.milepost_packages import (  # noqa: E402, F401
    excluded,
    is_security_origin,
    parse_dpkg_query,
    only_matching,
    exactly,
    select_upgrades,
    upgrade_records,
)

PACKAGE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]*$")
DPKG_ERROR_RE = re.compile(r"dpkg: error processing (?:package|archive) (\S+)")
DNF_ERROR_RE = re.compile(r"^Error: .*?(?:package|Package) (\S+)", re.MULTILINE)
REBOOT_FILE = "/run/reboot-required"
# Mapped files that say nothing about replaced code: anonymous and shared memory, caches.
IGNORED_MAPPINGS = ("/dev/", "/memfd:", "/SYSV", "/tmp/", "/var/tmp/", "/run/", "/proc/")  # noqa: S108
# Programs that only run other programs: the script they run says which service it is.
INTERPRETER_RE = re.compile(r"/(python[0-9.]*|perl|ruby|node|bash|sh|dash|java)$")

# ---------------------------------------------------------------------------
# Pure logic (unit tested without a host)
# ---------------------------------------------------------------------------


def diff_installed(before, after):
    """Every version change between two {name: version} maps of installed packages."""
    changes = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            changes.append(
                {"package": name, "from_version": before.get(name), "to_version": after.get(name)}
            )
    return changes


def apt_command(plan, lock_timeout):
    """The apt-get argv that applies the plan with exact versions."""
    argv = [
        "apt-get",
        "install",
        "--yes",
        "--quiet",
        "--only-upgrade",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "DPkg::Lock::Timeout=%d" % lock_timeout,
        "--",
    ]
    argv.extend("%s=%s" % (item["package"], item["to_version"]) for item in plan)
    return argv


def parse_dnf_check_update(text):
    """[{name, arch, version, repo}] from `dnf -q check-update` output (exit code 100).

    Lines are `name.arch  [epoch:]version-release  repo`; a long name wraps the rest onto
    the next line. Sections after `Obsoleting Packages` are not upgrades."""
    found = []
    words = []
    for line in text.splitlines():
        if line.startswith(("Obsoleting Packages", "Security:")):
            break
        if not line.strip() or line.startswith(("Last metadata", "Updating", "Repository")):
            continue
        words.extend(line.split())
        if len(words) < 3:
            continue
        name_arch, version, repo = words[0], words[1], words[2]
        words = words[3:]
        name, dot, arch = name_arch.rpartition(".")
        if not dot or not PACKAGE_NAME_RE.match(name):
            continue
        found.append({"name": name, "arch": arch, "version": version, "repo": repo})
    return found


def parse_rpm_qa(text):
    """{name: [epoch:]version-release} from
    rpm -qa --qf '%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}-%{RELEASE}\\n'.

    An epoch of 0 is left out, as dnf prints versions."""
    versions = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[0] == "gpg-pubkey":
            continue
        name, epoch, version_release = parts
        if epoch in ("", "0", "(none)"):
            versions[name] = version_release
        else:
            versions[name] = "%s:%s" % (epoch, version_release)
    return versions


def plan_dnf(updates, installed, exclude):
    """Plan from dnf's list of updates: [{package, from_version, to_version, arch, security}]."""
    plan = []
    for item in sorted(updates, key=lambda u: (u["name"], u["arch"])):
        if item["name"] not in installed or excluded(item["name"], exclude):
            continue
        plan.append(
            {
                "package": item["name"],
                "from_version": installed[item["name"]],
                "to_version": item["version"],
                "arch": item["arch"],
            }
        )
    return plan


def dnf_list_command(scope, exclude):
    argv = ["dnf", "-q", "check-update"]
    if scope == "security":
        argv.append("--security")
    argv.extend("--exclude=%s" % pattern for pattern in exclude)
    return argv


def dnf_upgrade_command(plan, scope):
    """The dnf argv that applies the plan with exact name-[epoch:]version-release.arch specs."""
    argv = ["dnf", "-y", "-q", "upgrade"]
    if scope == "security":
        argv.append("--security")
    argv.append("--")
    argv.extend("%s-%s.%s" % (item["package"], item["to_version"], item["arch"]) for item in plan)
    return argv


def dnf_reboot_required(rc):
    """`dnf needs-restarting -r`: exit 1 says a reboot is needed, 0 that it is not."""
    if rc == 1:
        return True
    if rc == 0:
        return False
    return None


def deleted_mappings(maps_text):
    """Files a process maps that were deleted or replaced since it started."""
    found = []
    for line in maps_text.splitlines():
        if not line.endswith(" (deleted)"):
            continue
        fields = line.split(None, 5)
        if len(fields) < 6:
            continue
        path = fields[5][: -len(" (deleted)")]
        if path.startswith("/") and not path.startswith(IGNORED_MAPPINGS) and path not in found:
            found.append(path)
    return found


def systemd_unit(cgroup_text):
    """The .service unit of a process from /proc/PID/cgroup, if it runs under systemd."""
    for line in cgroup_text.splitlines():
        path = line.split(":", 2)[-1]
        for part in reversed(path.split("/")):
            if part.endswith(".service") and not part.startswith("user@"):
                return part[: -len(".service")]
    return None


def program_paths(exe, cmdline):
    """The files that say what a process is: its program, and the script an interpreter runs."""
    paths = [exe.replace(" (deleted)", "")] if exe else []
    if exe and INTERPRETER_RE.search(exe.replace(" (deleted)", "")):
        for arg in cmdline[1:]:
            if arg.startswith("/"):
                paths.insert(0, arg)
                break
            if not arg.startswith("-"):
                break
    return paths


def service_files(package_files):
    """Service names from a package's file list: init scripts and systemd service units."""
    names = []
    for path in package_files:
        base = os.path.basename(path)
        if path.startswith("/etc/init.d/") and base not in ("README", "skeleton"):
            names.append(base)
        elif re.match(r"^/(usr/)?lib/systemd/system/[^/@]+\.service$", path):
            names.append(base[: -len(".service")])
    return sorted(set(names))


def tail_lines(text, count):
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines[-count:] if count > 0 else []


# ---------------------------------------------------------------------------
# The host
# ---------------------------------------------------------------------------


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def processes_running_replaced_code(proc="/proc"):
    """[{pid, exe, cmdline, cgroup}] of processes that map deleted files."""
    found = []
    own = os.getpid()
    for entry in os.listdir(proc):
        if not entry.isdigit() or int(entry) == own:
            continue
        base = os.path.join(proc, entry)
        if not deleted_mappings(_read(os.path.join(base, "maps"))):
            continue
        try:
            exe = os.readlink(os.path.join(base, "exe"))
        except OSError:
            continue  # a kernel thread, or gone
        cmdline = [a for a in _read(os.path.join(base, "cmdline")).split("\0") if a]
        found.append(
            {
                "pid": int(entry),
                "exe": exe,
                "cmdline": cmdline,
                "cgroup": _read(os.path.join(base, "cgroup")),
            }
        )
    return found


class Host:
    """Runs the package-manager commands of one host through the module."""

    def __init__(self, module, manager):
        self.module = module
        self.manager = manager

    def run(self, argv, check=True):
        env = {
            "DEBIAN_FRONTEND": "noninteractive",
            "APT_LISTCHANGES_FRONTEND": "none",
            "LC_ALL": "C",
        }
        # argv list: no shell; and no expansion of ~ or $NAME in the arguments either.
        rc, out, err = self.module.run_command(argv, environ_update=env, expand_user_and_vars=False)
        if check and rc != 0:
            self.module.fail_json(
                msg="%s failed (exit %d): %s"
                % (" ".join(argv[:3]), rc, (tail_lines(err or out, 1) or ["no output"])[0]),
                milepost_package_changes=[],
            )
        return rc, out, err

    def installed(self):
        if self.manager == "apt":
            query = ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n"]
            return parse_dpkg_query(self.run(query)[1])
        query = ["rpm", "-qa", "--qf", "%{NAME}\t%{EPOCHNUM}\t%{VERSION}-%{RELEASE}\n"]
        return parse_rpm_qa(self.run(query)[1])

    def owner_services(self, path, cache):
        """Services of the package that owns path (cached per path)."""
        if path in cache:
            return cache[path]
        services = []
        if self.manager == "apt":
            rc, out, _ = self.run(["dpkg-query", "-S", path], check=False)
            package = out.split(":", 1)[0].strip() if rc == 0 and ":" in out else None
            if package and "," not in package:
                services = service_files(self.run(["dpkg-query", "-L", package])[1].splitlines())
        else:
            rc, out, _ = self.run(["rpm", "-qf", "--qf", "%{NAME}\n", path], check=False)
            package = out.strip().splitlines()[0] if rc == 0 and out.strip() else None
            if package:
                services = service_files(self.run(["rpm", "-ql", package])[1].splitlines())
        cache[path] = services
        return services

    def restart_needs(self):
        """(services, unattributed processes) running code that was replaced."""
        services = set()
        loose = []
        cache = {}
        for process in processes_running_replaced_code():
            unit = systemd_unit(process["cgroup"])
            if unit:
                services.add(unit)
                continue
            names = []
            for path in program_paths(process["exe"], process["cmdline"]):
                names = self.owner_services(path, cache)
                if names:
                    break
            if len(names) == 1:
                services.add(names[0])
            else:
                loose.append({"pid": process["pid"], "program": process["exe"]})
        return sorted(services), loose

    def reboot_required(self):
        if self.manager == "apt":
            if not os.path.exists(REBOOT_FILE):
                return False, []
            packages = _read(REBOOT_FILE + ".pkgs").split()
            return True, sorted(set(packages))
        rc = self.run(["dnf", "needs-restarting", "-r"], check=False)[0]
        return bool(dnf_reboot_required(rc)), []


def _pick_manager(module, wanted):
    if wanted != "auto":
        return wanted
    if module.get_bin_path("apt-get"):
        return "apt"
    if module.get_bin_path("dnf"):
        return "dnf"
    module.fail_json(msg="Neither apt-get nor dnf is on this host: set package_manager")


def main():
    module = AnsibleModule(
        argument_spec={
            "scope": {"type": "str", "choices": ["all", "security"], "default": "all"},
            "exclude": {"type": "list", "elements": "str", "default": []},
            "only": {"type": "list", "elements": "str", "default": []},
            "exact": {"type": "dict", "default": None},
            "package_manager": {
                "type": "str",
                "choices": ["auto", "apt", "dnf"],
                "default": "auto",
            },
            "lock_timeout": {"type": "int", "default": 60},
            "error_lines": {"type": "int", "default": 20},
            "restart_services": {"type": "bool", "default": False},
            "restart_exclude": {"type": "list", "elements": "str", "default": []},
            "health_gate": {"type": "bool", "default": False},
            "health_packages": {"type": "list", "elements": "str", "default": ["ruc-*"]},
            "health_command_dir": {"type": "path", "default": "/usr/bin"},
            "health_wait_seconds": {"type": "int", "default": 20},
        },
        supports_check_mode=True,
    )
    scope = module.params["scope"]
    exclude = [p.strip() for p in module.params["exclude"] if p and p.strip()]
    only = [p.strip() for p in module.params["only"] if p and p.strip()]
    manager = _pick_manager(module, module.params["package_manager"])
    host = Host(module, manager)

    before = host.installed()
    if manager == "apt":
        require_apt(module)
        try:
            records = upgrade_records(apt.Cache(), apt_pkg, apt_pkg.version_compare)
        except Exception as exc:  # noqa: BLE001 - python3-apt raises plain SystemError/OSError
            module.fail_json(
                msg="Could not open the APT cache: %s" % exc, milepost_package_changes=[]
            )
        plan = select_upgrades(records, scope, exclude, apt_pkg.version_compare)
        plan, stale = exactly(only_matching(plan, only), module.params["exact"])
        if stale:
            module.fail_json(msg=stale, milepost_package_changes=[])
        argv = apt_command(plan, module.params["lock_timeout"])
    else:
        rc, out, err = host.run(dnf_list_command(scope, exclude), check=False)
        if rc not in (0, 100):
            module.fail_json(
                msg="dnf check-update failed (exit %d): %s"
                % (rc, (tail_lines(err or out, 1) or ["no output"])[0]),
                milepost_package_changes=[],
            )
        plan = plan_dnf(parse_dnf_check_update(out) if rc == 100 else [], before, exclude)
        plan, stale = exactly(only_matching(plan, only), module.params["exact"])
        if stale:
            module.fail_json(msg=stale, milepost_package_changes=[])
        argv = dnf_upgrade_command(plan, scope)

    result = {
        "package_manager": manager,
        "scope": scope,
        "planned_changes": plan,
        "milepost_package_changes": [],
    }
    failure = ""
    if plan and not module.check_mode:
        rc, out, err = host.run(argv, check=False)
        after = host.installed()
        result["milepost_package_changes"] = diff_installed(before, after)
        if rc != 0:
            text = out + "\n" + err
            failed = DPKG_ERROR_RE.findall(text) + DNF_ERROR_RE.findall(text)
            tail = tail_lines(text, module.params["error_lines"])
            reason = [line for line in tail if "error" in line.lower()] or tail or ["no output"]
            failure = "%s failed (exit %d) after %d package changes: %s" % (
                argv[0],
                rc,
                len(result["milepost_package_changes"]),
                reason[0],
            )
            result.update(
                rc=rc,
                failed_packages=sorted(set(name.split(":")[0] for name in failed)),
                error_lines=tail,
            )
    reboot, reboot_packages = host.reboot_required()
    services, loose = host.restart_needs()
    result.update(
        changed=bool(plan),
        reboot_required=reboot,
        services_to_restart=services,
        processes_to_restart=loose,
        services_restarted=[],
    )
    if reboot:
        result["milepost_reboot_required"] = {"packages": reboot_packages}
    if module.check_mode:
        module.exit_json(**result)
    if not failure and module.params["restart_services"]:
        wanted = [name for name in services if name not in module.params["restart_exclude"]]
        restart_failed = restart(module, wanted)
        result["services_restarted"] = [name for name in wanted if name not in restart_failed]
        failure = "; ".join(restart_failed.values())
    changes = result["milepost_package_changes"]
    if module.params["health_gate"] and (changes or failure):
        if manager != "apt":
            module.fail_json(msg="health_gate needs APT to roll back; " + (failure or "set it off"))
        now = host.installed()
        checked = [n for n in sorted(now) if excluded(n, module.params["health_packages"])]
        report, rolled = gate(
            module,
            changes,
            dict((c["package"], c["from_version"]) for c in changes),
            checked,
            module.params["health_command_dir"],
            module.params["health_wait_seconds"],
            failure,
            lambda names: dict((n, host.installed().get(n)) for n in names),
            module.params["lock_timeout"],
        )
        result["milepost_health_gate"] = report
        result["milepost_package_changes"] = changes + rolled
        if report["result"] != "passed":
            failure = message(report)
    if failure:
        module.fail_json(msg=failure, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
