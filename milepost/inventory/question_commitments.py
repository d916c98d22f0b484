"""The agency's answer commitments to vendors' questions, read from inventory.

``milepost_question_commitments`` (group_vars/all) maps a question category to the days
the agency commits to answer a vendor's question of that category in::

    milepost_question_commitments:
      security: 1          # a vendor asks about a vulnerability or an incident
      billing: 5           # charges, statements, invoices
      data_exchange: 3     # file formats, the SFTP exchange, interface changes
      operations: 2        # maintenance windows, access, outages
      contract: 10         # terms, scope, deliverables

A category is lower-case letters, digits and _ (at most 32 characters); its days a number
more than 0 and at most 365 (half a day: 0.5). Every problem is one line (UserError); the
inventory check makes the same check before a run. An inventory without it records no
vendor questions to the agency (``milepost vendor question add --from-vendor`` says so).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from milepost.errors import UserError
from milepost.input_checks import kind_of, shown
from milepost.inventory.reading import default_inventory, inventory_variables

__all__ = ["COMMITMENTS_VAR", "MAX_DAYS", "load_commitments", "parse_commitments"]

COMMITMENTS_VAR = "milepost_question_commitments"
CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_DAYS = 365


def parse_commitments(value: Any) -> dict[str, float]:
    """{category: days} from a milepost_question_commitments value (None: no categories).
    UserError (one line naming the category) for anything else."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserError(
            f"{COMMITMENTS_VAR} must map question categories to days, e.g. {{billing: 5,"
            f" security: 1}}, not {kind_of(value)}"
        )
    found: dict[str, float] = {}
    for key, days in value.items():
        if not isinstance(key, str) or not CATEGORY.fullmatch(key):
            raise UserError(
                f"{COMMITMENTS_VAR} category {shown(key, 40)} is not a category name:"
                " lower-case letters, digits and _, e.g. billing"
            )
        if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= MAX_DAYS:
            raise UserError(
                f"{COMMITMENTS_VAR}.{key} must be a number of days more than 0 and at most"
                f" {MAX_DAYS}, not {shown(days, 40)}"
            )
        found[key] = float(days)
    return found


def load_commitments(sources: Sequence[Path] | None = None) -> dict[str, float]:
    """The inventory's commitments (default: the inventory ansible.cfg names), checked."""
    paths = list(sources) if sources else default_inventory()
    controller, _ = inventory_variables(paths, (COMMITMENTS_VAR,))
    return parse_commitments(controller.get(COMMITMENTS_VAR))
