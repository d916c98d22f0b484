#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: milepost_host_lock
short_description: Take or release the per-host maintenance lock of a Milepost run
version_added: "0.1.0"
description:
  - Keeps two maintenance runs off the same host. The lock is a small JSON file on the
    managed host (O(path)) holding C(run_id), C(controller), C(pid), C(acquired_at) and
    C(expires_at) (UTC, ISO 8601).
  - O(state=present) acquires the lock. The file is created atomically (written to a
    temporary file, then hard-linked into place, which fails when the lock exists), so
    a reader never sees a half-written lock. When this run already holds it nothing
    changes. When another run holds it the module fails with one line naming that run
    and since when. When the holder is stale it is taken over and the old holder is
    returned in RV(recovered_from).
  - A holder is stale when its C(expires_at) has passed (C(acquired_at) plus
    O(ttl_minutes) of the run that took it), when its run id is listed in
    O(stale_run_ids) (runs the maintenance ledger knows have ended), or when the lock
    file cannot be read as a lock (empty or corrupt).
  - O(state=absent) releases the lock only when O(run_id) holds it; a lock held by
    another run is left alone with a warning.
  - With O(repair_dpkg=true) (and O(state=present)), once the lock is held the module
    makes dpkg ready for the run, in the same module run. It waits up to
    O(dpkg_lock_timeout) seconds for the dpkg locks (O(dpkg_lock_paths)) to be free
    (failing with the holders named), and when C(dpkg --audit) reports an interrupted
    run it repairs it - C(dpkg --configure -a); the packages a killed dpkg left
    half-installed are installed again from the archive apt had downloaded (the newest
    in its cache), else by apt from their source; C(dpkg --configure -a) once more; a
    second C(dpkg --audit) must then be clean. Returns RV(dpkg_repaired) and
    RV(dpkg_audit). In check mode nothing is repaired.
  - The controller half (the action plugin of the same name) fills O(controller), O(pid)
    and O(stale_run_ids) from the run, and refuses an O(path) other than the default
    unless the host's C(milepost_environment) is C(lab) (safety invariant 4).
  - Self-contained; runs on the managed host with its system Python.
