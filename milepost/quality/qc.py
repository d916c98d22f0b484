"""Quality control: the testinfra checks in tests/qc/, run against the inventory, each
host's result of each check recorded in the ledger.

`milepost qc run` runs pytest on tests/qc with testinfra's ansible backend (hosts, users,
keys and known_hosts as Ansible has them); tests/qc/conftest.py writes each host's result
of each check as a JSON line to $MILEPOST_QC_RESULTS, and one ``qc_result`` record per
host and check is appended: check (the test's name), status (passed, failed,
error, skipped), message (the first line of the failure, redacted, cut). Inside a
maintenance run (``--run-id``) the records carry that run's id; on its own, the QC is a run
of its own (kind ``qc``) and any failure opens a glitch (detected by "qc"); inside a run,
the playbook fails the hosts that failed a check and the run's end opens the glitch.

A check added for a glitch says so (milepost.quality.answers): its result carries
``answers`` (the glitch ids) and its failure is "caught by the check added for glitch G-...".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from milepost.ansible.recorder import git_commit
from milepost.ansible.redaction import DEFAULT_PATTERNS, Redactor
from milepost.errors import MilepostError, UserError
from milepost.input_checks import check_limit, check_text, shown
from milepost.inventory.checks import check_inventory
from milepost.inventory.reading import default_inventory
from milepost.ledger import Ledger, new_run_id, run_ended, run_started
from milepost.ledger.names import QC_RESULT
from milepost.ledger.spool import append_or_spool
from milepost.oversight.register_reading import notes
from milepost.oversight.register_writing import add_note, run_glitch_record
from milepost.oversight.registers import GLITCH, LESSON, QC_PROCESS
from milepost.paths import project_root
from milepost.quality.answers import answers_of, caught_by, check_answers

RESULT_KIND = QC_RESULT
MAX_MESSAGE = 300
#: Seconds the whole QC may take before it is stopped.
TIMEOUT = 1800


@dataclass(frozen=True)
class CheckResult:
    host: str
    check: str
    status: str
    message: str | None
    #: The glitches the check was added for (milepost.quality.answers).
    answers: tuple[str, ...] = ()

    @property
    def caught_by(self) -> str:
        """'caught by the check added for glitch G-...' for a failure, else ''."""
        return caught_by(self.answers) if self.status in ("failed", "error") else ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def catalogue(root: Path) -> Path:
    return root / "tests" / "qc"


def catalogue_digest(root: Path) -> tuple[str, dict[str, str]]:
    """The catalogue's SHA-256 (over each file's path and SHA-256) and each file's."""
    files = {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(catalogue(root).rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    lines = "".join(f"{name} {digest}\n" for name, digest in files.items())
    return hashlib.sha256(lines.encode()).hexdigest(), files


def recorded_change(ledger: Ledger) -> Any:
    """The newest qc-process entry of the registers that carries a catalogue digest."""

    found = [n for n in notes(ledger, type=QC_PROCESS) if n.details.get("catalogue_sha256")]
    return found[-1] if found else None


def recorded_answers(ledger: Ledger) -> dict[str, list[str]]:
    """{check: [glitch ids]} of the newest recorded catalogue change: the checks added
    for glitches, as QC reports them."""
    before = recorded_change(ledger)
    return answers_of(before.details) if before is not None else {}


def _require(registers: dict[str, Any], note_id: str, note_type: str, where: str = "") -> str:
    """``note_id`` when the registers hold an entry of ``note_type`` with it; UserError
    (one line) otherwise."""
    clean = check_text(note_id, note_type, max_len=80)
    if getattr(registers.get(clean), "type", None) != note_type:
        raise UserError(
            f"{note_type} {shown(clean)}{where} is not in the ledger:"
            f" `milepost note list --type {note_type}` shows them"
        )
    return clean


def record_change(
    ledger: Ledger,
    root: Path,
    *,
    title: str,
    reason: str,
    glitches: Sequence[str] = (),
    lessons: Sequence[str] = (),
) -> Any:
    """A qc-process entry: why the catalogue changed, with its digest, its files, what
    changed since the last recorded change and the checks added for glitches (their
    ``answers`` markers, milepost.quality.answers), linked to the glitches and lessons it
    answers: ``glitches`` and ``lessons``, and the glitches of checks newly marked.

    UserError (nothing recorded) when the catalogue has not changed, a glitch or lesson
    given or a glitch a marker names is not in the ledger, or a marker is malformed."""

    digest, files = catalogue_digest(root)
    answers = check_answers(root, catalogue(root))
    before = recorded_change(ledger)
    previous: dict[str, str] = dict(before.details.get("files") or {}) if before else {}
    changed = sorted(name for name in {*files, *previous} if files.get(name) != previous.get(name))
    if before is not None and not changed:
        raise UserError(
            "the QC catalogue (tests/qc) has not changed since its last recorded change"
            f" {before.note_id}: nothing to record"
        )
    registers = {n.note_id: n for n in notes(ledger)}
    linked = [_require(registers, g, GLITCH) for g in glitches]
    lesson_ids = [_require(registers, n, LESSON) for n in lessons]
    earlier = answers_of(before.details) if before is not None else {}
    for check, ids in answers.items():
        for glitch_id in ids:
            _require(registers, glitch_id, GLITCH, f" (the answers marker of {check})")
            if glitch_id not in earlier.get(check, ()) and glitch_id not in linked:
                linked.append(glitch_id)
    return add_note(
        ledger,
        QC_PROCESS,
        title=title,
        text=reason,
        links={"glitches": linked, "notes": lesson_ids},
        details={
            "catalogue_sha256": digest,
            "files": files,
            "changed": changed,
            "answers": answers,
        },
    )


def catalogue_warning(ledger: Ledger, root: Path) -> str | None:
    """A warning when the catalogue differs from its last recorded change."""
    digest, _ = catalogue_digest(root)
    before = recorded_change(ledger)
    if before is None or before.details.get("catalogue_sha256") == digest:
        return None
    return (
        f"the QC catalogue (tests/qc) changed since {before.note_id}: say why with"
        " `milepost qc record-change --title TEXT --reason TEXT`"
    )


def _parse(lines: Path) -> list[CheckResult]:
    """The JSON lines tests/qc/conftest.py wrote, messages redacted and cut."""

    scrub = Redactor(list(DEFAULT_PATTERNS)).scrub
    found = []
    for line in lines.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        message = item.get("message")
        text = scrub(" ".join(str(message).split()))[:MAX_MESSAGE] if message else None
        found.append(
            CheckResult(
                host=str(item.get("host") or "?"),
                check=str(item.get("check")),
                status=str(item.get("status")),
                message=text or None,
            )
        )
    return found


# ------------------------------------------------------------------ connection options
#
# QC connects as Ansible does (ansible.cfg: host_key_checking = True): testinfra's ansible
# backend takes each host's ssh options from the inventory (ansible_ssh_common_args, so the
# lab's UserKnownHostsFile), and never with host key checking switched off.

#: ssh options that switch host key checking off: QC refuses to connect with them.
HOST_KEY_OFF = re.compile(
    r"StrictHostKeyChecking\s*=?\s*(?:no|off)\b|(?:User|Global)KnownHostsFile\s*=?\s*/dev/null",
    re.IGNORECASE,
)
#: Appended to every QC ssh command line. OpenSSH takes the first value of an option, so an
#: inventory's own StrictHostKeyChecking stays; without one, a host whose key is not in the
#: known_hosts file fails instead of asking (no one answers a prompt during QC).
STRICT_HOST_KEYS = "-o StrictHostKeyChecking=yes"
#: Where QC keeps one SSH connection per host for the whole run (set by run_checks).
CONTROL_DIR_VARIABLE = "MILEPOST_QC_CONTROL_DIR"
SSH_ARG_VARIABLES = ("ANSIBLE_SSH_ARGS", "ANSIBLE_SSH_COMMON_ARGS", "ANSIBLE_SSH_EXTRA_ARGS")


def check_ssh_args(args: str, where: str) -> None:
    """UserError if the ssh options ``args`` switch host key checking off."""
    found = HOST_KEY_OFF.search(args or "")
    if found:
        raise UserError(
            f"{where} holds {found.group(0)!r}: QC never connects with host key checking off;"
            " put the hosts' keys in the known_hosts file the inventory names"
            " (UserKnownHostsFile) instead"
        )


def multiplexed(args: str, control_dir: str | None) -> str:
    """The ssh options of a QC connection, so that every check of a host shares one SSH
    connection (its first check opens it, host key checked): ControlPath in
    ``control_dir``. Options that name a ControlPath already are left alone."""
    if not control_dir or "controlpath" in args.lower():
        return args
    extra = f"-o ControlPath={shlex.quote(control_dir + '/%C')}"
    if "controlmaster" not in args.lower():
        extra = f"-o ControlMaster=auto -o ControlPersist=60s {extra}"
    return f"{args} {extra}".strip()


def close_connections(control_dir: Path) -> None:
    """Close the SSH connections QC kept open in ``control_dir``."""
    for socket in sorted(control_dir.glob("*")):
        subprocess.run(  # noqa: S603 - argv built here, no shell
            ["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "qc"],  # noqa: S607
            capture_output=True,
            timeout=30,
            check=False,
        )


def qc_env(root: Path, results: Path, base: dict[str, str]) -> dict[str, str]:
    """The environment of the QC's pytest: the project's ansible.cfg, host key checking on
    whatever the caller's environment says, no ssh options that switch it off."""
    for name in SSH_ARG_VARIABLES:
        check_ssh_args(base.get(name, ""), f"${name}")
    return {
        **base,
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "MILEPOST_QC_RESULTS": str(results),
    }


def check_host_keys(backend: Any) -> None:
    """Make a testinfra connection check host keys as Ansible does (tests/qc/conftest.py
    calls this for every host): for OpenSSH, the inventory's options (its known_hosts
    file) plus StrictHostKeyChecking=yes; UserError for options that switch checking off,
    and for paramiko, whose testinfra backend accepts unknown host keys."""
    if getattr(backend, "NAME", "") == "ansible" and not getattr(backend, "force_ansible", True):
        inner = backend.ansible_runner.get_host(
            backend.host, ssh_config=backend.ssh_config, ssh_identity_file=backend.ssh_identity_file
        )
        if inner is None:  # testinfra runs Ansible itself: host_key_checking (qc_env) holds
            return
        backend = inner.backend
    name = getattr(backend, "NAME", "")
    where = f"the ssh options of {getattr(backend, 'hostname', '?')}"
    if name in ("ssh", "safe-ssh"):
        args = str(backend.ssh_extra_args or "")
        check_ssh_args(args, where)
        if STRICT_HOST_KEYS not in args:
            args = f"{args} {STRICT_HOST_KEYS}".strip()
        backend.ssh_extra_args = multiplexed(args, os.environ.get(CONTROL_DIR_VARIABLE))
    elif name == "paramiko":
        raise UserError(
            f"{getattr(backend, 'hostname', '?')} uses ansible_connection paramiko, whose QC"
            " connection would accept an unknown host key: use ansible_connection: ssh"
        )


def run_checks(root: Path, sources: Sequence[Path], hosts: Sequence[str]) -> list[CheckResult]:
    """Run the QC catalogue against ``hosts``; MilepostError if pytest itself broke."""
    with tempfile.TemporaryDirectory(prefix="milepost-qc-") as tmp:
        results = Path(tmp) / "qc.jsonl"
        argv = [
            sys.executable,
            "-m",
            "pytest",
            str(catalogue(root)),
            "-q",
            "-p",
            "no:cacheprovider",
            f"--hosts={','.join('ansible://' + h for h in hosts)}",
            f"--ansible-inventory={','.join(str(s) for s in sources)}",
        ]
        env = qc_env(root, results, dict(os.environ))
        control_dir = Path(tmp) / "cp"
        control_dir.mkdir(mode=0o700)
        env[CONTROL_DIR_VARIABLE] = str(control_dir)
        try:
            proc = subprocess.run(  # noqa: S603 - argv built here, no shell
                argv,
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise MilepostError(f"QC did not finish within {TIMEOUT} s") from None
        finally:
            close_connections(control_dir)
        tail = " ".join((proc.stdout + proc.stderr).split())[-300:]
        if proc.returncode not in (0, 1) or not results.is_file():
            raise MilepostError(f"QC could not run (pytest exit {proc.returncode}): {tail}")
        try:
            found = _parse(results)
        except (ValueError, AttributeError):
            raise MilepostError(f"QC wrote results that cannot be read: {tail}") from None
        # Fail closed: a host with no result was not checked, and pytest failing without a
        # failed check means something other than a check broke.
        missing = sorted(set(hosts) - {r.host for r in found})
        if missing:
            raise MilepostError(
                f"QC could not run on {', '.join(missing)} (no check result; pytest exit"
                f" {proc.returncode}): {tail}"
            )
        if proc.returncode == 1 and not failures(found):
            raise MilepostError(f"QC could not run (pytest exit 1 and no check failed): {tail}")
        return found


def result_records(
    run_id: str, results: Sequence[CheckResult], digest: str
) -> list[dict[str, Any]]:
    return [
        {
            "kind": RESULT_KIND,
            "run_id": run_id,
            "host": r.host,
            "body": {
                "check": r.check,
                "status": r.status,
                "message": r.message,
                "catalogue_sha256": digest,
                **({"answers": list(r.answers)} if r.answers else {}),
            },
        }
        for r in results
    ]


def with_answers(
    results: Sequence[CheckResult], answers: dict[str, list[str]]
) -> list[CheckResult]:
    """``results``, each carrying the glitches its check was added for."""
    return [
        CheckResult(r.host, r.check, r.status, r.message, tuple(answers.get(r.check, ())))
        for r in results
    ]


def failure_line(result: CheckResult) -> str:
    """One failure as the glitch's text says it."""
    line = f"{result.host} {result.check}: {result.message or result.status}"
    return f"{line} ({result.caught_by})" if result.caught_by else line


def qc_records(
    run_id: str, results: Sequence[CheckResult], digest: str, *, own_run: bool
) -> tuple[list[dict[str, Any]], str | None]:
    """The ``qc_result`` records of a QC, and on its own (``own_run``) the glitch its
    failures open: (records, glitch id or None). The run's own start and end are the
    caller's. Inside a maintenance run the hosts that failed fail the run, and the run
    opens the glitch (plugins/callback/maintenance_ledger.py)."""
    records = result_records(run_id, results, digest)
    bad = failures(results)
    if not (bad and own_run):
        return records, None
    hosts_failed = sorted({r.host for r in bad})
    checks = sorted({r.check for r in bad})
    record = run_glitch_record(
        run_id,
        f"QC failed on {', '.join(hosts_failed)}: {', '.join(checks)}",
        hosts_failed,
        text="\n".join(failure_line(r) for r in bad),
        detected_by="qc",
    )
    return [*records, record], str(record["body"]["glitch_id"])


def _answers_now() -> dict[str, list[str]]:
    """The recorded answers map, or {} when the ledger cannot be read (the results are
    still recorded, or spooled)."""
    try:
        with Ledger.open() as ledger:
            return recorded_answers(ledger)
    except (MilepostError, OSError, SQLAlchemyError):
        return {}


def failures(results: Sequence[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status in ("failed", "error")]


def run_qc(
    *, inventory: Path | None, limit: str | None, run_id: str | None
) -> tuple[str, list[CheckResult], str | None]:
    """Check the inventory, run the QC, record it; return (run id, results, glitch id or
    None). UserError for bad input (nothing run)."""

    root = project_root()
    sources = [inventory] if inventory is not None else default_inventory()
    hosts = check_inventory(sources, limit=limit, playbook_dir=root / "playbooks").hosts
    own_run = run_id is None
    rid = run_id or new_run_id()
    start = (
        [run_started(playbook="tests/qc", kind="qc", run_id=rid, git_commit=git_commit(root),
                     limit=limit)]
        if own_run
        else []
    )  # fmt: skip
    try:
        results = run_checks(root, sources, hosts)
    except MilepostError as failed:
        if own_run:
            append_or_spool([*start, run_ended(rid, "failed", str(failed))], "the QC run records")
        raise
    results = with_answers(results, _answers_now())
    found, glitch = qc_records(rid, results, catalogue_digest(root)[0], own_run=own_run)
    records = [*start, *found]
    if own_run:
        records.append(run_ended(rid, "failed" if failures(results) else "successful"))
    append_or_spool(records, "the QC results")
    return rid, results, glitch


def check_limit_given(limit: str | None) -> str | None:
    if limit is None:
        return None
    if not limit.strip():
        raise UserError("--limit is empty: name hosts or groups, or leave it out")
    return check_limit(limit)
