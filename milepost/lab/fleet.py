"""Bring the lab fleet up, take it down, and report its state.

Every lab process is a container labelled `milepost.lab`: the hosts (sshd on their own
127.0.0.1 port, host network) and the APT repository's HTTP server. `down` removes them all.
"""

import hashlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from milepost import paths
from milepost.errors import MilepostError, UserError
from milepost.lab import (
    apt_repo,
    base_image,
    dockerd,
    inventory,
    os_updates,
    provision,
    ruc_packages,
    vendor_endpoints,
)
from milepost.lab.commands import require, run
from milepost.lab.topology import REPO_PORT, SSH_PORT_BASE, VENDOR_PORT_BASE, LabHost, plan

LABEL = "milepost.lab"
REPO_CONTAINER = "milepost-lab-repo"
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class LabPaths:
    lab: Path
    key: Path
    known_hosts: Path
    repo: Path
    gnupg: Path
    debs: Path
    build: Path
    state: Path
    #: What each host starts on (os_updates.Mirror), for `reset`.
    os_start: Path
    #: The lab CA and the vendor APIs' certificates.
    tls: Path
    control: Path
    inventory: Path

    @classmethod
    def here(cls) -> "LabPaths":
        lab = paths.lab_dir()
        return cls(
            lab=lab,
            key=lab / "ssh" / "id_ed25519",
            known_hosts=lab / "ssh" / "known_hosts",
            repo=lab / "repo",
            gnupg=lab / "gnupg",
            debs=lab / "debs",
            build=lab / "build",
            state=lab / "state.json",
            os_start=lab / "os-start.json",
            tls=lab / "tls",
            control=lab / "cp",
            inventory=paths.project_root() / "inventory" / "lab" / "hosts.yml",
        )


def _port_setting(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1024 <= int(raw) <= 65000:
        raise UserError(f"{name}={raw} is not a port number between 1024 and 65000")
    return int(raw)


def ssh_port_base() -> int:
    return _port_setting("MILEPOST_LAB_SSH_PORT_BASE", SSH_PORT_BASE)


def repo_port() -> int:
    return _port_setting("MILEPOST_LAB_REPO_PORT", REPO_PORT)


def vendor_port_base() -> int:
    return _port_setting("MILEPOST_LAB_VENDOR_PORT_BASE", VENDOR_PORT_BASE)


def _parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(fn, items))


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _containers() -> dict[str, dict[str, str]]:
    """Lab containers by name: {name: {"state": running|exited|..., "image": ...}}."""
    out = run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label={LABEL}",
            "--format",
            '{{.Names}}\t{{.State}}\t{{.Image}}\t{{.Label "milepost.lab.key"}}',
        ]
    ).stdout
    found = {}
    for line in out.splitlines():
        name, state, image, key = line.split("\t")
        found[name] = {"state": state, "image": image, "key": key}
    return found


def _key_id(public_key: str) -> str:
    """Which lab key a host trusts and how it was made: hosts made for another checkout's
    key, or with another HOST_LAYOUT, are replaced."""
    return hashlib.sha256(f"{public_key}\n{HOST_LAYOUT}".encode()).hexdigest()[:16]


# ---------------------------------------------------------------- up


