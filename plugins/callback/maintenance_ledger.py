# Milepost: the maintenance ledger callback.
"""Records every run, task result and package change in the Milepost maintenance ledger.

A thin adapter: each Ansible event becomes a plain dict at once and goes to
milepost.ansible.recorder, which writes from its own thread; nothing here touches the database.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: maintenance_ledger
type: notification
short_description: Records runs, task results and package changes in the Milepost ledger
description:
  - Writes a run record at the start and end of a playbook, one record per host and task
    result (status, duration, a redacted one-line summary), package facts and package
    changes, to the tamper-evident Milepost maintenance ledger.
  - Results of no_log tasks are stored censored; values of extra vars whose names say they
    are secret (password, token, key, ...), vault values (inline C(!vault) values and every
    value read from a vault-encrypted file, whether vars_files, group_vars or C(-e @file),
    and those that include_vars, task vars or an included role bring while the play runs)
    and text matching the secret patterns are masked; variables and the environment are
    never stored.
  - Result keys with a meaning of their own become records of their own kind -
    C(milepost_package_changes) gives package_change, C(milepost_window_override) gives
    window_override, C(milepost_interface_results) gives interface_check,
    C(milepost_reboot_required) gives reboot_required, C(milepost_drift) gives
    drift_check and the fact C(milepost_probe) (the probe of a host) gives host_probe
    records.
  - Each task result says where it ran (C(runs_on) - host, controller, or nothing when
    skipped), so the ledger shows how many module runs a cycle costs each host.
  - Ansible's implicit check of a role's arguments (before each entry into a role with
    meta/argument_specs.yml) is recorded only when it fails.
  - As each play starts it reads, once, what the plugins of every host need from the
    ledger (milepost.patching.play_cache - ended runs, advisories, exceptions).
  - A run that ends failed opens a glitch (a C(glitch) record naming the hosts that
    failed, were unreachable or were rolled back by the health gate), except a
    remediation run, whose command opens its own. In hypercare (O(phase)), a run whose
    tasks gave warnings opens one too.
  - In a run that is not a check, a play with the play variable C(milepost_notices) true
    (maintain.yml's preflight play) sends the upcoming notice for its hosts when it starts,
    and the run's end sends the completed notice, read from the closed run (both when the
    inventory configures C(milepost_notify); a notice never fails the run).
  - Result keys C(milepost_overrides) give safety_override records and C(milepost_batch)
    batch_started records; run_started holds every extra var by name, values redacted.
  - If the ledger cannot be written, records are spooled to a local file with one warning;
    C(milepost ledger replay) or the next run writes them in.
requirements:
  - the milepost Python package on the controller
options:
  ledger_url:
    description: SQLAlchemy URL of the ledger; default is .milepost/ledger.sqlite in the checkout.
    type: str
    env:
      - name: MILEPOST_LEDGER_URL
    ini:
      - section: maintenance_ledger
        key: ledger_url
  run_kind:
    description: What kind of run this is.
    type: str
    default: manual
    choices: [scheduled, manual, emergency, drift, remediation, qc]
    env:
      - name: MILEPOST_RUN_KIND
    ini:
      - section: maintenance_ledger
        key: run_kind
  phase:
    description: >-
      The program's phase (milepost_phase); in V(hypercare) a run whose tasks gave
      warnings opens a glitch too.
    type: str
    default: normal
    choices: [normal, hypercare]
    env:
      - name: MILEPOST_PHASE
    ini:
      - section: maintenance_ledger
        key: phase
  operator:
    description: Who runs the playbook; default is the login name.
    type: str
    env:
      - name: MILEPOST_OPERATOR
    ini:
      - section: maintenance_ledger
        key: operator
  secret_patterns:
    description: Extra regular expressions whose matches are masked before anything is stored.
    type: list
    elements: str
    default: []
    env:
      - name: MILEPOST_SECRET_PATTERNS
    ini:
      - section: maintenance_ledger
        key: secret_patterns
"""

import os
import time
from pathlib import Path

from ansible import constants as C
from ansible import context
from ansible.plugins.callback import CallbackBase
from ansible.utils.vars import load_extra_vars

try:
    from milepost import notify
    from milepost.ansible import records
    from milepost.ansible.recorder import Recorder, git_commit
    from milepost.ansible.redaction import DEFAULT_PATTERNS, Redactor
    from milepost.ansible.vault_values import vault_values
    from milepost.operator import operator_name
    from milepost.oversight.run_glitches import run_glitch
    from milepost.patching import play_cache

    HAS_MILEPOST = True
except ImportError:
    HAS_MILEPOST = False

