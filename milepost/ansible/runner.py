"""The one way Milepost runs a playbook: ansible-runner's Python API, on the checkout's
ansible.cfg, with the maintenance_ledger callback recording the run.

- A fresh private data dir (mode 0700) for every run, removed afterwards. Env files are
  suppressed (extra vars go on the command line, never into ``env/extravars``); runner's
  ``command`` artifact, which would hold the command line and the whole environment, is
  deleted the moment the playbook has been started; job events are not kept on disk, nor
  is the playbook's output (runner's ``stdout``/``stderr`` artifacts): at -vvv Ansible
  prints a no_log task's environment, at -vvvv every extra var, and a careless task's
  secrets at any verbosity. The output still streams to the terminal unless ``quiet``.
- ansible-runner puts its own directory in ANSIBLE_CALLBACK_PLUGINS (for its event
  stream), which hides the ``callback_plugins`` of ansible.cfg; the checkout's
  plugins/callback is put first again so the ledger still records the run.
- ansible-runner turns host key checking off unless told otherwise; Milepost never does.
- MILEPOST_* variables pass through; each run gets its own MILEPOST_RUN_ID (the ledger's
  id of the run, also used by the per-host lock), returned to the caller.
- Ctrl-C and SIGTERM are passed on to ansible-playbook, whose callback closes the run as
  aborted (ansible-runner's own handling would SIGKILL it, leaving the run open until the
  next ledger command). A third signal, or a playbook still running GRACE_SECONDS after
  the first, is killed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import ansible_runner.interface

from milepost.errors import MilepostError, Stopped, UserError
from milepost.inventory.checks import CheckedInventory, check_inventory
from milepost.inventory.phase import PHASES
from milepost.inventory.reading import default_inventory, inventory_phase
from milepost.ledger import Ledger, LedgerUnavailable
from milepost.ledger.runs import new_run_id
from milepost.paths import project_root

__all__ = ["RunResult", "playbook_env", "run_playbook", "signals_held"]

#: Seconds a playbook gets to close its run after the first Ctrl-C/SIGTERM before it is killed.
GRACE_SECONDS = 60.0
#: Signals passed on to the playbook.
FORWARDED = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class RunResult:
    """How a playbook run ended."""

    #: ansible-runner's status: successful, failed, canceled or timeout.
    status: str
    #: ansible-playbook's exit code (254 when the run was killed).
    rc: int
    #: The ledger's id of the run (MILEPOST_RUN_ID).
    run_id: str
    #: The signal passed on to the playbook (Ctrl-C, SIGTERM), if any.
    interrupted_by: int | None = None
    #: False when the run was interrupted before the ledger recorded its start.
    started: bool = True
    #: The inventory's milepost_phase (normal or hypercare), when it was read.
    phase: str = "normal"

    @property
    def succeeded(self) -> bool:
        return self.status == "successful" and self.rc == 0 and self.interrupted_by is None


def playbook_env(root: Path, run_id: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables Milepost sets for a playbook run (on top of base)."""
    base = os.environ if base is None else base
    env = {key: value for key, value in base.items() if key.startswith("MILEPOST_")}
    own_callbacks = str(root / "plugins" / "callback")
    inherited = [p for p in base.get("ANSIBLE_CALLBACK_PLUGINS", "").split(":") if p]
    env.update(
        {
            "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
            # ansible-runner appends its own directory to this value.
            "ANSIBLE_CALLBACK_PLUGINS": ":".join(dict.fromkeys([own_callbacks, *inherited])),
            # ansible-runner sets it to False when it is not set: never.
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "MILEPOST_ROOT": str(root),
            "MILEPOST_RUN_ID": run_id,
        }
    )
    # ansible-playbook from the Python that runs Milepost (its virtualenv), not another one.
    tools = str(Path(sys.executable).parent)
    path = [p for p in base.get("PATH", os.defpath).split(":") if p]
    env["PATH"] = ":".join(dict.fromkeys([tools, *path]))
    if not sys.stdout.isatty() and "ANSIBLE_FORCE_COLOR" not in base:
        # The playbook runs on a pseudo-terminal: no colour codes in piped output.
        env["ANSIBLE_NOCOLOR"] = "1"
    return env


