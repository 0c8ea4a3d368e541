"""The alliance catalog's own shared library: what every service uses, nothing service-specific."""
