import subprocess
from pathlib import Path

import pytest
import yaml

from milepost.lab import inventory
from milepost.lab.base_image import debian_mirror
from milepost.lab.topology import GROUPS, plan


def test_default_fleet_covers_every_group_and_doubles_the_payment_gateway():
    hosts = plan(6)
    assert [h.name for h in hosts] == [
        "pay-01",
        "acct-01",
        "ingest-01",
        "sftp-01",
        "report-01",
        "pay-02",
    ]
    assert {h.group for h in hosts} == {g for g, _, _ in GROUPS}
    assert len({h.port for h in hosts}) == 6


@pytest.mark.parametrize("count", [0, 51, -1])
def test_plan_refuses_counts_outside_1_to_50(count):
    with pytest.raises(ValueError):
        plan(count)


def test_fifty_hosts_have_unique_names_and_ports():
    hosts = plan(50, port_base=3000)
    assert len({h.name for h in hosts}) == 50
    assert [h.port for h in hosts] == list(range(3000, 3050))


def test_rendered_inventory_is_valid_for_ansible(tmp_path: Path):
    text = inventory.render(
        plan(6),
        key_file=tmp_path / "key",
        known_hosts=tmp_path / "known_hosts",
        control_dir=tmp_path / "cp",
        repo_url="http://127.0.0.1:8780/",
        repo_key=tmp_path / "key.asc",
    )
    doc = yaml.safe_load(text)
    groups = doc["all"]["children"]["ruc"]["children"]
    assert groups["payment_gateway"]["vars"]["milepost_vendor"] == "harbor_payments"
    assert set(groups["payment_gateway"]["hosts"]) == {"pay-01", "pay-02"}
    assert "StrictHostKeyChecking=yes" in doc["all"]["vars"]["ansible_ssh_common_args"]
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    listed = subprocess.run(
        ["ansible-inventory", "-i", str(path), "--graph"], capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert "@payment_gateway" in listed.stdout and "pay-02" in listed.stdout


def test_mirror_is_read_from_deb822_sources(tmp_path: Path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main contrib\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_is_read_from_one_line_sources(tmp_path: Path):
    (tmp_path / "sources.list").write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_no_mirror_is_a_user_error(tmp_path: Path):
    from milepost.errors import UserError

    with pytest.raises(UserError, match="no Debian source for bookworm main"):
        debian_mirror(tmp_path)


def test_lab_group_vars_pin_each_group_to_its_latest_good_release():
    from milepost.lab.ruc_packages import CATALOG

    root = Path(__file__).resolve().parents[3] / "inventory" / "lab" / "group_vars"
    for package in CATALOG:
        pinned = yaml.safe_load((root / f"{package.group}.yml").read_text())
        assert pinned["app_update_versions"] == {package.name: package.latest.version}
