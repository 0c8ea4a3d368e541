"""The saga of a request between schools: the host decides, the requester follows.

One shape for every kind of cross-school request (a faculty member's slot in a
partner's visit, services/visits; a student's place in a partner's course
offering, services/courses). Each kind writes its transition tables in its
model (`shared.statemachine`), subclasses `Host` and `Requester` with what is
its own (what is requested, what else is checked), and uses the stores of
shared/saga_store.py.

Requester side: a request's intents (the request, its withdrawal...) are
published on `<school>.<kind>-requests.v1`; decisions read from the hosts'
`<host>.<kind>-decisions.v1` topics are applied by decision version, so a
repeated or late decision changes nothing and the status converges to the
host's latest decision. An intent awaits the host's answer until a decision
acknowledges its version; the worker re-sends the unanswered ones.

Host side: each request gets one decision document keyed by the request id
(created as `received`, then decided). What must hold under concurrency is
kept by single-document atomic writes: a part's seat document (capacity), and
whatever a kind adds (a faculty member's hold on their time). Every step is
idempotent by request id, so an event delivered twice, or a decision
interrupted by a crash and run again, ends in the same state; a decision write
is conditional on the decision's version, and whoever loses such a race gives
back what it took (`settle`). A waitlist is first come first served; a freed
seat promotes its first request (`fill`).
"""

from __future__ import annotations

import logging

from marshmallow import ValidationError

from shared.clock import now_iso, time_key, touched, write_order
from shared.errors import DomainError
from shared.events import Event, InvalidEvent
from shared.notifications import marker as notify_marker
from shared.statemachine import NotAllowed, StateMachine

log = logging.getLogger(__name__)

# statuses every kind shares: a decision received but not taken yet (internal to the host, never published);
# pending: awaiting the host coordinator's review
RECEIVED, PENDING, APPROVED, WAITLISTED, DECLINED, WITHDRAWN = (
    "received", "pending", "approved", "waitlisted", "declined", "withdrawn")
# intents every kind shares: the requester's (its request events carry them), the host coordinator's by hand,
# a seat freed (the first waitlisted moves up), and the host's decision arriving at the requester's school
REQUEST, REQUEST_FOR_REVIEW, WITHDRAW = "request", "request-for-review", "withdraw"
APPROVE, DECLINE, PROMOTE, DECISION = "approve", "decline", "promote", "decision"
# how the host decides on requests: first come first served, or each by its coordinator
AUTOMATIC, REVIEW = "automatic", "review"
APPROVALS = (AUTOMATIC, REVIEW)
HAND_DECLINED = "declined-by-host"
# promotions tried per part in one pass; each one settles one waitlisted request
MAX_PROMOTIONS = 100

# effects, named in the transition tables (documentation the tests check against the workflow)
TAKE_SEAT = "take a seat (capacity)"
RELEASE = "give back the seat, then promote the waitlist"
PUBLISH_INTENT = "publish the request and await the host's answer"
AWAIT_REVIEW = "await the host coordinator's decision"
TAKE_SEAT_OR_WAIT = "take a seat, or join the waitlist when it is full or others wait"
NEEDS_NOTE = "a note for the requester (required)"


def event_body(schema, event: Event, topic_school: str) -> dict:
    """The validated body of a partner's event about its own entity; InvalidEvent (dead letter) if it is not."""
    try:
        body = schema.load(event.data)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid {event.type} body: {exc.messages}") from None
    if body["id"] != event.subject or body["school"] != topic_school:
        raise InvalidEvent("the body's id or school differs from the event's subject or source school")
    return body


def awaiting_host(intent_version: int) -> dict:
    """The fields of a request whose intent at this version the host has yet to answer (see resend_unanswered)."""
    return {"awaiting_host": True, "intent_version": intent_version}


def request_view(doc: dict, fields: tuple[str, ...]) -> dict:
    """A request event's body: its id and `fields` (what the host needs), `withdrawn` a boolean."""
    view = {"id": doc["_id"], **{k: doc.get(k) for k in fields}}
    # the embedded server reads back a boolean written by $set as 0 or 1
    view["withdrawn"] = bool(view.get("withdrawn"))
    return view


def decision_view(schema):
    """A decision event's body: the schema's dump, or None (nothing published) while it is only received."""
    return lambda doc: None if doc.get("status") == RECEIVED else schema.dump(doc)


