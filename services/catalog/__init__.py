"""The catalog service: every school's shared courses, faculty and visits, as one read model."""
