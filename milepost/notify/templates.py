"""The notice templates (notices/<notice>.txt.j2, editable by staff), rendered in Jinja2's
sandbox: a first line ``Subject: ...``, a blank line, then the body, in plain text.

A template that does not render (a syntax error, an undefined variable, no Subject line) is
one UserError naming the file and the line to fix.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from milepost.errors import UserError
from milepost.paths import project_root

__all__ = ["Rendered", "render", "template_path"]

SUBJECT = "Subject:"
MAX_SUBJECT = 200


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


def template_path(directory: Path, notice: str) -> Path:
    return directory / f"{notice}.txt.j2"


def _shown_path(path: Path) -> str:
    """The template as the person editing it knows it: relative to the repository."""

    try:
        return str(path.resolve().relative_to(project_root()))
    except (ValueError, UserError):
        return str(path)


def _line_in(tb: TracebackType | None, path: Path) -> int | None:
    """The template line an error was raised at (Jinja puts template frames in the
    traceback with the template's file name)."""
    wanted = os.path.realpath(path)
    line = None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name == wanted or (name.endswith(path.name) and os.path.realpath(name) == wanted):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _failure(path: Path, line: int | None, why: str) -> UserError:
    where = _shown_path(path) + (f" line {line}" if line else "")
    return UserError(f"{where}: {_one_line(why)[:300]} — fix the template")


def clean_line(text: str) -> str:
    """One line for a mail header: every line break, control or format character is a
    space, runs of spaces one."""
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text)
    return " ".join(kept.split())


def _clean_body(text: str) -> str:
    """Plain text with LF line ends, no trailing spaces, no control characters other than
    newline and tab, ending in one newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = "".join(
        c if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf") else " " for c in text
    )
    lines = [line.rstrip() for line in kept.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines) + "\n"


def render(directory: Path, notice: str, context: Mapping[str, Any]) -> Rendered:
    """Render notices/<notice>.txt.j2 from ``directory`` with ``context``."""
    path = template_path(directory, notice)
    if not path.is_file():
        raise UserError(
            f"{_shown_path(path)} does not exist: restore it from the repository or set"
            " milepost_notify.templates_dir to a folder holding it"
        )
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(directory)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - plain text mail, not HTML
        keep_trailing_newline=True,
    )
    try:
        template = env.get_template(path.name)
        output = template.render(**context)
    except TemplateSyntaxError as bad:
        raise _failure(path, bad.lineno, bad.message or str(bad)) from None
    except TemplateError as bad:
        line = _line_in(bad.__traceback__, path)
        raise _failure(path, line, bad.message or str(bad)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as bad:
        # Errors of the expressions themselves (a bad comparison, a division by zero).
        line = _line_in(bad.__traceback__, path)
        raise _failure(path, line, f"{type(bad).__name__}: {bad}") from None
    first, _, rest = output.lstrip("\n").partition("\n")
    if not first.startswith(SUBJECT):
        raise _failure(path, 1, f"the first line must be '{SUBJECT} ...'")
    subject = clean_line(first[len(SUBJECT) :])
    if not subject:
        raise _failure(path, 1, "the Subject line is empty")
    body = _clean_body(rest)
    if not body.strip():
        raise _failure(path, None, "the notice has no text after the Subject line")
    if len(subject) > MAX_SUBJECT:
        subject = subject[: MAX_SUBJECT - 3].rstrip() + "..."
    return Rendered(subject=subject, text=body)
