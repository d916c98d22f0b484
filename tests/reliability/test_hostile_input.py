"""Hostile input: every parser and validator of Milepost is fed the corpus of hostile.py
and what Hypothesis makes of it, and must either accept the input or refuse it with a
UserError of one line (exit 2 on the command line). Any other exception is a bug.

- The `milepost` command: every subcommand (found from the Typer app), in process through
  milepost.cli.main.main with playbooks, QC, the lab and the network stubbed out, and a sample
  as real processes.
- The data parsers: advisory files (YAML, CSV), the KEV catalog (JSON), vendors, windows,
  systems, notices, the patch policy, the inventory checks, the interface check's and the
  window check's module input, every function of milepost.input_checks.
- Injection: the modules that build commands (apt pin, OS patch, unapproved packages,
  package versions) and files (the host lock, the lab inventory) get the corpus as package
  names, versions, host names and run ids; commands are argv lists run without a shell,
  written files keep their lines, and no payload ever touches its canary file.
- A malformed or missing inventory fails ansible-playbook (ansible.cfg's [inventory]
  unparsed_is_failed) and nothing runs on the implicit localhost; `milepost maintain`
  refuses it with one line and exit 2.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import hostile
import pytest
import yaml
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st
from proving import ROOT, SEED, tally, trials

from milepost.errors import MilepostError, UserError
from milepost.inventory import debian

EXAMPLE = ROOT / "inventory" / "example"
EXAMPLE_VARS = EXAMPLE / "group_vars"
MILEPOST = Path(sys.executable).parent / "milepost"
#: Placeholder for the sandbox's directory of files commands may write.
OUT = "__MILEPOST_OUT__"
TALLY = "hostile inputs tried"

SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)


def fuzz(fast: int, full: int) -> Callable[[Any], Any]:
    """Hypothesis settings for a test: ``trials(fast, full)`` examples, the suite's seed."""

    def decorate(test: Any) -> Any:
        return seed(SEED)(settings(SETTINGS, max_examples=trials(fast, full))(test))

    return decorate


# ---------------------------------------------------------------- judging outcomes


def assert_one_line(message: str, context: str) -> None:
    """A UserError a person reads: one line, not empty."""
    assert message.strip(), f"{context}: the error message is empty"
    assert len(message.splitlines()) == 1, (
        f"{context}: the error is not one line: {message[:400]!r}"
    )


