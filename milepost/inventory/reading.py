"""Reading a maintenance inventory as ansible-playbook reads it.

The inventory is read with Ansible's own InventoryManager and VariableManager, so
group_vars, host_vars and variable precedence are exactly what ansible-playbook sees; the
loader has the vault secrets a run would have, and Ansible's warnings are collected rather
than printed. Before Ansible is let near a source, :func:`source_problem` makes sure it is
an existing file or directory whose YAML files hold no alias bomb.

What is read: the inventory ansible.cfg names (:func:`default_inventory`), its groups
(:func:`inventory_groups`), templated variables as the controller and each RUC host see
them (:func:`inventory_variables`) and the program's phase (:func:`inventory_phase`). Every
problem is one line (UserError). milepost.inventory.checks checks what is read.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.inventory.phase import HYPERCARE, NORMAL, PHASE_VAR, PHASES, phase_at
from milepost.paths import project_root

__all__ = [
    "PHASES",
    "RUC_GROUP",
    "default_inventory",
    "inventory_groups",
    "inventory_phase",
    "inventory_variables",
    "source_problem",
]

#: The group every RUC host belongs to.
RUC_GROUP = "ruc"
#: Nodes the aliases (*name) of one YAML document of an inventory may add once expanded.
#: PyYAML builds an aliased node once and shares it, but Ansible copies and templates the
#: data it reads: a "billion laughs" (9 anchors of 9 aliases each: 9**9 strings) takes it
#: minutes and gigabytes. Ordinary anchors for reuse add far fewer.
MAX_ALIAS_EXPANSION = 100_000
#: Files of an inventory directory looked at for aliases (the rest are not).
MAX_SCANNED_FILES = 2_000


def _use_project_config() -> None:
    """Ansible reads its configuration when first imported: make it the checkout's
    ansible.cfg, the one every Milepost run uses (sets ANSIBLE_CONFIG in this process)."""

    os.environ["ANSIBLE_CONFIG"] = str(project_root() / "ansible.cfg")


@contextlib.contextmanager
def _quiet_ansible() -> Iterator[io.StringIO]:
    """Ansible's warnings would be many lines on the terminal: collect them instead."""
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
        yield captured


def _loader(playbook_dir: Path | None = None) -> Any:
    """Ansible's DataLoader with the vault secrets ansible-playbook would have: the password
    files and vault identities of ANSIBLE_VAULT_PASSWORD_FILE / ANSIBLE_VAULT_IDENTITY_LIST
    or ansible.cfg, so an inventory with vault-encrypted files or values reads as in a run.
    Never prompts. Raises AnsibleError if a configured password file cannot be read."""
    from ansible import constants as C
    from ansible.cli import CLI
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultSecretsContext

    loader = DataLoader()
    if playbook_dir is not None:
        loader.set_basedir(str(playbook_dir))
    current = VaultSecretsContext.current(optional=True)
    if current is not None:  # read once per process, as Ansible's own commands do
        loader.set_vault_secrets(current.secrets)
        return loader
    secrets = CLI.setup_vault_secrets(
        loader,
        vault_ids=list(C.DEFAULT_VAULT_IDENTITY_LIST),
        ask_vault_pass=False,
        auto_prompt=False,
        initialize_context=False,
    )
    loader.set_vault_secrets(secrets)
    VaultSecretsContext.initialize(VaultSecretsContext(secrets))
    return loader


_plugins_ready = False


def _init_plugins() -> None:
    global _plugins_ready
    if not _plugins_ready:
        from ansible.plugins.loader import init_plugin_loader

        init_plugin_loader()
        _plugins_ready = True


def default_inventory() -> list[Path]:
    """The inventory ansible.cfg names (what ansible-playbook uses without -i)."""
    _use_project_config()
    with _quiet_ansible():
        from ansible import constants as C

        return [Path(source) for source in C.DEFAULT_HOST_LIST]


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _named(path: Path) -> str:
    """A path for a message: as it is when it is short plain text, else quoted safely."""
    text = str(path)
    if len(text) <= 200 and text.isprintable() and text.isascii():
        return text
    return shown(text, 200)


