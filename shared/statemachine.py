"""A request's life as one table: status x intent -> the statuses it may move to, and the effects.

Cross-school requests (a faculty member's slot request today, a student's
course-place request next) share one saga shape: the requester's school
records an intent, the host decides with conditional writes on a seat counter,
the decision travels back. Each kind writes its table once, in its model; the
workflow asks the table what an intent may do in the current status and
carries out the effects; stores only do conditional writes.

A missing row means the intent changes nothing in that status: the workflow
answers with a conflict (a person asked) or acknowledges it (a repeated or
late event).
"""

from __future__ import annotations

from dataclasses import dataclass


class NotAllowed(RuntimeError):
    """A workflow tried a move its table does not have: a bug, never a person's mistake."""


@dataclass(frozen=True)
class Transition:
    """Where an intent may lead from one status.

    `to` lists the possible next statuses: one, or several when checks at the time
    decide (capacity, overlap). `effects` name what the workflow does on the way, in
    order; they are documentation and a contract the tests check, not code to run.
    """

    to: tuple[str, ...]
    effects: tuple[str, ...] = ()


class StateMachine:
    """The transition table of one kind of request."""

    def __init__(self, name: str, statuses: tuple[str, ...], intents: tuple[str, ...],
                 table: dict[tuple[str, str], Transition]):
        for (status, intent), transition in table.items():
            unknown = {status, *transition.to} - set(statuses)
            if unknown or intent not in intents:
                raise ValueError(f"{name}: ({status}, {intent}) names unknown statuses or intent: "
                                 f"{sorted(unknown) or intent}")
        self.name = name
        self.statuses = statuses
        self.intents = intents
        self.table = dict(table)

    def allows(self, status: str, intent: str) -> bool:
        return (status, intent) in self.table

    def leads_to(self, status: str, intent: str, to: str) -> bool:
        """Whether `intent` may move a request from `status` to `to`."""
        transition = self.table.get((status, intent))
        return transition is not None and to in transition.to

    def from_statuses(self, intent: str) -> tuple[str, ...]:
        """The statuses in which `intent` does something (e.g. what may be withdrawn), in status order."""
        return tuple(s for s in self.statuses if (s, intent) in self.table)

    def rows(self) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
        """(status, intent, to, effects) for every transition, in status then intent order: the docs' table."""
        return [(s, i, self.table[(s, i)].to, self.table[(s, i)].effects)
                for s in self.statuses for i in self.intents if (s, i) in self.table]
