#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: milepost_apt_source
short_description: Configure one signed APT source and refresh the APT cache, in one module run
version_added: "0.3.0"
description:
  - Writes C(/etc/apt/sources.list.d/NAME.sources), a deb822 source whose repository key
    is embedded as C(Signed-By), so APT trusts that key for this source only (never
    C(apt-key), never C(/etc/apt/trusted.gpg.d)). The file is written exactly as
    M(ansible.builtin.deb822_repository) writes it, atomically, mode 0644, and only when
    its content differs.
  - Then refreshes the APT cache (C(apt-get update)) at once when the source changed or
    the cache lacks a package list of this source (a run stopped between writing the
    source and refreshing, lists removed), otherwise only when the cache is older than
    O(cache_valid_time) seconds (the age of APT's C(update-success-stamp), else of its
    lists directory, which the module sets to the time of each refresh it makes).
  - O(signing_key) must be the ASCII-armored public key block itself; O(uris) at least one
    URI; names, suites and components plain words. Any problem fails with one message
    and the host untouched.
  - One module run does what a deb822_repository task and an apt C(update_cache) task
    did; the maintenance cycle pays for one.
options:
  name:
    description: Name of the source; the file is C(/etc/apt/sources.list.d/NAME.sources).
    type: str
    required: true
  uris:
    description: Base URIs of the repository.
    type: list
    elements: str
    required: true
  suites:
    description: Suites (distribution codenames).
    type: list
    elements: str
    default: [bookworm]
  components:
    description: Repository components.
    type: list
    elements: str
    default: [main]
  signing_key:
    description: The ASCII-armored public key block the repository is signed with.
    type: str
    required: true
  cache_valid_time:
    description: Seconds an APT cache refresh stays valid when the source did not change.
    type: int
    default: 3600
  lock_timeout:
    description: Seconds C(apt-get update) waits for the APT lists lock held by another process.
    type: int
    default: 120
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
    details: Reports whether the file would change (with its diff) and refreshes nothing.
  diff_mode:
    support: full
  platform:
    platforms: debian
seealso:
  - module: ansible.builtin.deb822_repository
  - module: milepost_apt_pin
"""

EXAMPLES = r"""
- name: PATCH | Configure the RUC APT source and refresh the cache when needed
  milepost_apt_source:
    name: milepost-ruc
    uris: ["https://apt.ruc.example.gov/"]
    suites: [bookworm]
    components: [main]
    signing_key: "{{ ruc_apt_source_signing_key }}"
    cache_valid_time: 3600
  register: ruc_apt_source_result
"""

RETURN = r"""
dest:
  description: The source file.
  returned: always
  type: str
  sample: /etc/apt/sources.list.d/milepost-ruc.sources
source_changed:
  description: Whether the source file was (in check mode, would be) written.
  returned: always
  type: bool
cache_updated:
  description: Whether the APT cache was refreshed by this run (never in check mode).
  returned: always
  type: bool
cache_age:
  description: Seconds since the APT cache was last refreshed, before this run; null when unknown.
  returned: always
  type: int
lists_missing:
  description:
    - The package lists of this source that the cache lacked (they force a refresh), when
      the source did not change.
  returned: when not in check mode
  type: list
  elements: str
