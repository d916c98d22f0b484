"""Checks of hostile input: options, advisory files, the emergency-patch wrapper's arguments.

Every check raises UserError with one line saying what was wrong and what to do. The bad
value is shown through :func:`shown` (ASCII only, cut short), so no control character,
terminal escape or bidirectional override reaches the terminal or a log.

Every check first refuses a value longer than :data:`MAX_INPUT` (before any regular
expression runs), then one holding a NUL, a newline, a bidirectional control, a zero-width
character, another control character or an undecodable byte, naming the problem.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from milepost.errors import UserError

__all__ = [
    "MAX_INPUT",
    "check_advisory_id",
    "check_date",
    "check_mapping",
    "check_multiline",
    "check_limit",
    "check_text",
    "check_untemplated",
    "kind_of",
    "shown",
]

#: Longest value any check looks at (64 KiB): longer ones are refused by length alone.
MAX_INPUT = 64 * 1024
MAX_ADVISORY_ID = 64
MAX_PACKAGE_NAME = 100
MAX_VERSION = 100
MAX_LIMIT = 1024

#: Bidirectional controls (Trojan Source, CVE-2021-42574): embeddings, overrides, isolates,
#: marks.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
#: Line breaks: ASCII ones and Unicode's (NEL, line and paragraph separators).
NEWLINES = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")

CVE_ID = re.compile(r"CVE-[0-9]{4}-[0-9]{4,19}")
VENDOR_ID = re.compile(r"[A-Z][A-Z0-9]{1,15}(?:-[A-Za-z0-9]{1,32}){1,4}")
#: A Debian upload's advisory (milepost.patching.debian_sync): DEB-<source>-<version>, every
#: character of the version but letters, digits and '.' written '.' (e.g.
#: DEB-openssl-3.0.22.1.deb12u2), at most 64 characters.
DEBIAN_ID = re.compile(r"DEB-[a-z0-9][A-Za-z0-9.-]{1,59}")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
LIMIT_PATTERN = re.compile(r"[A-Za-z0-9_.*?:,!&\[\]-]+")


def shown(value: object, limit: int = 60) -> str:
    """``value`` safe to print: its ASCII-only repr, cut to ``limit`` characters (with
    "..." and the full length) when longer."""
    text = ascii(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[:limit]}... ({size} characters)"


def _codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


def _problem(value: str, *, lines: bool = False) -> str | None:
    """What makes ``value`` unsafe as one line of text (``lines``: as text of several lines,
    newlines and tabs allowed), or None."""
    for char in value:
        if lines and char in "\n\t":
            continue
        if char == "\0":
            return "contains a NUL character"
        if char in NEWLINES:
            if lines:
                return f"contains a line break other than a newline ({_codepoint(char)})"
            return "contains a newline"
        if char in BIDI_CONTROLS:
            return f"contains a bidirectional control character {_codepoint(char)}"
        if char in ZERO_WIDTH:
            return f"contains a zero-width character {_codepoint(char)}"
        category = unicodedata.category(char)
        if category == "Cc":
            return f"contains a control character {_codepoint(char)}"
        if category == "Cs":
            return f"contains an undecodable byte ({_codepoint(char)}): use UTF-8 text"
    return None


def safe_text(value: object, what: str, max_len: int) -> str:
    """``value`` if it is text of at most ``max_len`` characters with nothing hostile in it."""
    if not isinstance(value, str):
        raise UserError(f"{what} must be text, not {type(value).__name__} {shown(value)}")
    if len(value) > MAX_INPUT:
        raise UserError(
            f"{what} is {len(value)} characters long: at most {max_len} are allowed"
            f" ({shown(value, 20)})"
        )
    why = _problem(value)
    if why:
        raise UserError(f"{what} {shown(value)} {why}: give it as one line of plain text")
    if len(value) > max_len:
        raise UserError(
            f"{what} {shown(value)} is {len(value)} characters long: at most {max_len} are allowed"
        )
    return value


def check_text(value: str, what: str, *, max_len: int) -> str:
    """Free text of one line (a reason, a title), whitespace collapsed. UserError if empty,
    longer than ``max_len`` or holding a control, bidirectional or zero-width character."""
    text = " ".join(safe_text(value, what, max_len).split())
    if not text:
        raise UserError(f"{what} is empty: give some text")
    return text


#: What starts Jinja syntax. Ansible templates the text of a variable when a task uses it,
#: so text handed to a playbook (an extra var) holding one runs as code on the controller.
TEMPLATE_MARKERS = ("{{", "{%", "{#")


def check_untemplated(value: str, what: str, *, max_len: int) -> str:
    """Free text of one line (as :func:`check_text`) that goes to a playbook as a variable:
    UserError if it holds Jinja syntax ({{ {% {#}), which Ansible would run."""
    text = check_text(value, what, max_len=max_len)
    marker = next((m for m in TEMPLATE_MARKERS if m in text), None)
    if marker is not None:
        raise UserError(
            f"{what} {shown(text)} holds {marker!r}, template syntax Ansible would run: write"
            " it without braces"
        )
    return text


def check_multiline(value: str, what: str, *, max_len: int = MAX_INPUT) -> str:
    """Free text of one or more lines (a question's body, a lesson's text, a resolution):
    CRLF becomes LF, trailing spaces and blank edges go. UserError if empty, longer than
    ``max_len`` (checked first, by length alone) or holding a NUL, bidirectional,
    zero-width or other control character, or a line break other than LF."""
    if not isinstance(value, str):
        raise UserError(f"{what} must be text, not {type(value).__name__} {shown(value)}")
    if len(value) > max(max_len, 0) or len(value) > MAX_INPUT:
        raise UserError(
            f"{what} is {len(value)} characters long: at most {max_len} are allowed"
            f" ({shown(value, 20)})"
        )
    text = value.replace("\r\n", "\n")
    why = _problem(text, lines=True)
    if why:
        raise UserError(f"{what} {shown(value)} {why}: give plain text (newlines are fine)")
    cleaned = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    if not cleaned.strip():
        raise UserError(f"{what} is empty: give some text")
    return cleaned


def check_advisory_id(value: str, what: str = "advisory id") -> str:
    """A CVE id (CVE-YYYY-NNNN, four or more digits), a vendor id such as RUC-2026-001 or
    a Debian upload's id such as DEB-openssl-3.0.22.1.deb12u2 (an id starting CVE- must be
    a CVE id)."""
    text = safe_text(value, what, MAX_ADVISORY_ID)
    if text.startswith("-"):
        raise UserError(
            f"{what} {shown(text)} starts with '-': give an id like CVE-2025-12345 or RUC-2026-001"
        )
    if text.startswith("CVE-") and not CVE_ID.fullmatch(text):
        raise UserError(
            f"{what} {shown(text)} is not a CVE id: use CVE-YYYY-NNNN with four or more"
            " digits after the year, e.g. CVE-2025-12345"
        )
    if not (CVE_ID.fullmatch(text) or VENDOR_ID.fullmatch(text) or DEBIAN_ID.fullmatch(text)):
        raise UserError(
            f"{what} {shown(text)} is not an advisory id: use CVE-YYYY-NNNN (e.g."
            " CVE-2025-12345), a vendor id in capitals such as RUC-2026-001 or a Debian"
            " upload's id such as DEB-openssl-3.0.22.1.deb12u2"
        )
    return text


def check_limit(value: str, what: str = "--limit") -> str:
    """An Ansible host pattern safe for --limit: names, groups, wildcards and : , ! & [ ];
    no regular expression (~), no limit file (@), nothing that looks like an option."""
    text = safe_text(value, what, MAX_LIMIT)
    hint = "give host or group names, e.g. 'pay-01:pay-02' or 'ruc:!report-*'"
    if not text:
        raise UserError(f"{what} is empty: {hint}")
    if text.startswith("-"):
        raise UserError(f"{what} {shown(text)} starts with '-': {hint}")
    if text.startswith("~"):
        raise UserError(f"{what} {shown(text)} is a regular expression (~): {hint}")
    if "@" in text:
        raise UserError(f"{what} {shown(text)} names a limit file (@): {hint}")
    if not LIMIT_PATTERN.fullmatch(text):
        raise UserError(
            f"{what} {shown(text)} holds characters a host pattern does not use"
            f" (only letters, digits and _ . * ? : , ! & [ ] -): {hint}"
        )
    return text


def check_date(value: str, what: str) -> date:
    """A calendar date written YYYY-MM-DD."""
    text = safe_text(value, what, 32)
    if ISO_DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise UserError(f"{what} {shown(text)} is not a date: use YYYY-MM-DD, e.g. 2026-03-31")


def kind_of(value: Any) -> str:
    """What a value from inventory data is, for an error message."""
    return "nothing" if value is None else type(value).__name__


def check_mapping(value: Any, where: str, keys: Sequence[str]) -> Mapping[str, Any]:
    """A mapping of inventory data with no key but ``keys``. UserError (one line) naming
    ``where`` otherwise."""
    if not isinstance(value, Mapping):
        raise UserError(f"{where} must be a mapping with {', '.join(keys)}, not {kind_of(value)}")
    unknown = sorted(str(key) for key in value if key not in keys)
    if unknown:
        raise UserError(
            f"{where} has unknown key(s) {', '.join(shown(k, 40) for k in unknown)}:"
            f" use {', '.join(keys)}"
        )
    return value
