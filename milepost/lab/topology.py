"""Which lab host belongs to which RUC group and vendor, and on which port it listens."""

from dataclasses import dataclass

MIN_HOSTS = 1
MAX_HOSTS = 50
DEFAULT_HOSTS = 6
SSH_PORT_BASE = 2201
REPO_PORT = 8780
#: The vendors' HTTPS endpoints listen from here on, one port per group (in GROUPS order).
VENDOR_PORT_BASE = 8443

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

#: Each group's vendor API the lab serves over HTTPS (a real TLS server on 127.0.0.1, with a
#: certificate from the lab's CA): (interface name, the API version it reports).
VENDOR_APIS: dict[str, tuple[str, str]] = {
    "payment_gateway": ("payments-api", "2.1"),
    "account_management": ("accounts-api", "1.4"),
    "mileage_ingest": ("mileage-ingest-api", "3.0"),
    "sftp_exchange": ("exchange-status-api", "1.0"),
    "reporting": ("reporting-api", "5.1"),
}
#: The file exchange the lab serves: SFTP on the first host of this group, this user.
EXCHANGE_GROUP = "sftp_exchange"
EXCHANGE_USER = "exchange"
EXCHANGE_DIR = "/srv/exchange/inbound"


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
