"""Quality control: running the QC checks against the fleet and recording their results."""
