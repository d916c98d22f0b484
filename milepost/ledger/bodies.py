"""Ledger record bodies are untrusted input (safety invariant 6).

Anyone on the team can append to the ledger, so a reader checks every body it uses before
it uses it: its type, its required keys, package names and Debian versions (the rules of
milepost.input_checks, the same ones command-line input meets), dates and times. A body
that fails is skipped with ONE warning naming the record's seq and kind, and the reader
carries on with the other records::

    body = usable(seq, kind, text)      # the dict, or None (warned)
    if body is None:
        continue

Warnings go to stderr (once per record per process); :func:`collecting` also gathers the
ones raised inside it, for a page that shows them (the dashboard).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from milepost.errors import UserError, printable
from milepost.input_checks import CVE_ID, MAX_INPUT, check_advisory_id, check_date, shown
from milepost.inventory.debian import check_package_name, check_version
from milepost.inventory.severities import SEVERITIES
from milepost.ledger.chain import format_time
from milepost.ledger.names import (
    ACTION_KINDS,
    ACTION_STATUSES,
    ADVISORY_SOURCES,
    APPROVAL_ROLES,
    DRIFT_MODES,
    LINK_KINDS,
    MAX_ADVISORY_PACKAGES,
    NOTE_CATEGORIES,
    NOTE_TYPES,
    PLAN_ACTIONS,
    QUESTION_DIRECTIONS,
    RUN_KINDS,
    RUN_STATUSES,
    TASK_PROGRESS,
    TASK_STATUSES,
)

__all__ = [
    "CHECKS",
    "MAX_BODY",
    "Skipped",
    "check_body",
    "collecting",
    "skip",
    "usable",
]

#: Longest body text (JSON) a reader looks at: a larger one is skipped by its length alone.
MAX_BODY = 1024 * 1024
#: Longest text in a field a reader uses (ids, names, statuses: much shorter still).
MAX_TEXT = MAX_INPUT
MAX_NAME = 255
MAX_LIST = 10_000


class Skipped:
    """The warnings about ledger records that were skipped, one per (seq, kind)."""

    def __init__(self, *, echo: bool = False) -> None:
        self.messages: list[str] = []
        self._seen: set[tuple[int, str]] = set()
        self._echo = echo

    def add(self, seq: int, kind: str, message: str) -> None:
        if (seq, kind) in self._seen:
            return
        self._seen.add((seq, kind))
        self.messages.append(message)
        if self._echo:
            print(f"warning: {message}", file=sys.stderr)


#: The process's warnings (each printed to stderr once), then those of collecting() blocks.
_PROCESS = Skipped(echo=True)
_COLLECTORS: ContextVar[tuple[Skipped, ...]] = ContextVar("record_checks", default=())


@contextmanager
def collecting() -> Iterator[Skipped]:
    """Gather the warnings raised inside the block (they still go to stderr too)."""
    collector = Skipped()
    token = _COLLECTORS.set((*_COLLECTORS.get(), collector))
    try:
        yield collector
    finally:
        _COLLECTORS.reset(token)


def skip(seq: int, kind: str, reason: str) -> None:
    """Warn once that ledger record ``seq`` of ``kind`` was skipped, and why."""
    message = printable(f"ledger record {seq} ({shown(kind, 64)[1:-1]}) skipped: {reason}")
    for collector in (_PROCESS, *_COLLECTORS.get()):
        collector.add(seq, kind, message)


# ------------------------------------------------------------------ field rules


def _fail(reason: str) -> UserError:
    return UserError(reason)


def _get(body: Mapping[str, Any], key: str, required: bool) -> Any:
    value = body.get(key)
    if value is None and required:
        raise _fail(f"{key} is missing")
    return value


def _text(
    body: Mapping[str, Any], key: str, *, required: bool = False, limit: int = MAX_NAME
) -> None:
    value = _get(body, key, required)
    if value is None:
        return
    if not isinstance(value, str):
        raise _fail(f"{key} must be text, not {type(value).__name__} {shown(value)}")
    if len(value) > limit:
        raise _fail(f"{key} is {len(value)} characters long: at most {limit} are allowed")
    if required and not value.strip():
        raise _fail(f"{key} is empty")


def _choice(body: Mapping[str, Any], key: str, allowed: tuple[str, ...], *, required: bool) -> None:
    value = _get(body, key, required)
    if value is not None and value not in allowed:
        raise _fail(f"{key} {shown(value)} is not one of {', '.join(allowed)}")


def _texts(body: Mapping[str, Any], key: str, *, required: bool = False) -> None:
    value = _get(body, key, required)
    if value is None:
        return
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise _fail(f"{key} must be a list of text, not {type(value).__name__} {shown(value)}")
    for item in value:
        if not isinstance(item, str) or not item or len(item) > MAX_NAME:
            raise _fail(f"{key} holds {shown(item)}, which is not a name")


def _number(body: Mapping[str, Any], key: str) -> None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _fail(f"{key} must be a number, not {type(value).__name__} {shown(value)}")


def _flag(body: Mapping[str, Any], key: str) -> None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise _fail(f"{key} must be true or false, not {shown(value)}")


def _dict(body: Mapping[str, Any], key: str, *, required: bool = False) -> Mapping[str, Any]:
    value = _get(body, key, required)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(f"{key} must be a mapping, not {type(value).__name__} {shown(value)}")
    return value


def _date(body: Mapping[str, Any], key: str, *, required: bool = False) -> None:
    value = _get(body, key, required)
    if value is not None:
        check_date(value, key)


def _time(body: Mapping[str, Any], key: str, *, required: bool = False) -> None:
    value = _get(body, key, required)
    if value is None:
        return
    try:
        if not isinstance(value, str) or len(value) > 64:
            raise ValueError(value)
        format_time(value)
    except (ValueError, TypeError, OverflowError):
        raise _fail(f"{key} {shown(value)} is not an ISO-8601 time") from None


def _version(value: Any, what: str) -> None:
    if value is not None and value != "":
        check_version(value, what)


def _package_versions(
    body: Mapping[str, Any], key: str, *, fixed: bool, required: bool = True
) -> None:
    """{package name: Debian version} (``fixed``: the fixed version of an advisory, None
    meaning no fix known yet)."""
    packages = _dict(body, key, required=required)
    if len(packages) > MAX_LIST:
        raise _fail(f"{key} names {len(packages)} packages: at most {MAX_LIST}")
    for name, version in packages.items():
        check_package_name(name, f"{key} name")
        if fixed:
            _version(version, f"fixed version of {name}")
        else:
            check_version(version, f"version of {name}")


def _cve_ids(body: Mapping[str, Any], key: str) -> None:
    value = body.get(key)
    if value is None:
        return
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise _fail(f"{key} must be a list of CVE ids, not {type(value).__name__} {shown(value)}")
    for item in value:
        if not isinstance(item, str) or not CVE_ID.fullmatch(item):
            raise _fail(f"{key} holds {shown(item)}, which is not a CVE id")


# ------------------------------------------------------------------ rules per kind


def _advisory(body: Mapping[str, Any]) -> None:
    check_advisory_id(_get(body, "advisory_id", True), "advisory_id")
    _choice(body, "source", ADVISORY_SOURCES, required=False)
    _choice(body, "severity", SEVERITIES, required=True)
    _flag(body, "kev")
    _date(body, "published")
    _date(body, "due_date")
    for key in ("title", "vendor_project", "product", "catalog_version", "recorded_by"):
        _text(body, key, limit=1000)
    if len(_dict(body, "packages", required=True)) > MAX_ADVISORY_PACKAGES:
        raise _fail(f"packages names more than {MAX_ADVISORY_PACKAGES} packages")
    _package_versions(body, "packages", fixed=True)
    # A Debian upload's advisory (milepost.patching.debian_sync); older advisories lack them.
    _cve_ids(body, "cves")
    if body.get("source_package") is not None:
        check_package_name(body["source_package"], "source_package")
    _text(body, "urgency", limit=64)
    _text(body, "origin", limit=1000)


def _patch_exception(body: Mapping[str, Any]) -> None:
    _text(body, "exception_id", required=True, limit=64)
    check_advisory_id(_get(body, "advisory_id", True), "advisory_id")
    _texts(body, "hosts", required=True)
    _date(body, "expires", required=True)
    _text(body, "reason", limit=MAX_TEXT)
    _text(body, "compensating_control", limit=MAX_TEXT)
    _text(body, "added_by")


def _package_facts(body: Mapping[str, Any]) -> None:
    _package_versions(body, "packages", fixed=False)


def _package_change(body: Mapping[str, Any]) -> None:
    check_package_name(_get(body, "package", True), "package")
    name = body["package"]
    _version(body.get("from_version"), f"from_version of {name}")
    _version(body.get("to_version"), f"to_version of {name}")


def _run_started(body: Mapping[str, Any]) -> None:
    _choice(body, "kind", RUN_KINDS, required=False)
    _time(body, "started_at")
    for key in ("playbook", "operator", "controller", "git_commit", "limit"):
        _text(body, key, limit=4096)
    _flag(body, "check_mode")
    identity = _dict(body, "identity")
    for key in identity:
        _text(identity, key, limit=200)


def _host_counts(body: Mapping[str, Any]) -> None:
    for host, counts in _dict(body, "hosts").items():
        if not isinstance(counts, dict) or any(
            isinstance(n, bool) or not isinstance(n, int) for n in counts.values()
        ):
            raise _fail(f"hosts entry {shown(host)} is not a mapping of counts")


def _run_ended(body: Mapping[str, Any]) -> None:
    _choice(body, "status", RUN_STATUSES, required=True)
    _time(body, "ended_at")
    _text(body, "reason", limit=MAX_TEXT)
    _host_counts(body)


def _task_result(body: Mapping[str, Any]) -> None:
    _choice(body, "status", TASK_STATUSES, required=True)
    _choice(body, "runs_on", ("host", "controller"), required=False)
    for key in ("task", "role", "summary"):
        _text(body, key, limit=MAX_TEXT)
    _flag(body, "ignored")
    _flag(body, "rollback")
    _choice(body, "progress", TASK_PROGRESS, required=False)


def _drift_check(body: Mapping[str, Any]) -> None:
    _choice(body, "mode", DRIFT_MODES, required=True)
    for key in ("group", "vendor"):
        _text(body, key)
    # Entries that name no resource are left out by milepost.drift.findings itself.
    entries = _get(body, "drifted", False) or []
    if not isinstance(entries, list) or len(entries) > MAX_LIST:
        raise _fail(f"drifted must be a list, not {type(entries).__name__} {shown(entries)}")


def _change_opened(body: Mapping[str, Any]) -> None:
    _text(body, "change_id", required=True, limit=64)
    _texts(body, "hosts", required=True)
    _texts(body, "resources", required=True)
    _text(body, "reason", limit=MAX_TEXT)
    _text(body, "opened_by")
    _time(body, "until")


def _change_closed(body: Mapping[str, Any]) -> None:
    _text(body, "change_id", required=True, limit=64)
    _text(body, "note", limit=MAX_TEXT)
    _text(body, "closed_by")


def _links(body: Mapping[str, Any]) -> None:
    links = _dict(body, "links")
    for kind in LINK_KINDS:
        _texts(links, kind)


def _note(body: Mapping[str, Any]) -> None:
    _text(body, "note_id", required=True, limit=64)
    _choice(body, "type", NOTE_TYPES, required=False)
    _choice(body, "category", NOTE_CATEGORIES, required=False)
    _text(body, "title", limit=1000)
    _text(body, "text", limit=MAX_TEXT)
    for key in ("status", "owner", "added_by"):
        _text(body, key)
    _links(body)
    details = _dict(body, "details")
    # A QC catalogue change: the checks added for glitches (milepost.quality.answers).
    for check, ids in _dict(details, "answers").items():
        if not isinstance(ids, list) or len(check) > MAX_NAME:
            raise _fail(f"details.answers of {shown(check)} must be a list of glitch ids")
        _texts(details["answers"], check)


def _glitch(body: Mapping[str, Any]) -> None:
    _text(body, "glitch_id", required=True, limit=64)
    _text(body, "title", limit=1000)
    for key in ("text", "reason", "customer_impact", "resolution"):
        _text(body, key, limit=MAX_TEXT)
    for key in ("status", "owner", "added_by", "detected_by", "run_id"):
        _text(body, key)
    _time(body, "detected_at")
    for key in ("affected_systems", "hosts", "findings"):
        _texts(body, key)
    resources = body.get("resources")
    if resources is not None and (
        not isinstance(resources, list) or not all(isinstance(r, str) for r in resources)
    ):
        raise _fail("resources must be a list of text")
    _links(body)


def _note_updated(body: Mapping[str, Any]) -> None:
    _text(body, "note_id", required=True, limit=64)
    _text(body, "status")
    fields = _dict(body, "fields")
    for key in ("owner", "resolution", "customer_impact", "text", "cause", "no_action_reason"):
        _text(fields, key, limit=MAX_TEXT)
    _text(fields, "lesson", limit=64)
    _text(body, "comment", limit=MAX_TEXT)
    _text(body, "updated_by")
    _links(body)


def _lesson_action(body: Mapping[str, Any]) -> None:
    _text(body, "action_id", required=True, limit=64)
    _text(body, "lesson_id", required=True, limit=64)
    _choice(body, "kind", ACTION_KINDS, required=True)
    _text(body, "title", required=True, limit=1000)
    _text(body, "text", limit=MAX_TEXT)
    _text(body, "owner", required=True)
    _date(body, "due", required=True)
    _text(body, "ref", limit=1000)
    _text(body, "added_by")


def _lesson_action_updated(body: Mapping[str, Any]) -> None:
    _text(body, "action_id", required=True, limit=64)
    _choice(body, "status", ACTION_STATUSES, required=False)
    fields = _dict(body, "fields")
    _text(fields, "owner")
    _date(fields, "due")
    _text(fields, "ref", limit=1000)
    _text(body, "comment", limit=MAX_TEXT)
    _text(body, "updated_by")


def _vendor_question(body: Mapping[str, Any]) -> None:
    _text(body, "question_id", required=True, limit=64)
    _text(body, "vendor", required=True)
    _choice(body, "direction", QUESTION_DIRECTIONS, required=False)
    _text(body, "category", limit=64)
    _text(body, "subject", limit=1000)
    _text(body, "body", limit=MAX_TEXT)
    _text(body, "asked_by")
    _number(body, "response_hours")
    _time(body, "due_at")


def _vendor_question_answered(body: Mapping[str, Any]) -> None:
    _text(body, "question_id", required=True, limit=64)
    _text(body, "text", limit=MAX_TEXT)
    _text(body, "answered_by")


def _interface_check(body: Mapping[str, Any]) -> None:
    _text(body, "name", required=True)
    _text(body, "status", required=True, limit=32)
    messages = body.get("messages")
    if messages is not None and (
        not isinstance(messages, list)
        or not all(isinstance(m, str) and len(m) <= MAX_TEXT for m in messages)
    ):
        raise _fail("messages must be a list of text")


def _qc_result(body: Mapping[str, Any]) -> None:
    _text(body, "status", required=True, limit=32)
    _text(body, "check", limit=1000)
    _text(body, "message", limit=MAX_TEXT)
    _texts(body, "answers")


def _notice(body: Mapping[str, Any]) -> None:
    _text(body, "notice", required=True, limit=64)
    _text(body, "audience")
    _text(body, "result", limit=64)
    about = _dict(body, "about")
    _texts(about, "windows")
    _flag(about, "starting_now")
    _texts(about, "questions")
    _date(about, "day")


def _emergency_patch(body: Mapping[str, Any]) -> None:
    check_advisory_id(_get(body, "advisory_id", True), "advisory_id")
    _package_versions(body, "packages", fixed=False, required=False)
    _package_versions(body, "install", fixed=False, required=False)
    _texts(body, "candidates")


def _emergency_result(body: Mapping[str, Any]) -> None:
    for key in ("patched", "rolled_back", "failed", "unreachable", "not_exposed"):
        _texts(body, key)
    _texts(body, "still_exposed")


def _change_plan(body: Mapping[str, Any]) -> None:
    _text(body, "plan_id", required=True, limit=64)
    _text(body, "content_hash", required=True, limit=80)
    content = _dict(body, "content", required=True)
    _choice(content, "action", PLAN_ACTIONS, required=True)
    hosts = _dict(content, "hosts", required=True)
    if len(hosts) > MAX_LIST:
        raise _fail(f"content.hosts names {len(hosts)} hosts: at most {MAX_LIST}")
    for host, entry in hosts.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("packages"), list):
            raise _fail(f"content.hosts.{shown(host)} is not a host's plan")
        for key in ("would_change", "refused", "unknown"):
            if not isinstance(entry.get(key), list):
                raise _fail(f"content.hosts.{shown(host)}.{key} must be a list")
    if not isinstance(content.get("batches"), list):
        raise _fail("content.batches must be a list")
    _text(body, "created_by", required=True)
    _time(body, "created_at", required=True)
    _time(body, "expires", required=True)
    _text(body, "dry_run", required=True, limit=64)
    _time(body, "approve_by")
    needed = body.get("approvals_needed")
    if needed is not None and (isinstance(needed, bool) or not isinstance(needed, int)
                               or not 0 <= needed <= 100):  # fmt: skip
        raise _fail(f"approvals_needed is {shown(needed)}: a whole number from 0 to 100")


def _plan_approval(body: Mapping[str, Any]) -> None:
    _text(body, "plan_id", required=True, limit=64)
    _text(body, "content_hash", required=True, limit=80)
    _choice(body, "role", APPROVAL_ROLES, required=True)
    _text(body, "principal", required=True)
    _text(body, "fingerprint", required=True, limit=128)
    _text(body, "signature", required=True, limit=16_384)


#: The rules of each kind a reader uses; a kind not named here only has to be an object.
CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "advisory": _advisory,
    "patch_exception": _patch_exception,
    "package_facts": _package_facts,
    "package_change": _package_change,
    "run_started": _run_started,
    "run_ended": _run_ended,
    "task_result": _task_result,
    "drift_check": _drift_check,
    "change_opened": _change_opened,
    "change_closed": _change_closed,
    "note": _note,
    "glitch": _glitch,
    "note_updated": _note_updated,
    "lesson_action": _lesson_action,
    "lesson_action_updated": _lesson_action_updated,
    "vendor_question": _vendor_question,
    "vendor_question_answered": _vendor_question_answered,
    "interface_check": _interface_check,
    "qc_result": _qc_result,
    "notice": _notice,
    "emergency_patch": _emergency_patch,
    "emergency_result": _emergency_result,
    "change_plan": _change_plan,
    "plan_approval": _plan_approval,
}


def check_body(kind: str, body: object) -> str | None:
    """Why a body of ``kind`` (its stored JSON text, or the parsed value) cannot be used,
    or None when it can."""
    if isinstance(body, str | bytes):
        if len(body) > MAX_BODY:
            return f"its body is {len(body)} characters long: at most {MAX_BODY} are read"
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            return "its body is not JSON"
    if not isinstance(body, dict):
        return f"its body is {type(body).__name__}, not a JSON object"
    rules = CHECKS.get(kind)
    if rules is None:
        return None
    try:
        rules(body)
    except UserError as bad:
        return str(bad)
    except (TypeError, ValueError, AttributeError, RecursionError) as bad:
        return f"its body does not fit its kind ({type(bad).__name__})"
    return None


def usable(seq: int, kind: str, body: object) -> dict[str, Any] | None:
    """The body of ledger record ``seq`` (stored JSON text or parsed) as a dict when the
    rules of ``kind`` accept it; else None, after one warning naming seq and kind."""
    if isinstance(body, str | bytes) and len(body) <= MAX_BODY:
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            pass
    reason = check_body(kind, body)
    if reason is not None:
        skip(seq, kind, reason)
        return None
    assert isinstance(body, dict)
    return body


def usable_run(detail: Mapping[str, Any]) -> dict[str, Any]:
    """A run as ``Ledger.run`` gives it, its task results and other records narrowed to
    the usable ones (each unusable one warned about once)."""
    results = detail.get("task_results") or []
    records = detail.get("records") or []
    return {
        **detail,
        "task_results": [r for r in results if usable(r["seq"], "task_result", r) is not None],
        "records": [r for r in records if usable(r["seq"], r["kind"], r["body"]) is not None],
    }