ROOT = Path(__file__).resolve().parents[2]
# The ledger and its spool live in this checkout unless configured otherwise.
os.environ.setdefault("MILEPOST_ROOT", str(ROOT))


# Extra vars whose values run_started keeps: Milepost's own (its roles' prefixes too).
OWN_PREFIXES = ("milepost_", "emergency_patch_") + tuple(
    f"{role.name}_" for role in sorted((ROOT / "roles").glob("*")) if role.is_dir()
)


def _task_status(result, default):
    if default == "ok" and result._result.get("changed"):
        return "changed"
    return default


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "maintenance_ledger"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._recorder = None
        self._redactor = None
        self._started = {}
        self._check_mode = False
        self._rolled_back = set()
        self._failures = {}
        self._warnings = {}
        self._playbook_name = ""
        self._play = None
        self._vaults = False
        self._roles_seen = set()
        self._notices = False
        self._operator = None

    # ---------------------------------------------------------------- run

    def v2_playbook_on_start(self, playbook):
        if not HAS_MILEPOST:
            self._display.warning(
                "maintenance_ledger: the milepost package is not installed;"
                " this run is NOT recorded"
            )
            return
        self.set_options()
        args = context.CLIARGS
        self._check_mode = bool(args.get("check"))
        self._redactor = Redactor([*DEFAULT_PATTERNS, *(self.get_option("secret_patterns") or [])])
        self._redactor.add_secrets(records.secret_extra_vars(args.get("extra_vars") or ()))
        self._vaults = _vault_secrets_given()
        self._recorder = Recorder(self.get_option("ledger_url"), self._display.warning)
        playbook_path = Path(playbook._file_name).resolve()
        try:
            playbook_name = str(playbook_path.relative_to(ROOT))
        except ValueError:
            playbook_name = str(playbook_path)
        self._playbook_name = playbook_name
        given, extra_vars = self._extra_vars(playbook)
        operator, identity = records.run_identity(given, self.get_option("operator") or None)
        self._operator = operator
        self._recorder.start(
            playbook=playbook_name,
            kind=self.get_option("run_kind"),
            operator=operator,
            identity=identity,
            git_commit=git_commit(ROOT),
            limit=args.get("subset") or None,
            check_mode=self._check_mode,
            extra_vars=extra_vars,
        )

    def _extra_vars(self, playbook):
        """The run's extra vars as given, and every one by name as recorded (see
        records.extra_var_values)."""
        try:
            given = load_extra_vars(playbook._loader)
        except Exception as exc:  # noqa: BLE001 - ansible-playbook reports a bad -e itself
            return {}, {"(unreadable)": self._redactor.scrub(str(exc))[:200]}
        return given, records.extra_var_values(given, OWN_PREFIXES, self._redactor.scrub)

    def v2_playbook_on_play_start(self, play):
        self._play = play
        if self._recorder is not None:
            # Read once here, in the process Ansible forks every worker from: the plugins of
            # every host use this copy (ended runs, advisories, exceptions).
            try:
                play_cache.load()
            except Exception as exc:  # noqa: BLE001 - any failure: each host reads it itself
                play_cache.clear()  # each host's plugin tries again, and fails closed
                self._display.warning(f"maintenance_ledger: cannot read the ledger ({exc})")
        if self._recorder is not None and not self._check_mode and not self._notices:
            if _boolean(play.vars.get("milepost_notices")):
                self._notices = True
                self._notice_upcoming(play)
        if self._redactor is None or not self._vaults:
            return  # without a vault secret nothing can have been decrypted
        manager = play.get_variable_manager()
        for host in play.get_variable_manager()._inventory.get_hosts(play.hosts):
            self._redactor.add_secrets(vault_values(manager.get_vars(play=play, host=host)))

    def _learn_task_vaults(self, task):
        """Vault values that come with a task rather than the play: its own and its blocks'
        vars, and the vars of a role included while the play runs."""
        if self._redactor is None or not self._vaults:
            return
        self._redactor.add_secrets(vault_values(task.get_vars()))
        role = task._role
        if role is not None and id(role) not in self._roles_seen:
            self._roles_seen.add(id(role))
            self._redactor.add_secrets(vault_values(role.get_default_vars()))
            self._redactor.add_secrets(vault_values(role.get_vars()))

    def _learn_host_vaults(self, host, task):
        """Vault values a host has now (include_vars loads them while the play runs)."""
        if self._redactor is None or not self._vaults or self._play is None:
            return
        manager = self._play.get_variable_manager()
        variables = manager.get_vars(play=self._play, host=host, task=task, include_hostvars=False)
        self._redactor.add_secrets(vault_values(variables))

    def v2_playbook_on_stats(self, stats):
        if self._recorder is None:
            return
        failed = sorted(
            host
            for host in stats.processed
            if stats.summarize(host)["failures"] or stats.summarize(host)["unreachable"]
        )
        glitch = run_glitch(
            self._recorder.run_id,
            self._playbook_name,
            run_kind=self.get_option("run_kind"),
            phase=self.get_option("phase"),
            failed=failed,
            rolled_back=sorted(self._rolled_back),
            failures=self._failures,
            warnings=self._warnings,
        )
        if glitch is not None:
            self._recorder.put(glitch)
        self._recorder.finish("failed" if failed else "successful")
        if self._notices:
            # After the run is closed: the notice is read from the ledger.
            notify.notify_completed(self._recorder.run_id, _inventory_sources())

    def _notice_upcoming(self, play):
        """The play that starts the maintenance (milepost_notices: true) tells staff that
        work on its hosts' systems starts now; the run's end sends the completed notice.
        Both need milepost_notify in the inventory; a notice never fails the run."""
        hosts = [
            host.get_name() for host in play.get_variable_manager()._inventory.get_hosts(play.hosts)
        ]
        notify.notify_upcoming_now(self._recorder.run_id, hosts, _inventory_sources())

    def v2_playbook_on_task_start(self, task, is_conditional=False):
        # SIGTERM becomes a KeyboardInterrupt in the main thread, but Ansible can lose it
        # (raised inside a finalizer, say) and go on. This runs in the main thread before
        # every task: raise it again, so a terminated run stops at its next task.
        if self._recorder is not None and self._recorder.interrupted:
            raise KeyboardInterrupt
        self._learn_task_vaults(task)

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    # ---------------------------------------------------------------- results

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def v2_runner_on_ok(self, result):
        self._record(result, _task_status(result, "ok"))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed", ignored=ignore_errors)

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def _record(self, result, status, ignored=False):
        if self._recorder is None:
            return
        host = result._host.get_name()
        task = result._task
        if task.action in records.ARGUMENT_CHECK_ACTIONS and status == "ok":
            # Ansible's own check of a role's arguments, before every entry into a role:
            # no module runs and its success says nothing; its failure is recorded.
            return
        started = self._started.pop((host, task._uuid), None)
        duration = round(time.monotonic() - started, 4) if started else None
        res = result._result
        if status in ("failed", "unreachable") or res.get("warnings") or _loads_vars(task):
            # What is stored next is free text from the result: know every vault value first.
            self._learn_host_vaults(result._host, task)
        scrub = self._redactor.scrub
        name = scrub(task.get_name())
        summary = self._redactor.summary(res, status=status, no_log=bool(task.no_log))
        if records.rolled_back(res, status):
            self._rolled_back.add(host)
        if status in ("failed", "unreachable") and not ignored:
            # The first failure of each host, for the glitch a failed run opens.
            self._failures.setdefault(host, f"{name}: {summary or status}")
        warnings = None if task.no_log else res.get("warnings")
        if status in ("ok", "changed") and warnings and isinstance(warnings, list):
            self._warnings.setdefault(host, f"{name}: {scrub(str(warnings[0]))}")
        self._recorder.put(
            records.task_record(
                self._recorder.run_id,
                host,
                name,
                status,
                res,
                duration=duration,
                summary=summary,
                action=task.action,
                role=task._role.get_name() if task._role else "",
                runs_on=records.runs_on(str(task.action), str(task.delegate_to or ""), status),
                ignored=ignored,
                check_mode=self._check_mode,
            )
        )
        if task.no_log:
            return
        for record in records.result_records(
            self._recorder.run_id,
            host,
            res,
            status=status,
            scrub=scrub,
            check_mode=self._check_mode,
            operator=self._operator or operator_name(),
        ):
            self._recorder.put(record)


def _vault_secrets_given():
    args = context.CLIARGS
    return bool(
        args.get("vault_ids")
        or args.get("vault_password_files")
        or args.get("ask_vault_pass")
        or C.DEFAULT_VAULT_PASSWORD_FILE
        or C.DEFAULT_VAULT_IDENTITY_LIST
    )


def _boolean(value):
    return value is True or str(value).lower() in ("true", "yes", "1")


def _inventory_sources():
    """The run's inventory sources, as notices read systems and audiences from them."""
    found = []
    for source in context.CLIARGS.get("inventory") or ():
        for part in str(source).split(","):
            path = Path(os.path.expanduser(part.strip()))
            if part.strip() and path.exists():
                found.append(path.resolve())
    return found or None


def _loads_vars(task):
    return str(task.action).endswith("include_vars")
