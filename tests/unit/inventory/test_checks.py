"""`milepost maintain` checks the inventory before any host is touched: bad input is one
line on stderr and exit 2, and nothing runs (the ledger is never opened)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from milepost.errors import UserError
from milepost.inventory.checks import check_inventory, inventory_problems

ROOT = Path(__file__).resolve().parents[3]

VALID_HOSTS = """\
all:
  children:
    ruc:
      children:
        payment_gateway:
          vars:
            milepost_vendor: harbor_payments
          hosts:
            pay-01.example.invalid:
            pay-02.example.invalid:
        reporting:
          vars:
            milepost_vendor: ledgerline_analytics
          hosts:
            report-01.example.invalid:
"""

VALID_GROUP_VARS = {
    "payment_gateway": """\
        milepost_window:
          cron: "0 2 * * 0"
          duration_minutes: 120
          timezone: America/Los_Angeles
        milepost_blackouts:
          - 2027-01-31
          - {start: "2026-12-28", end: "2027-01-04"}
        app_update_versions:
          ruc-payment-gateway: "2.4.0"
        """,
    "reporting": """\
        app_update_versions:
          ruc-reporting: "1:5.1.0-2~deb12u1"
        """,
    "all": """\
        milepost_interfaces:
          - name: payments-api
            vendor: harbor_payments
            kind: https
            url: https://api.example.invalid/health
          - name: file-exchange
            vendor: relay_file_exchange
            kind: sftp
            host: sftp.example.invalid
            username: ruc
            private_key_file: /nonexistent/key
            known_hosts_file: /nonexistent/known_hosts
            remote_dir: /inbound
        """,
}


def write_inventory(tmp_path: Path, hosts: str = VALID_HOSTS, **group_vars: str | None) -> Path:
    """An inventory directory: hosts.yml and group_vars/<group>.yml (None drops a file)."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(hosts)
    for group, text in {**VALID_GROUP_VARS, **group_vars}.items():
        if text is not None:
            (inventory / "group_vars" / f"{group}.yml").write_text(textwrap.dedent(text))
    return inventory


