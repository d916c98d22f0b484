"""`milepost advisory sync` (milepost.patching.debian_sync) on a real SQLite ledger against
Debian's real archive (deb.debian.org, signatures checked): the fleet's package facts name
versions older than Debian's security updates, and the advisories recorded are whatever
Debian published, checked against the changelogs' own text. Offline from a directory of
the same .debs, CISA's KEV catalog, and bad input (one line, exit 2, nothing recorded)."""

import json
import os
import re
import shutil
import subprocess
from datetime import datetime
from functools import cmp_to_key
from pathlib import Path

import pytest
from debian.debian_support import version_compare
from debian_packages import ARCHIVES_YAML, PACKAGES, SOURCES, debian  # noqa: F401  (a fixture)
from inventories import write_inventory
from test_changelogs import MENTION, entries

from milepost.cli.main import main
from milepost.errors import UserError
from milepost.input_checks import CVE_ID, DEBIAN_ID
from milepost.ledger import Ledger, package_facts
from milepost.patching.advisories import Advisory, add_advisory, load_advisories, resolve_advisory
from milepost.patching.debian_archives import parse_archives
from milepost.patching.debian_reading import ArchiveReader, DirectoryReader
from milepost.patching.debian_sync import URGENCY_SEVERITY, debian_advisory_id, sync_debian

ROOT = Path(__file__).resolve().parents[3]
MILEPOST = ROOT / ".venv" / "bin" / "milepost"
# The real catalog lives beside the checkout (../shared/data/kev/), not in the repository.
KEV = ROOT.parent / "shared" / "data" / "kev" / "known_exploited_vulnerabilities.json"
TITLE = re.compile(r"(?P<source>\S+) (?P<version>\S+) \((?P<dists>.+)\)")
#: Body fields that say where and when an advisory was read, not what it is.
PROVENANCE = ("origin", "recorded_by", "catalog_version")


def installed(debian) -> dict[str, str]:  # noqa: F811
    """What pay-01 runs: the oldest version the archive offers of each package."""
    return {package: debian.oldest(package).version for package in PACKAGES}


def add_facts(ledger: Ledger, debian) -> None:  # noqa: F811
    ledger.append(
        [
            package_facts("r1", "pay-01", {**installed(debian), "ruc-payment-gateway": "2.3.0"}),
            package_facts("r1", "acct-01", {"libssl3": debian.newest("libssl3").version}),
        ]
    )


@pytest.fixture
def fleet(ledger, debian, monkeypatch):  # noqa: F811
    """The ledger with the fleet's package facts; the sync keeps its APT state and caches in
    the session's Debian state directory."""
    monkeypatch.setenv("MILEPOST_STATE_DIR", str(debian.state_dir))
    add_facts(ledger, debian)
    return ledger


def count(ledger: Ledger) -> int:
    with ledger.read_transaction() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM ledger_records").scalar_one())


def debian_advisories(ledger: Ledger) -> dict[str, Advisory]:
    return {k: a for k, a in load_advisories(ledger).items() if a.source == "debian"}


def what(advisory: Advisory) -> dict:
    """An advisory's body without where and when it was read."""
    return {k: v for k, v in advisory.body().items() if k not in PROVENANCE}


def changelog_text(debian, source: str) -> str:  # noqa: F811
    """The changelog the sync cached for ``source``'s newest version (any of its packages)."""
    cache = debian.state_dir / "debian-cache" / "changelogs"
    for package in PACKAGES:
        offer = debian.newest(package)
        if offer.source == source:
            path = cache / f"{package}_{offer.version.replace(':', '%3a')}.changelog"
            if path.is_file():
                return path.read_text()
    raise AssertionError(f"no cached changelog of {source}")


def expected_uploads(debian, source: str) -> dict[str, dict]:  # noqa: F811
    """{version: entry} of every upload of ``source`` newer than the oldest installed and up
    to the newest offered, that names a CVE or went to a security suite: read from the
    changelog's text, not through python-debian."""
    packages = [p for p in PACKAGES if debian.newest(p).source == source]
    newest = max(
        (debian.newest(p).source_version for p in packages), key=cmp_to_key(version_compare)
    )
    floor = min((installed(debian)[p] for p in packages), key=cmp_to_key(version_compare))
    return {
        e["version"]: e
        for e in entries(changelog_text(debian, source))
        if version_compare(e["version"], floor) > 0
        and version_compare(e["version"], newest) <= 0
        and (MENTION.search(e["raw"]) or "security" in e["dists"])
    }


