from milepost.ansible.redaction import MASK, Redactor


def test_known_secret_values_are_masked_wherever_they_appear():
    r = Redactor()
    r.add_secrets([{"db": {"password": "hunter2-long"}}, ["tok-123456"], None, True])
    assert r.scrub("login hunter2-long failed, tok-123456") == f"login {MASK} failed, {MASK}"


def test_short_values_are_not_treated_as_secrets():
    r = Redactor()
    r.add_secrets(["on", "1"])
    assert r.scrub("service on port 1") == "service on port 1"


def test_patterns_mask_the_value_and_keep_the_key():
    r = Redactor()
    assert r.scrub("password=abc123 token: xyz") == f"password={MASK} token: {MASK}"
    assert r.scrub("https://ops:s3cret@repo.example/x") == f"https://ops:{MASK}@repo.example/x"
    assert r.scrub("Authorization: Bearer abc.def") == f"Authorization: {MASK}"
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
    assert r.scrub(f"key {pem} end") == f"key {MASK} end"


def test_extra_patterns_are_applied():
    r = Redactor([r"ACCT-\d{6}"])
    assert r.scrub("account ACCT-123456 locked") == f"account {MASK} locked"


def test_summary_is_empty_for_success_and_censored_for_no_log():
    r = Redactor()
    assert r.summary({"msg": "all good", "stdout": "x"}, status="ok", no_log=False) == ""
    assert r.summary({"msg": "secret"}, status="failed", no_log=True) == "censored (no_log)"
    assert r.summary({"censored": "hidden"}, status="failed", no_log=False) == "censored (no_log)"


def test_failure_summary_is_one_scrubbed_bounded_line():
    r = Redactor()
    r.add_secrets(["s3cr3t-value"])
    result = {"msg": "non-zero return code\nsecond line", "stderr": "a\nauth s3cr3t-value bad"}
    summary = r.summary(result, status="failed", no_log=False)
    assert "\n" not in summary and "s3cr3t-value" not in summary
    assert summary == f"non-zero return code second line | auth {MASK} bad"
    assert len(r.summary({"msg": "x" * 5000}, status="failed", no_log=False)) == 500


def test_a_secret_word_at_the_end_of_a_longer_name_is_masked_but_not_inside_a_word():
    r = Redactor()
    assert r.scrub("db_password=hunter22") == f"db_password={MASK}"
    assert r.scrub("vendor_api_key: abcd1234") == f"vendor_api_key: {MASK}"
    assert r.scrub("smtp.auth-token=abc") == f"smtp.auth-token={MASK}"
    assert r.scrub("ops ALL=(ALL) NOPASSWD: ALL") == "ops ALL=(ALL) NOPASSWD: ALL"
    assert r.scrub("tokens: 5") == "tokens: 5"
