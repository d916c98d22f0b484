"""Which extra vars the ledger callback treats as secrets."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "plugins" / "callback"))

import maintenance_ledger  # noqa: E402


def test_values_under_secret_names_are_secrets_at_any_depth(tmp_path):
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text("service:\n  api_token: tok-998877\n  port: 8443\n")
    found = maintenance_ledger._secret_extra_vars(
        [
            "db_password=pw-123456 reason='routine work'",
            '{"vendor": {"credentials": {"user": "u1", "pass": "p1"}}, "note": "hello"}',
            f"@{vars_file}",
        ]
    )
    assert "pw-123456" in found and "tok-998877" in found
    assert {"user": "u1", "pass": "p1"} in found
    assert "routine work" not in found and "hello" not in found and 8443 not in found


def test_ordinary_extra_vars_are_data(tmp_path):
    found = maintenance_ledger._secret_extra_vars(
        ["preflight_override_reason='CVE fix approved'", "app_update_versions={}", "@missing"]
    )
    assert found == []
