"""The lab inventory that `scripts/lab up` writes: inventory/lab/hosts.yml."""

import shlex
from pathlib import Path
from typing import Any

import yaml

from milepost.errors import UserError
from milepost.lab.topology import EXCHANGE_DIR, EXCHANGE_USER, GROUPS, LabHost
from milepost.lab.vendor_endpoints import Endpoint

#: Characters a path written into the inventory may not hold: Ansible templates inventory
#: text ({{ {% {#), and the signing key's path sits in a quoted Jinja string (' \\).
UNSAFE_IN_PATH = frozenset("'\"\\{}%#")

HEADER = (
    "---\n# Written by `scripts/lab up`; rewritten on every up, removed by down. Do not edit.\n"
)


class _Dumper(yaml.SafeDumper):
    """Indents list items under their key, as yamllint expects."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _plain(path: Path, what: str) -> str:
    """``path`` as inventory text; UserError if Ansible would read it as anything else."""
    text = str(path)
    bad = sorted({c for c in text if c in UNSAFE_IN_PATH or not c.isprintable()})
    if bad:
        raise UserError(
            f"the lab's {what} {ascii(text)[:200]} holds {ascii(''.join(bad))}: Ansible would"
            " read those in the inventory as code or controls; set MILEPOST_STATE_DIR to a"
            " plain path"
        )
    return text


def interfaces(
    served: list[Endpoint],
    ca_file: Path,
    exchange: LabHost | None,
    key_file: Path,
    known_hosts: Path,
) -> list[dict[str, Any]]:
    """milepost_interfaces of the lab: its vendor APIs over HTTPS (trusting the lab CA) and
    the file exchange over SFTP (milepost.lab.vendor_endpoints)."""
    found: list[dict[str, Any]] = [
        {
            "name": e.name,
            "vendor": e.vendor,
            "kind": "https",
            "url": e.url,
            "ca_file": _plain(ca_file, "CA file"),
            "expected_api_version": e.api_version,
        }
        for e in served
    ]
    if exchange is not None:
        found.append(
            {
                "name": "file-exchange",
                "vendor": exchange.vendor,
                "kind": "sftp",
                "host": "127.0.0.1",
                "port": exchange.port,
                "username": EXCHANGE_USER,
                "private_key_file": _plain(key_file, "SSH key"),
                "known_hosts_file": _plain(known_hosts, "known_hosts file"),
                "remote_dir": EXCHANGE_DIR,
            }
        )
    return found


def render(
    hosts: list[LabHost],
    *,
    key_file: Path,
    known_hosts: Path,
    control_dir: Path,
    repo_url: str,
    repo_key: Path,
    interfaces: list[dict[str, Any]] | None = None,
) -> str:
    key_text = _plain(key_file, "SSH key")
    known_text = _plain(known_hosts, "known_hosts file")
    control_text = _plain(control_dir, "SSH control directory")
    repo_key_text = _plain(repo_key, "repository key")
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
                "ansible_ssh_private_key_file": key_text,
                # Ansible splits these with shlex: a path with a space stays one argument.
                "ansible_ssh_common_args": (
                    f"-o UserKnownHostsFile={shlex.quote(known_text)} -o StrictHostKeyChecking=yes"
                ),
                "ansible_control_path_dir": control_text,
                "milepost_interfaces": interfaces or [],
                "ruc_apt_source_uris": [repo_url],
                # The advisory sync reads the same archive the hosts install from: the lab
                # repository, Debian's own packages re-signed by the lab key (os_updates).
                "milepost_debian_archives": [
                    {
                        "uri": repo_url,
                        "suites": ["bookworm", "bookworm-security"],
                        "components": ["main"],
                        "signed_by": _plain(repo_key.with_suffix(".gpg"), "repository keyring"),
                    }
                ],
                "ruc_apt_source_signing_key": (
                    "{{ lookup('ansible.builtin.file', '" + repo_key_text + "') }}"
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
