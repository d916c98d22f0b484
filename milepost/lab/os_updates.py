"""The lab's operating-system updates: Debian's real ones.

Lab hosts see no Debian mirror, only the lab repository, as an agency's hosts see only the
agency's own mirror (and work offline from the internet). So the lab repository mirrors
Debian: at `scripts/lab up` the controller reads, through a private APT state
(milepost.archive.apt_state: Release files signed by Debian's keyring, package hashes
checked), every version Debian's bookworm, bookworm-updates and bookworm-security offer of
the packages the lab hosts have installed, downloads them once (cached by package and
version) and the lab repository republishes them re-signed by the lab key: the versions
from a security suite in the lab's bookworm-security, the others in its bookworm. The .debs
are Debian's own, changelogs and all.

The base image holds the newest version of every package (see base_image). Hosts marked
behind (every second host) start instead, for a few source packages, on the oldest version
Debian still offers of all their installed binaries: what Debian fixed since then is real
exposure, present whenever the lab is built, chosen from what the archive holds that day,
never from a list. The sources chosen are those whose way back up passes a security upload,
the smallest first (every cycle and every `reset` moves them, so the lab stays fast), at
most BEHIND_SOURCES; one whose newest version is a regular update comes first, so that
security-only patching differs from patching all. A source is never chosen when one of
its binaries is part of the system itself: Essential, of priority required or important,
or a dependency of one of those (dpkg, libc, the shell, apt and the libraries they need).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from debian.debian_support import version_compare

from milepost.archive.apt_state import AptState, Offer
from milepost.archive.sources import machine_sources
from milepost.errors import UserError
from milepost.lab.base_image import DEBIAN_ORDER
from milepost.lab.commands import run
from milepost.lab.topology import LabHost

#: Debian's suites the lab mirrors.
SUITES = ("bookworm", "bookworm-updates", "bookworm-security")
#: Priorities of the packages the system itself is made of: never started behind.
SYSTEM_PRIORITIES = ("required", "important")
#: How many source packages a behind host starts behind on.
BEHIND_SOURCES = 3


def debian_state(build_dir: Path) -> AptState:
    """The controller's view of Debian's suites (from this machine's apt sources), updated."""
    state = AptState(build_dir / "debian-apt", machine_sources(SUITES))
    state.update()
    return state


@dataclass(frozen=True)
class Mirror:
    """What the lab repository republishes of Debian, and what hosts start on."""

    #: .debs for the lab's bookworm (regular versions) and bookworm-security.
    main: tuple[Path, ...]
    security: tuple[Path, ...]
    #: {package: (version, .deb)} current hosts start on (the image's versions) and what
    #: behind hosts start on instead.
    current: Mapping[str, tuple[str, Path]]
    behind: Mapping[str, tuple[str, Path]]

    def start(self, behind: bool) -> dict[str, tuple[str, Path]]:
        """{package: (version, .deb)} a host starts on."""
        return {**self.current, **(self.behind if behind else {})}

    def save(self, path: Path) -> None:
        """Keep what hosts start on for `scripts/lab reset` (which reads no archive)."""
        data = {
            name: {package: [version, str(deb)] for package, (version, deb) in plan.items()}
            for name, plan in (("current", self.current), ("behind", self.behind))
        }
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Mirror:
        try:
            data = json.loads(path.read_text())
            plans = {
                name: {p: (str(v), Path(d)) for p, (v, d) in data[name].items()}
                for name in ("current", "behind")
            }
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{path} is missing or damaged: run `scripts/lab up` again") from None
        return cls(main=(), security=(), current=plans["current"], behind=plans["behind"])


def system_packages(
    installed: Mapping[str, str], offers: Mapping[str, Sequence[Offer]]
) -> set[str]:
    """The installed packages the system itself is made of: the Essential ones and those of
    priority required or important, and every installed package they depend on, at any
    depth (libc6, for one, is "optional" but every Essential package needs it)."""

    def offer_of(package: str) -> Offer | None:
        return next((o for o in offers.get(package, ()) if o.version == installed[package]), None)

    todo = [
        package
        for package in installed
        if (o := offer_of(package)) is not None and (o.essential or o.priority in SYSTEM_PRIORITIES)
    ]
    system: set[str] = set()
    while todo:
        package = todo.pop()
        if package in system:
            continue
        system.add(package)
        found = offer_of(package)
        todo.extend(d for d in (found.depends if found else ()) if d in installed)
    return system


def behind_versions(
    installed: Mapping[str, str], offers: Mapping[str, Sequence[Offer]]
) -> dict[str, Offer]:
    """{package: the offer a behind host starts on}: per source package, the oldest source
    version Debian offers for every installed binary of it, older than the installed one;
    none for a source one of whose binaries the system itself is made of (system_packages).
    Of those sources, only the ones with a security upload newer than that start, at most
    BEHIND_SOURCES: the smallest (installed size of their binaries) whose newest version is
    a regular update, then the smallest others.
    ``offers`` must hold every installed package's offers (its dependencies too)."""
    system = system_packages(installed, offers)
    by_source: dict[str, list[str]] = {}
    for package in installed:
        for offer in offers.get(package, ()):
            by_source.setdefault(offer.source, [])
            if package not in by_source[offer.source]:
                by_source[offer.source].append(package)
    candidates: list[tuple[bool, int, str, dict[str, Offer]]] = []
    for source, packages in by_source.items():
        if any(package in system for package in packages):
            continue
        common: set[str] | None = None
        for package in packages:
            older = {
                offer.source_version
                for offer in offers[package]
                if version_compare(offer.version, installed[package]) < 0
            }
            common = older if common is None else common & older
        if not common:
            continue
        oldest = min(common, key=DEBIAN_ORDER)
        start = {
            package: next(o for o in offers[package] if o.source_version == oldest)
            for package in packages
        }
        newer = [
            o
            for package in packages
            for o in offers[package]
            if version_compare(o.version, start[package].version) > 0
        ]
        if any(o.security for o in newer):
            newest = max(newer, key=lambda o: DEBIAN_ORDER(o.version))
            size = sum(offer.installed_size for offer in start.values())
            candidates.append((not newest.security, size, source, start))
    # The smallest source whose way up ends on a regular update after a security one first
    # (so that security-only patching and patching all differ on a behind host), then the
    # smallest others.
    both = sorted(c[1:] for c in candidates if c[0])
    rest = sorted(c[1:] for c in candidates if c[1:] not in both[:1])
    chosen: dict[str, Offer] = {}
    for _size, _source, start in (both[:1] + rest)[:BEHIND_SOURCES]:
        chosen.update(start)
    return chosen


def mirror(state: AptState, installed: Mapping[str, str], cache: Path, kept: Path) -> Mirror:
    """Download every version Debian offers of the ``installed`` packages ({package:
    version}: the image's) that have another version offered; ``kept`` holds the image's
    own .debs (the version hosts start on, even once Debian no longer offers it)."""
    offers = state.offers(installed)
    own = _debs_by_version(kept)
    main: list[Path] = []
    security: list[Path] = []
    current: dict[str, tuple[str, Path]] = {}
    for package, version in sorted(installed.items()):
        found = offers.get(package, [])
        if all(offer.version == version for offer in found):
            continue  # nothing to move to or from
        for offer in found:
            deb = state.download(offer.package, offer.version, cache)
            (security if offer.security else main).append(deb)
        image_deb = own.get((package, version))
        if image_deb is None:
            raise UserError(
                f"the lab image's .deb of {package} {version} is missing from {kept}: rebuild"
                " the image (docker rmi milepost-lab-base:latest, then scripts/lab up)"
            )
        if not any(offer.version == version for offer in found):
            main.append(image_deb)  # Debian moved on: the image's version stays published
        current[package] = (version, image_deb)
    behind = {
        package: (offer.version, state.download(offer.package, offer.version, cache))
        for package, offer in behind_versions(installed, offers).items()
    }
    return Mirror(
        main=tuple(dict.fromkeys(main)),
        security=tuple(dict.fromkeys(security)),
        current=current,
        behind=behind,
    )


def _debs_by_version(folder: Path) -> dict[tuple[str, str], Path]:
    """{(package, version): .deb} of the .debs in ``folder``."""
    found = {}
    for deb in sorted(folder.glob("*.deb")):
        fields = run(["dpkg-deb", "--field", str(deb), "Package", "Version"]).stdout
        info = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line)
        found[(info.get("Package", ""), info.get("Version", ""))] = deb
    return found


def is_behind(host: LabHost, hosts: Sequence[LabHost]) -> bool:
    """Every second host of the lab starts behind (with six: acct-01, sftp-01, pay-02)."""
    return [h.name for h in hosts].index(host.name) % 2 == 1
