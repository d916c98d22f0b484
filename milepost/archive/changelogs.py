"""Debian changelogs: read from a binary package, parsed with python-debian, and cut to the
uploads between two versions. For the advisory sync (milepost.patching.debian_sync), which
records one advisory per upload.

A binary package carries its source's changelog as
``./usr/share/doc/<package>/changelog.Debian.gz``, or, built from a native source (Debian's
own, such as ca-certificates), as ``changelog.gz`` (Debian Policy 12.7), which is then in
Debian's changelog format. Some carry none: their doc directory is a symlink to another
binary package's of the same source, named in :class:`DebChangelog`.
``dpkg-deb --fsys-tarfile`` streams the package's files into :mod:`tarfile` (no shell);
the stream stops at the changelog.

Nothing here touches the ledger, the network or a managed host.
"""

from __future__ import annotations

import email.utils
import gzip
import io
import logging
import re
import shutil
import signal
import subprocess
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cmp_to_key
from pathlib import Path
from typing import IO

from debian.changelog import ChangeBlock, Changelog, ChangelogParseError
from debian.debian_support import version_compare

from milepost.errors import UserError
from milepost.input_checks import CVE_ID, shown
from milepost.inventory.debian import DEBIAN_VERSION, PACKAGE_NAME

__all__ = [
    "MAX_CHANGELOG",
    "BadPackage",
    "DebChangelog",
    "DebControl",
    "Upload",
    "changelog_file",
    "changelog_file_name",
    "deb_changelog",
    "deb_control",
    "latest_upload",
    "oldest_version",
    "parse_changelog",
    "uploads_between",
]

#: The CVE ids an entry names (checked against input_checks.CVE_ID before use).
CVE_MENTION = re.compile(r"CVE-\d{4}-\d{4,}")
#: Largest changelog read, compressed or not (glibc's whole history is a few MiB).
MAX_CHANGELOG = 32 * 1024 * 1024
#: Seconds dpkg-deb may take to stream one package.
DPKG_DEB_TIMEOUT = 300
#: What a changelog file's name ends with (as the sync's cache writes them).
CHANGELOG_SUFFIX = ".changelog"
#: The first line of a changelog in Debian's format: "source (version) suites; urgency=".
DEBIAN_FORMAT = re.compile(rf"{PACKAGE_NAME.pattern} \([^ ()]+\) [^;\n]+;")


class BadPackage(UserError):
    """A .deb that cannot be read (one line naming it)."""


@dataclass(frozen=True)
class DebChangelog:
    """What a .deb says of its changelog: the text, or the binary package its doc
    directory points to (a symlink), or neither."""

    package: str
    text: str | None
    points_to: str | None = None


@dataclass(frozen=True)
class Upload:
    """One changelog entry: one upload of a source package."""

    source: str
    version: str
    #: The suites the upload was for (bookworm-security), as the entry names them.
    distributions: str
    urgency: str
    #: The entry's date as published (its own time zone), YYYY-MM-DD; None if unreadable.
    date: str | None
    #: CVE ids the entry names, in order of first mention.
    cves: tuple[str, ...]
    #: The entry as written (header, changes, trailer).
    text: str

    @property
    def security(self) -> bool:
        """Was it uploaded to a security suite?"""
        return "security" in self.distributions.lower()


# ------------------------------------------------------------------ .deb → text


def _member_name(name: str) -> str:
    return name.removeprefix("./")


def _read_limited(handle: IO[bytes] | gzip.GzipFile, what: str) -> bytes:
    data = handle.read(MAX_CHANGELOG + 1)
    if len(data) > MAX_CHANGELOG:
        raise BadPackage(f"{what} is larger than {MAX_CHANGELOG // (1024 * 1024)} MiB")
    return data


def _gunzip(data: bytes, what: str) -> str:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unpacked:
            text = _read_limited(unpacked, what)
    except (OSError, EOFError, zlib.error) as bad:
        raise BadPackage(f"{what} is not gzip data: {' '.join(str(bad).split())[:120]}") from None
    return text.decode("utf-8", "replace")


