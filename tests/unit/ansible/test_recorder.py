"""The recorder writes a whole run through its thread, never drops, and spools on failure."""

import json

from milepost.ansible.recorder import QUEUE_SIZE, Recorder
from milepost.ledger import Ledger, spool, task_result


def test_a_run_is_written_in_order_and_verifies(tmp_path, monkeypatch):
    monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MILEPOST_RUN_ID", "20261124T000000Z-unit01")  # restored afterwards
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    warnings: list[str] = []
    recorder = Recorder(url, warnings.append)
    recorder.start(playbook="playbooks/maintain.yml", kind="manual", check_mode=False)
    count = QUEUE_SIZE * 2  # more than the queue holds: the producer waits, nothing drops
    for i in range(count):
        recorder.put(task_result(recorder.run_id, f"h{i % 7}", f"task {i}", "ok"))
    recorder.finish("successful")
    ledger = Ledger.open(url)
    assert ledger.verify().ok
    run = ledger.runs()[0]
    assert run["status"] == "successful"
    assert sum(c["ok"] for c in run["hosts"].values()) == count
    assert warnings == []


def test_an_unwritable_ledger_spools_everything_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MILEPOST_RUN_ID", "20261124T000000Z-unit02")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    url = f"sqlite:///{blocker / 'ledger.sqlite'}"
    warnings: list[str] = []
    recorder = Recorder(url, warnings.append)
    recorder.start(playbook="p.yml", kind="emergency")
    for i in range(50):
        recorder.put(task_result(recorder.run_id, "h1", f"task {i}", "changed"))
    recorder.finish("successful")
    assert len(warnings) == 1 and "milepost ledger replay" in warnings[0]
    files = spool.pending(tmp_path / "state" / "spool")
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert sum(1 for line in lines if line.get("kind") == "task_result") == 50

    good = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    assert spool.replay(good, tmp_path / "state" / "spool") > 50
    assert good.verify().ok
    assert good.runs()[0]["status"] == "successful"


def test_a_run_that_received_sigterm_is_aborted_even_if_it_reached_its_end(tmp_path, monkeypatch):
    """Ansible can swallow the KeyboardInterrupt SIGTERM becomes and finish the play; the
    run is still recorded as aborted, with the reason."""
    import signal

    import pytest

    monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MILEPOST_RUN_ID", "20261124T000000Z-unit03")
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    previous = signal.getsignal(signal.SIGTERM)
    recorder = Recorder(url, lambda message: None)
    recorder.start(playbook="p.yml", kind="manual")
    try:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    recorder.finish("successful")
    run = Ledger.open(url).runs()[0]
    assert (run["status"], run["reason"]) == ("aborted", "terminated by SIGTERM")


def test_results_arriving_one_at_a_time_are_committed_together(tmp_path, monkeypatch):
    """One transaction per result would cost more than the result: results that arrive
    within LINGER of each other share one."""
    import time

    monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MILEPOST_RUN_ID", "20261124T000000Z-unit04")
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    transactions: list[int] = []
    append = Ledger.append

    def counting_append(self, records):
        transactions.append(len(records))
        return append(self, records)

    monkeypatch.setattr(Ledger, "append", counting_append)
    recorder = Recorder(url, lambda message: None)
    recorder.start(playbook="p.yml", kind="manual")
    for i in range(40):  # 5 ms apart: time enough to write each alone
        recorder.put(task_result(recorder.run_id, f"h{i % 4}", f"task {i}", "ok"))
        time.sleep(0.005)
    recorder.finish("successful")
    assert sum(transactions) == 42  # run_started, 40 results, run_ended
    assert len(transactions) <= 10, transactions
    run = Ledger.open(url).runs()[0]
    assert sum(c["ok"] for c in run["hosts"].values()) == 40


def test_a_lone_record_is_written_while_the_run_goes_on(tmp_path, monkeypatch):
    """Group commit waits for company at most LINGER: the run's start is in the ledger
    before the run ends."""
    import time

    monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MILEPOST_RUN_ID", "20261124T000000Z-unit05")
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    recorder = Recorder(url, lambda message: None)
    recorder.start(playbook="p.yml", kind="manual")
    ledger = Ledger.open(url)
    deadline = time.monotonic() + 60
    while not ledger.runs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [run["status"] for run in ledger.runs()] == ["running"]
    recorder.finish("successful")
    assert [run["status"] for run in ledger.runs()] == ["successful"]
