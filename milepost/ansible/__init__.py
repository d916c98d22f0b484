"""Running Ansible: the runner, the ledger recorder of the callback, redaction of secrets
and the values that came from ansible-vault."""
