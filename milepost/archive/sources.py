"""The Debian archives this machine's apt uses (/etc/apt/sources.list and sources.list.d, in
deb822 or one-line form), as :class:`~milepost.archive.apt_state.Source`: where the lab's
base image and its mirror of Debian's updates come from."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from debian.deb822 import Deb822

from milepost.archive.apt_state import Source
from milepost.errors import UserError

__all__ = ["DEBIAN_KEYRING", "machine_sources"]

#: Debian's archive keyring (debian-archive-keyring), when a source names no Signed-By.
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def _entries(sources_dir: Path) -> list[tuple[str, tuple[str, ...], tuple[str, ...], str]]:
    """(uri, suites, components, signed_by) of every `deb` entry, in apt's reading order."""
    found: list[tuple[str, tuple[str, ...], tuple[str, ...], str]] = []
    one_line = [sources_dir / "sources.list", *sorted(sources_dir.glob("sources.list.d/*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            options = dict(
                part.split("=", 1)
                for part in " ".join(re.findall(r"\[([^]]*)\]", line)).split()
                if "=" in part
            )
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if len(words) >= 4 and words[0] == "deb":
                found.append(
                    (words[1], (words[2],), tuple(words[3:]), options.get("signed-by", ""))
                )
    for path in sorted(sources_dir.glob("sources.list.d/*.sources")):
        for stanza in Deb822.iter_paragraphs(path.read_text()):
            if stanza.get("Enabled", "yes").strip().lower() == "no":
                continue
            if "deb" not in stanza.get("Types", "").split():
                continue
            for uri in stanza.get("URIs", "").split():
                found.append(
                    (
                        uri,
                        tuple(stanza.get("Suites", "").split()),
                        tuple(stanza.get("Components", "").split()),
                        stanza.get("Signed-By", "").strip(),
                    )
                )
    return found


def machine_sources(
    suites: Sequence[str], component: str = "main", sources_dir: Path = Path("/etc/apt")
) -> list[Source]:
    """The sources of this machine that serve ``component`` of each of ``suites`` (the
    first entry naming a suite wins). UserError naming the suites no source serves."""
    wanted = list(suites)
    chosen: dict[tuple[str, str], list[str]] = {}
    for uri, entry_suites, components, signed_by in _entries(sources_dir):
        if component not in components:
            continue
        keyring = signed_by if signed_by.startswith("/") else str(DEBIAN_KEYRING)
        for suite in entry_suites:
            if suite in wanted and not any(suite in names for names in chosen.values()):
                chosen.setdefault((uri, keyring), []).append(suite)
    missing = [s for s in wanted if not any(s in names for names in chosen.values())]
    if missing:
        where = f"{sources_dir}/sources.list(.d)"
        raise UserError(
            f"no Debian source for {', '.join(missing)} {component} in {where}: add it to apt"
            " (the lab mirrors Debian's updates from it)"
        )
    return [
        Source(uri=uri, suites=tuple(names), components=(component,), signed_by=Path(keyring))
        for (uri, keyring), names in chosen.items()
    ]
