#!/usr/bin/env python3
"""A lab HTTPS endpoint for the interface_check molecule scenario (127.0.0.1 only).

  lab_https_server.py start --dir DIR   make a lab CA (DIR/ca.pem) and two server
                                        certificates, start two HTTPS servers in the
                                        background: "valid" (365 days) and "expiring"
                                        (3 days left); write DIR/<name>.port and DIR/server.pid
  lab_https_server.py stop --dir DIR    stop them (no error when not running)

Both serve {"api_version": "2.1", "status": "ok"} on every GET. Needs `cryptography`
(run it with the controller's Python, ansible_playbook_python).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"
PAYLOAD = json.dumps({"api_version": "2.1", "status": "ok"}).encode()
SERVERS = {"valid": dt.timedelta(days=365), "expiring": dt.timedelta(days=3, hours=1)}


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Milepost Molecule Lab CA"))
        .issuer_name(_name("Milepost Molecule Lab CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, valid_for in SERVERS.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost"))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + valid_for)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path = directory / f"{name}.key"
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


def serve(directory: Path) -> None:
    """Run both servers in this process until SIGTERM."""
    servers = []
    for name in SERVERS:
        server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / f"{name}.pem", directory / f"{name}.key")
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        (directory / f"{name}.port").write_text(f"{server.server_address[1]}\n")
        servers.append(server)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.shutdown()


def start(directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    pid_file = directory / "server.pid"
    if pid_file.exists():
        print(f"already running (pid {pid_file.read_text().strip()})")
        return 0
    make_pki(directory)
    for name in SERVERS:
        (directory / f"{name}.port").unlink(missing_ok=True)
    with (directory / "server.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "serve", "--dir", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 15
    while not all((directory / f"{name}.port").exists() for name in SERVERS):
        if process.poll() is not None or time.monotonic() > deadline:
            print("the HTTPS servers did not start; see server.log", file=sys.stderr)
            return 1
        time.sleep(0.05)
    for name in SERVERS:
        port = int((directory / f"{name}.port").read_text())
        socket.create_connection((LOOPBACK, port), timeout=5).close()
    pid_file.write_text(f"{process.pid}\n")
    print(f"started (pid {process.pid})")
    return 0


def stop(directory: Path) -> int:
    pid_file = directory / "server.pid"
    if not pid_file.exists():
        print("not running")
        return 0
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    pid_file.unlink()
    print(f"stopped (pid {pid})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "serve"])
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    directory = args.dir.resolve()
    if args.action == "start":
        return start(directory)
    if args.action == "stop":
        return stop(directory)
    serve(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
