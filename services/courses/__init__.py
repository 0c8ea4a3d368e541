"""The courses service: a school's courses, their write API, and their events."""