def judged(context: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The result of call, or None when it refused the input with one line. Any other
    exception fails the test (with its traceback, for Hypothesis to shrink)."""
    try:
        return call(*args, **kwargs)
    except UserError as refused:
        assert_one_line(str(refused), context)
        return None


def problems_one_line(context: str, problems: Sequence[str]) -> None:
    for problem in problems:
        assert isinstance(problem, str)
        assert_one_line(problem, context)


def shortened(value: Any, limit: int = 160) -> str:
    text = ascii(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


# ---------------------------------------------------------------- the sandbox


@dataclass
class Sandbox:
    root: Path
    canary: Path
    out: Path
    ledger_url: str

    def arm(self, value: str) -> str:
        """A generated value with its placeholders made real paths of this sandbox."""
        return hostile.arm(value, self.canary).replace(OUT, str(self.out))

    def assert_no_injection(self, what: str) -> None:
        assert not self.canary.exists(), f"INJECTION: {what} touched the canary {self.canary}"


def _no_playbook(*args: Any, **kwargs: Any) -> Any:
    raise MilepostError("hostile-input sandbox: no playbook, QC or lab command runs here")


def _no_network(*args: Any, **kwargs: Any) -> Any:
    raise OSError("hostile-input sandbox: no network")


def _no_index(*args: Any, **kwargs: Any) -> Any:
    raise MilepostError("hostile-input sandbox: no package source is read")


def _no_dns(*args: Any, **kwargs: Any) -> Any:
    raise socket.gaierror(socket.EAI_NONAME, "hostile-input sandbox: no DNS")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A state directory, a SQLite ledger and a working directory of their own; playbook
    runs, QC, the lab (docker) and the network replaced by stubs that refuse, so a hostile
    value that passes every check reaches at most a stub."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "cwd").mkdir()
    (root / "out").mkdir()
    url = f"sqlite:///{root / 'ledger.sqlite'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MILEPOST_ROOT", str(ROOT))
        mp.setenv("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
        mp.setenv("MILEPOST_STATE_DIR", str(root / "state"))
        mp.setenv("MILEPOST_LEDGER_URL", url)
        mp.setenv("SUDO_USER", "alice")
        mp.chdir(root / "cwd")
        # Ansible patches socket.getaddrinfo when first imported (and checks its patch):
        # import it, on the checkout's ansible.cfg, before the network is stubbed.
        from milepost.inventory.reading import default_inventory

        default_inventory()
        import milepost.ansible.runner
        import milepost.inventory.package_index
        import milepost.lab.fleet
        import milepost.notify.delivery
        import milepost.quality.qc

        mp.setattr(milepost.ansible.runner, "run_playbook", _no_playbook)
        mp.setattr(milepost.quality.qc, "run_checks", _no_playbook)
        for name in ("up", "down", "reset", "status"):
            mp.setattr(milepost.lab.fleet, name, _no_playbook)
        mp.setattr(milepost.inventory.package_index, "read_index", _no_index)
        mp.setattr(milepost.notify.delivery, "pause", lambda *a, **k: None)
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket.socket, "connect_ex", _no_network)
        mp.setattr(socket, "getaddrinfo", _no_dns)
        yield Sandbox(root=root, canary=root / "CANARY", out=root / "out", ledger_url=url)


# ---------------------------------------------------------------- the command tree


@dataclass(frozen=True)
class Param:
    name: str
    flags: tuple[str, ...]  # () for an argument
    is_flag: bool
    multiple: bool
    required: bool

    @property
    def is_argument(self) -> bool:
        return not self.flags


@dataclass(frozen=True)
class Leaf:
    path: tuple[str, ...]
    params: tuple[Param, ...]

    def __str__(self) -> str:
        return " ".join(self.path)


def command_tree() -> list[Leaf]:
    """Every leaf command of `milepost`, with its parameters, read from the Typer app."""
    from milepost.cli.main import full_command

    found: list[Leaf] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is not None:
            for name, sub in sorted(subcommands.items()):
                walk(sub, (*path, name))
            return
        params = []
        for p in command.params:
            is_argument = getattr(p, "param_type_name", "") == "argument"
            flags = () if is_argument else tuple(p.opts) + tuple(p.secondary_opts or ())
            params.append(
                Param(
                    name=p.name,
                    flags=flags,
                    is_flag=bool(getattr(p, "is_flag", False)),
                    multiple=bool(getattr(p, "multiple", False)),
                    required=bool(p.required),
                )
            )
        found.append(Leaf(path, tuple(params)))

    walk(full_command(), ())
    return found


LEAVES = command_tree()
GROUPS = sorted({leaf.path[:-1] for leaf in LEAVES if len(leaf.path) > 1})

#: Parameters naming a file or directory a command writes: their values are put inside
#: the sandbox's out directory (a hostile name stays hostile, it cannot climb out).
WRITES = {"out", "key"}
#: Parameters that are paths a command reads.
READS = {"inventory", "path", "checkpoint", "archive"}

#: A valid value per parameter (command-specific ones first), so a hostile value in one
#: parameter gets past the others to its own check.
VALID_FOR: dict[tuple[str, str], str] = {
    ("lab up", "hosts"): "3",
    ("ledger export", "fmt"): "jsonl",
    ("note export", "fmt"): "csv",
    ("advisory import", "fmt"): "vendor",
    ("ledger runs", "limit"): "10",
    ("ledger host", "limit"): "5",
    ("exposure", "host"): "pay-east-01.ruc.example.gov",
    ("ledger host", "name"): "pay-east-01.ruc.example.gov",
    ("change open", "hosts"): "pay-east-01.ruc.example.gov",
    ("note update", "status"): "open",
    ("note close", "status"): "closed",
    ("note action add", "kind"): "runbook",
    ("note action add", "lesson"): "L-0001",
}
VALID: dict[str, str] = {
    "advisory": "CVE-2025-12345",
    "advisory_id": "CVE-2025-12345",
    "host": "pay-east-01.ruc.example.gov",
    "hosts": "pay-east-01.ruc.example.gov",
    "expires": "2030-01-01",
    "reason": "hostile input test",
    "control": "network isolation",
    "resources": "*",
    "vendor": "harbor_payments",
    "subject": "A question",
    "text": "Some text",
    "title": "A title",
    "body": "Some body",
    "before": "2000-01-01",
    "run_id": "00000000000000000000000000",
    "note": "G-0001",
    "finding": "F-0001",
    "package": "ruc-payment-gateway=2.4.0",
    "severity": "high",
    "due": "2030-01-01",
    "published": "2025-01-01",
    "since": "7d",
    "kind": "maintain",
    "limit": "pay-east-01.ruc.example.gov",
    "canary": "1",
    "period": "2025-01",
    "months": "6",
    "within": "7d",
    "audience": "communications",
    "system": "payment_gateway",
    "category": "technology",
    "owner": "alice",
    "run": "00000000000000000000000000",
    "glitch": "G-0001",
    "detected_by": "monitoring",
    "impact": "none",
    "status": "open",
    "resolution": "fixed",
    "comment": "a comment",
    "until": "7d",
    "group": "payment_gateway",
    "note_type": "lesson",
    "change_id": "C-0001",
    "question_id": "Q-0001",
    "note_id": "L-0001",
    "glitch_id": "G-0001",
    "action_id": "A-0001",
    "lesson": "L-0001",
    "cause": "a root cause",
    "no_action_reason": "nothing to change",
    "ref": "docs/runbook.md",
    "public_key": "AAAA",
    "inventory": str(EXAMPLE),
    "out": f"{OUT}/written",
    "key": f"{OUT}/signing.key",
    "checkpoint": f"{OUT}/checkpoint.json",
    "archive": f"{OUT}/archive.jsonl",
    "path": str(EXAMPLE_VARS / "all" / "vendors.yml"),
    "extra_var": "app_phase=normal",
    "fmt": "csv",
}


def valid_value(leaf: Leaf, param: Param) -> str:
    return VALID_FOR.get((str(leaf), param.name), VALID.get(param.name, "x"))


def _flat(value: str) -> str:
    """A hostile file name that stays inside the out directory."""
    return "f-" + value.replace("/", "_")


def placed(param: Param, value: str) -> str:
    """``value`` as the parameter gets it: written paths inside the out directory."""
    if param.name in WRITES:
        return f"{OUT}/{_flat(value)}"
    return value


HOSTILE = hostile.everything()  # placeholders unarmed: the sandbox arms them
TEXTS = st.text(max_size=40)
HOSTILE_TEXT = st.one_of(st.sampled_from(HOSTILE), TEXTS)


def value_strategy(leaf: Leaf, param: Param) -> st.SearchStrategy[str]:
    return st.one_of(st.just(valid_value(leaf, param)), HOSTILE_TEXT).map(
        lambda value: placed(param, value)
    )


def base_argv(leaf: Leaf, hostile_param: Param | None = None, value: str = "") -> list[str]:
    """The command with every required parameter valid, and ``hostile_param`` (if given)
    set to ``value``."""
    options: list[str] = []
    arguments: list[str] = []
    for param in leaf.params:
        if param is hostile_param:
            given_value = placed(param, value)
        elif param.required:
            given_value = valid_value(leaf, param)
        else:
            continue
        if param.is_argument:
            arguments.append(given_value)
        else:
            options += [param.flags[-1] if param.flags[-1].startswith("--") else param.flags[0]]
            options.append(given_value)
    return [*leaf.path, *options, "--", *arguments] if arguments else [*leaf.path, *options]


@st.composite
def cli_argv(draw: st.DrawFn) -> list[str]:
    """A `milepost` command line: a leaf command, its parameters with valid, hostile or
    arbitrary values (required ones mostly given), now and then a stray token."""
    leaf = draw(st.sampled_from(LEAVES))
    argv = list(leaf.path)
    arguments: list[str] = []
    for param in leaf.params:
        if param.is_flag:
            if draw(st.booleans()):
                argv.append(draw(st.sampled_from(param.flags)))
            continue
        low = 1 if param.required and draw(st.integers(0, 9)) else 0
        count = draw(st.integers(low, 3 if param.multiple else 1))
        for _ in range(count):
            value = draw(value_strategy(leaf, param))
            if param.is_argument:
                arguments.append(value)
            else:
                argv += [draw(st.sampled_from(param.flags)), value]
    if draw(st.integers(0, 7)) == 0:
        argv.append(draw(st.sampled_from(["--help", "--json", "-x", "--no-such-option", "extra"])))
    return argv + (["--", *arguments] if arguments else [])


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def invoke(sandbox: Sandbox, argv: Sequence[str]) -> Outcome:
    """Run `milepost argv` in this process as its console script does (milepost.cli.main.main)
    and check the outcome: no exception escapes, no traceback is printed, the exit code is
    documented, an error is one line, and no canary was touched."""
    from milepost.cli.main import main

    args = [sandbox.arm(a) for a in argv]
    what = f"milepost {shortened(args, 300)}"
    out, err = io.StringIO(), io.StringIO()
    stdin = sys.stdin
    try:
        sys.stdin = io.StringIO("")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    except (Exception, SystemExit) as escaped:  # noqa: BLE001 - that is the bug to report
        detail = "".join(traceback.format_exception(escaped))
        pytest.fail(f"{what}: uncaught {type(escaped).__name__}: {escaped}\n{detail}")
    finally:
        sys.stdin = stdin
    outcome = Outcome(code, out.getvalue(), err.getvalue())
    sandbox.assert_no_injection(what)
    check_outcome(what, outcome, is_group=tuple(argv) in GROUPS or not argv)
    return outcome


def check_outcome(what: str, outcome: Outcome, *, is_group: bool = False) -> None:
    text = outcome.out + outcome.err
    assert "Traceback (most recent call last)" not in text, f"{what}: printed a traceback"
    assert outcome.code in (0, 1, 2, 3, 130, 143), f"{what}: exit {outcome.code}"
    marker = "milepost: error:"
    if marker in outcome.err:
        tail = outcome.err[outcome.err.rindex(marker) :]
        assert len(tail.splitlines()) == 1, f"{what}: the error is not one line: {tail[:400]!r}"
    elif outcome.code == 2 and not is_group:
        raise AssertionError(f"{what}: exit 2 without a one-line error: {outcome.err[-400:]!r}")


# ---------------------------------------------------------------- the command line


def test_the_command_tree_is_found() -> None:
    names = {str(leaf) for leaf in LEAVES}
    assert {"maintain", "emergency-patch", "advisory import", "vendor question add"} <= names
    assert len(LEAVES) >= 40, sorted(names)


def test_every_parameter_refuses_the_corpus_with_one_line(sandbox: Sandbox, rng: Any) -> None:
    """Each parameter of each command, the others valid, gets hostile values of the corpus
    (a seeded sample: one value each, thirty under MILEPOST_RELIABILITY=full)."""
    tried = 0
    for leaf in LEAVES:
        for param in leaf.params:
            if param.is_flag:
                continue
            values = rng.sample(HOSTILE, trials(1, 30))
            for value in values:
                invoke(sandbox, base_argv(leaf, param, value))
                tried += 1
    tally(TALLY, tried)


@fuzz(150, 1500)
@given(argv=cli_argv())
@example(argv=["lab", "up", "--hosts", "\u00b2"])  # int("²"): ValueError
@example(argv=["maintain", "-i", "a" * 5000])  # Path.exists(): File name too long
@example(argv=["vendor", "list", "-i", "a" * 300])
@example(argv=["qc", "run", "-i", "a" * 300])
@example(argv=["exposure", "-i", "a" * 300])
@example(argv=["notify", "upcoming", "--dry-run", "-i", "a" * 300])
@example(argv=["report", "dashboard", "--out", f"{OUT}/{'a' * 300}", "-i", str(EXAMPLE)])
@example(argv=["report", "dashboard", "--out", f"{OUT}/a" + "\0"])
@example(argv=["emergency-patch", "--advisory", "CVE-2025-12345", "-i", "a" * 300])
@example(argv=["maintain", "-i", "/dev/zero"])  # Ansible would read it for ever
@example(
    argv=[
        "change",
        "open",
        "--hosts",
        "pay-east-01.ruc.example.gov",
        "--resources",
        "*",
        "--reason",
        "r",
        "--until",
        "99999999999d",
    ]
)  # timedelta(days=...): OverflowError
@example(argv=["drift", "report", "--since", "9999999999d"])
@example(argv=["change", "open", "--hosts", "a\rb", "--resources", "*", "--reason", "r"])
@example(argv=["exposure", "--host", "\udc80"])  # undecodable bytes: UnicodeEncodeError
@example(argv=["drift", "remediate", "--finding", "a\nb"])  # raw newline in the error
@example(argv=["maintain", "--limit", "a\nb"])
@example(
    argv=["maintain", "--override-window", "--reason", "{{ lookup('pipe', 'touch x') }}"]
)  # Ansible templates extra vars
def test_any_command_line_is_accepted_or_refused_in_one_line(
    sandbox: Sandbox, argv: list[str]
) -> None:
    invoke(sandbox, argv)
    tally(TALLY)


@pytest.mark.parametrize(
    "argv",
    [
        ["advisory", "add", "--id", "{}"],
        ["advisory", "list", "--package", "{}"],
        ["note", "add", "lesson", "--title", "{}"],
        ["emergency-patch", "--advisory", "{}", "--dry-run"],
        ["ledger", "show", "{}"],
        ["vendor", "list", "-i", "{}"],
        ["maintain", "--check", "-i", "{}"],
    ],
    ids=lambda argv: " ".join(a for a in argv if a != "{}")[:40],
)
def test_real_processes_refuse_the_corpus(sandbox: Sandbox, rng: Any, argv: list[str]) -> None:
    """A sample through the installed console script, as a person runs it: nothing is
    stubbed, so only commands that stop at their checks (or at the ledger) are used."""
    values = [v for v in HOSTILE if hostile.argv_safe(v)]
    env = {
        **os.environ,
        "MILEPOST_ROOT": str(ROOT),
        "MILEPOST_STATE_DIR": str(sandbox.root / "state"),
        "MILEPOST_LEDGER_URL": sandbox.ledger_url,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
    }
    for value in rng.sample(values, trials(1, 12)):
        args = [sandbox.arm(a.replace("{}", value)) for a in argv]
        proc = subprocess.run(  # noqa: S603 - argv list, no shell: that is the point
            [str(MILEPOST), *args],
            capture_output=True,
            env=env,
            cwd=sandbox.root / "cwd",
            check=False,
            timeout=600,
        )
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        what = f"milepost {shortened(args)}"
        sandbox.assert_no_injection(what)
        check_outcome(what, Outcome(proc.returncode, out, err))
        tally(TALLY)


# ---------------------------------------------------------------- data: strategies


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


VENDORS = _load(EXAMPLE_VARS / "all" / "vendors.yml")["milepost_vendors"]
INTERFACES = _load(EXAMPLE_VARS / "all" / "interfaces.yml")["milepost_interfaces"]
SYSTEMS = _load(EXAMPLE_VARS / "all" / "systems.yml")["milepost_systems"]
NOTIFY = _load(EXAMPLE_VARS / "all" / "notify.yml")["milepost_notify"]
POLICY_FILE = _load(EXAMPLE_VARS / "all" / "patch_policy.yml")
POLICY = POLICY_FILE["milepost_patch_policy"]
KEV_PRODUCTS = POLICY_FILE["milepost_kev_products"]
MAINTENANCE = _load(EXAMPLE_VARS / "payment_gateway" / "maintenance.yml")
WINDOW = MAINTENANCE["milepost_window"]
BLACKOUTS = MAINTENANCE["milepost_blackouts"]
PINS = MAINTENANCE["app_update_versions"]
BASELINE = _load(EXAMPLE_VARS / "all" / "baseline.yml")
#: The example inventory's groups and each host's vendor (as inventory_groups reads them).
EXAMPLE_GROUPS: dict[str, frozenset[str]] = {}
HOST_VENDORS: dict[str, str] = {}
for _group, _entry in _load(EXAMPLE / "hosts.yml")["all"]["children"]["ruc"]["children"].items():
    EXAMPLE_GROUPS[_group] = frozenset(_entry["hosts"])
    for _host in _entry["hosts"]:
        HOST_VENDORS[_host] = _entry["vars"]["milepost_vendor"]
EXAMPLE_GROUPS["ruc"] = frozenset(HOST_VENDORS)
EXAMPLE_GROUPS["all"] = frozenset(HOST_VENDORS)

#: Scalars as YAML or JSON give them, hostile ones included.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.sampled_from(HOSTILE),
    st.text(max_size=30),
    st.dates(),
    st.datetimes(),
)
#: Keys of mappings: text, and the odd number or None YAML allows.
KEYS = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12), st.integers(), st.none())


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4))


VALUES = st.recursive(SCALARS, _containers, max_leaves=12)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from _paths(item, (*prefix, index))


def _mutate(data: Any, path: tuple[Any, ...], op: str, new: Any, key: Any) -> Any:
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "rename" and isinstance(parent, dict):
        parent[key] = parent.pop(last)
    elif op == "add":
        target = parent[last]
        if isinstance(target, dict):
            target[key] = new
        elif isinstance(target, list):
            target.append(new)
        else:
            parent[last] = new
    else:
        parent[last] = new
    return data


@st.composite
def mutated(draw: st.DrawFn, valid: Any, values: st.SearchStrategy[Any] = VALUES) -> Any:
    """``valid`` with one to three of its parts replaced by hostile ones, deleted, renamed
    or added to: near enough to valid to reach the deep checks."""
    data = copy.deepcopy(valid)
    if draw(st.integers(0, 15)) == 0:
        return draw(values)  # now and then something else altogether
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(data))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(("replace", "replace", "replace", "delete", "rename", "add")))
        data = _mutate(data, path, op, draw(values), draw(KEYS))
    return data


# ---------------------------------------------------------------- data: parsers


def test_input_checks_take_any_text(sandbox: Sandbox) -> None:
    """Every check of milepost.input_checks and milepost.inventory.debian with every corpus
    string and odd non-strings."""
    from milepost import input_checks as ic

    checks: list[Callable[[Any], Any]] = [
        lambda v: ic.check_text(v, "text", max_len=300),
        lambda v: ic.check_untemplated(v, "reason", max_len=300),
        lambda v: ic.check_multiline(v, "body"),
        ic.check_advisory_id,
        debian.check_package_name,
        debian.check_version,
        ic.check_limit,
        lambda v: ic.check_date(v, "date"),
        lambda v: ic.check_mapping(v, "somewhere", ["a", "b"]),
    ]
    values: list[Any] = [
        *hostile.everything(sandbox.canary),
        None,
        0,
        -1,
        2.5,
        float("nan"),
        True,
        b"bytes",
        ["list"],
        {"a": 1},
        {"\n": 1},
        {("tuple",): 1},
    ]
    for value in values:
        shown = ic.shown(value)
        assert shown.isascii() and len(shown.splitlines()) <= 1, shortened(value)
        for check in checks:
            judged(f"input check of {shortened(value)}", check, value)
    tally(TALLY, len(values))


@fuzz(200, 4000)
@given(
    window=mutated(WINDOW),
    blackouts=mutated(BLACKOUTS),
    group=HOSTILE_TEXT,
    now=st.datetimes(timezones=st.just(UTC)),
)
@example(
    window={**WINDOW, "duration_minutes": "\u00b2"},
    blackouts=BLACKOUTS,
    group="g",
    now=datetime(2026, 1, 1, tzinfo=UTC),
)
@example(
    window={**WINDOW, "a\nb": 1},
    blackouts=BLACKOUTS,
    group="g",
    now=datetime(2026, 1, 1, tzinfo=UTC),
)
@example(
    window=WINDOW, blackouts=BLACKOUTS, group="a\nb\u202e", now=datetime(2026, 1, 1, tzinfo=UTC)
)
@example(
    window=None,
    blackouts=[{"start": "2020-01-01", "end": "9999-12-31"}],
    group="g",
    now=datetime(2026, 1, 1, tzinfo=UTC),
)
@example(
    window=WINDOW,
    blackouts=[{"start": "2020-01-01", "end": "9999-12-31"}],
    group="g",
    now=datetime(2026, 1, 1, tzinfo=UTC),
)
@example(window=WINDOW, blackouts=[], group="g", now=datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
@example(window=WINDOW, blackouts=[], group="g", now=datetime(1, 1, 1, 0, 1, tzinfo=UTC))
def test_windows_and_blackouts(window: Any, blackouts: Any, group: str, now: datetime) -> None:
    from milepost.inventory.windows import parse_blackouts, parse_window, window_state

    parsed = judged("window", parse_window, window, group) if window is not None else None
    days = judged("blackouts", parse_blackouts, blackouts, group)
    if days is not None and (parsed is not None or window is None):
        is_open, reason, next_open = window_state(parsed, days, now)
        assert isinstance(is_open, bool) and len(reason.splitlines()) == 1
        assert next_open is None or next_open.tzinfo is not None
    tally(TALLY)


@fuzz(100, 2000)
@given(
    window=mutated(WINDOW),
    blackouts=mutated(BLACKOUTS),
    group=HOSTILE_TEXT,
    now=st.datetimes(timezones=st.just(UTC)),
    override=st.booleans(),
    reason=HOSTILE_TEXT,
)
def test_window_check_module_decides(
    window: Any, blackouts: Any, group: str, now: datetime, override: bool, reason: str
) -> None:
    """The milepost_window_check action's decision (milepost.inventory.windows) on hostile input."""
    from milepost.inventory.windows import decide

    params = {
        "window": window,
        "blackouts": blackouts,
        "group": group,
        "override": override,
        "override_reason": reason,
    }
    outcome = judged("window check", decide, params, now)
    if outcome is not None:
        failed, result = outcome
        assert isinstance(failed, bool) and isinstance(result["reason"], str)
    tally(TALLY)


@fuzz(200, 4000)
@given(vendors=mutated(VENDORS), interfaces=mutated(INTERFACES), owners=mutated(HOST_VENDORS))
@example(
    vendors=VENDORS,
    interfaces=INTERFACES,
    owners={**HOST_VENDORS, "pay-east-01.ruc.example.gov": "relay_file_exchange\nx"},
)
def test_vendors(vendors: Any, interfaces: Any, owners: Any) -> None:
    from milepost.inventory.vendors import parse_vendors

    host_vendors = {str(k): str(v) for k, v in owners.items()} if isinstance(owners, dict) else {}
    judged(
        "milepost_vendors",
        parse_vendors,
        vendors,
        groups=EXAMPLE_GROUPS,
        interfaces=interfaces,
        host_vendors=host_vendors,
    )
    tally(TALLY)


@fuzz(150, 3000)
@given(systems=mutated(SYSTEMS), program=VALUES)
def test_systems(systems: Any, program: Any) -> None:
    from milepost.inventory.systems import parse_systems, program_name

    judged(
        "milepost_systems", parse_systems, systems, groups=EXAMPLE_GROUPS, host_vendors=HOST_VENDORS
    )
    judged("milepost_program_name", program_name, program)
    tally(TALLY)


@fuzz(200, 4000)
@given(notify=mutated(NOTIFY))
@example(notify={**NOTIFY, "templates_dir": "a" * 300})  # is_dir(): File name too long
@example(notify={**NOTIFY, "smtp": {**NOTIFY["smtp"], "ca_file": "b" * 300}})
def test_notify_config(notify: Any) -> None:
    from milepost.notify.config import parse_notify_config

    config = judged("milepost_notify", parse_notify_config, notify, root=ROOT)
    if config is not None:
        for secret in config.secrets():
            assert isinstance(secret, str)
    tally(TALLY)


@fuzz(200, 4000)
@given(
    policy=mutated(POLICY),
    host_policy=mutated(POLICY),
    products=mutated(KEV_PRODUCTS),
    published=st.dates(),
    where=HOSTILE_TEXT,
)
@example(
    policy={"days": {"critical": 10**12}},
    host_policy=None,
    products=KEV_PRODUCTS,
    published=date(2026, 1, 1),
    where="group all",
)
@example(
    policy=POLICY,
    host_policy=None,
    products=KEV_PRODUCTS,
    published=date(9999, 12, 31),
    where="group all",
)
@example(
    policy={**POLICY, "x\ny": 1},
    host_policy=None,
    products=KEV_PRODUCTS,
    published=date(2026, 1, 1),
    where="group all",
)
def test_patch_policy(
    policy: Any, host_policy: Any, products: Any, published: date, where: str
) -> None:
    from milepost.inventory.severities import SEVERITIES
    from milepost.patching.policy import parse_kev_products, parse_policy

    base = judged("milepost_patch_policy", parse_policy, policy, where)
    if base is not None:
        own = judged("host milepost_patch_policy", parse_policy, host_policy, where, base)
        for chosen in (base, own):
            if chosen is None:
                continue
            for severity in (*SEVERITIES, "bogus"):
                for kev in (False, True):
                    due = chosen.due(severity=severity, kev=kev, published=published, kev_due=None)
                    assert isinstance(due, date)
    kev = judged("milepost_kev_products", parse_kev_products, products)
    for product in kev or ():
        product.matches("\u202eSudo", "sudo\n")
    tally(TALLY)


@fuzz(150, 3000)
@given(
    pins=mutated(PINS),
    interfaces=mutated(INTERFACES),
    options=mutated({"os_patch_scope": "all", "os_patch_reboot": "never"}),
    window=mutated(
        {
            "milepost_window_group": "payment_gateway",
            "milepost_window": WINDOW,
            "milepost_blackouts": BLACKOUTS,
        }
    ),
    baseline=mutated(BASELINE),
)
@example(  # a mapping key that is not text: Ansible's validator raised TypeError
    pins=PINS,
    interfaces=INTERFACES,
    options={},
    window={},
    baseline={**BASELINE, "baseline_sudoers": [{0: None}]},
)
@example(
    pins=PINS,
    interfaces=INTERFACES,
    options={},
    window={"milepost_window_group": "a\nb", "milepost_window": {**WINDOW, "x\ny": 1}},
    baseline={**BASELINE, "baseline_packages_approved": [{"\x1e": {0: None}}]},
)
@example(  # Ansible's message names unknown keys as they are: a CR split the line
    pins=PINS,
    interfaces=INTERFACES,
    options={},
    window={},
    baseline={**BASELINE, "baseline_sudoers": [{"name": "ops", "\r": 1}]},
)
def test_inventory_checks(
    pins: Any, interfaces: Any, options: Any, window: Any, baseline: Any
) -> None:
    """The checks milepost maintain makes of inventory values, each problem one line."""
    from milepost.inventory import baseline_checks
    from milepost.inventory import checks as ic

    problems_one_line("app_update_versions", list(ic._package_problems(pins)))
    problems_one_line("milepost_interfaces", list(ic._interface_problems(interfaces)))
    if isinstance(options, dict):
        problems_one_line("os_patch options", list(ic._option_problems(options)))
    if isinstance(window, dict):
        # group_names is Ansible's own (a list of group names): only the rest is data.
        variables = {**window, "group_names": ["payment_gateway"]}
        problems_one_line("windows", list(ic._window_problems(variables)))
    if isinstance(baseline, dict):
        values = {str(k): v for k, v in baseline.items() if str(k).startswith("baseline_")}
        problems_one_line("baseline", list(baseline_checks._baseline_problems(values)))
    tally(TALLY)


@fuzz(150, 3000)
@given(interfaces=mutated(INTERFACES))
def test_interface_check_module_input(interfaces: Any) -> None:
    """plugins/modules/milepost_interface_check.py's validation: a list or one line."""
    module = load_module("milepost_interface_check")
    try:
        checked = module.validate_interfaces(interfaces)
    except module.InterfaceInputError as refused:
        assert_one_line(str(refused), "interfaces")
    else:
        assert isinstance(checked, list)
    tally(TALLY)


# ---------------------------------------------------------------- data: advisory files


@pytest.fixture(scope="module")
def ledger(sandbox: Sandbox) -> Iterator[Any]:
    from milepost.ledger import Ledger

    opened = Ledger.open(sandbox.ledger_url)
    yield opened
    opened.close()


VENDOR_ADVISORY = {
    "id": "RUC-2026-001",
    "severity": "high",
    "published": "2026-01-05",
    "title": "Payment gateway accepts a replayed token",
    "packages": {"ruc-payment-gateway": "2.4.0"},
    "kev": False,
}
KEV_ENTRY = {
    "cveID": "CVE-2023-22809",
    "vendorProject": "Sudo",
    "product": "Sudo",
    "vulnerabilityName": "Sudo Heap-Based Buffer Overflow",
    "dateAdded": "2023-01-09",
    "shortDescription": "sudoedit mishandles extra arguments",
    "requiredAction": "Apply updates per vendor instructions.",
    "dueDate": "2023-01-30",
    "knownRansomwareCampaignUse": "Unknown",
    "notes": "",
}
KEV_CATALOG = {
    "title": "CISA Catalog of Known Exploited Vulnerabilities",
    "catalogVersion": "2025.01.01",
    "dateReleased": "2025-01-01T00:00:00.000Z",
    "count": 1,
    "vulnerabilities": [KEV_ENTRY],
}
#: Vendor advisory YAML with a hostile scalar written raw (unquoted) in one place.
YAML_TEMPLATES = (
    "- id: {x}\n  severity: high\n  packages: {{ruc-payment-gateway: '2.4.0'}}\n",
    "- id: RUC-2026-002\n  severity: {x}\n  packages: {{ruc-payment-gateway: '2.4.0'}}\n",
    "- id: RUC-2026-003\n  severity: high\n  published: {x}\n  packages: {{ruc-a: '1'}}\n",
    "- id: RUC-2026-004\n  severity: high\n  packages: {{{x}: '2.4.0'}}\n",
    "- id: RUC-2026-005\n  severity: high\n  packages: {{ruc-a: {x}}}\n",
    "advisories:\n  - id: RUC-2026-006\n    severity: low\n    title: {x}\n"
    "    packages: {{ruc-a: '1'}}\n",
    "- id: RUC-2026-007\n  severity: high\n  kev: true\n  due_date: {x}\n"
    "  packages: {{ruc-a: '1'}}\n",
    "{x}",
)
KEV_TEMPLATES = (
    '{{"catalogVersion": "1", "vulnerabilities": [{x}]}}',
    '{{"catalogVersion": {x}, "vulnerabilities": []}}',
    '{{"catalogVersion": "1", "vulnerabilities": [{{"cveID": {x}}}]}}',
    "{x}",
)


@fuzz(150, 3000)
@given(
    kind=st.sampled_from(["dump", "raw", "csv", "bytes"]),
    entries=st.lists(mutated(VENDOR_ADVISORY), min_size=1, max_size=3),
    template=st.sampled_from(YAML_TEMPLATES),
    raw=HOSTILE_TEXT,
    cells=st.lists(st.lists(HOSTILE_TEXT, min_size=6, max_size=7), min_size=1, max_size=3),
    blob=st.binary(max_size=200),
)
@example(
    kind="raw",
    entries=[VENDOR_ADVISORY],
    template=YAML_TEMPLATES[2],
    raw="2026-13-45",
    cells=[],
    blob=b"",
)
@example(
    kind="raw",
    entries=[VENDOR_ADVISORY],
    template=YAML_TEMPLATES[4],
    raw="9" * 5000,
    cells=[],
    blob=b"",
)
@example(
    kind="raw",
    entries=[VENDOR_ADVISORY],
    template=YAML_TEMPLATES[6],
    raw="2026-02-30",
    cells=[],
    blob=b"",
)
@example(
    kind="raw",
    entries=[VENDOR_ADVISORY],
    template="{x}",
    raw=hostile.alias_bomb(),
    cells=[],
    blob=b"",
)
def test_vendor_advisory_files(
    sandbox: Sandbox,
    ledger: Any,
    kind: str,
    entries: list[Any],
    template: str,
    raw: str,
    cells: list[list[str]],
    blob: bytes,
) -> None:
    """milepost advisory import of a vendor's YAML or CSV file: imported, or refused in
    one line naming the file and the entry."""
    from milepost.patching.advisory_import import CSV_COLUMNS, import_vendor

    path = sandbox.root / ("advisories.csv" if kind == "csv" else "advisories.yml")
    if kind == "dump":
        path.write_text(yaml.safe_dump(entries, allow_unicode=True), errors="surrogatepass")
    elif kind == "raw":
        path.write_text(template.format(x=raw), errors="surrogatepass")
    elif kind == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(cells)
        path.write_text(buffer.getvalue(), errors="surrogatepass")
    else:
        path.write_bytes(blob)
    judged(f"vendor advisory file ({kind})", import_vendor, ledger, path)
    sandbox.assert_no_injection("milepost advisory import")
    tally(TALLY)


@fuzz(150, 3000)
@given(
    catalog=mutated(KEV_CATALOG),
    entry=mutated(KEV_ENTRY),
    template=st.sampled_from(KEV_TEMPLATES),
    raw=HOSTILE_TEXT,
    raw_kind=st.booleans(),
)
@example(
    catalog=KEV_CATALOG, entry=KEV_ENTRY, template=KEV_TEMPLATES[1], raw="1" * 5000, raw_kind=True
)
@example(catalog=KEV_CATALOG, entry=KEV_ENTRY, template="{x}", raw="[" * 100_000, raw_kind=True)
def test_kev_catalog(
    sandbox: Sandbox, ledger: Any, catalog: Any, entry: Any, template: str, raw: str, raw_kind: bool
) -> None:
    """milepost advisory import of CISA's KEV catalog (JSON)."""
    from milepost.patching.advisory_import import import_kev
    from milepost.patching.policy import parse_kev_products

    path = sandbox.root / "kev.json"
    if raw_kind:
        path.write_text(template.format(x=raw), errors="surrogatepass")
    else:
        if isinstance(catalog, dict) and isinstance(catalog.get("vulnerabilities"), list):
            catalog["vulnerabilities"].append(entry)
        path.write_text(json.dumps(catalog, default=str), errors="surrogatepass")
    products = parse_kev_products(KEV_PRODUCTS)
    judged("KEV catalog", import_kev, ledger, path, products)
    sandbox.assert_no_injection("milepost advisory import (KEV)")
    tally(TALLY)


def test_advisories_added_by_hand_take_the_corpus(sandbox: Sandbox, ledger: Any, rng: Any) -> None:
    from milepost.patching.advisories import add_advisory

    values = hostile.everything(sandbox.canary)
    fields = ("advisory_id", "package", "fixed", "severity", "published", "due_date", "title")
    tried = 0
    for value in rng.sample(values, trials(20, len(values))):
        for field in fields:
            given_fields: dict[str, Any] = {
                "advisory_id": "RUC-2026-100",
                "packages": {"ruc-account-api": "1.0"},
                "severity": "low",
                "kev": True,
                "published": None,
                "due_date": None,
                "title": None,
            }
            if field == "package":
                given_fields["packages"] = {value: "1.0"}
            elif field == "fixed":
                given_fields["packages"] = {"ruc-account-api": value}
            else:
                given_fields[field] = value
            judged(f"advisory {field}", add_advisory, ledger, **given_fields)
            tried += 1
    sandbox.assert_no_injection("milepost advisory add")
    tally(TALLY, tried)


# ---------------------------------------------------------------- injection: modules


def load_module(name: str) -> Any:
    """plugins/modules/<name>.py as a module (as tests/unit/conftest.py loads them, with
    the project's module_utils under ansible.module_utils)."""
    import importlib.util

    import ansible.module_utils

    utils = str(ROOT / "plugins" / "module_utils")
    if utils not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(utils)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / "modules" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def ansible_module() -> Iterator[Any]:
    """A real AnsibleModule (no options), for its run_command."""
    from ansible.module_utils.basic import AnsibleModule
    from ansible.module_utils.testing import patch_module_args

    with patch_module_args({}):
        yield AnsibleModule(argument_spec={})


#: A program that writes its arguments as JSON: what a command really receives.
ECHO = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]


