"""Security advisories in a real SQLite ledger: adding, merging, listing, importing CISA's
real KEV catalog and vendor files, and hostile input refused with nothing recorded."""

import json
import textwrap
from pathlib import Path

import pytest
from inventories import write_inventory

from milepost.cli.main import main
from milepost.errors import UserError
from milepost.ledger import Ledger
from milepost.patching.advisories import ImportSummary, add_advisory, get_advisory, load_advisories
from milepost.patching.advisory_import import import_kev, import_vendor
from milepost.patching.policy import KevProduct

# The real catalog lives beside the checkout (../shared/data/kev/), not in the repository.
KEV = (
    Path(__file__).resolve().parents[4] / "shared" / "data" / "kev"
    / "known_exploited_vulnerabilities.json"
)  # fmt: skip
needs_kev = pytest.mark.skipif(
    not KEV.is_file(), reason="the KEV catalog is not beside the checkout (../shared/data/kev/)"
)
OPENSSL = "CVE-2014-0160"  # Heartbleed: OpenSSL's only KEV entry in catalog 2025.08.25
PRODUCTS = (
    KevProduct("openssl", "OpenSSL", ("libssl3", "openssl")),
    KevProduct("Sudo", "sudo", ("sudo",)),
)

POLICY = """\
milepost_kev_products:
  - vendor_project: openssl
    product: OpenSSL
    packages: [libssl3, openssl]
  - vendor_project: Sudo
    product: sudo
    packages: [sudo]
"""
VENDOR_YAML = """\
advisories:
  - id: RUC-2026-001
    severity: high
    published: 2026-01-15
    title: Payment gateway replays a refund
    packages:
      ruc-payment-gateway: "2.4.0"
      ruc-account-api: null
  - id: CVE-2026-10001
    severity: critical
    published: "2026-02-01"
    kev: true
    due_date: "2026-02-15"
    packages: {ruc-sftp-bridge: "1.9.2-1"}
"""
VENDOR_CSV = """\
id,severity,published,package,fixed_version,title
HPSA-2026-0042,medium,2026-03-01,ruc-reporting,3.1.0,Reporting leaks a file name
HPSA-2026-0042,medium,2026-03-01,ruc-mileage-ingest,,
RUC-2026-002,low,2026-03-02,ruc-account-api,none,
"""


@pytest.fixture
def inventory(tmp_path):
    return str(write_inventory(tmp_path / "inventory", patch_policy=POLICY))


def count(ledger: Ledger) -> int:
    with ledger.read_transaction() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM ledger_records").scalar_one())


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("milepost: error: ")
    assert "Traceback" not in err
    assert lines[0].isascii(), lines[0]
    return lines[0]


def write(tmp_path, name, text) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------ API


def test_add_merge_and_unchanged(ledger):
    first = add_advisory(
        ledger,
        advisory_id="CVE-2025-12345",
        packages={"ruc-payment-gateway": "2.4.0"},
        severity="High",
        published="2025-08-01",
        title="  Gateway   refund replay ",
    )
    assert first.severity == "high" and first.kev is False and first.source == "manual"
    assert first.title == "Gateway refund replay" and first.published == "2025-08-01"
    assert first.packages == {"ruc-payment-gateway": "2.4.0"} and first.seq == 1
    assert first.recorded_by == "alice" and first.due_date is None
    merged = add_advisory(
        ledger,
        advisory_id="CVE-2025-12345",
        packages={"ruc-account-api": None},
        severity=None,
        kev=True,
        due_date="2025-08-21",
    )
    assert merged.seq == 2 and merged.severity == "high" and merged.kev
    assert merged.packages == {"ruc-account-api": None, "ruc-payment-gateway": "2.4.0"}
    assert merged.title == "Gateway refund replay" and merged.due_date == "2025-08-21"
    again = add_advisory(
        ledger, advisory_id="CVE-2025-12345", packages={"ruc-account-api": None}, severity="high"
    )
    assert again == merged and count(ledger) == 2
    assert get_advisory(ledger, "CVE-2025-12345") == merged
    assert list(load_advisories(ledger)) == ["CVE-2025-12345"]
    assert merged.as_dict()["packages"] == merged.packages


