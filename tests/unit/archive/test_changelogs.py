"""Reading Debian changelogs (milepost.archive.changelogs) from the real .deb files of
several packages, downloaded from deb.debian.org with a private APT state (signatures and
hashes checked by apt). No version, date or CVE id is written here: each is compared with
the changelog's own text, read independently of python-debian."""

import re
from datetime import datetime
from functools import cmp_to_key

import pytest
from debian.debian_support import version_compare
from debian_packages import PACKAGES, debian  # noqa: F401  (a fixture)

from milepost.archive.changelogs import (
    BadPackage,
    changelog_file,
    changelog_file_name,
    deb_changelog,
    deb_control,
    latest_upload,
    oldest_version,
    parse_changelog,
    uploads_between,
)
from milepost.errors import UserError
from milepost.input_checks import CVE_ID
from milepost.inventory.debian import PACKAGE_NAME

HEADER = re.compile(
    rf"^(?P<source>{PACKAGE_NAME.pattern}) \((?P<version>[^)\s]+)\) (?P<dists>[^;]+);"
    r".*?urgency=(?P<urgency>\w+)",
    re.MULTILINE,
)
TRAILER = re.compile(r"^ -- .+?  \w{3}, (?P<date>.+)$", re.MULTILINE)
MENTION = re.compile(r"CVE-\d{4}-\d{4,}")


def entries(text: str) -> list[dict]:
    """Each entry of a changelog's own source as written (a renamed package keeps its
    predecessor's entries: python3.11's holds python3.8's), header fields and raw text,
    newest first."""
    heads = list(HEADER.finditer(text))
    found = []
    for head, after in zip(heads, [*heads[1:], None], strict=True):
        raw = text[head.start() : after.start() if after else len(text)]
        trailer = TRAILER.search(raw)
        if head["source"] == heads[0]["source"]:
            found.append({**head.groupdict(), "raw": raw, "trailer": trailer and trailer["date"]})
    return found


def ascending(versions: list[str]) -> list[str]:
    return sorted(versions, key=cmp_to_key(version_compare))


@pytest.fixture(scope="module")
def changelogs(debian):  # noqa: F811
    """{package: (its newest offer, the changelog text, the package it was read from)}."""
    found = {}
    for package in PACKAGES:
        offer = debian.newest(package)
        read = deb_changelog(debian.deb(offer), package)
        source_of_text = package
        if read.text is None:
            assert read.points_to, f"{package} has neither a changelog nor a doc symlink"
            other = debian.offer(read.points_to, offer.source_version)
            assert other is not None and other.source == offer.source
            read = deb_changelog(debian.deb(other), other.package)
            source_of_text = other.package
        assert read.text
        found[package] = (offer, read.text, source_of_text)
    return found


def test_a_package_without_a_changelog_of_its_own_names_the_one_that_has_it(changelogs):
    pointed = {package: read_from for package, (_, _, read_from) in changelogs.items()}
    assert pointed["libpython3.11-stdlib"] != "libpython3.11-stdlib"
    assert all(pointed[p] == p for p in PACKAGES if p != "libpython3.11-stdlib")


