"""Canary secrets, random for every run, carried through real runs at -vvvv in every way a
correct playbook carries secrets; then not one of them (nor its base64, URL, JSON or HTML
form) may be found in the ledger database, its exports, its CLI output, the dashboard,
the notices (a real SMTP server requiring STARTTLS and a login, a real webhook receiver),
the artifacts of a run through milepost.ansible.runner, or the runs' output and log files.

Runs (the lab hosts: two of them, read-only tasks; localhost with connection local):

- A: ansible-playbook -vvvv, playbooks/secrets.yml on two lab hosts and localhost: a vault
  file and inline !vault values in vars_files, an encrypted and an inline vault file in
  the inventory's group_vars, --vault-password-file, --become-password-file, -e key=value
  (secret-named and ordinary-named), -e @file, -e @vault-file, -e JSON, include_vars of a
  vault file, task vars with !vault; every task that holds a secret has no_log: true
  (results, loop items, a failing task, registered results, set_fact, module args, an
  environment). Its stdout/stderr and its ANSIBLE_LOG_PATH file are checked.
- B: the same playbook through milepost.ansible.runner.run_checked (ANSIBLE_VERBOSITY=4, --diff)
  on the two lab hosts, with its own canaries: extra vars through ansible-runner, the
  become password as a vault variable, ANSIBLE_VAULT_PASSWORD_FILE. Its private data dir
  is inspected when the run ends, before it is removed; its terminal output and its
  ANSIBLE_LOG_PATH file are checked.
- C and D: playbooks/secrets_careless.yml: tasks WITHOUT no_log put canaries in task names,
  failure messages, standard error (C, which fails and opens a glitch) and warnings (D,
  in hypercare, which opens a glitch for its warnings). Ansible prints those; only
  Milepost's own outputs are checked for them, and only for what the ledger callback
  promises to mask (extra vars with secret names, vault values, text matching the secret
  patterns). Two plaintext variables named like secrets (legacy_db_password,
  vault_legacy_token) are beyond that promise: where they appear is printed, not counted.

Not counted either, and printed, in Ansible's own display (the runs' stdout/stderr,
ANSIBLE_LOG_PATH, the terminal output of the run through milepost.ansible.runner), two things
ansible-core itself shows whatever the playbook does: the value of a no_log task's
`environment`, in its "EXEC" lines at -vvv (ansible/ansible#24181; Ansible's advice is not
to pass secrets through the environment), and the command line's -e values, which the
default stdout callback prints at -vvvv (through milepost.ansible.runner every extra var is on
the command line). Both are counted wherever Milepost itself writes.

tally("secrets leaked") counts (canary, place) pairs found; the test fails if any.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import quopri
import secrets
import shutil
import sqlite3
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from lab_fleet import INVENTORY, ROOT, ansible_env, lab_status
from notice_servers import PROXY_VARIABLES, smtp_server, webhook_server
from proving import tally, trials

# Every trial here runs on the lab fleet (scripts/lab up).
pytestmark = pytest.mark.lab

PLAYBOOKS = Path(__file__).parent / "playbooks"
#: Characters that change under URL, JSON, HTML and MIME encodings, added to some canaries.
SPICES = ("", "+/=", "&<ä")

# Why a sighting in Ansible's own display is not counted (see the docstring).
ENV_DISPLAY = "ansible-core shows a no_log task's environment at -vvv"
CLI_DISPLAY = "ansible-core's default callback prints the command line's -e values at -vvvv"


# ---------------------------------------------------------------------------- canaries


@dataclass
class Canary:
    value: str
    carrier: str
    run: str
    #: Why a sighting in Ansible's own display is not counted (None: it is).
    display_excuse: str | None = None
    #: Carried in a way the ledger callback does not promise to mask: a sighting in
    #: Milepost's outputs is printed, not counted.
    beyond_promise: bool = False
    forms: tuple[bytes, ...] = field(default=(), repr=False)


class Canaries:
    """Random canary secrets, each remembering how it was carried."""

    def __init__(self, rng) -> None:
        self.all: list[Canary] = []
        self._rng = rng

    def new(
        self,
        carrier: str,
        run: str,
        *,
        spice: bool = True,
        display_excuse: str | None = None,
        beyond_promise: bool = False,
    ) -> str:
        index = len(self.all) + 1
        core = f"Canary{index:02d}-{secrets.token_hex(6)}"
        value = core + (self._rng.choice(SPICES) if spice else "")
        forms = tuple(sorted({*encoded_forms(value), *encoded_forms(core)}))
        self.all.append(Canary(value, carrier, run, display_excuse, beyond_promise, forms))
        return value


def encoded_forms(value: str) -> set[bytes]:
    """The text as bytes, raw and in its common encodings: JSON-escaped, URL-encoded,
    HTML-escaped, quoted-printable, and base64 (standard and URL-safe) at each of the three
    alignments it can have inside a longer encoded text. (Each canary is looked for whole
    and as its core, CanaryNN-<hex>, which no encoding changes.)"""
    raw = value.encode()
    texts = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        html.escape(value),
        html.escape(value, quote=False),
    }
    forms = {t.encode() for t in texts}
    forms.add(quopri.encodestring(raw).strip())
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + raw)
            # Keep only the 4-character groups made of the canary's bytes alone.
            start = 4 * ((offset + 2) // 3)
            whole = (offset + len(raw)) // 3
            core = encoded[start : 4 * whole]
            if len(core) >= 8:
                forms.add(core)
    return forms


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ---------------------------------------------------------------------------- files


def vault_lib(password: str):
    from ansible.parsing.vault import VaultLib, VaultSecret

    return VaultLib([("default", VaultSecret(password.encode()))])


def inline_vault(password: str, values: dict[str, str]) -> str:
    """YAML with each value as an inline !vault string (what ansible-vault encrypt_string
    writes)."""
    lib = vault_lib(password)
    lines = []
    for name, value in values.items():
        cipher = lib.encrypt(value).decode()
        lines.append(f"{name}: !vault |\n" + "".join(f"  {line}\n" for line in cipher.split()))
    return "".join(lines)


def write_yaml(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def encrypt_files(password_file: Path, *paths: Path) -> None:
    """Encrypt whole files with the ansible-vault command, as an operator would."""
    proc = subprocess.run(
        ["ansible-vault", "encrypt", "--vault-password-file", str(password_file), *map(str, paths)],
        capture_output=True,
        text=True,
        env={k: v for k, v in ansible_env().items() if k != "ANSIBLE_VAULT_PASSWORD_FILE"},
    )
    assert proc.returncode == 0, proc.stderr
    for path in paths:
        assert path.read_bytes().startswith(b"$ANSIBLE_VAULT;"), path


@dataclass
class RunFiles:
    """The files and extra vars of one run of a secrets playbook."""

    #: the paths and tags the playbook reads (secrets_vault_file, ...)
    extravars: dict[str, object]
    #: the secret extra vars as ansible-playbook's -e arguments ...
    cli_extra: list[str]
    #: ... and as one dict (for ansible-runner)
    runner_extravars: dict[str, object]
    local_inventory: Path
    expected: dict[str, str]


def playbook_files(
    work: Path,
    run: str,
    canaries: Canaries,
    vault_password: str,
    password_file: Path,
    *,
    careless: bool,
    inventory_vaults: bool,
    become_in_vault: bool,
    via_runner: bool = False,
) -> RunFiles:
    """Generate one run's vault files, inventory, task file (and role) with fresh canaries.

    inventory_vaults: put vault_ops_password, ingest_token (encrypted file) and
    harbor_client_secret (inline) in an inventory's group_vars/all, else in the vars files.
    become_in_vault: ansible_become_password comes from a vault variable (else the test
    passes --become-password-file). via_runner: every extra var goes on the command line
    (else only the key=value and JSON ones; the others are @files)."""
    work.mkdir(parents=True)
    expected: dict[str, str] = {}

    def new(name: str, carrier: str, *, late: bool = False, **kw) -> str:
        """A canary for variable `name`; the first task checks it arrived unless it comes
        late (include_vars, task vars, role vars: checked where they are used)."""
        value = canaries.new(carrier, run, **kw)
        if not late:
            expected[name] = sha256(value)
        return value

    rotations = trials(3, 8)
    vault_vars: dict[str, object] = {
        "vault_db_password": new("vault_db_password", "vault file (vars_files)"),
        "vault_api_token": new("vault_api_token", "vault file (vars_files)"),
        "settlement_key": new("settlement_key", "vault file, ordinary name"),
        "vault_sftp": {
            "user_password": new("vault_sftp.user_password", "vault file, nested"),
            "passphrase": new("vault_sftp.passphrase", "vault file, nested"),
        },
        "vault_rotation_tokens": [
            new(f"vault_rotation_tokens.{i}", "vault file, loop items of a no_log task")
            for i in range(rotations)
        ],
        "vault_env_token": new(
            "vault_env_token",
            "vault file, environment of a no_log task",
            display_excuse=ENV_DISPLAY,
        ),
        "vault_fail_secret": new("vault_fail_secret", "vault file, a failing no_log task"),
        "vault_module_secret": new("vault_module_secret", "vault file, module args (no_log)"),
    }
    inline_vars = {
        "vault_smtp_relay_password": new("vault_smtp_relay_password", "inline !vault"),
        "ledgerline_api_key": new("ledgerline_api_key", "inline !vault, loop item"),
        "payments_webhook_secret": new("payments_webhook_secret", "inline !vault, module args"),
    }
    inventory_vault = {
        "vault_ops_password": new("vault_ops_password", "vault file in inventory group_vars"),
        "ingest_token": new("ingest_token", "vault file in inventory group_vars"),
    }
    inventory_inline = {
        "harbor_client_secret": new("harbor_client_secret", "inline !vault in group_vars"),
    }
    if become_in_vault:
        become = new("vault_become_password", "become password (vault variable)")
        vault_vars["vault_become_password"] = become
        vault_vars["ansible_become_password"] = "{{ vault_become_password }}"

    local = work / "inventory"
    write_yaml(
        local / "hosts.yml",
        {
            "all": {
                "hosts": {
                    "localhost": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                    }
                }
            }
        },
    )
    to_encrypt = []
    if inventory_vaults:
        to_encrypt.append(write_yaml(local / "group_vars/all/secrets_vault.yml", inventory_vault))
        (local / "group_vars/all/secrets_inline.yml").write_text(
            inline_vault(vault_password, inventory_inline)
        )
    else:
        vault_vars.update(inventory_vault)
        inline_vars.update(inventory_inline)

    vault_file = write_yaml(work / "vault.yml", vault_vars)
    inline_file = work / "inline.yml"
    inline_file.write_text(inline_vault(vault_password, inline_vars))
    late_file = write_yaml(
        work / "late.yml",
        {"late_vault_secret": new("late_vault_secret", "include_vars vault", late=True)},
    )
    task_secret = new("task_vault_password", "task-level vars !vault", late=True)
    if careless:
        task = (
            "- name: AUDIT | Fail with a task-level vault var\n"
            "  ansible.builtin.fail:\n"
            '    msg: "task {{ task_vault_password }}"\n'
            "  ignore_errors: true\n"
        )
    else:
        task = (
            "- name: AUDIT | Use a task-level vault var in a hidden task\n"
            "  ansible.builtin.command:\n"
            '    argv: [test, -n, "{{ task_vault_password }}"]\n'
            "  changed_when: false\n"
            "  check_mode: false\n"
            "  no_log: true\n"
        )
    task += "  vars:\n" + "".join(
        f"    {line}\n"
        for line in inline_vault(vault_password, {"task_vault_password": task_secret}).splitlines()
    )
    tasks_file = work / "tasks.yml"
    tasks_file.write_text(task)
    to_encrypt += [vault_file, late_file]

    extravars: dict[str, object] = {
        "secrets_vault_file": str(vault_file),
        "secrets_inline_file": str(inline_file),
        "secrets_late_file": str(late_file),
        "secrets_tasks_file": str(tasks_file),
        "secrets_tag": f"{run}-{secrets.token_hex(4)}",
    }
    # Extra vars on the command line: key=value (secret-named and ordinary-named), @file,
    # @vault file, JSON.
    cli = {"display_excuse": CLI_DISPLAY}
    files = cli if via_runner else {}
    kv = {
        "db_password": new("db_password", "extra var key=value, secret name", **cli),
        "api_token": new("api_token", "extra var key=value, secret name", **cli),
        "release_note": new("release_note", "extra var key=value, ordinary name", **cli),
    }
    plain_extra = {
        "sftp_password": new("sftp_password", "extra vars @file, secret name", **files),
        "vendor": {
            "api_key": new("vendor.api_key", "extra vars @file, nested secret name", **files)
        },
        "ticket_ref": new("ticket_ref", "extra vars @file, ordinary name", **files),
    }
    vault_extra = {
        "payments_token": new("payments_token", "extra vars @vault file", **files),
        "ordinary_blob": new("ordinary_blob", "extra vars @vault file, ordinary name", **files),
    }
    json_extra = {"reporting_secret": new("reporting_secret", "extra vars JSON", **cli)}
    plain_extra_file = write_yaml(work / "extra.yml", plain_extra)
    vault_extra_file = write_yaml(work / "extra_vault.yml", vault_extra)
    to_encrypt.append(vault_extra_file)

    if careless:
        # Secrets only the patterns recognise (ordinary names, not vault), and two
        # plaintext variables named like secrets (beyond the callback's promise).
        for name in ("password", "token", "bearer", "url", "key", "glitch", "warning"):
            kv[f"probe_{name}_word"] = canaries.new(
                f"ordinary extra var in text the pattern '{name}' matches", run, spice=False
            )
        plain_file = write_yaml(
            work / "plain.yml",
            {
                "legacy_db_password": canaries.new(
                    "plaintext vars file, *_password name", run, beyond_promise=True
                ),
                "vault_legacy_token": canaries.new(
                    "plaintext vars file, vault_* name", run, beyond_promise=True
                ),
            },
        )
        extravars["secrets_plain_file"] = str(plain_file)
        role = work / "roles" / "secrets_role"
        role_vars = write_yaml(
            role / "vars" / "main.yml",
            {
                "role_vault_token": new(
                    "role_vault_token", "vault file of an included role", late=True
                )
            },
        )
        to_encrypt.append(role_vars)
        (role / "tasks").mkdir(parents=True)
        (role / "tasks" / "main.yml").write_text(
            "- name: AUDIT | Fail with the role's vault value\n"
            "  ansible.builtin.fail:\n"
            '    msg: "role {{ role_vault_token }}"\n'
            "  ignore_errors: true\n"
        )
        extravars["secrets_role_dir"] = str(role)

    encrypt_files(password_file, *to_encrypt)
    cli_extra = [
        *[arg for key, value in kv.items() for arg in ("-e", f"{key}={value}")],
        "-e",
        f"@{plain_extra_file}",
        "-e",
        f"@{vault_extra_file}",
        "-e",
        json.dumps(json_extra, ensure_ascii=False),
    ]
    return RunFiles(
        extravars=extravars,
        cli_extra=cli_extra,
        runner_extravars={**kv, **plain_extra, **vault_extra, **json_extra},
        local_inventory=local,
        expected=expected,
    )


# ---------------------------------------------------------------------------- inventory


NOTIFY = """\
milepost_notify:
  contact: RUC Operations, ops@ruc.example.gov
  from: RUC Operations <ruc-ops@ruc.example.gov>
  smtp:
    host: 127.0.0.1
    port: {port}
    starttls: true
    username: milepost
    password: "{{{{ vault_milepost_smtp_password }}}}"
    ca_file: {ca_file}
    timeout_seconds: 10
    attempts: 2
    retry_delay_seconds: 0
  webhook: {{attempts: 2, retry_delay_seconds: 0}}
  audiences:
    communications:
      email: [communications@ruc.example.gov]
      webhook: "{webhook}"
    customer_service:
      email: [cs-leads@ruc.example.gov]
  notices:
    upcoming: [communications, customer_service]
    completed: [communications, customer_service]
    emergency: [communications, customer_service]
    glitch: [communications, customer_service]
