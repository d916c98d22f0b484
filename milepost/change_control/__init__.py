"""Change control: plans of what a run would change, signed approvals of a plan by people
other than its author, runs that apply exactly an approved plan, and evidence of it all an
auditor can check offline."""
