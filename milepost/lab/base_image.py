"""The lab's base image: a debootstrap minbase Debian 12 rootfs imported into Docker.

No image registry is reachable, so the image is built from Debian's packages and cached
under a tag derived from its recipe: a second `up` finds it and takes seconds.
"""

import hashlib
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from milepost.errors import MilepostError, UserError
from milepost.lab import os_updates
from milepost.lab.commands import require, run

SUITE = "bookworm"
REPOSITORY = "milepost-lab-base"
INCLUDE = (
    "openssh-server",
    "python3",
    "python3-apt",
    "python3-debian",
    "sudo",
    "gpg",
    "ca-certificates",
    "procps",
    "iproute2",
)
INIT_PATH = "/usr/local/sbin/milepost-lab-init"
# .debs of the image kept beside it: the lab republishes them as OS updates.
KEPT_DEBS = os_updates.PACKAGES


def _file(name: str) -> str:
    return (resources.files("milepost.lab") / "files" / name).read_text()


def recipe_tag() -> str:
    """The tag of the image this recipe builds: changes whenever the recipe does."""
    digest = hashlib.sha256()
    recipe = (SUITE, *INCLUDE, *KEPT_DEBS, _file("milepost-lab-init"))
    recipe += (_file("sshd-milepost-lab.conf"),)
    for part in recipe:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:12]


def image_name() -> str:
    return f"{REPOSITORY}:{recipe_tag()}"


def debian_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses for bookworm main (deb822 or one-line)."""
    texts = [p.read_text() for p in sorted(sources_dir.glob("sources.list.d/*.sources"))]
    for text in texts:
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith(("#", " ", "\t")):
                    fields[key.strip().lower()] = value.strip()
            if (
                "deb" in fields.get("types", "").split()
                and SUITE in fields.get("suites", "").split()
                and "main" in fields.get("components", "").split()
            ):
                return fields["uris"].split()[0]
    one_line = [sources_dir / "sources.list", *sorted(sources_dir.glob("sources.list.d/*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if len(words) >= 4 and words[0] == "deb" and words[2] == SUITE and "main" in words[3:]:
                return words[1]
    raise UserError(
        f"no Debian {SUITE} main source in {sources_dir}/sources.list(.d): add the mirror to apt"
    )


def exists(name: str) -> bool:
    proc = subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False)
    return proc.returncode == 0


def kept_debs_dir(build_dir: Path) -> Path:
    """Where the image's kept .debs are, one directory per image recipe."""
    return build_dir / f"os-debs-{recipe_tag()}"


def ensure(build_dir: Path) -> str:
    """Return the image name, building and importing it first if it is not cached (or its
    kept .debs are missing)."""
    name = image_name()
    kept = kept_debs_dir(build_dir)
    if not exists(name) or not all(any(kept.glob(f"{p}_*.deb")) for p in KEPT_DEBS):
        _build(name, build_dir)
    run(["docker", "tag", name, f"{REPOSITORY}:latest"])
    return name


def _build(name: str, build_dir: Path) -> None:
    require("debootstrap", "docker")
    rootfs = build_dir / "rootfs"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    rootfs.mkdir(parents=True)
    mirror = debian_mirror()
    print(f"Building the lab base image {name} with debootstrap from {mirror} (about a minute)")
    run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=" + ",".join(INCLUDE),
            SUITE,
            str(rootfs),
            mirror,
        ],
        timeout=1800,
    )
    _keep_debs(rootfs, kept_debs_dir(build_dir))
    _customize(rootfs)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        ["docker", "import", "-", name], stdin=tar.stdout, capture_output=True, check=False
    )
    assert tar.stdout is not None
    tar.stdout.close()
    if tar.wait() != 0 or imported.returncode != 0:
        raise MilepostError(f"docker import failed: {imported.stderr.decode().strip()}")
    shutil.rmtree(rootfs)


def _keep_debs(rootfs: Path, kept: Path) -> None:
    """Copy the .debs of KEPT_DEBS that debootstrap installed out of the rootfs."""
    if kept.exists():
        shutil.rmtree(kept)
    kept.mkdir(parents=True)
    for package in KEPT_DEBS:
        found = sorted((rootfs / "var/cache/apt/archives").glob(f"{package}_*.deb"))
        if len(found) != 1:
            raise MilepostError(f"debootstrap left {len(found)} .debs of {package}, expected 1")
        shutil.copy2(found[0], kept / found[0].name)


def _customize(rootfs: Path) -> None:
    """The ops user with passwordless sudo, key-only sshd, the entry point; no host keys,
    no Debian mirror (lab hosts install only from the lab repository)."""
    run(["chroot", str(rootfs), "useradd", "--create-home", "--shell", "/bin/bash", "ops"])
    sudoers = rootfs / "etc/sudoers.d/ops"
    sudoers.write_text("ops ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    (rootfs / "etc/ssh/sshd_config.d/milepost-lab.conf").write_text(_file("sshd-milepost-lab.conf"))
    init = rootfs / INIT_PATH.lstrip("/")
    init.write_text(_file("milepost-lab-init"))
    init.chmod(0o755)
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/hostname").write_text("localhost\n")
    run(["chroot", str(rootfs), "apt-get", "clean"])
    for lists in (rootfs / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()
