"""Real packages from Debian's archive for the changelog and advisory-sync tests: a private
APT state against deb.debian.org (bookworm, bookworm-updates, bookworm-security, signed by
Debian's keyring), kept for the whole session in one state directory laid out as the
sync's own (debian-archive/, debian-cache/debs/), so the sync reuses what was downloaded.

Nothing about Debian is mocked or hard-coded: versions come from the archive's indexes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cmp_to_key
from pathlib import Path

import pytest
from debian.debian_support import version_compare

from milepost.archive.apt_state import AptState, Offer, Source
from milepost.errors import UserError

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SOURCES = (
    Source("http://deb.debian.org/debian", ("bookworm", "bookworm-updates"), ("main",), KEYRING),
    Source("http://deb.debian.org/debian-security", ("bookworm-security",), ("main",), KEYRING),
)
#: milepost_debian_archives for the same archives, as an inventory file holds it.
ARCHIVES_YAML = """\
milepost_debian_archives:
  - uri: http://deb.debian.org/debian
    suites: [bookworm, bookworm-updates]
    signed_by: /usr/share/keyrings/debian-archive-keyring.gpg
  - uri: http://deb.debian.org/debian-security
    suites: [bookworm-security]
    components: [main]
    signed_by: /usr/share/keyrings/debian-archive-keyring.gpg
"""
#: Binary packages whose changelogs are read: small libraries, an interpreter,
#: libpython3.11-stdlib, whose doc directory is a symlink to another package's, and
#: ca-certificates, a native package (its changelog is changelog.gz).
PACKAGES = (
    "libexpat1",
    "libssl3",
    "openssl",
    "zlib1g",
    "perl-base",
    "python3.11",
    "libpython3.11-stdlib",
    "ca-certificates",
)


def newest_first(offers: list[Offer]) -> list[Offer]:
    return sorted(offers, key=cmp_to_key(lambda a, b: version_compare(b.version, a.version)))


@dataclass
class Archive:
    """Debian's archive as the tests see it: the APT state, what it offers of PACKAGES, and
    the state directory to hand the sync (MILEPOST_STATE_DIR)."""

    state_dir: Path
    state: AptState
    offers: dict[str, list[Offer]]

    @property
    def debs(self) -> Path:
        return self.state_dir / "debian-cache" / "debs"

    def newest(self, package: str) -> Offer:
        return newest_first(self.offers[package])[0]

    def oldest(self, package: str) -> Offer:
        return newest_first(self.offers[package])[-1]

    def offer(self, package: str, source_version: str) -> Offer | None:
        """The version of ``package`` built from ``source_version``, if the archive offers it."""
        found = [
            o
            for o in self.state.offers([package]).get(package, [])
            if o.source_version == source_version
        ]
        return found[0] if found else None

    def deb(self, offer: Offer) -> Path:
        return self.state.download(offer.package, offer.version, self.debs)


@cache
def open_archive(state_dir: Path) -> Archive:
    state = AptState(state_dir / "debian-archive", SOURCES)
    try:
        state.update()
    except UserError as bad:
        pytest.skip(f"Debian's archive cannot be read from here: {bad}")
    return Archive(state_dir, state, state.offers(PACKAGES))


@pytest.fixture(scope="session")
def debian(tmp_path_factory) -> Archive:
    """Debian's archive for the session (one state directory for every test module)."""
    return open_archive(tmp_path_factory.getbasetemp() / "debian-state")
