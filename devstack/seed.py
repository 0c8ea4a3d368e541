"""Seed an empty embedded alliance with a small, realistic catalog, through the write services' HTTP APIs.

Called by `make run` once the services answer. A school whose courses service
already holds courses is left alone, so restarting keeps what you changed.
Each school gets faculty profiles, MEM and executive-education courses in
English and Chinese (one kept school-only, one draft), and one teaching-team
visit inviting its partners, with exchange slots. Faculty and visits are
seeded only when their services run.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import requests

from shared.auth import KeyRing, issue_token

TIMEOUT = 10


def faculty_email(school: str) -> str:
    """The email of the school's first seeded faculty profile, which the dev user faculty@<school> signs in as."""
    return f"faculty@{school}.example.edu"


def faculty2_email(school: str) -> str:
    """The email of the school's second seeded faculty profile, which the dev user faculty2@<school> signs in as."""
    profiles = FACULTY.get(school, [])
    return f"{profiles[1]['key'] if len(profiles) > 1 else 'faculty2'}@{school}.example.edu"

FACULTY = {
    "ecnu-cto": [
        {"key": "zhang", "name": {"en": "Zhang Min", "zh": "张敏"}, "title": "Professor",
         "department": "Technology and Innovation Management", "expertise": ["0413", "technology strategy"],
         "languages": ["zh", "en"], "bio": {"en": "Studies how technology firms build and defend platforms.",
                                            "zh": "研究科技企业如何构建与守护平台。"}},
        {"key": "chen", "name": {"en": "Chen Hao", "zh": "陈昊"}, "title": "Associate Professor",
         "department": "Data Science and Engineering", "expertise": ["0613", "enterprise architecture"],
         "languages": ["zh", "en"], "bio": {"en": "Former CTO of a logistics platform; teaches digital "
                                                  "transformation.", "zh": "曾任物流平台首席技术官，讲授数字化转型。"}},
    ],
    "sdu-sie": [
        {"key": "wang", "name": {"en": "Wang Li", "zh": "王丽"}, "title": "Professor",
         "department": "Innovation and Entrepreneurship", "expertise": ["0413", "venture building"],
         "languages": ["zh", "en"], "bio": {"en": "Runs the school's venture studio with Jinan industry partners.",
                                            "zh": "主持学院创业工作室，与济南产业伙伴合作。"}},
        {"key": "liu", "name": {"en": "Liu Yang", "zh": "刘洋"}, "title": "Associate Professor",
         "department": "Industrial Engineering", "expertise": ["0788", "operations management"],
         "languages": ["zh"], "bio": {"en": "Works on quality and supply chains in manufacturing.",
                                      "zh": "研究制造业质量与供应链管理。"}},
    ],
}


def _course(code, en, zh, programme, credits, desc_en, desc_zh, teachers, term, start, end, *, languages=("zh", "en"),
            delivery="in_person", isced="0413", hours=32, visibility="alliance", status="published"):
    return {
        "code": code, "title": {"en": en, "zh": zh}, "description": {"en": desc_en, "zh": desc_zh},
        "programme": programme, "credits": credits, "eqf_level": 7, "isced_f": isced, "languages": list(languages),
        "delivery": delivery, "hours": hours, "teachers": teachers, "visibility": visibility, "status": status,
        "offerings": [{"term": term, "starts_on": start, "ends_on": end, "places": 40}],
    }


