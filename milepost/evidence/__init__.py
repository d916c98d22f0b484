"""Evidence for auditors: one self-contained, signed bundle of what the maintenance of a
period was (milepost.evidence.bundle), computed from a segment of the ledger
(milepost.evidence.segment) by milepost.evidence.content, and checked offline by
`milepost evidence verify` with only the agency's public key.

It sits above reports and change control: it composes the runs, change plans and their
signatures, patch deadlines, exceptions, drift and emergencies into one record."""
