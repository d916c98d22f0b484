"""The execution environment definition (execution-environment.yml, ansible-builder v3)
installs the ansible-core and ansible-runner that requirements.txt pins, every pinned
dependency and the milepost package, and ansible-builder turns it into a build context."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def pinned(name: str) -> str:
    match = re.search(rf"^{re.escape(name)}==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert match, f"{name} is not pinned in requirements.txt"
    return match.group(1)


def test_the_definition_pins_what_requirements_txt_pins():
    definition = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    deps = definition["dependencies"]
    assert deps["ansible_core"]["package_pip"] == f"ansible-core=={pinned('ansible-core')}"
    assert deps["ansible_runner"]["package_pip"] == f"ansible-runner=={pinned('ansible-runner')}"
    assert deps["python"] == "requirements.txt"


def test_ansible_builder_creates_a_build_context_with_the_milepost_package(tmp_path):
    context = tmp_path / "context"
    builder = Path(sys.executable).parent / "ansible-builder"
    proc = subprocess.run(
        [str(builder), "create", "-f", "execution-environment.yml", "--context", str(context)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Dockerfile").read_text()
    assert "ansible-core==" + pinned("ansible-core") in containerfile
    assert (context / "_build" / "milepost" / "pyproject.toml").is_file()
    assert (context / "_build" / "milepost" / "milepost" / "cli" / "main.py").is_file()
    assert "pip install --no-deps --no-build-isolation /opt/milepost" in containerfile
    # ansible-runner's own callback path would hide the project's ledger callback.
    assert "ENV ANSIBLE_CALLBACK_PLUGINS=/runner/project/plugins/callback" in containerfile
    assert (context / "_build" / "requirements.txt").read_text() == (
        ROOT / "requirements.txt"
    ).read_text()
