"""milepost evidence: a bundle made from a real SQLite ledger built here (runs, a plan signed
and approved with real SSH keys, QC, deadlines met and missed, an exception, drift found and
corrected, an emergency whose approval is overdue) verifies offline with the public key
alone; one byte changed in any file, a file removed or a file added fails, naming the file;
another key fails; bad input is one line, exit 2, nothing written; the page in Chromium."""

import json
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_approvals import inventory, people  # noqa: F401  (fixtures)

from milepost.change_control import approvals as rules
from milepost.change_control.emergencies import emergency_content, emergency_plan
from milepost.change_control.plans import new_plan, plan_record
from milepost.change_control.signing import sign
from milepost.cli.main import main
from milepost.ledger import package_change, package_facts
from milepost.ledger.chain import format_time
from milepost.ledger.runs import run_ended, run_started, task_result
from milepost.patching.advisories import add_advisory

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from browser import DashboardDom, chromium, words  # noqa: E402

CONTENT = {
    "action": "maintain",
    "options": {"limit": None, "allow_downgrade": [], "extra_vars": {}},
    "hosts": {"pay-01": {"packages": [{"package": "libssl3", "from": "3.0.11", "to": "3.0.13",
                                       "reason": "os-security"}],
                         "reboot_pending": False, "would_change": [], "refused": [],
                         "unknown": [], "batch": 1}},
    "batches": [{"number": 1, "hosts": ["pay-01"]}],
}  # fmt: skip


def ago(now: datetime, days: float = 0, hours: float = 0) -> str:
    return format_time(now - timedelta(days=days, hours=hours))


def at(record: dict, when: str) -> dict:
    return {**record, "recorded_at": when}


def record(kind: str, body: dict, when: str, run_id=None, host=None) -> dict:
    return {"kind": kind, "run_id": run_id, "host": host, "recorded_at": when, "body": body}


def emergency_plan_record(now: datetime, run_id: str) -> tuple[dict, object]:
    """The change plan an emergency run leaves (action emergency): its approval was due two
    days ago and none came."""
    content = emergency_content(
        "RUC-2026-0300",
        {"limit": None, "canary": None, "run": run_id},
        {"ruc-payment-gateway": "2.4.1"},
        {"pay-02": {"ruc-payment-gateway": "2.3.0"}},
        ["pay-02"],
    )
    made = (now - timedelta(days=3)).replace(microsecond=0)
    plan = emergency_plan(content, created_by="alice", run_id=run_id, now=made, needed=1,
                          within_hours=24)  # fmt: skip
    return {**plan_record(plan), "recorded_at": format_time(made)}, plan


