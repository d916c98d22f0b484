"""The lab's signed APT repository: apt-ftparchive indexes, gpg signatures, atomic rebuilds."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from milepost.errors import UserError
from milepost.lab import apt_repo
from milepost.lab.apt_repo import COMPONENT, SUITE, build_repo, ensure_signing_key
from milepost.lab.ruc_packages import CATALOG, build_all

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("dpkg-deb", "apt-ftparchive", "gpg", "gpgv")),
    reason="needs dpkg-deb, apt-ftparchive (apt-utils), gpg and gpgv (gnupg)",
)

ARCH = subprocess.run(
    ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
).stdout.strip()


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return build_all(tmp_path_factory.mktemp("debs"))


@pytest.fixture(scope="module")
def gnupg_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "gnupg"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, gnupg_home: Path, debs: list[Path]) -> Path:
    repo_dir = tmp_path_factory.mktemp("served") / "repo"
    build_repo(repo_dir, gnupg_home, debs)
    return repo_dir


def gpgv(keyring: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["gpgv", "--keyring", str(keyring), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )


def fields(stanza: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {
        p.relative_to(root).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_ino,
        )
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_signing_key_is_created_once(tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    first = ensure_signing_key(home)
    assert len(first) == 40 and all(c in "0123456789ABCDEF" for c in first)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert ensure_signing_key(home) == first
    listing = subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--with-colons", "--list-secret-keys"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert listing.count("\nsec:") + listing.startswith("sec:") == 1
    assert ":ed25519:" in listing


def test_layout(repo: Path) -> None:
    for rel in (
        f"dists/{SUITE}/Release",
        f"dists/{SUITE}/InRelease",
        f"dists/{SUITE}/Release.gpg",
        f"dists/{SUITE}/{COMPONENT}/binary-{ARCH}/Packages",
        f"dists/{SUITE}/{COMPONENT}/binary-{ARCH}/Packages.gz",
        "milepost-lab.asc",
        "milepost-lab.gpg",
        "pool/main/r/ruc-payment-gateway/ruc-payment-gateway_2.3.1_all.deb",
    ):
        path = repo / rel
        assert path.is_file(), rel
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, rel
    assert stat.S_IMODE(repo.stat().st_mode) == 0o755
    assert (repo / "milepost-lab.asc").read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK")
    assert not [p for p in repo.parent.iterdir() if ".new-" in p.name or ".old-" in p.name]


def test_packages_lists_every_version(repo: Path) -> None:
    index = repo / "dists" / SUITE / COMPONENT / f"binary-{ARCH}"
    text = (index / "Packages").read_text()
    assert gzip.decompress((index / "Packages.gz").read_bytes()).decode() == text
    stanzas = [fields(s) for s in text.split("\n\n") if s.strip()]
    listed = sorted((s["Package"], s["Version"]) for s in stanzas)
    assert listed == sorted((p.name, r.version) for p in CATALOG for r in p.releases)
    for stanza in stanzas:
        deb = repo / stanza["Filename"]
        assert hashlib.sha256(deb.read_bytes()).hexdigest() == stanza["SHA256"]


def test_release_fields_and_hashes(repo: Path) -> None:
    release = (repo / "dists" / SUITE / "Release").read_text()
    head = fields(release.split("MD5Sum:")[0])
    assert head["Origin"] == "Milepost Lab"
    assert head["Label"] == "Milepost Lab"
    assert head["Suite"] == SUITE
    assert head["Codename"] == SUITE
    assert head["Components"] == COMPONENT
    assert head["Architectures"] == ARCH
    assert "Valid-Until" not in head
    packages = repo / "dists" / SUITE / COMPONENT / f"binary-{ARCH}" / "Packages"
    digest = hashlib.sha256(packages.read_bytes()).hexdigest()
    sha256 = release.split("SHA256:")[1]
    assert f"{digest} " in sha256 and f"main/binary-{ARCH}/Packages\n" in sha256


def test_signatures_verify_with_the_exported_key(repo: Path, tmp_path: Path) -> None:
    suite = repo / "dists" / SUITE
    keyring = repo / "milepost-lab.gpg"
    assert gpgv(keyring, suite / "InRelease").returncode == 0
    assert gpgv(keyring, suite / "Release.gpg", suite / "Release").returncode == 0
    signed = (suite / "InRelease").read_text()
    assert (suite / "Release").read_text() in signed

    tampered = tmp_path / "Release"
    tampered.write_text((suite / "Release").read_text().replace("Milepost Lab", "Evil Lab", 1))
    # Refused for the signature itself, not for any other reason gpgv may fail.
    refused = gpgv(keyring, suite / "Release.gpg", tampered)
    assert refused.returncode != 0 and "BAD signature" in refused.stderr, refused.stderr
    tampered_in = tmp_path / "InRelease"
    tampered_in.write_text(signed.replace("Origin: Milepost Lab", "Origin: Evil Lab"))
    assert tampered_in.read_text() != signed
    refused = gpgv(keyring, tampered_in)
    assert refused.returncode != 0 and "BAD signature" in refused.stderr, refused.stderr


def test_rebuild_without_changes_leaves_the_repo_alone(
    repo: Path, gnupg_home: Path, debs: list[Path]
) -> None:
    before = snapshot(repo)
    fingerprint = ensure_signing_key(gnupg_home)
    build_repo(repo, gnupg_home, debs)
    assert snapshot(repo) == before
    assert ensure_signing_key(gnupg_home) == fingerprint


def test_rebuild_with_changes_replaces_the_repo(
    tmp_path: Path, gnupg_home: Path, debs: list[Path]
) -> None:
    repo = tmp_path / "repo"
    build_repo(repo, gnupg_home, [d for d in debs if "ruc-reporting" in d.name])
    key_before = (repo / "milepost-lab.gpg").read_bytes()
    build_repo(repo, gnupg_home, debs)
    assert (repo / "milepost-lab.gpg").read_bytes() == key_before
    packages = (repo / "dists" / SUITE / COMPONENT / f"binary-{ARCH}" / "Packages").read_text()
    assert "Package: ruc-account-api" in packages
    assert gpgv(repo / "milepost-lab.gpg", repo / "dists" / SUITE / "InRelease").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["repo"]


def test_security_debs_are_published_in_the_signed_security_suite_only(
    tmp_path: Path, gnupg_home: Path, debs: list[Path]
) -> None:
    repo = tmp_path / "repo"
    security = [d for d in debs if "ruc-reporting" in d.name]
    build_repo(repo, gnupg_home, [d for d in debs if d not in security], security)
    index = f"{COMPONENT}/binary-{ARCH}/Packages"
    main = (repo / "dists" / SUITE / index).read_text()
    secure = (repo / "dists" / apt_repo.SECURITY_SUITE / index).read_text()
    assert "Package: ruc-reporting" in secure and "Package: ruc-reporting" not in main
    assert "Package: ruc-account-api" in main and "Package: ruc-account-api" not in secure
    release = fields((repo / "dists" / apt_repo.SECURITY_SUITE / "Release").read_text())
    assert release["Suite"] == release["Codename"] == "bookworm-security"
    for suite in apt_repo.SUITES:
        in_release = repo / "dists" / suite / "InRelease"
        assert gpgv(repo / "milepost-lab.gpg", in_release).returncode == 0


def test_refuses_to_replace_a_directory_that_is_not_a_repo(
    tmp_path: Path, gnupg_home: Path, debs: list[Path]
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="refusing to replace"):
        build_repo(precious, gnupg_home, debs)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_bad_inputs_are_user_errors(tmp_path: Path, gnupg_home: Path) -> None:
    with pytest.raises(UserError, match="no .deb files"):
        build_repo(tmp_path / "repo", gnupg_home, [])
    with pytest.raises(UserError, match="is not a file"):
        build_repo(tmp_path / "repo", gnupg_home, [tmp_path / "missing.deb"])
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize(("tool", "package"), [("apt-ftparchive", "apt-utils"), ("gpg", "gnupg")])
def test_missing_tool_names_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debs: list[Path], tool: str, package: str
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for present in ("dpkg-deb", "apt-ftparchive", "gpg", "dpkg", "gpgconf"):
        if present != tool:
            (bin_dir / present).symlink_to(shutil.which(present) or "/bin/false")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(UserError, match=f"{tool} not found: install the Debian package {package}"):
        build_repo(tmp_path / "repo", tmp_path / "gnupg", debs)


def test_sources_entry() -> None:
    assert apt_repo.sources_entry("http://127.0.0.1:8080/") == (
        "deb [signed-by=/usr/share/keyrings/milepost-lab.gpg]"
        " http://127.0.0.1:8080/ bookworm main\n"
    )


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get")
def test_apt_accepts_the_repository(repo: Path, tmp_path: Path) -> None:
    """apt-get update against the repository, with apt's state kept under tmp_path."""
    (tmp_path / "lists" / "partial").mkdir(parents=True)
    (tmp_path / "cache" / "archives" / "partial").mkdir(parents=True)
    (tmp_path / "status").write_text("")
    sources = tmp_path / "sources.list"
    sources.write_text(apt_repo.sources_entry(f"file:{repo}", str(repo / "milepost-lab.gpg")))
    options = [
        f"-oDir::Etc::SourceList={sources}",
        "-oDir::Etc::SourceParts=/nonexistent",
        f"-oDir::State::Lists={tmp_path / 'lists'}",
        f"-oDir::Cache={tmp_path / 'cache'}",
        f"-oDir::State::status={tmp_path / 'status'}",
        "-oDir::Etc::Preferences=/dev/null",
        "-oDir::Etc::PreferencesParts=/nonexistent",
        "-oDebug::NoLocking=1",
        "-oAPT::Sandbox::User=root",
    ]
    update = subprocess.run(
        ["apt-get", *options, "update"], capture_output=True, text=True, timeout=60, check=False
    )
    assert update.returncode == 0, update.stderr
    assert "NO_PUBKEY" not in update.stderr and "not signed" not in update.stderr
    policy = subprocess.run(
        ["apt-cache", *options, "policy", "ruc-payment-gateway"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Candidate: 2.4.0" in policy
    assert "2.3.1" in policy and "2.3.0" in policy
