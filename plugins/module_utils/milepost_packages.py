# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Package records shared by the modules that read dpkg and the APT cache: Debian version
comparison, the report of named packages, the upgrade plan of the operating system.

Pure functions, and readers that take an open python3-apt cache, so that the probe of a
host (milepost_probe) and the modules that change it (milepost_os_patch,
milepost_package_versions) decide from one rule.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import os
import re

GLOB_CHARACTERS = frozenset("*?[")
SECURITY_SUITE_RE = re.compile(r"-security$")
#: What says when APT last refreshed its cache: its stamp, else its lists directory.
UPDATE_STAMP = "/var/lib/apt/periodic/update-success-stamp"
LISTS_DIR = "/var/lib/apt/lists"
#: dpkg-query -W -f: each package's status abbreviation, name and version.
STATUS_FORMAT = "${db:Status-Abbrev}\t${Package}\t${Version}\n"


def is_glob(pattern):
    """Return True when pattern uses fnmatch wildcards."""
    return any(char in GLOB_CHARACTERS for char in pattern)


def match_names(patterns, known_names):
    """Return (sorted matching names, unmatched patterns).

    Plain names match only themselves; globs are matched with fnmatchcase.
    """
    known = sorted(set(known_names))
    known_set = set(known)
    matched = set()
    unmatched = []
    for pattern in patterns:
        if is_glob(pattern):
            hits = [name for name in known if fnmatch.fnmatchcase(name, pattern)]
        else:
            hits = [pattern] if pattern in known_set else []
        if hits:
            matched.update(hits)
        elif pattern not in unmatched:
            unmatched.append(pattern)
    return sorted(matched), unmatched


def _order(char):
    """Weight of one character in the non-digit part of a Debian version."""
    if char == "~":
        return -1
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _verrevcmp(left, right):
    """Compare two upstream-version or revision strings the way dpkg does."""
    i = j = 0
    while i < len(left) or j < len(right):
        first_diff = 0
        while (i < len(left) and not left[i].isdigit()) or (
            j < len(right) and not right[j].isdigit()
        ):
            left_order = _order(left[i]) if i < len(left) else 0
            right_order = _order(right[j]) if j < len(right) else 0
            if left_order != right_order:
                return left_order - right_order
            i += 1
            j += 1
        while i < len(left) and left[i] == "0":
            i += 1
        while j < len(right) and right[j] == "0":
            j += 1
        while i < len(left) and left[i].isdigit() and j < len(right) and right[j].isdigit():
            if not first_diff:
                first_diff = ord(left[i]) - ord(right[j])
            i += 1
            j += 1
        if i < len(left) and left[i].isdigit():
            return 1
        if j < len(right) and right[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_version(version):
    """Split a Debian version into (epoch, upstream, revision)."""
    epoch = 0
    rest = version
    if ":" in version:
        head, rest = version.split(":", 1)
        # isascii: str.isdigit() also accepts digits int() cannot read ("\u00b2"); an
        # epoch longer than 18 digits is not one dpkg would take.
        epoch = int(head) if head.isascii() and head.isdigit() and len(head) <= 18 else 0
    if "-" in rest:
        upstream, revision = rest.rsplit("-", 1)
    else:
        upstream, revision = rest, ""
    return epoch, upstream, revision


def dpkg_version_compare(left, right):
    """Compare two Debian versions: negative, zero or positive like apt_pkg.version_compare."""
    left_epoch, left_upstream, left_revision = _split_version(left)
    right_epoch, right_upstream, right_revision = _split_version(right)
    if left_epoch != right_epoch:
        return left_epoch - right_epoch
    result = _verrevcmp(left_upstream, right_upstream)
    if result:
        return result
    return _verrevcmp(left_revision, right_revision)


def sort_versions(versions, compare):
    """Return versions without duplicates, newest first, using compare(a, b)."""
    unique = []
    for version in versions:
        if version and version not in unique:
            unique.append(version)
    # Insertion sort: the lists are short and compare is not a key function.
    ordered = []
    for version in unique:
        position = 0
        while position < len(ordered) and compare(ordered[position], version) >= 0:
            position += 1
        ordered.insert(position, version)
    return ordered


def package_entry(installed, candidate, versions, compare):
    """Build the report entry of one package."""
    outdated = bool(
        installed is not None and candidate is not None and compare(candidate, installed) > 0
    )
    return {
        "installed": installed,
        "candidate": candidate,
        "versions": sort_versions(versions, compare),
        "outdated": outdated,
    }


def build_report(patterns, records, compare):
    """Build the module result from plain package records.

    records maps a package name to a dict with keys installed, candidate and versions
    (strings, None for missing). Returns (packages, unmatched).
    """
    names, unmatched = match_names(patterns, records.keys())
    packages = {}
    for name in names:
        record = records[name]
        packages[name] = package_entry(
            record.get("installed"),
            record.get("candidate"),
            record.get("versions") or [],
            compare,
        )
    return packages, unmatched


def read_apt_records(cache, patterns):
    """Return {name: {installed, candidate, versions}} for the packages patterns can match."""
    if any(is_glob(pattern) for pattern in patterns):
        names = list(cache.keys())
    else:
        names = [pattern for pattern in patterns if pattern in cache]
    records = {}
    for name in names:
        package = cache[name]
        versions = [version.version for version in package.versions]
        if not versions:
            continue
        installed = package.installed
        candidate = package.candidate
        records[name] = {
            "installed": installed.version if installed is not None else None,
            "candidate": candidate.version if candidate is not None else None,
            "versions": versions,
        }
    return records


def is_security_origin(origin):
    """Whether an APT origin ({archive, codename, label}) is a security source."""
    for field in ("archive", "codename"):
        if SECURITY_SUITE_RE.search(origin.get(field) or ""):
            return True
    return (origin.get("label") or "").lower().endswith("security")


def excluded(name, patterns):
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def only_matching(plan, patterns):
    """The entries of an upgrade plan whose package matches one of ``patterns`` (all of
    them when there is none)."""
    if not patterns:
        return list(plan)
    return [item for item in plan if excluded(item["package"], patterns)]


def exactly(plan, versions):
    """The entries of an upgrade plan that an approved change plan names, at the versions
    it names ({package: version}; None: no change plan, the plan as it is). Returns (plan,
    problem): problem is one line when the host would now install a named package at
    another version, or not at all (the change plan is stale), else None."""
    if versions is None:
        return list(plan), None
    found = dict((item["package"], item) for item in plan)
    for package in sorted(versions):
        item = found.get(package)
        if item is None or item["to_version"] != versions[package]:
            now = item["to_version"] if item else "nothing"
            return [], (
                "the approved change plan installs %s %s, but this host would now install %s:"
                " the plan is stale, make a new one" % (package, versions[package], now)
            )
    return [item for item in plan if item["package"] in versions], None


def select_upgrades(records, scope, exclude, compare):
    """Plan the upgrades: [{package, from_version, to_version, security}] sorted by name.

    records: {name: {installed, candidate, held, versions: [{version, security}]}} for the
    installed packages. With scope all the target is APT's candidate (it honours pinning);
    with scope security, the newest security version newer than the installed one.
    """
    plan = []
    for name in sorted(records):
        record = records[name]
        installed = record.get("installed")
        if installed is None or record.get("held") or excluded(name, exclude):
            continue
        newer = [v for v in record.get("versions") or [] if compare(v["version"], installed) > 0]
        if scope == "security":
            newer = [v for v in newer if v.get("security")]
            target = None
            for version in newer:
                if target is None or compare(version["version"], target["version"]) > 0:
                    target = version
        else:
            candidate = record.get("candidate")
            target = next((v for v in newer if v["version"] == candidate), None)
        if target is not None:
            plan.append(
                {
                    "package": name,
                    "from_version": installed,
                    "to_version": target["version"],
                    "security": bool(target.get("security")),
                }
            )
    return plan


def parse_dpkg_query(text):
    """{name: version} of fully installed packages from
    dpkg-query -W -f '${Package}\\t${Version}\\t${db:Status-Status}\\n'."""
    versions = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2] == "installed":
            versions[parts[0]] = parts[1]
    return versions


