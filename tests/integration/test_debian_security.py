"""Debian's real security data on the lab (issue: real security updates): the advisory sync
reads the changelogs of the updates the lab repository mirrors from Debian and records the
real CVEs they fix; the behind hosts are exposed to them; the emergency patch of one CVE
installs Debian's real security update and closes it. No package, version or CVE id is
written here: they are whatever Debian has published. (The RUC packages are Debian packages
too: their changelogs name the lab's own CVEs, and the sync reads them as well.)"""

import json
import subprocess

from lab_fleet import is_behind
from test_emergency_patch import EMERGENCY, milepost
from test_maintain import env_for, records


def as_json(proc: subprocess.CompletedProcess) -> object:
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    return json.loads(proc.stdout)


def test_real_cves_are_synced_found_open_and_closed_by_an_emergency_patch(fresh_lab, tmp_path):
    env = env_for(tmp_path)
    behind = {h["name"] for h in fresh_lab if is_behind(h, fresh_lab)}
    # A dry run of the cycle records what each host has installed (its probe), changes nothing.
    dry = milepost(env, "maintain", "--check")
    assert dry.returncode == 0, dry.stdout[-3000:]

    summary = as_json(milepost(env, "advisory", "sync", "--json"))
    assert summary["added"] > 0, summary
    again = as_json(milepost(env, "advisory", "sync", "--json"))
    assert (again["added"], again["updated"]) == (0, 0), again

    debian = [
        a for a in as_json(milepost(env, "advisory", "list", "--json")) if a["source"] == "debian"
    ]
    assert debian and all(a["advisory_id"].startswith("DEB-") for a in debian)
    assert any(a["cves"] for a in debian), "no synced upload names a CVE"

    exposures = as_json(milepost(env, "exposure", "--json"))
    # Debian's own packages (the RUC packages' changelogs name the lab's CVEs, and every
    # host starts on an old RUC release): only the hosts the lab started behind are exposed.
    open_ = [
        e for e in exposures if e["status"] == "exposed" and not e["package"].startswith("ruc-")
    ]
    assert open_ and {e["host"] for e in open_} <= behind, open_
    # One real CVE that is open on a behind host; each exposure names its upload's CVEs.
    by_id = {a["advisory_id"]: a for a in debian}
    assert all(e["cves"] == by_id[e["advisory_id"]]["cves"] for e in open_), open_
    target = next(
        by_id[e["advisory_id"]] for e in open_ if by_id.get(e["advisory_id"], {}).get("cves")
    )
    cve = target["cves"][0]
    exposed_hosts = {e["host"] for e in open_ if e["advisory_id"] == target["advisory_id"]}
    before = len(records(env, "package_change"))

    patch = subprocess.run(
        [str(EMERGENCY), "--advisory", cve, "--yes", "--reason", f"{cve} is being exploited"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert patch.returncode == 0, patch.stdout[-3000:] + patch.stderr[-2000:]

    after = as_json(milepost(env, "exposure", "--advisory", cve, "--json"))
    assert [e for e in after if e["status"] == "exposed"] == []
    changes = records(env, "package_change")[before:]
    changed = {(c["host"], c["body"]["package"]) for c in changes}
    for host in exposed_hosts:
        for package in target["packages"]:
            if any(e["host"] == host and e["package"] == package for e in open_):
                assert (host, package) in changed, (host, package, changes)
    assert all(c["body"]["from_version"] != c["body"]["to_version"] for c in changes)
