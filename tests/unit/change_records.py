"""Change records at a chosen time, for tests of what they classify (open_change and
close_change always record now)."""


def opened(ledger, change_id, hosts, resources, when, until=None, reason="planned work"):
    """Append a change_opened record recorded at ``when``."""
    ledger.append(
        [
            {
                "kind": "change_opened",
                "run_id": None,
                "host": None,
                "recorded_at": when,
                "body": {
                    "change_id": change_id,
                    "hosts": hosts,
                    "resources": resources,
                    "reason": reason,
                    "opened_by": "ops",
                    "until": until,
                },
            }
        ]
    )


def closed(ledger, change_id, when):
    """Append a change_closed record recorded at ``when``."""
    ledger.append(
        [
            {
                "kind": "change_closed",
                "run_id": None,
                "host": None,
                "recorded_at": when,
                "body": {"change_id": change_id, "note": None, "closed_by": "ops"},
            }
        ]
    )