@contextmanager
def _fsys_tar(deb: Path) -> Iterator[tarfile.TarFile]:
    """The package's files as a tar stream (dpkg-deb --fsys-tarfile; the process is ended
    when the block ends, read to the end or not)."""
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb is None:
        raise UserError("dpkg-deb not found: install dpkg (Milepost reads .deb files with it)")
    process = subprocess.Popen(
        [dpkg_deb, "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    problem = None
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|*") as tar:
            yield tar
    except (tarfile.TarError, EOFError, OSError, zlib.error) as bad:
        problem = " ".join(str(bad).split())
    finally:
        if process.poll() is None:
            process.kill()  # the changelog is read: the rest of the stream is not needed
        _, err = process.communicate(timeout=DPKG_DEB_TIMEOUT)
    if problem is not None or process.returncode not in (0, -signal.SIGKILL):
        why = " ".join(err.decode("utf-8", "replace").split()) or problem or "no output"
        raise BadPackage(f"{shown(str(deb), 200)} is not a readable .deb: {why[:200]}")


@dataclass(frozen=True)
class DebControl:
    """Who a .deb is: its binary package and version, and the source version it was
    built from (a binNMU's binary version differs)."""

    package: str
    version: str
    source: str
    source_version: str


def deb_control(deb: Path) -> DebControl:
    """The control fields of ``deb`` that say who it is. BadPackage (one line) if the file
    is not a .deb or its fields are not Debian names and versions."""
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb is None:
        raise UserError("dpkg-deb not found: install dpkg (Milepost reads .deb files with it)")
    try:
        done = subprocess.run(
            [dpkg_deb, "--field", str(deb), "Package", "Version", "Source"],
            capture_output=True,
            check=False,
            timeout=DPKG_DEB_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as bad:
        raise BadPackage(f"{shown(str(deb), 200)} cannot be read: {bad}") from None
    if done.returncode != 0:
        why = " ".join(done.stderr.decode("utf-8", "replace").split())[:200]
        raise BadPackage(f"{shown(str(deb), 200)} is not a readable .deb: {why}")
    fields = {}
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    package, version = fields.get("Package", ""), fields.get("Version", "")
    source, _, source_version = (fields.get("Source") or package).partition(" ")
    source_version = source_version.strip("()") or version
    if not all(PACKAGE_NAME.fullmatch(name) for name in (package, source)) or not all(
        DEBIAN_VERSION.fullmatch(v) for v in (version, source_version)
    ):
        raise BadPackage(f"{shown(str(deb), 200)} does not name a Debian package and version")
    return DebControl(package, version, source, source_version)


def deb_changelog(deb: Path, package: str) -> DebChangelog:
    """The changelog ``deb`` (a .deb of binary package ``package``) carries, or the package
    its doc directory is a symlink to. BadPackage (one line) if the file is not a .deb."""
    doc = f"usr/share/doc/{package}"
    debian, native = f"{doc}/changelog.Debian.gz", f"{doc}/changelog.gz"
    points_to = None
    native_text = None
    with _fsys_tar(deb) as tar:
        for member in tar:
            name = _member_name(member.name)
            if name == doc and member.issym() and PACKAGE_NAME.fullmatch(member.linkname):
                points_to = member.linkname
            if name not in (debian, native) or not member.isfile():
                continue  # a symlink to another file: not this package's own changelog
            handle = tar.extractfile(member)
            if handle is None:
                continue
            what = f"{shown(str(deb), 200)} {name}"
            text = _gunzip(_read_limited(handle, what), what)
            if name == debian:
                return DebChangelog(package, text)
            if DEBIAN_FORMAT.match(text):
                native_text = text  # a native package's; an upstream changelog is not used
    if native_text is not None:
        return DebChangelog(package, native_text)
    return DebChangelog(package, None, points_to)


# ------------------------------------------------------------------ changelog files


def changelog_file_name(package: str, version: str) -> str:
    """``<package>_<version>.changelog``, the epoch's colon written %3a (as apt names
    .deb files): the name of a changelog the sync caches or finds in a directory."""
    return f"{package}_{version.replace(':', '%3a')}{CHANGELOG_SUFFIX}"


def changelog_file(name: str) -> tuple[str, str] | None:
    """(package, version) a changelog file's name gives, or None if it is not one."""
    if not name.endswith(CHANGELOG_SUFFIX):
        return None
    package, sep, version = name.removesuffix(CHANGELOG_SUFFIX).partition("_")
    version = version.replace("%3a", ":").replace("%3A", ":")
    if not sep or not PACKAGE_NAME.fullmatch(package) or not DEBIAN_VERSION.fullmatch(version):
        return None
    return package, version


# ------------------------------------------------------------------ text → uploads


@contextmanager
def _quiet_parser() -> Iterator[None]:
    """python-debian reports a malformed line of a changelog it reads leniently as a log
    warning: the sync checks every entry it uses instead (old entries may be odd)."""
    parser_log = logging.getLogger("debian.changelog")
    before = parser_log.propagate, parser_log.level
    parser_log.propagate = False
    parser_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        parser_log.propagate, parser_log.level = before


def parse_changelog(text: str, what: str) -> Changelog:
    """``text`` parsed by python-debian (leniently: an odd old entry does not stop it).
    UserError (one line naming ``what``) if it holds no entry at all."""
    try:
        with _quiet_parser():
            changelog = Changelog(text, strict=False)
    except (ChangelogParseError, ValueError) as bad:
        why = " ".join(str(bad).split())[:160]
        raise UserError(f"{what} is not a Debian changelog: {why}") from None
    if not len(changelog) or changelog.package is None or changelog.version is None:
        raise UserError(f"{what} is not a Debian changelog: it holds no entry")
    if not PACKAGE_NAME.fullmatch(changelog.package) or not DEBIAN_VERSION.fullmatch(
        str(changelog.version)
    ):
        raise UserError(
            f"{what} is not a Debian changelog: its first entry names"
            f" {shown(changelog.package)} {shown(str(changelog.version))}, not a Debian"
            " package and version"
        )
    return changelog


def _date(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return email.utils.parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _cves(changes: list[str]) -> tuple[str, ...]:
    found = CVE_MENTION.findall("\n".join(changes))
    return tuple(dict.fromkeys(cve for cve in found if CVE_ID.fullmatch(cve)))


def _versions(changelog: Changelog) -> Iterator[tuple[str, ChangeBlock]]:
    """(version, block) of every entry with a Debian package name and version, newest
    first."""
    for block in changelog:
        version = str(block.version) if block.version is not None else ""
        if PACKAGE_NAME.fullmatch(block.package or "") and DEBIAN_VERSION.fullmatch(version):
            yield version, block


def uploads_between(changelog: Changelog, after: str | None, upto: str) -> list[Upload]:
    """The uploads of ``changelog``'s source package newer than ``after`` (None: every one)
    up to and including ``upto`` (Debian version ordering), oldest first. Entries of another
    source (a package renamed keeps its predecessor's history: python3.11's holds
    python3.8's) are not its uploads."""
    found = []
    for version, block in _versions(changelog):
        if block.package != changelog.package:
            continue
        if version_compare(version, upto) > 0:
            continue
        if after is not None and version_compare(version, after) <= 0:
            continue
        found.append(
            Upload(
                source=str(block.package),
                version=version,
                distributions=str(block.distributions or ""),
                urgency=str(block.urgency or "").strip().lower(),
                date=_date(block.date),
                cves=_cves(block.changes()),
                text=str(block),
            )
        )
    found.sort(key=cmp_to_key(lambda a, b: version_compare(a.version, b.version)))
    return found


def latest_upload(changelog: Changelog) -> tuple[str, str]:
    """(source package, version) of the changelog's newest entry."""
    return str(changelog.package), str(changelog.version)


def oldest_version(changelog: Changelog) -> str | None:
    """The version of the oldest entry of the changelog's source package (a package's
    changelog may be cut short: "Older entries have been removed")."""
    versions = [v for v, block in _versions(changelog) if block.package == changelog.package]
    return versions[-1] if versions else None
