"""The lab inventory that `scripts/lab up` writes: inventory/lab/hosts.yml."""

from pathlib import Path
from typing import Any

import yaml

from milepost.lab.topology import GROUPS, LabHost

HEADER = (
    "---\n# Written by `scripts/lab up`; rewritten on every up, removed by down. Do not edit.\n"
)


class _Dumper(yaml.SafeDumper):
    """Indents list items under their key, as yamllint expects."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def render(
    hosts: list[LabHost],
    *,
    key_file: Path,
    known_hosts: Path,
    control_dir: Path,
    repo_url: str,
    repo_key: Path,
) -> str:
    children: dict[str, Any] = {}
    for group, _prefix, vendor in GROUPS:
        members = {h.name: {"ansible_port": h.port} for h in hosts if h.group == group}
        if members:
            children[group] = {"vars": {"milepost_vendor": vendor}, "hosts": members}
    document = {
        "all": {
            "vars": {
                "milepost_environment": "lab",
                "ansible_host": "127.0.0.1",
                "ansible_user": "ops",
                "ansible_ssh_private_key_file": str(key_file),
                "ansible_ssh_common_args": (
                    f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
                ),
                "ansible_control_path_dir": str(control_dir),
                "ruc_apt_source_uris": [repo_url],
                "ruc_apt_source_signing_key": (
                    "{{ lookup('ansible.builtin.file', '" + str(repo_key) + "') }}"
                ),
            },
            "children": {"ruc": {"children": children}},
        }
    }
    return HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
