"""How an emergency patch run (milepost.patching.emergency) left each candidate host, read
from the ledger's records of the run and the exposure computed after it, and printed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape

from milepost.ledger import Ledger
from milepost.ledger.bodies import usable
from milepost.patching.exposure import installed_packages, is_fixed


@dataclass
class Summary:
    """How the run left each candidate host (read from the ledger)."""

    run_id: str
    advisory_id: str
    status: str
    patched: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    not_exposed: list[str] = field(default_factory=list)
    still_exposed: list[str] = field(default_factory=list)
    #: Hosts the run never got to check (interrupted first) and the ledger knows nothing of.
    not_checked: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.status == "successful" and not (
            self.rolled_back
            or self.failed
            or self.unreachable
            or self.still_exposed
            or self.not_checked
        )


def summarise(
    run_id: str, advisory_id: str, packages: Mapping[str, str], hosts: Sequence[str], status: str
) -> Summary:
    """How the run left each host, from the ledger's records of the run and the exposure
    computed after it."""

    summary = Summary(run_id=run_id, advisory_id=advisory_id, status=status)
    with Ledger.open() as ledger:
        detail = ledger.run(run_id)
        installed = installed_packages(ledger, set(hosts))
    failures: dict[str, str] = {}
    unreachable: set[str] = set()
    for result in detail["task_results"]:
        if usable(result["seq"], "task_result", result) is None:
            continue
        host = result.get("host")
        if result.get("status") == "unreachable":
            unreachable.add(host)
            failures.setdefault(host, str(result.get("summary") or "unreachable"))
        elif result.get("status") == "failed" and not result.get("ignored"):
            failures.setdefault(
                host, f"{result.get('task')}: {result.get('summary') or ''}".strip()
            )
    changed = {
        r["host"]
        for r in detail["records"]
        if r["kind"] == "package_change" and usable(r["seq"], r["kind"], r["body"]) is not None
    }
    for host in sorted(hosts):
        mine = installed.get(host, {})
        exposed = [
            name
            for name, fixed in packages.items()
            if name in mine and not is_fixed(mine[name], fixed)
        ]
        if host in unreachable:
            summary.unreachable.append(host)
        elif host in failures and host in changed:
            summary.rolled_back.append(host)
        elif host in failures:
            summary.failed.append(host)
        elif host in changed and not exposed:
            summary.patched.append(host)
        elif host not in installed:
            summary.not_checked.append(host)
        elif not exposed:
            summary.not_exposed.append(host)
        if exposed:
            summary.still_exposed.append(host)
        if host in failures:
            summary.reasons[host] = " ".join(failures[host].split())[:300]
    return summary


def print_summary(console: Console, summary: Summary) -> None:
    console.print(
        f"Emergency run {summary.run_id} for {escape(summary.advisory_id)}: {summary.status}"
    )
    for label, hosts in (
        ("patched and verified", summary.patched),
        ("rolled back", summary.rolled_back),
        ("failed", summary.failed),
        ("unreachable", summary.unreachable),
        ("not exposed", summary.not_exposed),
        ("still exposed", summary.still_exposed),
        ("not checked", summary.not_checked),
    ):
        console.print(f"  {label}: {escape(', '.join(hosts) or 'none')}")
    for host, why in sorted(summary.reasons.items()):
        console.print(f"  {escape(host)}: {escape(why)}")
