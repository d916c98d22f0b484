"""`milepost advisory sync`: security advisories from Debian's own data, one per upload.

For every package installed on the fleet (the ledger's package facts) that a reader
(milepost.patching.debian_reading: the configured archives, or an offline directory)
offers in a newer version, the changelog entries between the oldest installed version
(exclusive) and the newest offered one (inclusive) are read; each entry is one upload of
the source package. An upload naming a CVE id, or uploaded to a security suite, becomes an
advisory (source "debian", id DEB-<source>-<version>); the others are only counted.

The advisory's packages are the source's binary packages installed on the fleet, each
with the version of it the upload built (the source version when the reader does not
offer it); its severity is the changelog's urgency (emergency and critical: critical). An
upload naming a CVE in CISA's KEV catalog is a KEV advisory, critical, due on the
catalog's earliest dueDate among them. The catalog is the file given, else the KEV
advisories already in the ledger (`milepost advisory import`).

Every new or changed advisory of one sync is appended in one transaction (a second sync
appends nothing); nothing is appended when the sync fails.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cmp_to_key
from typing import TYPE_CHECKING, Any

from debian.debian_support import version_compare

from milepost.archive.changelogs import Upload, oldest_version, parse_changelog, uploads_between
from milepost.errors import UserError
from milepost.input_checks import (
    CVE_ID,
    DEBIAN_ID,
    MAX_ADVISORY_ID,
    check_text,
    safe_text,
    shown,
)
from milepost.ledger.names import MAX_ADVISORY_PACKAGES
from milepost.patching.advisories import MAX_TITLE, Advisory, _apply, _Given, load_advisories
from milepost.patching.exposure import installed_packages

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger
    from milepost.patching.advisory_import import KevCatalog
    from milepost.patching.debian_reading import Build, Reader

__all__ = ["SyncSummary", "debian_advisory_id", "sync_debian"]

#: Severity of an upload by its changelog urgency (Debian Policy 5.6.17); another: medium.
URGENCY_SEVERITY = {
    "emergency": "critical",
    "critical": "critical",
    "high": "high",
    "medium": "medium",
    "low": "low",
}
#: A character of a version the advisory id does not keep (written '.').
NOT_IN_ID = re.compile(r"[^A-Za-z0-9.]")
HASH_LENGTH = 8


@dataclass(frozen=True)
class SyncSummary:
    """What a sync did: uploads read, advisories added, updated and unchanged, uploads
    neither naming a CVE nor from a security suite (not recorded), uploads naming a KEV
    CVE, the KEV catalog version used, where it read, and its warnings."""

    uploads: int
    added: int
    updated: int
    unchanged: int
    not_recorded: int
    kev: int
    catalog_version: str | None
    origin: str
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["warnings"] = list(self.warnings)
        return data


def debian_advisory_id(source: str, version: str) -> str:
    """DEB-<source>-<version>, every character of either but letters, digits and '.'
    written '.' (a source name's '-' kept); cut to 64 characters with a short hash of the
    whole when longer."""
    whole = f"DEB-{source.replace('+', '.')}-{NOT_IN_ID.sub('.', version)}"
    if len(whole) > MAX_ADVISORY_ID:
        digest = hashlib.sha256(whole.encode()).hexdigest()[:HASH_LENGTH]
        whole = f"{whole[: MAX_ADVISORY_ID - HASH_LENGTH - 1]}-{digest}"
    if not DEBIAN_ID.fullmatch(whole):
        raise UserError(f"{shown(source)} {shown(version)} makes no advisory id")
    return whole


# ------------------------------------------------------------------ the KEV catalog


@dataclass(frozen=True)
class _Kev:
    """The KEV entries to match: {CVE id: dueDate or None}, and the catalog's version."""

    due: Mapping[str, str | None]
    version: str | None


def _kev(catalog: KevCatalog | None, advisories: Mapping[str, Advisory]) -> _Kev:
    if catalog is not None:
        return _Kev(dict(catalog.due_dates()), catalog.version)
    imported = [a for a in advisories.values() if a.kev and CVE_ID.fullmatch(a.advisory_id)]
    versions = sorted(a.catalog_version for a in imported if a.catalog_version)
    return _Kev({a.advisory_id: a.due_date for a in imported}, versions[-1] if versions else None)


# ------------------------------------------------------------------ what the fleet runs


def _lowest(installed: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """{package: the oldest version of it installed on any host}."""
    lowest: dict[str, str] = {}
    for packages in installed.values():
        for name, version in packages.items():
            if name not in lowest or version_compare(version, lowest[name]) < 0:
                lowest[name] = version
    return lowest


def _own_versions(builds: Sequence[Build]) -> bool:
    """Are this package's versions its source's (a binNMU's +bN aside)?"""
    return all(
        b.version == b.source_version or b.version.startswith(f"{b.source_version}+b")
        for b in builds
    )


def _installed_source_version(installed: str, builds: Sequence[Build]) -> str | None:
    """The source version of ``installed``: the offered build's, else the version itself
    when the package's versions are its source's; None when it cannot be told."""
    for build in builds:
        if build.version == installed:
            return build.source_version
    return installed if _own_versions(builds) else None


def _newest(versions: Sequence[str]) -> str:
    return max(versions, key=cmp_to_key(version_compare))


def _oldest(versions: Sequence[str]) -> str:
    return min(versions, key=cmp_to_key(version_compare))


# ------------------------------------------------------------------ the sync


class _Sync:
    """One sync's work: the uploads of each source, the advisories they make."""

    def __init__(self, reader: Reader, kev: _Kev, existing: Mapping[str, Advisory]) -> None:
        self.reader = reader
        self.kev = kev
        self.existing = existing
        self.given: list[tuple[_Given, str]] = []
        self.uploads = self.not_recorded = self.kev_matches = 0

    @property
    def warnings(self) -> list[str]:
        return self.reader.warnings

    def source(
        self, source: str, builds: Mapping[str, list[Build]], lowest: Mapping[str, str]
    ) -> None:
        """Read the uploads of ``source`` newer than the oldest installed version of its
        packages (``builds``: what is offered of each) and make their advisories."""
        floors = []
        for package, offered in builds.items():
            floor = _installed_source_version(lowest[package], offered)
            if floor is None:
                self.warnings.append(
                    f"cannot tell which version of {source} {package} {lowest[package]} was built"
                    " from (its versions are not its source's): left out"
                )
                continue
            floors.append(floor)
        everything = [b for offered in builds.values() for b in offered]
        newest = _newest([b.source_version for b in everything])
        if not floors or version_compare(newest, _oldest(floors)) <= 0:
            return
        floor = _oldest(floors)
        candidates = [b for b in everything if b.source_version == newest]
        candidates.sort(key=lambda b: (b.package != source, b.package))
        found = self.reader.changelog(candidates)
        if found is None:
            return
        text, read_from = found
        try:
            changelog = parse_changelog(
                text, f"the changelog of {read_from.package} {read_from.version}"
            )
        except UserError as bad:
            self.warnings.append(str(bad))
            return
        oldest = oldest_version(changelog)
        if oldest is not None and version_compare(oldest, floor) > 0:
            self.warnings.append(
                f"the changelog of {source} {newest} goes back to {oldest}, not to the installed"
                f" {floor}: uploads in between are not recorded"
            )
        for upload in uploads_between(changelog, floor, newest):
            self.uploads += 1
            self.upload(upload, builds, everything, read_from)

    def upload(
        self,
        upload: Upload,
        builds: Mapping[str, list[Build]],
        everything: list[Build],
        read_from: Build,
    ) -> None:
        offered = [b for b in everything if b.source_version == upload.version]
        security = upload.security or any(b.security for b in offered)
        if not upload.cves and not security:
            self.not_recorded += 1
            return
        where = f"the changelog entry {upload.source} {upload.version}"
        try:
            given = self.advisory(upload, builds, offered, read_from, where)
        except UserError as bad:
            self.warnings.append(f"{where} is not recorded: {bad}")
            return
        self.given.append((given, where))

    def advisory(
        self,
        upload: Upload,
        builds: Mapping[str, list[Build]],
        offered: list[Build],
        read_from: Build,
        where: str,
    ) -> _Given:
        if upload.date is None:
            raise UserError("its date cannot be read")
        advisory_id = debian_advisory_id(upload.source, upload.version)
        packages: dict[str, str | None] = {}
        for package, versions in sorted(builds.items()):
            built = [b.version for b in offered if b.package == package]
            if built:
                packages[package] = built[0]
            elif _own_versions(versions):
                packages[package] = upload.version
        if len(packages) > MAX_ADVISORY_PACKAGES:
            self.warnings.append(f"{where} names only its first {MAX_ADVISORY_PACKAGES} packages")
            packages = dict(list(packages.items())[:MAX_ADVISORY_PACKAGES])
        kev_due = [self.kev.due[cve] for cve in upload.cves if cve in self.kev.due]
        given = _Given(
            advisory_id=advisory_id,
            source="debian",
            title=check_text(
                f"{upload.source} {upload.version} ({upload.distributions})",
                "title",
                max_len=MAX_TITLE,
            ),
            published=upload.date,
            packages=packages,
            catalog_version=self.kev.version,
            cves=list(upload.cves),
            source_package=upload.source,
            urgency=safe_text(upload.urgency, "urgency", 64) or None,
            origin=read_from.origin,
        )
        if kev_due:
            self.kev_matches += 1
            given.kev = True
            given.severity = "critical"
            dates = sorted(d for d in kev_due if d)
            given.due_date = dates[0] if dates else None
        elif not (self.existing.get(advisory_id) and self.existing[advisory_id].kev):
            # A KEV advisory stays one (and critical) when this sync's catalog lacks it.
            given.kev = False
            given.severity = URGENCY_SEVERITY.get(upload.urgency, "medium")
        return given


def sync_debian(ledger: Ledger, reader: Reader, catalog: KevCatalog | None = None) -> SyncSummary:
    """Record an advisory for every upload of Debian's newer than what the fleet runs (see
    the module). ``catalog``: CISA's KEV catalog (advisory_import.read_kev_catalog; default:
    the KEV advisories in the ledger). All new and changed advisories in one transaction; a
    package that cannot be read is a warning."""
    existing = load_advisories(ledger)
    sync = _Sync(reader, _kev(catalog, existing), existing)
    lowest = _lowest(installed_packages(ledger))
    by_source: dict[str, dict[str, list[Build]]] = {}
    for package, offered in reader.builds(lowest).items():
        for build in offered:
            by_source.setdefault(build.source, {}).setdefault(package, []).append(build)
    for source in sorted(by_source):
        sync.source(source, by_source[source], lowest)
    summary, _ = _apply(ledger, sync.given, need_packages=False, catalog_version=sync.kev.version)
    return SyncSummary(
        uploads=sync.uploads,
        added=summary.added,
        updated=summary.updated,
        unchanged=summary.unchanged,
        not_recorded=sync.not_recorded,
        kev=sync.kev_matches,
        catalog_version=sync.kev.version,
        origin=reader.origin,
        warnings=tuple(reader.warnings),
    )
