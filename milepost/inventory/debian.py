"""Debian's rules for package names and versions, and the OS patching choices: the one
source of each. The playbooks use them through the filter plugin milepost_debian; the
modules, which run on the hosts without this package, carry a copy in
plugins/module_utils/milepost_debian.py that tests/unit/inventory/test_debian.py proves equal.
"""

import re

from milepost.errors import UserError
from milepost.input_checks import MAX_PACKAGE_NAME, MAX_VERSION, safe_text, shown

__all__ = [
    "DEBIAN_VERSION",
    "OS_PATCH_CHOICES",
    "PACKAGE_NAME",
    "check_package_name",
    "check_version",
]

#: Debian Policy 5.6.1: at least two characters, lower-case letters, digits and + - .,
#: starting with a letter or digit.
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
#: Debian Policy 5.6.12: [epoch:]upstream[-revision]; upstream starts with a digit.
DEBIAN_VERSION = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~:-]*")
#: The OS patching options of a run and the values they may take.
OS_PATCH_CHOICES = {
    "os_patch_scope": ("all", "security"),
    "os_patch_reboot": ("never", "if_required"),
}


def check_package_name(value: str, what: str = "package name") -> str:
    """A Debian package name (Debian Policy 5.6.1), e.g. ruc-payment-gateway."""
    text = safe_text(value, what, MAX_PACKAGE_NAME)
    if not PACKAGE_NAME.fullmatch(text):
        raise UserError(
            f"{what} {shown(text)} is not a Debian package name: lower-case letters, digits"
            " and + - . (e.g. ruc-payment-gateway)"
        )
    return text


def check_version(value: str, what: str = "version") -> str:
    """A Debian version (Debian Policy 5.6.12): [epoch:]upstream[-revision], e.g. 2.4.0-1."""
    text = safe_text(value, what, MAX_VERSION)
    if not DEBIAN_VERSION.fullmatch(text):
        raise UserError(
            f"{what} {shown(text)} is not a Debian version: it starts with a digit and holds"
            " letters, digits and . + ~ : - (e.g. 2.4.0 or 1:2.4.0-1)"
        )
    return text
