"""The pure parts of notifications: which mail a request gets, backoff, languages, invitations, translations."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import icalendar
import pytest
from babel.messages.pofile import read_po

from services.visits import model
from services.visits.notify import request_notice
from shared import calendars, mail
from shared.config import ConfigError, Settings
from shared.notifications import backoff_seconds

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("notified, status, reason, changed, expected", [
    (None, model.APPROVED, None, False, ("approved", "REQUEST")),
    (model.PENDING, model.WAITLISTED, None, False, ("waitlisted", None)),
    (model.WAITLISTED, model.APPROVED, None, False, ("promoted", "REQUEST")),
    (model.APPROVED, model.RECONFIRM, None, True, ("reconfirm", "REQUEST")),
    (model.RECONFIRM, model.RECONFIRM, None, True, ("reconfirm", "REQUEST")),
    (model.RECONFIRM, model.RECONFIRM, None, False, None),
    (model.RECONFIRM, model.APPROVED, None, False, ("approved", "REQUEST")),
    (model.APPROVED, model.DECLINED, "declined-by-host", False, ("declined", "CANCEL")),
    (model.PENDING, model.DECLINED, model.OVERLAP, False, ("declined", None)),
    (model.APPROVED, model.DECLINED, model.VISIT_CANCELLED, False, ("cancelled", "CANCEL")),
    (model.WAITLISTED, model.DECLINED, model.VISIT_CANCELLED, False, ("cancelled", None)),
    (model.APPROVED, model.WITHDRAWN, None, False, ("withdrawn", "CANCEL")),
    (model.PENDING, model.WITHDRAWN, None, False, None),
    (model.APPROVED, model.APPROVED, None, False, None),
    (model.DECLINED, model.DECLINED, "declined-by-host", False, None),
    (model.APPROVED, model.WAITLISTED, None, False, ("waitlisted", "CANCEL")),
])
def test_each_change_of_a_request_gets_the_mail_and_calendar_method_of_the_table(notified, status, reason, changed,
                                                                                 expected):
    assert request_notice(notified, status, reason, changed) == expected


def test_backoff_doubles_from_the_base_up_to_the_ceiling():
    waits = [backoff_seconds(n, 2.0, 60.0, jitter=lambda: 0.0) for n in range(1, 8)]
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff_seconds(1, 2.0, 60.0, jitter=lambda: 1.0) == pytest.approx(2.4)


@pytest.mark.parametrize("header, lang", [
    (None, "en"), ("", "en"), ("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("fr-FR, en;q=0.5, zh;q=0.7", "zh"),
    ("de", "en"), ("en-GB", "en"), ("zh;q=0, en;q=0.1", "en"), ("zh;q=abc", "en"),
])
def test_the_language_of_a_request_is_the_first_accepted_one_we_write_in(header, lang):
    assert mail.pick_lang(header) == lang


def test_an_unreadable_or_empty_smtp_password_file_is_a_config_error_naming_the_setting(tmp_path):
    missing = Settings.from_env(service="visits", smtp_password_file=tmp_path / "absent")
    with pytest.raises(ConfigError, match="SMTP_PASSWORD_FILE"):
        mail.smtp_password(missing)
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty"):
        mail.smtp_password(Settings.from_env(service="visits", smtp_password_file=tmp_path / "empty"))
    (tmp_path / "pw").write_text("s3cret\n", encoding="utf-8")
    assert mail.smtp_password(Settings.from_env(service="visits", smtp_password_file=tmp_path / "pw")) == "s3cret"
    assert mail.smtp_password(Settings.from_env(service="visits")) == ""


def test_an_invitation_is_in_the_visit_time_zone_with_its_vtimezone_and_a_cancel_keeps_the_uid():
    spec = {"uid": calendars.request_uid("r1", "sdu-sie"), "sequence": 3, "summary": "Workshop",
            "starts_at": "2099-04-15T06:00:00Z", "ends_at": "2099-04-15T09:00:00+00:00", "time_zone": "Asia/Shanghai",
            "location": "Shanghai", "organizer": "exchange@ecnu-cto.example.edu", "attendee": "x@sdu-sie.example.edu"}
    request = icalendar.Calendar.from_ical(calendars.invitation(spec, calendars.REQUEST))
    event = request.walk("VEVENT")[0]
    assert request["METHOD"] == "REQUEST" and event["DTSTART"].params["TZID"] == "Asia/Shanghai"
    assert event.decoded("DTSTART") == datetime.fromisoformat("2099-04-15T14:00:00+08:00")
    assert [tz["TZID"] for tz in request.walk("VTIMEZONE")] == ["Asia/Shanghai"]
    cancel = icalendar.Calendar.from_ical(calendars.invitation({**spec, "sequence": 4}, calendars.CANCEL))
    cancelled = cancel.walk("VEVENT")[0]
    assert cancel["METHOD"] == "CANCEL" and str(cancelled["STATUS"]) == "CANCELLED"
    assert (str(cancelled["UID"]), int(cancelled["SEQUENCE"])) == (str(event["UID"]), 4)


def test_a_message_is_text_html_and_calendar_alternatives_with_a_message_id_from_its_key():
    message = mail.build_message(sender="a@sdu-sie.example.edu", to="b@sdu-sie.example.edu", subject="S",
                                 text="t", html="<p>h</p>", message_key="slot-request/r1/v3/faculty:f1",
                                 calendar=(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "REQUEST"))
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html", "text/calendar"]
    assert list(message.iter_parts())[2].get_param("method") == "REQUEST"
    assert message["Message-ID"] == "<slot-request.r1.v3.faculty.f1@sdu-sie.example.edu>"


def test_every_mail_message_has_a_chinese_translation_and_the_mo_file_is_compiled_from_the_po(tmp_path):
    config = tmp_path / "babel.cfg"
    config.write_text("[python: services/visits/notify.py]\n[jinja2: shared/templates/mail/**]\n"
                      "extensions = jinja2.ext.i18n\n")
    pot = tmp_path / "mail.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", str(config), "-o",
                    str(pot), "."], cwd=REPO, check=True)
    wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(pot.open("rb")) if m.id}
    assert len(wanted) > 30
    po = read_po((REPO / "shared/translations/zh/LC_MESSAGES/messages.po").open("rb"))
    translated = {(m.id if isinstance(m.id, str) else m.id[0]) for m in po
                  if m.id and (m.string if isinstance(m.string, str) else all(m.string))}
    assert wanted - translated == set()
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "compile", "-i",
                    str(REPO / "shared/translations/zh/LC_MESSAGES/messages.po"), "-o", str(tmp_path / "zh.mo")],
                   check=True)
    assert (tmp_path / "zh.mo").read_bytes() == (REPO / "shared/translations/zh/LC_MESSAGES/messages.mo").read_bytes()


def test_a_mail_renders_in_chinese_with_plural_forms_in_english():
    text, html = mail.render("request", "zh", {
        "kind": "declined", "subject": "s", "person_name": "王芳", "host_name": "华东师范大学", "theme": "T",
        "place": "上海", "slot_kind": "工作坊", "when": "w", "contact": None, "link": "http://x/exchange/requests",
        "note": "<b>room</b>", "reason_text": "主办学校拒绝了该申请。"})
    assert "华东师范大学拒绝了您的申请。" in text and "主办方备注：<b>room</b>" in text
    assert "&lt;b&gt;room&lt;/b&gt;" in html and "<b>room</b>" not in html
    one, _ = mail.render("incoming", "en", {"items": [{"theme": "T", "slot_kind": "k", "when": "w",
                                                       "requester_name": "S"}], "subject": "s", "link": "l"})
    two, _ = mail.render("incoming", "en", {"items": [{"theme": "T", "slot_kind": "k", "when": "w",
                                                       "requester_name": "S"}] * 2, "subject": "s", "link": "l"})
    assert "asked for a slot in one of your visits" in one and "asked for 2 slots" in two


def test_an_empty_message_translates_to_nothing_not_the_catalog_header():
    assert mail.gettext("zh", "") == "" and mail.gettext("zh", "Workshop") == "工作坊"


def test_a_calendar_feed_secret_never_reaches_the_request_log():
    from shared.web import logged_path

    assert logged_path("/calendar/s3cr3t-Value_x.ics") == "/calendar/<secret>.ics"
    assert logged_path("/visits/abc.ics") == "/visits/abc.ics" and logged_path("/courses") == "/courses"


def _waitlisted(lang: str, position) -> tuple[str, str]:
    return mail.render("request", lang, {
        "kind": "waitlisted", "subject": "s", "person_name": "Li", "host_name": "H", "theme": "T", "place": "P",
        "slot_kind": "k", "when": "w", "contact": None, "link": "http://x/exchange/requests", "note": None,
        "reason_text": "", "waitlist_position": position})


def test_the_waitlisted_mail_says_the_place_on_the_waitlist_in_both_languages_when_the_request_carries_it():
    text, html = _waitlisted("en", 3)
    assert "Your place on the waitlist: 3." in text and "Your place on the waitlist: 3." in html
    text, html = _waitlisted("zh", 2)
    assert "候补" in text and "2" in text and "Your place" not in text and "候补" in html
    text, _ = _waitlisted("en", None)
    assert "place on the waitlist:" not in text and "put your request on the waitlist" in text


def test_the_waitlist_position_of_the_request_goes_into_the_queued_mail_context():
    from services.visits.notify import Notifier

    class Queue:
        def __init__(self):
            self.queued = []

        def enqueue(self, key, **fields):
            self.queued.append(fields)
            return True

    class Requests:
        def update_one(self, *args, **kwargs):
            pass

    notifier = Notifier.__new__(Notifier)
    notifier.queue, notifier.requests = Queue(), Requests()
    notifier.derive_request({
        "_id": "r1", "school": "sdu-sie", "host_school": "ecnu-cto", "visit_id": "v1", "slot_id": "s1",
        "faculty_id": "f1", "version": 2, "status": model.WAITLISTED, "notified_status": model.PENDING,
        "waitlist_position": 4, "notify_since": 1, "slot": {"starts_at": "2027-04-13T09:00:00+08:00",
                                                             "ends_at": "2027-04-13T11:00:00+08:00"}})
    (queued,) = notifier.queue.queued
    assert queued["kind"] == "waitlisted" and queued["context"]["waitlist_position"] == 4
