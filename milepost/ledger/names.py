"""The ledger's fixed names: run kinds and statuses, task statuses, the words record bodies
may use (advisory sources, drift modes, register types and links), where a checkpoint's
trusted public key is looked up. The modules that write each kind and milepost.ledger.bodies,
which checks what is read back, take them from here.

Kept free of SQLAlchemy and cryptography so the `milepost` command can state them in its
help without loading either (runs, store and checkpoint import them from here).
"""

RUN_KINDS = ("scheduled", "manual", "emergency", "drift", "remediation", "qc")
RUN_STATUSES = ("successful", "failed", "aborted")
TASK_STATUSES = ("ok", "changed", "failed", "unreachable", "skipped")
#: Where a task that succeeded says its host now is (the fact milepost_progress), for the
#: emergency patch's live view: exposed or not to the advisory, verified by the health gate.
TASK_PROGRESS = ("exposed", "not exposed", "verified")
PUBLIC_KEY_FILE = "ledger-signing.pub"
ENV_PUBLIC_KEY = "MILEPOST_CHECKPOINT_PUBLIC_KEY"

#: Where an advisory came from (milepost.patching.advisories), and the most packages one names.
ADVISORY_SOURCES = ("kev", "vendor", "manual", "debian")
MAX_ADVISORY_PACKAGES = 200
#: How a drift check ran (milepost.drift.findings).
DRIFT_MODES = ("check", "converge")
#: The registers' entry types (milepost.oversight.registers), their categories, and what an
#: entry may link to.
LESSON = "lesson"
DESIRED_CHANGE = "desired-change"
GLITCH = "glitch"
#: A change to the quality-control catalogue (tests/qc) and why: the QC process's history.
QC_PROCESS = "qc-process"
NOTE_TYPES = (LESSON, DESIRED_CHANGE, GLITCH, QC_PROCESS)
NOTE_CATEGORIES = ("policy", "technology", "communications")
LINK_KINDS = ("runs", "glitches", "notes")
#: Each host's result of each quality-control check (milepost.quality.qc writes it,
#: milepost.reports and milepost.oversight.catch_rate read it).
QC_RESULT = "qc_result"

#: Who a vendor question is put to (milepost.oversight.questions): a vendor, or the agency.
QUESTION_DIRECTIONS = ("to_vendor", "to_agency")
#: What a lesson's follow-up action changes (milepost.oversight.lesson_actions): a QC check
#: added or changed, a desired change (DC-...), a runbook, a baseline; and its states.
ACTION_KINDS = ("qc-check", "desired-change", "runbook", "baseline")
ACTION_STATUSES = ("open", "done")

#: What a change plan may be made for (milepost.change_control.plans), and the part a
#: signature over a plan plays: its author's, or an approver's.
PLAN_ACTIONS = ("maintain", "remediate", "emergency")
APPROVAL_ROLES = ("author", "approver")
