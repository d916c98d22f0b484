"""Security patching: advisories, exposure and the patch policy, the emergency patch, and
the controls every run passes through (fleet lock, kill switch, security floor, probe)."""
