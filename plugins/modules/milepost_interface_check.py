#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: milepost_interface_check
short_description: Check vendor HTTPS and SFTP interfaces from the controller
version_added: "0.1.0"
description:
  - Checks every vendor interface in O(interfaces) and reports one result per interface
    with a status of V(ok), V(warning) or V(failed) and one-line reasons.
  - B(HTTPS) interfaces get a C(GET) of their URL over TLS with certificate and host name
    verification (against O(interfaces[].ca_file) when given, the system CAs otherwise).
    The response must have a 2xx status; the latency, the days until the server
    certificate expires and, when O(interfaces[].expected_api_version) is set, the API
    version (the JSON field C(api_version) of the response body, or the C(X-API-Version)
    header) are compared with the thresholds.
  - B(SFTP) interfaces get an SSH login with paramiko, with key authentication only and
    the host key checked against O(interfaces[].known_hosts_file) (unknown host keys are
    rejected, never added). The module lists O(interfaces[].remote_dir), writes a canary
    file with random content there, reads it back, compares it and deletes it.
  - "Meant to run on the controller (C(delegate_to: localhost), C(run_once: true)): vendor
    interfaces are checked from the operations side, not from the managed hosts."
  - Bad input (an interface without a URL or host, an unknown kind, unknown keys,
    inconsistent thresholds) fails the module with a one-line message before any
    interface is contacted.
  - The module never reports C(changed) and never fails because an interface is down;
    the caller decides what a V(failed) interface means (the C(interface_check) role
    fails the play according to C(interface_check_fail_on)).
options:
  interfaces:
    description:
      - The interfaces to check. Each entry is a dict with the keys below.
      - "Common keys: C(name) (required, unique), C(vendor) (required), C(kind)
        (required, V(https) or V(sftp)), C(timeout) (seconds, default 10), and the
        per-interface threshold overrides C(latency_warn_ms), C(latency_fail_ms),
        C(cert_warn_days), C(cert_fail_days)."
      - "HTTPS keys: C(url) (required, C(https://...)), C(expected_api_version)
        (optional), C(ca_file) (optional PEM bundle to trust instead of the system CAs)."
      - "SFTP keys: C(host) (required), C(port) (default 22), C(username) (required),
        C(private_key_file) (required), C(known_hosts_file) (required),
        C(remote_dir) (required)."
    type: list
    elements: dict
    required: true
  latency_warn_ms:
    description: Default latency in milliseconds above which an interface is V(warning).
    type: int
    default: 500
  latency_fail_ms:
    description: Default latency in milliseconds above which an interface is V(failed).
    type: int
    default: 3000
  cert_warn_days:
    description:
      - Default number of days; an HTTPS certificate with fewer whole days left before it
        expires is V(warning).
    type: int
    default: 30
  cert_fail_days:
    description:
      - Default number of days; an HTTPS certificate with fewer whole days left before it
        expires is V(failed). An expired certificate always fails TLS verification.
    type: int
    default: 7
requirements:
  - paramiko on the controller for SFTP interfaces (in the Milepost virtualenv)
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
    details:
      - Probing changes nothing, so HTTPS interfaces are checked the same way in check
        mode. For SFTP interfaces, check mode only logs in and lists O(interfaces[].remote_dir);
        the canary file is not written, read or deleted.
  diff_mode:
    support: none
notes:
  - The module never reports C(changed).
  - HTTP redirects are not followed; a 3xx answer is a failure.
  - Environment proxies are not used; the module connects directly.
seealso:
  - module: ansible.builtin.uri
"""

EXAMPLES = r"""
- name: AUDIT | Check the vendor interfaces from the controller
  milepost_interface_check:
    interfaces:
      - name: payments-api
        vendor: harbor_payments
        kind: https
        url: https://payments.example.org/health
        expected_api_version: "2.1"
        ca_file: /etc/milepost/vendor-ca.pem
      - name: file-exchange
        vendor: relay_file_exchange
        kind: sftp
        host: sftp.example.org
        port: 22
        username: ruc-agency
        private_key_file: /etc/milepost/keys/relay_ed25519
        known_hosts_file: /etc/milepost/known_hosts
        remote_dir: /inbound
        latency_warn_ms: 1500
    cert_warn_days: 30
  delegate_to: localhost
  run_once: true
  register: __interface_check_results