def run_for_real(sandbox: Sandbox, argv: list[str]) -> None:
    """Run ``argv`` the way the modules do (AnsibleModule.run_command with a list), with
    its program replaced by ECHO: every argument arrives as one argument, unchanged, and
    nothing a shell would do happens (the canary stays absent)."""
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), argv
    with ansible_module() as module:
        rc, out, err = module.run_command(ECHO + argv[1:], expand_user_and_vars=False)
    assert rc == 0, err
    assert json.loads(out) == argv[1:]
    sandbox.assert_no_injection(f"{argv[0]} {shortened(argv[1:])}")


NAME_RE = debian.PACKAGE_NAME
VERSION_RE = debian.DEBIAN_VERSION


def test_apt_pin_builds_safe_commands(sandbox: Sandbox, rng: Any) -> None:
    """milepost_apt_pin: hostile names and versions are refused (each problem one line);
    what passes becomes one NAME=VERSION argument after "--" of an argv list."""
    mod = load_module("milepost_apt_pin")
    names = hostile.packages(sandbox.canary)
    versions = hostile.versions(sandbox.canary)
    pairs = [(n, v) for n in names for v in rng.sample(versions, trials(3, 12))]
    accepted = 0
    for name, version in pairs:
        valid, problems = mod.validate_request({name: version})
        problems_one_line("apt pin", problems)
        if not valid:
            continue
        accepted += 1
        assert NAME_RE.fullmatch(name) and VERSION_RE.fullmatch(version), (name, version)
        argv = mod.build_command(valid, sorted(valid), False, 60)
        assert argv[0] == "apt-get" and argv[-2:] == ["--", f"{name}={version}"], argv
        run_for_real(sandbox, argv)
    assert accepted, "no valid pair at all: the corpus lost its near misses"
    tally(TALLY, len(pairs))


