"""What one try to deliver a notice came to, and the pause between two tries."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from milepost.ansible.redaction import Redactor
from milepost.notify.config import RetryPolicy

__all__ = [
    "MAX_REASON",
    "Attempted",
    "Undelivered",
    "connection_reason",
    "deliver",
    "one_line",
    "pause",
]

MAX_REASON = 300


@dataclass(frozen=True)
class Attempted:
    """ok: delivered; attempts: tries made; reason: why it failed (or a note on a delivery
    that went through), one line with secrets masked."""

    ok: bool
    attempts: int
    reason: str | None = None


def one_line(text: str) -> str:
    return " ".join(str(text).split())[:MAX_REASON]


def pause(policy: RetryPolicy, attempt: int) -> None:
    """Wait before try ``attempt + 1``: the delay, doubled after each try."""
    delay = policy.retry_delay_seconds * 2 ** (attempt - 1)
    if delay > 0:
        time.sleep(delay)


class Undelivered(Exception):
    """A try that reached the server but did not deliver: why, and whether to try again."""

    def __init__(self, why: str, again: bool) -> None:
        super().__init__(why)
        self.why = why
        self.again = again


def deliver(
    policy: RetryPolicy,
    once: Callable[[], str | None],
    classify: Callable[[BaseException], tuple[str, bool]],
    redactor: Redactor,
) -> Attempted:
    """Call ``once`` (one try; it returns a note on a delivery, or raises) up to the
    policy's attempts, pausing between tries; ``classify`` turns an error into (why, worth
    trying again). Never raises for a delivery failure; the reason is one line, scrubbed."""
    why = "not tried"
    attempts = 0
    for attempt in range(1, policy.attempts + 1):
        attempts = attempt
        try:
            note = once()
        except Undelivered as error:
            why, again = error.why, error.again
        except (OSError, ValueError) as error:  # smtplib's and urllib's errors are OSErrors
            why, again = classify(error)
        else:
            return Attempted(True, attempts, one_line(redactor.scrub(note)) if note else None)
        if not again:
            break
        if attempt < policy.attempts:
            pause(policy, attempt)
    return Attempted(False, attempts, one_line(redactor.scrub(why)))


def connection_reason(error: BaseException, server: str, timeout: float) -> tuple[str, bool]:
    """(why, worth trying again) for an error reaching ``server`` (words naming it, e.g.
    "the mail server 127.0.0.1:25"): certificates, refusals, timeouts, names, sockets."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the certificate of {server} could not be verified ({error.verify_message})", False
    if isinstance(error, ConnectionRefusedError):
        return f"connection to {server} refused", True
    if isinstance(error, TimeoutError | socket.timeout):
        return f"no answer from {server} within {timeout:g} s", True
    if isinstance(error, socket.gaierror):
        # A name the DNS says does not exist will not exist a few seconds later; a resolver
        # that could not answer (EAI_AGAIN) may answer then.
        return f"{server} could not be found ({error.strerror})", error.errno != socket.EAI_NONAME
    if isinstance(error, OSError) and error.strerror:
        return f"{server}: {error.strerror}", True
    return f"{server}: {type(error).__name__}", True
