"""Unit tests for plugins/modules/milepost_interface_check.py: validation and grading."""

from __future__ import annotations

import json
import ssl
import time

import pytest
from conftest import load_module

mic = load_module("milepost_interface_check")


def https(**extra):
    return {
        "name": "payments-api",
        "vendor": "harbor_payments",
        "kind": "https",
        "url": "https://127.0.0.1:8443/health",
        **extra,
    }


def sftp(**extra):
    return {
        "name": "file-exchange",
        "vendor": "relay_file_exchange",
        "kind": "sftp",
        "host": "127.0.0.1",
        "port": 2222,
        "username": "ruc",
        "private_key_file": "/keys/id",
        "known_hosts_file": "/keys/known_hosts",
        "remote_dir": "/inbound",
        **extra,
    }


# --- validation: good input ----------------------------------------------------------------


def test_https_is_normalised_with_defaults() -> None:
    (entry,) = mic.validate_interfaces([https()])
    assert entry == {
        "name": "payments-api",
        "vendor": "harbor_payments",
        "kind": "https",
        "timeout": 10,
        "latency_warn_ms": 500,
        "latency_fail_ms": 3000,
        "cert_warn_days": 30,
        "cert_fail_days": 7,
        "url": "https://127.0.0.1:8443/health",
        "expected_api_version": None,
        "ca_file": None,
    }


def test_sftp_is_normalised_and_port_defaults_to_22() -> None:
    raw = sftp()
    del raw["port"]
    (entry,) = mic.validate_interfaces([raw])
    assert entry["port"] == 22
    assert entry["remote_dir"] == "/inbound"
    assert entry["kind"] == "sftp"


def test_module_thresholds_apply_and_interface_overrides_win() -> None:
    defaults = {"latency_warn_ms": 100, "latency_fail_ms": 200, "cert_warn_days": 20}
    first, second = mic.validate_interfaces(
        [https(), sftp(latency_warn_ms="150", cert_fail_days=1)], defaults
    )
    assert (first["latency_warn_ms"], first["latency_fail_ms"]) == (100, 200)
    assert (first["cert_warn_days"], first["cert_fail_days"]) == (20, 7)
    assert second["latency_warn_ms"] == 150
    assert second["cert_fail_days"] == 1


def test_kind_is_case_insensitive_and_version_is_text() -> None:
    (entry,) = mic.validate_interfaces([https(kind="HTTPS", expected_api_version=2.1)])
    assert entry["kind"] == "https"
    assert entry["expected_api_version"] == "2.1"


def test_empty_list_is_valid() -> None:
    assert mic.validate_interfaces([]) == []


# --- validation: bad input, one line each ----------------------------------------------------

BAD_INPUT = [
    ([https(url=None)], "interface 'payments-api' (https) has no url"),
    ([https(url="")], "interface 'payments-api' (https) has no url"),
    (
        [https(url="http://127.0.0.1/health")],
        "interface 'payments-api' has url 'http://127.0.0.1/health'; "
        "it must be an https:// URL with a host",
    ),
    ([https(url="https://127.0.0.1:99999/")], "bad port in url"),
    ([sftp(host="")], "interface 'file-exchange' (sftp) has no host"),
    ([sftp(remote_dir=None)], "interface 'file-exchange' (sftp) has no remote_dir"),
    ([sftp(port=0)], "interface 'file-exchange': port must be at least 1, got 0"),
    ([sftp(port=70000)], "port must be at most 65535"),
    ([sftp(port="ssh")], "interface 'file-exchange': port must be a whole number, got 'ssh'"),
    (
        [https(kind="ftp")],
        "interface 'payments-api' has unknown kind 'ftp'; use one of: https, sftp",
    ),
    ([https(kind=None)], "has unknown kind None"),
    ([https(name="")], "interfaces[0] has no name"),
    ([https(vendor=" ")], "interface 'payments-api' has no vendor"),
    ([https(), https()], "interface 'payments-api' is declared twice"),
    ([https(host="x")], "interface 'payments-api' (https) has unknown keys: host"),
    ([sftp(url="https://x")], "interface 'file-exchange' (sftp) has unknown keys: url"),
    (["payments-api"], "interfaces[0] must be a dict, got str"),
    ([https(timeout=0)], "timeout must be at least 1"),
    (
        [https(latency_warn_ms=5000)],
        "interface 'payments-api': latency_warn_ms (5000) must not be above latency_fail_ms (3000)",
    ),
    (
        [https(cert_warn_days=3)],
        "interface 'payments-api': cert_warn_days (3) must not be below cert_fail_days (7)",
    ),
    ([https(cert_fail_days=-1)], "cert_fail_days must be at least 0, got -1"),
    ([https(latency_fail_ms=True)], "latency_fail_ms must be a whole number, got True"),
    ([https(latency_fail_ms="fast")], "latency_fail_ms must be a whole number, got 'fast'"),
]


@pytest.mark.parametrize(("interfaces", "expected"), BAD_INPUT)
def test_bad_input_is_one_line(interfaces, expected) -> None:
    with pytest.raises(mic.InterfaceInputError) as caught:
        mic.validate_interfaces(interfaces)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_bad_module_thresholds() -> None:
    with pytest.raises(mic.InterfaceInputError, match="module thresholds: latency_warn_ms"):
        mic.validate_interfaces([https()], {"latency_warn_ms": 10, "latency_fail_ms": 5})


