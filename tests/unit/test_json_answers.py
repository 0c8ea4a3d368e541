"""The services' JSON answers (shared/web.py FastJSONProvider): orjson writes what Flask's own provider would."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from markupsafe import Markup

from shared.web import FastJSONProvider


@dataclasses.dataclass
class Slot:
    term: str
    places: int


@pytest.fixture
def app():
    app = Flask("json-answers")
    app.json = FastJSONProvider(app)
    return app


VALUES = [
    {"b": 1, "a": [1.5, None, True], "中文": "数字化转型与企业架构", "nested": {"z": 0, "y": "é"}},
    {"when": datetime(2026, 12, 5, 8, 30, tzinfo=timezone.utc), "day": date(2026, 12, 5)},
    {"price": Decimal("12.50"), "id": uuid.UUID("12345678-1234-5678-1234-567812345678")},
    {"slot": Slot("2027-spring", 3)},
    {7: "an integer key", 3: "another"},
    {"mark": Markup("<mark>scenario</mark>")},
    {"big": 2**70, "small": -(2**63)},
]


@pytest.mark.parametrize("value", VALUES)
def test_the_answer_is_the_json_flasks_own_provider_writes(app, value):
    with app.app_context():
        fast = app.json.response(value)
        default = DefaultJSONProvider(app).response(value)
    assert fast.mimetype == default.mimetype == "application/json"
    assert json.loads(fast.get_data()) == json.loads(default.get_data())
    assert app.json.loads(app.json.dumps(value)) == json.loads(default.get_data())


def test_keys_come_sorted_and_text_is_utf8_not_escaped(app):
    with app.app_context():
        body = app.json.response({"title": "转型", "code": "C-1"}).get_data()
    assert body == '{"code":"C-1","title":"转型"}\n'.encode()


def test_what_orjson_refuses_is_written_by_flasks_provider(app):
    with app.app_context():
        # beyond 64 bits orjson stops; the answer is still written, in full
        assert json.loads(app.json.response({"n": 2**70}).get_data()) == {"n": 2**70}
        assert app.json.dumps({"n": 2**70}) == '{"n": 1180591620717411303424}'


def test_a_change_feed_page_is_what_its_documented_schema_dumps():
    from shared.changelog import Change
    from shared.feed import ChangesPageSchema, changes_page

    changes = [
        Change(seq=3, entity_id="6f1c7e2a-0000-4000-8000-000000000001", version=2, type="course.published.v1",
               visible=True, state={"code": "A-1", "credits": 1.5, "title": {"en": "Ops", "zh": "运营"}},
               time="2026-12-05T08:30:00.000Z"),
        Change(seq=9, entity_id="6f1c7e2a-0000-4000-8000-000000000002", version=5, type="course.withdrawn.v1",
               visible=False, state={}, time="2026-12-05T08:31:00.000Z"),
    ]
    following = "http://localhost/changes?since=9&limit=2"
    assert changes_page(changes, 9, following) == ChangesPageSchema().dump(
        {"changes": changes, "last_seq": 9, "next": following})
    assert changes_page([], 12, None) == ChangesPageSchema().dump({"changes": [], "last_seq": 12, "next": None})
