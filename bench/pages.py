"""Page render time against the JSON of the same data, and page weight without images (issue 10).

Starts nx-27017 and the Tansu broker on free loopback ports (devstack.servers), ecnu-cto's courses,
faculty, visits and catalog web processes (gunicorn -w 2; courses and catalog workers, visits worker)
and its dev identity provider (devstack.processes.start_school, as the browser tests do), and
sdu-sie's visits service (web and worker) as the partner whose visits ecnu-cto's faculty request
slots in and whose faculty request slots in ecnu-cto's visits. Seeds COURSES courses, FACULTY
faculty profiles, VISITS visits with slots at each school and slot requests both ways, waits until
the catalog holds them and the requests reached their host, then signs a coordinator and a faculty
member in over plain HTTP through the provider (GET /signin, POST its `sub` form, the callback).

For each page, ROUNDS rounds (after WARMUP) alternate one GET of the page and one GET of the JSON
the page's data comes from, each on its own keep-alive session: p50/p95 of both and the ratio of
the medians. Page weight: the page's HTML plus every stylesheet (<link rel=stylesheet>) and
script (<script src>) it loads, uncompressed bytes, images not counted, against AIM_KB.

Run alone: python -m bench.run pages
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
import time
import uuid
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import requests

from bench._common import course_doc, percentile, wait
from devstack import servers
from devstack.processes import service_processes, start_school
from devstack.seed import faculty_email
from shared.auth import KeyRing, ensure_dev_keys, issue_token
from tests.visit_samples import slot, visit

DOC = "docs/benchmarks.md"
# the raw numbers of the last main() (seconds per request, bytes), for bench/run.py
RESULTS: dict = {}
SCHOOL, PARTNER = "ecnu-cto", "sdu-sie"
COURSES, FACULTY, VISITS, INCOMING, OUTGOING = 50, 10, 3, 8, 5
WARMUP, ROUNDS = 5, 60
AIM_KB = 100.0
TIMEOUT = 30.0


def log(message: str) -> None:
    print(f"[bench pages] {message}", file=sys.stderr, flush=True)


class Assets(HTMLParser):
    """The stylesheets and scripts a page loads (their href/src as written)."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and "stylesheet" in (attrs.get("rel") or "").split() and attrs.get("href"):
            self.urls.append(attrs["href"])
        elif tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])


def assets_of(html: str) -> list[str]:
    parser = Assets()
    parser.feed(html)
    return list(dict.fromkeys(parser.urls))


def sign_in(base: str, sub: str) -> requests.Session:
    """A session signed in as `sub` through the school's dev provider, over plain HTTP."""
    session = requests.Session()
    form = session.get(base + "/signin", timeout=TIMEOUT)
    form.raise_for_status()
    if 'name="sub"' not in form.text:
        raise RuntimeError(f"sign-in: no provider form at {form.url}")
    done = session.post(form.url, data={"sub": sub}, timeout=TIMEOUT)
    done.raise_for_status()
    if not done.url.startswith(base):
        raise RuntimeError(f"sign-in of {sub}: ended at {done.url}")
    return session


def main() -> dict:
    """Run the benchmark; returns {section title: markdown}."""
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        return _bench(Path(tmp))


def _bench(root: Path) -> dict:
    keys_dir = root / "keys"
    ensure_dev_keys(keys_dir, (SCHOOL, PARTNER))
    log_dir = root / "log"
    started = []
    stack = partner = None
    try:
        mongo_port, kafka_port = servers.free_port(), servers.free_port()
        log(f"starting nx-27017 on {mongo_port} and Tansu on {kafka_port}")
        started.append(servers.start_mongo(root / "mongo", mongo_port, log_dir))
        started.append(servers.start_broker(kafka_port, log_dir))
        mongo_uri, bootstrap = servers.mongo_uri(mongo_port), f"{servers.HOST}:{kafka_port}"
        prefix = f"pg{uuid.uuid4().hex[:8]}_"
        log(f"starting {SCHOOL}'s courses, faculty, visits, catalog and identity provider")
        stack = start_school(SCHOOL, PARTNER, mongo_uri, bootstrap, root, keys_dir, prefix=prefix,
                             workers=("courses", "visits", "catalog"))
        log(f"starting {PARTNER}'s visits")
        partner = service_processes(PARTNER, "visits", stack.partner_base + 3, mongo_uri, bootstrap, root,
                                    stack.alliance, keys_dir, prefix)
        partner.start_web(workers=1)
        partner.start_worker()
        data = seed(stack, partner.url, keys_dir)
        return measure(stack, data)
    finally:
        log("stopping")
        for part in (partner, stack):
            if part is not None:
                part.stop()
        for proc in reversed(started):
            proc.stop(timeout=15)