def test_new_kev_advisory_defaults_to_critical_and_today(ledger):
    found = add_advisory(
        ledger,
        advisory_id="RUC-2026-001",
        packages={"ruc-reporting": None},
        severity=None,
        kev=True,
    )
    assert found.severity == "critical" and len(found.published) == 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"packages": {"ruc-reporting": "1.0"}, "severity": None}, "needs a severity"),
        ({"packages": None, "severity": "high"}, "needs at least one package"),
        ({"packages": {}, "severity": "high"}, "needs at least one package"),
        ({"packages": {"ruc-reporting": "1.0"}, "severity": "urgent"}, "is not a severity"),
        (
            {"packages": {"ruc-reporting": "1.0"}, "severity": "low", "due_date": "2026-01-01"},
            "not a KEV advisory",
        ),
        ({"packages": {"Bad Name": "1.0"}, "severity": "low"}, "not a Debian package name"),
        ({"packages": {"ruc-reporting": "v1"}, "severity": "low"}, "not a Debian version"),
        (
            {"packages": {"ruc-reporting": "1"}, "severity": "low", "published": "yesterday"},
            "not a date",
        ),
    ],
)
def test_add_refuses_bad_input(ledger, kwargs, message):
    with pytest.raises(UserError, match=message):
        add_advisory(ledger, advisory_id="CVE-2025-1111", **kwargs)
    assert count(ledger) == 0


def test_get_unknown_advisory(ledger):
    with pytest.raises(UserError, match="unknown advisory CVE-2025-9999: add it with"):
        get_advisory(ledger, "CVE-2025-9999")
    with pytest.raises(UserError, match="not an advisory id"):
        get_advisory(ledger, "$(id)")


# ------------------------------------------------------------------ CLI add / list


def test_cli_add_and_list(ledger, capsys):
    code, out, err = run_cli(
        capsys,
        "advisory", "add", "--id", "CVE-2025-12345", "--package", "ruc-payment-gateway=2.4.0",
        "--package", "ruc-account-api=none", "--severity", "critical", "--kev",
        "--due", "2025-09-15", "--published", "2025-08-25", "--title", "Gateway [red]bug[/red]",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("advisory CVE-2025-12345 recorded (critical; KEV, due 2025-09-15;")
    code, out, err = run_cli(
        capsys, "advisory", "add", "--id", "RUC-2026-001", "--package", "ruc-reporting=",
        "--severity", "low",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run_cli(
        capsys, "advisory", "add", "--id", "RUC-2026-001", "--package", "ruc-reporting="
    )
    assert code == 0 and "advisory RUC-2026-001 unchanged" in out and count(ledger) == 2
    code, out, _ = run_cli(capsys, "advisory", "list")
    assert code == 0 and "CVE-2025-12345" in out and "RUC-2026-001" in out
    assert "ruc-account-api (no fix), ruc-payment-gateway>=2.4.0" in out
    assert "Gateway [red]bug[/red]" in out  # shown as text, not markup
    code, out, _ = run_cli(capsys, "advisory", "list", "--json", "--kev")
    data = json.loads(out)
    assert [a["advisory_id"] for a in data] == ["CVE-2025-12345"]
    assert data[0]["packages"] == {"ruc-account-api": None, "ruc-payment-gateway": "2.4.0"}
    code, out, _ = run_cli(capsys, "advisory", "list", "--json", "--package", "ruc-reporting")
    assert [a["advisory_id"] for a in json.loads(out)] == ["RUC-2026-001"]
    code, out, _ = run_cli(capsys, "advisory", "list", "--package", "nginx")
    assert code == 0 and "no advisories" in out


HOSTILE = [
    ";rm -rf /",
    "$(id)",
    "-oProxyCommand=x",
    "a\nb",
    "a\0b",
    "a" * 65536,
    "ab\u202ecd",
    "ab\u200bcd",
]
BASE = {
    "--id": "CVE-2025-1111",
    "name": "ruc-payment-gateway",
    "version": "2.4.0",
    "--title": "A fine title",
}


def hostile_args(field, value):
    given = {**BASE, field: value}
    return [
        "advisory", "add", "--id", given["--id"],
        "--package", f"{given['name']}={given['version']}",
        "--severity", "high", "--title", given["--title"],
    ]  # fmt: skip


#: A title is free text: shell characters in it are plain text (the next test); the rest of
#: HOSTILE is refused there too.
SHELL_TEXT = (";rm -rf /", "$(id)", "-oProxyCommand=x")
CASES = [
    (field, value)
    for field in ("--id", "name", "version", "--title")
    for value in HOSTILE
    if not (field == "--title" and value in SHELL_TEXT)
]


@pytest.mark.parametrize(("field", "value"), CASES, ids=range(len(CASES)))
def test_cli_refuses_hostile_input(ledger, capsys, field, value):
    code, out, err = run_cli(capsys, *hostile_args(field, value))
    line = one_line_error(err)
    assert code == 2 and out == ""
    assert len(line) < 400
    assert count(ledger) == 0


def test_cli_title_with_shell_characters_is_plain_text(ledger, capsys):
    code, out, err = run_cli(capsys, *hostile_args("--title", "$(id); rm -rf / `x`"))
    assert code == 0, err
    assert get_advisory(ledger, "CVE-2025-1111").title == "$(id); rm -rf / `x`"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--package", "ruc-reporting"], "is not NAME=VERSION"),
        (["--package", "ruc-reporting=1", "--severity", "urgent"], "is not a severity"),
        (["--package", "ruc-reporting=1", "--severity", "low", "--due", "2026-01-01"], "KEV"),
        (["--package", "ruc-reporting=1", "--severity", "low", "--due", "soon"], "not a date"),
    ],
)
def test_cli_add_bad_input(ledger, capsys, args, message):
    code, _, err = run_cli(capsys, "advisory", "add", "--id", "CVE-2025-1111", *args)
    assert code == 2 and message in one_line_error(err) and count(ledger) == 0


