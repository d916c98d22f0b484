"""Unit tests for milepost.inventory.windows: parsing, open/closed, next opening, blackouts, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from milepost.errors import UserError
from milepost.inventory.windows import (
    Blackout,
    Window,
    decide,
    parse_blackouts,
    parse_now,
    parse_window,
    window_result,
    window_state,
)

LA = ZoneInfo("America/Los_Angeles")
SUNDAY_1AM = {"cron": "0 1 * * 0", "duration_minutes": 240, "timezone": "America/Los_Angeles"}


def la(*args: int) -> datetime:
    return datetime(*args, tzinfo=LA)  # type: ignore[misc]


# --- parsing ------------------------------------------------------------------------------


def test_parse_window_returns_a_window() -> None:
    window = parse_window(SUNDAY_1AM, group="ruc_payment")
    assert window == Window("0 1 * * 0", 240, "America/Los_Angeles")
    assert window.duration == timedelta(hours=4)


def test_parse_window_accepts_alias_and_numeric_string_duration() -> None:
    window = parse_window({"cron": "@daily", "duration_minutes": "30", "timezone": "UTC"})
    assert window == Window("@daily", 30, "UTC")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({**SUNDAY_1AM, "cron": "61 * * * *"}, "cron expression '61 * * * *' is not valid"),
        ({**SUNDAY_1AM, "cron": "* * * *"}, "cron expression"),
        ({**SUNDAY_1AM, "cron": "0 0 * * * *"}, "expected five fields"),
        ({**SUNDAY_1AM, "cron": "every sunday"}, "cron expression"),
        ({**SUNDAY_1AM, "duration_minutes": 0}, "duration_minutes 0 is out of range"),
        ({**SUNDAY_1AM, "duration_minutes": -5}, "out of range"),
        ({**SUNDAY_1AM, "duration_minutes": "two hours"}, "not a whole number of minutes"),
        ({**SUNDAY_1AM, "duration_minutes": True}, "not a whole number"),
        ({**SUNDAY_1AM, "duration_minutes": 1.5}, "not a whole number"),
        ({**SUNDAY_1AM, "duration_minutes": 20000}, "out of range"),
        ({**SUNDAY_1AM, "timezone": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'"),
        ({**SUNDAY_1AM, "timezone": "../etc/passwd"}, "unknown time zone"),
        ({**SUNDAY_1AM, "timezone": ""}, "missing timezone"),
        ({"cron": "0 1 * * 0"}, "missing duration_minutes, timezone"),
        ({**SUNDAY_1AM, "duraton": 5}, "unknown key(s) duraton"),
    ],
)
def test_parse_window_rejects_bad_input_with_one_line(
    data: dict[str, object], fragment: str
) -> None:
    with pytest.raises(UserError) as caught:
        parse_window(data, group="ruc_payment")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("maintenance window of ruc_payment: ")
    assert fragment in message
    assert caught.value.exit_code == 2


def test_parse_window_rejects_a_non_mapping() -> None:
    with pytest.raises(UserError, match="expected a mapping"):
        parse_window("0 1 * * 0", group="g")  # type: ignore[arg-type]


def test_parse_blackouts_dates_and_ranges() -> None:
    blackouts = parse_blackouts(
        ["2025-01-31", {"start": "2024-12-30", "end": "2025-01-02"}, date(2025, 3, 1)]
    )
    assert blackouts == [
        Blackout(date(2024, 12, 30), date(2025, 1, 2)),
        Blackout(date(2025, 1, 31), date(2025, 1, 31)),
        Blackout(date(2025, 3, 1), date(2025, 3, 1)),
    ]
    assert parse_blackouts(None) == []


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        (["2025-02-30"], "blackout date '2025-02-30' is not an ISO date"),
        (["tomorrow"], "not an ISO date"),
        ([{"start": "2025-01-05", "end": "2025-01-01"}], "ends (2025-01-01) before it starts"),
        ([{"start": "2025-01-05"}], "must have exactly start and end"),
        ("2025-01-01", "expected a list"),
    ],
)
def test_parse_blackouts_rejects_bad_dates(items: object, fragment: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_blackouts(items, group="ruc_billing")  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("blackouts of ruc_billing: ")
    assert fragment in str(caught.value)


# --- open / closed ------------------------------------------------------------------------

WINDOW = Window("0 1 * * 0", 240, "America/Los_Angeles")


def test_open_inside_the_window() -> None:
    is_open, reason, next_open = window_state(WINDOW, [], la(2025, 6, 1, 2, 30))  # a Sunday
    assert is_open is True
    assert next_open is None
    assert "inside the window opened 2025-06-01T01:00-07:00 until 2025-06-01T05:00-07:00" in reason


def test_open_at_the_exact_fire_time_and_closed_at_the_end() -> None:
    assert window_state(WINDOW, [], la(2025, 6, 1, 1, 0))[0] is True
    is_open, _, next_open = window_state(WINDOW, [], la(2025, 6, 1, 5, 0))
    assert is_open is False
    assert next_open == la(2025, 6, 8, 1, 0)


def test_closed_outside_reports_the_next_opening() -> None:
    now = la(2025, 6, 4, 12, 0)  # Wednesday
    is_open, reason, next_open = window_state(WINDOW, [], now.astimezone(UTC))
    assert is_open is False
    assert next_open == la(2025, 6, 8, 1, 0)
    assert reason == "outside the window; next window opens 2025-06-08T01:00-07:00"


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        window_state(WINDOW, [], datetime(2025, 6, 4, 12, 0))  # noqa: DTZ001


# --- blackouts ----------------------------------------------------------------------------


def test_blackout_closes_an_open_window_and_skips_to_the_next_free_week() -> None:
    blackouts = parse_blackouts(["2025-06-01", {"start": "2025-06-07", "end": "2025-06-08"}])
    is_open, reason, next_open = window_state(WINDOW, blackouts, la(2025, 6, 1, 2, 0))
    assert is_open is False
    assert reason.startswith("2025-06-01 is a blackout date (2025-06-01 to 2025-06-01)")
    assert next_open == la(2025, 6, 15, 1, 0)
    assert reason.endswith("next window opens 2025-06-15T01:00-07:00")


def test_window_spanning_midnight_opens_when_the_blackout_ends() -> None:
    window = Window("0 22 * * *", 240, "America/Los_Angeles")  # 22:00 to 02:00
    blackouts = parse_blackouts(["2025-06-10"])
    is_open, _, next_open = window_state(window, blackouts, la(2025, 6, 10, 23, 0))
    assert is_open is False
    assert next_open == la(2025, 6, 11, 0, 0)
    assert window_state(window, blackouts, la(2025, 6, 11, 0, 30))[0] is True


def test_long_blackout_with_a_minute_window_is_skipped_quickly() -> None:
    window = Window("* * * * *", 60, "UTC")
    blackouts = parse_blackouts([{"start": "2025-01-01", "end": "2025-03-31"}])
    now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    is_open, _, next_open = window_state(window, blackouts, now)
    assert is_open is False
    assert next_open == datetime(2025, 4, 1, 0, 0, tzinfo=UTC)


def test_no_opening_within_the_horizon() -> None:
    window = Window("0 0 30 2 *", 60, "UTC")  # February 30th never comes
    is_open, reason, next_open = window_state(window, [], datetime(2025, 1, 1, tzinfo=UTC))
    assert (is_open, next_open) == (False, None)
    assert "no window opens within" in reason


def test_no_window_passes_unless_blacked_out() -> None:
    now = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)
    assert window_state(None, [], now) == (
        True,
        "no maintenance window is configured; the window check passes",
        None,
    )
    is_open, reason, next_open = window_state(None, parse_blackouts(["2025-06-04"]), now)
    assert is_open is False
    assert "blackout" in reason
    assert next_open == datetime(2025, 6, 5, tzinfo=UTC)


# --- daylight saving time in America/Los_Angeles -----------------------------------------


def test_next_opening_across_spring_forward() -> None:
    window = Window("0 3 * * *", 60, "America/Los_Angeles")
    now = la(2024, 3, 9, 12, 0)  # PST; the clocks spring forward on 2024-03-10 at 02:00
    _, _, next_open = window_state(window, [], now)
    assert next_open is not None
    assert next_open.astimezone(UTC) == datetime(2024, 3, 10, 10, 0, tzinfo=UTC)  # 03:00 PDT
    assert next_open.utcoffset() == timedelta(hours=-7)


def test_duration_is_elapsed_time_across_spring_forward() -> None:
    window = Window("0 1 * * *", 120, "America/Los_Angeles")  # 01:00 PST + 2 h = 04:00 PDT
    assert window_state(window, [], la(2024, 3, 10, 3, 30))[0] is True
    assert window_state(window, [], la(2024, 3, 10, 4, 0))[0] is False


def test_next_opening_across_fall_back_and_a_blackout() -> None:
    window = Window("0 3 * * 0", 60, "America/Los_Angeles")  # Sundays 03:00
    blackouts = parse_blackouts(["2024-10-27"])
    now = la(2024, 10, 26, 12, 0)  # PDT; the clocks fall back on 2024-11-03
    _, _, next_open = window_state(window, blackouts, now)
    assert next_open is not None
    assert next_open.astimezone(UTC) == datetime(2024, 11, 3, 11, 0, tzinfo=UTC)  # 03:00 PST


# --- the milepost_window_check action's decision (milepost.inventory.windows.decide) ---


PARAMS = {
    "window": SUNDAY_1AM,
    "blackouts": [],
    "group": "ruc_payment",
    "override": False,
    "override_reason": "",
}


def test_window_check_refuses_outside_with_the_next_opening() -> None:
    failed, result = decide(PARAMS, parse_now("2025-06-04T12:00:00-07:00"))
    assert failed is True
    assert result["msg"] == (
        "outside the maintenance window of ruc_payment: next window opens 2025-06-08T01:00:00-07:00"
    )
    assert result["overridden"] is False


def test_window_check_override_records_the_reason() -> None:
    params = {**PARAMS, "override": True, "override_reason": " CAB change 4711 "}
    failed, result = decide(params, parse_now("2025-06-04T19:00:00Z"))
    assert failed is False
    assert result["overridden"] is True
    assert result["milepost_window_override"] == {
        "reason": "CAB change 4711",
        "group": "ruc_payment",
        "next_open": "2025-06-08T01:00:00-07:00",
    }


def test_window_check_override_needs_a_reason_and_no_window_passes() -> None:
    with pytest.raises(UserError, match="needs a non-empty reason"):
        decide({**PARAMS, "override": True}, parse_now("2025-06-04T12:00:00"))
    failed, result = decide({**PARAMS, "window": {}}, parse_now("2025-06-04T12:00:00"))
    assert (failed, result["open"], result["configured"]) == (False, True, False)
    assert "the window check passes" in result["reason"]


# --- window_result: what the milepost_window_check and milepost_probe actions return --------


def test_window_result_refuses_a_moved_clock_outside_the_lab() -> None:
    args = {**PARAMS, "now": "2025-06-08T02:00:00-07:00"}
    refused = window_result(args, "production")
    assert refused["failed"] is True
    assert refused["msg"].startswith("preflight_window_now (the window's clock): test-only")
    assert "milepost_environment is production" in refused["msg"]
    assert "not set" in window_result(args, None)["msg"]
    allowed = window_result(args, "lab")
    assert allowed.get("failed") is None and allowed["open"] is True


def test_window_result_fails_closed_windows_and_bad_input_in_one_line() -> None:
    closed = window_result({**PARAMS, "now": "2025-06-04T12:00:00-07:00"}, "lab")
    assert closed["failed"] is True and closed["msg"].startswith("outside the maintenance window")
    for bad, message in (
        ({"now": "yesterday"}, "is not an ISO 8601 date-time"),
        ({"window": ["cron"]}, "window must be a mapping"),
        ({"blackouts": "2025-01-01"}, "blackouts must be a list"),
        ({"window": {"cron": "61 * * * *", "duration_minutes": 5, "timezone": "UTC"}}, "cron"),
    ):
        result = window_result({**PARAMS, **bad}, "lab")
        assert result["failed"] is True and message in result["msg"], result
        assert "\n" not in result["msg"]


def test_window_result_reads_an_override_given_as_text() -> None:
    args = {
        **PARAMS,
        "now": "2025-06-04T12:00:00-07:00",
        "override": "true",
        "override_reason": "CAB 4711",
    }
    result = window_result(args, "lab")
    assert result.get("failed") is None and result["overridden"] is True
    assert result["milepost_window_override"]["reason"] == "CAB 4711"


def test_the_lock_file_and_the_clock_are_for_tests_against_the_lab_only() -> None:
    from milepost.inventory.lab_only import STANDARD_LOCK_PATH, lab_only_problem

    assert lab_only_problem("production", lock_path=STANDARD_LOCK_PATH) is None
    assert lab_only_problem("lab", now="2026-01-01", lock_path="/tmp/x.lock") is None
    both = lab_only_problem(None, now="2026-01-01", lock_path="/tmp/x.lock")
    assert both == (
        "preflight_window_now (the window's clock) and preflight_lock_path (the lock file"
        " /tmp/x.lock): test-only variables are for tests against the lab inventory only"
        " (milepost_environment is not set); remove them from the extra vars and the inventory"
    )