COURSES = {
    "ecnu-cto": [
        _course("MEM-6101", "Technology Strategy and Innovation Management", "技术战略与创新管理", "MEM", 3,
                "How technology-based firms choose, build and defend their position.",
                "科技型企业如何选择、构建并守护竞争地位。", ["zhang"], "2027-spring", "2027-03-01", "2027-06-30"),
        _course("MEM-6203", "Digital Transformation and Enterprise Architecture", "数字化转型与企业架构", "MEM", 2,
                "Architecture choices that let a company change its business model.",
                "支撑企业商业模式变革的架构选择。", ["chen"], "2027-spring", "2027-03-01", "2027-06-30",
                delivery="hybrid", isced="0613"),
        _course("MEM-6310", "Engineering Project Management", "工程项目管理", "MEM", 3,
                "Planning, risk and delivery of large engineering projects.", "大型工程项目的计划、风险与交付。",
                ["zhang"], "2027-autumn", "2027-09-06", "2028-01-10", isced="0788"),
        _course("MEM-6402", "Data-Driven Decision Making", "数据驱动决策", "MEM", 2,
                "Experiments, causal inference and dashboards for managers.", "面向管理者的实验、因果推断与数据看板。",
                ["chen"], "2027-autumn", "2027-09-06", "2028-01-10", languages=("en",), delivery="online",
                isced="0542"),
        _course("EXE-CTO1", "CTO Leadership Programme", "首席技术官领导力项目", "ExecEd", 6,
                "Five modules for technology executives: strategy, teams, governance, M&A and the board.",
                "面向技术高管的五个模块：战略、团队、治理、并购与董事会。", ["zhang", "chen"], "2027-spring",
                "2027-04-10", "2027-07-20", hours=80),
        _course("EXE-AI02", "AI Strategy for Executives", "高管人工智能战略", "ExecEd", 1.5,
                "Where generative AI creates value, and how to govern it.", "生成式人工智能的价值所在与治理之道。",
                ["chen"], "2027-summer", "2027-07-05", "2027-07-09", delivery="hybrid", isced="0613", hours=24),
        _course("MEM-6999", "MEM Thesis Seminar", "工程管理硕士论文研讨", "MEM", 2,
                "For ECNU MEM students only.", "仅限本校工程管理硕士学生。", ["zhang"], "2027-autumn",
                "2027-09-06", "2028-01-10", visibility="school"),
    ],
    "sdu-sie": [
        _course("SIE-M501", "Innovation and Entrepreneurship Management", "创新创业管理", "MEM", 3,
                "From opportunity to scalable venture, with cases from Shandong industry.",
                "从机会识别到规模化创业，结合山东产业案例。", ["wang"], "2027-spring", "2027-02-27", "2027-06-25"),
        _course("SIE-M512", "Operations and Supply Chain Management", "运营与供应链管理", "MEM", 3,
                "Capacity, inventory and resilient supply networks.", "产能、库存与韧性供应网络。", ["liu"],
                "2027-spring", "2027-02-27", "2027-06-25", languages=("zh",), isced="0788"),
        _course("SIE-M520", "Engineering Economics", "工程经济学", "MEM", 2,
                "Investment appraisal and cost models for engineering decisions.", "工程决策的投资评价与成本模型。",
                ["liu"], "2027-autumn", "2027-09-04", "2028-01-08", languages=("zh",), isced="0413"),
        _course("SIE-M533", "Quality Management and Six Sigma", "质量管理与六西格玛", "MEM", 2,
                "Statistical process control and improvement projects.", "统计过程控制与改进项目。", ["liu"],
                "2027-autumn", "2027-09-04", "2028-01-08", delivery="hybrid", isced="0788"),
        _course("SIE-X101", "Venture Building Bootcamp", "创业实战训练营", "ExecEd", 2,
                "Two intensive weeks building a venture with mentors from the school's incubator.",
                "在学院孵化器导师指导下的两周创业实战。", ["wang"], "2027-summer", "2027-07-12", "2027-07-23",
                hours=60),
        _course("SIE-X115", "Intellectual Property Strategy", "知识产权战略", "ExecEd", 1,
                "Patents, licensing and standards as business tools.", "将专利、许可与标准作为商业工具。", ["wang"],
                "2027-autumn", "2027-10-15", "2027-10-17", languages=("zh", "en"), delivery="online", hours=16),
        _course("SIE-M590", "Case Writing Workshop", "案例写作工作坊", "MEM", 1,
                "A draft course, not published yet.", "草稿课程，尚未发布。", ["wang"], "2027-autumn", "2027-09-04",
                "2028-01-08", status="draft"),
    ],
}

VISITS = {
    "ecnu-cto": {"theme": {"en": "CTO practice in Shanghai's platform companies", "zh": "上海平台企业的首席技术官实践"},
                 "place": "Shanghai, ECNU Zhongbei campus", "days": (60, 63),
                 "slots": [("guest_lecture", 1, "09:00", "11:00", 2), ("co_teaching", 2, "14:00", "17:00", 1),
                           ("workshop", 3, "09:30", "12:00", 4)]},
    "sdu-sie": {"theme": {"en": "Digital transformation in Shandong manufacturing", "zh": "山东制造业的数字化转型"},
                "place": "Jinan, SDU Software Park campus", "days": (75, 79),
                "slots": [("guest_lecture", 1, "09:00", "11:00", 2), ("site_visit", 2, "13:30", "17:30", 6),
                          ("seminar", 3, "10:00", "12:00", 3)]},
}


