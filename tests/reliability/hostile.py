"""A corpus of hostile input for the reliability suite: package names, versions, host names,
advisory ids and free text that try shell and option injection, line and header injection,
terminal tricks (bidirectional overrides, zero-width characters, escapes), path traversal,
YAML and Jinja syntax, numbers Python cannot read, and sizes nobody expects.

Every injection payload runs ``touch CANARY``: strings hold the placeholder :data:`CANARY`
and :func:`arm` (or :func:`corpus` with a path) puts a per-test canary path in its place,
so an injection that ran is seen as a file that exists.

    from hostile import CANARY, arm, corpus, packages, versions, hostnames, advisory_ids
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

#: Stands for the canary path inside a payload; :func:`arm` replaces it.
CANARY = "__MILEPOST_CANARY__"

KIB = 1024

#: Shell metacharacters: each one would run ``touch CANARY`` in a shell.
SHELL = (
    f"; touch {CANARY}",
    f"x;touch {CANARY}",
    f"$(touch {CANARY})",
    f"`touch {CANARY}`",
    f"| touch {CANARY}",
    f"|| touch {CANARY}",
    f"&& touch {CANARY}",
    f"& touch {CANARY} &",
    f"> {CANARY}",
    f">> {CANARY}",
    f"< /etc/passwd > {CANARY}",
    f"\ntouch {CANARY}\n",
    f"'; touch {CANARY}; echo '",
    f'"; touch {CANARY}; echo "',
    f"${{IFS}}touch${{IFS}}{CANARY}",
    f"x%0atouch {CANARY}",
    "$HOME",
    "${PATH}",
    "*",
    "?",
    "~root",
    "!!",
    "a\\b",
)

#: Strings a command line would read as options.
OPTIONS = (
    "-o",
    "-",
    "--",
    "-e",
    "-i",
    "--help",
    "--version",
    "--config=/etc/passwd",
    f"-oProxyCommand=touch {CANARY}",
    f"-oProxyCommand=sh -c 'touch {CANARY}'",
    f"--post-invoke=touch {CANARY}",
    f"-oAPT::Update::Pre-Invoke::=touch {CANARY}",
    f"-oDPkg::Pre-Invoke::=touch {CANARY}",
    "--allow-downgrades",
    "-y",
    "--limit=all",
)

#: Line breaks and other characters that split a line, a header or a record.
LINES = (
    "ruc-account-api\nPackage: *\nPin: release *\nPin-Priority: 1001",
    f"ok\ntouch {CANARY}",
    "a\r\nb",
    "a\rb",
    "a\nb",
    "\n",
    "\r",
    "x\u2028y",
    "x\u2029y",
    "x\x85y",
    "x\x0by",
    "x\x0cy",
    "x\x1ey",
    "Subject: hi\r\nBcc: everyone@example.gov",
)

NUL = ("a\0b", "\0", "ruc-account-api\0", "CVE-2025-12345\0; rm -rf /")

#: Terminal escapes and other control characters.
CONTROL = (
    "\x1b[31mred\x1b[0m",
    "\x1b]0;owned\x07",
    "\x1b[2J",
    "\x7f",
    "\t",
    "a\tb",
    "\x08\x08\x08",
)

#: Bidirectional overrides (Trojan Source) and zero-width characters.
INVISIBLE = (
    "ruc\u202eipa-tnuocca",
    "\u202eCVE-2025-12345",
    "\u2066x\u2069",
    "CVE-2025-1234\u200f",
    "ruc\u200b-account-api",
    "\ufeffCVE-2025-12345",
    "ruc-account-api\u200d",
    "pay\u200c-01",
    "\u2060",
    "\u061c",
)

#: Path traversal and files that are not what they seem.
PATHS = (
    "../../../../etc/passwd",
    "../../../../../../../../etc/shadow",
    "/etc/passwd",
    "..",
    ".",
    "/",
    "~",
    "..\\..\\windows\\system32",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/dev/null",
    "/proc/self/environ",
    "file:///etc/passwd",
)

#: YAML and Jinja syntax, which must stay text.
TEMPLATES = (
    f"{{{{ lookup('pipe','touch {CANARY}') }}}}",
    f"{{{{ lookup('ansible.builtin.pipe', 'touch {CANARY}') }}}}",
    f"{{% set x = lookup('pipe', 'touch {CANARY}') %}}",
    "{{ 7 * 7 }}",
    "{{ undefined_variable }}",
    "{% raw %}",
    "{#",
    f"!!python/object/apply:os.system ['touch {CANARY}']",
    "!!python/object:os.system",
    "!vault |",
    "*alias",
    "&anchor x",
    "- item",
    "key: value",
    "{a: b}",
    "[1, 2]",
    "? x",
    "%YAML 1.1",
    "---",
    "...",
    "@inventory",
    "<<: *base",
)

#: Scalars YAML or int() read as something else, or cannot read.
NUMBERS = (
    "yes",
    "no",
    "null",
    "~",
    "0x1F",
    "0o17",
    "1e999",
    "NaN",
    "inf",
    "-1",
    "0",
    "99999999999999999999",
    "9" * 5000,
    "2026-13-45",
    "2026-02-30",
    "9999-12-31",
    "0000-00-00",
    "\u00b2",  # superscript two: str.isdigit() says yes, int() says no
    "\u0663",  # Arabic-Indic three
    "\U0001d7d9",  # mathematical double-struck one
    "1_000",
    "+5",
    " 5 ",
)

#: Unicode that looks like ASCII, and other odd but printable text.
LOOKALIKE = (
    "\uff23\uff36\uff25-2025-12345",  # fullwidth CVE
    "CVE-\uff12\uff10\uff12\uff15-12345",
    "rúc-account-api",
    "ruc\u2010account\u2010api",  # hyphen, not hyphen-minus
    "\u00a0",
    "\u3000",
    "%s%s%s%n",
    "{0}{1}",
    "%(secret)s",
    "'; DROP TABLE records; --",
    "\udc80\udcff",  # lone surrogates: undecodable bytes
)

EMPTY = ("", " ", "   ", "\t \t", "\n\n")

#: Very long strings (64 KiB and a little more).
LONG = (
    "A" * (64 * KIB),
    "a" * (64 * KIB + 1),
    "ruc-" + "a" * 300,
    "CVE-2025-" + "1" * 60,
    "x" * 5000,
    "../" * 2000,
)

#: Near misses of each kind of value, next to a valid one.
PACKAGE_NEAR = (
    "ruc-account-api",
    "Ruc-Account-Api",
    "ruc_account_api",
    "r",
    "-ruc",
    ".ruc",
    "ruc-account-api=1.0",
    "ruc-account-api:amd64",
    "ruc account api",
    "ruc-account-api/bookworm",
)
VERSION_NEAR = (
    "2.4.0",
    "1:2.4.0-1",
    "2.4.0~rc1",
    "v2.4.0",
    "2.4.0 ",
    "2.4.0=1",
    ":2.4.0",
    "2.4.0/",
    "1:-o",
)
HOSTNAME_NEAR = (
    "pay-01",
    "pay-01.ruc.example.gov",
    "PAY-01",
    "pay_01",
    "pay-01:22",
    "pay-01,pay-02",
    "[::1]",
    "127.0.0.1",
    "all",
    "localhost",
    "pay-*",
    "~pay.*",
    "!pay-01",
    "@limitfile",
)
ADVISORY_NEAR = (
    "CVE-2025-12345",
    "RUC-2026-001",
    "cve-2025-12345",
    "CVE-2025-123",
    "CVE-25-12345",
    "CVE-2025-12345 ",
    " CVE-2025-12345",
    "CVE-2025-12345,CVE-2025-12346",
    "GHSA-xxxx-yyyy-zzzz",
    "-CVE-2025-12345",
)

#: Every hostile string that is not a near miss, by family.
FAMILIES: dict[str, tuple[str, ...]] = {
    "shell": SHELL,
    "options": OPTIONS,
    "lines": LINES,
    "nul": NUL,
    "control": CONTROL,
    "invisible": INVISIBLE,
    "paths": PATHS,
    "templates": TEMPLATES,
    "numbers": NUMBERS,
    "lookalike": LOOKALIKE,
    "empty": EMPTY,
    "long": LONG,
}


def arm(value: str, canary: Path | str) -> str:
    """``value`` with the canary placeholder replaced by ``canary``'s path."""
    return value.replace(CANARY, str(canary))