options:
  run_id:
    description: The id of this maintenance run (the ledger's run id).
    type: str
    required: true
  state:
    description: V(present) acquires the lock, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  path:
    description: The lock file. Its directory is created (mode 0755) when missing.
    type: path
    default: /var/lib/milepost/maintenance.lock
  controller:
    description: The controller (host name) running the maintenance; recorded in the lock.
    type: str
    default: ""
  pid:
    description: The process id of the run on the controller; recorded in the lock.
    type: int
  ttl_minutes:
    description:
      - How long a new lock is valid; after C(acquired_at) plus this it is stale.
      - From 1 to 527040 (a year).
    type: int
    default: 240
  stale_run_ids:
    description: Run ids known to have ended; a lock held by one of them is stale.
    type: list
    elements: str
    default: []
  repair_dpkg:
    description: Once the lock is held, wait for the dpkg locks and repair an interrupted dpkg run.
    type: bool
    default: false
  dpkg_lock_paths:
    description: Lock files of dpkg and its front ends that must be free.
    type: list
    elements: path
    default: [/var/lib/dpkg/lock-frontend, /var/lib/dpkg/lock]
  dpkg_lock_timeout:
    description: Seconds to wait for a held dpkg lock before failing with the holder named.
    type: int
    default: 120
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
    details: Reports what would happen (acquire, recover, refuse, release) and changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - In check mode a lock held by another live run still fails, as the real run would.
seealso:
  - module: milepost_window_check
"""

EXAMPLES = r"""
- name: PATCH | Take the maintenance lock of this host and repair an interrupted dpkg
  milepost_host_lock:
    run_id: "{{ preflight_run_id }}"
    ttl_minutes: 240
    repair_dpkg: true
  register: __preflight_lock

- name: PATCH | Release the maintenance lock of this host
  milepost_host_lock:
    run_id: "{{ preflight_run_id }}"
    state: absent
"""

RETURN = r"""
action:
  description:
    - What the module did (or would do in check mode) -
      V(acquired), V(held) (this run already held it), V(recovered) (took over a stale
      lock), V(refused), V(released), V(absent) (no lock to release),
      V(not_ours) (held by another run; left alone).
  returned: always
  type: str
  sample: acquired
lock:
  description:
    - The lock as it is after the module ran (or would be in check mode); V(null) when none.
  returned: always
  type: dict
  sample:
    run_id: 20250601T010000-4f2a
    controller: ops-01
    pid: 4242
    acquired_at: "2025-06-01T08:00:05Z"
    expires_at: "2025-06-01T12:00:05Z"
milepost_overrides:
  description:
    - The lock taken over, for the ledger (a C(safety_override) record) - C(override)
      is V(lock_takeover), with C(from_run) and C(reason).
  returned: when action is recovered
  type: list
  elements: dict
recovered_from:
  description: The stale holder that was taken over, and why it was stale.
  returned: when action is recovered
  type: dict
  sample:
    run_id: 20250525T010000-9c1d
    acquired_at: "2025-05-25T08:00:03Z"
    stale_because: expired at 2025-05-25T12:00:03Z
held_by:
  description: The lock of the other run, when it refused or was left alone.
  returned: when action is refused or not_ours
  type: dict
path:
  description: The lock file.
  returned: always
  type: str
  sample: /var/lib/milepost/maintenance.lock
dpkg_audit:
  description: The lines of C(dpkg --audit) before any repair.
  returned: with repair_dpkg
  type: list
  elements: str
dpkg_repaired:
  description: Whether an interrupted dpkg run was repaired.
  returned: with repair_dpkg
  type: bool
"""

import errno  # noqa: E402 - Ansible modules put the docs first
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.milepost_packages import (  # noqa: E402
    STATUS_FORMAT,
    half_installed,
    lock_holders,
    parse_status,
)

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# A lock outliving its run by more than a year is a typo (and a ttl past the year 9999
# cannot be written at all).
MAX_TTL_MINUTES = 366 * 24 * 60


class LockRefused(Exception):
    """Another live run holds the lock."""

    def __init__(self, message, holder):
        super(LockRefused, self).__init__(message)
        self.holder = holder


# ---------------------------------------------------------------------------
# Pure logic (unit tested in a temporary directory)
# ---------------------------------------------------------------------------


def format_time(moment):
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def parse_time(text):
    """Parse a lock timestamp; None when missing or malformed."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def new_lock(run_id, controller, pid, now, ttl_minutes):
    return {
        "run_id": run_id,
        "controller": controller,
        "pid": pid,
        "acquired_at": format_time(now),
        "expires_at": format_time(now + timedelta(minutes=ttl_minutes)),
    }


def read_lock(path):
    """Return (lock dict or None when there is no file, raw text).

    A file that is not a JSON object with a run_id is returned as {"corrupt": text}.
    """
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None, None
        raise
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not data.get("run_id"):
        return {"corrupt": text[:200]}, text
    return data, text


def stale_reason(holder, now, stale_run_ids):
    """Why holder is stale, or None when it is live."""
    if "corrupt" in holder:
        return "the lock file is not a valid lock"
    if holder.get("run_id") in stale_run_ids:
        return "run %s has ended (per the ledger)" % holder.get("run_id")
    expires = parse_time(holder.get("expires_at"))
    if expires is None:
        return "the lock has no valid expires_at"
    if expires <= now:
        return "expired at %s" % holder.get("expires_at")
    return None


def refusal_message(holder, path):
    return (
        "host is locked by maintenance run %s (controller %s, pid %s) since %s, until %s "
        "(%s); wait for that run to finish, or end it and pass its run id in stale_run_ids"
        % (
            holder.get("run_id"),
            holder.get("controller") or "unknown",
            holder.get("pid") if holder.get("pid") is not None else "unknown",
            holder.get("acquired_at") or "unknown",
            holder.get("expires_at") or "unknown",
            path,
        )
    )


def _write_exclusive(path, lock):
    """Create path holding lock, atomically; False when path already exists."""
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".maintenance-lock-", dir=directory)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(lock, stream, sort_keys=True)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        try:
            os.link(temporary, path)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                return False
            raise
        return True
    finally:
        os.unlink(temporary)


