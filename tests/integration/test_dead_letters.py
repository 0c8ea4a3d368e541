"""Dead letters counted per partner for the catalog's /sync: every consumer of the school (the catalog's, the
visits service's) refuses poison to `<school>.dlq`, and the catalog worker's reader counts each once, under the
partner whose topic it came from. Real broker, real consumers, real records."""

from __future__ import annotations

import threading
import uuid

from kafka import KafkaProducer

from services.catalog.app import create_app
from services.catalog.store import DeadLetterTally, ReadModel
from services.catalog.sync import DeadLetterReader
from services.catalog.worker import build
from services.visits.workflow import Requester
from shared.auth import KeyRing
from shared.consumer import EventConsumer
from shared.events import Event, sign, to_record
from shared.kafka import ensure_topics
from shared.mongo import database
from tests.waiting import wait_until

ECNU, SDU = "ecnu-cto", "sdu-sie"


def running(loop, stops: list) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=loop, args=(stop,), daemon=True)
    thread.start()
    stops.append((stop, thread))


def test_the_dead_letters_of_each_partner_topic_are_counted_once_per_partner_in_sync_status(
        make_settings, mongo_client, keys_dir):
    catalog_settings = make_settings(ECNU, "catalog", kafka_poll_timeout_ms=300)
    visits_settings = make_settings(ECNU, "visits", kafka_poll_timeout_ms=300)
    db = database(mongo_client, catalog_settings)
    ReadModel(db).ensure_indexes()
    courses_topic = catalog_settings.topic("courses", SDU)
    decisions_topic = visits_settings.topic("slot-decisions", SDU)
    ensure_topics(catalog_settings, [courses_topic, decisions_topic, catalog_settings.dlq_topic])
    sdu_key = KeyRing(keys_dir, SDU).private_key()
    producer = KafkaProducer(bootstrap_servers=catalog_settings.kafka_bootstrap, acks="all")
    # a course body the catalog refuses (no title), and a decision on a request this school never made
    bad_course = Event(type="course.published.v1", source=f"/schools/{SDU}/courses", subject=str(uuid.uuid4()),
                       sequence=1, entityversion=1, data={"id": None, "school": SDU})
    unknown = str(uuid.uuid4())
    bad_decision = Event(type="slot_decision.published.v1", source=f"/schools/{SDU}/visits", subject=unknown,
                         sequence=1, entityversion=1,
                         data={"id": unknown, "school": SDU, "requester_school": ECNU, "status": "approved"})
    for topic, event in ((courses_topic, bad_course), (decisions_topic, bad_decision)):
        key, value, headers = to_record(sign(event, sdu_key))
        producer.send(topic, key=key, value=value, headers=headers).get(10)
    producer.close()

    stops: list = []
    try:
        catalog_consumer, _, _ = build(catalog_settings, db)
        visits_db = database(mongo_client, visits_settings)
        decisions = EventConsumer(visits_settings, f"{visits_settings.kafka_topic_prefix}{ECNU}.visits.decisions",
                                  [decisions_topic], Requester(visits_db, ECNU).apply_decision_event)
        running(catalog_consumer.run_forever, stops)
        running(decisions.run_forever, stops)
        running(DeadLetterReader(catalog_settings, db).run_forever, stops)
        tally = DeadLetterTally(db)
        wait_until(lambda: tally.count(SDU) == 2, what="both dead letters counted under sdu-sie")
        # a second reader of the whole topic (another group) counts nothing twice
        again = DeadLetterReader(catalog_settings, db, group_id=f"{catalog_settings.kafka_topic_prefix}again")
        running(again.run_forever, stops)
        wait_until(lambda: again.seen == 2, what="the second reader read both dead letters")
        assert tally.count(SDU) == 2 and tally.count(ECNU) == 0
        reasons = sorted(d["group"] for d in tally.collection.find({"school": SDU}))
        assert reasons == ["catalog", "visits"]
    finally:
        for stop, _ in stops:
            stop.set()
        for _, thread in stops:
            thread.join(20)

    client = create_app(catalog_settings, client=mongo_client).test_client()
    status = client.get("/sync").get_json()
    partners = {p["school"]: p for p in status["partners"]}
    assert set(partners) == {SDU}
    assert partners[SDU]["dead_lettered"] == 2
    # the catalog's own per-source count sees its own refusal only
    sources = {(s["school"], s["entity"]): s for s in status["sources"]}
    assert sources[(SDU, "courses")]["dead_lettered"] == 1