"""


def notify_inventory(path: Path, smtp, webhook_url: str, smtp_password: str) -> Path:
    """The lab inventory (a copy) with milepost_notify and the SMTP password, a vault_*
    variable in plaintext: milepost's own inventory reader (milepost.inventory.reading) gives
    Ansible no vault secret, so a vault-encrypted file in the inventory makes every
    milepost command that reads it (maintain, notify, report) fail, even with
    ANSIBLE_VAULT_PASSWORD_FILE set. The runs' inventory vault files are in a second
    inventory that only ansible-playbook reads."""
    shutil.copytree(INVENTORY.parent, path)
    (path / "group_vars" / "all" / "notify.yml").write_text(
        NOTIFY.format(port=smtp.port, ca_file=smtp.ca_file, webhook=webhook_url)
    )
    write_yaml(
        path / "group_vars" / "all" / "vault.yml", {"vault_milepost_smtp_password": smtp_password}
    )
    return path


# ---------------------------------------------------------------------------- running


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, env=env)


def ledger_rows(ledger: Path, sql: str, *params: str) -> list[tuple]:
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
        return db.execute(sql, params).fetchall()


def task_results(ledger: Path, run_id: str) -> list[dict]:
    rows = ledger_rows(
        ledger,
        "SELECT host, body FROM ledger_records WHERE kind='task_result' AND run_id=?",
        run_id,
    )
    return [{"host": host, **json.loads(body)} for host, body in rows]


def run_ids(ledger: Path) -> list[str]:
    sql = "SELECT run_id FROM ledger_records WHERE kind='run_started' ORDER BY seq"
    return [run_id for (run_id,) in ledger_rows(ledger, sql)]


def pick_lab_hosts(rng) -> list[str]:
    reachable = sorted(h["name"] for h in lab_status() if h.get("reachable"))
    assert len(reachable) >= 2, f"fewer than two lab hosts reachable: {reachable}"
    return sorted(rng.sample(reachable, 2))


class Stages:
    """Prints how long each stage took (information only)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._last = time.monotonic()

    def done(self, what: str) -> None:
        now = time.monotonic()
        self.lines.append(f"{what} {now - self._last:.1f}s")
        self._last = now


