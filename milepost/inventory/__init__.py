"""The inventory: reading it, checking it before any host is touched, and the rules its
values follow (Debian names and versions, windows, batches, vendors, systems)."""
