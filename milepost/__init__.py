"""Milepost: operations and maintenance automation for a Road Usage Charge program."""

__version__ = "0.1.0"
