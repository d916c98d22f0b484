"""The milepost_drift_report action's report (plugins/action/milepost_drift_report.py),
built from arguments shaped as the baseline role passes them (roles/baseline/tasks/main.yml,
its last task): per-item results index-aligned with resource names, probes, slurp results."""

import base64

import pytest
from conftest import load_module

plugin = load_module("milepost_drift_report", "action")
build = plugin.build
ReportError = plugin.ReportError

CONF = "file:/etc/ruc/ruc-payment-gateway.conf"
MOTD = "file:/etc/motd"


def changed(item=None, diff=None, **extra):
    """A per-item result of a PATCH task that would change (check) or changed (converge)."""
    result = {"changed": True, "item": item if item is not None else {}, **extra}
    if diff is not None:
        result["diff"] = diff
    return result


def unchanged(item=None):
    return {"changed": False, "item": item if item is not None else {}}


def skipped(item=None):
    return {"changed": False, "skipped": True, "item": item if item is not None else {}}


def report(mode="check", **args):
    return build({"mode": mode, **args})


def by_resource(result):
    return {entry["resource"]: entry for entry in result["drifted"]}


# ------------------------------------------------------------------ per-item results


def test_a_changed_item_is_drift_named_by_its_resource_index_for_index():
    result = report(
        group="payment_gateway",
        vendor="harbor_payments",
        items=[
            {
                "resources": ["file:/etc/a.conf", CONF, "file:/etc/c.conf"],
                "results": [unchanged(), changed(), skipped()],
            }
        ],
    )
    assert result["mode"] == "check"
    assert result["group"] == "payment_gateway"
    assert result["vendor"] == "harbor_payments"
    assert result["resources"] == 3
    assert result["drifted"] == [
        {
            "resource": CONF,
            "expected": "as declared in the baseline",
            "actual": "differs",
            "diff": "",
        }
    ]


def test_skipped_and_unchanged_items_are_not_drift():
    result = report(
        items=[
            {
                "resources": ["service:ssh", "service:cron", "sysctl:vm.swappiness"],
                # A skipped result may still say changed (it never does in practice).
                "results": [skipped(), unchanged(), {"skipped": True, "changed": True}],
            }
        ]
    )
    assert result["drifted"] == []
    assert result["resources"] == 3


def test_a_task_skipped_as_a_whole_has_no_results_and_no_drift():
    result = report(items=[{"resources": ["package:ruc-reporting"], "results": []}])
    assert result == {
        "mode": "check",
        "group": "",
        "vendor": "",
        "resources": 1,
        "drifted": [],
    }


def test_non_mapping_results_are_ignored():
    result = report(items=[{"resources": [CONF], "results": ["changed"]}])
    assert result["drifted"] == []


@pytest.mark.parametrize(
    ("resources", "results"),
    [
        ([CONF, MOTD], [changed()]),
        ([CONF], [changed(), changed()]),
    ],
    ids=["fewer-results", "more-results"],
)
def test_results_that_do_not_align_with_resources_are_refused(resources, results):
    with pytest.raises(ReportError) as refused:
        report(items=[{"resources": resources, "results": results}])
    message = str(refused.value)
    assert "\n" not in message
    assert f"{len(results)} results for {len(resources)} resources" in message


@pytest.mark.parametrize("mode", [None, "", "Check", "remediate", True])
def test_mode_must_be_check_or_converge(mode):
    with pytest.raises(ReportError, match="mode must be check or converge"):
        build({"mode": mode, "items": []})


def test_converge_reports_corrections():
    result = report(
        "converge",
        items=[{"resources": ["service:ssh"], "results": [changed({"name": "ssh"})]}],
        services={"ssh": {"state": "stopped"}},
    )
    assert result["mode"] == "converge"
    [entry] = result["drifted"]
    assert entry["resource"] == "service:ssh"
    assert entry["expected"] == "started, enabled at boot"
    assert entry["actual"] == "corrected"


# ------------------------------------------------------------------ describing resources


