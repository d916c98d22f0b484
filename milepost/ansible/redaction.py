"""What may be written about a task result: a short summary with secrets removed.

The ledger never stores module output wholesale. A result becomes a one-line summary (the
failure message, or nothing for a success), and every secret value the run knows (extra
vars, vault-encrypted variables) and every text matching a secret pattern is replaced by
`***` first. Results of no_log tasks are stored as censored.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
MAX_SUMMARY = 500
MIN_SECRET_LENGTH = 4
#: Where str.splitlines() breaks lines.
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"

DEFAULT_PATTERNS: tuple[str, ...] = (
    # key=value / key: value where the key names a secret
    # (db_password=..., vendor_api_key: ...: the secret word may end a longer name)
    r"(?i)\b((?:[a-z0-9]+[_.-])*(?:password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key))\b(\s*[=:]\s*)\S+",
    # Authorization headers and bearer tokens
    r"(?i)\b(authorization)(\s*:\s*)\S+(\s+\S+)?",
    r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]+",
    # credentials in URLs: scheme://user:password@host
    r"(://[^/\s:@]+)(:)[^@\s/]+(?=@)",
    # PEM private keys
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
)


class Redactor:
    def __init__(self, patterns: Iterable[str] = DEFAULT_PATTERNS) -> None:
        self._patterns = [re.compile(p) for p in patterns]
        self._secrets: set[str] = set()

    def add_secrets(self, values: Iterable[Any]) -> None:
        """Remember secret values (strings anywhere inside nested data) to mask them."""
        for value in _leaves(values):
            text = str(value)
            if len(text) >= MIN_SECRET_LENGTH:
                self._secrets.add(text)

    def scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        for pattern in self._patterns:
            text = pattern.sub(_masked, text)
        return text

    def summary(self, result: Mapping[str, Any], *, status: str, no_log: bool) -> str:
        """One line about a result: empty for ok/changed/skipped, the reason otherwise."""
        if no_log or result.get("censored"):
            return "censored (no_log)"
        if status not in ("failed", "unreachable"):
            return ""
        parts = [str(result.get("msg") or "")]
        stderr = str(result.get("stderr") or "").strip()
        if stderr:
            parts.append(_last_line(stderr))
        text = " | ".join(p for p in parts if p) or f"{status} with no message"
        text = " ".join(self.scrub(text).split())
        return text[:MAX_SUMMARY]


def _last_line(text: str) -> str:
    """text.splitlines()[-1] of a stripped text, without splitting all of it: a task's
    stderr can be hundreds of megabytes in short lines (a list of every line took about
    three times the text)."""
    return text[max(text.rfind(char) for char in LINE_BREAKS) + 1 :]


def _masked(match: re.Match[str]) -> str:
    groups = match.groups()
    if len(groups) >= 2 and groups[0] is not None and groups[1] is not None:
        return f"{groups[0]}{groups[1]}{MASK}"
    return MASK


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield value