def source_problem(source: Path) -> str | None:
    """Why ``source`` cannot be read as an inventory (one line), or None: it must be an
    existing file or directory with a usable name, and no YAML file of it may hold an
    alias bomb. Nothing here lets Ansible near a path that would hang or exhaust it (a
    FIFO, /dev/zero, a "billion laughs")."""
    hint = "pass -i PATH to an inventory file or directory"
    try:
        mode = source.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return f"inventory {_named(source)} does not exist: {hint}"
    except ValueError:
        return f"inventory {_named(source)} is not a usable path (it holds a NUL): {hint}"
    except OSError as bad:
        return f"inventory {_named(source)} cannot be read ({bad.strerror or bad}): {hint}"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return f"inventory {_named(source)} is not a regular file or a directory: {hint}"
    return _alias_problem(source)


def _inventory_files(source: Path) -> Iterator[Path]:
    """The files Ansible reads for ``source``: the file and the group_vars and host_vars
    beside it, or every file of a directory."""
    if source.is_dir():
        roots = [source]
    else:
        yield source
        roots = [source.parent / "group_vars", source.parent / "host_vars"]
    seen = 0
    for top in roots:
        if not top.is_dir():
            continue
        for directory, subdirs, files in os.walk(top):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                seen += 1
                if seen > MAX_SCANNED_FILES:
                    return
                yield Path(directory) / name


def _alias_problem(source: Path) -> str | None:
    for path in _inventory_files(source):
        try:
            status = path.stat()
        except (OSError, ValueError):
            continue  # Ansible says what is wrong with it
        if not stat.S_ISREG(status.st_mode):
            if path == source:
                continue
            return (
                f"inventory file {_named(path)} is not a regular file: remove it from the inventory"
            )
        why = _yaml_expansion(str(path), status.st_mtime_ns, status.st_size)
        if why:
            return f"inventory file {_named(path)} {why}: write the values out instead"
    return None


class _Endless(Exception):
    """A YAML node that contains itself."""


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _expanded_size(root: Any) -> tuple[int, int]:
    """(nodes once every alias is expanded, distinct nodes) of a composed YAML node graph;
    _Endless if a node contains itself. Iterative: no recursion limit."""
    sizes: dict[int, int] = {}
    path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            continue
        if key in sizes:
            continue
        if key in path:
            raise _Endless
        path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in path:
                raise _Endless
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)], len(sizes)


@cache
def _yaml_expansion(path: str, mtime_ns: int, size: int) -> str | None:
    """What is wrong with the aliases of the YAML file at ``path`` (cached by its time and
    size), or None. A file that is not YAML is Ansible's to judge."""

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, "rb") as handle:
            for document in yaml.compose_all(handle, Loader=loader):
                if document is None:
                    continue
                try:
                    expanded, distinct = _expanded_size(document)
                except _Endless:
                    return "holds a YAML alias that refers to itself"
                if expanded - distinct > MAX_ALIAS_EXPANSION:
                    return (
                        f"holds YAML aliases (*name) that expand to {expanded} values, more"
                        f" than {MAX_ALIAS_EXPANSION} (an alias bomb?)"
                    )
    except RecursionError:
        return "nests YAML more deeply than Python can read"
    except (yaml.YAMLError, OSError, ValueError):
        return None
    return None


