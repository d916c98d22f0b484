"""Safety invariant 2: a canary, then batches in which no group loses more than it allows."""

import pytest

from milepost.errors import UserError
from milepost.inventory.batches import batch_of, plan

GROUPS = {
    "pay-01": ["ruc", "payment_gateway"],
    "pay-02": ["ruc", "payment_gateway"],
    "acct-01": ["ruc", "account_management"],
    "ingest-01": ["ruc", "mileage_ingest"],
    "sftp-01": ["ruc", "sftp_exchange"],
    "rpt-01": ["ruc", "reporting"],
}
HOSTS = list(GROUPS)


def test_two_hosts_of_one_group_never_share_a_batch():
    batches = plan(HOSTS, GROUPS, serial=[1, "100%"])
    assert batches[0] == ["pay-01"]
    assert sorted(sum(batches, [])) == sorted(HOSTS)
    for batch in batches:
        assert sum(h.startswith("pay-") for h in batch) <= 1
    # speed across groups: after the canary, the other groups go together
    assert batches[1] == ["pay-02", "acct-01", "ingest-01", "sftp-01", "rpt-01"]


def test_a_group_may_allow_more_and_the_smallest_limit_of_its_hosts_applies():
    limits = dict.fromkeys(HOSTS, 2)
    batches = plan(HOSTS, GROUPS, limits, serial=[2, "100%"])
    assert batches[0] == ["pay-01", "pay-02"]
    limits["pay-02"] = 1
    assert plan(HOSTS, GROUPS, limits, serial=[2, "100%"])[0] == ["pay-01", "acct-01"]


def test_serial_caps_each_batch_and_the_last_entry_repeats():
    batches = plan(HOSTS, GROUPS, serial=[1, "50%"])
    assert [len(b) for b in batches] == [1, 3, 2]
    assert batch_of(batches, "pay-02") == 2
    assert batch_of(batches, "nobody") is None


@pytest.mark.parametrize("bad", [0, -1, "x", "1.5", True, [1]])
def test_a_malformed_max_unavailable_is_refused_in_one_line(bad):
    with pytest.raises(UserError, match="milepost_max_unavailable"):
        plan(HOSTS, GROUPS, {"pay-01": bad})
