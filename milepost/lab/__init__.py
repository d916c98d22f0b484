"""The lab fleet: Debian containers, a signed APT repository and the RUC packages."""