def _ansible_error(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return _one_line(str(message).splitlines()[0] if str(message).strip() else repr(exc))


def _plain(value: Any) -> Any:
    """Ansible's tagged values as plain Python (so messages show them as written)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, date):
        return value
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _parse_failure(source: Path, warnings: str) -> str | None:
    """The reason Ansible gave for not parsing source, if it said it could not."""
    names = {str(source), os.path.normpath(os.path.abspath(os.path.expanduser(str(source))))}
    if not any(f"Unable to parse {name} as an inventory source" in warnings for name in names):
        return None
    reasons = re.findall(r"Failed to parse inventory with '([^']+)' plugin: ([^\n]+)", warnings)
    preferred = [r for plugin, r in reasons if plugin in ("auto", "yaml")] or [
        r for _, r in reasons
    ]
    return preferred[0].strip() if preferred else "no inventory plugin accepted it"


def _inventory_error(sources: Sequence[Path], exc: Exception, warnings: str) -> str:
    """One line for an inventory Ansible refused: why it could not parse a source when it
    said so (ansible.cfg's unparsed_is_failed makes that an error), else its message."""
    for source in sources:
        failure = _parse_failure(source, warnings)
        if failure:
            return f"inventory {_named(source)} could not be parsed: {_one_line(failure)}"
    message = f"inventory {', '.join(map(_named, sources))}: {_ansible_error(exc)}"
    if "vault" in message.lower():
        message += (
            " (the inventory holds vault-encrypted data: give the password file as for"
            " ansible-playbook, ANSIBLE_VAULT_PASSWORD_FILE or vault_password_file in ansible.cfg)"
        )
    return message


def _template(templar: Any, variables: Mapping[str, Any], name: str) -> Any:
    value = variables.get(name)
    if value is None:
        return None
    return _plain(templar.template(value))


def inventory_groups(sources: Sequence[Path]) -> dict[str, frozenset[str]]:
    """Every group of the inventory ("all" included) and its hosts, child groups' included.
    UserError (one line) if the inventory is missing, cannot be parsed or holds no host."""
    if not sources:
        raise UserError("no inventory given: pass -i PATH or set inventory in ansible.cfg")
    for source in sources:
        why = source_problem(source)
        if why:
            raise UserError(why)
    _use_project_config()
    with _quiet_ansible() as warnings:
        _init_plugins()
        from ansible.errors import AnsibleError
        from ansible.inventory.manager import InventoryManager

        try:
            inventory = InventoryManager(loader=_loader(), sources=[str(s) for s in sources])
            groups = {
                str(name): frozenset(str(host.get_name()) for host in group.get_hosts())
                for name, group in inventory.groups.items()
            }
        except AnsibleError as exc:
            raise UserError(_inventory_error(sources, exc, warnings.getvalue())) from None
    if not groups.get("all"):
        for source in sources:
            failure = _parse_failure(source, warnings.getvalue())
            if failure:
                raise UserError(f"inventory {source} could not be parsed: {_one_line(failure)}")
        raise UserError(f"inventory {', '.join(map(str, sources))} has no hosts")
    return groups


def inventory_variables(
    sources: Sequence[Path], names: Sequence[str]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The values of ``names`` as the controller (localhost, group all) sees them, and as
    each RUC host sees them ({host: {name: value}}), templated; a name that is not set is
    left out. UserError (one line) if the inventory is missing or cannot be read."""
    for source in sources:
        why = source_problem(source)
        if why:
            raise UserError(why)
    _use_project_config()
    with _quiet_ansible() as warnings:
        _init_plugins()
        from ansible.errors import AnsibleError
        from ansible.inventory.manager import InventoryManager
        from ansible.template import Templar
        from ansible.vars.manager import VariableManager

        def picked(all_vars: Mapping[str, Any]) -> dict[str, Any]:
            templar = Templar(loader=loader, variables=all_vars)
            return {name: _template(templar, all_vars, name) for name in names if name in all_vars}

        try:
            loader = _loader()
            inventory = InventoryManager(loader=loader, sources=[str(s) for s in sources])
            variables = VariableManager(loader=loader, inventory=inventory)
            controller = picked(variables.get_vars(host=inventory.get_host("localhost")))
            hosts = inventory.get_hosts(RUC_GROUP) if RUC_GROUP in inventory.groups else []
            per_host = {host.get_name(): picked(variables.get_vars(host=host)) for host in hosts}
        except AnsibleError as exc:
            raise UserError(_inventory_error(sources, exc, warnings.getvalue())) from None
    return controller, per_host


def inventory_phase(
    sources: Sequence[Path],
    now: datetime | date | None = None,
    hosts: Sequence[str] | None = None,
) -> str:
    """The program's phase on ``now``'s day (default today): hypercare when group all's
    milepost_phase or that of any RUC host (of ``hosts``, default every one) puts it in
    hypercare then (milepost.inventory.phase.phase_at, the one rule); normal otherwise.
    UserError (one line) for a malformed value."""
    controller, per_host = inventory_variables(sources, [PHASE_VAR])
    found = [phase_at(controller.get(PHASE_VAR), now, f"{PHASE_VAR} (group all)")]
    for host, values in per_host.items():
        if hosts is None or host in hosts:
            found.append(phase_at(values.get(PHASE_VAR), now, f"{PHASE_VAR} of {host}"))
    return HYPERCARE if HYPERCARE in found else NORMAL
