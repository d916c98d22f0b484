"""The ledger's fixed names: run kinds and statuses, task statuses, where a checkpoint's
trusted public key is looked up.

Kept free of SQLAlchemy and cryptography so the `milepost` command can state them in its
help without loading either (runs, store and checkpoint import them from here).
"""

RUN_KINDS = ("scheduled", "manual", "emergency", "drift", "remediation", "qc")
RUN_STATUSES = ("successful", "failed", "aborted")
TASK_STATUSES = ("ok", "changed", "failed", "unreachable", "skipped")
PUBLIC_KEY_FILE = "ledger-signing.pub"
ENV_PUBLIC_KEY = "MILEPOST_CHECKPOINT_PUBLIC_KEY"