def up(count: int) -> list[LabHost]:
    require("docker", "ssh", "ssh-keygen", "gpg", "dpkg-deb", "apt-ftparchive")
    hosts = plan(count, ssh_port_base())
    lab = LabPaths.here()
    lab.lab.mkdir(parents=True, exist_ok=True)
    dockerd.ensure_running(lab.lab / "dockerd.log")
    debian = os_updates.debian_state(lab.build)
    image = base_image.ensure(lab.build, debian)
    _ensure_keypair(lab.key)
    debs = ruc_packages.build_all(lab.debs)
    mirrored = os_updates.mirror(
        debian,
        base_image.installed(lab.build),
        lab.build / "debian-debs",
        base_image.kept_debs_dir(lab.build),
    )
    mirrored.save(lab.os_start)
    apt_repo.ensure_signing_key(lab.gnupg)
    apt_repo.build_repo(lab.repo, lab.gnupg, [*debs, *mirrored.main], list(mirrored.security))
    port = repo_port()
    _start_repo_server(image, lab.repo, port)
    served = vendor_endpoints.endpoints(lab.tls, vendor_port_base())
    vendor_endpoints.ensure_tls(lab.tls, served)
    vendor_endpoints.start(image, lab.tls, served, LABEL)

    public_key = lab.key.with_suffix(".pub").read_text().strip()
    existing = _containers()
    wanted = {h.container for h in hosts}
    stale = [
        name
        for name, info in existing.items()
        if name not in (REPO_CONTAINER, vendor_endpoints.CONTAINER)
        and (name not in wanted or info["image"] != image or info["key"] != _key_id(public_key))
    ]
    if stale:
        run(["docker", "rm", "-f", *stale])
    existing = {k: v for k, v in existing.items() if k not in stale}
    new = [h for h in hosts if h.container not in existing]
    busy = [h.port for h in new if not _port_free(h.port)]
    if busy:
        raise UserError(
            f"127.0.0.1 port(s) {', '.join(map(str, busy))} already in use: free them or set"
            " MILEPOST_LAB_SSH_PORT_BASE"
        )
    stopped = [h.container for h in hosts if existing.get(h.container, {}).get("state") == "exited"]
    if stopped:
        run(["docker", "start", *stopped])
    sysctl = provision.sysctl_file(paths.project_root())
    _parallel(lambda h: _create_host(h, image, public_key, sysctl), new)
    _parallel(_wait_for_host_keys, hosts)
    _parallel(lambda h: _install_initial_packages(h, mirrored, hosts), new)
    exchange = vendor_endpoints.exchange_host(hosts)
    if exchange is not None:
        vendor_endpoints.add_exchange_user(exchange, public_key)

    lab.known_hosts.write_text("".join(_parallel(_known_hosts_lines, hosts)))
    repo_url = f"http://127.0.0.1:{port}/"
    inventory.write(
        lab.inventory,
        inventory.render(
            hosts,
            key_file=lab.key,
            known_hosts=lab.known_hosts,
            control_dir=lab.control,
            repo_url=repo_url,
            repo_key=lab.repo / "milepost-lab.asc",
            interfaces=inventory.interfaces(
                served, vendor_endpoints.ca_file(lab.tls), exchange, lab.key, lab.known_hosts
            ),
        ),
    )
    lab.state.write_text(
        json.dumps({"hosts": [asdict(h) for h in hosts], "repo_url": repo_url}, indent=2)
    )
    unreachable = [
        h.name for h, ok in zip(hosts, _parallel(_wait_reachable, hosts), strict=True) if not ok
    ]
    if unreachable:
        raise MilepostError(f"lab hosts not reachable over SSH: {', '.join(unreachable)}")
    return hosts


def _ensure_keypair(key: Path) -> None:
    if key.exists():
        return
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "milepost-lab", "-f", str(key)])


def _start_repo_server(image: str, repo: Path, port: int) -> None:
    """Serve the repository read-only over HTTP on 127.0.0.1:port (restarted on every up, so
    it serves the repository just rebuilt)."""
    subprocess.run(["docker", "rm", "-f", REPO_CONTAINER], capture_output=True, check=False)
    if not _port_free(port):
        raise UserError(
            f"127.0.0.1:{port} is already in use: free it or set MILEPOST_LAB_REPO_PORT"
        )
    run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            REPO_CONTAINER,
            "--label",
            LABEL,
            "--network",
            "host",
            "--init",
            "-v",
            f"{repo.parent}:/srv/lab:ro",
            image,
            "python3",
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            f"/srv/lab/{repo.name}",
        ]
    )
    _wait(lambda: not _port_free(port), 30, f"the lab repository on 127.0.0.1:{port}")


# apt's download cache is a filesystem of its own on every lab host (a tmpfs, sized like a
# small /var), so a test can fill it up as a full disk would be, without touching the
# machine's own disk.
APT_ARCHIVES = "/var/cache/apt/archives"
APT_ARCHIVES_SIZE = "1g"
HOST_LAYOUT = f"tmpfs {APT_ARCHIVES} {APT_ARCHIVES_SIZE}"


