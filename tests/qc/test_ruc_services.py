"""Every RUC service of a host: at its pinned version, its configuration valid, running and
answering its health check."""


def test_every_ruc_package_is_at_its_pinned_version(host, pins):
    wrong = {
        name: host.package(name).version
        for name, version in pins.items()
        if host.package(name).version != version
    }
    assert not wrong, f"not at the pinned version (pinned: {pins}): {wrong}"


def test_every_ruc_configuration_file_is_valid(host, pins):
    for name in pins:
        with host.sudo():  # the configuration may hold secrets: root only
            check = host.run("/usr/bin/%s check-config --config /etc/ruc/%s.conf", name, name)
        assert check.rc == 0, f"{name}: {check.stderr.strip() or check.stdout.strip()}"


def test_every_ruc_service_is_running(host, pins):
    for name in pins:
        # [/] keeps pgrep from matching the shell that runs it.
        found = host.run("pgrep -f %s", f"[/]usr/bin/{name} run")
        assert found.rc == 0, f"{name}: no running process"


def test_every_ruc_service_answers_its_health_check(host, pins):
    for name in pins:
        with host.sudo():
            health = host.run("/usr/bin/%s health --wait 5", name)
        assert health.rc == 0, f"{name}: {health.stderr.strip() or health.stdout.strip()}"