def build_ledger(ledger, inventory, people, now):  # noqa: F811
    allowed = inventory / "allowed_signers"
    facts = {"pay-01": {"libssl3": "3.0.11"}, "pay-02": {"ruc-payment-gateway": "2.3.0"},
             "acct-01": {"ruc-account-api": "1.4.0"}}  # fmt: skip
    ledger.append([at(package_facts("r0", h, p), ago(now, 50)) for h, p in facts.items()])
    # Due in 2 days, met on pay-01 (patched 5 days ago); due 10 days ago, missed on pay-02
    # (patched 3 days ago); excepted on acct-01.
    add_advisory(ledger, advisory_id="RUC-2026-0101", packages={"libssl3": "3.0.13"},
                 severity="critical", published=(now - timedelta(days=28)).date().isoformat(),
                 title="TLS library flaw")  # fmt: skip
    add_advisory(ledger, advisory_id="RUC-2026-0103", packages={"ruc-payment-gateway": "2.3.5"},
                 severity="critical", published=(now - timedelta(days=40)).date().isoformat(),
                 title="Payment gateway replay")  # fmt: skip
    add_advisory(ledger, advisory_id="RUC-2026-0102", packages={"ruc-account-api": "1.5.0"},
                 severity="critical", published=(now - timedelta(days=40)).date().isoformat(),
                 title="Account API session fixation")  # fmt: skip
    # A plan, signed by alice, approved by bob, applied by run r1, QC passed.
    plan = new_plan(CONTENT, created_by="alice", dry_run="r-dry", now=now - timedelta(days=6))
    ledger.append([at(plan_record(plan), ago(now, 6))])
    rules.add_signature(ledger, plan, sign(plan.signed_text(), people["alice"]), allowed, "author")
    rules.add_signature(ledger, plan, sign(plan.signed_text(), people["bob"]), allowed, "approver")
    marked = json.dumps({"content_hash": plan.content_hash, "hosts": {}, "plan_id": plan.plan_id},
                        sort_keys=True)  # fmt: skip
    when = ago(now, 5)
    ledger.append([
        run_started(playbook="playbooks/maintain.yml", kind="manual", run_id="r1",
                    started_at=when, operator="alice",
                    extra_vars={"milepost_plan": marked}),
        at(task_result("r1", "pay-01", "PATCH | Install OS security updates", "changed"), when),
        at(package_change("r1", "pay-01", "libssl3", "3.0.11", "3.0.13"), when),
        record("qc_result", {"check": "test_tls_answers", "status": "passed", "message": None},
               when, "r1", "pay-01"),
        at(run_ended("r1", "successful"), when),
    ])  # fmt: skip
    # An exception for acct-01, drift found and corrected on pay-01.
    ledger.append([
        record("patch_exception", {"exception_id": "E-0000abcd", "advisory_id": "RUC-2026-0102",
               "hosts": ["acct-01"], "expires": (now + timedelta(days=1)).date().isoformat(),
               "reason": "vendor <b>fix</b> pending", "compensating_control": "WAF rule",
               "added_by": "carol"}, ago(now, 4)),
        record("drift_check", {"mode": "check", "drifted": [{"resource": "file:/etc/ruc/a.conf",
               "expected": "x", "actual": "y", "diff": ""}]}, ago(now, 3), "d1", "pay-01"),
        record("drift_check", {"mode": "converge",
               "drifted": [{"resource": "file:/etc/ruc/a.conf"}]}, ago(now, 2.9), "d2", "pay-01"),
        record("drift_check", {"mode": "check", "drifted": []}, ago(now, 2.9), "d2", "pay-01"),
    ])  # fmt: skip
    # An emergency run three days ago; its plan's approval was due two days ago: overdue.
    plan_rec, eplan = emergency_plan_record(now, "r-em")
    when = ago(now, 3)
    ledger.append([
        run_started(playbook="playbooks/emergency_patch.yml", kind="emergency", run_id="r-em",
                    started_at=when, operator="alice"),
        record("emergency_patch", {"advisory_id": "RUC-2026-0300", "packages": {},
               "reason": "actively exploited", "operator": "alice", "candidates": ["pay-02"]},
               when, "r-em"),
        at(package_change("r-em", "pay-02", "ruc-payment-gateway", "2.3.0", "2.4.1"), when),
        plan_rec,
        record("emergency_result", {"advisory_id": "RUC-2026-0300", "status": "successful",
               "patched": ["pay-02"]}, when, "r-em"),
        at(run_ended("r-em", "successful"), when),
    ])  # fmt: skip
    rules.add_signature(ledger, eplan, sign(eplan.signed_text(), people["alice"]), allowed,
                        "author")  # fmt: skip
    return plan


@pytest.fixture
def bundle(ledger, inventory, people, tmp_path, capsys):  # noqa: F811
    now = datetime.now(UTC)
    plan = build_ledger(ledger, inventory, people, now)
    out = tmp_path / "bundle"
    code = main(["evidence", "--from", "10d", "--to", (now + timedelta(days=1)).date().isoformat(),
                 "--out", str(out), "-i", str(inventory / "hosts.yml")])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "evidence bundle written" in captured.out
    return out, plan