class _Interrupts:
    """Passes Ctrl-C/SIGTERM on to ansible-playbook instead of letting runner SIGKILL it."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.signum: int | None = None
        self._count = 0
        self._first_at = 0.0
        self._kill = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may handle signals; runner's default applies
        for signum in FORWARDED:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def on_event(self, event: Mapping[str, Any]) -> bool:
        """runner's event handler: learn the playbook's pid; keep no event on disk."""
        pid = event.get("pid")
        if self.pid is None and isinstance(pid, int) and _is_our_child(pid):
            self.pid = pid
            if self.signum is not None:
                self._forward(self.signum)
        return False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = self.signum or signum
        self._count += 1
        if self._count == 1:
            self._first_at = time.monotonic()
        if self._count >= 3:
            self._kill = True
        elif self.pid is not None:
            self._forward(signum)
        elif self._count >= 2:
            self._kill = True  # the playbook has not started: nothing to close

    def _forward(self, signum: int) -> None:
        assert self.pid is not None
        try:
            # As a terminal's Ctrl-C: the playbook's whole process group (its own session,
            # on runner's pseudo-terminal), so no worker or module is left running.
            group = os.getpgid(self.pid)
            if group != os.getpgrp():
                os.killpg(group, signum)
            else:
                os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def cancel(self) -> bool:
        """runner's cancel callback: True makes runner SIGKILL the playbook."""
        if self._kill:
            return True
        return self._count > 0 and time.monotonic() - self._first_at > GRACE_SECONDS


@contextlib.contextmanager
def signals_held() -> Iterator[_Interrupts]:
    """Ctrl-C and SIGTERM are caught from here on instead of ending the process, for a
    caller that records something before its playbook starts (the emergency patch, between
    taking the fleet lock and the playbook). Pass the object to run_playbook: it does not
    start the playbook when a signal came first, and passes later ones on to it."""
    interrupts = _Interrupts()
    interrupts.install()
    try:
        yield interrupts
    finally:
        interrupts.restore()


def _is_our_child(pid: int) -> bool:
    """ansible-playbook is started by runner in this process (on a pseudo-terminal)."""
    if pid <= 1 or pid == os.getpid():
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return not Path("/proc/self").exists()  # no /proc: trust runner's event
    fields = stat.rsplit(")", 1)[-1].split()
    return len(fields) > 1 and fields[1] == str(os.getpid())


def _forget_command(artifact_dir: Path) -> None:
    """runner writes the command line and the whole environment to artifacts/<id>/command
    before it starts the playbook, and never reads it back: delete it."""
    command = artifact_dir / "command"
    try:
        command.unlink()
    except FileNotFoundError:
        pass


def _discard(private_dir: Path) -> None:
    shutil.rmtree(private_dir, ignore_errors=True)


def run_playbook(
    playbook: Path,
    *,
    inventory: Sequence[Path] = (),
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    extravars: Mapping[str, Any] | None = None,
    quiet: bool = False,
    env: Mapping[str, str] | None = None,
    root: Path | None = None,
    run_id: str | None = None,
    interrupts: _Interrupts | None = None,
) -> RunResult:
    """Run playbook with ansible-playbook through ansible-runner and return how it ended.

    inventory: sources (-i); none means the inventory ansible.cfg names. env: variables
    for this run on top of the process environment (MILEPOST_LEDGER_URL, ...). quiet: do
    not stream the playbook's output to the terminal. run_id: the ledger's id for the run
    (default: a new one), for a caller that records something about the run first.
    interrupts: from signals_held(), when the caller caught signals before this run; if
    one came already, the playbook is not started (interrupted, started False).
    """
    root = (root or project_root()).resolve()
    base = {**os.environ, **(env or {})}
    run_id = run_id or new_run_id()
    envvars = {**(env or {}), **playbook_env(root, run_id, base)}
    cmdline = " ".join(flag for flag, wanted in (("--check", check), ("--diff", diff)) if wanted)
    own_interrupts = interrupts is None
    interrupts = interrupts or _Interrupts()
    if interrupts.signum is not None:
        return RunResult(
            status="canceled",
            rc=254,
            run_id=run_id,
            interrupted_by=interrupts.signum,
            started=False,
        )
    private_dir = Path(tempfile.mkdtemp(prefix="milepost-run-"))
    ident = run_id

    def on_status(data: Mapping[str, Any], runner_config: Any = None) -> None:
        if data.get("status") == "running":
            _forget_command(private_dir / "artifacts" / ident)

    if own_interrupts:
        interrupts.install()
    try:
        # ansible_runner.run() is init_runner() then run(); in between, the playbook's
        # output is kept off disk: runner's own suppress_output_file argument (and a
        # settings dict) is overwritten while it prepares the run unless env/settings is
        # a file, and no env file is written here.
        runner = ansible_runner.interface.init_runner(
            private_data_dir=str(private_dir),
            project_dir=str(root),
            playbook=str(playbook.resolve()),
            inventory=[str(Path(source).resolve()) for source in inventory] or None,
            limit=limit or None,
            cmdline=cmdline or None,
            extravars=dict(extravars) if extravars else None,
            envvars=envvars,
            ident=ident,
            suppress_env_files=True,
            fact_cache_type="memory",
            omit_event_data=True,
            quiet=quiet,
            event_handler=interrupts.on_event,
            status_handler=on_status,
            cancel_callback=interrupts.cancel,
        )
        runner.config.suppress_output_file = True
        runner.run()
        status = str(runner.status)
        rc = runner.rc if isinstance(runner.rc, int) else 254
    except Exception as exc:  # noqa: BLE001 - runner raises assorted errors; one line for the user
        raise MilepostError(f"could not run {playbook.name}: {exc}") from exc
    finally:
        if own_interrupts:
            interrupts.restore()
        _discard(private_dir)
    started = interrupts.signum is None or _start_recorded(run_id)
    return RunResult(
        status=status, rc=rc, run_id=run_id, interrupted_by=interrupts.signum, started=started
    )