def run_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a run whose ledger and state are in tmp_path."""
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "MILEPOST_ROOT": str(ROOT),
        "MILEPOST_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        "MILEPOST_STATE_DIR": str(tmp_path / "state"),
    }


def maintain(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = run_env(tmp_path)
    return subprocess.run(
        [sys.executable, "-m", "milepost.cli.main", "maintain", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def assert_refused(tmp_path: Path, proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("milepost: error: ")
    for word in words:
        assert word in lines[0]
    assert proc.stdout == "", "the playbook must not have started"
    assert not (tmp_path / "ledger.sqlite").exists(), "a run was started"
    return lines[0]


@pytest.fixture(autouse=True)
def _checkout(monkeypatch):
    monkeypatch.setenv("MILEPOST_ROOT", str(ROOT))


def test_a_valid_inventory_passes_with_its_ruc_hosts(tmp_path):
    problems, hosts = inventory_problems([write_inventory(tmp_path)])
    assert problems == []
    assert hosts == [
        "pay-01.example.invalid",
        "pay-02.example.invalid",
        "report-01.example.invalid",
    ]


def test_limit_narrows_the_hosts_and_the_example_inventory_passes(tmp_path):
    checked = check_inventory([write_inventory(tmp_path)], limit="report-01.example.invalid")
    assert checked.hosts == ("report-01.example.invalid",)
    assert inventory_problems([ROOT / "inventory" / "example"])[0] == []


def test_every_problem_is_named_in_one_line(tmp_path):
    inventory = write_inventory(
        tmp_path,
        hosts=VALID_HOSTS.replace("            milepost_vendor: ledgerline_analytics\n", ""),
        payment_gateway='app_update_versions: {"ruc-pay;rm -rf /": "2.4.0"}\n',
    )
    with pytest.raises(UserError) as refused:
        check_inventory([inventory])
    message = str(refused.value)
    assert "\n" not in message
    assert "report-01.example.invalid: no milepost_vendor" in message
    assert "'ruc-pay;rm -rf /' in app_update_versions is not a Debian package name" in message


@pytest.mark.parametrize(
    ("group_vars", "words"),
    [
        pytest.param(
            {"payment_gateway": 'app_update_versions: {"ruc-pay;rm -rf /": "2.4.0"}\n'},
            ["'ruc-pay;rm -rf /'", "not a Debian package name"],
            id="shell-metacharacters-in-package-name",
        ),
        pytest.param(
            {"payment_gateway": 'app_update_versions: {"ruc-payment-gateway": "$(reboot)"}\n'},
            ["'$(reboot)'", "ruc-payment-gateway", "not a Debian version"],
            id="malformed-version",
        ),
        pytest.param(
            {"payment_gateway": "app_update_versions: {ruc-payment-gateway: latest}\n"},
            ["'latest'", "not a Debian version"],
            id="unknown-version",
        ),
        pytest.param(
            {"payment_gateway": "app_update_versions: {ruc-payment-gateway: null}\n"},
            ["None", "not a Debian version"],
            id="missing-version",
        ),
        pytest.param(
            {"payment_gateway": "app_update_versions: [ruc-payment-gateway]\n"},
            ["app_update_versions must map package names to versions"],
            id="pins-not-a-mapping",
        ),
        pytest.param(
            {"all": "milepost_interfaces:\n  - {name: payments-api, vendor: x, kind: https}\n"},
            ["interface payments-api has neither a url", "nor a host"],
            id="interface-without-url",
        ),
        pytest.param(
            {
                "payment_gateway": "milepost_window:\n  cron: '61 * * * *'\n"
                "  duration_minutes: 60\n  timezone: UTC\n"
            },
            ["maintenance window of payment_gateway", "'61 * * * *'", "is not valid"],
            id="malformed-window-cron",
        ),
        pytest.param(
            {
                "payment_gateway": "milepost_window:\n  cron: '0 2 * * 0'\n"
                "  duration_minutes: 60\n  timezone: Mars/Olympus_Mons\n"
            },
            ["maintenance window of payment_gateway", "unknown time zone"],
            id="unknown-time-zone",
        ),
        pytest.param(
            {"reporting": "milepost_blackouts: ['2026-02-30']\n"},
            ["blackouts of reporting", "'2026-02-30'", "not an ISO date"],
            id="malformed-blackout",
        ),
    ],
)
def test_bad_inventory_is_one_line_and_exit_2(tmp_path, group_vars, words):
    inventory = write_inventory(tmp_path, **group_vars)
    assert_refused(tmp_path, maintain(tmp_path, "-i", str(inventory)), *words)


def test_a_host_without_a_vendor_is_refused(tmp_path):
    hosts = VALID_HOSTS.replace("            milepost_vendor: ledgerline_analytics\n", "")
    inventory = write_inventory(tmp_path, hosts=hosts)
    line = assert_refused(tmp_path, maintain(tmp_path, "-i", str(inventory)))
    assert "report-01.example.invalid: no milepost_vendor" in line
    assert "pay-01" not in line


def test_a_missing_inventory_is_refused_not_replaced_by_localhost(tmp_path):
    missing = tmp_path / "no-such-inventory.yml"
    assert_refused(tmp_path, maintain(tmp_path, "-i", str(missing)), str(missing), "does not exist")


@pytest.mark.parametrize(
    "hosts",
    [
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n",
        "all:\n  children:\n    web:\n      hosts:\n        www-01.example.invalid:\n",
        "all:\n  children:\n    ruc:\n      children:\n        reporting:\n",
    ],
    ids=["localhost-only", "no-ruc-group", "empty-ruc-group"],
)
def test_an_inventory_without_ruc_hosts_is_refused(tmp_path, hosts):
    inventory = write_inventory(tmp_path, hosts=hosts, payment_gateway=None, reporting=None)
    assert_refused(tmp_path, maintain(tmp_path, "-i", str(inventory)), "no hosts in group ruc")


def test_an_unparsable_inventory_says_why(tmp_path):
    broken = tmp_path / "hosts.yml"
    broken.write_text("all:\n  children:\n    ruc: [\n")
    assert_refused(tmp_path, maintain(tmp_path, "-i", str(broken)), "could not be parsed")


def test_a_limit_that_matches_no_ruc_host_is_refused(tmp_path):
    inventory = write_inventory(tmp_path)
    proc = maintain(tmp_path, "-i", str(inventory), "--limit", "nosuch-*")
    assert_refused(tmp_path, proc, "--limit nosuch-* matches no host of group ruc")


def test_extra_vars_are_checked_as_the_run_would_see_them(tmp_path):
    inventory = write_inventory(tmp_path)
    proc = maintain(tmp_path, "-i", str(inventory), "-e", "app_update_versions=ruc-reporting")
    assert_refused(tmp_path, proc, "app_update_versions must map package names to versions")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-e", "os_patch_scope=weekly"], ["os_patch_scope must be all or security, not 'weekly'"]),
        (["-e", "os_patch_reboot=always"], ["os_patch_reboot must be never or if_required"]),
    ],
)
def test_unknown_os_patching_options_are_refused(tmp_path, args, words):
    inventory = write_inventory(tmp_path)
    assert_refused(tmp_path, maintain(tmp_path, "-i", str(inventory), *args), *words)


def test_os_patching_options_in_group_vars_are_checked_per_host(tmp_path):
    inventory = write_inventory(
        tmp_path, reporting="os_patch_scope: everything\napp_update_versions: {}\n"
    )
    problems, _hosts = inventory_problems([inventory])
    assert problems == [
        "report-01.example.invalid: os_patch_scope must be all or security, not 'everything'"
    ]
    assert inventory_problems([inventory], extra_vars={"os_patch_scope": "security"})[0] == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--override-window"], ["--override-window needs --reason"]),
        (["--override-window", "--reason", "   "], ["--override-window needs --reason"]),
        (["--reason", "CAB 4711"], ["--reason is only used with --override-window"]),
        (["-e", "no-equals-sign"], ["is not KEY=VALUE"]),
        (["-e", "bad key=1"], ["is not KEY=VALUE"]),
        (["-e", "preflight_override_window=true"], ["--override-window --reason TEXT"]),
        (["--no-such-option"], ["--no-such-option"]),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path, args, words):
    inventory = write_inventory(tmp_path)
    assert_refused(tmp_path, maintain(tmp_path, "-i", str(inventory), *args), *words)


def test_the_help_documents_the_exit_codes(tmp_path):
    proc = maintain(tmp_path, "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "Exit codes: 0 the run succeeded; 1 the run failed" in text
    assert "2 bad input" in text


def write_repository(tmp_path: Path) -> str:
    """A file: repository offering ruc-payment-gateway 2.3.0 and 2.4.0 and ruc-reporting."""
    from milepost.inventory.package_index import controller_arch

    index = tmp_path / "repo" / "dists" / "bookworm" / "main" / f"binary-{controller_arch()}"
    index.mkdir(parents=True)
    (index / "Packages").write_text(
        "Package: ruc-payment-gateway\nVersion: 2.3.0\nArchitecture: all\n\n"
        "Package: ruc-payment-gateway\nVersion: 2.4.0\nArchitecture: all\n\n"
        "Package: ruc-reporting\nVersion: 1:5.1.0-2~deb12u1\nArchitecture: all\n"
    )
    return f"file:{tmp_path / 'repo'}"


def test_pins_are_checked_against_the_package_source_before_any_host(tmp_path):
    source = f"ruc_apt_source_uris: ['{write_repository(tmp_path)}']\n"
    good = write_inventory(tmp_path / "good", all=VALID_GROUP_VARS["all"] + source)
    assert inventory_problems([good])[0] == []

    bad = write_inventory(
        tmp_path / "bad",
        all=VALID_GROUP_VARS["all"] + source,
        payment_gateway='app_update_versions:\n  ruc-payment-gateway: "9.9.9"\n',
        reporting='app_update_versions:\n  ruc-reportin: "5.1.0"\n',
    )
    problems, _ = inventory_problems([bad])
    assert problems == [
        "pay-01.example.invalid, pay-02.example.invalid: version 9.9.9 of ruc-payment-gateway"
        " (app_update_versions) is not in the package source, which has 2.3.0, 2.4.0",
        "report-01.example.invalid: ruc-reportin (app_update_versions) is not in the package"
        " source",
    ]


def test_an_unreadable_package_source_is_a_warning_not_an_error(tmp_path, capsys):
    source = f"ruc_apt_source_uris: ['file:{tmp_path / 'nowhere'}']\n"
    inventory = write_inventory(tmp_path, all=VALID_GROUP_VARS["all"] + source)
    assert inventory_problems([inventory])[0] == []
    warning = capsys.readouterr().err
    assert warning.startswith("milepost: warning: pinned versions not checked before the run")
    assert len(warning.strip().splitlines()) == 1


# ------------------------------------------------------------------ baseline variables

#: Hosts nothing listens for: a run that got past the checks would fail to reach them.
UNREACHABLE_HOSTS = VALID_HOSTS.replace(
    "example.invalid:\n",
    "example.invalid:\n              ansible_host: 127.0.0.1\n              ansible_port: 1\n",
)


def group_vars_with(group: str, text: str) -> str:
    """The group's valid variables and text (write_inventory dedents each file)."""
    return textwrap.dedent(VALID_GROUP_VARS[group]) + text


