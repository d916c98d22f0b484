"""Every plugin's DOCUMENTATION parses: ansible-doc renders it (a broken one only shows up
as a warning at run time, when the plugin is silently not loaded)."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLUGINS = [
    (kind, path.stem)
    for kind, folder in (
        ("module", "modules"),
        ("callback", "callback"),
        ("lookup", "lookup"),
        ("filter", "filter"),
    )
    for path in sorted((ROOT / "plugins" / folder).glob("*.py"))
    if not path.name.startswith("_")
]


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_ansible_doc_renders_the_plugin(kind, name):
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    proc = subprocess.run(
        ["ansible-doc", "-t", kind, name], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "ERROR" not in proc.stderr