def test_os_patch_commands_are_argv_lists(sandbox: Sandbox, rng: Any) -> None:
    """milepost_os_patch: package names and versions the package manager reports (a
    hostile repository) go after "--" as single arguments; exclude patterns stay single
    --exclude= arguments."""
    mod = load_module("milepost_os_patch")
    # A NUL cannot be in a process argument at all (the package manager could not report
    # one either): those values are left out.
    packages = [v for v in hostile.packages(sandbox.canary) if hostile.argv_safe(v)]
    names = rng.sample(packages, trials(25, len(packages)))
    versions = [v for v in hostile.versions(sandbox.canary) if hostile.argv_safe(v)]
    for name in names:
        version = rng.choice(versions)
        plan = [{"package": name, "from_version": "1", "to_version": version, "arch": "amd64"}]
        apt = mod.apt_command(plan, 60)
        assert apt[apt.index("--") + 1 :] == [f"{name}={version}"]
        dnf = mod.dnf_upgrade_command(plan, "security")
        assert dnf[dnf.index("--") + 1 :] == [f"{name}-{version}.amd64"]
        listing = mod.dnf_list_command("security", [name])
        assert listing[-1] == f"--exclude={name}"
        for argv in (apt, dnf, listing):
            run_for_real(sandbox, argv)
    tally(TALLY, len(names))