VALID_BASELINE = """\
baseline_files:
  - path: /etc/ruc/ruc-reporting.conf
    content: "listen = 127.0.0.1\\n"
    mode: "0640"
    restart: [ruc-reporting]
  - path: /etc/motd
    content: "{{ ansible_facts.hostname | default('') }} is managed by Milepost\\n"
baseline_services:
  - {name: ruc-reporting, state: started, enabled: true}
baseline_packages_approved: ["ruc-*", "openssh-*"]
baseline_sysctl: {vm.swappiness: 10}
baseline_sysctl_apply: "{{ ansible_virtualization_type != 'docker' }}"
baseline_users:
  - {name: ruc, shell: /usr/sbin/nologin, system: true, groups: [adm]}
baseline_sudoers:
  - {name: ruc, content: "ruc ALL=(root) NOPASSWD: /usr/bin/systemctl restart ruc-*"}
baseline_sshd_settings: {PasswordAuthentication: "no", MaxAuthTries: 3}
baseline_diff_redact: ['(?i)db_password\\s*=\\s*\\S+']
"""


def test_a_valid_baseline_passes_even_where_it_needs_facts(tmp_path):
    inventory = write_inventory(tmp_path, reporting=group_vars_with("reporting", VALID_BASELINE))
    assert inventory_problems([inventory]) == (
        [],
        ["pay-01.example.invalid", "pay-02.example.invalid", "report-01.example.invalid"],
    )