def _create_host(host: LabHost, image: str, public_key: str, sysctl: tuple[str, str]) -> None:
    """Start the host's container and provision it (`provision`): the baseline's sysctl
    file."""
    run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            host.container,
            "--hostname",
            host.name,
            "--label",
            LABEL,
            "--label",
            f"{LABEL}.host={host.name}",
            "--label",
            f"{LABEL}.key={_key_id(public_key)}",
            "--network",
            "host",
            "--init",
            # A host that stops on its own comes back: that is how the lab reboots.
            "--restart",
            "unless-stopped",
            "--tmpfs",
            f"{APT_ARCHIVES}:size={APT_ARCHIVES_SIZE}",
            "-e",
            f"LAB_SSH_PORT={host.port}",
            "-e",
            f"LAB_AUTHORIZED_KEY={public_key}",
            image,
            base_image.INIT_PATH,
        ]
    )
    path, text = sysctl
    run(
        ["docker", "exec", "-i", host.container, "sh", "-c", 'cat > "$1"', "sh", path],
        input=text.encode(),
    )


def _wait(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise MilepostError(f"timed out after {seconds:.0f}s waiting for {what}")


def _wait_for_host_keys(host: LabHost) -> None:
    def ready() -> bool:
        probe = subprocess.run(
            ["docker", "exec", host.container, "test", "-s", "/etc/ssh/ssh_host_ed25519_key.pub"],
            capture_output=True,
            check=False,
        )
        return probe.returncode == 0 and not _port_free(host.port)

    _wait(ready, 60, f"sshd on {host.name} (127.0.0.1:{host.port})")


def _install_initial_packages(
    host: LabHost, mirrored: os_updates.Mirror, hosts: list[LabHost]
) -> None:
    """A host starts on the oldest release of its group's RUC package and on the versions of
    the OS packages os_updates chose for it (the image's, or older for a behind host). A host
    that was changed since is taken back to them (`reset`): only what differs is installed."""
    lab = LabPaths.here()
    pkg = ruc_packages.package_for_group(host.group)
    wanted = {
        pkg.name: (pkg.initial.version, lab.debs / f"{pkg.name}_{pkg.initial.version}_all.deb"),
        **mirrored.start(os_updates.is_behind(host, hosts)),
    }
    listing = run(
        [
            "docker", "exec", host.container, "dpkg-query", "-W", "-f",
            "${Package}\t${Version}\t${db:Status-Status}\n",
        ]
    ).stdout  # fmt: skip
    now = {}
    for line in listing.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2] == "installed":
            now[parts[0]] = parts[1]
    debs = [
        deb for package, (version, deb) in sorted(wanted.items()) if now.get(package) != version
    ]
    if not debs:
        return
    for deb in debs:
        run(["docker", "cp", str(deb), f"{host.container}:/root/{deb.name}"])
    run(
        [
            "docker",
            "exec",
            "-e",
            "DEBIAN_FRONTEND=noninteractive",
            host.container,
            # dpkg itself (not apt): it also replaces a package a killed dpkg left
            # half-installed, which apt refuses to touch without an archive of its own.
            "dpkg",
            "--install",
            "--force-confdef",
            "--force-confold",
            *(f"/root/{deb.name}" for deb in debs),
        ],
        timeout=300,
    )
    run(["docker", "exec", host.container, "rm", "-f", *(f"/root/{deb.name}" for deb in debs)])


