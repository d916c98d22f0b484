"""Where `milepost advisory sync` reads Debian's packages and their changelogs: the
configured archives (:class:`ArchiveReader`: a private APT state, the .deb files it
downloads and the changelogs read from them cached by package and version), or a directory
of .deb files and ``<package>_<version>.changelog`` files for an air-gapped agency
(:class:`DirectoryReader`; a copy of the cache's changelogs/ folder is one).

A reader says which versions of the fleet's packages it offers (:class:`Build`) and reads
the changelog of one source version. A package that cannot be read is a warning (the
reader's ``warnings``), and the sync goes on with the rest.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from milepost.archive.apt_state import AptState, Offer, Source
from milepost.archive.changelogs import (
    MAX_CHANGELOG,
    DebChangelog,
    changelog_file,
    changelog_file_name,
    deb_changelog,
    deb_control,
    latest_upload,
    parse_changelog,
)
from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.ledger.files import write_atomic
from milepost.patching.debian_archives import apt_state_dir, changelog_cache, deb_cache

__all__ = ["ArchiveReader", "Build", "DirectoryReader", "Reader"]

#: Packages read at most to find one source version's changelog.
MAX_READS = 6
#: Files of an offline directory looked at.
MAX_FILES = 100_000


@dataclass(frozen=True)
class Build:
    """A binary package version a reader offers: from an archive's suite, or a file."""

    package: str
    version: str
    source: str
    source_version: str
    #: Offered by a security suite (bookworm-security).
    security: bool
    #: Where it comes from: "bookworm-security http://deb.debian.org/debian-security" or
    #: "offline /srv/debs".
    origin: str


class Reader:
    """What both readers share: finding a source version's changelog."""

    #: Where the reader reads, for the summary.
    origin: str

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def builds(self, packages: Collection[str]) -> dict[str, list[Build]]:
        """{package: the versions offered} for those of ``packages`` offered at all."""
        raise NotImplementedError

    def siblings(self, source: str, source_version: str) -> list[Build]:
        """Every binary package offered of ``source`` at ``source_version``."""
        raise NotImplementedError

    def read(self, build: Build) -> DebChangelog:
        """The changelog ``build`` carries (UserError, one line, if it cannot be read)."""
        raise NotImplementedError

    def remember(self, build: Build, text: str) -> None:
        """Keep ``text`` as the changelog of ``build`` (a package that carries none of its
        own), when the reader keeps changelogs."""

    def changelog(self, builds: Sequence[Build]) -> tuple[str, Build] | None:
        """The changelog of the source version ``builds`` share, and the package it was
        read from: the first of ``builds`` that carries one, else a package of the same
        source version that a doc directory points to, else any other (at most MAX_READS
        packages read). None, with a warning, when none carries one."""
        tried: set[str] = set()
        pointed: list[str] = []

        def attempt(build: Build) -> str | None:
            tried.add(build.package)
            try:
                found = self.read(build)
            except UserError as bad:
                self.warnings.append(str(bad))
                return None
            if found.points_to is not None:
                pointed.append(found.points_to)
            return found.text

        for build in builds[:MAX_READS]:
            text = attempt(build)
            if text is not None:
                return text, build
        first = builds[0]
        others = [
            b for b in self.siblings(first.source, first.source_version) if b.package not in tried
        ]
        others.sort(key=lambda b: (b.package not in pointed, b.package))
        for build in others[: max(MAX_READS - len(tried), 0)]:
            text = attempt(build)
            if text is not None:
                # Its changelog is theirs too (their doc directory points to it).
                for without in builds[:MAX_READS]:
                    self.remember(without, text)
                return text, build
        self.warnings.append(
            f"no changelog found for {first.source} {first.source_version} (read"
            f" {', '.join(sorted(tried))}): its uploads are not recorded"
        )
        return None


def _unique(builds: Sequence[Build]) -> list[Build]:
    """One build per (package, version): a security suite's when several suites offer it."""
    chosen: dict[tuple[str, str], Build] = {}
    for build in builds:
        key = (build.package, build.version)
        if key not in chosen or (build.security and not chosen[key].security):
            chosen[key] = build
    return list(chosen.values())


