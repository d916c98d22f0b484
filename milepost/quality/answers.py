"""The glitches each QC check answers: a check added (or changed) because of a glitch
carries a pytest marker naming it, beside the check in tests/qc::

    @pytest.mark.answers("G-1a2b3c4d")
    def test_the_ingest_spool_is_not_full(host): ...

`milepost qc record-change` reads the markers (here, from the source: nothing is run) and
records the map {check: [glitch ids]} with the change; every glitch a marker names must be
in the ledger. The newest recorded change's map is the one QC uses: a check of it that
fails later says "caught by the check added for glitch G-..." in its ``qc_result``
(``answers``), in the glitch the failure opens and in `milepost qc run`'s output.
A marker on a class applies to its checks; the ids must be string literals.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.ledger.names import GLITCH
from milepost.oversight.registers import NOTE_ID, PREFIXES

__all__ = ["MARKER", "answers_of", "caught_by", "check_answers", "marked_answers"]

#: The pytest marker's name (tests/qc/conftest.py registers it).
MARKER = "answers"
#: At most this many glitches per check, and checks in the map.
MAX_PER_CHECK = 20
MAX_CHECKS = 1000


def _marker_ids(decorator: ast.expr, where: str) -> list[str] | None:
    """The glitch ids of an ``answers`` marker (``pytest.mark.answers(...)`` or
    ``mark.answers(...)``), or None for another decorator."""
    if not isinstance(decorator, ast.Call):
        return None
    func = decorator.func
    if not (isinstance(func, ast.Attribute) and func.attr == MARKER):
        return None
    inner = func.value
    if not (
        (isinstance(inner, ast.Attribute) and inner.attr == "mark")
        or (isinstance(inner, ast.Name) and inner.id == "mark")
    ):
        return None
    ids = []
    for arg in decorator.args:
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            raise UserError(
                f"{where}: the {MARKER} marker takes glitch ids as text, e.g."
                f' @pytest.mark.{MARKER}("G-1a2b3c4d")'
            )
        ids.append(arg.value)
    if not ids or decorator.keywords:
        raise UserError(
            f'{where}: give the {MARKER} marker glitch ids only: @pytest.mark.{MARKER}("G-...")'
        )
    for glitch_id in ids:
        if not (NOTE_ID.fullmatch(glitch_id) and glitch_id.startswith(PREFIXES[GLITCH])):
            raise UserError(
                f"{where}: {shown(glitch_id)} is not a glitch id (G-...):"
                " `milepost note list --type glitch` shows them"
            )
    return ids


def _decorated(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, where: str
) -> list[str]:
    found: list[str] = []
    for decorator in node.decorator_list:
        found.extend(_marker_ids(decorator, f"{where} {node.name}") or ())
    return found


def _add(into: dict[str, list[str]], check: str, ids: Iterable[str]) -> None:
    for glitch_id in ids:
        if glitch_id not in into.setdefault(check, []):
            into[check].append(glitch_id)


def marked_answers(files: Sequence[Path], root: Path) -> dict[str, list[str]]:
    """{check: [glitch ids]} from the ``answers`` markers of the checks (``test_*``
    functions, at module level or in a class) in ``files``. UserError (one line) for a
    file that is not Python or a marker that does not name glitch ids."""
    found: dict[str, list[str]] = {}
    for path in files:
        where = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        try:
            tree = ast.parse(path.read_bytes(), filename=where)
        except (SyntaxError, ValueError) as bad:
            raise UserError(f"{where} is not valid Python ({bad}): fix it first") from None
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name.startswith("test"):
                    _add(found, node.name, _decorated(node, where))
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                shared = _decorated(node, where)
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                        item.name.startswith("test")
                    ):
                        _add(found, item.name, [*shared, *_decorated(item, where)])
    return {check: ids for check, ids in sorted(found.items()) if ids}


def check_answers(root: Path, catalogue: Path) -> dict[str, list[str]]:
    """The ``answers`` map of every check in the catalogue directory ``catalogue``."""
    files = [p for p in sorted(catalogue.rglob("*.py")) if "__pycache__" not in p.parts]
    return marked_answers(files, root)


def answers_of(details: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """The ``answers`` map recorded with a catalogue change (its note's details), as far as
    it has the shape of one (milepost.ledger.bodies has checked it)."""
    given = (details or {}).get(MARKER)
    if not isinstance(given, dict):
        return {}
    return {
        str(check): [str(g) for g in ids if isinstance(g, str)][:MAX_PER_CHECK]
        for check, ids in list(given.items())[:MAX_CHECKS]
        if isinstance(ids, list)
    }


def caught_by(glitch_ids: Sequence[str]) -> str:
    """'caught by the check added for glitch G-...' (the words every output uses)."""
    if not glitch_ids:
        return ""
    noun = "glitch" if len(glitch_ids) == 1 else "glitches"
    return f"caught by the check added for {noun} {', '.join(glitch_ids)}"