def _known_hosts_lines(host: LabHost) -> str:
    """Host keys read from inside the container (out of band), never scanned off the wire."""
    keys = run(
        ["docker", "exec", host.container, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"]
    ).stdout
    lines = []
    for key in keys.splitlines():
        kind, blob = key.split()[:2]
        lines.append(f"[127.0.0.1]:{host.port} {kind} {blob}\n")
    return "".join(lines)


def ssh_argv(port: int, command: str, connect_timeout: int = 5) -> list[str]:
    """ssh as ops to the lab host on ``port``: the lab key and known_hosts, host keys
    checked, never a password prompt, and no control master (a playbook's are its own)."""
    lab = LabPaths.here()
    return [
        "ssh",
        "-i",
        str(lab.key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={lab.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={connect_timeout}",
        "-o",
        "ControlPath=none",
        "-p",
        str(port),
        "ops@127.0.0.1",
        command,
    ]


def _ssh(host: LabHost, command: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    argv = ssh_argv(host.port, command)
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 255, "", "timed out")


def _wait_reachable(host: LabHost) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _ssh(host, "true").returncode == 0:
            return True
        time.sleep(0.5)
    return False


# ---------------------------------------------------------------- reset

# What maintenance leaves on a host that `up` did not put there.
RESET_PATHS = (
    "/etc/apt/sources.list.d/milepost-ruc.sources",
    "/var/lib/milepost/maintenance.lock",
    "/run/reboot-required",
    "/run/reboot-required.pkgs",
)


def reset() -> list[LabHost]:
    """Put every running lab host back in the state `up` leaves: its group's oldest RUC
    release, no RUC package source, no maintenance lock, nothing in apt's caches."""
    require("docker")
    hosts = load_hosts()
    if not hosts:
        raise UserError("no lab hosts: run `scripts/lab up` first")

    def one(host: LabHost) -> None:
        run(["docker", "exec", host.container, "rm", "-f", *RESET_PATHS])
        # A dpkg run killed on the host (the reliability tests do that) is finished first;
        # the initial packages installed next replace any it left half-installed.
        run(
            [
                "docker", "exec", "-e", "DEBIAN_FRONTEND=noninteractive", host.container,
                "sh", "-c", "dpkg --configure -a >/dev/null 2>&1 || true",
            ]
        )  # fmt: skip
        run(
            [
                "docker", "exec", host.container, "sh", "-c",
                f"rm -rf /var/lib/apt/lists/* {APT_ARCHIVES}/*.deb",
            ]
        )  # fmt: skip
        _install_initial_packages(host, mirrored, hosts)

    mirrored = os_updates.Mirror.load(LabPaths.here().os_start)
    _parallel(one, hosts)
    return hosts


# ---------------------------------------------------------------- down


def down() -> list[str]:
    """Remove every lab container and the files that describe the running fleet."""
    require("docker")
    lab = LabPaths.here()
    if lab.control.is_dir():
        for sock in lab.control.iterdir():
            subprocess.run(
                ["ssh", "-O", "exit", "-o", f"ControlPath={sock}", "lab"],
                capture_output=True,
                check=False,
                timeout=10,
            )
    removed: list[str] = []
    if dockerd.is_running():
        removed = sorted(_containers())
        if removed:
            run(["docker", "rm", "-f", *removed])
    for path in (lab.inventory, lab.known_hosts, lab.state):
        path.unlink(missing_ok=True)
    return removed


# ---------------------------------------------------------------- status


def load_hosts() -> list[LabHost]:
    lab = LabPaths.here()
    if not lab.state.is_file():
        return []
    return [LabHost(**h) for h in json.loads(lab.state.read_text())["hosts"]]


def status() -> list[dict[str, Any]]:
    """One row per lab host: where it is, whether SSH works, its ruc-* versions."""
    require("docker", "ssh")
    hosts = load_hosts()
    containers = _containers() if hosts and dockerd.is_running() else {}

    def row(host: LabHost) -> dict[str, Any]:
        state = containers.get(host.container, {}).get("state", "absent")
        reachable = False
        versions: dict[str, str] = {}
        if state == "running":
            probe = _ssh(
                host,
                "dpkg-query -W -f='${Package} ${Version} ${db:Status-Status}\\n' 'ruc-*'"
                " 2>/dev/null; true",
            )
            reachable = probe.returncode == 0
            for line in probe.stdout.splitlines():
                name, version, st = (line.split() + ["", "", ""])[:3]
                if st == "installed":
                    versions[name] = version
        return {**asdict(host), "container": state, "reachable": reachable, "versions": versions}

    return _parallel(row, hosts)
