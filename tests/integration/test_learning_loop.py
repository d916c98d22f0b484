"""The learning loop on the lab: a QC failure opens a glitch; the glitch cannot be closed
without its root cause and a lesson with an action (or a reason); the lesson's action, a
QC check added for the glitch and recorded with `milepost qc record-change`, catches the
same failure on the next run and says so; the catch rate counts the glitch as found by QC.

The check is added to a copy of the project (MILEPOST_ROOT), so the shared checkout's QC
catalogue is never edited."""

import json
import re
import shutil
import subprocess

from conftest import INVENTORY, ROOT, ssh
from test_maintain import env_for, records

PAY_SERVICE = "/etc/init.d/ruc-payment-gateway"
ADDED_CHECK = '''"""Added for glitch {glitch}: the payment gateway stopped and nobody noticed."""

import pytest


@pytest.mark.answers("{glitch}")
def test_the_payment_gateway_process_is_up(host, pins):
    for name in pins:
        assert host.run("pgrep -f %s", f"[/]usr/bin/{{name}} run").rc == 0, f"{{name}}: down"
'''


def milepost(env, *args):
    return subprocess.run(["milepost", *args], capture_output=True, text=True, env=env)


def qc_with_the_gateway_stopped(env, pay):
    """`milepost qc run` on the payment host while its gateway is stopped (restarted after)."""
    assert ssh(pay["port"], f"sudo {PAY_SERVICE} stop").returncode == 0
    try:
        return milepost(env, "qc", "run", "--limit", pay["name"], "-i", str(INVENTORY), "--json")
    finally:
        assert ssh(pay["port"], f"sudo {PAY_SERVICE} start").returncode == 0


def test_a_glitch_ends_in_a_lesson_whose_check_catches_it_next_time(lab_hosts, tmp_path):
    pay = next(h for h in lab_hosts if h["group"] == "payment_gateway")
    project = tmp_path / "project"
    skip = shutil.ignore_patterns(".git", ".venv", ".milepost", "node_modules")
    shutil.copytree(ROOT, project, symlinks=True, ignore=skip)
    env = {**env_for(tmp_path), "MILEPOST_ROOT": str(project)}

    # QC finds the stopped service first: a glitch detected by QC.
    first = qc_with_the_gateway_stopped(env, pay)
    assert first.returncode == 1, first.stdout[-2000:] + first.stderr[-2000:]
    glitch = json.loads(first.stdout)["glitch"]

    # It is not closed without a cause and a lesson that has an action.
    bare = milepost(env, "note", "close", glitch, "--cause", "A restart script left it down")
    assert bare.returncode == 2 and len(bare.stderr.strip().splitlines()) == 1, bare.stderr
    made = milepost(env, "note", "add", "lesson", "--title", "Watch the process, not the port",
                    "--category", "technology", "--glitch", glitch)  # fmt: skip
    assert made.returncode == 0, made.stderr
    lesson = re.search(r"L-[0-9a-f]{8}", made.stdout)[0]
    without_action = milepost(env, "note", "close", glitch, "--cause", "restart script",
                              "--lesson", lesson)  # fmt: skip
    assert without_action.returncode == 2, without_action.stderr
    action = milepost(env, "note", "action", "add", lesson, "--kind", "qc-check", "--title",
                      "Check the gateway's process", "--owner", "dana", "--due", "2030-01-01",
                      "--ref", "tests/qc/test_added_for_glitch.py")  # fmt: skip
    assert action.returncode == 0, action.stderr
    closed = milepost(env, "note", "close", glitch, "--cause", "restart script", "--lesson", lesson)
    assert closed.returncode == 0, closed.stderr

    # The action: a check added for the glitch, recorded as the QC change that answers it.
    (project / "tests" / "qc" / "test_added_for_glitch.py").write_text(
        ADDED_CHECK.format(glitch=glitch)
    )
    recorded = milepost(env, "qc", "record-change", "--title", "Check the gateway's process",
                        "--reason", "the lesson", "--glitch", glitch,
                        "--lesson", lesson)  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr
    assert f"answers {glitch}" in recorded.stdout

    # The same failure again: the added check catches it and the new glitch says so.
    again = qc_with_the_gateway_stopped(env, pay)
    assert again.returncode == 1, again.stdout[-2000:] + again.stderr[-2000:]
    shown = json.loads(again.stdout)
    caught = [r for r in shown["results"] if r["check"] == "test_the_payment_gateway_process_is_up"]
    assert caught and caught[0]["status"] == "failed", shown["results"]
    second = [g for g in records(env, "glitch") if g["body"]["glitch_id"] == shown["glitch"]]
    assert f"caught by the check added for glitch {glitch}" in json.dumps(second)

    # Both glitches were found by QC before anyone reported them.
    report = milepost(env, "qc", "report", "--json", "--months", "1")
    assert report.returncode == 0, report.stderr
    month = json.loads(report.stdout)["months"][-1]
    assert (month["caught_by_qc"], month["reported"]) == (2, 0), month
