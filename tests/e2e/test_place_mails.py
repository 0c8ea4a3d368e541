"""Students' place requests reach the people by mail, against real processes and the development mail server.

One stack for the module: ecnu-cto hosts courses (courses + catalog), sdu-sie's students ask
(courses + catalog), the development SMTP server (devstack/mailserver.py) on a free port writing
one `.eml` file per message. Each school's coordinators have one address; sdu-sie's read Chinese
(COORDINATOR_LANG=zh), ecnu-cto's English. Every test uses its own course and students.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import requests
from pymongo import MongoClient

from devstack import servers
from shared.auth import KeyRing, issue_token
from shared.config import SERVICE_PORT_OFFSETS
from tests.mailbox import ECNU, SDU, mail_env, mails, stop_all, two_schools
from tests.processes import service_processes
from tests.samples import course
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
WAIT = 60
HOST_COORDINATOR = "coordinator@ecnu-cto.example.edu"
HOME_COORDINATOR = "coordinator@sdu-sie.example.edu"


class Stack:
    def __init__(self, keys_dir: Path, prefix: str, mongo_uri: str, mail_dir: Path, mail_port: int, log_dir: Path):
        self.services: dict = {}
        self.keys_dir, self.prefix, self.mail_dir, self.mail_port, self.log_dir = (
            keys_dir, prefix, mail_dir, mail_port, log_dir)
        self.mongo = MongoClient(mongo_uri)
        self.mail_server = None

    def url(self, school: str, service: str) -> str:
        return self.services[(school, service)].url

    def headers(self, school: str, role: str = "coordinator", student: dict | None = None) -> dict:
        key = KeyRing(self.keys_dir, school).private_key()
        if student is None:
            return {"Authorization": f"Bearer {issue_token(key, school, role)}"}
        token = issue_token(key, school, "student", subject=student["email"],
                            profile={k: student[k] for k in ("name", "email", "student_number", "programme")})
        return {"Authorization": f"Bearer {token}"}

    def call(self, method: str, school: str, path: str, student: dict | None = None, expect=(200, 201),
             headers: dict | None = None, **kwargs) -> dict:
        response = requests.request(method, f"{self.url(school, 'courses')}{path}", timeout=10,
                                    headers={**self.headers(school, student=student), **(headers or {})}, **kwargs)
        assert response.status_code in expect, response.text
        return response.json()

    def student(self, name: str) -> dict:
        tag = uuid.uuid4().hex[:6]
        return {"name": name, "email": f"{name.lower().replace(' ', '.')}.{tag}@sdu-sie.example.edu",
                "student_number": f"2027{tag}", "programme": "MEM"}

    def host_course(self, approval: str = "automatic", places: int = 2) -> dict:
        offering = {"term": "2027-spring", "starts_on": "2027-03-01", "ends_on": "2027-06-30", "places": places,
                    "approval": approval}
        body = course(code=f"PL-{uuid.uuid4().hex[:8]}", offerings=[offering])
        published = self.call("POST", ECNU, "/courses", json=body)
        # the student's school's catalog knows the course before a request names it
        wait_until(lambda: requests.get(f"{self.url(SDU, 'catalog')}/courses/{published['id']}",
                                        timeout=5).status_code == 200, WAIT, "the course in sdu-sie's catalog")
        return published

    def ask(self, student: dict, hosted: dict, lang: str = "en") -> dict:
        return self.call("POST", SDU, "/place-requests", student=student,
                         headers={"Accept-Language": lang, "Idempotency-Key": str(uuid.uuid4())},
                         json={"host_school": ECNU, "course_id": hosted["id"], "term": "2027-spring",
                               "statement": "I build technology roadmaps and want to do it better."})

    def endorse(self, request: dict, status: str = "endorsed", note: str | None = None) -> dict:
        return self.call("PUT", SDU, f"/place-requests/{request['id']}/endorsement",
                         headers={"If-Match": f'"{request["version"]}"'},
                         json={"status": status, **({"note": note} if note else {})})

    def request_status(self, request: dict, *statuses: str) -> dict | None:
        got = self.call("GET", SDU, f"/place-requests/{request['id']}")
        return got if got["status"] in statuses else None

    def mails(self, to: str) -> list:
        return mails(self.mail_dir, to)

    def wait_mail(self, to: str, words: str, what: str):
        """The first mail to `to` whose subject or text holds `words`."""
        def found():
            return next((m for m in self.mails(to) if words in m["Subject"] or words in text(m)), None)
        return wait_until(found, WAIT, what)


def text(message) -> str:
    return message.get_body(("plain",)).get_content()


def html(message) -> str:
    return message.get_body(("html",)).get_content()


@pytest.fixture(scope="module")
def stack(mongo_uri, broker, run_dir, keys_dir):
    prefix = f"p{uuid.uuid4().hex[:8]}_"
    alliance = run_dir / f"{prefix}alliance.json"
    bases = two_schools(alliance)
    mail_port = servers.free_port()
    log_dir = run_dir / prefix / "log"
    stack = Stack(keys_dir, prefix, mongo_uri, run_dir / prefix / "mail", mail_port, log_dir)
    stack.mail_server = servers.start_mail(mail_port, stack.mail_dir, log_dir)
    try:
        coordinators = {ECNU: (HOST_COORDINATOR, "en"), SDU: (HOME_COORDINATOR, "zh")}
        for school in (ECNU, SDU):
            for service in ("courses", "catalog"):
                offset = SERVICE_PORT_OFFSETS[service]
                svc = service_processes(school, service, bases[school] + offset, mongo_uri, broker.bootstrap,
                                        run_dir, alliance, keys_dir, prefix)
                svc.env.update(mail_env(mail_port, school, coordinators[school][0],
                                        COORDINATOR_LANG=coordinators[school][1]))
                stack.services[(school, service)] = svc
                svc.start_worker()
                svc.start_web(workers=1)
        yield stack
    finally:
        stop_all(stack.services, stack.mail_server)
        stack.mongo.close()


def test_a_request_its_endorsement_and_the_approval_reach_the_student_in_chinese_and_each_coordinator(stack):
    li = stack.student("Li Lei")
    hosted = stack.host_course()
    asked = stack.ask(li, hosted, lang="zh-CN,zh;q=0.9,en;q=0.5")

    # the student's own coordinators: a request awaits their endorsement (in Chinese, their setting)
    awaiting = stack.wait_mail(HOME_COORDINATOR, "Li Lei申请", "the coordinators' mail of the new request")
    assert "等待您的推荐" in awaiting["Subject"]
    assert "技术战略与创新管理" in text(awaiting) and "I build technology roadmaps" in text(awaiting)
    assert "/manage/applications" in text(awaiting)

    stack.endorse(asked)
    endorsed = stack.wait_mail(li["email"], "已推荐", "the student's endorsement mail")
    assert endorsed["From"] == "alliance-catalog@sdu-sie.example.edu"
    assert "华东师范大学首席技术官学院" in text(endorsed) and "/applications" in text(endorsed)
    assert [p.get_content_type() for p in endorsed.iter_parts()] == ["text/plain", "text/html"]
    assert '<html lang="zh">' in html(endorsed)

    wait_until(lambda: stack.request_status(asked, "approved"), WAIT, "the approval at the student's school")
    approved = stack.wait_mail(li["email"], "已批准", "the student's approval mail")
    assert "技术战略与创新管理" in approved["Subject"]
    assert "您获得" in text(approved) or "已给予您" in text(approved)
    assert "2027-03-01 – 2027-06-30" in text(approved)
    home = stack.wait_mail(HOME_COORDINATOR, "已批准：Li Lei", "the coordinators' approval mail")
    assert "华东师范大学首席技术官学院已给予Li Lei" in text(home)

    # the host's coordinators hear of the partner's student's request, in English
    incoming = stack.wait_mail(HOST_COORDINATOR, "asks for a place", "the host coordinators' mail")
    assert "Li Lei, a student of SDU SIE" in text(incoming)
    assert "Technology Strategy and Innovation Management" in text(incoming)

    # each once: the student got the endorsement and the approval, nothing else; no address left the school
    time.sleep(2)
    assert sorted(m["Subject"][:3] for m in stack.mails(li["email"])) == ["已批准", "已推荐"]
    assert all(li["email"] not in text(m) and li["student_number"] not in text(m)
               for m in stack.mails(HOST_COORDINATOR))


def test_the_hosts_decline_mails_its_reason_and_note_and_a_withdrawal_tells_the_coordinators(stack):
    wang, han = stack.student("Wang Fang"), stack.student("Han Mei")
    hosted = stack.host_course(approval="review")
    first = stack.endorse(stack.ask(wang, hosted))
    # the host's coordinator declines after review, with a note the student reads
    decision = wait_until(lambda: (lambda d: d if d.get("status") == "pending" else None)(
        requests.get(f"{stack.url(ECNU, 'courses')}/place-decisions/{first['id']}", timeout=5,
                     headers=stack.headers(ECNU)).json()), WAIT, "the request awaiting the host's review")
    stack.call("PUT", ECNU, f"/place-decisions/{first['id']}", headers={"If-Match": f'"{decision["version"]}"'},
               json={"status": "declined", "note": "The course is taught in Chinese only this term."})
    declined = stack.wait_mail(wang["email"], "Declined:", "the student's decline mail")
    assert "ECNU CTO School declined your request." in text(declined)
    assert "Reason: The host school declined the request." in text(declined)
    assert "Note from the host: The course is taught in Chinese only this term." in text(declined)
    home = stack.wait_mail(HOME_COORDINATOR, "拒绝了Wang Fang", "the coordinators' decline mail")
    assert "The course is taught in Chinese only this term." in text(home)

    # a request the student withdraws while it waits for endorsement: the coordinators are told
    second = stack.ask(han, hosted)
    stack.wait_mail(HOME_COORDINATOR, "Han Mei申请", "the coordinators' mail of Han Mei's request")
    stack.call("DELETE", SDU, f"/place-requests/{second['id']}", student=han,
               headers={"If-Match": f'"{second["version"]}"'})
    withdrawn = stack.wait_mail(HOME_COORDINATOR, "已撤回：Han Mei", "the coordinators' withdrawal mail")
    assert "Han Mei已撤回" in text(withdrawn)
    assert stack.mails(han["email"]) == []
