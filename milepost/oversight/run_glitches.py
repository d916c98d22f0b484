"""When a run opens a glitch by itself, and what the glitch says (the maintenance_ledger
callback asks at the end of every run).

A run that ends failed opens one naming the hosts that failed, were unreachable or were
rolled back, except a remediation run, whose command opens its own. In hypercare a run
whose tasks gave warnings opens one too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from milepost.oversight.register_writing import run_glitch_record

__all__ = ["run_glitch"]


def run_glitch(
    run_id: str,
    playbook: str,
    *,
    run_kind: str,
    phase: str,
    failed: Sequence[str],
    rolled_back: Sequence[str],
    failures: Mapping[str, str],
    warnings: Mapping[str, str],
) -> dict[str, Any] | None:
    """The glitch record the run opens, or None. ``failed``: hosts that failed or were
    unreachable; ``failures`` and ``warnings``: the first of each host, one line each."""
    if failed and run_kind != "remediation":
        rolled = sorted(rolled_back)
        what = "failed" + (f", {', '.join(rolled)} rolled back" if rolled else "")
        title = f"{playbook} run failed on {', '.join(failed)} ({what})"
        text = "\n".join(f"{host}: {failures[host]}" for host in failed if host in failures)
        return run_glitch_record(run_id, title, failed, text=text or None)
    if not failed and warnings and phase == "hypercare":
        hosts = sorted(warnings)
        text = "\n".join(f"{host}: {warnings[host]}" for host in hosts)
        title = f"{playbook} run gave warnings on {', '.join(hosts)} (hypercare)"
        return run_glitch_record(run_id, title, hosts, text=text)
    return None