def test_a_sync_records_one_advisory_per_upload_as_debian_wrote_it(fleet, debian):  # noqa: F811
    summary = sync_debian(fleet, ArchiveReader(SOURCES))
    found = debian_advisories(fleet)
    assert summary.warnings == ()
    assert summary.added == len(found) > 0 and summary.updated == summary.unchanged == 0
    assert summary.uploads == summary.added + summary.not_recorded
    sources = {debian.newest(p).source for p in PACKAGES}
    wanted = {
        debian_advisory_id(source, version)
        for source in sources
        for version in expected_uploads(debian, source)
    }
    assert set(found) == wanted
    runs = installed(debian)
    for advisory in found.values():
        title = TITLE.fullmatch(advisory.title or "")
        assert title, advisory.title
        source, version = title["source"], title["version"]
        assert advisory.source_package == source
        assert advisory.advisory_id == debian_advisory_id(source, version)
        assert DEBIAN_ID.fullmatch(advisory.advisory_id) and len(advisory.advisory_id) <= 64
        entry = expected_uploads(debian, source)[version]
        written = datetime.strptime(entry["trailer"].strip(), "%d %b %Y %H:%M:%S %z")
        assert advisory.published == written.date().isoformat()
        assert advisory.urgency == entry["urgency"].lower()
        assert advisory.severity == URGENCY_SEVERITY.get(advisory.urgency, "medium")
        assert not advisory.kev and advisory.due_date is None
        assert advisory.cves == tuple(
            dict.fromkeys(c for c in MENTION.findall(entry["raw"]) if CVE_ID.fullmatch(c))
        )
        assert all(cve in entry["raw"] for cve in advisory.cves)
        assert advisory.origin in {f"{suite} {s.uri}" for s in SOURCES for suite in s.suites}
        # Every package of the source the fleet runs, fixed at this upload's version.
        of_source = {p for p in PACKAGES if debian.newest(p).source == source}
        assert set(advisory.packages) == of_source
        for package, fixed in advisory.packages.items():
            assert fixed is not None and version_compare(fixed, runs[package]) > 0
            assert fixed == version or fixed.startswith(f"{version}+b")  # a binNMU's


def test_a_second_sync_records_nothing_new(fleet):
    first = sync_debian(fleet, ArchiveReader(SOURCES))
    before = count(fleet)
    again = sync_debian(fleet, ArchiveReader(SOURCES))
    assert (again.added, again.updated, again.unchanged) == (0, 0, first.added)
    assert (again.uploads, again.not_recorded) == (first.uploads, first.not_recorded)
    assert count(fleet) == before


def test_offline_from_a_directory_of_the_debs_gives_the_same_advisories(
    fleet,
    debian,  # noqa: F811
    tmp_path,
):
    sync_debian(fleet, ArchiveReader(SOURCES))
    folder = tmp_path / "debs"
    (folder / "pool").mkdir(parents=True)
    for package in PACKAGES:
        shutil.copy(debian.deb(debian.newest(package)), folder / "pool")
    (folder / "broken_1.0_amd64.deb").write_bytes(b"!<arch>\nnot really")
    offline = Ledger.open(f"sqlite:///{tmp_path / 'offline.sqlite'}")
    try:
        add_facts(offline, debian)
        summary = sync_debian(offline, DirectoryReader(folder))
        assert summary.origin == f"offline {folder}"
        [warning] = summary.warnings
        assert "broken_1.0_amd64.deb" in warning and "\n" not in warning
        online, read = debian_advisories(fleet), debian_advisories(offline)
        assert {k: what(a) for k, a in read.items()} == {k: what(a) for k, a in online.items()}
        assert {a.origin for a in read.values()} == {f"offline {folder}"}
    finally:
        offline.close()


def kev_catalog(entries_added: list[dict]) -> dict:
    """A copy of CISA's catalog (or a minimal one of the same schema) with entries added."""
    if KEV.is_file():
        catalog = json.loads(KEV.read_text())
    else:
        catalog = {"title": "CISA Catalog of Known Exploited Vulnerabilities",
                   "catalogVersion": "2026.12.01", "dateReleased": "2026-12-01T00:00:00.000Z",
                   "count": 0, "vulnerabilities": []}  # fmt: skip
    catalog["vulnerabilities"] += entries_added
    catalog["count"] = len(catalog["vulnerabilities"])
    return catalog