def test_resources_are_described_in_a_few_words():
    result = report(
        items=[
            {
                "resources": ["service:ssh", "service:ruc-reporting", "service:cron"],
                "results": [
                    changed({"name": "ssh"}),
                    changed({"name": "ruc-reporting", "state": "stopped", "enabled": False}),
                    changed({"name": "cron"}),
                ],
            },
            {"resources": ["sysctl:vm.swappiness"], "results": [changed({"value": 10})]},
            {
                "resources": ["user:ruc"],
                "results": [changed({"name": "ruc", "shell": "/bin/bash", "system": True})],
            },
            {"resources": ["sudoers:/etc/sudoers"], "results": [changed("sudoers.j2")]},
        ],
        # service_facts names systemd units with their suffix.
        services={
            "ssh": {"state": "stopped"},
            "ruc-reporting.service": {"state": "running"},
        },
    )
    found = by_resource(result)
    assert found["service:ssh"]["expected"] == "started, enabled at boot"
    assert found["service:ssh"]["actual"] == "stopped"
    assert found["service:ruc-reporting"]["expected"] == "stopped, disabled at boot"
    assert found["service:ruc-reporting"]["actual"] == "running"
    assert found["service:cron"]["actual"] == "not installed"
    assert found["sysctl:vm.swappiness"]["expected"] == "vm.swappiness = 10"
    assert found["user:ruc"]["expected"] == "shell /bin/bash, system True"
    assert found["sudoers:/etc/sudoers"]["expected"] == "as declared in the baseline"


# ------------------------------------------------------------------ diffs


def test_a_before_after_diff_becomes_a_unified_diff_from_actual_to_baseline():
    diff = {
        "before": "port = 8443\nlog_level = debug\n",
        "after": "port = 8443\nlog_level = info\n",
        "before_header": "/etc/ruc/ruc-payment-gateway.conf",
        "after_header": "dynamically generated",
    }
    result = report(items=[{"resources": [CONF], "results": [changed(diff=diff)]}])
    [entry] = result["drifted"]
    assert entry["diff"] == (
        "--- actual /etc/ruc/ruc-payment-gateway.conf\n"
        "+++ baseline\n"
        "@@ -1,2 +1,2 @@\n"
        " port = 8443\n"
        "-log_level = debug\n"
        "+log_level = info\n"
    )


def test_lines_without_a_final_newline_still_end_in_one():
    diff = {"before": "a\nb", "after": "a\nc"}
    [entry] = report(items=[{"resources": [CONF], "results": [changed(diff=diff)]}])["drifted"]
    assert entry["diff"].splitlines(keepends=True)[-2:] == ["-b\n", "+c\n"]
    assert entry["diff"].startswith("--- actual\n+++ baseline\n")


def test_a_list_of_diffs_and_diffs_of_attributes():
    diff = [
        {
            "before": {"path": "/etc/x", "state": "file"},
            "after": {"path": "/etc/x", "state": "absent"},
        },
        {"before": "same\n", "after": "same\n"},
        "not a mapping",
        {"before": {"mode": "0644", "owner": "ruc"}, "after": {"mode": "0640", "owner": "root"}},
    ]
    [entry] = report(items=[{"resources": [CONF], "results": [changed(diff=diff)]}])["drifted"]
    lines = entry["diff"].splitlines()
    assert lines.count("--- actual") == 2
    assert "-state: file" in lines
    assert "+state: absent" in lines
    assert " path: /etc/x" in lines
    assert "-mode: 0644" in lines
    assert "+owner: root" in lines
    assert "same" not in entry["diff"]


def test_a_prepared_diff_is_kept_as_it_is():
    prepared = "--- before\n+++ after\n-x\n+y"
    [entry] = report(
        items=[{"resources": [CONF], "results": [changed(diff={"prepared": prepared})]}]
    )["drifted"]
    assert entry["diff"] == prepared + "\n"


def test_diff_text_of_nothing_is_empty():
    assert plugin.diff_text(None) == ""
    assert plugin.diff_text({}) == ""
    assert plugin.diff_text([{"before": None, "after": None}]) == ""


def test_entries_of_the_same_resource_are_merged():
    first = {"before": "a\n", "after": "b\n"}
    second = {"before": "c\n", "after": "d\n"}
    result = report(
        items=[
            {"resources": [CONF], "results": [changed(diff=first)]},
            {"resources": [CONF, MOTD], "results": [changed(diff=second), unchanged()]},
            {"resources": [CONF], "results": [changed(diff=first)]},
        ]
    )
    assert result["resources"] == 2
    [entry] = result["drifted"]
    assert entry["resource"] == CONF
    assert entry["diff"].count("-a\n") == 1, "the same diff is not repeated"
    assert "-c\n+d\n" in entry["diff"]


def test_a_long_diff_is_cut_with_a_note():
    before = "".join(f"line {n} old\n" for n in range(1000))
    after = "".join(f"line {n} new\n" for n in range(1000))
    whole = plugin.diff_text({"before": before, "after": after})
    assert len(whole) > plugin.MAX_DIFF
    [entry] = report(
        items=[{"resources": [CONF], "results": [changed(diff={"before": before, "after": after})]}]
    )["drifted"]
    cut = len(whole) - plugin.MAX_DIFF
    assert entry["diff"] == whole[: plugin.MAX_DIFF] + f"\n... ({cut} more characters)\n"


