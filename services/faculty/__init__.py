"""The faculty service: a school's faculty profiles, their write API, and their events."""
