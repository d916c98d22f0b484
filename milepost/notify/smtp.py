"""Notices by e-mail: one plain-text UTF-8 message per audience through the agency's SMTP
server (smtplib), STARTTLS or implicit TLS verified against the system's or a given CA
bundle, a login when a username is set, a bounded number of attempts with doubling pauses.
A login is only ever sent over TLS, unless ``insecure: true`` (labs) allows it in the clear;
then every delivery carries the INSECURE note (printed, and recorded with insecure: true).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from milepost.ansible.redaction import Redactor
from milepost.notify.config import SmtpConfig
from milepost.notify.delivery import Attempted, Undelivered, connection_reason, deliver

__all__ = ["INSECURE_NOTE", "build_message", "send_mail"]

#: The note on a delivery whose login went without TLS (smtp.insecure: true, labs only).
INSECURE_NOTE = "INSECURE: the login went without TLS (milepost_notify.smtp.insecure: true)"


def build_message(sender: str, recipients: Sequence[str], subject: str, text: str) -> EmailMessage:
    """The message: From, To, Subject, Date, Message-ID and the text (UTF-8)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text, charset="utf-8")
    return message


def _context(config: SmtpConfig) -> ssl.SSLContext:
    ca_file = str(config.retry.ca_file) if config.retry.ca_file else None
    return ssl.create_default_context(cafile=ca_file)


def _reason(error: BaseException, config: SmtpConfig) -> tuple[str, bool]:
    """(why, worth trying again)."""
    where = f"{config.host}:{config.port}"
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f"the mail server {where} refused the login (SMTP {error.smtp_code})", False
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(sorted(error.recipients))
        return f"the mail server {where} refused every recipient ({refused})", False
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return f"the mail server {where} does not offer {error}", False
    if isinstance(error, smtplib.SMTPResponseException):
        message = error.smtp_error
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        permanent = 500 <= error.smtp_code < 600
        return f"the mail server {where} answered {error.smtp_code} {text}", not permanent
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return f"the mail server {where} closed the connection", True
    return connection_reason(error, f"the mail server {where}", config.retry.timeout_seconds)


def _send_once(
    config: SmtpConfig, message: EmailMessage, sender: str, to: Sequence[str]
) -> dict[str, tuple[int, bytes]]:
    timeout = config.retry.timeout_seconds
    client: smtplib.SMTP
    if config.ssl:
        client = smtplib.SMTP_SSL(
            config.host, config.port, timeout=timeout, context=_context(config)
        )
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=timeout)
    with client:
        client.ehlo()
        if config.starttls:
            client.starttls(context=_context(config))
            client.ehlo()
        if config.username is not None and config.password is not None:
            if not (config.ssl or config.starttls) and not config.insecure:
                # SmtpConfig refuses this already; never send a password in the clear.
                raise Undelivered(
                    f"the login to {config.host}:{config.port} was not sent: no TLS"
                    " (set starttls or ssl)",
                    again=False,
                )
            client.login(config.username, config.password)
        return client.send_message(message, from_addr=sender, to_addrs=list(to))


def send_mail(
    config: SmtpConfig,
    *,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    text: str,
    redactor: Redactor,
) -> Attempted:
    """Send one message to ``recipients``; never raises for a delivery failure. The reason
    of a failure is one line, scrubbed of the password and every other secret."""
    message = build_message(sender, recipients, subject, text)
    envelope_from = parseaddr(sender)[1]

    def once() -> str | None:
        refused = _send_once(config, message, envelope_from, recipients)
        notes = [INSECURE_NOTE] if config.insecure else []
        if refused:
            notes.append("refused by the server: " + ", ".join(sorted(refused)))
        return "; ".join(notes) or None

    return deliver(config.retry, once, lambda error: _reason(error, config), redactor)