def verify(capsys, *args):
    code = main(["evidence", "verify", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


FILES = ("MANIFEST.json", "MANIFEST.sig", "allowed_signers", "checkpoint.json",
         "evidence.html", "evidence.json", "ledger.jsonl")  # fmt: skip


def test_a_bundle_verifies_and_says_what_the_ledger_says(bundle, capsys):
    out, plan = bundle
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    code, said, err = verify(capsys, out)
    assert code == 0, err
    assert re.fullmatch(r"bundle \S+ verified: \d+ records, seq \d+\.\.\d+, checkpoint .*\n", said)
    data = json.loads((out / "evidence.json").read_text())
    changes = {c["run_id"]: c for c in data["changes"]}
    assert set(changes) == {"r1", "r-em"}
    assert changes["r1"]["plan_id"] == plan.plan_id
    assert changes["r1"]["qc"]["outcome"] == "passed"
    assert changes["r1"]["package_changes"] == [
        {"host": "pay-01", "package": "libssl3", "from": "3.0.11", "to": "3.0.13"}
    ]
    plans = {p["plan_id"]: p for p in data["plans"]}
    assert plans[plan.plan_id]["author"] == "alice@agency.example"
    assert plans[plan.plan_id]["approved_by"] == ["bob@agency.example"]
    assert all(s["verified"] for s in plans[plan.plan_id]["signatures"])
    assert plans[plan.plan_id]["applied_by"] == ["r1"]
    results = {(d["host"], d["advisory_id"]): d["result"] for d in data["deadlines"]}
    assert results[("pay-01", "RUC-2026-0101")] == "met"
    assert results[("pay-02", "RUC-2026-0103")] == "missed"
    assert data["summary"]["deadlines_missed"] == 1
    assert results[("acct-01", "RUC-2026-0102")] == "excepted"
    assert [x["exception_id"] for x in data["exceptions"]] == ["E-0000abcd"]
    assert [(d["state"], d["resolution"]) for d in data["drift"]] == [("resolved", "remediated")]
    [emergency] = data["emergencies"]
    assert emergency["run_id"] == "r-em" and emergency["approval"]["state"] == "overdue"
    assert data["summary"]["emergency_approvals_overdue"] == 1
    # The segment ends at the checkpoint's head and holds every record the period needs.
    lines = (out / "ledger.jsonl").read_text().splitlines()
    point = json.loads((out / "checkpoint.json").read_text())
    assert json.loads(lines[-1])["hash"] == point["head_hash"]
    assert json.loads(lines[0])["seq"] == 1  # the package facts of 50 days ago are needed


def test_one_byte_changed_in_any_file_is_found_and_named(bundle, capsys, tmp_path):
    out, _ = bundle
    for name in FILES:
        copy = tmp_path / f"copy-{name}"
        shutil.copytree(out, copy)
        target = copy / name
        data = bytearray(target.read_bytes())
        middle = len(data) // 2
        data[middle] = ord("0") if data[middle] != ord("0") else ord("1")
        target.write_bytes(bytes(data))
        code, said, err = verify(capsys, copy)
        assert code == 1, (name, said, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and f"FAILED: {name}:" in lines[0], (name, err)


def test_a_file_removed_or_added_is_found_and_named(bundle, capsys, tmp_path):
    out, _ = bundle
    for name in FILES:
        copy = tmp_path / f"without-{name}"
        shutil.copytree(out, copy)
        (copy / name).unlink()
        code, _, err = verify(capsys, copy)
        assert code == 1 and f"FAILED: {name}: missing (removed)" in err, (name, err)
    copy = tmp_path / "with-more"
    shutil.copytree(out, copy)
    (copy / "notes.txt").write_text("an auditor's note\n")
    code, _, err = verify(capsys, copy)
    assert code == 1 and "FAILED: notes.txt: not listed in MANIFEST.json (added)" in err


def test_another_key_fails_and_none_is_bad_input(bundle, capsys, tmp_path, monkeypatch):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from milepost.ledger.checkpoint import raw_public_key

    out, _ = bundle
    other = raw_public_key(Ed25519PrivateKey.generate().public_key())
    code, _, err = verify(capsys, out, "--public-key", other)
    assert code == 1 and "FAILED: MANIFEST.sig:" in err and "trusted key" in err
    mine = (tmp_path / "state" / "ledger-signing.pub").read_text().strip()
    assert verify(capsys, out, "--public-key", mine)[0] == 0
    monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "elsewhere"))
    code, _, err = verify(capsys, out)
    assert code == 2 and "no trusted checkpoint key" in err and len(err.splitlines()) == 1


def test_signatures_are_checked_against_the_signers_file_given(bundle, capsys, tmp_path, people):  # noqa: F811
    from test_signing import public

    out, _ = bundle
    only_alice = tmp_path / "only_alice"
    only_alice.write_text(f"alice@agency.example {public(people['alice'])}\n")
    code, _, err = verify(capsys, out, "--allowed-signers", only_alice)
    assert code == 1 and "FAILED: evidence.json:" in err and "only_alice" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_input_is_one_line_exit_2_and_nothing_written(ledger, inventory, tmp_path, capsys):  # noqa: F811
    hosts = str(inventory / "hosts.yml")
    out = tmp_path / "out"
    code = main(["evidence", "--from", "2026-03-02", "--to", "2026-03-01", "--out", str(out),
                 "-i", hosts])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "is after --to" in err
    assert not out.exists()
    out.mkdir()
    (out / "old.txt").write_text("keep me\n")
    code = main(["evidence", "--from", "30d", "--to", "1d", "--out", str(out), "-i", hosts])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "exists" in err
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []
    for args in (["verify", str(tmp_path / "nowhere")], ["verify", str(out)]):
        code = main(["evidence", *args])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_page_in_a_real_browser(bundle, tmp_path):
    out, plan = bundle
    index = out / "evidence.html"
    html = index.read_text()
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "vendor &lt;b&gt;fix&lt;/b&gt; pending" in html  # escaped
    dom_text = chromium(tmp_path, "--dump-dom", index.as_uri()).stdout
    dom = DashboardDom()
    dom.feed(dom_text)
    assert re.search(r"<html[^>]*\blang=\"en\"", dom_text)
    assert dom.tags.get("h1") == 1 and dom.tags.get("h2") == 8
    assert dom.tags.get("caption") == 6
    headers = [a for a in dom.attrs_seen if a["tag"] == "th"]
    assert headers and all(a.get("scope") in ("col", "row") for a in headers)
    assert any(a.get("tag") == "a" and a.get("href") == "#main" for a in dom.attrs_seen)
    rows = [a for a in dom.attrs_seen if a["tag"] == "tr" and "data-emergency" in a]
    assert [r["data-approval"] for r in rows] == ["overdue"]
    page = words(dom_text)
    assert re.search(r"OVERDUE</span> 0 of 1 approval\(s\), due by", dom_text)
    assert plan.plan_id in page and "Verified" in page
    assert 'data-result="missed"' in dom_text and 'data-result="met"' in dom_text