# ------------------------------------------------------------------ KEV import


@needs_kev
def test_import_the_real_kev_catalog(ledger, inventory, capsys, monkeypatch):
    # A fixed version known before the import is kept; so is a severity other than critical.
    add_advisory(ledger, advisory_id=OPENSSL, packages={"libssl3": "3.0.2-1"}, severity="high")
    calls = []
    original = Ledger.append_locked

    def counting(self, conn, prepared):
        calls.append(len(prepared))
        return original(self, conn, prepared)

    monkeypatch.setattr(Ledger, "append_locked", counting)
    code, out, err = run_cli(capsys, "advisory", "import", str(KEV), "-i", inventory)
    assert code == 0, err
    assert out.strip() == (
        "imported KEV catalog 2025.08.25: 1404 entries, 1403 added, 1 updated, 0 unchanged,"
        " 2 mapped to packages"
    )
    assert calls == [1404]  # one append for the whole catalog
    assert count(ledger) == 1405
    found = load_advisories(ledger)
    assert len(found) == 1404
    openssl = found[OPENSSL]
    assert openssl.kev and openssl.source == "kev" and openssl.severity == "high"
    assert openssl.packages == {"libssl3": "3.0.2-1", "openssl": None}
    assert openssl.vendor_project == "OpenSSL" and openssl.catalog_version == "2025.08.25"
    assert openssl.due_date and openssl.published
    mapped = {a.advisory_id for a in found.values() if a.packages}
    assert len(mapped) == 2 and OPENSSL in mapped
    git = found["CVE-2025-48384"]
    assert git.packages == {} and git.severity == "critical" and git.due_date == "2025-09-15"
    assert git.title == "Git Link Following Vulnerability" and git.published == "2025-08-25"

    code, out, err = run_cli(capsys, "advisory", "import", str(KEV), "-i", inventory, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["unchanged"] == 1404 and summary["added"] == summary["updated"] == 0
    assert calls == [1404] and count(ledger) == 1405
    assert run_cli(capsys, "ledger", "verify")[0] == 0
    code, out, _ = run_cli(capsys, "advisory", "list", "--json", "--package", "openssl")
    assert [a["advisory_id"] for a in json.loads(out)] == [OPENSSL]


def kev_catalog(*entries, version="2026.01.02"):
    return json.dumps(
        {"catalogVersion": version, "count": len(entries), "vulnerabilities": list(entries)}
    )


def kev_entry(cve="CVE-2025-0001", **changes):
    entry = {
        "cveID": cve,
        "vendorProject": "OpenSSL",
        "product": "OpenSSL",
        "vulnerabilityName": "OpenSSL Infinite Loop Vulnerability",
        "dateAdded": "2026-01-02",
        "shortDescription": "x",
        "requiredAction": "Apply updates.",
        "dueDate": "2026-01-23",
    }
    entry.update(changes)
    return entry


def test_import_kev_updates_what_changed(ledger, tmp_path):
    path = write(tmp_path, "kev.json", kev_catalog(kev_entry(), kev_entry("CVE-2025-0002")))
    summary = import_kev(ledger, path, PRODUCTS)
    assert summary == ImportSummary(2, 0, 0, 2, "2026.01.02")
    later = kev_catalog(kev_entry(dueDate="2026-01-30"), kev_entry("CVE-2025-0002"), version="x")
    path.write_text(later)
    assert import_kev(ledger, path, ()) == ImportSummary(0, 1, 1, 0, "x")
    found = load_advisories(ledger)
    assert found["CVE-2025-0001"].due_date == "2026-01-30"
    assert found["CVE-2025-0001"].catalog_version == "x"
    # The mapping is kept once made; an unchanged entry keeps the catalog that set it.
    assert found["CVE-2025-0002"].packages == {"libssl3": None, "openssl": None}
    assert found["CVE-2025-0002"].catalog_version == "2026.01.02"
    assert count(ledger) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON"),
        ("[]", "is not a KEV catalog"),
        ('{"vulnerabilities": {}}', "is not a KEV catalog"),
        ('{"vulnerabilities": []}', "has no catalogVersion"),
        (kev_catalog(kev_entry(), "x"), "entry 1 is not an object"),
        (
            kev_catalog(kev_entry(), kev_entry("CVE-2025-0002", dueDate=None)),
            "entry 1 field dueDate",
        ),
        (kev_catalog(kev_entry(), kev_entry("CVE-2025-0002;id")), "entry 1 field cveID"),
        (kev_catalog(kev_entry("RUC-2025-0002")), "entry 0 field cveID"),
        (kev_catalog(kev_entry("CVE-2025-0002\u202e")), "bidirectional control character U+202E"),
        (kev_catalog(kev_entry(dateAdded="2026-13-01")), "entry 0 field dateAdded"),
        (kev_catalog(kev_entry(vulnerabilityName="a\nb")), "contains a newline"),
        (kev_catalog(kev_entry(), kev_entry()), "repeats entry 0"),
        ("[" * 100000 + "]" * 100000, "is not JSON"),
    ],
)
def test_cli_refuses_bad_kev_files(ledger, tmp_path, capsys, text, message):
    path = write(tmp_path, "kev.json", text)
    code, out, err = run_cli(capsys, "advisory", "import", str(path), "--format", "kev")
    assert code == 2 and out == ""
    assert message in one_line_error(err)
    assert count(ledger) == 0