# ------------------------------------------------------------------ redaction

CANARY = "canary-Zq81xW"


def test_secret_looking_text_is_masked_everywhere():
    diff = {
        "before": f"password={CANARY}\nurl = https://ruc:{CANARY}@db.example.invalid/ruc\n",
        "after": f"password = {CANARY}-new\nurl = https://db.example.invalid/ruc\n",
    }
    result = report(
        items=[{"resources": [CONF], "results": [changed(diff=diff)]}],
        sshd_expected={"Banner": f"token: {CANARY}"},
    )
    assert CANARY not in repr(result)
    entry = by_resource(result)[CONF]
    assert "-password=***\n" in entry["diff"]
    assert "+password = ***\n" in entry["diff"]
    assert "https://ruc:***@db.example.invalid" in entry["diff"]
    assert by_resource(result)["sshd:Banner"]["expected"] == "Banner token: ***"


def test_user_patterns_are_masked_too():
    diff = {"before": f"api_endpoint_id = {CANARY}\n", "after": "api_endpoint_id = x\n"}
    args = {"items": [{"resources": [CONF], "results": [changed(diff=diff)]}]}
    assert CANARY in report(**args)["drifted"][0]["diff"]
    masked = report(redact=[r"canary-\w+"], **args)["drifted"][0]["diff"]
    assert CANARY not in masked
    assert "-api_endpoint_id = ***\n" in masked


@pytest.mark.parametrize(
    ("redact", "words"),
    [
        (["(unclosed"], ["baseline_diff_redact: '(unclosed' is not a regular expression"]),
        ("canary-.*", ["baseline_diff_redact must be a list of regular expressions"]),
        ([1], ["baseline_diff_redact must be a list of regular expressions"]),
    ],
    ids=["malformed-pattern", "not-a-list", "not-strings"],
)
def test_bad_redaction_patterns_are_one_line_errors(redact, words):
    with pytest.raises(ReportError) as refused:
        report(redact=redact, items=[])
    message = str(refused.value)
    assert "\n" not in message
    for word in words:
        assert word in message


# ------------------------------------------------------------------ probes (check mode)

SSHD_T = """\
port 22
permitrootlogin without-password
passwordauthentication yes
maxauthtries 6
"""


def test_check_mode_reports_sshd_settings_that_differ_in_effect():
    result = report(
        sshd_expected={
            "PermitRootLogin": "prohibit-password",  # sshd -T prints without-password
            "PasswordAuthentication": "no",
            "MaxAuthTries": 6,
            "X11Forwarding": "no",
        },
        sshd_effective=SSHD_T,
    )
    found = by_resource(result)
    assert set(found) == {"sshd:PasswordAuthentication", "sshd:X11Forwarding"}
    assert found["sshd:PasswordAuthentication"]["expected"] == "PasswordAuthentication no"
    assert found["sshd:PasswordAuthentication"]["actual"] == "PasswordAuthentication yes"
    assert found["sshd:X11Forwarding"]["actual"] == "X11Forwarding (unset)"
    assert result["resources"] == 4


def test_a_changed_sshd_item_and_its_probe_are_one_entry():
    result = report(
        items=[
            {
                "resources": ["sshd:PermitRootLogin"],
                "results": [changed({"key": "PermitRootLogin", "value": "no"})],
            }
        ],
        sshd_expected={"PermitRootLogin": "no"},
        sshd_effective="permitrootlogin yes\n",
    )
    assert result["drifted"] == [
        {
            "resource": "sshd:PermitRootLogin",
            "expected": "PermitRootLogin no",
            "actual": "PermitRootLogin yes",
            "diff": "",
        }
    ]


def package(version):
    return [{"name": "x", "version": version, "source": "apt"}]


def test_check_mode_reports_pinned_packages_at_another_version_or_missing():
    result = report(
        package_pins={
            "ruc-payment-gateway": "2.4.0",
            "ruc-reporting": "1:5.1.0-2~deb12u1",
            "ruc-sftp-bridge": "1.0.0",
        },
        packages={
            "ruc-payment-gateway": package("2.3.0"),
            "ruc-reporting": package("1:5.1.0-2~deb12u1"),
        },
    )
    found = by_resource(result)
    assert set(found) == {"package:ruc-payment-gateway", "package:ruc-sftp-bridge"}
    assert found["package:ruc-payment-gateway"]["expected"] == "2.4.0"
    assert found["package:ruc-payment-gateway"]["actual"] == "installed 2.3.0"
    assert found["package:ruc-sftp-bridge"]["actual"] == "not installed"
    assert result["resources"] == 3