@pytest.mark.parametrize(
    "group_vars",
    sorted((ROOT / "inventory" / "lab" / "group_vars").glob("*.yml")),
    ids=lambda path: path.stem,
)
def test_the_lab_baselines_pass(group_vars):
    import yaml

    from milepost.inventory.baseline_checks import _baseline_problems

    lab = yaml.safe_load(group_vars.read_text()) or {}
    baseline = {k: v for k, v in lab.items() if k.startswith("baseline_")}
    assert baseline, f"{group_vars.name} declares a baseline"
    assert list(_baseline_problems(baseline)) == []


@pytest.mark.parametrize(
    ("baseline", "expected"),
    [
        pytest.param(
            "baseline_servces: []\n",
            "unknown baseline variable baseline_servces (roles/baseline/meta/argument_specs.yml):"
            " did you mean baseline_services?",
            id="unknown-variable",
        ),
        pytest.param(
            'baseline_flies: "{{ ansible_facts.nothing }}"\n',
            "unknown baseline variable baseline_flies (roles/baseline/meta/argument_specs.yml):"
            " did you mean baseline_files?",
            id="unknown-variable-needing-facts",
        ),
        pytest.param(
            "baseline_services:\n  - {name: ssh, sate: started}\n",
            "baseline_services has unknown key sate (known keys: enabled, name, state)",
            id="unknown-key",
        ),
        pytest.param(
            "baseline_users:\n  - {name: ruc, shel: /bin/sh, homedir: /srv}\n",
            "baseline_users has unknown keys homedir, shel (known keys: append, comment, groups,"
            " home, name, shell, state, system)",
            id="unknown-keys",
        ),
        pytest.param(
            "baseline_services:\n  - {name: ssh, state: running}\n",
            "baseline: value of state must be one of: started, stopped, got: running found in"
            " baseline_services",
            id="wrong-choice",
        ),
        pytest.param(
            "baseline_files:\n  - {content: x}\n",
            "baseline: missing required arguments: path found in baseline_files",
            id="missing-required-key",
        ),
        pytest.param(
            "baseline_services: ssh\n",
            "baseline_services must be a list, not str",
            id="string-for-a-list",
        ),
        pytest.param(
            "baseline_services: [ssh]\n",
            "baseline_services[0] must be a mapping, not str",
            id="string-for-an-entry",
        ),
        pytest.param(
            "baseline_sysctl: vm.swappiness=10\n",
            "baseline_sysctl must be a mapping, not str",
            id="string-for-a-mapping",
        ),
        pytest.param(
            "baseline_sshd_settings:\n",
            "baseline_sshd_settings must be a mapping, not empty",
            id="empty-mapping",
        ),
        pytest.param(
            "baseline_sshd_settings: {PasswordAuthentication: no}\n",
            "baseline_sshd_settings: PasswordAuthentication is false, which sshd does not read:"
            " quote it ('no')",
            id="unquoted-sshd-boolean",
        ),
        pytest.param(
            "baseline_check: maybe\n",
            "baseline: argument 'baseline_check' is of type str and we were unable to convert"
            " to bool",
            id="wrong-type",
        ),
        pytest.param(
            "baseline_diff_redact: ['ok', '(unclosed']\n",
            "baseline_diff_redact: '(unclosed' is not a regular expression (missing ),"
            " unterminated subpattern at position 0)",
            id="bad-redaction-pattern",
        ),
        pytest.param(
            "baseline_diff_redact: 'secret-\\d+'\n",
            "baseline_diff_redact must be a list, not str",
            id="redaction-not-a-list",
        ),
        pytest.param(
            "baseline_diff_redact: [12345]\n",
            "baseline_diff_redact[0] must be a regular expression (a string), not int",
            id="redaction-not-a-string",
        ),
    ],
)
def test_each_bad_baseline_variable_is_one_line_naming_what_to_fix(tmp_path, baseline, expected):
    inventory = write_inventory(tmp_path, reporting=group_vars_with("reporting", baseline))
    problems, _hosts = inventory_problems([inventory])
    assert len(problems) == 1, problems
    assert problems[0].startswith("report-01.example.invalid: " + expected), problems[0]
    assert "\n" not in problems[0]


