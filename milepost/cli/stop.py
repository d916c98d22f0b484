"""`milepost stop`: the kill switch (milepost.patching.kill_switch).

Exit codes: 0 set or cleared, 2 bad input (one line on stderr).
"""

from typing import Annotated

import typer

from milepost.cli.common import console

stop_app = typer.Typer()


@stop_app.command("stop")
def stop(
    reason: Annotated[str, typer.Option("--reason", help="Why runs must stop.")] = "",
    clear: Annotated[bool, typer.Option("--clear", help="Let runs start batches again.")] = False,
) -> None:
    """Kill switch: running maintenance stops before its next batch; new runs refuse."""
    from milepost.patching import kill_switch

    if clear:
        was_set, where = kill_switch.clear()
        console.print(
            f"kill switch {'cleared' if was_set else 'was not set; cleared anyway'} in {where}"
        )
        return
    record, where = kill_switch.set_switch(reason)
    console.print(f"kill switch set in {where}: {record['reason']}")