- name: AUDIT | Show the failed interfaces
  ansible.builtin.debug:
    msg: "{{ __interface_check_results.interface_results | selectattr('status', 'equalto', 'failed')
             | map(attribute='name') | list }}"
"""

RETURN = r"""
interface_results:
  description: One result per interface, in the order of O(interfaces).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The interface name.
      type: str
      sample: payments-api
    vendor:
      description: The vendor that operates the interface.
      type: str
      sample: harbor_payments
    kind:
      description: V(https) or V(sftp).
      type: str
      sample: https
    target:
      description: The URL (HTTPS) or C(user@host:port:remote_dir) (SFTP) that was checked.
      type: str
      sample: https://payments.example.org/health
    status:
      description: V(ok), V(warning) or V(failed).
      type: str
      sample: warning
    latency_ms:
      description:
        - Milliseconds from connecting to the end of the check (HTTPS, the full request;
          SFTP, login, listing and canary), or V(null) when the connection failed.
      type: int
      sample: 42
    cert_days_left:
      description:
        - Whole days until the server certificate expires (HTTPS), V(null) for SFTP or
          when no certificate was obtained.
      type: int
      sample: 3
    api_version:
      description: The API version the endpoint reported (HTTPS), or V(null).
      type: str
      sample: "2.1"
    http_status:
      description: The HTTP status code (HTTPS), or V(null).
      type: int
      sample: 200
    canary:
      description:
        - SFTP only; V(verified) when the canary was written, read back identical and
          deleted, V(skipped) in check mode, V(null) when not reached or for HTTPS.
      type: str
      sample: verified
    messages:
      description: One-line reasons for a V(warning) or V(failed) status; empty when V(ok).
      type: list
      elements: str
      sample: ["certificate expires in 3 days (warning below 30 days)"]
milepost_interface_results:
  description: The same list as RV(interface_results), under the key the ledger records.
  returned: always
  type: list
  elements: dict
interface_summary:
  description: How many interfaces ended with each status.
  returned: always
  type: dict
  sample: {ok: 2, warning: 1, failed: 0}
