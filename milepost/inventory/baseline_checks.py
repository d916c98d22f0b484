"""Checks of a host's ``baseline_*`` variables against the baseline role's argument spec
(roles/baseline/meta/argument_specs.yml), made with the inventory's other checks
(milepost.inventory.checks) before any host is touched.

Every ``baseline_*`` variable must be one the spec declares, with entries of the declared
keys, types and choices (a list or mapping as such, not a string Ansible would split), sshd
settings that are words rather than YAML booleans, and ``baseline_diff_redact`` holding
regular expressions. A baseline variable that needs facts is checked by name only; the role
checks its value on the host. Every problem is one line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from typing import Any

import yaml

from milepost.paths import PACKAGE_CHECKOUT

__all__: list[str] = []

#: Ansible's message for the keys baseline entries do not have (option.key, ...).
UNSUPPORTED_KEY = re.compile(r"(?P<where>.+?)\. Supported parameters include: (?P<keys>.*)\.")
#: Keys that are not text named per variable (as many as check_inventory lists problems).
MAX_NON_TEXT_KEYS = 5


@cache
def _baseline_spec() -> dict[str, Any]:
    path = PACKAGE_CHECKOUT / "roles/baseline/meta/argument_specs.yml"
    spec: dict[str, Any] = yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]
    return spec


def _kind(value: Any) -> str:
    return "empty" if value is None else type(value).__name__


def _baseline_shape_problems(name: str, option: Mapping[str, Any], value: Any) -> list[str]:
    """Lists and mappings as the role uses them: Ansible's argument spec would accept a
    string for a list (split at commas) or a dict (key=value), and the role then fails on
    every host."""
    kind = option.get("type")
    if kind == "list" and not isinstance(value, list):
        return [f"{name} must be a list, not {_kind(value)}"]
    if kind == "dict" and not isinstance(value, Mapping):
        return [f"{name} must be a mapping, not {_kind(value)}"]
    problems = []
    if kind == "list" and option.get("elements") == "dict":
        problems = [
            f"{name}[{index}] must be a mapping, not {_kind(entry)}"
            for index, entry in enumerate(value)
            if not isinstance(entry, Mapping)
        ]
    elif name == "baseline_diff_redact":
        problems = [
            f"{name}[{index}] must be a regular expression (a string), not {_kind(entry)}"
            for index, entry in enumerate(value)
            if not isinstance(entry, str)
        ]
    elif name == "baseline_sshd_settings":
        problems = [
            f"{name}: {key} is {str(setting).lower()}, which sshd does not read:"
            f" quote it ({'yes' if setting else 'no'!r})"
            for key, setting in value.items()
            if isinstance(setting, bool)
        ]
    return problems


def _non_text_keys(value: Any, where: str) -> list[str]:
    """Mapping keys that are not text (YAML reads ``0:`` or ``yes:`` as a number or a
    boolean): Ansible's argument spec validation cannot even name them."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                found.append(f"{where} has the key {key!r}, which is not text: quote it")
            else:
                step = key if key.isprintable() and len(key) <= 60 else ascii(key)[:60]
                found.extend(_non_text_keys(item, f"{where}.{step}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_non_text_keys(item, f"{where}[{index}]"))
    return found[:MAX_NON_TEXT_KEYS]


def _unknown_keys(error: str, spec: Mapping[str, Any]) -> list[str] | None:
    """Ansible names every unknown key of every option in one message, with the known
    keys of only one of them: one line per option instead, with its own known keys."""
    unsupported = UNSUPPORTED_KEY.fullmatch(error)
    if not unsupported:
        return None
    by_option: dict[str, list[str]] = {}
    for where in unsupported["where"].split(", "):
        option, _, key = where.partition(".")
        by_option.setdefault(option, []).append(key)
    lines = []
    for option, keys in by_option.items():
        known = ", ".join(sorted((spec.get(option) or {}).get("options") or {}))
        plural = "s" if len(keys) > 1 else ""
        named = ", ".join(key if key.isprintable() else ascii(key) for key in keys)
        lines.append(f"{option} has unknown key{plural} {named} (known keys: {known})")
    return lines


def _baseline_problems(
    values: Mapping[str, Any], *, unresolved: Iterable[str] = ()
) -> Iterator[str]:
    """The baseline variables set for a host, checked against roles/baseline's argument
    spec: unknown variables and keys, wrong types and choices, bad redaction patterns.
    Unresolved variables (templates that need facts) are only checked by name."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    spec = _baseline_spec()
    for name in sorted((set(values) | set(unresolved)) - set(spec)):
        close = difflib.get_close_matches(name, list(spec), n=1)
        hint = f": did you mean {close[0]}?" if close else ""
        shown_name = name if name.isprintable() and len(name) <= 100 else ascii(name)[:100]
        yield (
            f"unknown baseline variable {shown_name} (roles/baseline/meta/argument_specs.yml){hint}"
        )
    known: dict[str, Any] = {}
    for name, value in values.items():
        if name in spec:
            shape = _baseline_shape_problems(name, spec[name], value) or _non_text_keys(value, name)
            yield from shape
            if not shape:
                known[name] = value
    for error in ArgumentSpecValidator(spec).validate(known).error_messages:
        lines = _unknown_keys(error, spec)
        yield from lines if lines is not None else ["baseline: " + " ".join(error.split())]
    for pattern in known.get("baseline_diff_redact") or ():
        try:
            re.compile(pattern)
        except re.error as bad:
            yield f"baseline_diff_redact: {pattern!r} is not a regular expression ({bad})"