def upgrade_records(cache, apt_pkg, compare):
    """{name: {installed, candidate, held, versions: [{version, security}]}} of the installed
    packages of an open python3-apt cache; only versions newer than the installed one from a
    trusted origin are listed."""
    records = {}
    for package in cache:
        installed = package.installed
        if installed is None:
            continue
        versions = []
        for version in package.versions:
            if compare(version.version, installed.version) <= 0:
                continue
            origins = [
                {"archive": o.archive, "codename": o.codename, "label": o.label}
                for o in version.origins
                if o.trusted
            ]
            if not origins:
                continue  # never install from an untrusted source
            versions.append(
                {"version": version.version, "security": any(map(is_security_origin, origins))}
            )
        candidate = package.candidate
        records[package.name] = {
            "installed": installed.version,
            "candidate": candidate.version if candidate is not None else None,
            "held": package._pkg.selected_state == apt_pkg.SELSTATE_HOLD,  # noqa: SLF001
            "versions": versions,
        }
    return records


def parse_status(text):
    """{name: (abbrev, version)} from
    dpkg-query -W -f STATUS_FORMAT."""
    found = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1]:
            found[parts[1]] = (parts[0].strip(), parts[2])
    return found


def half_installed(status):
    """Names dpkg left half-installed or needing a reinstall (abbrev .H. or ..R)."""
    return sorted(
        name
        for name, (abbrev, _) in status.items()
        if len(abbrev) >= 2 and (abbrev[1] == "H" or abbrev[2:3] == "R")
    )


def lock_holders(lslocks_text, paths):
    """'COMMAND (pid PID, PATH)' of every process holding one of paths, from
    lslocks --noheadings --raw --output PID,COMMAND,PATH."""
    wanted = set(paths)
    holders = []
    for line in lslocks_text.splitlines():
        fields = line.split(None, 2)
        if len(fields) == 3 and fields[2] in wanted:
            text = "%s (pid %s, %s)" % (fields[1], fields[0], fields[2])
            if text not in holders:
                holders.append(text)
    return sorted(holders)


def cache_refreshed_at(stamp=UPDATE_STAMP, lists=LISTS_DIR):
    """When APT last refreshed its cache (a file time), or None when it never has: the
    mtime of APT's update-success-stamp, else of its lists directory."""
    for path in (stamp, lists):
        try:
            return os.stat(path).st_mtime
        except OSError:
            continue
    return None


def cache_age(now, stamp=UPDATE_STAMP, lists=LISTS_DIR):
    """Seconds since APT last refreshed its cache, or None when it never has."""
    refreshed = cache_refreshed_at(stamp, lists)
    return None if refreshed is None else max(0, int(now - refreshed))


def mark_refreshed(stamp=UPDATE_STAMP, lists=LISTS_DIR):
    """After a successful apt-get update: set the time cache_refreshed_at reads to now
    (apt leaves the lists directory untouched when no list changed)."""
    for path in (stamp, lists):
        if os.path.exists(path):
            os.utime(path, None)
            return