def test_unapproved_packages_never_hands_a_hostile_name_to_apt(
    sandbox: Sandbox, rng: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """milepost_unapproved_packages against a host whose dpkg status lists hostile package
    names and architectures: apt-get is only ever given valid Debian names; the rest is
    refused (the module fails, one message) or never reaches a command."""
    from ansible.module_utils.basic import AnsibleModule
    from ansible.module_utils.testing import patch_module_args

    mod = load_module("milepost_unapproved_packages")
    calls: list[tuple[Any, dict[str, Any]]] = []
    to_apt: list[list[str]] = []
    packages = hostile.packages(sandbox.canary)
    names = rng.sample(packages, trials(30, len(packages)))
    for name in names:
        arch = rng.choice(["amd64", "all", "-oAPT::x=1", f"amd64 $(touch {sandbox.canary})"])
        status = (
            "ii \tbase-files\t12.4\trequired\tyes\t\t\t\t\tamd64\n"
            f"ii \t{name}\t1.0\toptional\tno\t\t\t\t\t{arch}\n"
        )

        def run_command(
            self: Any, argv: Any, *args: Any, _status: str = status, **kwargs: Any
        ) -> Any:
            calls.append((argv, kwargs))
            if argv[0] == "dpkg-query":
                return 0, _status, ""
            return 0, "", ""

        monkeypatch.setattr(AnsibleModule, "run_command", run_command)
        monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, n, *a, **k: f"/usr/bin/{n}")
        calls.clear()
        with patch_module_args({"approved": ["base-*"]}), pytest.raises(SystemExit):
            mod.main()
        result = json.loads(capsys.readouterr().out)
        if result.get("failed"):
            assert_one_line(result["msg"], f"unapproved packages {shortened(name)}")
        for argv, kwargs in calls:
            assert isinstance(argv, list) and not kwargs.get("use_unsafe_shell"), argv
            if argv[0] == "apt-get":
                for arg in argv[10:]:
                    package, _, qualifier = arg.partition(":")
                    assert NAME_RE.fullmatch(package), argv
                    assert not qualifier or re.fullmatch(r"[a-z0-9][a-z0-9-]*", qualifier), argv
                to_apt.append(argv)
    monkeypatch.undo()  # the real run_command again
    for argv in to_apt:
        run_for_real(sandbox, argv)
    tally(TALLY, len(names))


