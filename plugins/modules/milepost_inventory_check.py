#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: milepost_inventory_check
short_description: Check the inventory every run needs before any host is touched
version_added: "0.1.0"
description:
  - Runs in the controller's Ansible process (an action plugin; no module runs anywhere) on
    the inventory Ansible has already read, so a plain C(ansible-playbook) run, an AWX job
    and C(milepost maintain) are refused alike.
  - Every host of group C(ruc) must have a C(milepost_vendor), and its
    C(app_update_versions) must map Debian package names to Debian versions.
  - Every entry of C(milepost_interfaces) needs a C(url) (https) or a C(host) (sftp);
    C(os_patch_scope) and C(os_patch_reboot) must be one of their choices.
  - C(milepost_phase) (group all's and each RUC host's) must be V(normal), V(hypercare) or a
    mapping C({name, launch, end}) whose end is not before its launch;
    C(milepost_question_commitments) must map question categories to days.
  - A problem fails the task with one line naming each problem and its hosts. The rules
    are those of the milepost package (milepost.inventory.checks), which the command line
    applies too (with more checks, such as the pins the package source offers).
options: {}
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: all
"""

EXAMPLES = r"""
- name: AUDIT | Check that every RUC host has a vendor, valid pins and valid interfaces
  milepost_inventory_check:
"""

RETURN = r"""
msg:
  description: How many RUC hosts were checked, or the problems found.
  returned: always
  type: str
  sample: "6 RUC hosts checked"
"""