def acquire(path, run_id, controller, pid, now, ttl_minutes, stale_run_ids, check_mode):
    """Acquire the lock; return a result dict. Raises LockRefused."""
    stale_ids = set(stale_run_ids or [])
    for _attempt in range(3):
        holder, text = read_lock(path)
        if holder is not None and holder.get("run_id") == run_id:
            return {"changed": False, "action": "held", "lock": holder}
        recovered = None
        if holder is not None:
            why = stale_reason(holder, now, stale_ids)
            if why is None:
                raise LockRefused(refusal_message(holder, path), holder)
            recovered = dict(holder, stale_because=why)
        lock = new_lock(run_id, controller, pid, now, ttl_minutes)
        result = {"changed": True, "action": "recovered" if recovered else "acquired", "lock": lock}
        if recovered:
            result["recovered_from"] = recovered
            # A lock taken over is an override: the callback records it (docs/SAFETY.md).
            result["milepost_overrides"] = [
                {
                    "override": "lock_takeover",
                    "from_run": recovered.get("run_id"),
                    "reason": why,
                }
            ]
        if check_mode:
            return result
        directory = os.path.dirname(path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        if holder is not None:
            # Remove the stale lock only if it is still the one judged stale.
            _current, current_text = read_lock(path)
            if current_text != text:
                continue
            try:
                os.unlink(path)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        if _write_exclusive(path, lock):
            return result
        # Another run created the lock between the read and the link: judge it again.
    holder, _text = read_lock(path)
    raise LockRefused(refusal_message(holder or {}, path), holder)


def release(path, run_id, check_mode):
    """Release the lock when run_id holds it; return a result dict."""
    holder, _text = read_lock(path)
    if holder is None:
        return {"changed": False, "action": "absent", "lock": None}
    if holder.get("run_id") != run_id:
        return {"changed": False, "action": "not_ours", "lock": holder, "held_by": holder}
    if not check_mode:
        try:
            os.unlink(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
    return {"changed": True, "action": "released", "lock": None}


# ---------------------------------------------------------------------------
# dpkg readiness (repair_dpkg)
# ---------------------------------------------------------------------------


def newest_archive(directory, package):
    """The newest downloaded .deb of package in apt's archive directory, or None."""
    try:
        found = [
            os.path.join(directory, name)
            for name in os.listdir(directory)
            if name.startswith(package + "_") and name.endswith(".deb")
        ]
    except OSError:
        return None
    return max(found, key=os.path.getmtime) if found else None


class Dpkg:
    """The dpkg commands of the repair, run through the module (no shell)."""

    ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    KEEP_CONFIG = ["--force-confdef", "--force-confold"]

    def __init__(self, module):
        self.module = module

    def run(self, argv):
        return self.module.run_command(argv, environ_update=self.ENV, expand_user_and_vars=False)

    def wait_for_locks(self, paths, timeout):
        deadline = time.time() + timeout
        while True:
            rc, out, _ = self.run(
                ["lslocks", "--noheadings", "--raw", "--output", "PID,COMMAND,PATH"]
            )
            holders = lock_holders(out, paths) if rc == 0 else []
            if not holders or time.time() >= deadline:
                return holders
            time.sleep(2)

    def audit(self):
        rc, out, err = self.run(["dpkg", "--audit"])
        if rc not in (0, 1):
            self.module.fail_json(msg="dpkg --audit failed (exit %d): %s" % (rc, err.strip()[:200]))
        return [line for line in out.splitlines() if line.strip()]

    def repair(self):
        """Repair an interrupted run; returns the audit lines that remain.

        Packages a killed dpkg left half-installed are installed again together, from the
        .debs still in APT's cache (apt refuses to touch a half-installed package without
        an archive of its own) or else by apt: they often depend on each other (a library
        and its -minimal half). Then apt fetches what dpkg could not configure them
        without (a dependency the interrupted run had not unpacked yet)."""
        rc, _, _ = self.run(["dpkg", "--configure", "-a"])
        first_failed = rc != 0
        left = self.half_installed()
        if left:
            debs = dict(
                (package, newest_archive("/var/cache/apt/archives", package)) for package in left
            )
            local = [deb for deb in debs.values() if deb]
            if local:
                self.run(["dpkg"] + self.KEEP_CONFIG + ["--install"] + local)
            missing = [package for package, deb in debs.items() if not deb]
            apt = ["apt-get", "install", "--yes", "--quiet"]
            apt += [
                "-o",
                "Dpkg::Options::=--force-confdef",
                "-o",
                "Dpkg::Options::=--force-confold",
            ]
            if missing:
                self.run(apt[:2] + ["--reinstall"] + apt[2:] + missing)
            rc, out, err = self.run(apt[:2] + ["--fix-broken"] + apt[2:])
            still = self.half_installed()
            if still:
                self.module.fail_json(
                    msg="could not finish installing %s, which an interrupted dpkg left"
                    " half-installed (exit %d): %s"
                    % (
                        ", ".join(still),
                        rc,
                        ((err or out).strip().splitlines() or ["no output"])[-1],
                    )
                )
        if first_failed or left:
            self.run(["dpkg", "--configure", "-a"])
        return self.audit()

    def half_installed(self):
        _, status, _ = self.run(["dpkg-query", "-W", "-f", STATUS_FORMAT])
        return half_installed(parse_status(status))


def main():
    module = AnsibleModule(
        argument_spec={
            "run_id": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "path": {"type": "path", "default": "/var/lib/milepost/maintenance.lock"},
            "controller": {"type": "str", "default": ""},
            "pid": {"type": "int"},
            "ttl_minutes": {"type": "int", "default": 240},
            "stale_run_ids": {"type": "list", "elements": "str", "default": []},
            "repair_dpkg": {"type": "bool", "default": False},
            "dpkg_lock_paths": {
                "type": "list",
                "elements": "path",
                "default": ["/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"],
            },
            "dpkg_lock_timeout": {"type": "int", "default": 120},
        },
        supports_check_mode=True,
    )
    params = module.params
    run_id = (params["run_id"] or "").strip()
    if not run_id:
        module.fail_json(msg="run_id must not be empty")
    if not 1 <= params["ttl_minutes"] <= MAX_TTL_MINUTES:
        module.fail_json(
            msg="ttl_minutes must be from 1 to %d (a year), got %d"
            % (MAX_TTL_MINUTES, params["ttl_minutes"])
        )
    path = params["path"]

    try:
        if params["state"] == "present":
            result = acquire(
                path,
                run_id,
                params["controller"],
                params["pid"],
                datetime.now(timezone.utc),
                params["ttl_minutes"],
                params["stale_run_ids"],
                module.check_mode,
            )
        else:
            result = release(path, run_id, module.check_mode)
    except LockRefused as exc:
        module.fail_json(msg=str(exc), action="refused", held_by=exc.holder, path=path)
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot use the lock file %s: %s" % (path, exc), path=path)

    if result["action"] == "recovered":
        # Shown on the run's output (and recorded: milepost_overrides, safety_override).
        module.warn(
            "took over the maintenance lock of run %s (%s)"
            % (
                result["recovered_from"].get("run_id", "?"),
                result["recovered_from"].get("stale_because", "stale"),
            )
        )
    if result["action"] == "not_ours":
        module.warn(
            "maintenance lock %s is held by run %s, not %s; left alone"
            % (path, result["held_by"].get("run_id"), run_id)
        )
    result["path"] = path
    if params["repair_dpkg"] and params["state"] == "present":
        result.update(dpkg_ready(module, params))
    module.exit_json(**result)


def dpkg_ready(module, params):
    """Wait for the dpkg locks, then repair an interrupted run (not in check mode)."""
    dpkg = Dpkg(module)
    holders = dpkg.wait_for_locks(params["dpkg_lock_paths"], max(0, params["dpkg_lock_timeout"]))
    if holders:
        module.fail_json(
            msg="dpkg is locked after waiting %d s, held by %s; let it finish (or stop it)"
            " and run again" % (params["dpkg_lock_timeout"], "; ".join(holders)),
            dpkg_lock_holders=holders,
        )
    audit = dpkg.audit()
    done = {"dpkg_audit": audit, "dpkg_repaired": False}
    if not audit or module.check_mode:
        return done
    remaining = dpkg.repair()
    if remaining:
        module.fail_json(
            msg="dpkg still reports broken packages after the repair: %s"
            % " ".join(remaining)[:300],
            dpkg_audit=audit,
        )
    done.update(dpkg_repaired=True, changed=True)
    return done


if __name__ == "__main__":
    main()
