"""The front door's browser-test kit: one school's stack as real processes, sign-in, axe, screenshots.

A test module of front-door pages uses the `stack` and `browser` fixtures
(tests/browser/conftest.py: started once per module) and a fresh `page` per
test (its own cookies); `sign_in(page, stack, "coordinator")` signs a dev user
in through the school's identity provider; `assert_accessible(page)` fails on
any serious or critical axe-core violation; `screenshots(page, "partners")`
writes tests/artifacts/partners-<lang>-phone.png and -desktop.png.
"""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from devstack import servers
from devstack.idp import idp_env, issuer, start_idp
from devstack.processes import Stack, free_port_base, service_processes, start_school, write_alliance
from devstack.seed import faculty2_email, faculty_email
from tests.samples import course
from tests.visit_samples import visit

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SCHOOL, PARTNER = "ecnu-cto", "sdu-sie"
# how long what one school sends may take to show at the other (relay, broker, consumer)
SYNC_SECONDS = 45


def start_stack(mongo_uri: str, kafka_bootstrap: str, run_dir: Path, keys_dir: Path, *,
                session_idle_seconds: int | None = None) -> Stack:
    """ecnu-cto's services and identity provider on free ports, sdu-sie as its (absent) partner, seeded."""
    stack = start_school(SCHOOL, PARTNER, mongo_uri, kafka_bootstrap, run_dir, keys_dir, catalog_env=(
        {"SESSION_IDLE_SECONDS": str(session_idle_seconds)} if session_idle_seconds else {}))
    try:
        stack.faculty_id = stack.post("faculty", "/faculty", {
            "name": {"en": "Zhang Min", "zh": "张敏"}, "title": "Professor", "department": "Technology and Innovation Management",
            "email": faculty_email(SCHOOL),
            "languages": ["zh", "en"], "expertise": ["0413"], "visibility": "alliance"})["id"]
        stack.post("visits", "/visits", visit())
        for code, status, visibility in (("MEM-6101", "published", "alliance"), ("MEM-6203", "draft", "alliance"),
                                         ("MEM-6999", "published", "school"), ("MEM-6001", "withdrawn", "alliance")):
            body = course(code=code, status="published" if status == "withdrawn" else status, visibility=visibility)
            created = stack.post("courses", "/courses", body)
            if status == "withdrawn":
                gone = requests.delete(f"{stack.service_url('courses')}/courses/{created['id']}", timeout=10,
                                       headers={"Authorization": f"Bearer {stack.token()}", "If-Match": '"1"'})
                assert gone.status_code == 200, gone.text
    except BaseException:
        stack.stop()
        raise
    return stack


def partner_visit_in_catalog(stack: Stack) -> dict:
    """A visit of the partner (sdu-sie) inviting this school, applied to this school's catalog as its consumer
    would apply the partner's event (the partner's services do not run in this stack)."""
    return visit_in_catalog(stack, PARTNER, invited=[SCHOOL])


def visit_in_catalog(stack: Stack, school: str, **changes) -> dict:
    """A visit of `school` applied to this school's catalog as its consumer would apply the visit's event (no
    visits worker runs in this stack to publish one)."""
    from pymongo import MongoClient

    from services.catalog.store import ReadModel
    from services.catalog.sync import apply_event
    from shared.config import Settings
    from tests.catalogutil import event, visit_body

    settings = Settings(school=SCHOOL, service="catalog", mongodb_database_prefix=stack.prefix, schools=())
    client = MongoClient(stack.mongo_uri, tz_aware=True)
    try:
        body = visit_body(school, **changes)
        apply_event(ReadModel(client[settings.database_name]), event(body, "visit.published.v1", service="visits"),
                    school)
    finally:
        client.close()
    return body


# each service's port, from the school's port base (as devstack.processes.start_school places them)
PORT_OFFSETS = {"catalog": 0, "courses": 1, "faculty": 2, "visits": 3}


