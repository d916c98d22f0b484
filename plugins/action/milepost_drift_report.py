"""Action plugin milepost_drift_report: one host's drift report from the baseline role's
registered results and probes (documentation: plugins/modules/milepost_drift_report.py).

It runs on the controller only; the result key ``milepost_drift`` becomes a drift_check
ledger record (plugins/callback/maintenance_ledger.py).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.plugins.action import ActionBase

from milepost.ansible.redaction import DEFAULT_PATTERNS, Redactor

MODES = ("check", "converge")
#: Longest diff kept per resource; the rest is cut with a note.
MAX_DIFF = 4000
#: Longest unmanaged file shown in a diff.
MAX_CONTENT = 2000
#: sshd -T prints some values under another name than sshd_config accepts.
SSHD_SYNONYMS = {"prohibit-password": "without-password"}


class ReportError(ValueError):
    """Bad arguments: the one-line reason."""


def _redactor(patterns: Any) -> Redactor:
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ReportError("baseline_diff_redact must be a list of regular expressions")
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as bad:
            raise ReportError(
                f"baseline_diff_redact: {pattern!r} is not a regular expression ({bad})"
            ) from None
    return Redactor((*DEFAULT_PATTERNS, *patterns))


def _lines(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [f"{key}: {value[key]}\n" for key in sorted(value, key=str)]
    text = "" if value is None else str(value)
    return text.splitlines(keepends=True)


def diff_text(diff: Any) -> str:
    """A unified diff (actual -> expected) from a module's diff result (dict or list)."""
    parts = diff if isinstance(diff, list) else [diff]
    out: list[str] = []
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        if "prepared" in part:
            out.append(str(part["prepared"]).rstrip("\n") + "\n")
            continue
        before, after = _lines(part.get("before")), _lines(part.get("after"))
        if before == after:
            continue
        out.extend(
            line if line.endswith("\n") else line + "\n"
            for line in difflib.unified_diff(
                before,
                after,
                fromfile=f"actual {part.get('before_header') or ''}".rstrip(),
                tofile="baseline",
            )
        )
    return "".join(out)


def _content_diff(entry: Mapping[str, Any], redactor: Redactor) -> str:
    try:
        data = base64.b64decode(str(entry.get("content") or ""), validate=True)
    except (binascii.Error, ValueError):
        return ""
    # Redacted before it is cut: a secret cut in half (a PEM key without its END line)
    # would no longer match a pattern.
    text = redactor.scrub(data.decode("utf-8", errors="replace"))
    lines = [f"-{line}\n" for line in text[:MAX_CONTENT].splitlines()]
    if len(text) > MAX_CONTENT:
        lines.append(f"-... ({len(text) - MAX_CONTENT} more characters)\n")
    source = str(entry.get("source") or "")
    return "".join([f"--- actual {source}\n", "+++ baseline (absent)\n", *lines])


def _norm(value: Any) -> str:
    words = " ".join(str(value).split()).lower()
    return SSHD_SYNONYMS.get(words, words)


def _effective_sshd(text: str) -> dict[str, str]:
    """`sshd -T` output as setting -> value; a setting printed on several lines (AllowUsers,
    one user per line) has its values joined by spaces."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            key = key.lower()
            found[key] = f"{found[key]} {value.strip()}" if key in found else value.strip()
    return found


def _installed(packages: Mapping[str, Any], name: str) -> str | None:
    found = packages.get(name) or []
    if isinstance(found, list) and found and isinstance(found[0], Mapping):
        version = found[0].get("version")
        return None if version is None else str(version)
    return None


class Report:
    """The drifted resources of one host, merged by resource name."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self.checked: set[str] = set()
        self.drifted: dict[str, dict[str, str]] = {}

    def add(self, resource: str, expected: str, actual: str, diff: str = "") -> None:
        entry = self.drifted.setdefault(
            resource, {"resource": resource, "expected": "", "actual": "", "diff": ""}
        )
        entry["expected"] = entry["expected"] or expected
        entry["actual"] = entry["actual"] or actual
        if diff and diff not in entry["diff"]:
            entry["diff"] += diff

    def entries(self) -> list[dict[str, str]]:
        out = []
        for resource in sorted(self.drifted):
            entry = {k: self._redactor.scrub(v) for k, v in self.drifted[resource].items()}
            if len(entry["diff"]) > MAX_DIFF:
                cut = len(entry["diff"]) - MAX_DIFF
                entry["diff"] = entry["diff"][:MAX_DIFF] + f"\n... ({cut} more characters)\n"
            out.append(entry)
        return out