@needs_kev
def test_one_bad_entry_in_the_real_catalog_imports_nothing(ledger, tmp_path):
    catalog = json.loads(KEV.read_text())
    catalog["vulnerabilities"][700]["dueDate"] = "2025-02-30"
    path = write(tmp_path, "kev.json", json.dumps(catalog))
    with pytest.raises(UserError, match="entry 700 field dueDate '2025-02-30' is not a date"):
        import_kev(ledger, path, PRODUCTS)
    assert count(ledger) == 0


def test_missing_and_huge_kev_files(ledger, tmp_path, capsys):
    code, _, err = run_cli(capsys, "advisory", "import", str(tmp_path / "nope.json"))
    assert code == 2 and "does not exist" in one_line_error(err)
    code, _, err = run_cli(capsys, "advisory", "import", "kev\0\u202e.json", "--format", "kev")
    assert code == 2 and "null byte" in one_line_error(err)
    with pytest.raises(UserError, match="does not exist or is not a file"):
        import_kev(ledger, Path("kev\0.json"), ())
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(100 * 1024 * 1024)  # sparse: nothing is written or read
    with pytest.raises(UserError, match="is 104857600 bytes: at most 64 MiB"):
        import_kev(ledger, huge, ())
    code, _, err = run_cli(capsys, "advisory", "import", str(huge), "--format", "vendor")
    assert code == 2 and "must be YAML" in one_line_error(err)
    assert count(ledger) == 0


# ------------------------------------------------------------------ vendor import


def test_import_vendor_yaml(ledger, tmp_path, capsys):
    path = write(tmp_path, "vendor.yml", VENDOR_YAML)
    code, out, err = run_cli(capsys, "advisory", "import", str(path))
    assert code == 0, err
    assert out.strip() == (
        "imported vendor advisories 'vendor.yml': 2 entries, 2 added, 0 updated, 0 unchanged"
    )
    found = load_advisories(ledger)
    ruc = found["RUC-2026-001"]
    assert ruc.source == "vendor" and ruc.severity == "high" and ruc.published == "2026-01-15"
    assert ruc.packages == {"ruc-account-api": None, "ruc-payment-gateway": "2.4.0"}
    assert ruc.title == "Payment gateway replays a refund" and not ruc.kev
    cve = found["CVE-2026-10001"]
    assert (
        cve.kev and cve.due_date == "2026-02-15" and cve.packages == {"ruc-sftp-bridge": "1.9.2-1"}
    )
    # The same file again: nothing appended. A plain list works too.
    assert import_vendor(ledger, path) == ImportSummary(0, 0, 2, 0, None)
    listed = write(tmp_path, "list.yaml", textwrap.dedent(VENDOR_YAML.split("\n", 1)[1]))
    assert import_vendor(ledger, listed).unchanged == 2
    assert count(ledger) == 2


