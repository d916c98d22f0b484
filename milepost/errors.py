"""Errors a person can act on. The CLI prints them as one line; never a traceback."""


class MilepostError(Exception):
    """Something failed while doing the work (a server down, a command failing): exit 1."""

    exit_code = 1


class UserError(MilepostError):
    """Bad input or a missing prerequisite: exit 2."""

    exit_code = 2


class Refused(MilepostError):
    """The work may not start now (fleet lock held, kill switch set, a change plan not
    approved, expired or stale): exit 3."""

    exit_code = 3


def printable(text: str) -> str:
    """``text`` as one line: every character that is not printable (newline, carriage
    return, NUL, bidi controls, ...) written as its escape, the rest left as it is."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class Stopped(MilepostError):
    """The work was stopped by a signal (Ctrl-C, SIGTERM): exit 128 + the signal. Said
    without "error:", as an interruption is not a fault."""

    exit_code = 130
