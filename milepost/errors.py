"""Errors a person can act on. The CLI prints them as one line; never a traceback."""


class MilepostError(Exception):
    """Something failed while doing the work (a server down, a command failing): exit 1."""

    exit_code = 1


class UserError(MilepostError):
    """Bad input or a missing prerequisite: exit 2."""

    exit_code = 2
