"""Which systems and vendors a glitch concerns: the systems holding its hosts, or named
by key or name among its affected systems; the vendors operating those systems or its
hosts. The dashboard's open problems, the overdue follow-up actions and the vendors'
scorecards all map glitches this way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from milepost.inventory.systems import systems_of_hosts

if TYPE_CHECKING:
    from milepost.inventory.systems import System
    from milepost.oversight.registers import Note

__all__ = ["glitch_systems", "glitch_vendors"]


def glitch_systems(note: Note, systems: Mapping[str, System]) -> list[str]:
    """Keys of the systems a glitch names, by its hosts or by key or name (any case), in
    the systems' order."""

    by_host = {s.key for s in systems_of_hosts(systems, note.hosts)}
    named = {text.strip().lower() for text in note.affected_systems}
    return [
        system.key
        for system in systems.values()
        if system.key in by_host or named & {system.key.lower(), system.name.lower()}
    ]


def glitch_vendors(
    note: Note, systems: Mapping[str, System], host_vendor: Mapping[str, str]
) -> list[str]:
    """Keys of the vendors a glitch concerns: those of its hosts, then those operating
    the systems it names, without repeats."""
    found = [host_vendor[h] for h in note.hosts if h in host_vendor]
    for key in glitch_systems(note, systems):
        found.extend(systems[key].vendors)
    return list(dict.fromkeys(found))