class ArchiveReader(Reader):
    """The configured archives, their indexes fetched (and signatures checked) when made:
    UserError (one line) when a suite does not exist, cannot be reached or its Release file
    is not signed by its keyring."""

    def __init__(self, sources: Sequence[Source]) -> None:
        super().__init__()
        self.sources = tuple(sources)
        self.state = AptState(apt_state_dir(), self.sources)
        self.state.update()
        self.origin = "; ".join(f"{' '.join(s.suites)} {s.uri}" for s in self.sources)
        self._all: dict[tuple[str, str], list[Build]] | None = None

    def _build(self, offer: Offer) -> Build:
        uris = [s.uri for s in self.sources if offer.suite in s.suites]
        if not uris and len(self.sources) == 1:
            uris = [self.sources[0].uri]
        return Build(
            package=offer.package,
            version=offer.version,
            source=offer.source,
            source_version=offer.source_version,
            security=offer.security,
            origin=" ".join([offer.suite, *uris[:1]]),
        )

    def builds(self, packages: Collection[str]) -> dict[str, list[Build]]:
        return {
            package: _unique([self._build(offer) for offer in offers])
            for package, offers in self.state.offers(packages).items()
        }

    def siblings(self, source: str, source_version: str) -> list[Build]:
        if self._all is None:  # every index read once, only when a package has no changelog
            self._all = {}
            for offers in self.state.offers().values():
                for offer in offers:
                    key = (offer.source, offer.source_version)
                    self._all.setdefault(key, []).append(self._build(offer))
        return _unique(self._all.get((source, source_version), []))

    def read(self, build: Build) -> DebChangelog:
        cached = changelog_cache() / changelog_file_name(build.package, build.version)
        if cached.is_file():
            return DebChangelog(build.package, cached.read_text(encoding="utf-8", errors="replace"))
        deb = self.state.download(build.package, build.version, deb_cache())
        found = deb_changelog(deb, build.package)
        if found.text is not None:
            self.remember(build, found.text)
        return found

    def remember(self, build: Build, text: str) -> None:
        write_atomic(changelog_cache() / changelog_file_name(build.package, build.version), text)


@dataclass(frozen=True)
class _File:
    build: Build
    path: Path
    #: "deb" or "changelog".
    kind: str


class DirectoryReader(Reader):
    """A directory (read with its subdirectories) of .deb files and changelogs named
    ``<package>_<version>.changelog``. UserError (one line) when it does not exist or
    nothing in it can be read; a file that cannot be read is a warning."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        name = shown(str(directory), 200)
        try:
            if not directory.is_dir():
                raise UserError(
                    f"offline directory {name} does not exist or is not a directory: give"
                    " --from the directory holding the .deb files"
                )
            paths = sorted(p for p in directory.rglob("*") if p.suffix in (".deb", ".changelog"))
        except (OSError, ValueError) as bad:
            raise UserError(f"cannot read the offline directory {name}: {bad}") from None
        self.directory = directory.absolute()
        self.origin = f"offline {self.directory}"
        self.files: list[_File] = []
        for path in paths[:MAX_FILES]:
            found = self._file(path)
            if found is not None:
                self.files.append(found)
        if not self.files:
            why = f" ({self.warnings[0]})" if self.warnings else ""
            raise UserError(
                f"nothing in the offline directory {name} can be read{why}: it needs .deb"
                " files or <package>_<version>.changelog files"
            )

    def _file(self, path: Path) -> _File | None:
        try:
            if not path.is_file():
                return None
            if path.suffix == ".deb":
                control = deb_control(path)
                build = Build(
                    package=control.package,
                    version=control.version,
                    source=control.source,
                    source_version=control.source_version,
                    security=False,
                    origin=self.origin,
                )
                return _File(build, path, "deb")
            named = changelog_file(path.name)
            if named is None:
                self.warnings.append(
                    f"{shown(str(path), 200)} is not named <package>_<version>.changelog: left out"
                )
                return None
            text = self._text(path)
            source, source_version = latest_upload(parse_changelog(text, shown(str(path), 200)))
            build = Build(named[0], named[1], source, source_version, False, self.origin)
            return _File(build, path, "changelog")
        except UserError as bad:
            self.warnings.append(str(bad))
            return None

    @staticmethod
    def _text(path: Path) -> str:
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_CHANGELOG + 1)
        except OSError as bad:
            raise UserError(f"cannot read {shown(str(path), 200)}: {bad.strerror}") from None
        if len(data) > MAX_CHANGELOG:
            raise UserError(f"{shown(str(path), 200)} is larger than a changelog can be")
        return data.decode("utf-8", "replace")

    def builds(self, packages: Collection[str]) -> dict[str, list[Build]]:
        found: dict[str, list[Build]] = {}
        for file in self.files:
            if file.build.package in packages:
                found.setdefault(file.build.package, []).append(file.build)
        return {package: _unique(builds) for package, builds in found.items()}

    def siblings(self, source: str, source_version: str) -> list[Build]:
        return _unique(
            [
                file.build
                for file in self.files
                if (file.build.source, file.build.source_version) == (source, source_version)
            ]
        )

    def read(self, build: Build) -> DebChangelog:
        files = [
            f
            for f in self.files
            if (f.build.package, f.build.version) == (build.package, build.version)
        ]
        files.sort(key=lambda f: f.kind != "changelog")  # a changelog file first: no unpacking
        pointed = None
        for file in files:
            if file.kind == "changelog":
                return DebChangelog(build.package, self._text(file.path))
            found = deb_changelog(file.path, build.package)
            if found.text is not None:
                return found
            pointed = pointed or found.points_to
        return DebChangelog(build.package, None, pointed)
