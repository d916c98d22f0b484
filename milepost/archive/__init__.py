"""Debian archives read on the controller: a private APT state (sources, signed indexes,
the versions each suite offers, downloads whose hashes APT checks) and the changelogs inside
the packages. Used by the lab (its mirror of Debian's updates) and by the advisory sync."""