"""

import http.client  # noqa: E402 - Ansible modules put the docs first
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

PARAMIKO_IMPORT_ERROR = None
try:
    import paramiko

    HAS_PARAMIKO = True
except ImportError:
    HAS_PARAMIKO = False
    PARAMIKO_IMPORT_ERROR = traceback.format_exc()

KINDS = ("https", "sftp")
THRESHOLD_KEYS = ("latency_warn_ms", "latency_fail_ms", "cert_warn_days", "cert_fail_days")
DEFAULT_THRESHOLDS = {
    "latency_warn_ms": 500,
    "latency_fail_ms": 3000,
    "cert_warn_days": 30,
    "cert_fail_days": 7,
}
DEFAULT_TIMEOUT = 10
COMMON_KEYS = frozenset(("name", "vendor", "kind", "timeout") + THRESHOLD_KEYS)
KIND_KEYS = {
    "https": {
        "required": ("url",),
        "optional": ("expected_api_version", "ca_file"),
    },
    "sftp": {
        "required": ("host", "username", "private_key_file", "known_hosts_file", "remote_dir"),
        "optional": ("port",),
    },
}
MAX_BODY_BYTES = 1024 * 1024
MAX_WORKERS = 8
USER_AGENT = "milepost-interface-check/1"


class InterfaceInputError(ValueError):
    """Bad module input; the message is one line a person can act on."""


# ---------------------------------------------------------------------------
# Validation (pure, unit tested)
# ---------------------------------------------------------------------------


def _as_int(value, what, minimum=0):
    """Return value as an int >= minimum or raise InterfaceInputError naming what."""
    if isinstance(value, bool):
        raise InterfaceInputError("%s must be a whole number, got %r" % (what, value))
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise InterfaceInputError("%s must be a whole number, got %r" % (what, value)) from None
    if number < minimum:
        raise InterfaceInputError("%s must be at least %d, got %d" % (what, minimum, number))
    return number


def _text(value):
    """Return value as a stripped string, or '' for None."""
    if value is None:
        return ""
    return str(value).strip()


def validate_thresholds(thresholds, where):
    """Check one set of thresholds; return it with int values."""
    checked = {}
    for key in THRESHOLD_KEYS:
        checked[key] = _as_int(thresholds[key], "%s: %s" % (where, key))
    if checked["latency_warn_ms"] > checked["latency_fail_ms"]:
        raise InterfaceInputError(
            "%s: latency_warn_ms (%d) must not be above latency_fail_ms (%d)"
            % (where, checked["latency_warn_ms"], checked["latency_fail_ms"])
        )
    if checked["cert_warn_days"] < checked["cert_fail_days"]:
        raise InterfaceInputError(
            "%s: cert_warn_days (%d) must not be below cert_fail_days (%d)"
            % (where, checked["cert_warn_days"], checked["cert_fail_days"])
        )
    return checked


def validate_interfaces(interfaces, defaults=None):
    """Validate and normalise the interfaces option.

    Returns a list of dicts with every key filled in (thresholds merged from defaults).
    Raises InterfaceInputError with a one-line message on the first problem.
    """
    base = dict(DEFAULT_THRESHOLDS)
    base.update({key: value for key, value in (defaults or {}).items() if value is not None})
    base = validate_thresholds(base, "module thresholds")
    if not isinstance(interfaces, list):
        raise InterfaceInputError("interfaces must be a list of dicts")
    normalised = []
    seen = set()
    for index, raw in enumerate(interfaces):
        where = "interfaces[%d]" % index
        if not isinstance(raw, dict):
            raise InterfaceInputError("%s must be a dict, got %s" % (where, type(raw).__name__))
        name = _text(raw.get("name"))
        if not name:
            raise InterfaceInputError("%s has no name" % where)
        where = "interface %r" % name
        if name in seen:
            raise InterfaceInputError("%s is declared twice; names must be unique" % where)
        seen.add(name)
        vendor = _text(raw.get("vendor"))
        if not vendor:
            raise InterfaceInputError("%s has no vendor" % where)
        kind = _text(raw.get("kind")).lower()
        if kind not in KINDS:
            raise InterfaceInputError(
                "%s has unknown kind %r; use one of: %s"
                % (where, raw.get("kind"), ", ".join(KINDS))
            )
        spec = KIND_KEYS[kind]
        allowed = COMMON_KEYS | set(spec["required"]) | set(spec["optional"])
        unknown = sorted(str(key) for key in raw if key not in allowed)
        if unknown:
            raise InterfaceInputError(
                "%s (%s) has unknown keys: %s"
                % (where, kind, ", ".join(k if k.isprintable() else repr(k) for k in unknown))
            )
        for key in spec["required"]:
            if not _text(raw.get(key)):
                raise InterfaceInputError("%s (%s) has no %s" % (where, kind, key))
        entry = {"name": name, "vendor": vendor, "kind": kind}
        timeout = raw.get("timeout", DEFAULT_TIMEOUT)
        entry["timeout"] = _as_int(timeout, "%s: timeout" % where, minimum=1)
        thresholds = dict(base)
        thresholds.update({key: raw[key] for key in THRESHOLD_KEYS if raw.get(key) is not None})
        entry.update(validate_thresholds(thresholds, where))
        if kind == "https":
            url = _text(raw["url"])
            parts = urlsplit(url)
            if parts.scheme != "https" or not parts.hostname:
                raise InterfaceInputError(
                    "%s has url %r; it must be an https:// URL with a host" % (where, url)
                )
            try:
                parts.port  # noqa: B018 - raises ValueError on a bad port
            except ValueError:
                raise InterfaceInputError("%s has a bad port in url %r" % (where, url)) from None
            entry["url"] = url
            expected = raw.get("expected_api_version")
            entry["expected_api_version"] = _text(expected) or None
            entry["ca_file"] = _text(raw.get("ca_file")) or None
        else:
            for key in spec["required"]:
                entry[key] = _text(raw[key])
            entry["port"] = _as_int(raw.get("port", 22), "%s: port" % where, minimum=1)
            if entry["port"] > 65535:
                raise InterfaceInputError("%s: port must be at most 65535" % where)
        normalised.append(entry)
    return normalised


# ---------------------------------------------------------------------------
# Grading (pure, unit tested)
# ---------------------------------------------------------------------------


def new_result(interface):
    """Return the result skeleton of one interface."""
    if interface["kind"] == "https":
        target = interface["url"]
    else:
        target = "%s@%s:%d:%s" % (
            interface["username"],
            interface["host"],
            interface["port"],
            interface["remote_dir"],
        )
    return {
        "name": interface["name"],
        "vendor": interface["vendor"],
        "kind": interface["kind"],
        "target": target,
        "status": "ok",
        "latency_ms": None,
        "cert_days_left": None,
        "api_version": None,
        "http_status": None,
        "canary": None,
        "messages": [],
    }


STATUS_ORDER = {"ok": 0, "warning": 1, "failed": 2}


def raise_status(result, status, message):
    """Record a reason and raise the result's status to at least status."""
    if STATUS_ORDER[status] > STATUS_ORDER[result["status"]]:
        result["status"] = status
    result["messages"].append(one_line(message))