# ---------------------------------------------------------------------------- the test


def test_canary_secrets_never_reach_milepost_outputs_runner_artifacts_or_logs(
    tmp_path, rng, monkeypatch, capfd
):
    from milepost.ansible import runner
    from milepost.cli.main import main
    from milepost.ledger.export import FORMATS

    stages = Stages()
    canaries = Canaries(rng)
    work = tmp_path
    vault_password = canaries.new("vault password (file)", "all", spice=False)
    password_file = work / "vault-password"
    password_file.write_text(vault_password + "\n")
    password_file.chmod(0o600)
    become_password = canaries.new("become password (--become-password-file)", "A")
    become_file = work / "become-password"
    become_file.write_text(become_password + "\n")
    become_file.chmod(0o600)
    smtp_password = canaries.new("SMTP password (vault_* in the notify inventory)", "notices")
    hook_token = canaries.new("webhook URL token", "notices", spice=False)

    hosts = pick_lab_hosts(rng)
    targets = ",".join([*hosts, "localhost"])
    ledger = work / "ledger.sqlite"
    state = work / "state"
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    milepost_env = {
        "MILEPOST_LEDGER_URL": f"sqlite:///{ledger}",
        "MILEPOST_STATE_DIR": str(state),
        "MILEPOST_ROOT": str(ROOT),
        "MILEPOST_OPERATOR": "reliability",
    }
    base_env = {**ansible_env(), **milepost_env}
    #: place -> what was found there
    places: dict[str, bytes] = {}
    #: the places that are Ansible's own display (see the module's docstring)
    display: set[str] = set()

    def cli(*args: str) -> tuple[bytes, bytes]:
        """A milepost command, in this process (its output captured)."""
        capfd.readouterr()
        code = main(list(args))
        out, err = capfd.readouterr()
        assert code == 0, f"milepost {' '.join(args)}: exit {code}: {err[-2000:]}"
        return out.encode(), err.encode()

    with (
        smtp_server(tls_dir=work / "tls", password=smtp_password) as smtp,
        webhook_server() as hook,
    ):
        hook_url = f"{hook.base_url}/hooks/{hook_token}?key={hook_token}"
        inventory = notify_inventory(work / "inventory", smtp, hook_url, smtp_password)

        # ---- run A: ansible-playbook -vvvv on two lab hosts and localhost
        a = playbook_files(
            work / "A", "A", canaries, vault_password, password_file,
            careless=False, inventory_vaults=True, become_in_vault=False,
        )  # fmt: skip
        log_a = work / "A.log"
        extra_a = {**a.extravars, "secrets_targets": targets, "secrets_expected": a.expected}
        proc_a = run(
            [
                "ansible-playbook", "-vvvv",
                "-i", str(inventory), "-i", str(a.local_inventory), "--limit", targets,
                "--vault-password-file", str(password_file),
                "--become-password-file", str(become_file),
                *a.cli_extra,
                "-e", json.dumps(extra_a, ensure_ascii=False),
                str(PLAYBOOKS / "secrets.yml"),
            ],
            {**base_env, "ANSIBLE_LOG_PATH": str(log_a)},
        )  # fmt: skip
        assert proc_a.returncode == 0, proc_a.stdout.decode(errors="replace")[-3000:]
        places["run A stdout (-vvvv)"] = proc_a.stdout
        places["run A stderr"] = proc_a.stderr
        places["run A ANSIBLE_LOG_PATH file"] = log_a.read_bytes()
        display |= {"run A stdout (-vvvv)", "run A stderr", "run A ANSIBLE_LOG_PATH file"}
        (run_a,) = run_ids(ledger)
        stages.done("run A")

        # ---- run B: milepost.ansible.runner.run_checked (ansible-runner), -vvvv, --diff
        b = playbook_files(
            work / "B", "B", canaries, vault_password, password_file,
            careless=False, inventory_vaults=False, become_in_vault=True, via_runner=True,
        )  # fmt: skip
        log_b = work / "B.log"
        extra_b = {**b.extravars, **b.runner_extravars}
        extra_b |= {"secrets_targets": ",".join(hosts), "secrets_expected": b.expected}
        for key, value in {
            **milepost_env,
            "ANSIBLE_VERBOSITY": "4",
            "ANSIBLE_VAULT_PASSWORD_FILE": str(password_file),
            "ANSIBLE_LOG_PATH": str(log_b),
            "ANSIBLE_NOCOLOR": "1",
        }.items():
            monkeypatch.setenv(key, value)
        artifacts: dict[str, bytes] = {}
        command_file: dict[str, bytes] = {}
        discard, forget = runner._discard, runner._forget_command

        def keep_then_discard(private_dir: Path) -> None:
            """Everything the run left in its private data dir, read before removal."""
            for path in sorted(private_dir.rglob("*")):
                if path.is_file():
                    artifacts[path.relative_to(private_dir).as_posix()] = path.read_bytes()
            discard(private_dir)

        def keep_then_forget(artifact_dir: Path) -> None:
            command = artifact_dir / "command"
            if command.is_file():
                command_file["command"] = command.read_bytes()
            forget(artifact_dir)

        monkeypatch.setattr(runner, "_discard", keep_then_discard)
        monkeypatch.setattr(runner, "_forget_command", keep_then_forget)
        capfd.readouterr()
        result_b = runner.run_checked(
            "../tests/reliability/playbooks/secrets.yml",
            inventory=Path(inventory),
            limit=",".join(hosts),
            diff=True,
            extravars=extra_b,
        )
        out_b, err_b = capfd.readouterr()
        assert result_b.succeeded, (result_b, out_b[-3000:])
        assert artifacts, "the private data dir held nothing: was the run made?"
        for name, data in artifacts.items():
            places[f"run B private data dir: {name}"] = data
        places["run B terminal output (-vvvv)"] = (out_b + err_b).encode()
        places["run B ANSIBLE_LOG_PATH file"] = log_b.read_bytes()
        display |= {"run B terminal output (-vvvv)", "run B ANSIBLE_LOG_PATH file"}
        for key in ("ANSIBLE_VERBOSITY", "ANSIBLE_LOG_PATH"):
            monkeypatch.delenv(key)
        run_b = result_b.run_id
        stages.done("run B")

        # ---- runs C and D: careless tasks (no no_log); only Milepost's outputs count
        c = playbook_files(
            work / "C", "C", canaries, vault_password, password_file,
            careless=True, inventory_vaults=True, become_in_vault=False,
        )  # fmt: skip
        careless = [
            "ansible-playbook", "-vvvv",
            "-i", str(inventory), "-i", str(c.local_inventory), "--limit", targets,
            "--vault-password-file", str(password_file),
            *c.cli_extra,
            "-e", json.dumps({**c.extravars, "secrets_targets": targets}, ensure_ascii=False),
            str(PLAYBOOKS / "secrets_careless.yml"),
        ]  # fmt: skip
        proc_c = run([*careless, "--tags", "failures"], base_env)
        assert proc_c.returncode == 2, proc_c.stdout.decode(errors="replace")[-3000:]
        proc_d = run([*careless, "--tags", "warnings"], {**base_env, "MILEPOST_PHASE": "hypercare"})
        assert proc_d.returncode == 0, proc_d.stdout.decode(errors="replace")[-3000:]
        assert b"Skipped '/nonexistent-milepost/" in proc_d.stderr, "no warning was given"
        runs = run_ids(ledger)
        assert runs[:2] == [run_a, run_b] and len(runs) == 4, runs
        run_c, run_d = runs[2:]
        stages.done("runs C and D")

        # ---- the ledger callback ran without an error, and the secrets did travel
        for output in (proc_a.stdout + proc_a.stderr, (out_b + err_b).encode()):
            assert b"Failure using method" not in output
        for output in (proc_c.stdout + proc_c.stderr, proc_d.stdout + proc_d.stderr):
            assert b"Failure using method" not in output
        results_a, results_b = task_results(ledger, run_a), task_results(ledger, run_b)
        for results, where in ((results_a, {*hosts, "localhost"}), (results_b, set(hosts))):
            arrived = [r for r in results if r["task"].endswith("every secret arrived intact")]
            assert {r["host"] for r in arrived if r["status"] == "ok"} == where, arrived
            became = [r for r in results if r["task"].endswith("Check the become worked")]
            assert {r["host"] for r in became if r["status"] == "ok"} == set(hosts), became
        censored = [r for r in results_a + results_b if r["summary"] == "censored (no_log)"]
        assert len(censored) >= 20, censored
        # Run C's failure messages reached the ledger (masked or not: the search tells).
        failed_c = [r for r in task_results(ledger, run_c) if r["status"] == "failed"]
        assert len(failed_c) == 13 * 3, [(r["task"], r["summary"]) for r in failed_c]

        # ---- notices: completed (every run) and glitch (runs C, D), e-mail and webhook
        monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(password_file))
        for run_id in (run_a, run_b, run_c, run_d):
            for dry in ([], ["--dry-run"]):
                out, err = cli(
                    "notify", "completed", "--run-id", run_id, "-i", str(inventory), *dry
                )
                places[f"notify completed {run_id} {' '.join(dry)}".strip()] = out + err
        out, _ = cli("note", "list", "--type", "glitch", "--json")
        glitches = [note["note_id"] for note in json.loads(out)]
        assert len(glitches) == 2, glitches  # run C failed; run D warned in hypercare
        for note_id in glitches:
            out, err = cli("notify", "glitch", "--note", note_id, "-i", str(inventory))
            places[f"notify glitch {note_id}"] = out + err
        assert smtp.messages and all(m["tls"] and m["authenticated"] for m in smtp.messages)
        assert hook.received
        for i, message in enumerate(smtp.messages):
            places[f"notice e-mail {i} as received"] = message["content"]
            places[f"notice e-mail {i} decoded"] = smtp.text(i).encode()
        for i, post in enumerate(hook.received):
            # The POST's path is the configured webhook URL (it holds the token by design).
            body = json.dumps(post["json"], ensure_ascii=False)
            places[f"notice webhook POST {i} body"] = body.encode()
        stages.done("notices")

        # ---- the ledger's exports (every format) and CLI, the dashboard
        for fmt in FORMATS:
            out_file = work / f"export.{fmt}"
            cli("ledger", "export", "--format", fmt, "--out", str(out_file))
            places[f"ledger export --format {fmt} --out FILE"] = out_file.read_bytes()
            out, _ = cli("ledger", "export", "--format", fmt)
            places[f"ledger export --format {fmt} (stdout)"] = out
        places["ledger runs --json"] = cli("ledger", "runs", "--json")[0]
        for run_id in (run_a, run_b, run_c, run_d):
            places[f"ledger show {run_id}"] = b"".join(cli("ledger", "show", run_id))
            places[f"ledger show {run_id} --json"] = cli("ledger", "show", run_id, "--json")[0]
        places["note list --json"] = cli("note", "list", "--json")[0]
        dashboard = work / "dashboard"
        out, err = cli("report", "dashboard", "--out", str(dashboard), "-i", str(inventory))
        places["report dashboard output"] = out + err
        places["dashboard index.html"] = (dashboard / "index.html").read_bytes()
        places["dashboard status.json"] = (dashboard / "status.json").read_bytes()
        cli("ledger", "verify")
        stages.done("ledger, exports, dashboard")

    # The database last, when every record is in (the notices' too); its WAL, if any.
    for path in sorted(ledger.parent.glob(ledger.name + "*")):
        places[f"ledger database file {path.name}"] = path.read_bytes()
    for path in sorted(state.rglob("*")) if state.exists() else ():
        if path.is_file():
            places[f"state dir {path.relative_to(state)}"] = path.read_bytes()

    # ---- every canary, in every form, in every place
    leaks: list[str] = []
    not_counted: list[str] = []
    for place, data in places.items():
        lowered = data.lower()
        for canary in canaries.all:
            if not any(form in data or form.lower() in lowered for form in canary.forms):
                continue
            line = f"{canary.value} ({canary.carrier}; run {canary.run}) in {place}"
            if place in display and canary.display_excuse:
                not_counted.append(f"{line}: {canary.display_excuse}")
            elif place not in display and canary.beyond_promise:
                not_counted.append(f"{line}: beyond the ledger callback's promise")
            else:
                leaks.append(line)
    command = command_file.get("command", b"")
    in_command = [c for c in canaries.all if any(form in command for form in c.forms)]
    stages.done("search")

    print(
        f"\nsecrets: {len(canaries.all)} canaries"
        f" ({sum(not c.beyond_promise for c in canaries.all)} within the promise) x"
        f" {len(places)} places, {sum(len(c.forms) for c in canaries.all)} encoded forms;"
        f" lab hosts {', '.join(hosts)}; runs A {run_a}, B {run_b}, C {run_c}, D {run_d}"
    )
    print(f"  stages: {', '.join(stages.lines)}")
    for place, data in places.items():
        print(f"  checked: {place} ({len(data)} bytes)")
    for line in not_counted:
        print(f"  not counted: {line}")
    print(
        "  ansible-runner's command artifact (written before the playbook starts, deleted"
        f" when it has) held {len(in_command)} canaries while it existed"
    )
    for line in leaks:
        print(f"  LEAK: {line}")
    tally("secrets leaked", len(leaks))
    assert not leaks, "\n".join(leaks)
