"""A private APT state on the controller: Debian's own tools read a Debian archive without
touching the machine's apt configuration.

``AptState(root, sources)`` keeps under ``root`` a sources file, the indexes ``apt-get
update`` fetched and verified (every Release file must be signed by the key its source names:
a Release whose signature does not verify is refused), and nothing else. ``offers()`` reads
what each suite offers from those indexes; ``download()`` fetches one package version with
``apt-get download``, which checks its hash against the signed index.

Nothing here runs on a managed host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Packages

from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.inventory.debian import check_package_name, check_version

__all__ = ["AptState", "Offer", "Source"]

#: Seconds apt-get update and a download may take.
APT_TIMEOUT = 600


@dataclass(frozen=True)
class Source:
    """One archive: where it is, its suites and components, and the keyring its Release
    files must be signed with."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: Path

    def stanza(self) -> str:
        return (
            "Types: deb\n"
            f"URIs: {self.uri}\n"
            f"Suites: {' '.join(self.suites)}\n"
            f"Components: {' '.join(self.components)}\n"
            f"Signed-By: {self.signed_by}\n"
        )


@dataclass(frozen=True)
class Offer:
    """A package version a suite offers."""

    package: str
    version: str
    #: The source package and its version (a binNMU's binary version differs).
    source: str
    source_version: str
    #: The suite's codename (bookworm-security) and its Label (Debian-Security).
    suite: str
    label: str
    architecture: str
    #: The Priority field (required, important, standard, optional) and Essential: yes.
    priority: str = "optional"
    essential: bool = False
    #: The packages it Depends or Pre-Depends on (every alternative), names only.
    depends: tuple[str, ...] = ()
    #: Installed-Size: its size once unpacked, in KiB.
    installed_size: int = 0

    @property
    def security(self) -> bool:
        return "security" in f"{self.suite} {self.label}".lower()