def kev_entry(cve: str, due: str) -> dict:
    return {
        "cveID": cve,
        "vendorProject": "Debian",
        "product": "A package",
        "vulnerabilityName": "A test entry",
        "dateAdded": "2026-11-30",
        "shortDescription": "",
        "requiredAction": "Apply updates per vendor instructions.",
        "dueDate": due,
        "knownRansomwareCampaignUse": "Unknown",
        "notes": "",
        "cwes": [],
    }


def test_an_upload_naming_a_kev_cve_is_a_kev_advisory_due_on_the_earliest_date(
    fleet, tmp_path, capsys
):
    sync_debian(fleet, ArchiveReader(SOURCES))
    chosen = max(debian_advisories(fleet).values(), key=lambda a: len(a.cves or ()))
    cves = list(chosen.cves or ())
    assert cves
    added = [kev_entry(cves[0], "2031-02-01")]
    if len(cves) > 1:
        added.append(kev_entry(cves[-1], "2031-01-15"))
    catalog = kev_catalog(added)
    path = tmp_path / "kev.json"
    path.write_text(json.dumps(catalog))
    inventory = write_inventory(tmp_path / "inventory", debian_archives=ARCHIVES_YAML)
    code = main(["advisory", "sync", "-i", str(inventory), "--kev", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["kev"] >= 1 and summary["updated"] >= 1 and summary["added"] == 0
    assert summary["catalog_version"] == catalog["catalogVersion"]
    now = debian_advisories(fleet)[chosen.advisory_id]
    assert now.kev and now.severity == "critical"
    assert now.due_date == min(entry["dueDate"] for entry in added)
    assert now.catalog_version == catalog["catalogVersion"]
    # Without the catalog it stays a KEV advisory: nothing changes.
    code = main(["advisory", "sync", "-i", str(inventory), "--json"])
    again = json.loads(capsys.readouterr().out)
    assert code == 0 and again["added"] == again["updated"] == 0


def test_a_cve_resolves_to_the_earliest_upload_naming_it(fleet):
    sync_debian(fleet, ArchiveReader(SOURCES))
    advisories = load_advisories(fleet)
    named = {cve for a in debian_advisories(fleet).values() for cve in a.cves or ()}
    assert named
    for cve in named:
        found = resolve_advisory(advisories, cve)
        assert found is not None and cve in (found.cves or ())
        naming = [a for a in advisories.values() if cve in (a.cves or ())]
        assert all(found.published <= a.published for a in naming)
    cve = sorted(named)[0]
    own = add_advisory(fleet, advisory_id=cve, packages={"libssl3": None}, severity="low")
    assert resolve_advisory(load_advisories(fleet), cve) == own
    assert resolve_advisory(advisories, "CVE-1999-0001") is None
    assert resolve_advisory(advisories, "RUC-2026-001") is None


def upload(advisory_id: str, published: str, fixed: str, cves: tuple[str, ...]) -> Advisory:
    return Advisory(
        advisory_id=advisory_id, source="debian", title=None, severity="high", kev=False,
        published=published, due_date=None, packages={"libfoo1": fixed}, vendor_project=None,
        product=None, recorded_at=published, seq=1, cves=cves, source_package="foo",
    )  # fmt: skip


def test_the_earliest_upload_is_the_first_published_then_the_lowest_version():
    later = upload("DEB-foo-1.2.1", "2026-03-01", "1.2-1", ("CVE-2026-1111",))
    first = upload("DEB-foo-1.1.3", "2026-01-10", "1.1-3", ("CVE-2026-1111", "CVE-2026-2222"))
    same_day = upload("DEB-foo-1.1.2", "2026-01-10", "1.1-2", ("CVE-2026-2222",))
    advisories = {a.advisory_id: a for a in (later, first, same_day)}
    assert resolve_advisory(advisories, "CVE-2026-1111") == first
    assert resolve_advisory(advisories, "CVE-2026-2222") == same_day


def test_advisory_ids_of_uploads_are_short_and_plain():
    assert debian_advisory_id("openssl", "3.0.22-1~deb12u2") == "DEB-openssl-3.0.22.1.deb12u2"
    assert (
        debian_advisory_id("zlib", "1:1.2.13.dfsg-1+deb12u1") == "DEB-zlib-1.1.2.13.dfsg.1.deb12u1"
    )
    assert debian_advisory_id("libxml++2.6", "2.42.2-1") == "DEB-libxml..2.6-2.42.2.1"
    long = debian_advisory_id("a" * 90, "1.0-1")
    other = debian_advisory_id("a" * 90, "1.0-2")
    assert len(long) == 64 and long != other and DEBIAN_ID.fullmatch(long)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{2,63}", long)  # the emergency playbook's


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"uri": "http://x"}, "must be a list"),
        ([{"uri": "http://x", "suites": ["a"], "signed_by": "/k", "arch": "x"}], "unknown key"),
        ([{"suites": ["a"], "signed_by": "/k"}], "needs uri"),
        ([{"uri": "http://x y", "suites": ["a"], "signed_by": "/k"}], "needs uri"),
        ([{"uri": "http://x", "suites": ["a"], "signed_by": "k.gpg"}], "needs signed_by"),
        ([{"uri": "http://x", "suites": "bookworm", "signed_by": "/k"}], "list of names"),
        ([{"uri": "http://x", "suites": ["a\nb"], "signed_by": "/k"}], "newline"),
        (
            [{"uri": "http://x", "suites": ["a"], "components": ["-o"], "signed_by": "/k"}],
            "not a suite",
        ),
    ],
)
def test_malformed_archives_are_one_line(value, message):
    with pytest.raises(UserError, match=message) as raised:
        parse_archives(value)
    assert "\n" not in str(raised.value)


