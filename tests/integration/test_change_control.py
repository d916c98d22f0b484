"""Change control on the lab (milepost plan / approve / apply): a group that asks for one
approval is changed only by an approved plan, applied exactly; the author cannot approve
her own plan, a key the allowed-signers file does not list cannot approve, a plan made
stale by a change on the host and a plan short of its approvals are refused (exit 3), and
a plain ansible-playbook run (maintain.yml or remediate.yml) does not get past the hosts'
own check. The run records who ran it: AWX's user and job, or the plan's author. Drift on
the host is then corrected by an approved remediation plan, exactly its resources.

One host (acct-01, which the lab starts behind on Debian's updates and on an old RUC
release), a copy of the lab inventory that asks account_management for one approval, and
three real SSH keys: alice writes the plan, bob approves it, mallory is not allowed."""

import json
import shutil
import subprocess

import pytest
from conftest import INVENTORY, ROOT, ssh
from lab_fleet import host_versions
from test_maintain import env_for, records

HOST = "acct-01"
LIMIT = f"{HOST},localhost"
RULES = "---\nmilepost_change_control:\n  approvals: 0\n  allowed_signers: allowed_signers.txt\n"
NEEDS_ONE = "---\nmilepost_change_control:\n  approvals: 1\n  emergency_within_hours: 24\n"


def keypair(folder, name):
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    return key


def public(key):
    """ "key-type base64-key" of a key's public half."""
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


def milepost(env, *args):
    return subprocess.run(["milepost", *args], capture_output=True, text=True, env=env)


@pytest.fixture
def agency(fresh_lab, tmp_path):
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY.parent, inventory)
    (inventory / "group_vars" / "all" / "change_control.yml").write_text(RULES)
    (inventory / "group_vars" / "account_management.yml").write_text(
        (inventory / "group_vars" / "account_management.yml").read_text()
        + NEEDS_ONE.removeprefix("---\n")
    )
    keys = {name: keypair(tmp_path, name) for name in ("alice", "bob", "mallory")}
    (inventory / "allowed_signers.txt").write_text(
        "".join(f"{name}@agency.example {public(keys[name])}\n" for name in ("alice", "bob"))
    )
    port = next(h["port"] for h in fresh_lab if h["name"] == HOST)
    return {"env": env_for(tmp_path), "hosts": str(inventory / "hosts.yml"), "keys": keys,
            "port": port, "tmp": tmp_path}  # fmt: skip


