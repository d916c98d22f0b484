"""The lab's RUC software packages: their catalog and a reproducible .deb builder.

Each package installs a small real service (``/usr/bin/<name>``, a python3 program from
``files/ruc-service``) with its config, an LSB init script, a systemd unit, maintainer
scripts and a Debian changelog naming the CVEs each release fixes. Packages are built
with ``dpkg-deb --root-owner-group --build`` and are byte-for-byte reproducible.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from milepost.errors import UserError

MAINTAINER = "Milepost Lab <lab@milepost.invalid>"
DISTRIBUTION = "bookworm"

# One-line summaries of the lab's fictional CVEs, as the changelogs print them.
CVE_SUMMARIES: dict[str, str] = {
    "CVE-2026-31001": "session tokens stay valid after a password reset",
    "CVE-2026-31002": "path traversal in uploaded mileage report names",
    "CVE-2026-31003": "unbounded memory use on oversized odometer batches",
    "CVE-2026-31004": "card verification skipped on retried authorizations",
    "CVE-2026-31005": "one vendor's SFTP account can read another vendor's files",
    "CVE-2026-31006": "SQL injection in the report date filter",
}


@dataclass(frozen=True)
class Release:
    """One version of a RUC package."""

    version: str
    date: str  # RFC 2822, as the changelog prints it
    fixes: tuple[str, ...]  # CVE IDs fixed in this release
    broken: bool = False  # its postinst fails (a deliberately broken release)
    notes: tuple[str, ...] = ()  # other changelog lines

    @property
    def epoch(self) -> int:
        """The release date as seconds since the epoch (SOURCE_DATE_EPOCH)."""
        return int(email.utils.parsedate_to_datetime(self.date).timestamp())


@dataclass(frozen=True)
class RucPackage:
    """A RUC software package and its releases, oldest first."""

    name: str
    group: str  # inventory group whose hosts run it
    description: str
    releases: tuple[Release, ...]

    @property
    def initial(self) -> Release:
        """The oldest release: what lab hosts start on."""
        return self.releases[0]

    @property
    def latest(self) -> Release:
        """The newest release that is not broken."""
        return next(r for r in reversed(self.releases) if not r.broken)


CATALOG: tuple[RucPackage, ...] = (
    RucPackage(
        name="ruc-account-api",
        group="account_management",
        description="RUC account management API (lab service)",
        releases=(
            Release("1.4.0", "Mon, 02 Mar 2026 09:00:00 +0000", ()),
            Release("1.5.0", "Tue, 06 Oct 2026 09:00:00 +0000", ("CVE-2026-31001",)),
        ),
    ),
    RucPackage(
        name="ruc-mileage-ingest",
        group="mileage_ingest",
        description="RUC mileage report ingestion (lab service)",
        releases=(
            Release("3.1.0", "Mon, 16 Feb 2026 09:00:00 +0000", ()),
            Release(
                "3.2.0",
                "Tue, 13 Oct 2026 09:00:00 +0000",
                ("CVE-2026-31002", "CVE-2026-31003"),
            ),
        ),
    ),
    RucPackage(
        name="ruc-payment-gateway",
        group="payment_gateway",
        description="RUC payment gateway (lab service)",
        releases=(
            Release("2.3.0", "Mon, 06 Apr 2026 09:00:00 +0000", ()),
            Release(
                "2.3.1",
                "Tue, 15 Sep 2026 09:00:00 +0000",
                (),
                broken=True,
                notes=("Store fees in integer cents (schema migration 0042).",),
            ),
            Release(
                "2.4.0",
                "Tue, 20 Oct 2026 09:00:00 +0000",
                ("CVE-2026-31004",),
                notes=("Make schema migration 0042 idempotent (2.3.1 failed to configure).",),
            ),
        ),
    ),
    RucPackage(
        name="ruc-sftp-bridge",
        group="sftp_exchange",
        description="RUC SFTP file exchange bridge (lab service)",
        releases=(
            Release("1.0.0", "Mon, 12 Jan 2026 09:00:00 +0000", ()),
            Release("1.1.0", "Tue, 27 Oct 2026 09:00:00 +0000", ("CVE-2026-31005",)),
        ),
    ),
    RucPackage(
        name="ruc-reporting",
        group="reporting",
        description="RUC reporting service (lab service)",
        releases=(
            Release("5.0.0", "Mon, 04 May 2026 09:00:00 +0000", ()),
            Release("5.1.0", "Tue, 03 Nov 2026 09:00:00 +0000", ("CVE-2026-31006",)),
        ),
    ),
)

_PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def package_for_group(group: str) -> RucPackage:
    """The RUC package that hosts of an inventory group run."""
    for pkg in CATALOG:
        if pkg.group == group:
            return pkg
    known = ", ".join(p.group for p in CATALOG)
    raise UserError(f"no RUC package for inventory group {group!r} (known groups: {known})")


def deb_filename(pkg: RucPackage, release: Release) -> str:
    """The file name build_deb gives a package: NAME_VERSION_all.deb."""
    return f"{pkg.name}_{release.version}_all.deb"


def build_deb(pkg: RucPackage, release: Release, out_dir: Path) -> Path:
    """Build one release of a package into out_dir; returns the .deb's path."""
    if release not in pkg.releases:
        raise UserError(f"{pkg.name} has no release {release.version}")
    dpkg_deb = _tool("dpkg-deb", "dpkg")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / deb_filename(pkg, release)
    with tempfile.TemporaryDirectory(prefix="ruc-deb-") as tmp:
        root = Path(tmp) / "root"
        _write_tree(root, pkg, release)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=out_dir)
        os.close(handle)
        partial = Path(name)
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(release.epoch))
        try:
            _run([dpkg_deb, "--root-owner-group", "--build", str(root), str(partial)], env)
            os.chmod(partial, 0o644)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def build_all(out_dir: Path) -> list[Path]:
    """Build every release of every catalog package into out_dir."""
    return [build_deb(pkg, rel, out_dir) for pkg in CATALOG for rel in pkg.releases]


