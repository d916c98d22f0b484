"""Real vendor-interface servers for tests: a lab CA, an HTTPS server and OpenSSH's SFTP.

Everything listens on 127.0.0.1 only, on a free port, and is stopped by the caller
(the context managers stop it on exit).

- make_ca() / make_server_cert(): a lab CA and a server certificate for 127.0.0.1 and
  localhost with a chosen validity (for example one that expires in 3 days), made with
  `cryptography`.
- https_server(): http.server + ssl in a thread, serving {"api_version": "2.1", "status": "ok"}
  with the header X-API-Version.
- sftp_server(): OpenSSH's sshd (Debian's openssh-server) as a separate process with its own
  configuration, host key and authorized_keys file, `Subsystem sftp internal-sftp`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK = "127.0.0.1"
SSHD = Path("/usr/sbin/sshd")
DEFAULT_PAYLOAD = {"api_version": "2.1", "status": "ok"}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {LOOPBACK}:{port}") from None
            time.sleep(0.05)


# --- certificates -------------------------------------------------------------------------


@dataclass
class LabCA:
    cert_path: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass
class ServerCert:
    cert_path: Path
    key_path: Path
    not_after: dt.datetime


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def make_ca(directory: Path, name: str = "Milepost Lab CA", days: int = 3650) -> LabCA:
    """Create a self-signed lab CA in directory (ca.pem); return it."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "ca.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return LabCA(cert_path=cert_path, key=key, cert=cert)


def make_server_cert(
    ca: LabCA,
    directory: Path,
    name: str = "server",
    valid_for: dt.timedelta = dt.timedelta(days=365),
    hostnames: tuple[str, ...] = ("localhost",),
    addresses: tuple[str, ...] = (LOOPBACK,),
) -> ServerCert:
    """Create a server certificate signed by ca for hostnames and addresses.

    valid_for is counted from now: dt.timedelta(days=3, hours=1) gives a certificate that
    has 3 whole days left.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    not_after = now + valid_for
    san = [x509.DNSName(host) for host in hostnames] + [
        x509.IPAddress(ipaddress.ip_address(address)) for address in addresses
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return ServerCert(cert_path=cert_path, key_path=key_path, not_after=not_after)


# --- HTTPS ---------------------------------------------------------------------------------


@dataclass
class HTTPSEndpoint:
    port: int
    url: str
    requests: list[str]


def _handler(payload: dict, status: int, header_version: str | None, log: list[str]) -> type:
    body = json.dumps(payload).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            log.append(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if header_version:
                self.send_header("X-API-Version", header_version)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    return Handler


@contextlib.contextmanager
def https_server(
    cert: ServerCert,
    payload: dict | None = None,
    status: int = 200,
    header_version: str | None = None,
    path: str = "/health",
) -> Iterator[HTTPSEndpoint]:
    """Serve payload (default {"api_version": "2.1", "status": "ok"}) over TLS on 127.0.0.1."""
    requests: list[str] = []
    handler = _handler(
        DEFAULT_PAYLOAD if payload is None else payload, status, header_version, requests
    )
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert_path, cert.key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name=f"https-{port}", daemon=True)
    thread.start()
    try:
        yield HTTPSEndpoint(port=port, url=f"https://{LOOPBACK}:{port}{path}", requests=requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- SSH keys ------------------------------------------------------------------------------


@dataclass
class SSHKey:
    private_path: Path
    public_line: str  # "ssh-ed25519 AAAA..."


def make_ssh_key(path: Path, comment: str = "milepost-test") -> SSHKey:
    """Write an unencrypted Ed25519 key in OpenSSH format to path (and path.pub)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    Path(f"{path}.pub").write_text(f"{public} {comment}\n")
    return SSHKey(private_path=path, public_line=public)


# --- SFTP (OpenSSH) ------------------------------------------------------------------------


@dataclass
class SFTPServer:
    port: int
    username: str
    client_key: SSHKey
    host_key: SSHKey
    known_hosts: Path
    remote_dir: Path
    workdir: Path
    log_path: Path

    def known_hosts_line(self) -> str:
        return f"[{LOOPBACK}]:{self.port} {self.host_key.public_line}\n"


def ensure_sshd() -> None:
    """Install Debian's openssh-server when /usr/sbin/sshd is missing."""
    if SSHD.exists():
        return
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "openssh-server"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
    )


SSHD_CONFIG = """\
# Test SFTP server for Milepost's interface checks: loopback only, key auth only.
ListenAddress {address}
Port {port}
HostKey {host_key}
PidFile {workdir}/sshd.pid
AuthorizedKeysFile {authorized_keys}
# StrictModes would refuse the authorized_keys file: it lives outside root's home, under
# /tmp, which is world-writable (sticky), and sshd checks every directory on its path.
# The file itself is root-owned with mode 0600 in a 0700 directory.
StrictModes no
PermitRootLogin prohibit-password
AllowUsers {user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthenticationMethods publickey
UsePAM no
PermitTTY no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PrintMotd no
LogLevel VERBOSE
Subsystem sftp internal-sftp
"""


@contextlib.contextmanager
def sftp_server(workdir: Path, username: str = "root") -> Iterator[SFTPServer]:
    """Run OpenSSH's sshd on 127.0.0.1:<free port> with internal-sftp; stop it on exit.

    sshd runs as root (it must, to switch to the user); the only allowed user is
    `username` (root by default, logging in with a key only). remote_dir is a plain
    directory under workdir (no chroot).
    """
    ensure_sshd()
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o700)
    # sshd's privilege separation directory; Debian's init script creates it at boot.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    host_key = make_ssh_key(workdir / "ssh_host_ed25519_key", comment="milepost-test-host")
    client_key = make_ssh_key(workdir / "client_ed25519", comment="milepost-test-client")
    authorized_keys = workdir / "authorized_keys"
    authorized_keys.write_text(client_key.public_line + " milepost-test-client\n")
    authorized_keys.chmod(0o600)
    remote_dir = workdir / "exchange"
    remote_dir.mkdir()
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        SSHD_CONFIG.format(
            address=LOOPBACK,
            port=port,
            host_key=host_key.private_path,
            workdir=workdir,
            authorized_keys=authorized_keys,
            user=username,
        )
    )
    subprocess.run([str(SSHD), "-t", "-f", str(config)], check=True, capture_output=True)
    log_path = workdir / "sshd.log"
    server = SFTPServer(
        port=port,
        username=username,
        client_key=client_key,
        host_key=host_key,
        known_hosts=workdir / "known_hosts",
        remote_dir=remote_dir,
        workdir=workdir,
        log_path=log_path,
    )
    server.known_hosts.write_text(server.known_hosts_line())
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def sshd_available() -> bool:
    """True when an sshd binary is present (or can be installed by ensure_sshd)."""
    return SSHD.exists() or shutil.which("apt-get") is not None
