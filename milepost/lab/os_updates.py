"""OS updates for the lab: real Debian packages of the base image, re-versioned.

Lab hosts see no Debian mirror, only the lab repository. To patch their operating system
for real, the lab republishes packages of the base image (kept from debootstrap, see
base_image) with a higher version (``<version>+milepost1``), built with dpkg-deb from the
unpacked original: the same files, a newer version. The originals are published too, so
a rollback has a version to go back to.

- libssl3 goes to the security suite (bookworm-security): a security update of a library
  the running RUC services have loaded, so they must be restarted after it.
- iproute2 goes to the main suite: a regular, non-security update.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from milepost.errors import UserError
from milepost.lab.commands import run

SUFFIX = "+milepost1"


@dataclass(frozen=True)
class OsUpdate:
    package: str
    security: bool


UPDATES = (OsUpdate("libssl3", security=True), OsUpdate("iproute2", security=False))
PACKAGES = tuple(update.package for update in UPDATES)


def original(originals_dir: Path, package: str) -> Path:
    """The base image's .deb of package, kept when the image was built."""
    found = sorted(originals_dir.glob(f"{package}_*.deb"))
    if len(found) != 1:
        raise UserError(
            f"{originals_dir} holds {len(found)} .debs of {package}, not 1: rebuild the lab's"
            " base image (docker rmi milepost-lab-base:latest, then scripts/lab up)"
        )
    return found[0]


def build_all(originals_dir: Path, out_dir: Path) -> tuple[list[Path], list[Path]]:
    """Return (main-suite .debs, security-suite .debs): every original, and each update
    re-versioned into its suite. Rebuilt only when missing (dpkg-deb output is stable)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    main: list[Path] = []
    security: list[Path] = []
    for update in UPDATES:
        source = original(originals_dir, update.package)
        main.append(source)
        newer = _reversioned(source, out_dir)
        (security if update.security else main).append(newer)
    return main, security


def _reversioned(source: Path, out_dir: Path) -> Path:
    version = _field(source, "Version")
    name, arch = _field(source, "Package"), _field(source, "Architecture")
    target = out_dir / f"{name}_{version.split(':')[-1]}{SUFFIX}_{arch}.deb"
    if target.is_file() and _field(target, "Version") == version + SUFFIX:
        return target
    with tempfile.TemporaryDirectory(prefix="milepost-os-update-") as work:
        tree = Path(work) / "tree"
        run(["dpkg-deb", "--raw-extract", str(source), str(tree)])
        control = tree / "DEBIAN" / "control"
        lines = control.read_text().splitlines()
        control.write_text(
            "".join(
                f"Version: {version}{SUFFIX}\n" if line.startswith("Version: ") else line + "\n"
                for line in lines
            )
        )
        partial = target.with_suffix(".part")
        run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(partial)])
        partial.replace(target)
    return target


def _field(deb: Path, name: str) -> str:
    done = subprocess.run(
        [shutil.which("dpkg-deb") or "dpkg-deb", "--field", str(deb), name],
        capture_output=True,
        text=True,
        check=False,
    )
    value = done.stdout.strip()
    if done.returncode != 0 or not value:
        raise UserError(f"{deb} has no {name} field: remove it and run scripts/lab up again")
    return value
