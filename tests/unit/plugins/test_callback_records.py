"""What the ledger callback records from a task result: the probe of a host as its
host_probe record, and Ansible's implicit argument check of a role only when it fails."""

import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "plugins" / "callback"))

import maintenance_ledger  # noqa: E402

from milepost.ansible.redaction import DEFAULT_PATTERNS, Redactor  # noqa: E402


class _Recorder:
    run_id = "run-1"
    interrupted = False

    def __init__(self):
        self.records = []

    def put(self, record):
        self.records.append(record)


def _callback():
    callback = maintenance_ledger.CallbackModule()
    callback._recorder = _Recorder()
    callback._redactor = Redactor(list(DEFAULT_PATTERNS))
    return callback


def _result(action, name, res, host="pay-01", delegate_to=None):
    task = SimpleNamespace(
        _uuid="t-" + name,
        action=action,
        delegate_to=delegate_to,
        no_log=False,
        _role=None,
        get_name=lambda: name,
        get_vars=lambda: {},
    )
    return SimpleNamespace(_host=SimpleNamespace(get_name=lambda: host), _task=task, _result=res)


def _kinds(callback):
    return [(r["kind"], r.get("host")) for r in callback._recorder.records]


def test_a_passing_argument_check_is_not_recorded_a_failing_one_is():
    callback = _callback()
    check = "Validating arguments against arg spec 'main' - Check a host"
    callback._record(_result("ansible.builtin.validate_argument_spec", check, {}), "ok")
    assert callback._recorder.records == []
    failed = {"msg": "preflight_min_free_mb: not an int"}
    callback._record(_result("ansible.builtin.validate_argument_spec", check, failed), "failed")
    assert _kinds(callback) == [("task_result", "pay-01")]


def test_the_probe_of_a_host_is_its_host_probe_record_with_secrets_masked():
    callback = _callback()
    probe = {
        "dpkg": {"audit": [], "half_installed": [], "lock_holders": []},
        "services": {"ruc-payment-gateway": {"healthy": False, "detail": "password=hunter2"}},
        "free_mb": {"/": 900},
    }
    res = {"ansible_facts": {"milepost_probe": probe}, "changed": False}
    callback._record(_result("milepost_probe", "AUDIT | Probe the host", res), "ok")
    assert _kinds(callback) == [("task_result", "pay-01"), ("host_probe", "pay-01")]
    body = callback._recorder.records[1]["body"]
    assert body["free_mb"] == {"/": 900}
    assert "hunter2" not in str(body)


def test_each_result_says_whether_a_module_ran_on_the_host():
    callback = _callback()
    callback._record(_result("milepost_probe", "probe", {}), "ok")
    callback._record(_result("ansible.builtin.set_fact", "fact", {}), "ok")
    callback._record(_result("milepost_window_check", "window", {}), "ok")
    callback._record(_result("ansible.builtin.command", "qc", {}, delegate_to="localhost"), "ok")
    callback._record(_result("milepost_os_patch", "patch", {}), "skipped")
    callback._record(_result("ansible.builtin.service", "restart", {}), "changed")
    ran = [r["body"].get("runs_on") for r in callback._recorder.records]
    assert ran == ["host", "controller", "controller", "controller", None, "host"]


def test_a_failed_change_records_what_it_changed_and_its_rollback():
    callback = _callback()
    res = {
        "failed": True,
        "msg": "Health gate: rolled_back after a failed change (...)",
        "milepost_package_changes": [
            {"package": "ruc-payment-gateway", "from_version": "2.3.0", "to_version": "2.3.1"},
            {"package": "ruc-payment-gateway", "from_version": "2.3.1", "to_version": "2.3.0"},
        ],
        "milepost_health_gate": {"result": "rolled_back"},
    }
    callback._record(_result("milepost_apt_pin", "PATCH | Install", res), "failed")
    changes = [r["body"] for r in callback._recorder.records if r["kind"] == "package_change"]
    assert [(c["from_version"], c["to_version"]) for c in changes] == [
        ("2.3.0", "2.3.1"),
        ("2.3.1", "2.3.0"),
    ]
    assert callback._rolled_back == {"pay-01"}
