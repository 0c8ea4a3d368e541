"""Browser fixtures: one browser and one school's stack per module, a fresh page (own cookies) per test."""

from __future__ import annotations

import os

import pytest

from tests.browser.frontdoor import CHROMIUM, LAUNCH_ARGS, PHONE, partner_visit_in_catalog, start_stack


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (make system-deps)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def stack(mongo_uri, kafka_bootstrap, run_dir, keys_dir):
    """ecnu-cto's services, catalog (the front door) and dev identity provider, as real processes."""
    stack = start_stack(mongo_uri, kafka_bootstrap, run_dir, keys_dir)
    partner_visit_in_catalog(stack)
    yield stack
    stack.stop()


@pytest.fixture
def context(browser, stack):
    """A browser context (its own cookies) at phone width; nothing may leave loopback."""
    context = browser.new_context(viewport=PHONE)
    context.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def new_page(browser):
    """A page in a fresh browser context (its own cookies) at phone width; nothing may leave loopback."""
    contexts = []

    def make(javascript: bool = True):
        context = browser.new_context(viewport=PHONE, java_script_enabled=javascript)
        context.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