def test_unapproved_package_names_with_a_final_newline_are_refused() -> None:
    """re.match with "$" lets "name\\n" through: the module now uses fullmatch."""
    mod = load_module("milepost_unapproved_packages")
    packages = {"telnet\n": {"archs": ["amd64\n"]}}
    with pytest.raises(ValueError, match="not a valid Debian package name"):
        mod.package_arguments(packages, ["telnet\n"])
    with pytest.raises(ValueError, match="architecture"):
        mod.package_arguments({"telnet": {"archs": ["amd64\n"]}}, ["telnet"])
    tally(TALLY, 2)


@fuzz(150, 3000)
@given(patterns=st.lists(HOSTILE_TEXT, max_size=4), left=HOSTILE_TEXT, right=HOSTILE_TEXT)
@example(patterns=["*"], left="\u00b2:1.0", right="1.0")  # int("²") of an epoch
@example(patterns=["*"], left="9" * 5000 + ":1", right="1.0")
def test_package_versions_compare_and_match(patterns: list[str], left: str, right: str) -> None:
    """milepost_package_versions' pure logic on hostile patterns and versions."""
    mod = load_module("milepost_package_versions")
    result = mod.dpkg_version_compare(left, right)
    assert isinstance(result, int)
    records = {
        "ruc-account-api": {"installed": left, "candidate": right, "versions": [left, right]},
        left: {"installed": None, "candidate": right, "versions": [right]},
    }
    packages, unmatched = mod.build_report(patterns, records, mod.dpkg_version_compare)
    assert set(packages) <= set(records) and set(unmatched) <= set(patterns)
    tally(TALLY)