def outcome(refused: str | None, seat: bool) -> tuple[str, str | None]:
    """(status, reason) of a decision from what was checked: a refusal declines, else a seat approves, else wait."""
    if refused:
        return DECLINED, refused
    return (APPROVED, None) if seat else (WAITLISTED, None)


def arrival_intent(approval: str | None) -> str:
    """What a request's arrival means at the host: decided at once, or held for the coordinator's review."""
    return REQUEST_FOR_REVIEW if approval == REVIEW else REQUEST


def edited_version(doc: dict) -> int:
    """The version the last coordinator write gave the entity; later versions are seat changes only."""
    return doc.get("edited_version", doc["version"])


def edit_applies(doc: dict, expected_version: int) -> bool:
    """Whether a coordinator's write on the version they read applies: no coordinator wrote since.

    The versions after `edited_version` differ only in places left, which a coordinator
    does not write, so an ETag of any of them is still current for an edit.
    """
    return edited_version(doc) <= expected_version <= doc["version"]


def conflict(detail: str, reason: str | None = None) -> DomainError:
    extra = {"reason": reason} if reason else {}
    return DomainError("decision-not-possible", detail, **extra)


class Host:
    """The host school's side: decisions on partners' requests for parts (slots, offerings) of its owners
    (visits, courses).

    A subclass sets `machine` (its DECISIONS table), `identity`, `full`, and the stores
    (`decisions`, `seats`, `owners`), and gives the hooks below. A decision's group is
    (owner id, part id): the part's seats and waitlist.
    """

    machine: StateMachine
    # the schema of the requesters' request events
    request_event = None
    # the decisions that hold a seat
    holding: tuple[str, ...] = (APPROVED,)
    # (decision field, request event field) pairs that must agree for a request id already known
    identity: tuple[tuple[str, str], ...] = (("requester_school", "school"),)
    # (reason, detail) of a coordinator's approval refused for want of a seat
    full: tuple[str, str] = ("full", "no seat is free")
    # the decision statuses a change of their owner may move
    affected_by_change: tuple[str, ...] = ()

    def __init__(self, school: str, clock=now_iso):
        self.school = school
        self.clock = clock

    # hooks of a kind

    def received(self, request: dict, version: int, now: str) -> dict:
        """The fields of the new decision on a request that are this kind's own (its group's fields...)."""
        raise NotImplementedError

    def context(self, group: tuple[str, str]) -> dict | None:
        """The owner (a visit, a course) as stored now; what every check reads."""
        return self.owners.get(group[0])

    def refusal(self, ctx: dict | None, decision: dict) -> str | None:
        """Why the request must be declined whatever the seats, or None."""
        raise NotImplementedError

    def capacity(self, ctx: dict | None, group: tuple[str, str]) -> int | None:
        """How many seats the part has, or None when it takes no more requests (gone, cancelled)."""
        raise NotImplementedError

    def approval(self, ctx: dict | None, group: tuple[str, str]) -> str:
        """automatic or review: how requests for this part are decided."""
        raise NotImplementedError

    def places_left(self, ctx: dict | None, group: tuple[str, str], taken: int | None = None) -> int | None:
        """The part's places left given the seats `taken` (read from its seat document when None)."""
        raise NotImplementedError

    def snapshot(self, decision: dict, ctx: dict | None) -> dict:
        """What a decision bound to its part carries of it (shown to the requester without calling the host)."""
        return {}

    def precheck(self, decision: dict, ctx: dict | None) -> str | None:
        """A refusal that needs no judgement and no seat (checked while others wait, or before review)."""
        return None

    def take_extra(self, decision: dict, ctx: dict | None) -> str | None:
        """Take what the kind holds beside the seat, before it; a refusal reason if it cannot."""
        return None

    def release_extra(self, decision: dict) -> None:
        """Give back what take_extra took."""

    def follow(self, decision: dict, request: dict, version: int) -> dict | None:
        """A newer request event that is not a withdrawal: the written decision, or None when it changes nothing."""
        return None

    def change_of(self, owner: dict, decision: dict) -> tuple[str, str, str | None] | None:
        """(intent, status, reason) that a change of the owner means for a decision on it, or None."""
        return None

    def parts(self, owner: dict) -> list[tuple[str, int]]:
        """(part id, capacity) of each part that takes requests now, after a change of the owner."""
        return []

    def refused_detail(self, reason: str) -> str:
        return f"it cannot be approved: {reason}"

    def with_current_places_left(self, decisions: list[dict]) -> list[dict]:
        """The decisions, each with its part's places left now (rather than when the decision was written)."""
        ids = list({self.decisions.group_of(d)[0] for d in decisions})
        owners = {o["_id"]: o for o in self.owners.collection.find({"_id": {"$in": ids}})} if ids else {}
        taken = self.seats.taken_of(list(owners.values()))  # every part's seats in one read
        out = []
        for decision in decisions:
            group = self.decisions.group_of(decision)
            seats = taken.get(group[0], {}).get(group[1], 0)
            out.append({**decision, "places_left": self.places_left(owners.get(group[0]), group, seats)})
        return out

    def read(self, request_id: str) -> dict:
        """The decision on one request, with its part's places left now; not-found if there is none."""
        decision = self.decisions.get(request_id)
        if decision is None:
            raise self.decisions.not_found()
        return self.with_current_places_left([decision])[0]

    def page(self, criteria: dict, query: dict) -> dict:
        """One page of decisions (`query`'s sort, limit and cursor), each with its part's places left now."""
        page = self.decisions.page(criteria, query["sort"], query["limit"], query.get("cursor"))
        page["items"] = self.with_current_places_left(page["items"])
        return page

    # events

    def apply_request_event(self, event: Event, topic_school: str) -> None:
        """Apply a partner's request event; InvalidEvent (dead letter) for one that cannot be accepted."""
        body = event_body(self.request_event, event, topic_school)
        if body["host_school"] != self.school:
            return  # a request to another host
        self.on_request(body, event.entityversion)

    def on_request(self, request: dict, version: int) -> dict:
        """Decide on a request, or follow its withdrawal (or another intent); a replay changes nothing."""
        now = self.clock()
        doc = {"_id": request["id"], "school": self.school, "requester_school": request["school"],
               **self.received(request, version, now),
               "status": RECEIVED, "reason": None, "note": None, "waitlist_position": None, "places_left": None,
               "version": 0, "request_version": version, "queued_at": write_order(), "decided_at": None,
               "created_at": now, **touched(now), **notify_marker()}
        decision, _ = self.decisions.receive(doc)
        if any(decision.get(k) != request.get(k2) for k, k2 in self.identity):
            raise InvalidEvent("this request id is already used by another request")
        if version > decision["request_version"]:
            decision = self._follow(decision, request, version)
        elif decision["status"] == RECEIVED:
            # the first event, or one whose decision was interrupted
            if request["withdrawn"]:
                decision = (self._write(decision, WITHDRAW, WITHDRAWN, None) or self.decisions.get(decision["_id"]))
            else:
                decision = self._decide(decision)
        elif version == decision["request_version"]:
            # the requester sent its latest version again: it has not seen the decision, which the
            # broker may have lost; the relay sends the same decision event again (kept once)
            self.decisions.republish(decision["_id"])
        return self.settle(decision)

    def _follow(self, decision: dict, request: dict, version: int) -> dict:
        """A newer event of a known request: withdrawn, or another intent of the kind."""
        if request["withdrawn"]:
            if self.machine.allows(decision["status"], WITHDRAW):
                written = self._write(decision, WITHDRAW, WITHDRAWN, None, request_version=version)
                if written is not None:
                    return written
        else:
            written = self.follow(decision, request, version)
            if written is not None:
                return written
        # nothing to decide; the decision is sent again all the same, carrying this request version,
        # so that the requester knows its intent arrived and stops re-sending it
        self.decisions.record_request_version(decision["_id"], version, republish=decision["version"] > 0)
        return self.decisions.get(decision["_id"])

    def _decide(self, decision: dict) -> dict:
        group = self.decisions.group_of(decision)
        ctx = self.context(group)
        refused = self.refusal(ctx, decision)
        if arrival_intent(self.approval(ctx, group)) == REQUEST_FOR_REVIEW and not refused:
            # review mode: the rules that need no judgement decline at once; the rest waits for the coordinator
            refused = self.precheck(decision, ctx)
            status, reason = (DECLINED, refused) if refused else (PENDING, None)
            written = self._write(decision, REQUEST_FOR_REVIEW, status, reason, ctx=ctx, snapshot=True)
            return written or self.decisions.get(decision["_id"])
        seat = False
        if not refused:
            if self.decisions.first_waitlisted(*group) is None:
                refused, seat = self._take(decision, ctx)
            else:
                # others wait already: no overtaking, but what needs no seat is refused at once
                refused = self.precheck(decision, ctx)
        status, reason = outcome(refused, seat)
        written = self._write(decision, REQUEST, status, reason, ctx=ctx, snapshot=True)
        if written is None:  # decided meanwhile by another consumer: that decision stands
            return self.decisions.get(decision["_id"])
        if status == WAITLISTED:
            self.fill(group)  # a seat may have been freed meanwhile
        return written

    def _take(self, decision: dict, ctx: dict | None) -> tuple[str | None, bool]:
        """(refused, seat): what the kind holds first, then a seat; what it holds is given back without one."""
        refused = self.take_extra(decision, ctx)
        if refused:
            return refused, False
        group = self.decisions.group_of(decision)
        if self.seats.take(*group, self.capacity(ctx, group), decision["_id"]):
            return None, True
        self.release_extra(decision)
        return None, False

    def _write(self, decision: dict, intent: str, status: str, reason: str | None, note: str | None = None,
               ctx: dict | None = None, snapshot: bool = False, **extra) -> dict | None:
        """Publish a new decision if it is still at the version it was taken on; None if it is not.

        The move must be one of the transition table's: `intent` from the status read. `ctx` is
        the owner when the caller has just read it (else it is read here); `snapshot` binds the
        decision to the part as it is now.
        """
        if not self.machine.leads_to(decision["status"], intent, status):
            raise NotAllowed(f"{self.machine.name} {decision['_id']}: {intent} cannot lead from "
                             f"{decision['status']} to {status}")
        now = self.clock()
        group = self.decisions.group_of(decision)
        if ctx is None:
            ctx = self.context(group)
        fields = {"status": status, "reason": reason, "decided_at": now, **touched(now), "note": note, **extra}
        if snapshot:
            fields.update(self.snapshot(decision, ctx))
        fields["places_left"] = self.places_left(ctx, group)
        # a waitlist changes: this decision's place in it now, the others' after the write (renumber);
        # a waitlist is kept in the order its requests joined it (first come first served)
        if status == WAITLISTED and decision["status"] != WAITLISTED:
            fields["waitlist_key"] = write_order()
        fields["waitlist_position"] = (self.decisions.position_of({**decision, **fields})
                                       if status == WAITLISTED else None)
        if WAITLISTED in (status, decision["status"]):
            fields["renumber_since"] = write_order()
        return self.decisions.replace(decision["_id"], decision["version"], fields)

    def settle(self, decision: dict) -> dict:
        """Give back the seat (and what else) of a decision that does not hold them (any more), then fill the part."""
        if decision["status"] not in self.holding and decision["status"] != RECEIVED:
            group = self.decisions.group_of(decision)
            released = self.seats.release(*group, decision["_id"])
            self.release_extra(decision)
            if released:
                self.fill(group)
        self.renumber(decision)
        return decision

    def renumber(self, decision: dict) -> None:
        """After a decision joined or left its part's waitlist: give every waitlisted one its position anew."""
        if decision.get("renumber_since"):
            self.decisions.renumber(*self.decisions.group_of(decision), self.clock())
            self.decisions.renumbered(decision)

    def fill(self, group: tuple[str, str]) -> int:
        """Approve waitlisted requests, oldest first, while the part has free seats; returns how many."""
        promoted = 0
        for _ in range(MAX_PROMOTIONS):
            ctx = self.context(group)
            capacity = self.capacity(ctx, group)
            if capacity is None:
                break
            seat = self.seats.get(*group)
            if seat is not None and seat["count"] >= capacity:
                break
            waiting = self.decisions.first_waitlisted(*group)
            if waiting is None:
                break
            refused, took = self._take(waiting, ctx)
            if not refused and not took:
                break  # taken by a concurrent decision
            status, reason = outcome(refused, took)
            written = self._write(waiting, PROMOTE, status, reason, ctx=ctx, snapshot=True)
            if written is None:
                self.settle(self.decisions.get(waiting["_id"]))
            elif status == APPROVED:
                promoted += 1
                log.info("promoted request %s from the waitlist of %s", waiting["_id"], "/".join(group))
        if promoted:
            self.decisions.renumber(*group, self.clock())
        return promoted

    # by hand

    def decide_by_hand(self, request_id: str, expected_version: int, status: str, note: str | None) -> dict:
        """A coordinator approves or declines a request; approving still respects the seats (and the kind's rules)."""
        decision = self.decisions.get(request_id)
        if decision is None:
            raise self.decisions.not_found()
        if decision["version"] != expected_version:
            raise self.decisions.stale(request_id)
        if status == DECLINED:
            if not self.machine.allows(decision["status"], DECLINE):
                raise conflict(f"the request is {decision['status']} already")
            written = self._write(decision, DECLINE, DECLINED, HAND_DECLINED, note=note)
        elif decision["status"] == PENDING:
            written = self._approve_reviewed(decision, note)
        else:
            written = self._approve_by_hand(decision, note)
        if written is None:
            raise self.decisions.stale(request_id)
        if written["status"] == WAITLISTED:
            self.fill(self.decisions.group_of(written))  # a seat may have been freed meanwhile
        return self.settle(self.decisions.get(request_id) or written)

    def _approve_reviewed(self, decision: dict, note: str | None) -> dict | None:
        """Approve a request that waits for review: a seat if one is free and nobody waits, else the waitlist.

        The same checks as on a request's arrival in automatic mode, in the same order.
        """
        group = self.decisions.group_of(decision)
        ctx = self.context(group)
        refused = self.refusal(ctx, decision)
        if refused:
            raise conflict(f"it cannot be approved: {refused}", reason=refused)
        if self.decisions.first_waitlisted(*group) is None:
            refused, seat = self._take(decision, ctx)
        else:
            # others wait already: no overtaking
            refused, seat = self.precheck(decision, ctx), False
        if refused:
            raise conflict(self.refused_detail(refused), reason=refused)
        status = APPROVED if seat else WAITLISTED
        written = self._write(decision, APPROVE, status, None, note=note, ctx=ctx, snapshot=True)
        if written is None:
            self.settle(self.decisions.get(decision["_id"]))
        return written

    def _approve_by_hand(self, decision: dict, note: str | None) -> dict | None:
        if not self.machine.allows(decision["status"], APPROVE):
            raise conflict(f"the request is {decision['status']}")
        ctx = self.context(self.decisions.group_of(decision))
        refused = self.refusal(ctx, decision)
        if refused:
            raise conflict(f"it cannot be approved: {refused}", reason=refused)
        refused, seat = self._take(decision, ctx)
        if refused:
            raise conflict(self.refused_detail(refused), reason=refused)
        if not seat:
            raise conflict(self.full[1], reason=self.full[0])
        written = self._write(decision, APPROVE, APPROVED, None, note=note, ctx=ctx, snapshot=True)
        if written is None:
            self.settle(self.decisions.get(decision["_id"]))
        return written

    # changes of the owner

    def reconcile(self, owner: dict) -> None:
        """Follow an owner's change in the decisions on its parts, then fill each part that takes requests."""
        for decision in self.decisions.of_owner(owner["_id"], self.affected_by_change):
            change = self.change_of(owner, decision)
            if change is None:
                continue
            intent, status, reason = change
            written = self._write(decision, intent, status, reason, ctx=owner, snapshot=status != DECLINED)
            if written is not None:
                log.info("request %s: %s after a change of %s", decision["_id"], status, owner["_id"])
                self.settle(written)
        for part_id, capacity in self.parts(owner):
            self.seats.set_capacity(owner["_id"], part_id, capacity)
            self.fill((owner["_id"], part_id))

    def reconcile_pending(self) -> int:
        """One pass of the worker: owners changed since last time, parts whose seats were freed, seat changes
        whose owner was not re-published, and waitlists not renumbered (the writer stopped in between)."""
        done = 0
        for owner in self.owners.to_reconcile():
            self.reconcile(owner)
            self.owners.reconciled(owner["_id"], owner["reconcile_since"])
            done += 1
        for seat in self.seats.to_fill():
            self.fill(self.seats.group_of(seat))
            self.seats.filled(seat)
            done += 1
        for seat in self.seats.to_republish():
            self.seats.republish(seat)
            done += 1
        for decision in self.decisions.to_renumber():
            self.renumber(decision)
            done += 1
        return done


