"""``milepost_notify`` (group all): who is told what, and how (see milepost.notify).

Every problem is one UserError line naming the field. No address, sender or URL may hold a
line break or control character, so nothing can be slipped into a mail header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from milepost.errors import UserError
from milepost.input_checks import check_mapping, check_text, kind_of, shown
from milepost.inventory.reading import default_inventory, inventory_variables
from milepost.inventory.vendors import EMAIL, MAX_EMAIL
from milepost.paths import project_root

__all__ = [
    "NOTICES",
    "NOTIFY_VAR",
    "Audience",
    "NotifyConfig",
    "RetryPolicy",
    "SmtpConfig",
    "load_notify_config",
    "parse_notify_config",
    "plain_http_elsewhere",
]

NOTIFY_VAR = "milepost_notify"
#: The notices Milepost sends, each with its template notices/<notice>.txt.j2.
NOTICES = ("upcoming", "completed", "emergency", "glitch", "question_reminder", "daily_review")
TOP_KEYS = (
    "contact",
    "from",
    "timezone",
    "templates_dir",
    "smtp",
    "webhook",
    "audiences",
    "notices",
)
SMTP_KEYS = (
    "host",
    "port",
    "starttls",
    "ssl",
    "username",
    "password",
    "timeout_seconds",
    "attempts",
    "retry_delay_seconds",
    "ca_file",
    "insecure",
)
RETRY_KEYS = ("timeout_seconds", "attempts", "retry_delay_seconds", "ca_file")
WEBHOOK_KEYS = (*RETRY_KEYS, "insecure")
#: The hosts a webhook may be reached at over plain http (the traffic never leaves the
#: machine); anywhere else needs https, or milepost_notify.webhook.insecure: true (labs).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
AUDIENCE_KEYS = ("email", "webhook", "vendor_contacts")
AUDIENCE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
MAX_TEXT = 300
MAX_URL = 2000
MAX_ADDRESSES = 200
MAX_ATTEMPTS = 10
MAX_TIMEOUT = 300
MAX_DELAY = 300


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for an answer, how many tries, and the first pause between two
    (doubled after each try)."""

    timeout_seconds: float = 10.0
    attempts: int = 3
    retry_delay_seconds: float = 2.0
    ca_file: Path | None = None


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    starttls: bool
    ssl: bool
    username: str | None
    password: str | None = field(repr=False)
    retry: RetryPolicy
    #: A login goes over a connection without TLS (allowed only by ``insecure: true``, for
    #: labs): every delivery over it is recorded and printed as insecure.
    insecure: bool = False

    def __post_init__(self) -> None:
        if self.username is not None and not (self.starttls or self.ssl) and not self.insecure:
            raise UserError(_PLAIN_LOGIN.format(where=f"{NOTIFY_VAR}.smtp"))


@dataclass(frozen=True)
class Audience:
    name: str
    email: tuple[str, ...]
    webhook: str | None = field(default=None, repr=False)
    vendor_contacts: bool = False


@dataclass(frozen=True)
class NotifyConfig:
    contact: str | None
    sender: str | None
    timezone: str
    templates_dir: Path
    smtp: SmtpConfig | None
    webhook: RetryPolicy
    audiences: dict[str, Audience]
    #: The audiences each notice goes to by default.
    notices: dict[str, tuple[str, ...]]
    #: milepost_notify.webhook.insecure: webhooks may be plain http to any host (labs).
    webhook_insecure: bool = False

    def secrets(self) -> list[str]:
        """Values that must never be shown: the SMTP password, and the path and query of
        every webhook URL (they often hold a token)."""
        found = []
        if self.smtp is not None and self.smtp.password:
            found.append(self.smtp.password)
        for audience in self.audiences.values():
            if audience.webhook:
                found.extend(webhook_tokens(audience.webhook))
        return found


def webhook_tokens(url: str) -> list[str]:
    """The parts of a webhook URL that may hold a token: its path segments and query."""
    parts = urlsplit(url)
    tokens = [segment for segment in parts.path.split("/") if segment]
    if parts.query:
        tokens.append(parts.query)
        tokens.extend(value for _, _, value in (p.partition("=") for p in parts.query.split("&")))
    if parts.password:
        tokens.append(parts.password)
    return [token for token in tokens if token]


