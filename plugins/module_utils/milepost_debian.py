# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian's rules for package names and versions, for the modules that run on the hosts
(where the milepost package is not installed). The one source is milepost/inventory/debian.py;
tests/unit/inventory/test_debian.py proves these patterns equal to it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

#: Debian Policy 5.6.1 (milepost.inventory.debian.PACKAGE_NAME).
PACKAGE_NAME = r"[a-z0-9][a-z0-9+.-]+"
#: Debian Policy 5.6.12 (milepost.inventory.debian.DEBIAN_VERSION).
DEBIAN_VERSION = r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~:-]*"

PACKAGE_NAME_RE = re.compile(PACKAGE_NAME)
DEBIAN_VERSION_RE = re.compile(DEBIAN_VERSION)
