"""docs/workflows.md is the transition tables the workflows run, and the tables say what the old rules said."""

from __future__ import annotations

import pytest

from ops.workflows import DOC, render
from services.visits import model
from shared.statemachine import StateMachine, Transition


def test_the_workflows_page_is_generated_from_the_tables():
    assert DOC.read_text(encoding="utf-8") == render(), "run `python -m ops.workflows` and commit docs/workflows.md"


def test_a_requester_may_withdraw_until_the_request_is_declined_or_withdrawn():
    assert model.REQUESTS.from_statuses(model.WITHDRAW) == (
        model.PENDING, model.APPROVED, model.WAITLISTED, model.RECONFIRM)


def test_a_decision_never_changes_a_withdrawn_request_at_the_requester():
    assert model.WITHDRAWN not in model.REQUESTS.from_statuses(model.DECISION)
    assert set(model.REQUESTS.from_statuses(model.DECISION)) == set(model.REQUEST_STATUSES) - {model.WITHDRAWN}


def test_only_holding_decisions_give_a_seat_back_on_the_way_out():
    for status, intent, to, effects in model.DECISIONS.rows():
        if model.RELEASE in effects:
            assert status in model.HOLDING and not set(to) & set(model.HOLDING), (status, intent)


def test_a_coordinator_cannot_decline_twice_or_approve_an_approved_request():
    assert not model.DECISIONS.allows(model.DECLINED, model.DECLINE)
    assert not model.DECISIONS.allows(model.WITHDRAWN, model.DECLINE)
    assert not model.DECISIONS.allows(model.APPROVED, model.APPROVE)
    assert not model.DECISIONS.allows(model.WITHDRAWN, model.APPROVE)
    assert model.DECISIONS.leads_to(model.WAITLISTED, model.APPROVE, model.APPROVED)


def test_a_table_naming_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="unknown"):
        StateMachine("demo", ("a", "b"), ("go",), {("a", "go"): Transition(("c",))})
