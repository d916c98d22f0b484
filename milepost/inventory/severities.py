"""The severities of advisories, of the patch policy and of vendor contracts, most urgent
first: the one list."""

SEVERITIES = ("critical", "high", "medium", "low")
