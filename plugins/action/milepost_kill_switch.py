"""Action plugin milepost_kill_switch: stop before a batch when the kill switch is set
(safety invariant 5, docs/SAFETY.md). Runs on the controller only, once per batch.

The switch is the newest kill_switch record of the maintenance ledger, so `milepost stop`
on any controller that shares the ledger stops every run recording into it; the local
file `milepost stop` also writes (for a controller without its ledger) counts too. A
ledger that is configured but cannot be read fails the batch: fail closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

from milepost.inventory.batches import batch_of
from milepost.errors import MilepostError
from milepost.patching.kill_switch import from_file, from_ledger


class ActionModule(ActionBase):
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        batch = [str(h) for h in args.get("batch") or []]
        plan = args.get("plan") or []
        number = batch_of(plan, batch[0]) if batch and plan else None
        result["changed"] = False
        result["milepost_batch"] = {
            "play": str(args.get("play") or ""),
            "number": number,
            "hosts": batch,
        }
        try:
            found = from_ledger()
            where = "the ledger"
        except MilepostError as exc:
            result.update(
                failed=True,
                msg=f"Kill switch could not be checked in the ledger ({exc}); no new batch starts"
                " until it can be (fail closed).",
            )
            return result
        if found is None:
            found = from_file(Path(str(args["file"])))
            where = f"the file {args['file']}"
        if found is not None:
            result.update(
                failed=True,
                msg=f"Kill switch set in {where} by {found.get('by', '?')}"
                f" at {found.get('at', '?')}: {found.get('reason', '?')}; no new batch starts."
                " Clear it with `milepost stop --clear`.",
            )
        return result