@pytest.mark.parametrize("package", PACKAGES)
def test_the_changelog_starts_with_the_upload_the_package_was_built_from(changelogs, package):
    offer, text, _ = changelogs[package]
    changelog = parse_changelog(text, package)
    assert latest_upload(changelog) == (offer.source, offer.source_version)
    assert oldest_version(changelog) == entries(text)[-1]["version"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_upload_between_two_versions_is_returned_oldest_first(changelogs, package):
    offer, text, _ = changelogs[package]
    changelog = parse_changelog(text, package)
    written = [e["version"] for e in entries(text)]
    assert len(written) >= 3, "too short a changelog to test ranges"
    newest = offer.source_version
    # Installed versions: none, the oldest entry, one in the middle, one before all of them,
    # and the newest (nothing to read).
    for after in (None, written[-1], written[len(written) // 2], "0~", newest):
        for upto in (newest, written[1]):
            got = [u.version for u in uploads_between(changelog, after, upto)]
            wanted = [
                v
                for v in written
                if version_compare(v, upto) <= 0
                and (after is None or version_compare(v, after) > 0)
            ]
            assert got == ascending(wanted), (after, upto)
    assert uploads_between(changelog, newest, newest) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_each_upload_is_read_as_the_entry_is_written(changelogs, package):
    offer, text, _ = changelogs[package]
    by_version = {e["version"]: e for e in entries(text)}
    uploads = uploads_between(parse_changelog(text, package), None, offer.source_version)
    # Up to the offer's own version: a stable update of a native package (ca-certificates
    # 20250419~deb12u2) also holds the unstable upload it was made from, a later version.
    upto = [v for v in by_version if version_compare(v, offer.source_version) <= 0]
    assert [u.version for u in uploads] == ascending(upto)
    for upload in uploads:
        entry = by_version[upload.version]
        assert upload.source == entry["source"] == offer.source
        assert upload.distributions == entry["dists"].strip()
        assert upload.urgency == entry["urgency"].lower()
        assert upload.security == ("security" in entry["dists"])
        if entry["trailer"]:
            written = datetime.strptime(entry["trailer"].strip(), "%d %b %Y %H:%M:%S %z")
            assert upload.date == written.date().isoformat()
        mentioned = [m for m in MENTION.findall(entry["raw"]) if CVE_ID.fullmatch(m)]
        assert list(upload.cves) == list(dict.fromkeys(mentioned))
        for cve in upload.cves:
            assert CVE_ID.fullmatch(cve) and cve in entry["raw"]
        assert upload.text.startswith(entry["raw"].split("\n", 1)[0])


def test_entries_with_and_without_cves_are_both_read(changelogs):
    """Across the packages, entries naming no CVE give an empty list and the others name
    each CVE once."""
    uploads = [
        upload
        for package, (offer, text, _) in changelogs.items()
        for upload in uploads_between(parse_changelog(text, package), None, offer.source_version)
    ]
    without = [u for u in uploads if "CVE-" not in u.text]
    assert without and all(u.cves == () for u in without)
    named = [u for u in uploads if u.cves]
    assert named and all(len(set(u.cves)) == len(u.cves) for u in named)


@pytest.mark.parametrize("package", ["libssl3", "zlib1g", "libpython3.11-stdlib"])
def test_a_deb_says_who_it_is(debian, package):  # noqa: F811
    offer = debian.newest(package)
    control = deb_control(debian.deb(offer))
    assert (control.package, control.version) == (offer.package, offer.version)
    assert (control.source, control.source_version) == (offer.source, offer.source_version)


def test_changelog_file_names_keep_package_and_version(debian):  # noqa: F811
    offer = debian.newest("zlib1g")  # its version has an epoch (1:...)
    name = changelog_file_name(offer.package, offer.version)
    assert ":" not in name and name.endswith(".changelog")
    assert changelog_file(name) == (offer.package, offer.version)
    assert changelog_file("notes.txt") is None
    assert changelog_file("Bad Name_1.0.changelog") is None
    assert changelog_file("nounderscore.changelog") is None


def test_a_file_that_is_not_a_deb_is_one_line_naming_it(tmp_path, debian):  # noqa: F811
    real = debian.deb(debian.newest("libexpat1")).read_bytes()
    cases = {
        "empty.deb": b"",
        "text.deb": b"not a package\n",
        "truncated.deb": real[: len(real) // 2],
        "header-only.deb": real[:200],
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        # Its control part comes first: a package cut in half still says who it is.
        readers = [lambda p: deb_changelog(p, "libexpat1")]
        if name != "truncated.deb":
            readers.append(deb_control)
        for read in readers:
            with pytest.raises(BadPackage) as raised:
                read(path)
            message = str(raised.value)
            assert name in message and "\n" not in message and len(message) < 400


def test_text_that_is_no_changelog_is_refused():
    for text in ("", "just some words\n", "\n\n"):
        with pytest.raises(UserError, match="is not a Debian changelog"):
            parse_changelog(text, "the file")