"""

import os  # noqa: E402 - Ansible modules put the docs first
import re  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.milepost_packages import cache_age, mark_refreshed  # noqa: E402

SOURCES_DIR = "/etc/apt/sources.list.d"
WORD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]*$")
URI_RE = re.compile(r"^[a-z][a-z0-9+.-]*://[^\s]+$")
KEY_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
KEY_END = "-----END PGP PUBLIC KEY BLOCK-----"


def slug(name):
    """The file name deb822_repository derives from a source name."""
    return re.sub(r"[^a-z0-9-]+", "", re.sub(r"[_\s]+", "-", name.lower()))


def problems(params):
    """Every problem of the arguments, one phrase each (empty when they are good)."""
    found = []
    if not slug(params["name"] or ""):
        found.append("name must hold letters or digits")
    if not params["uris"]:
        found.append("uris must name at least one URI")
    found.extend("uri %r is not a URI" % uri for uri in params["uris"] if not URI_RE.match(uri))
    for field in ("suites", "components"):
        if not params[field]:
            found.append("%s must not be empty" % field)
        found.extend(
            "%s entry %r is not a plain word" % (field, v)
            for v in params[field]
            if not WORD_RE.match(v)
        )
    key = params["signing_key"] or ""
    if KEY_BEGIN not in key or KEY_END not in key:
        found.append(
            "signing_key must hold the ASCII-armored public key text"
            " (not a URL, a path or a fingerprint)"
        )
    return found


def _multiline(text):
    return "\n" + textwrap.indent(
        "\n".join(line.strip() or "." for line in text.strip().splitlines()), "    "
    )


def render(params):
    """The .sources text, field for field as deb822_repository writes it."""
    fields = [
        ("Components", " ".join(params["components"])),
        ("Enabled", "yes"),
        ("X-Repolib-Name", params["name"]),
        ("Signed-By", _multiline(params["signing_key"])),
        ("Suites", " ".join(params["suites"])),
        ("Types", "deb"),
        ("URIs", " ".join(params["uris"])),
    ]
    # As python-debian's Deb822.dump: no space after the colon of a value on its own lines.
    return "".join(
        ("%s:%s\n" if value.startswith("\n") else "%s: %s\n") % (key, value)
        for key, value in fields
    )


def needs_refresh(source_changed, age, valid_time, lists_missing=False):
    return source_changed or lists_missing or age is None or age > valid_time


INDEX_FORMAT = "$(SOURCESENTRY)\t$(FILENAME)"


def missing_lists(indextargets_text, dest, exists=os.path.exists):
    """The package lists of the source file dest that APT's cache does not hold, from
    apt-get indextargets --no-release-info --format INDEX_FORMAT of its required
    Packages targets (a list may be kept compressed: FILENAME plus a suffix)."""
    missing = []
    for line in indextargets_text.splitlines():
        entry, _, filename = line.partition("\t")
        if not entry.startswith(dest + ":") or not filename:
            continue
        folder, base = os.path.split(filename)
        try:
            names = os.listdir(folder) if exists(folder) else []
        except OSError:
            names = []
        if not any(name == base or name.startswith(base + ".") for name in names):
            missing.append(filename)
    return missing


def _read(path):
    try:
        with open(path, "r") as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _write(module, path, text):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".milepost-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    module.atomic_move(tmp, path)


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "uris": {"type": "list", "elements": "str", "required": True},
            "suites": {"type": "list", "elements": "str", "default": ["bookworm"]},
            "components": {"type": "list", "elements": "str", "default": ["main"]},
            "signing_key": {"type": "str", "required": True, "no_log": False},
            "cache_valid_time": {"type": "int", "default": 3600},
            "lock_timeout": {"type": "int", "default": 120},
        },
        supports_check_mode=True,
    )
    params = module.params
    found = problems(params)
    if found:
        module.fail_json(msg="milepost_apt_source: " + "; ".join(found))

    dest = os.path.join(SOURCES_DIR, "%s.sources" % slug(params["name"]))
    wanted = render(params)
    current = _read(dest)
    source_changed = current != wanted
    age = cache_age(time.time())
    result = {
        "dest": dest,
        "source_changed": source_changed,
        "cache_updated": False,
        "cache_age": age,
        "changed": source_changed,
    }
    if module._diff and source_changed:
        result["diff"] = {
            "before": current or "",
            "after": wanted,
            "before_header": dest,
            "after_header": dest,
        }
    if module.check_mode:
        module.exit_json(**result)
    if source_changed:
        _write(module, dest, wanted)
    missing = []
    if not source_changed:
        rc, out, err = module.run_command(
            [
                "apt-get",
                "indextargets",
                "--no-release-info",
                "--format",
                INDEX_FORMAT,
                "Created-By: Packages",
                "Optional: no",
            ],
            environ_update={"LC_ALL": "C"},
            expand_user_and_vars=False,
        )
        if rc != 0:
            module.fail_json(msg="apt-get indextargets failed (exit %d): %s" % (rc, err.strip()))
        missing = missing_lists(out, dest)
    result["lists_missing"] = missing
    if needs_refresh(source_changed, age, params["cache_valid_time"], bool(missing)):
        rc, out, err = module.run_command(
            [
                "apt-get",
                "update",
                "--quiet",
                "-o",
                "DPkg::Lock::Timeout=%d" % params["lock_timeout"],
            ],
            environ_update={"LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"},
            expand_user_and_vars=False,
        )
        lines = [line for line in (err or out).splitlines() if line.strip()]
        if rc != 0 or any(line.startswith(("E:", "W: GPG error")) for line in lines):
            module.fail_json(
                msg="apt-get update failed (exit %d): %s"
                % (rc, next((x for x in lines if x.startswith(("E:", "W:"))), "no output")),
                **result,
            )
        mark_refreshed()
        result["cache_updated"] = True
        result["changed"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
