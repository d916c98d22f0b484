"""The lab's signed local APT repository, built with apt-ftparchive and gpg.

Layout of repo_dir (a flat "dists" repository that apt reads over HTTP or file:)::

    pool/main/<first letter>/<package>/<package>_<version>_<arch>.deb
    dists/<suite>/main/binary-<arch>/Packages, Packages.gz
    dists/<suite>/Release, InRelease (clearsigned), Release.gpg (detached)
    milepost-lab.asc, milepost-lab.gpg   the public signing key, armored and binary

Two suites share the pool: bookworm (the RUC packages and regular OS updates) and
bookworm-security (OS security updates: a security archive, as Debian's own, which is how
security-only patching tells them apart).

A rebuild is staged in a sibling temp dir and renamed into place, so a half-built
repository is never served; a rebuild that would change nothing leaves it untouched.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from milepost.errors import UserError

SUITE = "bookworm"
SECURITY_SUITE = "bookworm-security"
SUITES = (SUITE, SECURITY_SUITE)
COMPONENT = "main"
ORIGIN = "Milepost Lab"
KEY_UID = "Milepost Lab APT signing key <lab@milepost.invalid>"
KEY_ASC = "milepost-lab.asc"
KEY_GPG = "milepost-lab.gpg"
_SIGNED = ("Release", "InRelease", "Release.gpg")


def ensure_signing_key(gnupg_home: Path) -> str:
    """Create the repository's ed25519 signing key once; returns its fingerprint."""
    gpg = _tool("gpg", "gnupg")
    gnupg_home.mkdir(parents=True, exist_ok=True)
    os.chmod(gnupg_home, 0o700)
    try:
        with _locked(gnupg_home / ".milepost-key.lock"):
            fingerprint = _find_key(gpg, gnupg_home)
            if fingerprint is None:
                _run(
                    [*_gpg(gpg, gnupg_home), "--passphrase", "", "--quick-generate-key"]
                    + [KEY_UID, "ed25519", "sign", "never"]
                )
                fingerprint = _find_key(gpg, gnupg_home)
            if fingerprint is None:
                raise UserError(f"gpg made no signing key in {gnupg_home}")
            return fingerprint
    finally:
        _stop_agent(gnupg_home)


def build_repo(
    repo_dir: Path, gnupg_home: Path, debs: list[Path], security_debs: list[Path] | None = None
) -> None:
    """Build (or rebuild) the signed repository in repo_dir: debs in the main suite,
    security_debs in the security suite."""
    dpkg_deb = _tool("dpkg-deb", "dpkg")
    ftparchive = _tool("apt-ftparchive", "apt-utils")
    gpg = _tool("gpg", "gnupg")
    arch = _run([_tool("dpkg", "dpkg"), "--print-architecture"]).strip()
    if not debs:
        raise UserError("no .deb files to publish: build the RUC packages first")
    pool = _pool_entries(dpkg_deb, [*debs, *(security_debs or [])])
    in_suite = {
        SUITE: {_pool_path(dpkg_deb, deb) for deb in debs},
        SECURITY_SUITE: {_pool_path(dpkg_deb, deb) for deb in security_debs or []},
    }
    fingerprint = ensure_signing_key(gnupg_home)
    repo_dir = repo_dir.absolute()
    repo_dir.parent.mkdir(parents=True, exist_ok=True)
    with _locked(repo_dir.parent / f".{repo_dir.name}.lock"):
        _check_replaceable(repo_dir)
        staging = Path(tempfile.mkdtemp(prefix=f".{repo_dir.name}.new-", dir=repo_dir.parent))
        try:
            _stage(staging, pool, in_suite, ftparchive, gpg, gnupg_home, fingerprint, arch)
            if _manifest(staging) == _manifest(repo_dir) and _verifies(repo_dir):
                shutil.rmtree(staging)
                return
            for suite in SUITES:
                _sign(staging, suite, ftparchive, gpg, gnupg_home, fingerprint, arch)
            _swap(staging, repo_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            _stop_agent(gnupg_home)


def sources_entry(base_url: str, keyring: str = f"/usr/share/keyrings/{KEY_GPG}") -> str:
    """The one-line apt source for the repository served at base_url."""
    return f"deb [signed-by={keyring}] {base_url.rstrip('/')}/ {SUITE} {COMPONENT}\n"


def _pool_path(dpkg_deb: str, deb: Path) -> str:
    """Where a .deb lives in the pool: pool/main/<letter>/<name>/<name>_<version>_<arch>.deb."""
    if not deb.is_file():
        raise UserError(f"{deb} is not a file: build the RUC packages first")
    fields = _run([dpkg_deb, "--field", str(deb), "Package", "Version", "Architecture"])
    info = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line)
    name, arch = info.get("Package", ""), info.get("Architecture", "")
    version = info.get("Version", "").split(":")[-1]
    if not (name and version and arch):
        raise UserError(f"{deb} is not a Debian package with Package, Version, Architecture")
    return f"pool/{COMPONENT}/{name[0]}/{name}/{name}_{version}_{arch}.deb"