def test_archives_default_to_the_main_component():
    [archive] = parse_archives(
        [{"uri": "http://deb.debian.org/debian/", "suites": ["bookworm"], "signed_by": "/k.gpg"}]
    )
    assert (archive.uri, archive.components, archive.signed_by) == (
        "http://deb.debian.org/debian", ("main",), Path("/k.gpg"),
    )  # fmt: skip


# ------------------------------------------------------------------ bad input, through the CLI


def archives(suite: str, keyring: str, uri: str = "http://deb.debian.org/debian-security") -> str:
    return (
        f"milepost_debian_archives:\n  - uri: {uri}\n    suites: [{suite}]\n"
        f"    signed_by: /usr/share/keyrings/{keyring}\n"
    )


BAD_INPUT = {
    "a suite that does not exist": (
        {"debian_archives": archives("bookworm-nosuch", "debian-archive-keyring.gpg")},
        [],
        "Release",
    ),
    "a keyring that does not sign the Release": (
        {"debian_archives": archives("bookworm-security", "debian-archive-trixie-stable.gpg")},
        [],
        "signatures couldn't be verified",
    ),
    "a keyring that does not exist": (
        {"debian_archives": archives("bookworm-security", "no-such-keyring.gpg")},
        [],
        "does not exist",
    ),
    "no archives configured": ({}, [], "milepost_debian_archives is not set"),
    "a KEV file of the wrong schema": (
        {"debian_archives": ARCHIVES_YAML},
        ["--kev", "{kev}"],
        "is not a KEV catalog",
    ),
    "a directory holding only a corrupt .deb": ({}, ["--from", "{corrupt}"], "corrupt.deb"),
    "a directory that does not exist": ({}, ["--from", "{missing}"], "does not exist"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_and_records_nothing(ledger, debian, tmp_path, case):  # noqa: F811
    """Each through `milepost advisory sync` in a process of its own; the APT state is the
    test's own (a failed update leaves the session's alone)."""
    group_vars, extra, said = BAD_INPUT[case]
    add_facts(ledger, debian)
    before = count(ledger)
    inventory = write_inventory(tmp_path / "inventory", **group_vars)
    (tmp_path / "kev.json").write_text(json.dumps({"catalogVersion": "1", "entries": []}))
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "corrupt.deb").write_bytes(b"!<arch>\ndebian-binary   0")
    paths = {
        "kev": tmp_path / "kev.json",
        "corrupt": tmp_path / "corrupt",
        "missing": tmp_path / "nope",
    }
    argv = [str(MILEPOST), "advisory", "sync", "-i", str(inventory)]
    argv += [arg.format(**paths) for arg in extra]
    done = subprocess.run(
        argv, capture_output=True, text=True, env=dict(os.environ), timeout=300, check=False
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("milepost: error:"), done.stderr
    assert said in lines[0] and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert count(ledger) == before