def start_two_schools(mongo_uri: str, kafka_bootstrap: str, run_dir: Path, keys_dir: Path,
                      services: tuple[str, ...] = ("faculty", "visits", "catalog")) -> dict[str, Stack]:
    """Both schools as real processes, for the exchange between them: each school's identity provider, and
    the web and worker of each of `services` (by default faculty, visits and the catalog: the exchange pages
    do not read courses), and with the faculty service two faculty profiles each (the dev users faculty@ and
    faculty2@), visible to the alliance. The processes start in parallel (each waits for its own health check)."""
    prefix = f"ex{uuid.uuid4().hex[:8]}_"
    bases = {SCHOOL: free_port_base(4), PARTNER: free_port_base(4)}
    alliance = write_alliance(run_dir / f"{prefix}alliance.json", bases)
    stacks: dict[str, Stack] = {}
    starts = []
    for school, base in bases.items():
        idp_port = servers.free_port()
        stack = stacks[school] = Stack(school, base, issuer(idp_port), keys_dir)
        starts.append(lambda school=school, port=idp_port, stack=stack: stack.procs.append(
            start_idp(school, port, run_dir / prefix / "log")))
        for service in services:
            svc = service_processes(school, service, base + PORT_OFFSETS[service], mongo_uri, kafka_bootstrap,
                                    run_dir, alliance, keys_dir, prefix)
            if service == "catalog":
                svc.env.update(idp_env(school, idp_port, keys_dir))
            stack.services[service] = svc
            starts.append(lambda svc=svc: svc.start_web(workers=2 if svc.service == "catalog" else 1))
            # every worker: the faculty worker's relay publishes the profiles partners' catalogs show
            starts.append(svc.start_worker)
    try:
        with ThreadPoolExecutor(max_workers=len(starts)) as pool:
            for future in [pool.submit(start) for start in starts]:
                future.result()
        for school, stack in stacks.items():
            if "faculty" not in services:
                break
            names = {SCHOOL: ({"en": "Zhang Min", "zh": "张敏"}, {"en": "Chen Hao", "zh": "陈昊"}),
                     PARTNER: ({"en": "Wang Li", "zh": "王丽"}, {"en": "Liu Yang", "zh": "刘洋"})}[school]
            ids = []
            for name, email in zip(names, (faculty_email(school), faculty2_email(school))):
                ids.append(stack.post("faculty", "/faculty", {
                    "name": name, "title": "Professor", "department": "Innovation Management", "email": email,
                    "languages": ["zh", "en"], "expertise": ["0413"], "visibility": "alliance"})["id"])
            stack.faculty_id = ids[0]
    except BaseException:
        stop_all(stacks.values())
        raise
    return stacks


def stop_all(stacks) -> None:
    """Stop every process of these stacks at once (each gets its own grace period)."""
    stops = [svc.stop for stack in stacks for svc in stack.services.values()]
    stops += [(lambda proc=proc: proc.stop(timeout=5)) for stack in stacks for proc in stack.procs]
    with ThreadPoolExecutor(max_workers=max(1, len(stops))) as pool:
        for future in [pool.submit(stop) for stop in stops]:
            future.result()


def sign_in(page, stack: Stack, user: str, start: str = "/") -> None:
    """Sign `user` ("coordinator", "faculty", "student", or any sub) in through the school's provider."""
    sub = user if "@" in user else f"{user}@{stack.school}"
    page.goto(stack.url + start)
    page.get_by_role("link", name=re.compile(r"^(Sign in|登录)$")).click()
    page.wait_for_url(stack.idp_url + "/**")
    page.locator("input[name=sub]").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(stack.url + "/**")


def assert_accessible(page) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
           for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{page.url}: {bad}"


def screenshots(page, name: str) -> list[Path]:
    """Full-page screenshots at phone and desktop width: tests/artifacts/<name>-<lang>-<phone|desktop>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lang = "zh" if (page.locator("html").get_attribute("lang") or "").startswith("zh") else "en"
    paths = []
    original = page.viewport_size
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        path = ARTIFACTS / f"{name}-{lang}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    if original:
        page.set_viewport_size(original)
    return paths


def wait_for(page, url: str, selector: str, seconds: float = SYNC_SECONDS):
    """Open `url` again until `selector` is on it (what another school sent has arrived), or fail."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(url)
        if page.locator(selector).count():
            return page.locator(selector)
        assert time.monotonic() < deadline, f"{selector} never appeared on {url}"
        time.sleep(1)


def check_page(page, url: str, name: str) -> None:
    """The page in both languages: its lang, no sideways scroll at phone width, axe, screenshots."""
    for lang in ("zh", "en"):
        page.goto(f"{url}{'&' if '?' in url else '?'}lang={lang}")
        assert page.locator("html").get_attribute("lang") == ("zh-Hans" if lang == "zh" else "en")
        assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"], name
        assert_accessible(page)
        screenshots(page, name)


def status_text(page, request_id: str):
    """The status words of one request on a person's own list ("My requests", "My applications")."""
    return page.locator(f'li.request[data-request="{request_id}"]').get_by_test_id("request-status")


def withdraw_and_see_the_waitlist_promoted(first, second, list_url: str, first_id: str, second_id: str) -> None:
    """The first person withdraws their request on their own list: it reads "Withdrawn" at once; then the
    second person's waitlisted request is approved, on their list at `list_url`."""
    first.locator(f'li.request[data-request="{first_id}"]').get_by_role("button", name="Withdraw").click()
    assert first.get_by_test_id("notice").inner_text() == "Your request was withdrawn."
    assert status_text(first, first_id).inner_text() == "Withdrawn"
    wait_for(second, list_url, f'li.request[data-request="{second_id}"][data-status="approved"]')
    assert status_text(second, second_id).inner_text() == "Approved"


def focus_after_tab(page, locator) -> list:
    """Focus `locator`, press Tab: the text of the control reached and its outline style (a visible focus)."""
    locator.focus()
    page.keyboard.press("Tab")
    return page.evaluate("[document.activeElement.textContent, getComputedStyle(document.activeElement).outlineStyle]")
