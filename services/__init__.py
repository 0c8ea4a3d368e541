"""One package per service: courses, faculty, visits (the write side) and catalog (the read side)."""
