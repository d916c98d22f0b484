"""Checks of a maintenance inventory, made before any host is touched.

The inventory is read with Ansible's own InventoryManager and VariableManager, so
group_vars, host_vars and variable precedence are exactly what ansible-playbook sees; extra
vars are laid on top, as they are in a run. The checks are those of the first play of
playbooks/maintain.yml (which still guards plain ansible-playbook runs) and a few more:

- the inventory exists and holds hosts in group ``ruc`` (never the implicit localhost),
  and ``--limit`` leaves at least one of them;
- every RUC host has ``milepost_vendor``;
- ``app_update_versions`` is a mapping of Debian package names to Debian versions (so no
  shell metacharacter can reach a host);
- every entry of ``milepost_interfaces`` is a mapping with a ``url`` or a ``host``
  (roles/interface_check/meta/argument_specs.yml);
- every ``milepost_window`` and ``milepost_blackouts`` is well formed (milepost.inventory.windows);
- the run's OS patching options are known: ``os_patch_scope`` all or security,
  ``os_patch_reboot`` never or if_required (roles/os_patch/meta/argument_specs.yml);
- every ``baseline_*`` variable is one roles/baseline/meta/argument_specs.yml declares, with
  entries of the declared keys, types and choices (a list or mapping as such, not a string
  Ansible would split), sshd settings that are words rather than YAML booleans, and
  ``baseline_diff_redact`` holds regular expressions. A baseline variable that needs facts
  is checked by name only; the role checks its value on the host.

Every problem is one line; :func:`check_inventory` raises them as one UserError.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from milepost.errors import UserError, printable
from milepost.inventory.debian import DEBIAN_VERSION, OS_PATCH_CHOICES, PACKAGE_NAME
from milepost.inventory.windows import parse_blackouts, parse_window

__all__ = [
    "CheckedInventory",
    "check_inventory",
    "default_inventory",
    "inventory_groups",
    "inventory_problems",
    "inventory_phase",
    "inventory_variables",
    "source_problem",
]

#: The group every RUC host belongs to.
RUC_GROUP = "ruc"
#: Ansible's message for the keys baseline entries do not have (option.key, ...).
UNSUPPORTED_KEY = re.compile(r"(?P<where>.+?)\. Supported parameters include: (?P<keys>.*)\.")
#: Problems listed in full in the one line; the rest are counted.
MAX_LISTED = 5
#: Hosts named with a problem; the rest are counted.
MAX_HOSTS_NAMED = 3
#: Nodes the aliases (*name) of one YAML document of an inventory may add once expanded.
#: PyYAML builds an aliased node once and shares it, but Ansible copies and templates the
#: data it reads: a "billion laughs" (9 anchors of 9 aliases each: 9**9 strings) takes it
#: minutes and gigabytes. Ordinary anchors for reuse add far fewer.
MAX_ALIAS_EXPANSION = 100_000
#: Files of an inventory directory looked at for aliases (the rest are not).
MAX_SCANNED_FILES = 2_000


@dataclass(frozen=True)
class CheckedInventory:
    """An inventory that passed every check."""

    sources: tuple[Path, ...]
    #: The RUC hosts the run will touch (after --limit), in inventory order.
    hosts: tuple[str, ...]


def _use_project_config() -> None:
    """Ansible reads its configuration when first imported: make it the checkout's
    ansible.cfg, the one every Milepost run uses (sets ANSIBLE_CONFIG in this process)."""
    from milepost.paths import project_root

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
    from milepost.input_checks import shown

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
    import yaml

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
    import yaml

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


def _package_problems(pins: Any) -> Iterator[str]:
    if pins is None:
        return
    if not isinstance(pins, Mapping):
        yield f"app_update_versions must map package names to versions, not {type(pins).__name__}"
        return
    for name, version in pins.items():
        if not isinstance(name, str) or not PACKAGE_NAME.fullmatch(name):
            yield (
                f"{name!r} in app_update_versions is not a Debian package name"
                " (lowercase letters, digits, '+', '-', '.')"
            )
        elif (
            version is None
            or isinstance(version, (bool, Mapping, list))
            or not DEBIAN_VERSION.fullmatch(str(version))
        ):
            yield (
                f"version {version!r} of {name} in app_update_versions is not a"
                " Debian version (such as 2.4.0 or 1:2.4.0-1)"
            )


def _interface_problems(interfaces: Any) -> Iterator[str]:
    if interfaces is None:
        return
    if not isinstance(interfaces, list):
        yield f"milepost_interfaces must be a list, not {type(interfaces).__name__}"
        return
    for index, entry in enumerate(interfaces):
        if not isinstance(entry, Mapping):
            yield f"milepost_interfaces[{index}] must be a mapping, not {type(entry).__name__}"
            continue
        name = entry.get("name") or f"milepost_interfaces[{index}]"
        if not str(entry.get("url") or "").strip() and not str(entry.get("host") or "").strip():
            yield f"interface {name} has neither a url (https) nor a host (sftp)"


def _option_problems(values: Mapping[str, Any]) -> Iterator[str]:
    for name, choices in OS_PATCH_CHOICES.items():
        value = values.get(name)
        if value is not None and value not in choices:
            yield f"{name} must be {' or '.join(choices)}, not {value!r}"


@cache
def _baseline_spec() -> dict[str, Any]:
    import yaml

    from milepost.paths import PACKAGE_CHECKOUT

    path = PACKAGE_CHECKOUT / "roles/baseline/meta/argument_specs.yml"
    spec: dict[str, Any] = yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]
    return spec


def _kind(value: Any) -> str:
    return "empty" if value is None else type(value).__name__


def _baseline_shape_problems(name: str, option: Mapping[str, Any], value: Any) -> list[str]:
    """Lists and mappings as the role uses them: Ansible's argument spec would accept a
    string for a list (split at commas) or a dict (key=value), and the role then fails on
    every host."""
    kind = option.get("type")
    if kind == "list" and not isinstance(value, list):
        return [f"{name} must be a list, not {_kind(value)}"]
    if kind == "dict" and not isinstance(value, Mapping):
        return [f"{name} must be a mapping, not {_kind(value)}"]
    problems = []
    if kind == "list" and option.get("elements") == "dict":
        problems = [
            f"{name}[{index}] must be a mapping, not {_kind(entry)}"
            for index, entry in enumerate(value)
            if not isinstance(entry, Mapping)
        ]
    elif name == "baseline_diff_redact":
        problems = [
            f"{name}[{index}] must be a regular expression (a string), not {_kind(entry)}"
            for index, entry in enumerate(value)
            if not isinstance(entry, str)
        ]
    elif name == "baseline_sshd_settings":
        problems = [
            f"{name}: {key} is {str(setting).lower()}, which sshd does not read:"
            f" quote it ({'yes' if setting else 'no'!r})"
            for key, setting in value.items()
            if isinstance(setting, bool)
        ]
    return problems


def _non_text_keys(value: Any, where: str) -> list[str]:
    """Mapping keys that are not text (YAML reads ``0:`` or ``yes:`` as a number or a
    boolean): Ansible's argument spec validation cannot even name them."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                found.append(f"{where} has the key {key!r}, which is not text: quote it")
            else:
                step = key if key.isprintable() and len(key) <= 60 else ascii(key)[:60]
                found.extend(_non_text_keys(item, f"{where}.{step}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_non_text_keys(item, f"{where}[{index}]"))
    return found[:MAX_LISTED]


def _unknown_keys(error: str, spec: Mapping[str, Any]) -> list[str] | None:
    """Ansible names every unknown key of every option in one message, with the known
    keys of only one of them: one line per option instead, with its own known keys."""
    unsupported = UNSUPPORTED_KEY.fullmatch(error)
    if not unsupported:
        return None
    by_option: dict[str, list[str]] = {}
    for where in unsupported["where"].split(", "):
        option, _, key = where.partition(".")
        by_option.setdefault(option, []).append(key)
    lines = []
    for option, keys in by_option.items():
        known = ", ".join(sorted((spec.get(option) or {}).get("options") or {}))
        plural = "s" if len(keys) > 1 else ""
        named = ", ".join(key if key.isprintable() else ascii(key) for key in keys)
        lines.append(f"{option} has unknown key{plural} {named} (known keys: {known})")
    return lines


def _baseline_problems(
    values: Mapping[str, Any], *, unresolved: Iterable[str] = ()
) -> Iterator[str]:
    """The baseline variables set for a host, checked against roles/baseline's argument
    spec: unknown variables and keys, wrong types and choices, bad redaction patterns.
    Unresolved variables (templates that need facts) are only checked by name."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    spec = _baseline_spec()
    for name in sorted((set(values) | set(unresolved)) - set(spec)):
        close = difflib.get_close_matches(name, list(spec), n=1)
        hint = f": did you mean {close[0]}?" if close else ""
        shown_name = name if name.isprintable() and len(name) <= 100 else ascii(name)[:100]
        yield (
            f"unknown baseline variable {shown_name} (roles/baseline/meta/argument_specs.yml){hint}"
        )
    known: dict[str, Any] = {}
    for name, value in values.items():
        if name in spec:
            shape = _baseline_shape_problems(name, spec[name], value) or _non_text_keys(value, name)
            yield from shape
            if not shape:
                known[name] = value
    for error in ArgumentSpecValidator(spec).validate(known).error_messages:
        lines = _unknown_keys(error, spec)
        yield from lines if lines is not None else ["baseline: " + " ".join(error.split())]
    for pattern in known.get("baseline_diff_redact") or ():
        try:
            re.compile(pattern)
        except re.error as bad:
            yield f"baseline_diff_redact: {pattern!r} is not a regular expression ({bad})"


def _window_problems(variables: Mapping[str, Any]) -> Iterator[str]:
    """Windows are checked where preflight checks them: per host, named by its group."""
    groups = variables.get("group_names") or []
    group = str(variables.get("milepost_window_group") or (groups[0] if groups else "ungrouped"))
    window = variables.get("milepost_window")
    try:
        if window:
            parse_window(window, group=group)
        parse_blackouts(variables.get("milepost_blackouts"), group=group)
    except UserError as bad:
        yield str(bad)


def _by_problem(found: Mapping[str, list[str]]) -> list[str]:
    """One problem per text, naming the hosts it was found on."""
    lines = []
    for text, hosts in found.items():
        if not hosts:
            lines.append(text)
            continue
        named = ", ".join(hosts[:MAX_HOSTS_NAMED])
        if len(hosts) > MAX_HOSTS_NAMED:
            named += f" and {len(hosts) - MAX_HOSTS_NAMED} more hosts"
        lines.append(f"{named}: {text}")
    return lines


def _template(templar: Any, variables: Mapping[str, Any], name: str) -> Any:
    value = variables.get(name)
    if value is None:
        return None
    return _plain(templar.template(value))


def inventory_problems(
    sources: Sequence[Path],
    *,
    limit: str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    playbook_dir: Path | None = None,
) -> tuple[list[str], list[str]]:
    """Return (problems, RUC hosts after limit); every problem is one line."""
    if not sources:
        return ["no inventory given: pass -i PATH or set inventory in ansible.cfg"], []
    unusable = [why for why in map(source_problem, sources) if why]
    if unusable:
        return unusable, []

    _use_project_config()
    with _quiet_ansible() as warnings:
        _init_plugins()
        from ansible.errors import AnsibleError
        from ansible.inventory.manager import InventoryManager
        from ansible.template import Templar
        from ansible.vars.manager import VariableManager

        try:
            loader = _loader(playbook_dir)
            inventory = InventoryManager(loader=loader, sources=[str(s) for s in sources])
            variables = VariableManager(loader=loader, inventory=inventory)
            everyone = inventory.get_hosts(RUC_GROUP) if RUC_GROUP in inventory.groups else []
        except AnsibleError as exc:
            return [_inventory_error(sources, exc, warnings.getvalue())], []

        if not everyone:
            for source in sources:
                failure = _parse_failure(source, warnings.getvalue())
                if failure:
                    return [f"inventory {source} could not be parsed: {_one_line(failure)}"], []
            where = ", ".join(map(str, sources))
            return [
                f"inventory {where} has no hosts in group {RUC_GROUP}: list the RUC hosts"
                f" under {RUC_GROUP}'s child groups (see inventory/example/hosts.yml)"
            ], []

        targets = list(everyone)
        if limit:
            try:
                inventory.subset(limit)
                targets = inventory.get_hosts(RUC_GROUP)
            except AnsibleError as exc:
                return [f"--limit {limit}: {_ansible_error(exc)}"], []
            finally:
                inventory.subset(None)
            if not targets:
                return [f"--limit {limit} matches no host of group {RUC_GROUP}"], []

        found: dict[str, list[str]] = {}
        run_packages: set[str] = set()
        # (uris, suites, components) -> host -> its pins, checked against the source below.
        pinned: dict[tuple[tuple[str, ...], ...], dict[str, dict[str, Any]]] = {}
        overlay = dict(extra_vars or {})
        try:
            for host in everyone:
                name = host.get_name()
                host_vars = {**variables.get_vars(host=host), **overlay}
                templar = Templar(loader=loader, variables=host_vars)
                vendor = _template(templar, host_vars, "milepost_vendor")
                host_problems = []
                if not str(vendor or "").strip():
                    host_problems.append("no milepost_vendor (set it on the host's group)")
                pins = _template(templar, host_vars, "app_update_versions")
                host_problems.extend(_package_problems(pins))
                if not host_problems and isinstance(pins, Mapping) and pins:
                    repo = tuple(
                        tuple(str(item) for item in _template(templar, host_vars, key) or default)
                        for key, default in _source_defaults().items()
                    )
                    pinned.setdefault(repo, {}).setdefault(name, dict(pins))
                window_vars = {
                    "group_names": _plain(host_vars.get("group_names")),
                    "milepost_window_group": _template(templar, host_vars, "milepost_window_group"),
                    "milepost_window": _template(templar, host_vars, "milepost_window"),
                    "milepost_blackouts": _template(templar, host_vars, "milepost_blackouts"),
                }
                options = {key: _template(templar, host_vars, key) for key in OS_PATCH_CHOICES}
                host_problems.extend(_option_problems(options))
                baseline: dict[str, Any] = {}
                unresolved = []
                for key in host_vars:
                    if key.startswith("baseline_"):
                        try:
                            baseline[key] = _template(templar, host_vars, key)
                        except AnsibleError:
                            # It needs facts: the role's argument spec checks it on the host.
                            unresolved.append(key)
                host_problems.extend(_baseline_problems(baseline, unresolved=unresolved))
                host_problems.extend(
                    _safety_problems(
                        overlay,
                        # The inventory's own word: -e milepost_environment=lab is no lab.
                        variables.get_vars(host=host).get("milepost_environment"),
                        _template(templar, host_vars, "milepost_max_unavailable"),
                    )
                )
                for given_pins in (pins, baseline.get("baseline_package_pins")):
                    if isinstance(given_pins, Mapping):
                        run_packages.update(str(key) for key in given_pins)
                for text in host_problems:
                    found.setdefault(text, []).append(name)
                for text in _window_problems(window_vars):
                    found.setdefault(text, [])  # names its group already

            # The interface checks run on the controller: localhost's view (group all).
            controller = inventory.get_host("localhost")
            controller_vars = {**variables.get_vars(host=controller), **overlay}
            templar = Templar(loader=loader, variables=controller_vars)
            interfaces = _template(templar, controller_vars, "milepost_interfaces")
            for text in _interface_problems(interfaces):
                found.setdefault(text, [])
            options = {key: _template(templar, controller_vars, key) for key in OS_PATCH_CHOICES}
            for text in _option_problems(options):
                found.setdefault(text, [])  # the play checks them on the controller too
        except AnsibleError as exc:
            return [_inventory_error(sources, exc, warnings.getvalue())], []

    for text in _downgrade_problems(overlay.get("milepost_allow_downgrade"), run_packages):
        found.setdefault(text, [])
    if not found:
        for text, hosts in _unavailable_pins(pinned).items():
            found[text] = hosts
    return _by_problem(found), [host.get_name() for host in targets]


#: Role variables only tests may set: against anything but the lab inventory
#: (milepost_environment: lab) they would bypass the maintenance window and the host lock.
TEST_ONLY_VARS = ("preflight_window_now", "preflight_lock_path")


def _safety_problems(
    overlay: Mapping[str, Any], environment: Any, max_unavailable: Any
) -> list[str]:
    """Test-only extra vars outside the lab, and a malformed milepost_max_unavailable
    (docs/SAFETY.md); the playbooks check the same where every run passes."""
    from milepost.inventory.batches import max_unavailable as check_max_unavailable

    problems = []
    given = [name for name in TEST_ONLY_VARS if name in overlay]
    if given and environment != "lab":
        problems.append(
            f"{' and '.join(given)} are for tests and may be set only against the lab inventory"
            " (milepost_environment: lab): remove them"
        )
    try:
        check_max_unavailable(max_unavailable, "the host's groups")
    except UserError as bad:
        problems.append(str(bad))
    return problems


def _downgrade_problems(named: Any, run_packages: set[str]) -> list[str]:
    """--allow-downgrade (milepost_allow_downgrade) must name packages the run pins."""
    if named is None:
        return []
    names = [named] if isinstance(named, str) else named
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return ["--allow-downgrade must name Debian packages"]
    unknown = sorted(set(names) - run_packages)
    if unknown:
        return [
            f"--allow-downgrade {', '.join(unknown)}: not a package this run pins"
            f" ({', '.join(sorted(run_packages)) or 'none'}); name only those"
        ]
    return []


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


#: The program's phases (milepost_phase): hypercare, the early days and months after a
#: launch, makes every run stricter.
PHASES = ("normal", "hypercare")


def inventory_phase(sources: Sequence[Path]) -> str:
    """The inventory's milepost_phase (group all; default normal). UserError if unknown."""
    controller, _ = inventory_variables(sources, ["milepost_phase"])
    phase = controller.get("milepost_phase") or "normal"
    if phase not in PHASES:
        raise UserError(
            f"milepost_phase {str(phase)[:40]!r} is not one of {', '.join(PHASES)}:"
            " set it in group_vars/all"
        )
    return str(phase)


def _source_defaults() -> dict[str, list[str]]:
    """The package source's variables and their role defaults (roles/ruc_apt_source)."""
    import yaml

    from milepost.paths import project_root

    defaults_file = project_root() / "roles" / "ruc_apt_source" / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) or {}
    return {
        "ruc_apt_source_uris": [],
        "ruc_apt_source_suites": defaults.get("ruc_apt_source_suites") or [],
        "ruc_apt_source_components": defaults.get("ruc_apt_source_components") or [],
    }


def _unavailable_pins(
    pinned: Mapping[tuple[tuple[str, ...], ...], Mapping[str, Mapping[str, Any]]],
) -> dict[str, list[str]]:
    """Pinned packages or versions the hosts' package source does not offer. A source the
    controller cannot read is skipped with a warning: the hosts check their pins again."""
    import sys

    from milepost.errors import MilepostError
    from milepost.inventory import package_index

    arch = package_index.controller_arch()
    found: dict[str, list[str]] = {}
    for (uris, suites, components), hosts in pinned.items():
        if not uris:
            continue
        try:
            offered = package_index.offered(uris, suites, components, arch)
        except MilepostError as exc:
            print(
                f"milepost: warning: pinned versions not checked before the run, the package"
                f" source could not be read ({_one_line(exc)})",
                file=sys.stderr,
            )
            continue
        for host, pins in hosts.items():
            for package, version in sorted(pins.items()):
                known = offered.get(package)
                if not known:
                    text = f"{package} (app_update_versions) is not in the package source"
                elif str(version) not in known:
                    text = (
                        f"version {version} of {package} (app_update_versions) is not in the"
                        f" package source, which has {', '.join(sorted(known))}"
                    )
                else:
                    continue
                found.setdefault(text, []).append(host)
    return found


def check_inventory(
    sources: Sequence[Path],
    *,
    limit: str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    playbook_dir: Path | None = None,
) -> CheckedInventory:
    """Check the inventory; raise UserError (one line, every problem named) if it is bad."""
    problems, hosts = inventory_problems(
        sources, limit=limit, extra_vars=extra_vars, playbook_dir=playbook_dir
    )
    if problems:
        # Whatever an inventory value held, the message stays one line of printable text.
        problems = [printable(problem) for problem in problems]
        listed = "; ".join(problems[:MAX_LISTED])
        more = len(problems) - MAX_LISTED
        raise UserError(listed + (f"; and {more} more" if more > 0 else ""))
    return CheckedInventory(sources=tuple(sources), hosts=tuple(hosts))
