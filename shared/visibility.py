"""Who sees a school's entity: one rule for courses and faculty profiles.

An entity is live in one status (a course `published`, a profile `active`) and
shared with partners while it is live with visibility `alliance`. The school's
coordinators see every entity of their school, its other members the live ones,
and partner schools only the shared ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Visibility:
    """The visibility rule of one kind of entity, named by its live status."""

    live: str

    def shared(self, doc: dict) -> bool:
        """Whether partners may see the entity (and the relay publishes its state)."""
        return doc.get("status") == self.live and doc.get("visibility") == "alliance"

    def can_read(self, doc: dict, role: str, own_school: bool) -> bool:
        """Coordinators see everything of their school; others see live entities; partners only shared ones."""
        if not own_school:
            return self.shared(doc)
        return role == "coordinator" or doc.get("status") == self.live

    def reader_filter(self, role: str, own_school: bool) -> dict:
        """What a reader may list, as criteria that must hold besides their own filters."""
        if not own_school:
            return {"status": self.live, "visibility": "alliance"}
        if role != "coordinator":
            return {"status": self.live}
        return {}
