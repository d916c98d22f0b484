"""Which lab host belongs to which RUC group and vendor, and on which port it listens."""

from dataclasses import dataclass

MIN_HOSTS = 1
MAX_HOSTS = 50
DEFAULT_HOSTS = 6
SSH_PORT_BASE = 2201
REPO_PORT = 8780

# Group order decides the assignment: host i joins GROUPS[i % 5], so the default six hosts
# give the payment gateway two hosts, enough for a rolling update.
GROUPS: tuple[tuple[str, str, str], ...] = (
    # (inventory group, host name prefix, vendor that operates it)
    ("payment_gateway", "pay", "harbor_payments"),
    ("account_management", "acct", "keystone_accounts"),
    ("mileage_ingest", "ingest", "odometrix_devices"),
    ("sftp_exchange", "sftp", "relay_file_exchange"),
    ("reporting", "report", "ledgerline_analytics"),
)


@dataclass(frozen=True)
class LabHost:
    name: str
    group: str
    vendor: str
    port: int

    @property
    def container(self) -> str:
        return f"milepost-lab-{self.name}"


def plan(count: int, port_base: int = SSH_PORT_BASE) -> list[LabHost]:
    if not MIN_HOSTS <= count <= MAX_HOSTS:
        raise ValueError(f"host count {count} is outside {MIN_HOSTS}..{MAX_HOSTS}")
    hosts = []
    seen: dict[str, int] = {}
    for i in range(count):
        group, prefix, vendor = GROUPS[i % len(GROUPS)]
        seen[group] = seen.get(group, 0) + 1
        hosts.append(LabHost(f"{prefix}-{seen[group]:02d}", group, vendor, port_base + i))
    return hosts