def test_host_lock_files_keep_one_line(sandbox: Sandbox, rng: Any) -> None:
    """milepost_host_lock writes a JSON lock from a run id and a controller name: whatever
    they hold, the file is one JSON line that reads back the same."""
    mod = load_module("milepost_host_lock")
    values = hostile.everything(sandbox.canary)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tried = 0
    for value in rng.sample(values, trials(40, len(values))):
        path = sandbox.root / "locks" / "maintenance.lock"
        if path.exists():
            path.unlink()
        try:
            result = mod.acquire(str(path), value, value, 42, now, 240, [value], False)
        except UnicodeEncodeError:
            # A lone surrogate cannot be written as UTF-8: the module fails before a file
            # exists (AnsibleModule hands it no such text; JSON escapes it anyway).
            assert not path.exists()
            continue
        # The lock file was removed first: nothing held it, so this run acquired it.
        assert result["action"] == "acquired" and result["changed"] is True, result
        text = path.read_text()
        assert text.count("\n") == 1 and text.endswith("\n"), shortened(text)
        assert json.loads(text)["run_id"] == value
        tried += 1
    with pytest.raises(OverflowError):  # why main() bounds ttl_minutes
        mod.new_lock("r", "c", 1, now, 10**12)
    assert mod.MAX_TTL_MINUTES < 10**8
    mod.new_lock("r", "c", 1, now, mod.MAX_TTL_MINUTES)
    sandbox.assert_no_injection("milepost_host_lock")
    tally(TALLY, tried)


def test_lab_inventory_writer_refuses_paths_ansible_would_run(sandbox: Sandbox) -> None:
    """milepost/lab/inventory.py writes the lab's paths into inventory text that Ansible
    templates and splits (ssh args): a hostile state directory is refused; a plain one
    round-trips exactly."""
    from milepost.lab import inventory, topology

    hosts = topology.plan(2)
    tried = 0
    for value in hostile.everything(sandbox.canary):
        state = Path("/srv/milepost state") / value.replace("\0", "")
        paths = {
            "key_file": state / "key",
            "known_hosts": state / "known_hosts",
            "control_dir": state / "cp",
            "repo_key": state / "repo.asc",
        }
        tried += 1
        text = judged(
            "lab inventory", inventory.render, hosts, repo_url="http://127.0.0.1:8780/", **paths
        )
        if text is None:
            continue
        data = yaml.safe_load(text)["all"]["vars"]
        assert data["ansible_ssh_private_key_file"] == str(paths["key_file"])
        args = shlex.split(data["ansible_ssh_common_args"])
        assert args == [
            "-o",
            f"UserKnownHostsFile={paths['known_hosts']}",
            "-o",
            "StrictHostKeyChecking=yes",
        ], args
        assert data["ruc_apt_source_signing_key"] == (
            "{{ lookup('ansible.builtin.file', '" + str(paths["repo_key"]) + "') }}"
        )
        for text_value in (str(p) for p in paths.values()):
            assert not set(text_value) & inventory.UNSAFE_IN_PATH
    tally(TALLY, tried)


SHELL_CALLS = re.compile(
    r"shell\s*=\s*True|use_unsafe_shell\s*=\s*True|os\.system\(|os\.popen\(|getoutput\(|"
    r"getstatusoutput\(|subprocess\.call\(\s*['\"]"
)


def test_no_code_runs_a_shell() -> None:
    """Every command milepost and its plugins run is an argv list: no shell=True, no
    os.system, no use_unsafe_shell anywhere."""
    sources = [*ROOT.joinpath("milepost").rglob("*.py"), *ROOT.joinpath("plugins").rglob("*.py")]
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SHELL_CALLS.search(line) and not line.lstrip().startswith("#")
    ]
    assert not offenders, offenders
    # AnsibleModule.run_command expands ~ and $NAME in a list's arguments unless told not
    # to: a package name "$HOME" would reach apt-get as /root.
    import ast

    expanding = []
    for path in ROOT.joinpath("plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "run_command"
                and not any(
                    k.arg == "expand_user_and_vars"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is False
                    for k in node.keywords
                )
            ):
                expanding.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not expanding, f"run_command without expand_user_and_vars=False: {expanding}"
    tally(TALLY, len(sources))


def test_free_text_never_reaches_a_playbook_as_a_template(sandbox: Sandbox) -> None:
    """Ansible templates extra vars: a --reason holding {{ ... }} would run on the
    controller, so the reasons that become extra vars refuse template syntax."""
    payload = sandbox.arm(f"{{{{ lookup('pipe', 'touch {hostile.CANARY}') }}}}")
    for argv in (
        ["maintain", "-i", str(EXAMPLE), "--check", "--override-window", "--reason", payload],
        ["emergency-patch", "--advisory", "CVE-2025-12345", "--reason", payload, "--dry-run"],
        ["maintain", "-i", str(EXAMPLE), "--override-window", "--reason", "{% if 1 %}x{% endif %}"],
    ):
        outcome = invoke(sandbox, argv)
        assert outcome.code == 2 and "template syntax" in outcome.err, outcome.err
    tally(TALLY, 3)


# ---------------------------------------------------------------- malformed inventories


MALFORMED = {
    "yaml-syntax": "all:\n  hosts: [unclosed\n  children: : :\n",
    "bad-indent": "all:\n  children:\n    ruc:\n   hosts:\n\t  pay-01:\n",
    "list-at-top": "- all\n- hosts: [pay-01]\n  : x\n",
    "binary": "\x00\x01\x02 all: \xff\xfe {{{\n[[[\n",
    "unclosed-quote": "all:\n  vars: {a: 'unclosed}\n",
    "bad-ini": "[ruc:children\nall: :\n",
}

PLAYBOOK = """\
- name: Every inventory host
  hosts: all
  gather_facts: false
  tasks:
    - name: PATCH | Touch the marker of a host
      ansible.builtin.file:
        path: "{marker}-all-{{{{ inventory_hostname }}}}"
        state: touch
      delegate_to: localhost
- name: The controller
  hosts: localhost
  gather_facts: false
  tasks:
    - name: PATCH | Touch the marker of the controller
      ansible.builtin.file:
        path: "{marker}-localhost"
        state: touch
"""


def _ansible_env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "MILEPOST_ROOT": str(ROOT),
        "MILEPOST_STATE_DIR": str(tmp / "state"),
        "MILEPOST_LEDGER_URL": f"sqlite:///{tmp / 'ledger.sqlite'}",
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }


