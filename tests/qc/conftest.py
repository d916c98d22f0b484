"""Quality control: testinfra checks of every RUC host after every maintenance run.

They are product, not tests of Milepost: `milepost qc run` runs them against the inventory
(testinfra's ansible backend: hosts, users, keys and known_hosts as Ansible has them) and
records each host's result of each check in the ledger; playbooks/maintain.yml runs them at
the end of every cycle. Change them like any control, and record why:
`milepost qc record-change --title TEXT --reason TEXT [--glitch G-ID] [--lesson L-ID]`.

A check added for a glitch names it: `@pytest.mark.answers("G-1a2b3c4d")` (glitch ids as
text). The change records it, and a later failure of the check says it was "caught by the
check added for glitch G-1a2b3c4d".
"""

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "answers(*glitch_ids): the glitches this check was added for"
        " (recorded by milepost qc record-change)",
    )


# Module scope, as testinfra's `host`: once per host, not once per check.
@pytest.fixture(autouse=True, scope="module")
def host_keys_checked(host) -> None:
    """Every check connects as Ansible does: the inventory's known_hosts, host key checking
    on (StrictHostKeyChecking=yes); options that switch it off make the check an error."""
    from milepost.quality.qc import check_host_keys

    check_host_keys(host.backend)


@pytest.fixture(scope="module")
def pins(host) -> dict[str, str]:
    """The pinned RUC packages of this host (app_update_versions) that it has installed."""
    wanted = host.ansible.get_variables().get("app_update_versions") or {}
    return {
        str(name): str(version)
        for name, version in wanted.items()
        if host.package(str(name)).is_installed
    }


def pytest_runtest_logreport(report):
    """Each host's result of each check, one JSON line, for `milepost qc run` to record."""
    import json
    import os

    out = os.environ.get("MILEPOST_QC_RESULTS")
    if not out or (report.when != "call" and report.outcome == "passed"):
        return
    if report.when != "call" and not report.failed and not report.skipped:
        return
    name = report.nodeid.rsplit("::", 1)[-1]
    check, _, param = name.partition("[")
    message = None
    if report.failed or report.skipped:
        text = getattr(report.longrepr, "reprcrash", None)
        message = getattr(text, "message", None) or str(report.longrepr)
    status = "error" if report.failed and report.when != "call" else report.outcome
    with open(out, "a", encoding="utf-8") as handle:
        handle.write(
            json.dumps(
                {
                    "host": param.rstrip("]").removeprefix("ansible://"),
                    "check": check,
                    "status": status,
                    "message": message,
                }
            )
            + "\n"
        )
