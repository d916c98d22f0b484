"""emergency-patch's live progress (milepost.patching.emergency): each host's phase, read
from the records the run writes to the ledger, shown as a table on a terminal or one line
per move otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from milepost.errors import MilepostError
from milepost.ledger import Ledger
from milepost.ledger.bodies import usable
from milepost.ledger.schema import records as T

#: Seconds between two looks at the ledger for progress.
POLL_SECONDS = 1.0
#: A host's progress as the view shows it, by rank: a host never moves back.
PHASE_RANK = {
    "waiting": 0,
    "checking": 1,
    "patching": 2,
    "verifying": 3,
    "verified": 4,
    "exposed": 1,
    "not exposed": 4,
    "failed": 5,
    "unreachable": 5,
}
#: The phase a recorded task of these roles puts a host in.
ROLE_PHASE = {
    "preflight": "checking",
    "ruc_apt_source": "checking",
    "app_update": "patching",
    "health_gate": "verifying",
}


@dataclass
class HostProgress:
    """Where a host is in the run, and the package versions it went through."""

    phase: str = "waiting"
    versions: list[str] = field(default_factory=list)
    rolled_back: bool = False

    def text(self) -> str:
        return (
            self.phase
            + (f" ({' -> '.join(self.versions)})" if self.versions else "")
            + ("; rolled back" if self.rolled_back else "")
        )

    def advance(self, phase: str) -> None:
        if PHASE_RANK[phase.split(":")[0]] >= PHASE_RANK[self.phase.split(":")[0]]:
            self.phase = phase


def follow(records: Sequence[Mapping[str, Any]], hosts: dict[str, HostProgress]) -> None:
    """Move each host on by the records the run has just written to the ledger."""
    for record in records:
        host, body = record["host"], record["body"]
        if not host:
            continue
        progress = hosts.setdefault(host, HostProgress())
        if record["kind"] == "package_change":
            if not progress.versions:
                progress.versions.append(f"{body.get('package')} {body.get('from_version')}")
            progress.versions.append(str(body.get("to_version") or "removed"))
            continue
        if record["kind"] != "task_result":
            continue
        status, task = body.get("status"), str(body.get("task") or "")
        if status == "unreachable":
            progress.advance("unreachable")
        elif status == "failed" and not body.get("ignored"):
            progress.advance(f"failed: {task}")
        elif status in ("ok", "changed"):
            if status == "changed" and body.get("rollback") is True:
                progress.rolled_back = True
            # A task's own word on where its host is (ledger.names.TASK_PROGRESS) says
            # more than its role.
            said = body.get("progress")
            phase = said if said in PHASE_RANK else ROLE_PHASE.get(str(body.get("role") or ""))
            if phase:
                progress.advance(phase)


class _Progress:
    """Shows each host's phase while the run records it in the ledger."""

    def __init__(self, run_id: str, hosts: Sequence[str], console: Console) -> None:
        self.run_id = run_id
        self.hosts: dict[str, HostProgress] = {host: HostProgress() for host in hosts}
        self._shown: dict[str, str] = {}
        self.console = console
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="milepost-progress", daemon=True)
        self._last = 0

    def table(self) -> Table:
        table = Table("host", "progress", title=f"emergency run {self.run_id}")
        for host, progress in sorted(self.hosts.items()):
            table.add_row(escape(host), escape(progress.text()))
        return table

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _fetch(self, ledger: Any) -> list[dict[str, Any]]:
        with ledger.read_transaction() as conn:
            rows = conn.execute(
                select(T.c.seq, T.c.kind, T.c.host, T.c.body)
                .where(T.c.run_id == self.run_id, T.c.seq > self._last)
                .order_by(T.c.seq)
            ).all()
        found = []
        for seq, kind, host, body in rows:
            self._last = max(self._last, seq)
            data = usable(seq, kind, body)
            if data is not None:
                found.append({"kind": kind, "host": host, "body": data})
        return found

    def _print_moves(self) -> None:
        """Without a terminal: one line per host whose progress changed."""
        for host, progress in sorted(self.hosts.items()):
            if progress.phase != "waiting" and self._shown.get(host) != progress.text():
                self._shown[host] = progress.text()
                self.console.print(f"  {escape(host)}: {escape(progress.text())}")

    def _watch(self) -> None:
        try:
            ledger = Ledger.open()
        except (MilepostError, OSError):
            return  # the run spools; the summary says what happened
        live = (
            Live(self.table(), console=self.console, auto_refresh=False)
            if self.console.is_terminal
            else None
        )
        try:
            if live is not None:
                live.start()
            while True:
                stopping = self._stop.wait(POLL_SECONDS)
                try:
                    follow(self._fetch(ledger), self.hosts)
                except MilepostError:
                    pass
                if live is not None:
                    live.update(self.table(), refresh=True)
                else:
                    self._print_moves()
                if stopping:
                    break
        finally:
            if live is not None:
                live.stop()
            ledger.close()
