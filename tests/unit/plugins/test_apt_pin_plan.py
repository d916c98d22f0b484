"""The milepost_apt_pin action plugin's change-plan rule (plugins/action/milepost_apt_pin.py,
planned_pins): a run applying an approved plan installs only the pins the plan moves, at
its versions; another version is refused (stale); without a plan nothing is narrowed."""

import pytest
from conftest import load_module

planned_pins = load_module("milepost_apt_pin", "action").planned_pins
PINS = {"ruc-account-api": "1.5.0", "ruc-payment-gateway": "2.4.0"}
PLAN = {"plan_id": "P-1", "hosts": {"acct-01": {"os": {}, "pins": {"ruc-account-api": "1.5.0"}}}}


def test_only_the_pins_the_plan_moves_are_installed():
    assert planned_pins(None, "acct-01", PINS) == PINS
    assert planned_pins(PLAN, "acct-01", PINS) == {"ruc-account-api": "1.5.0"}
    assert planned_pins(PLAN, "pay-01", PINS) == {}


def test_a_pin_the_plan_moves_elsewhere_or_a_plan_that_is_not_one_is_refused():
    with pytest.raises(ValueError, match="stale"):
        planned_pins(PLAN, "acct-01", {"ruc-account-api": "1.6.0"})
    with pytest.raises(ValueError, match="not a change plan"):
        planned_pins("P-1", "acct-01", PINS)
