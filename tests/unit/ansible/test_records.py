"""The records the ledger callback builds (milepost.ansible.records): which extra vars are
secrets, where a task ran, what a result's keys give, and how a rollback is known (from
result keys, never from a task's title)."""

from milepost.ansible import records


def test_values_under_secret_names_are_secrets_at_any_depth(tmp_path):
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text("service:\n  api_token: tok-998877\n  port: 8443\n")
    found = records.secret_extra_vars(
        [
            "db_password=pw-123456 reason='routine work'",
            '{"vendor": {"credentials": {"user": "u1", "pass": "p1"}}, "note": "hello"}',
            f"@{vars_file}",
        ]
    )
    assert "pw-123456" in found and "tok-998877" in found
    assert {"user": "u1", "pass": "p1"} in found
    assert "routine work" not in found and "hello" not in found and 8443 not in found


def test_ordinary_extra_vars_are_data(tmp_path):
    found = records.secret_extra_vars(
        ["preflight_override_reason='CVE fix approved'", "app_update_versions={}", "@missing"]
    )
    assert found == []


def test_extra_vars_are_named_and_only_our_own_values_kept():
    values = records.extra_var_values(
        {
            "milepost_phase": "hypercare",
            "app_update_versions": {"ruc-x": "1.0"},
            "api_token": "tok-1",
            "colour": "blue",
            "preflight_override_reason": "x" * 900,
        },
        ("milepost_", "app_update_", "preflight_"),
        lambda text: text.replace("hypercare", "[masked]"),
    )
    assert values["milepost_phase"] == "[masked]"
    assert values["app_update_versions"] == '{"ruc-x": "1.0"}'
    assert values["api_token"] == "********"
    assert values["colour"] == records.NOT_RECORDED
    assert len(values["preflight_override_reason"]) == records.MAX_EXTRA_VAR


def test_where_a_task_ran():
    assert records.runs_on("ansible.builtin.set_fact", None, "ok") == "controller"
    assert records.runs_on("milepost_apt_pin", "localhost", "changed") == "controller"
    assert records.runs_on("milepost_apt_pin", None, "changed") == "host"
    assert records.runs_on("milepost_apt_pin", None, "skipped") is None


def test_a_rollback_is_known_from_result_keys():
    restore = {"milepost_rollback": True, "milepost_package_changes": []}
    assert records.rolled_back(restore, "changed")
    assert not records.rolled_back(restore, "ok")  # nothing needed restoring
    gate = {"milepost_health_gate": {"result": "rolled_back"}}
    assert records.rolled_back(gate, "failed")
    assert not records.rolled_back({"milepost_health_gate": {"result": "passed"}}, "changed")
    titled = {"changed": True}  # a title never says it
    assert not records.rolled_back(titled, "changed")
    record = records.task_record("r1", "pay-01", "any title at all", "changed", restore)
    assert record["body"]["rollback"] is True
    plain = records.task_record("r1", "pay-01", "Roll back", "changed", {})
    assert "rollback" not in plain["body"]


def test_where_a_host_is_travels_as_a_fact_not_a_title():
    facts = {"ansible_facts": {"milepost_progress": "verified", "health_gate_result": "passed"}}
    record = records.task_record("r1", "pay-01", "any title at all", "ok", facts)
    assert record["body"]["progress"] == "verified"
    assert "progress" not in records.task_record("r1", "pay-01", "t", "failed", facts)["body"]
    odd = {"ansible_facts": {"milepost_progress": "done, trust me"}}
    assert "progress" not in records.task_record("r1", "pay-01", "t", "ok", odd)["body"]
    titled = records.task_record("r1", "pay-01", "Pass the health gate", "ok", {})
    assert "progress" not in titled["body"]


def test_result_keys_give_records_of_their_own():
    result = {
        "milepost_package_changes": [
            {"package": "ruc-x", "from_version": "1.0", "to_version": "1.1"}
        ],
        "ansible_facts": {
            "packages": {"ruc-x": [{"version": "1.1"}]},
            "milepost_probe": {"free_mb": 900, "note": "secret-1"},
        },
        "milepost_reboot_required": {"packages": ["libc6"]},
        "milepost_interface_results": [{"name": "api", "messages": ["secret-1 down"]}],
        "milepost_drift": {"drifted": []},
        "milepost_batch": {"play": "p", "number": 1, "hosts": ["pay-01"]},
        "milepost_overrides": [{"override": "downgrade", "package": "ruc-x"}],
    }

    def scrub(text: str) -> str:
        return text.replace("secret-1", "****")

    kinds = [
        (r["kind"], r["host"])
        for r in records.result_records(
            "r1", "pay-01", result, status="changed", scrub=scrub, check_mode=False, operator="op"
        )
    ]
    assert kinds == [
        ("package_change", "pay-01"),
        ("package_facts", "pay-01"),
        ("reboot_required", "pay-01"),
        ("interface_check", None),
        ("host_probe", "pay-01"),
        ("drift_check", "pay-01"),
        ("batch_started", None),
        ("safety_override", "pay-01"),
    ]
    built = records.result_records(
        "r1", "pay-01", result, status="changed", scrub=scrub, check_mode=False, operator="op"
    )
    assert built[3]["body"]["messages"] == ["**** down"]
    assert built[4]["body"]["note"] == "****"
    assert built[-1]["body"]["operator"] == "op"
    checking = records.result_records(
        "r1", "pay-01", result, status="changed", scrub=scrub, check_mode=True, operator="op"
    )
    assert {r["kind"] for r in checking} & {"package_change", "safety_override"} == set()
    failed = records.result_records(
        "r1", "pay-01", result, status="failed", scrub=scrub, check_mode=False, operator="op"
    )
    assert [r["kind"] for r in failed] == ["package_change"]


def test_who_ran_it_and_how_that_is_known():
    awx = {"awx_job_id": 4812, "awx_job_template_name": "Maintain pay", "awx_user_name": "dana",
           "milepost_plan": {"plan_id": "P-1", "author": "a@x"}}  # fmt: skip
    assert records.run_identity(awx, "root") == (
        "dana",
        {"source": "awx", "job_id": "4812", "job_template": "Maintain pay", "user": "dana"},
    )
    planned = {"milepost_plan": {"plan_id": "P-1", "author": "alice@agency.example"}}
    assert records.run_identity(planned, "root") == (
        "alice@agency.example",
        {"source": "change plan", "plan_id": "P-1"},
    )
    for given in ({}, {"milepost_plan": {"plan_id": "P-1"}}, {"awx_job_id": ""}):
        assert records.run_identity(given, "root") == ("root", {"source": "self-declared"})