def _pool_entries(dpkg_deb: str, debs: list[Path]) -> dict[str, Path]:
    """Map each .deb's pool path to its file; one file per package, version and arch."""
    pool: dict[str, Path] = {}
    for deb in debs:
        rel = _pool_path(dpkg_deb, deb)
        if rel in pool and _sha256(pool[rel]) != _sha256(deb):
            raise UserError(f"{deb} and {pool[rel]} differ but are both {Path(rel).name}")
        pool[rel] = deb
    return pool


def _stage(
    staging: Path,
    pool: dict[str, Path],
    in_suite: dict[str, set[str]],
    ftparchive: str,
    gpg: str,
    gnupg_home: Path,
    fingerprint: str,
    arch: str,
) -> None:
    """Write the pool, the Packages indexes and the public key into staging."""
    os.chmod(staging, 0o755)  # noqa: S103 (served to apt clients over HTTP)
    for rel, deb in sorted(pool.items()):
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(deb, target)
        os.chmod(target, 0o644)
    listing = _run([ftparchive, "--arch", arch, "packages", f"pool/{COMPONENT}"], cwd=staging)
    stanzas = sorted(s.strip("\n") for s in listing.split("\n\n") if s.strip())
    for suite in SUITES:
        mine = [s for s in stanzas if _stanza_filename(s) in in_suite[suite]]
        packages = "".join(f"{s}\n\n" for s in mine).encode()
        index_dir = staging / "dists" / suite / COMPONENT / f"binary-{arch}"
        index_dir.mkdir(parents=True)
        _write(index_dir / "Packages", packages)
        _write(index_dir / "Packages.gz", gzip.compress(packages, compresslevel=9, mtime=0))
    export = [*_gpg(gpg, gnupg_home), "--export-options", "export-minimal"]
    armored = _run([*export, "--armor", "--export", fingerprint])
    _write(staging / KEY_ASC, armored.encode())
    _write(staging / KEY_GPG, _run_bytes([*export, "--export", fingerprint]))
    for path in staging.rglob("*"):
        if path.is_dir():
            os.chmod(path, 0o755)  # noqa: S103 (served to apt clients over HTTP)


def _stanza_filename(stanza: str) -> str:
    for line in stanza.splitlines():
        if line.startswith("Filename: "):
            return line[len("Filename: ") :].strip()
    return ""


def _sign(
    staging: Path,
    suite: str,
    ftparchive: str,
    gpg: str,
    gnupg_home: Path,
    fingerprint: str,
    arch: str,
) -> None:
    """Write dists/<suite>/Release and sign it as InRelease and Release.gpg."""
    security = suite == SECURITY_SUITE
    options = {
        "Origin": ORIGIN,
        "Label": f"{ORIGIN} Security" if security else ORIGIN,
        "Suite": suite,
        "Codename": suite,
        "Components": COMPONENT,
        "Architectures": arch,
        "Description": (
            "Milepost lab OS security updates (lab only)"
            if security
            else "Milepost lab RUC packages and OS updates (lab only)"
        ),
    }
    argv = [ftparchive]
    for field, value in options.items():
        argv += ["-o", f"APT::FTPArchive::Release::{field}={value}"]
    suite_dir = staging / "dists" / suite
    release = _run([*argv, "release", f"dists/{suite}"], cwd=staging)
    _write(suite_dir / "Release", release.encode())
    signer = [*_gpg(gpg, gnupg_home), "--local-user", f"{fingerprint}!", "--digest-algo", "SHA512"]
    _run([*signer, "--output", str(suite_dir / "InRelease"), "--clearsign", "Release"], suite_dir)
    _run(
        [*signer, "--armor", "--output", str(suite_dir / "Release.gpg"), "--detach-sign"]
        + ["Release"],
        suite_dir,
    )
    for name in ("InRelease", "Release.gpg"):
        os.chmod(suite_dir / name, 0o644)