def plain_http_elsewhere(url: str) -> bool:
    """True for a plain http URL whose host is not 127.0.0.1, localhost or ::1."""
    parts = urlsplit(url)
    return parts.scheme.lower() != "https" and (parts.hostname or "").lower() not in LOOPBACK_HOSTS


_PLAIN_LOGIN = (
    "{where}: a login (username, password) needs TLS: set starttls: true (port 587) or"
    " ssl: true (port 465); insecure: true allows a login without TLS, for a lab only"
)
_PLAIN_WEBHOOK = (
    "{where} is plain http to {host}: use https://, or set {var}.webhook.insecure: true"
    " for a lab only (plain http is allowed without it to 127.0.0.1, localhost and ::1)"
)


def webhook_origin(url: str) -> str:
    """scheme://host[:port] of a URL: what may be shown and recorded."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def _text(value: Any, where: str, max_len: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise UserError(f"{where} must be text, not {kind_of(value)} {shown(value)}")
    return check_text(value, where, max_len=max_len)


def _flag(value: Any, where: str, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise UserError(f"{where} must be true or false, not {shown(value)}")
    return value


def _number(
    value: Any, where: str, default: float, *, low: float, high: float, whole: bool = False
) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{where} must be a number, not {kind_of(value)} {shown(value)}")
    if whole and not isinstance(value, int):
        raise UserError(f"{where} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise UserError(f"{where} must be from {low:g} to {high:g}, not {value!r}")
    return value


def check_address(value: Any, where: str) -> str:
    """An e-mail address (name@domain.example), one line, nothing around it."""
    text = _text(value, where, MAX_EMAIL)
    if not EMAIL.fullmatch(text) or any(c in text for c in "<>,;\"'()[]\\"):
        raise UserError(f"{where} {shown(text)} is not an e-mail address: use name@domain.example")
    return text


def _sender(value: Any, where: str) -> str:
    """``Name <address>`` or a bare address."""
    text = _text(value, where)
    name, address = parseaddr(text)
    if not address or not EMAIL.fullmatch(address) or text.count("<") > 1:
        raise UserError(
            f"{where} {shown(text)} is not a sender: use 'RUC Operations"
            " <ruc-ops@ruc.example.gov>' or an address"
        )
    check_address(address, where)
    return text


def _url(value: Any, where: str, insecure: bool = False) -> str:
    text = _text(value, where, MAX_URL)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or " " in text:
        raise UserError(
            f"{where} is not an http(s) URL with a host: use https://chat.example.gov/hooks/..."
        )
    if plain_http_elsewhere(text) and not insecure:
        raise UserError(
            _PLAIN_WEBHOOK.format(where=where, host=webhook_origin(text), var=NOTIFY_VAR)
        )
    return text


def _path(value: Any, where: str, root: Path, problem: str, *, directory: bool = False) -> Path:
    """A file (or directory) setting, relative to the repository root unless absolute."""
    given = Path(_text(value, where, 4096))
    found = given if given.is_absolute() else root / given
    try:
        usable = found.is_dir() if directory else found.is_file()
    except (OSError, ValueError):  # a name too long for the file system, say
        usable = False
    if not usable:
        raise UserError(f"{where} {shown(str(given))} {problem}")
    return found


def _retry(value: Any, where: str, keys: Sequence[str], root: Path) -> RetryPolicy:
    entry = check_mapping(value if value is not None else {}, where, keys)
    ca_file = None
    if entry.get("ca_file") is not None:
        ca_file = _path(
            entry["ca_file"],
            f"{where}.ca_file",
            root,
            "is not a file: give the path of a PEM bundle of the certificate authorities to trust",
        )
    return RetryPolicy(
        timeout_seconds=_number(
            entry.get("timeout_seconds"), f"{where}.timeout_seconds", 10, low=0.1, high=MAX_TIMEOUT
        ),
        attempts=int(
            _number(
                entry.get("attempts"), f"{where}.attempts", 3, low=1, high=MAX_ATTEMPTS, whole=True
            )
        ),
        retry_delay_seconds=_number(
            entry.get("retry_delay_seconds"),
            f"{where}.retry_delay_seconds",
            2,
            low=0,
            high=MAX_DELAY,
        ),
        ca_file=ca_file,
    )


def _smtp(value: Any, root: Path) -> SmtpConfig:
    where = f"{NOTIFY_VAR}.smtp"
    entry = check_mapping(value, where, SMTP_KEYS)
    if entry.get("host") is None:
        raise UserError(f"{where}.host is missing: name the mail server, e.g. smtp.example.gov")
    host = _text(entry["host"], f"{where}.host", 255)
    if not HOST_NAME.fullmatch(host):
        raise UserError(f"{where}.host {shown(host)} is not a host name: e.g. smtp.example.gov")
    starttls = _flag(entry.get("starttls"), f"{where}.starttls")
    implicit = _flag(entry.get("ssl"), f"{where}.ssl")
    if starttls and implicit:
        raise UserError(
            f"{where}: starttls and ssl are both true: use starttls (port 587) or ssl (port"
            " 465), not both"
        )
    default_port = 465 if implicit else 587 if starttls else 25
    port = int(
        _number(entry.get("port"), f"{where}.port", default_port, low=1, high=65535, whole=True)
    )
    username = entry.get("username")
    password = entry.get("password")
    if username is not None:
        username = _text(username, f"{where}.username", 254)
    if password is not None:
        if not isinstance(password, str) or not password:
            raise UserError(f"{where}.password must be text (from a vault variable)")
        if any(c in password for c in "\r\n\0"):
            raise UserError(f"{where}.password holds a line break or NUL: check the vault value")
    if (username is None) != (password is None):
        missing = "password" if password is None else "username"
        raise UserError(f"{where}.{missing} is missing: give username and password together")
    insecure = _flag(entry.get("insecure"), f"{where}.insecure")
    plain_login = username is not None and not (starttls or implicit)
    if plain_login and not insecure:
        raise UserError(_PLAIN_LOGIN.format(where=where))
    return SmtpConfig(
        host=host,
        port=port,
        starttls=starttls,
        ssl=implicit,
        username=username,
        password=password,
        retry=_retry({k: v for k, v in entry.items() if k in RETRY_KEYS}, where, RETRY_KEYS, root),
        insecure=plain_login,
    )


def _addresses(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise UserError(f"{where} must be a list of e-mail addresses, not {kind_of(value)}")
    if len(value) > MAX_ADDRESSES:
        raise UserError(f"{where} lists {len(value)} addresses: at most {MAX_ADDRESSES}")
    found = [check_address(item, f"{where}[{index}]") for index, item in enumerate(value)]
    return tuple(dict.fromkeys(found))


def _audience(name: Any, value: Any, webhook_insecure: bool = False) -> Audience:
    if not isinstance(name, str) or not AUDIENCE_NAME.fullmatch(name):
        raise UserError(
            f"{NOTIFY_VAR}.audiences key {shown(name)} is not an audience name: lower-case"
            " letters, digits and _ (e.g. customer_service)"
        )
    where = f"{NOTIFY_VAR}.audiences.{name}"
    entry = check_mapping(value if value is not None else {}, where, AUDIENCE_KEYS)
    audience = Audience(
        name=name,
        email=_addresses(entry.get("email"), f"{where}.email"),
        webhook=(
            _url(entry["webhook"], f"{where}.webhook", webhook_insecure)
            if entry.get("webhook")
            else None
        ),
        vendor_contacts=_flag(entry.get("vendor_contacts"), f"{where}.vendor_contacts"),
    )
    if not (audience.email or audience.webhook or audience.vendor_contacts):
        raise UserError(f"{where} has no email, webhook or vendor_contacts: give it at least one")
    return audience


def _notices(value: Any, audiences: Mapping[str, Audience]) -> dict[str, tuple[str, ...]]:
    where = f"{NOTIFY_VAR}.notices"
    entry = check_mapping(value if value is not None else {}, where, NOTICES)
    found: dict[str, tuple[str, ...]] = {}
    for notice in NOTICES:
        names = entry.get(notice) or []
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list):
            raise UserError(f"{where}.{notice} must be a list of audiences, not {kind_of(names)}")
        for name in names:
            if not isinstance(name, str) or name not in audiences:
                raise UserError(
                    f"{where}.{notice} names {shown(name)}, which is not one of the audiences:"
                    f" {', '.join(audiences)}"
                )
        found[notice] = tuple(dict.fromkeys(str(name) for name in names))
    return found


def _zone(value: Any) -> str:
    where = f"{NOTIFY_VAR}.timezone"
    if value is None:
        return "UTC"
    text = _text(value, where, 64)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UserError(
            f"{where} {shown(text)} is not a time zone: use an IANA name such as"
            " America/Los_Angeles or UTC"
        ) from None
    return text


def parse_notify_config(value: Any, *, root: Path) -> NotifyConfig:
    """``milepost_notify`` checked; relative paths (templates_dir, ca_file) are read from
    ``root``, the repository."""
    entry = check_mapping(value, NOTIFY_VAR, TOP_KEYS)
    raw_audiences = entry.get("audiences")
    if not isinstance(raw_audiences, Mapping) or not raw_audiences:
        raise UserError(
            f"{NOTIFY_VAR}.audiences is missing: name who is told, e.g. communications:"
            " {email: [communications@example.gov]}"
        )
    webhook = entry.get("webhook")
    where_hook = f"{NOTIFY_VAR}.webhook"
    hook_entry = check_mapping(webhook if webhook is not None else {}, where_hook, WEBHOOK_KEYS)
    webhook_insecure = _flag(hook_entry.get("insecure"), f"{where_hook}.insecure")
    audiences = {
        str(name): _audience(name, item, webhook_insecure) for name, item in raw_audiences.items()
    }
    needs_mail = any(a.email or a.vendor_contacts for a in audiences.values())
    smtp = _smtp(entry["smtp"], root) if entry.get("smtp") is not None else None
    sender = _sender(entry["from"], f"{NOTIFY_VAR}.from") if entry.get("from") else None
    if needs_mail and smtp is None:
        raise UserError(
            f"{NOTIFY_VAR}.smtp is missing: audiences with email need a mail server"
            " (host, port, starttls)"
        )
    if needs_mail and sender is None:
        raise UserError(
            f"{NOTIFY_VAR}.from is missing: give the sender of the notices, e.g."
            " 'RUC Operations <ruc-ops@ruc.example.gov>'"
        )
    templates = root / "notices"
    if entry.get("templates_dir") is not None:
        templates = _path(
            entry["templates_dir"],
            f"{NOTIFY_VAR}.templates_dir",
            root,
            "is not a directory: give the folder holding upcoming.txt.j2, completed.txt.j2, ...",
            directory=True,
        )
    contact = entry.get("contact")
    return NotifyConfig(
        contact=_text(contact, f"{NOTIFY_VAR}.contact") if contact is not None else None,
        sender=sender,
        timezone=_zone(entry.get("timezone")),
        templates_dir=templates,
        smtp=smtp,
        webhook=_retry(
            {k: v for k, v in hook_entry.items() if k in RETRY_KEYS}, where_hook, RETRY_KEYS, root
        ),
        audiences=audiences,
        notices=_notices(entry.get("notices"), audiences),
        webhook_insecure=webhook_insecure,
    )


def load_notify_config(sources: Sequence[Path] | None = None) -> NotifyConfig | None:
    """The inventory's ``milepost_notify`` (default: the inventory ansible.cfg names), or
    None when it is not set. UserError (one line) for bad data."""

    paths = list(sources) if sources else default_inventory()
    controller, _ = inventory_variables(paths, (NOTIFY_VAR,))
    value = controller.get(NOTIFY_VAR)
    if value is None:
        return None
    return parse_notify_config(value, root=project_root())