def one_line(text):
    """Collapse any text to a single line."""
    return " ".join(str(text).split())


def grade_latency(result, interface):
    """Apply the latency thresholds to result['latency_ms']."""
    latency = result["latency_ms"]
    if latency is None:
        return
    if latency > interface["latency_fail_ms"]:
        raise_status(
            result,
            "failed",
            "latency %d ms is above the failure threshold of %d ms"
            % (latency, interface["latency_fail_ms"]),
        )
    elif latency > interface["latency_warn_ms"]:
        raise_status(
            result,
            "warning",
            "latency %d ms is above the warning threshold of %d ms"
            % (latency, interface["latency_warn_ms"]),
        )


def grade_certificate(result, interface):
    """Apply the certificate thresholds to result['cert_days_left']."""
    days = result["cert_days_left"]
    if days is None:
        return
    if days < interface["cert_fail_days"]:
        raise_status(
            result,
            "failed",
            "certificate expires in %d days (failure below %d days)"
            % (days, interface["cert_fail_days"]),
        )
    elif days < interface["cert_warn_days"]:
        raise_status(
            result,
            "warning",
            "certificate expires in %d days (warning below %d days)"
            % (days, interface["cert_warn_days"]),
        )


def extract_api_version(body, headers):
    """Return the API version from a JSON body's api_version field or X-API-Version."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        document = None
    if isinstance(document, dict) and document.get("api_version") not in (None, ""):
        return str(document["api_version"])
    for key, value in headers:
        if key.lower() == "x-api-version" and value.strip():
            return value.strip()
    return None


def grade_api_version(result, interface):
    """Compare result['api_version'] with the expected version, if any."""
    expected = interface.get("expected_api_version")
    if not expected:
        return
    actual = result["api_version"]
    if actual is None:
        raise_status(
            result,
            "failed",
            "no API version reported (expected %s in JSON api_version or X-API-Version)" % expected,
        )
    elif actual != expected:
        raise_status(result, "failed", "API version %s, expected %s" % (actual, expected))


def days_left(not_after, now=None):
    """Whole days from now until the certificate's notAfter (an ssl getpeercert string)."""
    expires = ssl.cert_time_to_seconds(not_after)
    current = time.time() if now is None else now
    return int((expires - current) // 86400)


def summarise(results):
    """Count the results per status."""
    summary = {"ok": 0, "warning": 0, "failed": 0}
    for result in results:
        summary[result["status"]] += 1
    return summary


def _elapsed_ms(started):
    return int(round((time.monotonic() - started) * 1000))


# ---------------------------------------------------------------------------
# HTTPS
# ---------------------------------------------------------------------------


def check_https(interface):
    """Check one HTTPS interface and return its result."""
    result = new_result(interface)
    parts = urlsplit(interface["url"])
    ca_file = interface["ca_file"]
    try:
        if ca_file:
            context = ssl.create_default_context(cafile=ca_file)
        else:
            context = ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise_status(result, "failed", "cannot load ca_file %s: %s" % (ca_file, exc))
        return result
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port or 443, timeout=interface["timeout"], context=context
    )
    started = time.monotonic()
    try:
        connection.connect()
        # Read the certificate now: the connection drops its socket once a
        # "Connection: close" response has been read.
        peer = connection.sock.getpeercert()
        connection.request(
            "GET", path, headers={"Accept": "application/json", "User-Agent": USER_AGENT}
        )
        response = connection.getresponse()
        body = response.read(MAX_BODY_BYTES)
        result["latency_ms"] = _elapsed_ms(started)
        result["http_status"] = response.status
        headers = response.getheaders()
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or exc.reason or str(exc)
        raise_status(result, "failed", "TLS certificate not trusted: %s" % reason)
        return result
    except ssl.SSLError as exc:
        raise_status(result, "failed", "TLS error: %s" % (exc.reason or exc))
        return result
    except (TimeoutError, socket.timeout):
        raise_status(result, "failed", "no answer within %d s" % interface["timeout"])
        return result
    except (OSError, http.client.HTTPException) as exc:
        raise_status(
            result, "failed", "cannot connect to %s: %s" % (parts.netloc, exc or type(exc))
        )
        return result
    finally:
        connection.close()

    if peer and peer.get("notAfter"):
        result["cert_days_left"] = days_left(peer["notAfter"])
    if not 200 <= response.status < 300:
        raise_status(result, "failed", "HTTP %d %s" % (response.status, response.reason or ""))
    result["api_version"] = extract_api_version(body, headers)
    grade_api_version(result, interface)
    grade_certificate(result, interface)
    grade_latency(result, interface)
    return result


