"""The CLI reference (docs/cli.md), written from the command's own definition: every command
and group of `milepost` in the order `--help` lists them, with its help, usage, options and
arguments. The text depends on nothing but the definition (no terminal width, colour or
date), so docs/cli.md can be compared with it: `make cli-reference` writes it, and
tests/unit/cli/test_reference.py checks that it is current.
"""

from collections.abc import Iterator
from typing import Any

from typer._click import Command, Context, Parameter
from typer.core import TyperArgument, TyperGroup, TyperOption

from milepost.cli.main import full_command

TITLE = "# `milepost` command reference"
INTRO = (
    "Generated from the command's own definition by `make cli-reference`"
    " (`python -m milepost.cli.reference > docs/cli.md`); do not edit it by hand. Every"
    " command also takes `--help`. How the commands fit together: the"
    " [operations guide](operations.md)."
)
TABLE_HEAD = ("| Option or argument | Value | Description | Default |", "|---|---|---|---|")


def _commands(command: Command, ctx: Context) -> Iterator[tuple[Command, Context]]:
    """``command`` and every visible command under it, depth first, in listing order."""
    yield command, ctx
    if isinstance(command, TyperGroup):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _commands(sub, Context(sub, parent=ctx, info_name=name))


def _escaped(text: str) -> str:
    """``text`` with backslashes, asterisks and angle brackets escaped for Markdown."""
    for char in ("\\", "*", "<"):
        text = text.replace(char, "\\" + char)
    return text


def _prose(text: str) -> str:
    """Help text as Markdown that shows it as written: outside its `code` spans, the
    characters Markdown would take for emphasis or HTML are escaped."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick: no code spans
        return _escaped(text).replace("`", "\\`")
    return "`".join(_escaped(part) if i % 2 == 0 else part for i, part in enumerate(parts))


def _cell(text: str) -> str:
    """``text`` on one line, safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    """``text`` as a code span, or nothing."""
    return f"`{_cell(text)}`" if text else ""


def _flags(param: Parameter) -> str:
    """An option's flags (`-i`, `--inventory`; `--kev / --no-kev`) or an argument's name,
    with (required) when it must be given."""
    if isinstance(param, TyperArgument):
        names = _code(param.display_name_raw)
    else:
        names = ", ".join(_code(opt) for opt in param.opts)
        if param.secondary_opts:
            names += " / " + ", ".join(_code(opt) for opt in param.secondary_opts)
    return names + (" (required)" if param.required else "")


def _value(param: Parameter, ctx: Context) -> str:
    """What the parameter takes: its metavar, else its type; nothing for a flag."""
    if isinstance(param, TyperOption):
        if param.is_flag or param.count:
            return ""
        return _code(param.display_type_rich(ctx) or "")
    if isinstance(param, TyperArgument):
        return _code(param.display_type(ctx))
    return ""


def _default(param: Parameter, ctx: Context) -> str:
    """The default as `--help` shows it, or nothing when there is none to show."""
    show: Any = getattr(param, "show_default", True)
    if isinstance(show, str):
        return _cell(show)
    if not show:
        return ""
    value = param.get_default(ctx, call=False)
    if isinstance(param, TyperOption) and param.is_bool_flag:
        if not param.secondary_opts or value is None:
            return ""  # a plain flag is off unless given
        return _code(param.opts[0] if value else param.secondary_opts[0])
    if callable(value):
        return "(dynamic)"
    if isinstance(value, list | tuple):
        return ", ".join(_code(str(item)) for item in value)
    return "" if value is None or value == "" else _code(str(value))


def _description(param: Parameter) -> str:
    """The parameter's help on one line, and the environment variable it reads if any."""
    text = _cell(_prose(getattr(param, "help", None) or ""))
    envvar = param.envvar
    if envvar:
        names = [envvar] if isinstance(envvar, str) else list(envvar)
        text += f" (environment: {', '.join(_code(name) for name in names)})"
    return text.strip()


def _section(command: Command, ctx: Context) -> list[str]:
    """One command's section: heading, help, usage, then its commands or its parameters."""
    path = ctx.command_path
    lines = [f"## `{path}`", ""]
    help_text = command.help or command.short_help or ""
    if help_text:
        lines += [_prose(help_text.strip()), ""]
    usage = " ".join([path, *command.collect_usage_pieces(ctx)])
    lines += [f"Usage: `{usage}`", ""]
    if isinstance(command, TyperGroup):
        lines += ["| Command | What it does |", "|---|---|"]
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            first = (sub.help or sub.short_help or "").strip().split("\n\n")[0]
            lines.append(f"| `{path} {name}` | {_cell(_prose(first))} |")
        lines.append("")
    params = [param for param in command.params if not getattr(param, "hidden", False)]
    if params:
        lines += TABLE_HEAD
        for param in params:
            cells = (_flags(param), _value(param, ctx), _description(param), _default(param, ctx))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def render() -> str:
    """docs/cli.md: the reference of every command and group of `milepost`, in Markdown."""
    root = full_command()
    lines = [TITLE, "", INTRO, ""]
    for command, ctx in _commands(root, Context(root, info_name="milepost")):
        lines += _section(command, ctx)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render(), end="")
