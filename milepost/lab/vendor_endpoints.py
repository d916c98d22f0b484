"""The lab's vendor interfaces: an HTTPS API per RUC group and an SFTP file exchange.

A vendor's production API cannot exist here, so the lab serves the protocol for real on
127.0.0.1: a TLS server per vendor API (files/vendor-endpoint, in a container of the lab
image) with a certificate the lab's own CA signed, and the file exchange as SFTP by the
OpenSSH of the first host of group sftp_exchange, for its `exchange` user. The inventory
names them (milepost_interfaces, lab/inventory.py), with the lab CA as their ca_file, so the
interface_check role checks TLS, certificate days, API versions and an SFTP canary.

The CA and the certificates are made once and kept in .milepost/lab/tls; a certificate
with less than RENEW_DAYS left is made again.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from milepost.lab.commands import run
from milepost.lab.topology import (
    EXCHANGE_DIR,
    EXCHANGE_GROUP,
    EXCHANGE_USER,
    GROUPS,
    VENDOR_APIS,
    LabHost,
)

CONTAINER = "milepost-lab-vendors"
#: The lab image's sshd drop-in (files/sshd-milepost-lab.conf; baseline_sshd_dropin).
SSHD_DROPIN = "/etc/ssh/sshd_config.d/milepost-lab.conf"
CA_DAYS = 3650
CERT_DAYS = 90
RENEW_DAYS = 30


@dataclass(frozen=True)
class Endpoint:
    """One vendor API the lab serves."""

    name: str
    vendor: str
    port: int
    api_version: str
    cert: Path
    key: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/health"


def endpoints(tls_dir: Path, port_base: int) -> list[Endpoint]:
    """The vendor APIs, one per RUC group, on consecutive ports from ``port_base``."""
    found = []
    for index, (group, _prefix, vendor) in enumerate(GROUPS):
        name, api_version = VENDOR_APIS[group]
        found.append(
            Endpoint(
                name=name,
                vendor=vendor,
                port=port_base + index,
                api_version=api_version,
                cert=tls_dir / f"{name}.pem",
                key=tls_dir / f"{name}.key",
            )
        )
    return found


def ca_file(tls_dir: Path) -> Path:
    return tls_dir / "ca.pem"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _days_left(cert_path: Path, now: datetime.datetime) -> float:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return -1.0
    return (cert.not_valid_after_utc - now).total_seconds() / 86400


def ensure_tls(tls_dir: Path, served: list[Endpoint]) -> None:
    """The lab CA and a certificate for 127.0.0.1 per endpoint, made when missing or due."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(tls_dir, 0o700)
    now = datetime.datetime.now(datetime.UTC)
    ca_key_path, ca_path = tls_dir / "ca.key", ca_file(tls_dir)
    if _days_left(ca_path, now) < RENEW_DAYS or not ca_key_path.is_file():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Milepost Lab vendor CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )  # fmt: skip
        _write_private(ca_key_path, _key_pem(ca_key))
        ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        for endpoint in served:
            endpoint.cert.unlink(missing_ok=True)  # signed by the old CA
    signer = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    for endpoint in served:
        if _days_left(endpoint.cert, now) >= RENEW_DAYS and endpoint.key.is_file():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, endpoint.name)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .sign(signer, hashes.SHA256())
        )
        _write_private(endpoint.key, _key_pem(key))
        endpoint.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def start(image: str, tls_dir: Path, served: list[Endpoint], label: str) -> None:
    """Serve the vendor APIs (restarted on every up, so it serves the certificates just made)."""
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    script = resources.files("milepost.lab") / "files" / "vendor-endpoint"
    with resources.as_file(script) as path:
        run(
            [
                "docker", "run", "-d", "--name", CONTAINER, "--label", label,
                "--network", "host", "--init",
                "-v", f"{tls_dir}:/srv/tls:ro", "-v", f"{path}:/srv/vendor-endpoint:ro",
                image, "python3", "/srv/vendor-endpoint",
                *(
                    f"{e.port}:/srv/tls/{e.cert.name}:/srv/tls/{e.key.name}:{e.api_version}"
                    for e in served
                ),
            ]
        )  # fmt: skip


def exchange_host(hosts: list[LabHost]) -> LabHost | None:
    """The host that serves the file exchange: the first of group sftp_exchange."""
    return next((h for h in hosts if h.group == EXCHANGE_GROUP), None)


def add_exchange_user(host: LabHost, public_key: str) -> None:
    """The exchange's SFTP user on ``host``: key-only login, a directory it may write."""
    script = (
        f"id {EXCHANGE_USER} >/dev/null 2>&1 || useradd --create-home --home-dir /srv/exchange"
        f" --shell /bin/sh {EXCHANGE_USER}"
        f" && install -d -o {EXCHANGE_USER} -g {EXCHANGE_USER} -m 0700 /srv/exchange/.ssh"
        f" {EXCHANGE_DIR}"
        f" && printf '%s\\n' \"$KEY\" > /srv/exchange/.ssh/authorized_keys"
        f" && chown {EXCHANGE_USER}:{EXCHANGE_USER} /srv/exchange/.ssh/authorized_keys"
        " && chmod 0600 /srv/exchange/.ssh/authorized_keys"
        # As the baseline words it for this group (lab_ssh_users): sshd lets the user in.
        f" && sed -i 's/^AllowUsers .*/AllowUsers ops {EXCHANGE_USER}/' {SSHD_DROPIN}"
        " && kill -HUP $(cat /run/sshd.pid)"
    )
    run(["docker", "exec", "-e", f"KEY={public_key}", host.container, "sh", "-c", script])