def test_baseline_problems_name_every_host_that_has_them(tmp_path):
    inventory = write_inventory(
        tmp_path,
        payment_gateway=group_vars_with("payment_gateway", "baseline_servces: []\n"),
        reporting=group_vars_with("reporting", "baseline_services: [{name: x, enabled: 2}]\n"),
    )
    problems, _hosts = inventory_problems([inventory])
    assert len(problems) == 2, problems
    assert problems[0].startswith(
        "pay-01.example.invalid, pay-02.example.invalid: unknown baseline variable baseline_servces"
    )
    assert problems[1].startswith("report-01.example.invalid: baseline: ")
    assert "enabled" in problems[1] and "baseline_services" in problems[1]


def test_baseline_variables_from_extra_vars_are_checked(tmp_path):
    inventory = write_inventory(tmp_path)
    problems, _ = inventory_problems([inventory], extra_vars={"baseline_only": "file:/etc/motd"})
    assert problems == [
        "pay-01.example.invalid, pay-02.example.invalid, report-01.example.invalid:"
        " baseline_only must be a list, not str"
    ]
    assert (
        inventory_problems([inventory], extra_vars={"baseline_only": ["file:/etc/motd"]})[0] == []
    )


def test_drift_check_refuses_a_bad_baseline_before_any_host(tmp_path, monkeypatch, capsys):
    from milepost.cli.main import main

    monkeypatch.setenv("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    monkeypatch.setenv("MILEPOST_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "state"))
    inventory = write_inventory(
        tmp_path,
        hosts=UNREACHABLE_HOSTS,
        payment_gateway=group_vars_with(
            "payment_gateway",
            "baseline_services:\n  - {name: ruc-payment-gateway, sate: started}\n",
        ),
    )
    code = main(["drift", "check", "-i", str(inventory)])
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines == [
        "milepost: error: pay-01.example.invalid, pay-02.example.invalid: baseline_services"
        " has unknown key sate (known keys: enabled, name, state)"
    ]
    assert out == "", "the playbook must not have started"
    assert not (tmp_path / "ledger.sqlite").exists(), "a run was started"
    assert not (tmp_path / "state").exists(), "a run was started"


