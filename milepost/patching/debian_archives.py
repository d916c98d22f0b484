"""The Debian archives `milepost advisory sync` reads, from the inventory
(``group_vars/all``), and where it keeps their APT state and its caches.

``milepost_debian_archives``: a list of archives, each with its suites, components
(default: main) and the keyring its Release files must be signed with::

    milepost_debian_archives:
      - uri: http://deb.debian.org/debian
        suites: [bookworm, bookworm-updates]
        signed_by: /usr/share/keyrings/debian-archive-keyring.gpg
      - uri: http://deb.debian.org/debian-security
        suites: [bookworm-security]
        components: [main]
        signed_by: /usr/share/keyrings/debian-archive-keyring.gpg
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from milepost.archive.apt_state import Source
from milepost.errors import UserError
from milepost.input_checks import check_mapping, kind_of, safe_text, shown
from milepost.inventory.reading import default_inventory, inventory_variables
from milepost.paths import state_dir

__all__ = [
    "ARCHIVES_VAR",
    "apt_state_dir",
    "changelog_cache",
    "deb_cache",
    "load_archives",
    "parse_archives",
]

ARCHIVES_VAR = "milepost_debian_archives"
KEYS = ("uri", "suites", "components", "signed_by")
#: An APT URI (http://, https://, file:/, mirror+file:/ ...): no space, it would split it.
URI = re.compile(r"[a-z][a-z0-9+.-]*:[^\s]+")
#: A suite (bookworm-security) or component (main, non-free-firmware).
SUITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
MAX_NAMES = 32
EXAMPLE = "inventory/example/group_vars/all/debian_archives.yml"


def apt_state_dir() -> Path:
    """The private APT state of the configured archives (milepost.archive.apt_state)."""
    return state_dir() / "debian-archive"


def deb_cache() -> Path:
    """Downloaded .deb files, by package and version."""
    return state_dir() / "debian-cache" / "debs"


def changelog_cache() -> Path:
    """Changelogs read from them: <package>_<version>.changelog."""
    return state_dir() / "debian-cache" / "changelogs"


def _names(value: Any, where: str, default: Sequence[str] | None = None) -> tuple[str, ...]:
    if value is None and default is not None:
        return tuple(default)
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise UserError(
            f"{where} must be a list of names (e.g. [bookworm-security]), not {kind_of(value)}"
        )
    if len(value) > MAX_NAMES:
        raise UserError(f"{where} names more than {MAX_NAMES}")
    for name in value:
        if not isinstance(name, str) or not SUITE.fullmatch(safe_text(name, where, 100)):
            raise UserError(f"{where} holds {shown(name)}, which is not a suite or component name")
    return tuple(dict.fromkeys(value))


def parse_archives(value: Any) -> tuple[Source, ...]:
    """The archives of ``milepost_debian_archives`` (UserError, one line, if malformed)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise UserError(
            f"{ARCHIVES_VAR} must be a list of {{uri, suites, components, signed_by}}, not"
            f" {kind_of(value)} (see {EXAMPLE})"
        )
    archives = []
    for number, entry in enumerate(value, 1):
        where = f"{ARCHIVES_VAR} entry {number}"
        check_mapping(entry, where, KEYS)
        uri, keyring = entry.get("uri"), entry.get("signed_by")
        if not isinstance(uri, str) or not URI.fullmatch(safe_text(uri, f"{where} uri", 1000)):
            raise UserError(
                f"{where} needs uri: the archive's URL (e.g. http://deb.debian.org/debian)"
            )
        if not isinstance(keyring, str) or not keyring.startswith("/"):
            raise UserError(
                f"{where} needs signed_by: the absolute path of the keyring that signs its"
                " Release files (e.g. /usr/share/keyrings/debian-archive-keyring.gpg)"
            )
        archives.append(
            Source(
                uri=uri.rstrip("/"),
                suites=_names(entry.get("suites"), f"{where} suites"),
                components=_names(entry.get("components"), f"{where} components", ("main",)),
                signed_by=Path(safe_text(keyring, f"{where} signed_by", 1000)),
            )
        )
    return tuple(archives)


def load_archives(inventory: Path | None = None) -> tuple[Source, ...]:
    """The archives the inventory (default: the one ansible.cfg names) configures. UserError
    (one line) when it configures none or they are malformed."""
    sources = [inventory] if inventory is not None else default_inventory()
    controller, _ = inventory_variables(sources, [ARCHIVES_VAR])
    value = controller.get(ARCHIVES_VAR)
    if value is None:
        raise UserError(
            f"{ARCHIVES_VAR} is not set: name the Debian archives to read in group_vars/all"
            f" (see {EXAMPLE}), or read a directory of .deb files with --from DIR"
        )
    return parse_archives(value)