def bearer(keys_dir: Path, school: str, role: str, faculty_id: str | None = None) -> dict:
    token = issue_token(KeyRing(keys_dir, school).private_key(), school, role, faculty_id=faculty_id,
                        ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}"}


def post(url: str, headers: dict, body: dict) -> dict:
    response = requests.post(url, json=body, timeout=TIMEOUT, headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    if response.status_code != 201:
        raise RuntimeError(f"POST {url}: {response.status_code} {response.text[:300]}")
    return response.json()


def _visit(i: int, invited: str) -> dict:
    day = f"2027-05-{10 + 7 * i:02d}"
    return visit(invited=[invited], starts_on=day, ends_on=f"2027-05-{14 + 7 * i:02d}",
                 slots=[slot("guest_lecture", day, "09:00", "11:00", 4), slot("workshop", day, "14:00", "17:00", 4),
                        slot("co_teaching", f"2027-05-{11 + 7 * i:02d}", "09:00", "12:00", 2)])


def seed(stack, partner_url: str, keys_dir: Path) -> dict:
    rng = random.Random(10)
    coordinator = bearer(keys_dir, SCHOOL, "coordinator")
    log(f"seeding {COURSES} courses, {FACULTY} faculty profiles, {VISITS} visits at each school, requests both ways")
    courses = [post(stack.service_url("courses") + "/courses", coordinator, course_doc(i, rng))["id"]
               for i in range(COURSES)]
    faculty = []
    for i in range(FACULTY):
        faculty.append(post(stack.service_url("faculty") + "/faculty", coordinator, {
            "name": {"en": f"Faculty Member {i}", "zh": f"教师{i}"}, "title": "Professor",
            "department": "Technology and Innovation Management",
            "email": faculty_email(SCHOOL) if i == 0 else f"member{i}@{SCHOOL}.example.edu",
            "languages": ["zh", "en"], "expertise": ["0413"], "visibility": "alliance"})["id"])
    own = [post(stack.service_url("visits") + "/visits", coordinator, _visit(i, PARTNER)) for i in range(VISITS)]
    partner_coordinator = bearer(keys_dir, PARTNER, "coordinator")
    theirs = [post(partner_url + "/visits", partner_coordinator, _visit(i, SCHOOL)) for i in range(VISITS)]
    for i in range(INCOMING):  # the partner's faculty ask for places in this school's visits
        v = own[i % VISITS]
        post(partner_url + "/slot-requests", partner_coordinator, {
            "visit_id": v["id"], "host_school": SCHOOL, "slot_id": v["slots"][i % len(v["slots"])]["id"],
            "faculty_id": str(uuid.uuid4()), "motivation": f"Request {i}: a guest lecture on venture finance."})
    me = bearer(keys_dir, SCHOOL, "faculty", faculty[0])
    for i in range(OUTGOING):  # the signed-in faculty member asks for places in the partner's visits
        v = theirs[i % VISITS]
        post(stack.service_url("visits") + "/slot-requests", me, {
            "visit_id": v["id"], "host_school": PARTNER, "slot_id": v["slots"][i % len(v["slots"])]["id"],
            "faculty_id": faculty[0], "motivation": f"Outgoing {i}"})

    catalog, visits = stack.service_url("catalog"), stack.service_url("visits")

    def count(url: str, headers: dict | None = None) -> int:
        response = requests.get(url, params={"limit": 100}, headers=headers or {}, timeout=TIMEOUT)
        return len(response.json().get("items", [])) if response.ok else -1

    wait(lambda: count(catalog + "/courses") >= COURSES, 60, "the catalog holds every course", 0.2)
    wait(lambda: sum(v.get("school") == PARTNER for v in requests.get(
        catalog + "/visits", params={"limit": 100}, timeout=TIMEOUT).json().get("items", [])) >= VISITS,
         60, "the catalog holds the partner's visits", 0.2)
    wait(lambda: count(visits + "/slot-decisions", coordinator) >= INCOMING, 60,
         "the partner's requests reached this school", 0.2)
    return {"course": courses[0], "faculty_id": faculty[0], "coordinator": coordinator, "me": me}


def measure(stack, data: dict) -> dict:
    base, catalog = stack.url, stack.service_url("catalog")
    courses, visits = stack.service_url("courses"), stack.service_url("visits")
    log("signing in a coordinator and a faculty member through the provider")
    pages = {
        "public": requests.Session(),
        "coordinator": sign_in(base, f"coordinator@{SCHOOL}"),
        "faculty": sign_in(base, f"faculty@{SCHOOL}"),
    }
    # (page title, who, page path, JSON URL, JSON headers)
    pairs = [
        ("Course search `/`", "public", "/", catalog + "/courses", {}),
        ("Course page `/course/<id>`", "public", f"/course/{data['course']}",
         catalog + f"/courses/{data['course']}", {}),
        ("Coordinator: Courses `/manage/courses`", "coordinator", "/manage/courses",
         courses + "/courses?limit=100&sort=code", data["coordinator"]),
        ("Coordinator: Incoming requests `/manage/requests/incoming`", "coordinator", "/manage/requests/incoming",
         visits + "/slot-decisions?limit=100", data["coordinator"]),
        ("Faculty: Exchange visits `/exchange/visits`", "faculty", "/exchange/visits",
         catalog + "/visits?limit=100", {}),
        ("Faculty: My requests `/exchange/requests`", "faculty", "/exchange/requests",
         visits + "/slot-requests?limit=100", data["me"]),
    ]
    # what each page must show for its time to count: (substring, how many times at least)
    shows = {"/": ('href="/course/', 10), "/manage/courses": ('data-code="B-', 10),
             "/manage/requests/incoming": ("data-request=", INCOMING), "/exchange/visits": ("data-visit=", VISITS),
             "/exchange/requests": ("data-request=", OUTGOING)}
    json_session = requests.Session()
    times = {title: {"page": [], "json": []} for title, *_ in pairs}
    weights = {}
    for title, who, path, json_url, headers in pairs:
        page = pages[who].get(base + path, timeout=TIMEOUT)
        if page.status_code != 200 or page.url != base + path:
            raise RuntimeError(f"{path} as {who}: {page.status_code} at {page.url}")
        needle, least = shows.get(path, ("B-0", 1))
        if page.text.count(needle) < least:
            raise RuntimeError(f"{path} as {who}: {page.text.count(needle)} x {needle!r}, expected {least}+")
        assets = {url: len(pages[who].get(urljoin(base + path, url), timeout=TIMEOUT).content)
                  for url in assets_of(page.text)}
        weights[title] = {"html": len(page.content), "assets": assets}
        answer = json_session.get(json_url, headers=headers, timeout=TIMEOUT)
        if answer.status_code != 200:
            raise RuntimeError(f"{json_url}: {answer.status_code} {answer.text[:200]}")
        weights[title]["json"] = len(answer.content)
    log(f"{WARMUP} + {ROUNDS} interleaved rounds over {len(pairs)} pages")
    for round_no in range(WARMUP + ROUNDS):
        for title, who, path, json_url, headers in pairs:
            t0 = time.perf_counter()
            page = pages[who].get(base + path, timeout=TIMEOUT)
            t1 = time.perf_counter()
            answer = json_session.get(json_url, headers=headers, timeout=TIMEOUT)
            t2 = time.perf_counter()
            if page.status_code != 200 or answer.status_code != 200:
                raise RuntimeError(f"{path}: {page.status_code}, {json_url}: {answer.status_code}")
            if round_no >= WARMUP:
                times[title]["page"].append(t1 - t0)
                times[title]["json"].append(t2 - t1)
    RESULTS.clear()
    RESULTS.update({"times": times, "weights": weights})
    return report(pairs, times, weights, {"catalog": catalog, "courses": courses, "visits": visits})


def _ms(values, p) -> str:
    return f"{percentile(values, p) * 1000:.1f}"


def report(pairs, times: dict, weights: dict, bases: dict) -> dict:
    rows = ["| Page | JSON it reads | page p50 / p95 ms | JSON p50 / p95 ms | ratio of p50s |",
            "|---|---|---|---|---|"]
    for title, who, path, json_url, _ in pairs:
        t = times[title]
        ratio = percentile(t["page"], 50) / percentile(t["json"], 50)
        service = next(name for name, url in bases.items() if json_url.startswith(url + "/"))
        label = f"{service} `GET {re.sub(r'/[0-9a-f-]{36}$', '/<id>', json_url[len(bases[service]):])}`"
        rows.append(f"| {title} ({who}) | {label} | {_ms(t['page'], 50)} / "
                    f"{_ms(t['page'], 95)} | {_ms(t['json'], 50)} / {_ms(t['json'], 95)} | {ratio:.1f} |")
    wrows = ["| Page | HTML KB | CSS + JS KB | total KB | JSON KB | under 100 KB |", "|---|---|---|---|---|---|"]
    missing = []
    for title, *_ in pairs:
        w = weights[title]
        assets = sum(w["assets"].values())
        total = (w["html"] + assets) / 1024
        if total >= AIM_KB:
            missing.append(title)
        wrows.append(f"| {title} | {w['html'] / 1024:.1f} | {assets / 1024:.1f} "
                     f"({', '.join(Path(u.split('?')[0]).name for u in w['assets'])}) | {total:.1f} | "
                     f"{w['json'] / 1024:.1f} | {'yes' if total < AIM_KB else '**no**'} |")
    conditions = (
        f"ecnu-cto's four services (gunicorn -w 2 each) and its dev identity provider, sdu-sie's visits "
        f"service (-w 1), nx-27017 and Tansu on loopback, all on this machine, which is shared (other "
        f"engineers' tests may have run at the same time: the absolute times are noisy, the ratios less so). "
        f"Data: {COURSES} courses, {FACULTY} faculty profiles, {VISITS} visits with three slots at each school, "
        f"{INCOMING} partner requests for ecnu-cto's slots and {OUTGOING} of the signed-in faculty member's "
        f"requests for sdu-sie's. {ROUNDS} rounds after {WARMUP} warm-up rounds; in each round every page is "
        f"fetched once and its JSON right after it, on keep-alive sessions (the page on the signed-in "
        f"user's session, the JSON with a bearer token where the service needs one)."
    )
    meaning = (
        "The ratio is the page's median time over the median time of the JSON request its data comes "
        "from (with the query the page itself sends): what the front door costs on top of the data. "
        "The public search and course pages and Exchange visits read the catalog's read model "
        "in-process, the same query as the JSON, so their ratio is the session, the template and the "
        "HTML's bytes alone; Courses, Incoming requests and My requests call the service's JSON over "
        "HTTP from the catalog's web process (with the user's token), so the page's time includes that "
        "whole request once more, and Incoming requests also reads the visits service's `GET /visits` "
        "to group the decisions by slot: a ratio of about 3 there is two service calls plus rendering. "
        "A ratio near 1 would mean rendering is free; none of these pages is far from its data."
    )
    verdict = ("Every page is under the aim." if not missing else
               "Pages over the aim: " + ", ".join(missing) + ".")
    return {
        "Page render time against the JSON of the same data": "\n".join(
            [conditions, "", *rows, "", meaning]),
        "Page weight without images": "\n".join(
            [f"HTML plus every stylesheet and script the page loads (`<link rel=stylesheet>`, `<script src>`), "
             f"uncompressed, images not counted, against the aim of {AIM_KB:.0f} KB (issue 10); the JSON "
             f"column is the size of the JSON answer above, for comparison.", "", *wrows, "", verdict]),
    }