def _playbook(tmp: Path, source: Path, env: dict[str, str]) -> tuple[int, str, list[Path]]:
    marker = tmp / "ran"
    book = tmp / "playbook.yml"
    book.write_text(PLAYBOOK.format(marker=marker))
    proc = subprocess.run(  # noqa: S603
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(source), str(book)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        check=False,
        timeout=600,
    )
    ran = sorted(tmp.glob("ran-*"))
    for path in ran:
        path.unlink()
    return proc.returncode, proc.stdout + proc.stderr, ran


def test_ansible_cfg_fails_unparsed_inventories() -> None:
    proc = subprocess.run(  # noqa: S603
        [str(Path(sys.executable).parent / "ansible-config"), "dump", "--only-changed"],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        check=True,
    )
    assert re.search(r"INVENTORY_UNPARSED_IS_FAILED\(.*ansible\.cfg\) = True", proc.stdout)


def test_a_malformed_inventory_runs_nothing_on_localhost(tmp_path: Path) -> None:
    """ansible-playbook with each malformed inventory (a file, and a directory holding
    it), a missing one, and an unreadable one: nonzero, and no task ran anywhere: not on
    the implicit localhost either."""
    env = _ansible_env(tmp_path)
    sources: list[Path] = []
    for name, text in MALFORMED.items():
        source = tmp_path / f"{name}.yml"
        source.write_bytes(text.encode("utf-8", "surrogateescape"))
        sources.append(source)
    directory = tmp_path / "inventory-dir"
    (directory / "group_vars" / "all").mkdir(parents=True)
    (directory / "hosts.yml").write_text(MALFORMED["yaml-syntax"])
    (directory / "group_vars" / "all" / "vars.yml").write_text("milepost_phase: normal\n")
    sources += [directory, tmp_path / "missing.yml"]
    for source in sources:
        rc, output, ran = _playbook(tmp_path, source, env)
        assert rc != 0 and not ran, f"{source.name}: exit {rc}, ran {ran}\n{output[-1500:]}"
        assert "No inventory was parsed" in output, output[-1500:]
    tally(TALLY, len(sources))


def test_without_the_setting_ansible_falls_back_to_localhost(tmp_path: Path) -> None:
    """The control: Ansible's default only warns and runs the localhost play, so the test
    above would see it."""
    env = {**_ansible_env(tmp_path), "ANSIBLE_INVENTORY_UNPARSED_FAILED": "False"}
    source = tmp_path / "broken.yml"
    source.write_text(MALFORMED["yaml-syntax"])
    rc, output, ran = _playbook(tmp_path, source, env)
    assert rc == 0 and [p.name for p in ran] == ["ran-localhost"], output[-1500:]


@pytest.mark.lab  # inventory/lab/hosts.yml is there once the lab is up
def test_the_real_inventories_still_parse(tmp_path: Path) -> None:
    """unparsed_is_failed (not any_unparsed_is_failed) keeps directory inventories with
    other files working: inventory/lab/ holds templates/."""
    env = _ansible_env(tmp_path)
    for source in (EXAMPLE, ROOT / "inventory" / "lab", ROOT / "inventory" / "lab" / "hosts.yml"):
        if not source.exists():
            continue
        proc = subprocess.run(  # noqa: S603
            [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(source), "--graph"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=600,
        )
        assert proc.returncode == 0 and "@ruc:" in proc.stdout, proc.stderr[-1500:]


def _milepost(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [str(MILEPOST), *args],
        capture_output=True,
        text=True,
        env=_ansible_env(tmp),
        cwd=tmp,
        check=False,
        timeout=600,
    )


def _refused_in_one_line(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-1500:])
    assert len(lines) == 1 and lines[0].startswith("milepost: error: "), proc.stderr[-1500:]
    assert "Traceback" not in proc.stdout + proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_milepost_maintain_refuses_a_malformed_or_missing_inventory(tmp_path: Path) -> None:
    """The runner checks the inventory first: exit 2, one line, no run in the ledger."""
    from milepost.ledger import Ledger

    cases: list[tuple[Path, str]] = []
    for name in ("yaml-syntax", "binary", "bad-ini"):
        source = tmp_path / f"{name}.yml"
        source.write_bytes(MALFORMED[name].encode("utf-8", "surrogateescape"))
        cases.append((source, "could not be parsed"))
    fifo = tmp_path / "inventory.fifo"
    os.mkfifo(fifo)
    bomb = tmp_path / "bomb.yml"
    bomb.write_text("all:\n  vars:\n" + hostile.alias_bomb(indent=4))
    cases += [
        (tmp_path / "missing.yml", "does not exist"),
        (Path("/dev/zero"), "not a regular file"),
        (fifo, "not a regular file"),
        (tmp_path / ("n" * 300), "File name too long"),
        (bomb, "alias"),
    ]
    for source, words in cases:
        proc = _milepost(tmp_path, "maintain", "-i", str(source), "--check")
        _refused_in_one_line(proc, words)
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    try:
        assert ledger.runs(limit=10) == []
    finally:
        ledger.close()
    tally(TALLY, len(cases))


def test_timedelta_overflow_is_refused_everywhere_a_duration_is_read(sandbox: Sandbox) -> None:
    """Durations and dates of the drift and change commands (milepost/cli/drift.py)."""
    for argv in (
        ["drift", "report", "--since", "99999999999d"],
        ["drift", "report", "--since", "0001-01-01T00:00:00+14:00"],
        [
            "change",
            "open",
            "--hosts",
            "pay-east-01.ruc.example.gov",
            "--resources",
            "*",
            "--reason",
            "r",
            "--until",
            "99999999999999999999d",
            "-i",
            str(EXAMPLE),
        ],
        [
            "change",
            "open",
            "--hosts",
            "pay-east-01.ruc.example.gov",
            "--resources",
            "*",
            "--reason",
            "r",
            "--until",
            "9999-12-31",
            "-i",
            str(EXAMPLE),
        ],
    ):
        invoke(sandbox, argv)
    tally(TALLY, 4)


def test_undecodable_arguments_are_refused_before_any_command(sandbox: Sandbox) -> None:
    """Bytes that are not UTF-8 reach Python as lone surrogates, which SQLite, files and
    messages cannot take: milepost.cli.main.main refuses them for every command (ledger too)."""
    for argv in (
        ["ledger", "show", "\udc80"],
        ["note", "show", "a\udcff"],
        ["exposure", "--host", "\udc80"],
    ):
        outcome = invoke(sandbox, argv)
        assert outcome.code == 2 and "not UTF-8" in outcome.err
    tally(TALLY, 3)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["ledger", "runs", "--since", "99999999999d"], id="runs-since-overflow"),
        pytest.param(["ledger", "verify", "--archive", "a\nb"], id="verify-archive-newline"),
        pytest.param(["ledger", "verify", "--checkpoint", "a\nb"], id="verify-checkpoint-newline"),
        pytest.param(
            ["ledger", "archive", "--before", "2000-01-01", "--out", f"{OUT}/{'n' * 300}"],
            id="archive-out-too-long",
        ),
        pytest.param(
            ["ledger", "archive", "--before", "99999999999d", "--out", f"{OUT}/a"],
            id="archive-before-overflow",
        ),
        pytest.param(
            ["ledger", "archive", "--before", "0001-01-01T00:00:00+14:00", "--out", f"{OUT}/b"],
            id="archive-before-year-0",
        ),
    ],
)
def test_ledger_commands_refuse_what_once_failed(sandbox: Sandbox, argv: list[str]) -> None:
    """Ledger command lines that once raised a traceback (an age or time outside years 1 to
    9999, an over-long name) or split the error over lines (a newline in a path): exit 2,
    one line."""
    outcome = invoke(sandbox, argv)
    assert outcome.code == 2 and outcome.err.startswith("milepost: error:"), outcome
    tally(TALLY, 1)