def test_check_mode_reports_unapproved_packages_with_their_version():
    result = report(
        unapproved=["telnet", "ghost"],
        packages={"telnet": package("0.17+2.4-2")},
        removed=["telnet"],  # only a converge reports removals
    )
    found = by_resource(result)
    assert set(found) == {"package:telnet", "package:ghost"}
    assert found["package:telnet"]["expected"] == "not installed (not approved)"
    assert found["package:telnet"]["actual"] == "installed 0.17+2.4-2"
    assert found["package:ghost"]["actual"] == "installed"


def test_converge_does_not_probe_and_lists_removed_packages():
    result = report(
        "converge",
        sshd_expected={"PasswordAuthentication": "no"},
        sshd_effective="passwordauthentication yes\n",
        package_pins={"ruc-payment-gateway": "2.4.0"},
        packages={"ruc-payment-gateway": package("2.3.0")},
        unapproved=["telnet"],
        removed=["telnet"],
    )
    assert result["drifted"] == [
        {
            "resource": "package:telnet",
            "expected": "not installed (not approved)",
            "actual": "removed",
            "diff": "",
        }
    ]


# ------------------------------------------------------------------ unmanaged drop-ins

DROPIN = "sudoers:/etc/sudoers.d/90-vendor"


def slurped(resource, text):
    path = resource.split(":", 1)[1]
    return {
        "item": resource,
        "content": base64.b64encode(text.encode()).decode(),
        "encoding": "base64",
        "source": path,
        "changed": False,
    }


@pytest.mark.parametrize(("mode", "actual"), [("check", "present"), ("converge", "removed")])
def test_an_unmanaged_drop_in_is_expected_absent_with_its_content(mode, actual):
    content = "vendor ALL=(ALL) NOPASSWD: ALL\n"
    removal = {"before": {"state": "file"}, "after": {"state": "absent"}}
    result = report(
        mode,
        items=[
            {"resources": ["sudoers:/etc/sudoers.d/ruc"], "results": [unchanged()]},
            {"resources": [DROPIN], "results": [changed(DROPIN, diff=removal)]},
        ],
        unmanaged_content=[slurped(DROPIN, content), "not a mapping"],
    )
    assert result["drifted"] == [
        {
            "resource": DROPIN,
            "expected": "absent (not declared in the baseline)",
            "actual": actual,
            "diff": "--- actual /etc/sudoers.d/90-vendor\n"
            "+++ baseline (absent)\n"
            "-vendor ALL=(ALL) NOPASSWD: ALL\n",
        }
    ]


def test_an_unmanaged_drop_in_that_is_not_removed_is_not_drift():
    result = report(
        "converge",
        items=[{"resources": [DROPIN], "results": [skipped(DROPIN)]}],
        unmanaged_content=[slurped(DROPIN, "x\n")],
    )
    assert result["drifted"] == []


def test_unreadable_unmanaged_content_leaves_an_empty_diff():
    entry = {**slurped(DROPIN, "x"), "content": "not base64!"}
    [found] = report(
        items=[{"resources": [DROPIN], "results": [changed(DROPIN)]}], unmanaged_content=[entry]
    )["drifted"]
    assert found["diff"] == ""
    assert found["actual"] == "present"


def test_a_long_unmanaged_file_is_cut_with_a_note():
    resource = "sshd:/etc/ssh/sshd_config.d/50-vendor.conf"
    text = "".join(f"# comment {n:04}\n" for n in range(500))
    [found] = report(
        items=[{"resources": [resource], "results": [changed(resource)]}],
        unmanaged_content=[slurped(resource, text)],
    )["drifted"]
    more = len(text) - plugin.MAX_CONTENT
    assert found["diff"].endswith(f"-... ({more} more characters)\n")
    assert "# comment 0000" in found["diff"]
    assert "# comment 0499" not in found["diff"]


def test_a_secret_cut_by_the_content_limit_is_still_masked():
    key_body = "".join(f"{CANARY}{n:04}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n" for n in range(60))
    text = (
        "#" * (plugin.MAX_CONTENT - 500)
        + "\n-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + key_body
        + "-----END OPENSSH PRIVATE KEY-----\n"
    )
    [found] = report(
        items=[{"resources": [DROPIN], "results": [changed(DROPIN)]}],
        unmanaged_content=[slurped(DROPIN, text)],
    )["drifted"]
    assert CANARY not in found["diff"]
    assert "***" in found["diff"]


def test_a_setting_sshd_prints_on_several_lines_is_compared_as_a_whole():
    result = build(
        {
            "mode": "check",
            "sshd_expected": {"AllowUsers": "ops deploy"},
            "sshd_effective": "port 22\nallowusers ops\nallowusers deploy\n",
        }
    )
    assert result["drifted"] == []
