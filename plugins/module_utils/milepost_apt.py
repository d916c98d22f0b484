# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""python3-apt for Milepost's modules, the way Ansible's own apt module gets it.

python3-apt is a Debian package, not on PyPI: the interpreter Ansible discovered may not
have it. require_apt() re-runs the module under a system Python that has it, or fails the
module with a message saying what to install.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.respawn import (
    has_respawned,
    probe_interpreters_for_module,
    respawn_module,
)

APT_IMPORT_ERROR = None
try:
    import apt
    import apt_pkg

    HAS_APT = True
except ImportError:
    apt = None
    apt_pkg = None
    HAS_APT = False
    APT_IMPORT_ERROR = traceback.format_exc()

SYSTEM_PYTHONS = ["/usr/bin/python3", "/usr/bin/python"]


def require_apt(module):
    """Return when python3-apt is importable; otherwise respawn or fail the module."""
    if HAS_APT:
        return
    if has_respawned():
        module.fail_json(msg=missing_required_lib("python3-apt"), exception=APT_IMPORT_ERROR)
    interpreter = probe_interpreters_for_module(SYSTEM_PYTHONS, "apt")
    if interpreter:
        respawn_module(interpreter)  # never returns
    module.fail_json(
        msg=missing_required_lib(
            "python3-apt",
            reason="to read the APT cache; install it with 'apt-get install python3-apt'",
        ),
        exception=APT_IMPORT_ERROR,
    )
