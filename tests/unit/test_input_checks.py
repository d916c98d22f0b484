"""Checks of hostile input: one line, the bad value shown ASCII-only, the problem named."""

from datetime import date

import pytest

from milepost.errors import UserError
from milepost.input_checks import (
    MAX_INPUT,
    check_advisory_id,
    check_date,
    check_limit,
    check_text,
    shown,
)
from milepost.inventory.debian import check_package_name, check_version

CHECKS = [
    lambda v: check_text(v, "--title", max_len=300),
    check_advisory_id,
    check_package_name,
    check_version,
    check_limit,
    lambda v: check_date(v, "--due"),
]

HOSTILE = [
    ("CVE-2025-1234\n", "contains a newline"),
    ("CVE-2025-1234\r", "contains a newline"),
    ("a\u2028b", "contains a newline"),
    ("ab\0", "contains a NUL character"),
    ("ab\u202e", "contains a bidirectional control character U+202E"),
    ("ab\u2066", "contains a bidirectional control character U+2066"),
    ("ab\u200f", "contains a bidirectional control character U+200F"),
    ("ab\u061c", "contains a bidirectional control character U+061C"),
    ("ab\u200b", "contains a zero-width character U+200B"),
    ("ab\ufeff", "contains a zero-width character U+FEFF"),
    ("ab\x1b[31m", "contains a control character U+001B"),
    ("a\tb", "contains a control character U+0009"),
    ("ab\udcff", "contains an undecodable byte"),
]


def message(check, value) -> str:
    with pytest.raises(UserError) as caught:
        check(value)
    text = str(caught.value)
    assert "\n" not in text and "\r" not in text
    assert text.isascii(), text
    return text


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize(("value", "problem"), HOSTILE)
def test_every_check_names_the_hostile_character(check, value, problem):
    assert problem in message(check, value)


@pytest.mark.parametrize("check", CHECKS)
def test_every_check_refuses_huge_values_by_length(check):
    text = message(check, "A" * (MAX_INPUT + 1))
    assert f"is {MAX_INPUT + 1} characters long" in text
    assert len(text) < 300


def test_shown_is_ascii_and_cut():
    assert shown("ok") == "'ok'"
    assert shown("\u202eevil\x1b") == "'\\u202eevil\\x1b'"
    long = shown("x" * 1000, limit=20)
    assert long.startswith("'xxxxxxxxxxxxxxxxxxx...") and "(1000 characters)" in long


def test_check_text_collapses_whitespace_and_limits_length():
    assert check_text("  two   words ", "--title", max_len=20) == "two words"
    assert "empty" in message(lambda v: check_text(v, "--title", max_len=20), "   ")
    assert "at most 5" in message(lambda v: check_text(v, "--title", max_len=5), "abcdef")


@pytest.mark.parametrize(
    "value",
    [
        "CVE-2025-1234",
        "CVE-2021-44228",
        "CVE-2025-1234567",
        "RUC-2026-001",
        "HPSA-2026-0042",
        "DEB-openssl-3.0.22.1.deb12u2",
        "DEB-zlib-1.1.2.13.dfsg.1.deb12u1",
    ],
)
def test_advisory_ids_accepted(value):
    assert check_advisory_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "CVE-25-1234",
        "CVE-2025-123",
        "cve-2025-1234",
        "-oProxyCommand=x",
        "CVE-2025-1234;rm -rf /",
        "$(id)",
        "RUC",
        "R-1",
        "RUC-2026-001-a-b-c-d",
        "RUC-" + "A" * 70,
        "DEB-openssl-3.0.22-1~deb12u2",
        "DEB-Openssl-3.0",
        "DEB-" + "a" * 61,
    ],
)
def test_advisory_ids_refused(value):
    assert "id" in message(check_advisory_id, value)


def test_package_names_and_versions():
    assert check_package_name("ruc-payment-gateway") == "ruc-payment-gateway"
    assert check_package_name("libstdc++6") == "libstdc++6"
    assert check_version("1:2.4.0-1~deb12u1") == "1:2.4.0-1~deb12u1"
    for bad in ("Ruc", "-oProxyCommand=x", "a;b", "$(id)", "x" * 101):
        message(check_package_name, bad)
    for bad in ("v1", "-1", "1.0;rm", "$(id)", "1 0", "1" * 101):
        message(check_version, bad)


def test_limit_patterns():
    for good in ("pay-01:pay-02", "ruc:!report-*", "ruc:&payment_gateway", "web[0:3]", "a?.b,c"):
        assert check_limit(good) == good
    assert "starts with '-'" in message(check_limit, "-oProxyCommand=x")
    assert "regular expression" in message(check_limit, "~pay.*")
    assert "limit file" in message(check_limit, "@retry.txt")
    assert "characters" in message(check_limit, "pay;rm -rf /")
    assert "characters" in message(check_limit, "$(id)")
    assert "empty" in message(check_limit, "")
    assert "at most 1024" in message(check_limit, "a" * 1025)


def test_dates():
    assert check_date("2026-03-31", "--due") == date(2026, 3, 31)
    for bad in ("2026-02-30", "2026-3-1", "31/03/2026", "2026-03-31T00:00", "\u0662026-03-31"):
        assert "YYYY-MM-DD" in message(lambda v: check_date(v, "--due"), bad)
