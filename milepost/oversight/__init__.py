"""Oversight of the program: the registers (lessons, desired changes, glitches, the QC
process), questions to vendors and the vendors' scorecards."""
