"""What a Debian package repository offers, read from its Packages indexes.

Used before any host is touched: a version pinned in inventory that the repository does
not hold is bad input, not a failure to discover on the canary. Only the index files are
read (over http(s) or file:); apt on the hosts still verifies the signed Release files.
"""

from __future__ import annotations

import gzip
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable

from milepost.errors import MilepostError

TIMEOUT_SECONDS = 10
SCHEMES = ("http://", "https://", "file:")


def controller_arch() -> str:
    """The Debian architecture of this machine (amd64, arm64, ...)."""
    try:
        done = subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
        )
    except OSError:
        return "amd64"
    return done.stdout.strip() or "amd64"


def parse_packages(text: str) -> dict[str, set[str]]:
    """{package: versions} from the text of a Packages index."""
    found: dict[str, set[str]] = {}
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            key, sep, value = line.partition(": ")
            if sep and not line.startswith((" ", "\t")):
                fields[key] = value.strip()
        if "Package" in fields and "Version" in fields:
            found.setdefault(fields["Package"], set()).add(fields["Version"])
    return found


def read_index(uri: str, suite: str, component: str, arch: str) -> dict[str, set[str]]:
    """{package: versions} of one suite and component; MilepostError if it cannot be read."""
    if not uri.startswith(SCHEMES):
        raise MilepostError(f"{uri}: only http, https and file repositories can be read")
    base = f"{uri.rstrip('/')}/dists/{suite}/{component}/binary-{arch}/Packages"
    errors = []
    for url, unpack in ((base + ".gz", gzip.decompress), (base, lambda data: data)):
        try:
            # Only http(s) and file: URLs reach here (checked above).
            with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as reply:  # noqa: S310  # nosec B310
                return parse_packages(unpack(reply.read()).decode("utf-8", errors="replace"))
        except (OSError, urllib.error.URLError, EOFError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
    raise MilepostError("; ".join(errors))


def offered(
    uris: Iterable[str], suites: Iterable[str], components: Iterable[str], arch: str
) -> dict[str, set[str]]:
    """{package: versions} over every uri, suite and component."""
    found: dict[str, set[str]] = {}
    for uri in uris:
        for suite in suites:
            for component in components:
                for name, versions in read_index(uri, suite, component, arch).items():
                    found.setdefault(name, set()).update(versions)
    return found
