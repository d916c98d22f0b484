"""What one try to deliver a notice came to, and the pause between two tries."""

from __future__ import annotations

import time
from dataclasses import dataclass

from milepost.notify.config import RetryPolicy

__all__ = ["MAX_REASON", "Attempted", "one_line", "pause"]

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
