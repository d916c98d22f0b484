"""Unit tests load plugins/modules/*.py straight from their files. Ansible finds the
project's module_utils (plugins/module_utils, named in ansible.cfg) only when it packages a
module for a host, so here they are put under ansible.module_utils by hand."""

from pathlib import Path

import ansible.module_utils

MODULE_UTILS = Path(__file__).resolve().parents[2] / "plugins" / "module_utils"
if str(MODULE_UTILS) not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(MODULE_UTILS))