# ---------------------------------------------------------------------------
# SFTP
# ---------------------------------------------------------------------------


def _host_label(interface):
    if interface["port"] == 22:
        return interface["host"]
    return "[%s]:%d" % (interface["host"], interface["port"])


def _sftp_canary(sftp, remote_dir):
    """Write, read back, compare and delete a canary file; return a failure reason or None."""
    content = secrets.token_hex(32).encode("ascii")
    path = "%s/.milepost-canary-%s" % (remote_dir.rstrip("/"), secrets.token_hex(8))
    problem = None
    written = False
    try:
        with sftp.open(path, "wb") as handle:
            written = True
            handle.write(content)
        with sftp.open(path, "rb") as handle:
            read_back = handle.read()
        if read_back != content:
            problem = "canary %s read back different content (%d bytes, wrote %d)" % (
                path,
                len(read_back),
                len(content),
            )
    except (OSError, paramiko.SSHException) as exc:
        problem = "canary write/read in %s failed: %s" % (remote_dir, exc)
    if written:
        try:
            sftp.remove(path)
        except (OSError, paramiko.SSHException) as exc:
            problem = problem or "canary %s could not be deleted: %s" % (path, exc)
    return problem


def check_sftp(interface, check_mode):
    """Check one SFTP interface and return its result."""
    result = new_result(interface)
    if not HAS_PARAMIKO:
        raise_status(result, "failed", missing_required_lib("paramiko"))
        return result
    for key in ("known_hosts_file", "private_key_file"):
        if not os.access(interface[key], os.R_OK):
            raise_status(result, "failed", "%s %s is not readable" % (key, interface[key]))
            return result
    label = _host_label(interface)
    client = paramiko.SSHClient()
    try:
        # HostKeys.load reads the file without remembering it, so nothing is ever saved.
        client.get_host_keys().load(interface["known_hosts_file"])
    except (OSError, paramiko.SSHException) as exc:
        raise_status(result, "failed", "cannot read known_hosts_file: %s" % exc)
        return result
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    started = time.monotonic()
    try:
        client.connect(
            interface["host"],
            port=interface["port"],
            username=interface["username"],
            key_filename=interface["private_key_file"],
            look_for_keys=False,
            allow_agent=False,
            timeout=interface["timeout"],
            banner_timeout=interface["timeout"],
            auth_timeout=interface["timeout"],
        )
        sftp = client.open_sftp()
        try:
            sftp.get_channel().settimeout(interface["timeout"])
            sftp.listdir(interface["remote_dir"])
            if check_mode:
                result["canary"] = "skipped"
            else:
                problem = _sftp_canary(sftp, interface["remote_dir"])
                if problem:
                    raise_status(result, "failed", problem)
                else:
                    result["canary"] = "verified"
        finally:
            sftp.close()
        result["latency_ms"] = _elapsed_ms(started)
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        reasons = sorted(
            {os.strerror(err.errno) if err.errno else str(err) for err in exc.errors.values()}
        )
        raise_status(
            result, "failed", "cannot connect to %s: %s" % (label, "; ".join(reasons) or exc)
        )
    except paramiko.BadHostKeyException as exc:
        raise_status(
            result,
            "failed",
            "host key of %s does not match %s (got %s): possible impersonation"
            % (label, interface["known_hosts_file"], exc.key.get_name()),
        )
    except paramiko.AuthenticationException as exc:
        raise_status(
            result,
            "failed",
            "authentication failed for %s@%s with key %s: %s"
            % (interface["username"], label, interface["private_key_file"], exc),
        )
    except paramiko.PasswordRequiredException:
        raise_status(
            result,
            "failed",
            "private key %s is encrypted; use an unencrypted key for the check"
            % interface["private_key_file"],
        )
    except paramiko.SSHException as exc:
        text = str(exc)
        if "not found in known_hosts" in text:
            raise_status(
                result,
                "failed",
                "host key not trusted: %s is not in %s" % (label, interface["known_hosts_file"]),
            )
        else:
            raise_status(result, "failed", "SSH error with %s: %s" % (label, text))
    except (TimeoutError, socket.timeout):
        raise_status(
            result, "failed", "no answer from %s within %d s" % (label, interface["timeout"])
        )
    except FileNotFoundError:
        raise_status(
            result,
            "failed",
            "remote_dir %s does not exist on %s" % (interface["remote_dir"], label),
        )
    except PermissionError:
        raise_status(
            result,
            "failed",
            "remote_dir %s is not readable on %s" % (interface["remote_dir"], label),
        )
    except (OSError, EOFError) as exc:
        raise_status(result, "failed", "cannot connect to %s: %s" % (label, exc or type(exc)))
    finally:
        client.close()
    grade_latency(result, interface)
    return result