def test_import_vendor_csv(ledger, tmp_path):
    path = write(tmp_path, "vendor.csv", VENDOR_CSV)
    assert import_vendor(ledger, path) == ImportSummary(2, 0, 0, 0, None)
    found = load_advisories(ledger)
    hp = found["HPSA-2026-0042"]
    assert hp.packages == {"ruc-mileage-ingest": None, "ruc-reporting": "3.1.0"}
    assert hp.severity == "medium" and hp.title == "Reporting leaks a file name"
    assert found["RUC-2026-002"].packages == {"ruc-account-api": None}
    assert import_vendor(ledger, path).unchanged == 2
    # A fix is now known: the advisory is updated, the other package kept.
    path.write_text(
        VENDOR_CSV.splitlines()[0]
        + "\nHPSA-2026-0042,medium,2026-03-01,ruc-mileage-ingest,4.0.1,\n"
    )
    assert import_vendor(ledger, path) == ImportSummary(0, 1, 0, 0, None)
    assert load_advisories(ledger)["HPSA-2026-0042"].packages == {
        "ruc-mileage-ingest": "4.0.1",
        "ruc-reporting": "3.1.0",
    }
    assert count(ledger) == 3


ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
advisories: *i
"""


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bomb.yml", ALIAS_BOMB, "aliases (*name) are not allowed"),
        ("bad.yml", "- id: [unclosed", "is not valid YAML"),
        ("bad.yml", "just text", "must hold a list of advisories"),
        ("bad.yml", "[]", "holds no advisories"),
        ("bad.yml", "- 42", "entry 0 is not a mapping"),
        ("bad.yml", VENDOR_YAML.replace("title:", "titel:"), "entry 0 has unknown field 'titel'"),
        ("bad.yml", VENDOR_YAML.replace('"2.4.0"', "2.40"), "must be text: quote it"),
        ("bad.yml", VENDOR_YAML.replace("ruc-sftp-bridge", "'$(id)'"), "entry 1 package name"),
        ("bad.yml", VENDOR_YAML.replace("1.9.2-1", "-oProxyCommand=x"), "not a Debian version"),
        ("bad.yml", VENDOR_YAML.replace("high", "severe"), "is not a severity"),
        ("bad.yml", VENDOR_YAML.replace("kev: true", "kev: false"), "not a KEV advisory"),
        ("bad.yml", VENDOR_YAML.replace("2026-01-15", "2026-01-15 10:00:00"), "not a time"),
        ("bad.yml", VENDOR_YAML.replace("Payment", "Pay\\u202ement").replace("title: ", 'title: "')
         .replace("refund\n", 'refund"\n'), "U+202E"),
        ("bad.csv", "id,severity\nX,high\n", "has header"),
        ("bad.csv", VENDOR_CSV.replace("3.1.0", "3.1.0;id"), "not a Debian version"),
        ("bad.csv", VENDOR_CSV.replace(",medium,2026-03-01,ruc-m", ",high,2026-03-01,ruc-m"),
         "line 3 field severity differs from"),
        ("bad.csv", VENDOR_CSV + "RUC-2026-003,low\n", "line 5 does not have the 6 columns"),
        ("bad.txt", VENDOR_YAML, "must be YAML"),
    ],
)  # fmt: skip
def test_cli_refuses_bad_vendor_files(ledger, tmp_path, capsys, name, text, message):
    path = write(tmp_path, name, text)
    code, out, err = run_cli(capsys, "advisory", "import", str(path), "--format", "vendor")
    assert code == 2 and out == ""
    assert message in one_line_error(err)
    assert count(ledger) == 0


def test_huge_vendor_file_refused_by_size(ledger, tmp_path):
    huge = tmp_path / "huge.yml"
    with huge.open("wb") as handle:
        handle.truncate(17 * 1024 * 1024)
    with pytest.raises(UserError, match="at most 16 MiB"):
        import_vendor(ledger, huge)


def test_import_bad_format_option(ledger, tmp_path, capsys):
    path = write(tmp_path, "vendor.yml", VENDOR_YAML)
    code, _, err = run_cli(capsys, "advisory", "import", str(path), "--format", "nvd")
    assert code == 2 and "--format 'nvd' is not one of kev, vendor" in one_line_error(err)