def test_the_phase_is_read_from_the_inventory_and_checked(tmp_path):
    from milepost.inventory.reading import inventory_phase

    def inventory(name: str, all_vars: str | None) -> Path:
        # A directory per case: Ansible caches the group_vars files it found per path.
        root = tmp_path / name
        (root / "group_vars").mkdir(parents=True)
        (root / "hosts.yml").write_text(
            "all:\n  children:\n    ruc:\n      hosts:\n        pay-01: {ansible_port: 1}\n"
        )
        if all_vars is not None:
            (root / "group_vars" / "all.yml").write_text(all_vars)
        return root

    assert inventory_phase([inventory("none", None)]) == "normal"
    assert inventory_phase([inventory("hyper", "milepost_phase: hypercare\n")]) == "hypercare"
    with pytest.raises(UserError, match="is not one of normal, hypercare"):
        inventory_phase([inventory("bad", "milepost_phase: launch\n")])


def encrypt(path: Path, password: str) -> None:
    """Encrypt a file in place as `ansible-vault encrypt` does."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    lib = VaultLib([("default", VaultSecret(password.encode()))])
    path.write_bytes(lib.encrypt(path.read_text()))


def problems_in_a_fresh_process(inventory: Path, **env: str) -> subprocess.CompletedProcess:
    """inventory_problems in a new process: Ansible reads its vault settings once."""
    code = (
        "from pathlib import Path; from milepost.inventory.checks import inventory_problems;"
        f" problems, hosts = inventory_problems([Path({str(inventory)!r})]);"
        " print('\\n'.join(problems) or 'hosts: ' + ' '.join(hosts))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "MILEPOST_ROOT": str(ROOT), **env},
        timeout=120,
    )


def test_vault_encrypted_inventory_files_are_read_with_the_configured_password(tmp_path):
    """A group_vars file encrypted with ansible-vault is read with the password file
    ansible-playbook would use (ANSIBLE_VAULT_PASSWORD_FILE): its values are checked like
    any other; without a password the check says what is missing in one line."""
    password_file = tmp_path / "vault-pass"
    password_file.write_text("correct horse\n")
    window = VALID_GROUP_VARS["payment_gateway"]
    inventory = write_inventory(
        tmp_path, payment_gateway=window.replace("duration_minutes: 120", "duration_minutes: -5")
    )
    encrypt(inventory / "group_vars" / "payment_gateway.yml", "correct horse")
    with_password = {"ANSIBLE_VAULT_PASSWORD_FILE": str(password_file)}

    found = problems_in_a_fresh_process(inventory, **with_password)
    assert "duration_minutes" in found.stdout, found.stdout + found.stderr

    (inventory / "group_vars" / "payment_gateway.yml").write_text(textwrap.dedent(window))
    encrypt(inventory / "group_vars" / "payment_gateway.yml", "correct horse")
    found = problems_in_a_fresh_process(inventory, **with_password)
    assert found.stdout.split() == [
        "hosts:",
        "pay-01.example.invalid",
        "pay-02.example.invalid",
        "report-01.example.invalid",
    ], found.stdout + found.stderr

    found = problems_in_a_fresh_process(inventory)
    lines = found.stdout.splitlines()
    assert len(lines) == 1 and "ANSIBLE_VAULT_PASSWORD_FILE" in lines[0], found


# ---------------------------------------------------------------- safety (docs/SAFETY.md)


@pytest.mark.parametrize(
    ("args", "max_unavailable", "words"),
    [
        (["--allow-downgrade", "openssl"], None,
         ["--allow-downgrade openssl: not a package this run pins",
          "(ruc-payment-gateway, ruc-reporting)"]),
        (["--allow-downgrade", "Not;A;Name"], None, ["is not a Debian package name"]),
        (["-e", "preflight_window_now=2026-01-01T00:00:00Z"], None,
         ["preflight_window_now are for tests", "milepost_environment: lab"]),
        (["-e", "preflight_lock_path=/tmp/elsewhere"], None, ["preflight_lock_path are for tests"]),
        (["-e", "milepost_environment=lab"], None, ["-e milepost_environment is not an extra var"]),
        ([], "-1", ["milepost_max_unavailable of the host's groups must be a whole number >= 1"]),
        ([], "two", ["milepost_max_unavailable"]),
    ],
)  # fmt: skip
def test_safety_bad_input_is_refused_before_any_host(tmp_path, args, max_unavailable, words):
    extra = f"milepost_max_unavailable: {max_unavailable}\n" if max_unavailable else ""
    base = textwrap.dedent(VALID_GROUP_VARS["all"]).rstrip() + "\n"
    inventory = write_inventory(tmp_path, all=base + extra)
    assert_refused(tmp_path, maintain(tmp_path, "-i", str(inventory), *args), *words)


def test_test_only_variables_pass_against_the_lab_inventory(tmp_path):
    inventory = write_inventory(
        tmp_path,
        all=textwrap.dedent(VALID_GROUP_VARS["all"]).rstrip()
        + "\n"
        + "milepost_environment: lab\n",
    )
    checked = check_inventory(
        [inventory], extra_vars={"preflight_window_now": "2026-01-01T00:00:00Z"}
    )
    assert "pay-01.example.invalid" in checked.hosts


def first_play(tmp_path: Path, inventory: Path, playbook: Path, *args: str):
    """A plain ansible-playbook run (as AWX runs it): the checks of the first play."""
    env = run_env(tmp_path)
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
         str(playbook), *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip


def test_the_first_play_refuses_what_the_command_refuses_with_the_same_words(tmp_path):
    inventory = write_inventory(
        tmp_path,
        hosts=VALID_HOSTS.replace("            milepost_vendor: ledgerline_analytics\n", ""),
        payment_gateway='app_update_versions: {"ruc-pay;rm -rf /": "2.4.0"}\n',
        all="milepost_interfaces:\n  - {name: payments-api, vendor: x, kind: https}\n",
    )
    problems, _ = inventory_problems([inventory], extra_vars={"os_patch_reboot": "always"})
    proc = first_play(
        tmp_path, inventory, ROOT / "playbooks" / "maintain.yml", "-e", "os_patch_reboot=always"
    )
    assert proc.returncode != 0
    for expected in [
        "report-01.example.invalid: no milepost_vendor",
        "'ruc-pay;rm -rf /' in app_update_versions is not a Debian package name",
        "interface payments-api has neither a url (https) nor a host (sftp)",
        "os_patch_reboot must be never or if_required, not 'always'",
    ]:
        assert any(expected in line for line in problems)
        assert expected in proc.stdout, proc.stdout
    assert "Inventory: " in proc.stdout
    # The checks run on the controller and stop the run: no host play started.
    assert "PLAY [Check every RUC host before maintenance]" not in proc.stdout


def test_the_first_play_passes_a_valid_inventory(tmp_path):
    inventory = write_inventory(tmp_path)
    playbook = tmp_path / "check.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        "    - milepost_inventory_check:\n"
    )
    proc = first_play(tmp_path, inventory, playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 RUC hosts checked" in proc.stdout or "ok: [localhost]" in proc.stdout


def test_an_empty_inventory_path_is_refused_not_read_as_the_current_directory(tmp_path):
    (tmp_path / "hosts.yml").write_text(VALID_HOSTS)  # what the current directory would give
    assert_refused(tmp_path, maintain(tmp_path, "-i", ""), "--inventory", "is empty")