def _manifest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under root except the Release file and its signatures."""
    if not root.is_dir():
        return {}
    skip = {f"dists/{suite}/{name}" for suite in SUITES for name in _SIGNED}
    return {
        path.relative_to(root).as_posix(): _sha256(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).as_posix() not in skip
    }


def _verifies(repo_dir: Path) -> bool:
    """Whether repo_dir's InRelease is validly signed by its exported key."""
    gpgv = shutil.which("gpgv")
    keyring = repo_dir / KEY_GPG
    for suite in SUITES:
        in_release = repo_dir / "dists" / suite / "InRelease"
        if gpgv is None or not keyring.is_file() or not in_release.is_file():
            return False
        done = subprocess.run(
            [gpgv, "--keyring", str(keyring), str(in_release)], capture_output=True, check=False
        )
        if done.returncode != 0:
            return False
    return True


def _check_replaceable(repo_dir: Path) -> None:
    if not repo_dir.exists():
        return
    if not repo_dir.is_dir() or repo_dir.is_symlink():
        raise UserError(f"{repo_dir} is not a directory: move it away or pick another repo_dir")
    ours = (repo_dir / KEY_ASC).is_file() or (repo_dir / "dists" / SUITE / "Release").is_file()
    if any(repo_dir.iterdir()) and not ours:
        raise UserError(
            f"{repo_dir} holds files but no Milepost lab repository: refusing to replace it"
        )


def _swap(staging: Path, repo_dir: Path) -> None:
    """Put staging in repo_dir's place with two renames, then delete the old tree."""
    if not repo_dir.exists():
        os.rename(staging, repo_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{repo_dir.name}.old-", dir=repo_dir.parent))
    os.rename(repo_dir, old / "repo")
    os.rename(staging, repo_dir)
    shutil.rmtree(old, ignore_errors=True)


def _find_key(gpg: str, gnupg_home: Path) -> str | None:
    """The fingerprint of a usable secret key with the repository's user ID, if any."""
    done = subprocess.run(
        [*_gpg(gpg, gnupg_home), "--with-colons", "--list-secret-keys"],
        capture_output=True,
        text=True,
        check=False,
    )
    keys: list[dict[str, str]] = []  # one per secret key: validity, fpr, uids
    for line in done.stdout.splitlines():
        fields = line.split(":")
        if fields[0] == "sec" and len(fields) > 1:
            keys.append({"validity": fields[1], "fpr": "", "uids": ""})
        elif keys and fields[0] == "fpr" and len(fields) > 9 and not keys[-1]["fpr"]:
            keys[-1]["fpr"] = fields[9]
        elif keys and fields[0] == "uid" and len(fields) > 9:
            keys[-1]["uids"] += fields[9] + "\n"
    for key in keys:
        usable = key["validity"] not in ("r", "e", "d", "i")
        if usable and key["fpr"] and KEY_UID + "\n" in key["uids"]:
            return key["fpr"]
    return None


def _gpg(gpg: str, gnupg_home: Path) -> list[str]:
    return [gpg, "--batch", "--quiet", "--homedir", str(gnupg_home), "--pinentry-mode", "loopback"]


def _stop_agent(gnupg_home: Path) -> None:
    """Stop the gpg-agent that gpg started for gnupg_home, so none is left behind."""
    gpgconf = shutil.which("gpgconf")
    if gpgconf is not None and gnupg_home.is_dir():
        subprocess.run(
            [gpgconf, "--homedir", str(gnupg_home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chmod(path, 0o644)


def _tool(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise UserError(f"{program} not found: install the Debian package {package}")
    return path


def _run(argv: list[str], cwd: Path | None = None) -> str:
    return _run_bytes(argv, cwd).decode("utf-8", errors="replace")


def _run_bytes(argv: list[str], cwd: Path | None = None) -> bytes:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
    except OSError as exc:
        raise UserError(f"cannot run {Path(argv[0]).name}: {exc.strerror}") from exc
    if done.returncode != 0:
        errors = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        detail = errors[-1] if errors else "no error output"
        raise UserError(f"{Path(argv[0]).name} failed (exit {done.returncode}): {detail}")
    return done.stdout