def _armed(values: Iterable[str], canary: Path | str | None) -> list[str]:
    unique = list(dict.fromkeys(values))
    return unique if canary is None else [arm(v, canary) for v in unique]


def corpus(canary: Path | str | None = None) -> list[str]:
    """Every hostile string (no near misses), canary placeholders replaced when ``canary``
    is given."""
    return _armed((v for family in FAMILIES.values() for v in family), canary)


def packages(canary: Path | str | None = None) -> list[str]:
    """Hostile package names: the corpus and near misses of a Debian package name."""
    return _armed((*PACKAGE_NEAR, *corpus()), canary)


def versions(canary: Path | str | None = None) -> list[str]:
    """Hostile versions: the corpus and near misses of a Debian version."""
    return _armed((*VERSION_NEAR, *corpus()), canary)


def hostnames(canary: Path | str | None = None) -> list[str]:
    """Hostile host names and patterns: the corpus and near misses."""
    return _armed((*HOSTNAME_NEAR, *corpus()), canary)


def advisory_ids(canary: Path | str | None = None) -> list[str]:
    """Hostile advisory ids: the corpus and near misses of CVE and vendor ids."""
    return _armed((*ADVISORY_NEAR, *corpus()), canary)


def everything(canary: Path | str | None = None) -> list[str]:
    """The corpus and every near miss."""
    return _armed((*corpus(), *PACKAGE_NEAR, *VERSION_NEAR, *HOSTNAME_NEAR, *ADVISORY_NEAR), canary)


def argv_safe(value: str) -> bool:
    """Whether ``value`` can be a real process argument (no NUL; lone surrogates are
    fine, they become bytes through the file system encoding)."""
    return "\0" not in value


def alias_bomb(levels: int = 9, refs: int = 9, indent: int = 0) -> str:
    """The YAML "billion laughs": ``levels`` anchors each referring ``refs`` times to the
    one before (9 x 9: 9**9, about 387 million, strings once expanded), as mapping entries
    lol0 ... lol{levels-1} indented by ``indent`` spaces."""
    pad = " " * indent
    lines = [f"{pad}lol0: &lol0 [{', '.join(['lol'] * refs)}]"]
    for level in range(1, levels):
        lines.append(f"{pad}lol{level}: &lol{level} [{', '.join([f'*lol{level - 1}'] * refs)}]")
    return "\n".join(lines) + "\n"
