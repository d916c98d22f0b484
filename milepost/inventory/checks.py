"""Checks of a maintenance inventory, made before any host is touched.

The inventory is read as ansible-playbook reads it (milepost.inventory.reading: Ansible's
own InventoryManager and VariableManager, so group_vars, host_vars and variable precedence
are exactly what a run sees); extra vars are laid on top, as they are in a run. The first
play of playbooks/maintain.yml, which guards plain ansible-playbook runs and AWX jobs,
makes the checks of :func:`run_problems` with this same code (the action plugin
milepost_inventory_check); the command line makes those and more:

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
- ``milepost_phase`` (group all and each RUC host's) is normal, hypercare, or a mapping
  {name, launch, end} whose end is not before its launch (milepost.inventory.phase);
- ``milepost_question_commitments`` maps question categories to days
  (milepost.inventory.question_commitments);
- every ``baseline_*`` variable is one roles/baseline/meta/argument_specs.yml declares, with
  entries of the declared keys, types and choices (milepost.inventory.baseline_checks).

Every problem is one line; :func:`check_inventory` raises them as one UserError.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from milepost.errors import MilepostError, UserError, printable
from milepost.inventory import package_index
from milepost.inventory.baseline_checks import _baseline_problems
from milepost.inventory.batches import max_unavailable as check_max_unavailable
from milepost.inventory.change_rules import SETTINGS_VAR as CHANGE_RULES_VAR
from milepost.inventory.change_rules import parse_rules
from milepost.inventory.debian import DEBIAN_VERSION, OS_PATCH_CHOICES, PACKAGE_NAME
from milepost.inventory.phase import PHASE_VAR, parse_phase
from milepost.inventory.question_commitments import COMMITMENTS_VAR, parse_commitments
from milepost.inventory.reading import (
    RUC_GROUP,
    _ansible_error,
    _init_plugins,
    _inventory_error,
    _loader,
    _one_line,
    _parse_failure,
    _plain,
    _quiet_ansible,
    _template,
    _use_project_config,
    source_problem,
)
from milepost.inventory.windows import parse_blackouts, parse_window
from milepost.paths import project_root

__all__ = [
    "CheckedInventory",
    "check_inventory",
    "inventory_problems",
    "one_line",
    "ruc_host_problems",
    "run_problems",
]

#: Problems listed in full in the one line; the rest are counted.
MAX_LISTED = 5
#: Hosts named with a problem; the rest are counted.
MAX_HOSTS_NAMED = 3


@dataclass(frozen=True)
class CheckedInventory:
    """An inventory that passed every check."""

    sources: tuple[Path, ...]
    #: The RUC hosts the run will touch (after --limit), in inventory order.
    hosts: tuple[str, ...]


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


def _controller_problems(phase: Any, commitments: Any) -> Iterator[str]:
    """Group all's milepost_phase and milepost_question_commitments."""
    for check, value in ((parse_phase, phase), (parse_commitments, commitments)):
        try:
            check(value)
        except UserError as bad:
            yield str(bad)


def ruc_host_problems(
    vendor: Any, pins: Any, change_control: Any = None, phase: Any = None
) -> list[str]:
    """What is wrong with a RUC host's own variables: no vendor, pinned packages that are not
    Debian names and versions, change-control rules that are not rules, a phase that is
    not a phase."""
    problems = []
    try:
        parse_phase(phase)
    except UserError as bad:
        problems.append(str(bad))
    if not str(vendor or "").strip():
        problems.append("no milepost_vendor (set it on the host's group)")
    problems.extend(_package_problems(pins))
    try:
        parse_rules(change_control, "its group")
    except UserError as bad:
        problems.append(str(bad))
    return problems


def run_problems(
    hosts: Mapping[str, tuple[Any, ...]],
    interfaces: Any,
    options: Mapping[str, Any],
    controller: Mapping[str, Any] | None = None,
) -> list[str]:
    """What every run checks before any host is touched, on values Ansible already holds
    (the first play of maintain.yml, through the action plugin milepost_inventory_check):
    each RUC host's (vendor, pins, change-control rules, phase), the controller's
    milepost_interfaces, OS patching options, and ``controller``'s milepost_phase and
    milepost_question_commitments. One line per problem, naming its hosts. The command
    line checks the same and more (inventory_problems)."""
    found: dict[str, list[str]] = {}
    for name, values in hosts.items():
        for text in ruc_host_problems(*values):
            found.setdefault(text, []).append(name)
    given = controller or {}
    for text in [
        *_interface_problems(interfaces),
        *_option_problems(options),
        *_controller_problems(given.get(PHASE_VAR), given.get(COMMITMENTS_VAR)),
    ]:
        found.setdefault(text, [])
    return [printable(problem) for problem in _by_problem(found)]


def one_line(problems: Sequence[str]) -> str:
    """Problems as the one line a refusal prints: the first few in full, the rest counted."""
    listed = "; ".join(problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    return listed + (f"; and {more} more" if more > 0 else "")


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
                pins = _template(templar, host_vars, "app_update_versions")
                rules = _template(templar, host_vars, CHANGE_RULES_VAR)
                phase = _template(templar, host_vars, PHASE_VAR)
                host_problems = ruc_host_problems(vendor, pins, rules, phase)
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
            for text in _controller_problems(
                _template(templar, controller_vars, PHASE_VAR),
                _template(templar, controller_vars, COMMITMENTS_VAR),
            ):
                found.setdefault(text, [])
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


def _source_defaults() -> dict[str, list[str]]:
    """The package source's variables and their role defaults (roles/ruc_apt_source)."""

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
        raise UserError(one_line([printable(problem) for problem in problems]))
    return CheckedInventory(sources=tuple(sources), hosts=tuple(hosts))