def test_plan_approve_apply_changes_exactly_the_plan_and_refuses_each_shortcut(agency):
    env, hosts, keys = agency["env"], agency["hosts"], agency["keys"]
    container = f"milepost-lab-{HOST}"
    before = host_versions(container)

    # No plan: the host's own check refuses the run, whoever starts it.
    # (As AWX launches it: the job, its template and the user are recorded.)
    awx_vars = ["-e", "awx_job_id=4812", "-e", "awx_job_template_name=Maintain",
                "-e", "awx_user_name=dana"]  # fmt: skip
    plain = milepost(env, "maintain", "--limit", LIMIT, "-i", hosts, *awx_vars)
    assert plain.returncode == 1, plain.stdout[-2000:]
    # remediate.yml, which does not probe, checks change control too.
    remediate = subprocess.run(
        ["ansible-playbook", "-i", hosts, str(ROOT / "playbooks" / "remediate.yml"),
         "--limit", LIMIT],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert remediate.returncode != 0, remediate.stdout[-2000:]
    assert "`milepost plan remediate --key KEY`" in remediate.stdout, remediate.stdout[-2000:]
    assert host_versions(container) == before
    awx = [r for r in records(env, "run_started") if "maintain" in r["body"]["playbook"]][-1]
    awx = awx["body"]
    assert (awx["operator"], awx["identity"]) == (
        "dana",
        {"source": "awx", "job_id": "4812", "job_template": "Maintain", "user": "dana"},
    )
    assert f"{HOST} needs an approved change plan" in plain.stdout
    assert host_versions(container) == before

    made = milepost(env, "plan", "maintain", "--limit", LIMIT, "-i", hosts,
                    "--key", str(keys["alice"]), "--json")  # fmt: skip
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    plan = json.loads(made.stdout)
    plan_id = plan["plan_id"]
    moves = plan["content"]["hosts"][HOST]["packages"]
    assert {m["package"] for m in moves} == {"ruc-account-api"}, moves
    assert plan["author"] == "alice@agency.example" and plan["approvals_needed"] == 1

    short = milepost(env, "apply", plan_id, "--limit", LIMIT, "-i", hosts)
    assert short.returncode == 3 and "0 of the 1 approval" in short.stderr, short.stderr
    own = milepost(env, "approve", plan_id, "--key", str(keys["alice"]), "-i", hosts)
    assert own.returncode == 2 and "four eyes" in own.stderr, own.stderr
    stranger = milepost(env, "approve", plan_id, "--key", str(keys["mallory"]), "-i", hosts)
    assert stranger.returncode == 2 and "not in the allowed-signers" in stranger.stderr
    approved = milepost(env, "approve", plan_id, "--key", str(keys["bob"]), "-i", hosts)
    assert approved.returncode == 0, approved.stderr
    assert "approvals: 1 of 1 needed" in approved.stdout

    # Other options than the plan's, then a change on the host since the plan: refused.
    other = milepost(env, "apply", plan_id, "-i", hosts)
    assert other.returncode == 3 and "--limit" in other.stderr, other.stderr
    assert ssh(agency["port"], "sudo touch /run/reboot-required").returncode == 0
    stale = milepost(env, "apply", plan_id, "--limit", LIMIT, "-i", hosts)
    assert stale.returncode == 3 and "stale" in stale.stderr, stale.stderr
    assert host_versions(container) == before
    assert ssh(agency["port"], "sudo rm -f /run/reboot-required").returncode == 0

    applied = milepost(env, "apply", plan_id, "--limit", LIMIT, "-i", hosts)
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
    assert "approved by bob@agency.example" in applied.stdout
    after = host_versions(container)
    # Exactly the plan: the pinned release, and none of the OS updates the host is behind
    # on (the plan could not see them: the host's package source was not configured yet).
    assert {p: v for p, v in after.items() if before.get(p) != v} == {"ruc-account-api": "1.5.0"}
    started = [r for r in records(env, "run_started") if not r["body"].get("check_mode")]
    assert plan_id in started[-1]["body"]["extra_vars"]["milepost_plan"]
    # Who ran it: the plan's author, whose signature every host verified.
    assert started[-1]["body"]["operator"] == "alice@agency.example"
    assert started[-1]["body"]["identity"] == {"source": "change plan", "plan_id": plan_id}

    # Drift on the host is corrected only by an approved remediation plan, and only the
    # resources it names: a plan from the findings, approved, applied, the finding closed.
    conf = "/etc/ruc/ruc-account-api.conf"
    edit = f"sudo sed -i 's/^# log_level = INFO/log_level = DEBUG/' {conf}"
    assert ssh(agency["port"], edit).returncode == 0
    checked = milepost(env, "drift", "check", "--limit", LIMIT, "-i", hosts)
    assert checked.returncode == 0, checked.stdout[-2000:]
    made = milepost(env, "plan", "remediate", "--limit", HOST, "-i", hosts,
                    "--key", str(keys["alice"]), "--json")  # fmt: skip
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    fix = json.loads(made.stdout)
    resources = [r["resource"] for r in fix["content"]["hosts"][HOST]["resources"]]
    assert resources == [f"file:{conf}"], fix["content"]["hosts"][HOST]
    unapproved = milepost(env, "apply", fix["plan_id"], "-i", hosts)
    assert unapproved.returncode == 3 and "0 of the 1 approval" in unapproved.stderr
    approved = milepost(env, "approve", fix["plan_id"], "--key", str(keys["bob"]), "-i", hosts)
    assert approved.returncode == 0, approved.stderr
    applied = milepost(env, "apply", fix["plan_id"], "-i", hosts)
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
    assert "1 findings corrected and closed" in applied.stdout
    assert "log_level = DEBUG" not in ssh(agency["port"], f"cat {conf}").stdout
    report = milepost(env, "drift", "report", "--json")
    assert not [f for f in json.loads(report.stdout)["open"] if f["host"] == HOST]

    # The evidence of the day: the plans, their signatures, the runs; it verifies offline
    # with only the public key, and a changed byte is found.
    bundle = agency["tmp"] / "evidence"
    made = milepost(env, "evidence", "--from", "1d", "--to", "+1h", "--out", str(bundle),
                    "-i", hosts)  # fmt: skip
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    evidence = json.loads((bundle / "evidence.json").read_text())
    applied = {c["plan_id"]: c for c in evidence["changes"] if c.get("plan_id")}
    assert {plan_id, fix["plan_id"]} <= set(applied), evidence["changes"]
    assert (applied[plan_id]["operator"], applied[plan_id]["identity"]) == (
        "alice@agency.example",
        "change plan",
    )
    assert milepost(env, "evidence", "verify", str(bundle)).returncode == 0
    page = bundle / "evidence.html"
    page.write_bytes(page.read_bytes().replace(b"alice@agency.example", b"alice@agency.exampl3", 1))
    tampered = milepost(env, "evidence", "verify", str(bundle))
    assert tampered.returncode == 1 and "evidence.html" in tampered.stdout + tampered.stderr
