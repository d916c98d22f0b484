"""The lab's base image: a debootstrap minbase Debian 12 rootfs, brought up to the newest
versions Debian's bookworm-updates and bookworm-security offer, imported into Docker.

No image registry is reachable, so the image is built from Debian's packages and cached
under a tag derived from its recipe: a second `up` finds it and takes seconds. Beside it are
kept the image's .debs and its package list (the versions hosts start on: os_updates).
"""

import hashlib
import json
import shutil
import subprocess
from functools import cmp_to_key
from importlib import resources
from pathlib import Path

from debian.debian_support import version_compare

from milepost.archive.apt_state import AptState
from milepost.archive.sources import machine_sources
from milepost.errors import MilepostError
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
#: Marks the recipe: the image is brought up to Debian's newest updates.
UPGRADED = "upgraded to bookworm-updates and bookworm-security"
#: /usr/sbin/policy-rc.d of the image: the lab host's sshd is the container's own process
#: (milepost-lab-init), so no package script may restart it (that would stop the container).
SSH_POLICY = '#!/bin/sh\ncase "$1" in ssh|sshd) exit 101 ;; esac\nexit 0\n'
#: Sorts Debian versions as Debian orders them.
DEBIAN_ORDER = cmp_to_key(version_compare)


def _file(name: str) -> str:
    return (resources.files("milepost.lab") / "files" / name).read_text()


def recipe_tag() -> str:
    """The tag of the image this recipe builds: changes whenever the recipe does."""
    digest = hashlib.sha256()
    recipe = [SUITE, *INCLUDE, UPGRADED, SSH_POLICY, _file("milepost-lab-init")]
    recipe.append(_file("sshd-milepost-lab.conf"))
    for part in recipe:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:12]


def image_name() -> str:
    return f"{REPOSITORY}:{recipe_tag()}"


def debian_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses for bookworm main."""
    return machine_sources([SUITE], sources_dir=sources_dir)[0].uri


def exists(name: str) -> bool:
    proc = subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False)
    return proc.returncode == 0


def kept_debs_dir(build_dir: Path) -> Path:
    """Where the image's .debs are kept, one directory per image recipe."""
    return build_dir / f"os-debs-{recipe_tag()}"


def packages_file(build_dir: Path) -> Path:
    """The image's installed packages, {package: version}, one file per image recipe."""
    return build_dir / f"image-packages-{recipe_tag()}.json"


def installed(build_dir: Path) -> dict[str, str]:
    """The image's installed packages and versions."""
    data: dict[str, str] = json.loads(packages_file(build_dir).read_text())
    return data


def ensure(build_dir: Path, state: AptState) -> str:
    """Return the image name, building and importing it first if it is not cached (or its
    package list is missing)."""
    name = image_name()
    if not exists(name) or not packages_file(build_dir).is_file():
        _build(name, build_dir, state)
    run(["docker", "tag", name, f"{REPOSITORY}:latest"])
    return name


def _build(name: str, build_dir: Path, state: AptState) -> None:
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
    kept = kept_debs_dir(build_dir)
    _keep_debs(rootfs, kept)
    _upgrade(rootfs, state, kept)
    packages_file(build_dir).write_text(json.dumps(_dpkg_versions(rootfs), indent=1) + "\n")
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
    """Copy the .debs debootstrap installed out of the rootfs."""
    if kept.exists():
        shutil.rmtree(kept)
    kept.mkdir(parents=True)
    for deb in sorted((rootfs / "var/cache/apt/archives").glob("*.deb")):
        shutil.copy2(deb, kept / deb.name)


def _dpkg_versions(rootfs: Path) -> dict[str, str]:
    listing = run(
        ["chroot", str(rootfs), "dpkg-query", "-W", "-f", "${Package}\t${Version}\n"]
    ).stdout
    return dict(line.split("\t", 1) for line in listing.splitlines() if "\t" in line)


def _upgrade(rootfs: Path, state: AptState, kept: Path) -> None:
    """Install the newest version Debian offers of every package debootstrap installed (the
    .debs are downloaded on the controller: no network inside the image), keeping them."""
    installed = _dpkg_versions(rootfs)
    offers = state.offers(installed)
    debs = []
    for package, version in sorted(installed.items()):
        newer = [o for o in offers.get(package, []) if version_compare(o.version, version) > 0]
        if newer:
            best = max(newer, key=lambda o: DEBIAN_ORDER(o.version))
            debs.append(state.download(package, best.version, kept))
    if not debs:
        return
    inbox = rootfs / "root/milepost-upgrade"
    inbox.mkdir()
    for deb in debs:
        shutil.copy2(deb, inbox / deb.name)
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")  # no service starts inside the build
    policy.chmod(0o755)
    try:
        # apt, not dpkg: it orders the unpacking by Pre-Depends (libpam0g before the PAM
        # modules); every file is local, nothing is fetched.
        run(
            ["chroot", str(rootfs), "apt-get", "install", "--yes", "--quiet"]
            + ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
            + [f"/root/milepost-upgrade/{deb.name}" for deb in debs],
            timeout=1800,
        )
    finally:
        policy.unlink()
        shutil.rmtree(inbox)


def _customize(rootfs: Path) -> None:
    """The ops user with passwordless sudo, key-only sshd, the entry point, sshd kept out of
    package scripts' restarts; no host keys, no Debian mirror (lab hosts install only from
    the lab repository)."""
    run(["chroot", str(rootfs), "useradd", "--create-home", "--shell", "/bin/bash", "ops"])
    sudoers = rootfs / "etc/sudoers.d/ops"
    sudoers.write_text("ops ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    (rootfs / "etc/ssh/sshd_config.d/milepost-lab.conf").write_text(_file("sshd-milepost-lab.conf"))
    init = rootfs / INIT_PATH.lstrip("/")
    init.write_text(_file("milepost-lab-init"))
    init.chmod(0o755)
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text(SSH_POLICY)
    policy.chmod(0o755)
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/hostname").write_text("localhost\n")
    run(["chroot", str(rootfs), "apt-get", "clean"])
    for lists in (rootfs / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()
