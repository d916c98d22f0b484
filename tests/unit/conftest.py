"""Unit tests, one folder per capability of the milepost package (and plugins/ for the
Ansible plugins). Test modules have unique names and import each other's scenarios by name
(from test_notify import ...), whatever order pytest collects them in, so every folder is
put on sys.path here.

Unit tests load plugins/modules/*.py straight from their files. Ansible finds the
project's module_utils (plugins/module_utils, named in ansible.cfg) only when it packages a
module for a host, so here they are put under ansible.module_utils by hand."""

import sys
from pathlib import Path

import ansible.module_utils
import pytest

for _folder in sorted(Path(__file__).resolve().parent.iterdir()):
    if (
        _folder.is_dir()
        and not _folder.name.startswith((".", "_"))
        and str(_folder) not in sys.path
    ):
        sys.path.append(str(_folder))

MODULE_UTILS = Path(__file__).resolve().parents[2] / "plugins" / "module_utils"
if str(MODULE_UTILS) not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(MODULE_UTILS))


PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def load_module(name: str, kind: str = "modules"):
    """Import plugins/<kind>/<name>.py (modules are not a package): a module as <name>,
    another kind of plugin as <name>_<kind> (an action plugin has its module's name)."""
    import importlib.util

    as_name = name if kind == "modules" else f"{name}_{kind}"
    spec = importlib.util.spec_from_file_location(as_name, PLUGINS / kind / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    """A real SQLite ledger in tmp_path, also the one every `milepost` command of the test
    opens (MILEPOST_LEDGER_URL); the operator is alice."""
    from milepost.ledger import Ledger

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    monkeypatch.setenv("MILEPOST_LEDGER_URL", url)
    monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SUDO_USER", "alice")
    opened = Ledger.open(url)
    yield opened
    opened.close()