def _start_recorded(run_id: str) -> bool:
    """Whether the ledger holds the run's start (True when the ledger cannot tell)."""
    try:
        with Ledger.open() as ledger:
            return ledger.run(run_id).get("start") is not None
    except UserError:  # nothing of the run is in the ledger
        return False
    except LedgerUnavailable:
        return True


class Interrupted(Stopped):
    """The run was stopped by a signal (and closed as aborted, or stopped before it began):
    exit 128 + the signal."""

    def __init__(self, result: RunResult) -> None:
        signum = int(result.interrupted_by or signal.SIGINT)
        name = signal.Signals(signum).name
        if result.started:
            message = f"interrupted by {name}: run {result.run_id} is closed as aborted"
        else:
            message = f"interrupted by {name} before run {result.run_id} began: no task ran"
        super().__init__(message)
        self.exit_code = 128 + signum


def run_checked(
    playbook_name: str,
    *,
    inventory: Path | None = None,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    extravars: Mapping[str, Any] | None = None,
    run_kind: str | None = None,
    before_run: Callable[[str, CheckedInventory], None] | None = None,
    quiet: bool = False,
) -> RunResult:
    """Check the inventory (UserError, one line, before any host is touched), then run
    playbooks/<playbook_name>. Raises Interrupted when a signal stopped the run; a failed
    run is returned (its status says so) for the caller to report. ``before_run`` is called
    with the run's id and the checked inventory once the checks passed, before the run
    starts (the upcoming-maintenance notice). ``quiet``: the playbook's output is not
    shown (a dry run whose result is read from the ledger).

    The run's phase (milepost.inventory.phase: hypercare when group all or a RUC host the
    run touches is in hypercare today, dates included) goes to the ledger callback
    (MILEPOST_PHASE); the playbooks decide per host with the same rule (the filters of
    plugins/filter/milepost_phase.py). ``-e milepost_phase=...`` sets it for every host of
    one run."""
    root = project_root()
    os.environ["ANSIBLE_CONFIG"] = str(root / "ansible.cfg")
    sources = [inventory] if inventory is not None else default_inventory()
    checked = check_inventory(
        sources, limit=limit, extra_vars=extravars, playbook_dir=root / "playbooks"
    )
    given = (extravars or {}).get("milepost_phase")
    phase = inventory_phase(checked.sources, hosts=checked.hosts) if given is None else str(given)
    if phase not in PHASES:
        raise UserError(f"-e milepost_phase must be one of {', '.join(PHASES)}, not {phase[:40]!r}")
    overlay = {"milepost_phase": phase} if given is not None else {}
    env = {"MILEPOST_PHASE": phase, **({"MILEPOST_RUN_KIND": run_kind} if run_kind else {})}
    run_id = new_run_id()
    if before_run is not None:
        before_run(run_id, checked)
    result = run_playbook(
        root / "playbooks" / playbook_name,
        inventory=checked.sources,
        limit=limit,
        check=check,
        diff=diff,
        extravars={**(extravars or {}), **overlay},
        env=env,
        root=root,
        run_id=run_id,
        quiet=quiet,
    )
    if result.interrupted_by is not None:
        raise Interrupted(result)
    return dataclasses.replace(result, phase=phase)
