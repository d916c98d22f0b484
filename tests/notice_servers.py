"""Real servers that receive notices, for tests: SMTP (aiosmtpd) and a webhook receiver
(http.server), both on 127.0.0.1 on a free port, stopped when their context ends.

- smtp_server(): a plain SMTP server, or with ``tls_dir`` and ``password`` one that
  requires STARTTLS (a lab CA's certificate, see interface_servers) and a login as
  ``milepost``; every message is kept with whether it came over TLS, authenticated.
- webhook_server(): answers every POST with 200 and keeps its path, type and JSON body.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from interface_servers import LOOPBACK, free_port, make_ca, make_server_cert

SMTP_LOGIN = "milepost"
#: Unset these so that a webhook POST to 127.0.0.1 goes straight to the server.
PROXY_VARIABLES = (
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
)


class Collector:
    """An aiosmtpd handler keeping every message with how its session went."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.logins: list[tuple[str, bool, bool]] = []
        self.port = 0
        self.ca_file: Path | None = None

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "content": envelope.original_content or envelope.content,
                "tls": session.ssl is not None,
                "authenticated": bool(session.authenticated),
            }
        )
        return "250 Message accepted for delivery"

    def parsed(self, index: int = 0) -> email.message.EmailMessage:
        return email.message_from_bytes(
            self.messages[index]["content"], policy=email.policy.default
        )

    def subject(self, index: int = 0) -> str:
        return str(self.parsed(index)["Subject"])

    def text(self, index: int = 0) -> str:
        return self.parsed(index).get_content().replace("\r\n", "\n")


@contextlib.contextmanager
def smtp_server(tls_dir: Path | None = None, password: str | None = None) -> Iterator[Collector]:
    """An SMTP server on 127.0.0.1; with tls_dir and password it requires STARTTLS and a
    login (``milepost`` / password), and the lab CA's file is ``collector.ca_file``."""
    handler = Collector()
    options: dict[str, Any] = {}
    if tls_dir is not None:
        ca = make_ca(tls_dir)
        cert = make_server_cert(ca, tls_dir)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert.cert_path, cert.key_path)
        handler.ca_file = ca.cert_path

        def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
            ok = (
                password is not None
                and isinstance(auth_data, LoginPassword)
                and auth_data.login == SMTP_LOGIN.encode()
                and auth_data.password == password.encode()
            )
            handler.logins.append((mechanism, ok, session.ssl is not None))
            # handled=False: the server answers a refused login with 535 itself.
            return AuthResult(success=ok, handled=False)

        options = {
            "tls_context": context,
            "require_starttls": True,
            "auth_required": True,
            "authenticator": authenticator,
        }
    controller = Controller(handler, hostname=LOOPBACK, port=free_port(), **options)
    controller.start()
    handler.port = controller.port
    try:
        yield handler
    finally:
        controller.stop()


class WebhookServer(http.server.ThreadingHTTPServer):
    received: list[dict[str, Any]]

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}"


@contextlib.contextmanager
def webhook_server() -> Iterator[WebhookServer]:
    """An HTTP server on 127.0.0.1 keeping every POST's path, Content-Type and JSON body."""
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            size = int(self.headers.get("Content-Length") or 0)
            received.append(
                {
                    "path": self.path,
                    "type": self.headers.get("Content-Type"),
                    "json": json.loads(self.rfile.read(size)),
                }
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = WebhookServer((LOOPBACK, 0), Handler)
    server.received = received
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