def test_interfaces_must_be_a_list() -> None:
    with pytest.raises(mic.InterfaceInputError, match="must be a list"):
        mic.validate_interfaces({"name": "x"})


# --- grading -------------------------------------------------------------------------------


def graded(interface, **fields):
    (entry,) = mic.validate_interfaces([interface])
    result = mic.new_result(entry)
    result.update(fields)
    mic.grade_api_version(result, entry)
    mic.grade_certificate(result, entry)
    mic.grade_latency(result, entry)
    return result


def test_all_good_is_ok_without_messages() -> None:
    result = graded(
        https(expected_api_version="2.1"), latency_ms=20, cert_days_left=200, api_version="2.1"
    )
    assert result["status"] == "ok"
    assert result["messages"] == []


@pytest.mark.parametrize(
    ("days", "status", "message"),
    [
        (30, "ok", None),
        (29, "warning", "certificate expires in 29 days (warning below 30 days)"),
        (7, "warning", "certificate expires in 7 days (warning below 30 days)"),
        (6, "failed", "certificate expires in 6 days (failure below 7 days)"),
        (0, "failed", "certificate expires in 0 days (failure below 7 days)"),
    ],
)
def test_certificate_thresholds(days, status, message) -> None:
    result = graded(https(), cert_days_left=days)
    assert result["status"] == status
    assert result["messages"] == ([message] if message else [])


@pytest.mark.parametrize(
    ("latency", "status"),
    [(500, "ok"), (501, "warning"), (3000, "warning"), (3001, "failed")],
)
def test_latency_thresholds(latency, status) -> None:
    assert graded(sftp(), latency_ms=latency)["status"] == status


def test_worst_status_wins_and_every_reason_is_kept() -> None:
    result = graded(
        https(expected_api_version="3.0"), latency_ms=800, cert_days_left=10, api_version="2.1"
    )
    assert result["status"] == "failed"
    assert result["messages"] == [
        "API version 2.1, expected 3.0",
        "certificate expires in 10 days (warning below 30 days)",
        "latency 800 ms is above the warning threshold of 500 ms",
    ]


def test_missing_api_version_fails_when_one_is_expected() -> None:
    result = graded(https(expected_api_version="2.1"), api_version=None)
    assert result["status"] == "failed"
    assert result["messages"][0].startswith("no API version reported (expected 2.1")


def test_no_expected_version_means_no_check() -> None:
    assert graded(https(), api_version="9.9")["status"] == "ok"


def test_extract_api_version_prefers_json_then_header() -> None:
    body = json.dumps({"api_version": "2.1", "status": "ok"}).encode()
    assert mic.extract_api_version(body, [("X-API-Version", "3.0")]) == "2.1"
    assert mic.extract_api_version(b"<html>", [("x-api-version", " 3.0 ")]) == "3.0"
    assert mic.extract_api_version(b"[1, 2]", []) is None
    assert mic.extract_api_version(b"\xff", []) is None
    assert mic.extract_api_version(json.dumps({"api_version": 2}).encode(), []) == "2"


def test_days_left_counts_whole_days() -> None:
    now = time.time()
    not_after = time.strftime("%b %d %H:%M:%S %Y GMT", time.gmtime(now + 3 * 86400 + 3600))
    assert ssl.cert_time_to_seconds(not_after) > now
    assert mic.days_left(not_after, now=now) == 3


def test_messages_are_one_line() -> None:
    result = mic.new_result(mic.validate_interfaces([sftp()])[0])
    mic.raise_status(result, "failed", "first line\n  second line")
    mic.raise_status(result, "warning", "later warning")
    assert result["status"] == "failed"
    assert result["messages"] == ["first line second line", "later warning"]


def test_summary_and_target() -> None:
    entries = mic.validate_interfaces([https(), sftp()])
    results = [mic.new_result(entry) for entry in entries]
    results[1]["status"] = "failed"
    assert mic.summarise(results) == {"ok": 1, "warning": 0, "failed": 1}
    assert results[0]["target"] == "https://127.0.0.1:8443/health"
    assert results[1]["target"] == "ruc@127.0.0.1:2222:/inbound"


def test_check_interface_never_raises(monkeypatch) -> None:
    def boom(interface):
        raise RuntimeError("unexpected\nproblem")

    monkeypatch.setattr(mic, "check_https", boom)
    (entry,) = mic.validate_interfaces([https()])
    result = mic.check_interface(entry, check_mode=False)
    assert result["status"] == "failed"
    assert result["messages"] == ["unexpected error: RuntimeError: unexpected problem"]


def test_unreadable_key_files_fail_without_connecting(tmp_path) -> None:
    (entry,) = mic.validate_interfaces(
        [sftp(known_hosts_file=str(tmp_path / "missing"), private_key_file=str(tmp_path))]
    )
    result = mic.check_sftp(entry, check_mode=False)
    assert result["status"] == "failed"
    assert result["messages"] == [f"known_hosts_file {tmp_path / 'missing'} is not readable"]