class Requester:
    """The requesting school's side: its people's requests and the hosts' decisions on them.

    A subclass sets `machine` (its REQUESTS table), `requests` (a saga_store.RequestStore)
    and `decision_event` (the schema of the hosts' decision events).
    """

    machine: StateMachine
    decision_event = None

    def __init__(self, school: str, clock=now_iso):
        self.school = school
        self.clock = clock

    def base_request(self, request_id: str, now: str) -> dict:
        """The fields every new request starts with (the kind adds what is requested, and its status)."""
        return {"_id": request_id, "school": self.school, "reason": None, "note": None, "decided_at": None,
                "decision_version": 0, "withdrawn": False, "waitlist_position": None, "places_left": None,
                "version": 1, "created_at": now, "created_key": time_key(now), **touched(now)}

    def withdraw(self, request_id: str, expected_version: int) -> dict:
        """Withdraw a request; the host frees its seat, if it held one, and promotes its waitlist."""
        request = self.current(request_id, expected_version)
        if not self.machine.allows(request["status"], WITHDRAW):
            raise DomainError("not-withdrawable", f"the request is {request['status']}")
        fields = {"status": WITHDRAWN, "withdrawn": True, **touched(self.clock()), **notify_marker(),
                  **(awaiting_host(expected_version + 1) if self.travelled(request) else {}),
                  **self.withdrawal_fields(request)}
        return self.replace(request_id, expected_version, fields)

    def travelled(self, request: dict) -> bool:
        """Whether the host knows of the request (else a withdrawal stays at this school)."""
        return True

    def withdrawal_fields(self, request: dict) -> dict:
        """What else a withdrawal of this kind of request sets, in the same write."""
        return {}

    def current(self, request_id: str, expected_version: int) -> dict:
        request = self.requests.get(request_id)
        if request is None:
            raise self.requests.not_found()
        if request["version"] != expected_version:
            raise self.requests.stale(request_id)
        return request

    def replace(self, request_id: str, expected_version: int, fields: dict) -> dict:
        # conditional on the version: a decision applied meanwhile moved it, and this write does not apply
        written = self.requests.replace(request_id, expected_version, fields)
        if written is None:
            raise self.requests.stale(request_id)
        return written

    def resend_unanswered(self, older_than: str) -> int:
        """Publish again the requests whose latest intent the host has not answered, last written before `older_than`.

        An intent is the request itself, its withdrawal (or another of the kind). One the
        broker lost (a reset before the host read it) would otherwise never reach the host:
        the request would stay undecided, or the host would keep the seat of a withdrawn one.
        The host applies each request version once and answers a repeat of the latest with
        its decision again, which carries the request version it has applied
        (`acknowledge`). Returns how many were re-armed for the relay.
        """
        return self.requests.resend_unanswered(older_than)

    # the fields of a request that say its status (a withdrawn request keeps its own when a decision arrives)
    status_fields: tuple[str, ...] = ("status",)

    def decision_fields(self, body: dict) -> dict:
        """The kind's own fields of a host's decision, as the request keeps them (snapshots of what was decided)."""
        return {}

    def status_of(self, host_status: str) -> str:
        """The request's status for the host's decision status."""
        return host_status

    def apply_decision_event(self, event: Event, topic_school: str) -> None:
        """Apply a host's decision event to the request it answers, if it is newer than the one held."""
        body = event_body(self.decision_event, event, topic_school)
        if body["requester_school"] != self.school:
            return  # a decision for another school's request
        # the host's note goes into the mail the requester gets
        fields = {"status": self.status_of(body["status"]), "reason": body.get("reason"),
                  "decided_at": body.get("decided_at"), "note": body.get("note"),
                  "waitlist_position": body.get("waitlist_position"), "places_left": body.get("places_left"),
                  **self.decision_fields(body), **touched(self.clock()), **notify_marker()}
        if self.requests.apply_decision(body["id"], topic_school, event.entityversion, fields,
                                        self.status_fields) is None:
            known = self.requests.get(body["id"])
            if known is None or known["host_school"] != topic_school:
                raise InvalidEvent(f"no request {body['id']} of {self.school} to host {topic_school}")
            # else: a decision no newer than the one held; it may still answer a newer intent
        self.requests.acknowledge(body["id"], topic_school, body["request_version"])