# ---------------------------------------------------------------------------
# Module
# ---------------------------------------------------------------------------


def check_interface(interface, check_mode):
    """Check one validated interface; never raises."""
    try:
        if interface["kind"] == "https":
            return check_https(interface)
        return check_sftp(interface, check_mode)
    except Exception as exc:  # noqa: BLE001 - one broken interface must not hide the others
        result = new_result(interface)
        raise_status(result, "failed", "unexpected error: %s: %s" % (type(exc).__name__, exc))
        return result


def check_all(interfaces, check_mode):
    """Check every interface (in parallel) and return the results in input order."""
    if not interfaces:
        return []
    workers = min(MAX_WORKERS, len(interfaces))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: check_interface(item, check_mode), interfaces))


def main():
    module = AnsibleModule(
        argument_spec={
            "interfaces": {"type": "list", "elements": "dict", "required": True},
            "latency_warn_ms": {"type": "int", "default": 500},
            "latency_fail_ms": {"type": "int", "default": 3000},
            "cert_warn_days": {"type": "int", "default": 30},
            "cert_fail_days": {"type": "int", "default": 7},
        },
        supports_check_mode=True,
    )
    defaults = {key: module.params[key] for key in THRESHOLD_KEYS}
    try:
        interfaces = validate_interfaces(module.params["interfaces"], defaults)
    except InterfaceInputError as exc:
        module.fail_json(msg=str(exc))
    results = check_all(interfaces, module.check_mode)
    module.exit_json(
        changed=False,
        interface_results=results,
        milepost_interface_results=results,
        interface_summary=summarise(results),
    )


if __name__ == "__main__":
    main()
