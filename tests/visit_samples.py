"""The visit the issue asks the API to accept as it is, and builders of others."""

from __future__ import annotations

import copy

VISIT = {
    "theme": {"en": "Sci-tech entrepreneurship teaching week", "zh": "科技创业教学周"},
    "invited": ["sdu-sie"], "place": "Shanghai",
    "starts_on": "2027-04-12", "ends_on": "2027-04-16", "host_team": [],
    "slots": [{"kind": "guest_lecture", "starts_at": "2027-04-13T09:00:00+08:00",
               "ends_at": "2027-04-13T11:00:00+08:00", "capacity": 2},
              {"kind": "co_teaching", "starts_at": "2027-04-14T14:00:00+08:00",
               "ends_at": "2027-04-14T17:00:00+08:00", "capacity": 1}],
    "status": "confirmed",
}


def visit(**changes) -> dict:
    """The sample visit with some fields changed."""
    doc = copy.deepcopy(VISIT)
    doc.update(changes)
    return doc


def slot(kind="workshop", day="2027-04-15", start="09:00", end="11:00", capacity=2, **extra) -> dict:
    return {"kind": kind, "starts_at": f"{day}T{start}:00+08:00", "ends_at": f"{day}T{end}:00+08:00",
            "capacity": capacity, **extra}