def changelog(pkg: RucPackage, release: Release) -> str:
    """The Debian changelog of a release: every release up to it, newest first."""
    upto = pkg.releases[: pkg.releases.index(release) + 1]
    return "\n".join(_changelog_entry(pkg, r, r is pkg.releases[0]) for r in reversed(upto))


def _changelog_entry(pkg: RucPackage, release: Release, first: bool) -> str:
    lines = [
        f"  * Security: fix {cve} ({CVE_SUMMARIES.get(cve, 'security fix')})."
        for cve in release.fixes
    ]
    lines += [f"  * {note}" for note in release.notes]
    if not lines:
        lines = ["  * Initial lab release." if first else "  * Maintenance release."]
    urgency = "high" if release.fixes else "medium"
    return (
        f"{pkg.name} ({release.version}) {DISTRIBUTION}; urgency={urgency}\n\n"
        + "\n".join(lines)
        + f"\n\n -- {MAINTAINER}  {release.date}\n"
    )


def _broken_reason(pkg: RucPackage, release: Release) -> str:
    return (
        f"{pkg.name} {release.version}: postinst: schema migration 0042 failed"
        f" (column fee_cents already exists); install {pkg.latest.version} or later"
    )


def _template(name: str, values: dict[str, str]) -> str:
    text = (resources.files("milepost.lab") / "files" / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    leftover = _PLACEHOLDER.search(text)
    if leftover:
        raise UserError(f"template {name} has an unknown placeholder {leftover.group()}")
    return text


def _write_tree(root: Path, pkg: RucPackage, release: Release) -> None:
    name = pkg.name
    values = {
        "NAME": name,
        "VERSION": release.version,
        "DESCRIPTION": pkg.description,
        "GROUP": pkg.group,
        "BROKEN_REASON": shlex.quote(_broken_reason(pkg, release) if release.broken else ""),
    }
    values["SERVICE_CONTROL"] = _template("service-control.sh", values).rstrip("\n")
    conffiles = [f"/etc/ruc/{name}.conf", f"/etc/init.d/{name}"]
    files: dict[str, tuple[bytes, int]] = {
        f"usr/bin/{name}": (_template("ruc-service", values).encode(), 0o755),
        f"etc/ruc/{name}.conf": (_template("ruc-service.conf", values).encode(), 0o644),
        f"etc/init.d/{name}": (_template("ruc-service.init", values).encode(), 0o755),
        f"lib/systemd/system/{name}.service": (
            _template("ruc-service.service", values).encode(),
            0o644,
        ),
        f"usr/share/doc/{name}/changelog.Debian.gz": (
            gzip.compress(changelog(pkg, release).encode(), compresslevel=9, mtime=0),
            0o644,
        ),
        f"usr/share/doc/{name}/copyright": (_template("copyright", values).encode(), 0o644),
    }
    md5sums = "".join(
        f"{hashlib.md5(data, usedforsecurity=False).hexdigest()}  {path}\n"
        for path, (data, _mode) in sorted(files.items())
        if f"/{path}" not in conffiles
    )
    installed_kib = sum((len(data) + 1023) // 1024 for data, _mode in files.values())
    control = (
        f"Package: {name}\n"
        f"Version: {release.version}\n"
        "Architecture: all\n"
        f"Maintainer: {MAINTAINER}\n"
        f"Installed-Size: {installed_kib}\n"
        "Depends: python3\n"
        "Section: net\n"
        "Priority: optional\n"
        f"Description: {pkg.description}\n"
        f" {name} answers GET /health with its name and version on the listen\n"
        " address of its config (a unix socket by default). It stands in for\n"
        " Road Usage Charge software in the Milepost lab; it is not production code.\n"
    )
    files["DEBIAN/control"] = (control.encode(), 0o644)
    files["DEBIAN/conffiles"] = ("".join(f"{c}\n" for c in conffiles).encode(), 0o644)
    files["DEBIAN/md5sums"] = (md5sums.encode(), 0o644)
    for script in ("postinst", "prerm", "postrm"):
        files[f"DEBIAN/{script}"] = (_template(f"ruc-service.{script}", values).encode(), 0o755)
    for rel, (data, mode) in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in dirnames:
            os.chmod(Path(dirpath) / entry, 0o755)  # noqa: S103 (package directories)
        for entry in [*dirnames, *filenames]:
            os.utime(Path(dirpath) / entry, (release.epoch, release.epoch))
    os.chmod(root, 0o755)  # noqa: S103 (package root)
    os.utime(root, (release.epoch, release.epoch))


def _tool(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise UserError(f"{program} not found: install the Debian package {package}")
    return path


def _run(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise UserError(f"cannot run {Path(argv[0]).name}: {exc.strerror}") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no error output"])[-1]
        raise UserError(f"{Path(argv[0]).name} failed (exit {done.returncode}): {detail}")
    return done.stdout