def _describe(resource: str, item: Any, args: Mapping[str, Any]) -> tuple[str, str]:
    """(expected, actual) of a resource that differs, in a few words."""
    kind, _, name = resource.partition(":")
    item = item if isinstance(item, Mapping) else {}
    if kind == "service":
        state = item.get("state", "started")
        enabled = "enabled at boot" if item.get("enabled", True) else "disabled at boot"
        # service_facts names systemd units with their suffix (ssh.service).
        services = args.get("services") or {}
        facts = services.get(name) or services.get(f"{name}.service") or {}
        actual = facts.get("state") or "not installed"
        return f"{state}, {enabled}", str(actual)
    if kind == "sysctl":
        return f"{name} = {item.get('value')}", "differs"
    if kind == "sshd" and not name.startswith("/"):
        effective = _effective_sshd(str(args.get("sshd_effective") or ""))
        return f"{name} {item.get('value')}", f"{name} {effective.get(name.lower(), '(unset)')}"
    if kind == "package":
        actual = _installed(args.get("packages") or {}, name)
        return str(item.get("value", "")), f"installed {actual}" if actual else "not installed"
    if kind == "user":
        wanted = ", ".join(f"{k} {item[k]}" for k in sorted(item) if k != "name")
        return wanted or "present", "differs"
    return "as declared in the baseline", "differs"


def build(args: Mapping[str, Any]) -> dict[str, Any]:
    """The drift report {mode, group, vendor, resources, drifted} for the arguments."""
    mode = args.get("mode")
    if mode not in MODES:
        raise ReportError(f"mode must be check or converge, not {mode!r}")
    redactor = _redactor(args.get("redact") or [])
    report = Report(redactor)
    unmanaged = {
        str(entry.get("item")): entry
        for entry in args.get("unmanaged_content") or ()
        if isinstance(entry, Mapping)
    }
    for group in args.get("items") or ():
        resources = list(group.get("resources") or ())
        results = list(group.get("results") or ())
        if len(resources) != len(results) and results:
            raise ReportError(
                f"{len(results)} results for {len(resources)} resources ({resources[:3]}...)"
            )
        report.checked.update(resources)
        for resource, result in zip(resources, results, strict=False):
            if (
                not isinstance(result, Mapping)
                or result.get("skipped")
                or not result.get("changed")
            ):
                continue
            diff = diff_text(result.get("diff"))
            if resource in unmanaged:
                report.add(
                    resource,
                    "absent (not declared in the baseline)",
                    "present" if mode == "check" else "removed",
                    _content_diff(unmanaged[resource], redactor),
                )
                continue
            expected, actual = _describe(resource, result.get("item"), args)
            report.add(resource, expected, actual if mode == "check" else "corrected", diff)
    if mode == "check":
        _probe_findings(report, args)
    else:
        for name in args.get("removed") or ():
            report.add(f"package:{name}", "not installed (not approved)", "removed")
    return {
        "mode": mode,
        "group": str(args.get("group") or ""),
        "vendor": str(args.get("vendor") or ""),
        "resources": len(report.checked | set(report.drifted)),
        "drifted": report.entries(),
    }


def _probe_findings(report: Report, args: Mapping[str, Any]) -> None:
    """Drift that only the read-only probes show (check mode)."""
    expected_sshd = args.get("sshd_expected") or {}
    if expected_sshd:
        effective = _effective_sshd(str(args.get("sshd_effective") or ""))
        for key, value in expected_sshd.items():
            resource = f"sshd:{key}"
            report.checked.add(resource)
            actual = effective.get(str(key).lower())
            if actual is None or _norm(actual) != _norm(value):
                report.add(resource, f"{key} {value}", f"{key} {actual or '(unset)'}")
    packages = args.get("packages") or {}
    for name, version in (args.get("package_pins") or {}).items():
        resource = f"package:{name}"
        report.checked.add(resource)
        installed = _installed(packages, name)
        if installed != str(version):
            report.add(
                resource,
                str(version),
                f"installed {installed}" if installed else "not installed",
            )
    for name in args.get("unapproved") or ():
        installed = _installed(packages, name)
        report.add(
            f"package:{name}",
            "not installed (not approved)",
            f"installed {installed}" if installed else "installed",
        )


def _strings(values: Iterable[Any]) -> list[str]:
    return [str(v) for v in values]


class ActionModule(ActionBase):
    """Build the drift report on the controller; no connection to the host is used."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: Any = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        try:
            report = build(self._task.args)
        except ReportError as bad:
            result.update(failed=True, msg=str(bad))
            return result
        drifted = _strings(entry["resource"] for entry in report["drifted"])
        if report["mode"] == "check":
            msg = f"{len(drifted)} of {report['resources']} resources differ from the baseline"
        else:
            msg = f"{len(drifted)} of {report['resources']} resources corrected to the baseline"
        result.update(
            changed=False,
            milepost_drift=report,
            msg=msg + (": " + ", ".join(drifted) if drifted else ""),
        )
        return result