class AptState:
    """APT's state for ``sources``, kept under ``root`` (made on first use)."""

    def __init__(self, root: Path, sources: Sequence[Source]) -> None:
        if not sources:
            raise UserError("no Debian archive configured: name at least one source")
        self.root = root.absolute()
        self.sources = tuple(sources)

    # ------------------------------------------------------------------ apt itself

    def _options(self) -> list[str]:
        root = self.root
        return [
            "-o", f"Dir={root}",
            "-o", f"Dir::State::status={root}/var/lib/dpkg/status",
            "-o", f"Dir::Etc::Parts={root}/etc/apt/apt.conf.d",
            "-o", f"Dir::Etc::Preferences={root}/etc/apt/preferences",
            "-o", f"Dir::Etc::PreferencesParts={root}/etc/apt/preferences.d",
            "-o", f"Dir::Etc::TrustedParts={root}/etc/apt/trusted.gpg.d",
            "-o", f"Dir::Etc::Trusted={root}/etc/apt/trusted.gpg",
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Languages=none",
            "-o", "APT::Update::Error-Mode=any",
        ]  # fmt: skip

    def _apt(self, *argv: str, cwd: Path | None = None) -> str:
        command = [shutil.which("apt-get") or "apt-get", *self._options(), *argv]
        what = next((arg for arg in argv if not arg.startswith("-")), "")  # update, download
        try:
            done = subprocess.run(
                command,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=APT_TIMEOUT,
                check=False,
                env={**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"},
            )
        except FileNotFoundError:
            raise UserError("apt-get not found: Milepost reads Debian archives with apt") from None
        except subprocess.TimeoutExpired:
            raise UserError(
                f"apt-get {what} took more than {APT_TIMEOUT} s: is the archive reachable?"
            ) from None
        if done.returncode != 0:
            raise UserError(f"apt-get {what}: {_first_error(done.stderr or done.stdout)}")
        return done.stdout

    def _prepare(self) -> None:
        for folder in (
            "etc/apt/sources.list.d",
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/trusted.gpg.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
        ):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "var/lib/dpkg/status").touch()
        for source in self.sources:
            if not source.signed_by.is_file():
                raise UserError(
                    f"the keyring {shown(str(source.signed_by))} of {shown(source.uri)} does not"
                    " exist: name the archive's signing keyring (signed_by)"
                )
        text = "\n".join(source.stanza() for source in self.sources)
        (self.root / "etc/apt/sources.list.d/milepost.sources").write_text(text)
        (self.root / "etc/apt/sources.list").write_text("")

    def update(self) -> None:
        """Fetch every suite's signed indexes (UserError, one line, when a suite does not
        exist, cannot be reached or its Release file is not signed by its keyring)."""
        self._prepare()
        self._apt("-q", "update")

    # ------------------------------------------------------------------ what suites offer

    def _index_files(self) -> list[tuple[Path, str, str]]:
        """(Packages index, codename, label) of every suite fetched."""
        listing = self._apt(
            "indextargets", "--format", "$(FILENAME)\t$(CODENAME)\t$(LABEL)", "Created-By: Packages"
        )
        found = []
        for line in listing.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and Path(parts[0]).is_file():
                found.append((Path(parts[0]), parts[1], parts[2]))
        return found

    def offers(self, packages: Iterable[str] | None = None) -> dict[str, list[Offer]]:
        """{package: the versions the suites offer} (only ``packages`` when given), as read
        from the indexes of the last update()."""
        wanted = None if packages is None else set(packages)
        found: dict[str, list[Offer]] = {}
        helper = "/usr/lib/apt/apt-helper"
        for index, codename, label in self._index_files():
            text = subprocess.run(
                [helper, "cat-file", str(index)], capture_output=True, check=True, timeout=300
            ).stdout
            for block in text.split(b"\n\n"):
                # The name first (a Packages stanza starts with it): parse only what is wanted.
                first = block.lstrip(b"\n").split(b"\n", 1)[0]
                name = first.removeprefix(b"Package:").strip().decode("ascii", "replace")
                if not first.startswith(b"Package:") or (wanted is not None and name not in wanted):
                    continue
                stanza = Packages(block)
                version = stanza.get("Version", "")
                source, _, source_version = (stanza.get("Source") or name).partition(" ")
                found.setdefault(name, []).append(
                    Offer(
                        package=name,
                        version=version,
                        source=source,
                        source_version=source_version.strip("()") or version,
                        suite=codename,
                        label=label,
                        architecture=stanza.get("Architecture", ""),
                        priority=stanza.get("Priority", "optional"),
                        essential=stanza.get("Essential", "no").strip() == "yes",
                        depends=_names(
                            stanza.get("Pre-Depends", "") + "," + stanza.get("Depends", "")
                        ),
                        installed_size=_kib(stanza.get("Installed-Size", "")),
                    )
                )
        return found

    # ------------------------------------------------------------------ downloads

    def download(self, package: str, version: str, cache: Path) -> Path:
        """The .deb of ``package`` ``version`` in ``cache`` (downloaded once: APT checks its
        hash against the signed index)."""
        check_package_name(package, "package")
        check_version(version, f"version of {package}")
        cache.mkdir(parents=True, exist_ok=True)
        for deb in cache.glob(f"{package}_*.deb"):
            if _deb_field(deb, "Package") == package and _deb_field(deb, "Version") == version:
                return deb
        with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as work:
            self._apt("-q", "download", f"{package}={version}", cwd=Path(work))
            got = sorted(Path(work).glob("*.deb"))
            if len(got) != 1:
                raise UserError(f"apt-get download {package}={version} gave {len(got)} files")
            target = cache / got[0].name
            os.replace(got[0], target)
        return target


def _kib(field: str) -> int:
    """An Installed-Size field as a number (0 when absent or not a number)."""
    field = field.strip()
    return int(field) if field.isdigit() else 0


def _names(relations: str) -> tuple[str, ...]:
    """The package names of a Depends field: every alternative, without versions or
    architecture qualifiers."""
    names = []
    for part in re.split(r"[,|]", relations):
        name = part.strip().split(" ", 1)[0].split("(", 1)[0].split(":", 1)[0]
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _first_error(text: str) -> str:
    """apt's first error line (E: or W:), whitespace collapsed."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("E:", "W:", "Err:"))]
    line = (errors or lines or ["failed with no output"])[0]
    for prefix in ("E: ", "W: "):
        line = line.removeprefix(prefix)
    return " ".join(line.split())[:400]


def _deb_field(deb: Path, name: str) -> str:
    done = subprocess.run(
        [shutil.which("dpkg-deb") or "dpkg-deb", "--field", str(deb), name],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise UserError(f"{shown(str(deb))} is not a Debian package: remove it")
    return done.stdout.strip()