class Seeder:
    def __init__(self, schools, keys_dir, services, say=print):
        self.schools = schools
        self.keys_dir = keys_dir
        self.services = services
        self.say = say

    def headers(self, school: str) -> dict:
        token = issue_token(KeyRing(self.keys_dir, school).private_key(), school, "coordinator", ttl_seconds=600)
        return {"Authorization": f"Bearer {token}"}

    def post(self, school, service: str, path: str, body: dict) -> dict:
        response = requests.post(f"{school.urls[service]}{path}", json=body, timeout=TIMEOUT,
                                 headers={**self.headers(school.id), "Idempotency-Key": f"seed-{path}-{_key(body)}"})
        if response.status_code not in (200, 201):
            raise RuntimeError(f"seeding {school.id} {service}: {response.status_code} {response.text[:300]}")
        return response.json()

    def is_empty(self, school) -> bool:
        response = requests.get(f"{school.urls['courses']}/courses", params={"limit": 1}, timeout=TIMEOUT,
                                headers=self.headers(school.id))
        response.raise_for_status()
        return not response.json()["items"]

    def seed_school(self, school) -> str:
        if not self.is_empty(school):
            return f"{school.id}: already has courses; not seeded"
        faculty = {}
        if "faculty" in self.services:
            for index, person in enumerate(FACULTY.get(school.id, [])):
                body = {k: v for k, v in person.items() if k != "key"}
                # the first two profiles are the dev identity provider's faculty@<school> and faculty2@<school>
                email = faculty_email(school.id) if index == 0 else f"{person['key']}@{school.id}.example.edu"
                body.update(email=email, visibility="alliance")
                faculty[person["key"]] = self.post(school, "faculty", "/faculty", body)["id"]
        for spec in COURSES.get(school.id, []):
            body = {k: v for k, v in spec.items() if k != "teachers"}
            body["instructors"] = [faculty[t] for t in spec["teachers"] if t in faculty]
            self.post(school, "courses", "/courses", body)
        visits = 0
        if "visits" in self.services and school.id in VISITS:
            self.post(school, "visits", "/visits", self.visit(school.id, list(faculty.values())))
            visits = 1
        return (f"{school.id}: seeded {len(COURSES.get(school.id, []))} courses, {len(faculty)} faculty profiles, "
                f"{visits} visit")

    def visit(self, school: str, host_team: list[str]) -> dict:
        spec = VISITS[school]
        first = date.today() + timedelta(days=spec["days"][0])
        last = date.today() + timedelta(days=spec["days"][1])
        slots = []
        for kind, day, start, end, capacity in spec["slots"]:
            on = (first + timedelta(days=day)).isoformat()
            slots.append({"kind": kind, "starts_at": f"{on}T{start}:00+08:00", "ends_at": f"{on}T{end}:00+08:00",
                          "capacity": capacity})
        return {"theme": spec["theme"], "place": spec["place"], "starts_on": first.isoformat(),
                "ends_on": last.isoformat(), "invited": ["all"], "host_team": host_team, "slots": slots,
                "status": "confirmed"}


def _key(body: dict) -> str:
    return str(body.get("code") or body.get("email") or body.get("place"))[:100]


def seed(schools, keys_dir, services, say=print, timeout: float = 60.0) -> None:
    """Seed every school whose courses service is empty; waits (bounded) for the services to answer."""
    seeder = Seeder(schools, keys_dir, services, say)
    deadline = time.monotonic() + timeout
    for school in schools:
        while True:
            try:
                say(seeder.seed_school(school))
                break
            except RuntimeError as exc:  # a write was refused: retrying cannot help
                say(f"{school.id}: not seeded ({exc})")
                break
            except requests.RequestException as exc:
                if time.monotonic() > deadline:
                    say(f"{school.id}: not seeded ({exc})")
                    break
                time.sleep(1)
