"""The demo page (``/``) in real headless Chromium under the policy the server
sends with it: it signs in, watches a floor and draws it with no script or
style the policy refuses; a script it did not ship does not run; and a page
on another origin cannot frame it."""

from __future__ import annotations

from typing import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.support.browser import PortalServer, new_context
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.browser

TIMEOUT = 15_000  # ms
SIGN_IN = "/?municipality=altbach&user=anna.altbach&name=Anna%20Albrecht&floor=projekt&room=hallway"
# Runs before the page's own scripts (injected by the browser, so outside the policy).
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.cspViolations.push({ directive: e.effectiveDirective, blocked: e.blockedURI }));
"""


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"PRESENCE_STORAGE__BACKEND": "memory", "PRESENCE_LOG__LEVEL": "warning"}
    log = tmp_path_factory.mktemp("demo-page") / "server.log"
    with ServerProcess(env, log_path=log) as server:
        yield server


def test_the_demo_page_works_under_its_policy_and_refuses_scripts_it_did_not_ship(
    chromium: Browser, office: ServerProcess
) -> None:
    context = new_context(chromium)
    try:
        context.add_init_script(RECORD_VIOLATIONS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(office.url + SIGN_IN)
        expect(page.locator("#hallway-list")).to_contain_text("Anna Albrecht", timeout=TIMEOUT)
        expect(page.locator("#plan svg")).to_be_visible(timeout=TIMEOUT)
        # The status dot's colour is set through the CSSOM, which style-src 'self' allows.
        dot = page.locator("#hallway-list .dot").first
        assert dot.evaluate("(el) => getComputedStyle(el).backgroundColor") not in ("", "rgba(0, 0, 0, 0)")
        assert page.evaluate("window.cspViolations") == [] and errors == []

        page.evaluate("""() => { const s = document.createElement("script");
                                 s.textContent = "window.injected = true"; document.head.append(s); }""")
        page.wait_for_function("window.cspViolations.length > 0", timeout=TIMEOUT)
        assert page.evaluate("window.injected") is None
        assert [v["directive"] for v in page.evaluate("window.cspViolations")] == ["script-src-elem"]
    finally:
        context.close()


def test_another_origin_cannot_frame_the_demo_page(
    chromium: Browser, office: ServerProcess, portal: PortalServer
) -> None:
    portal.pages["/frames-demo.html"] = (
        f'<!doctype html><title>Framing</title><iframe id="demo" src="{office.url}/"></iframe>'
    )
    context = new_context(chromium)
    try:
        page = context.new_page()
        with page.expect_response(lambda r: r.url == office.url + "/", timeout=TIMEOUT) as framed:
            page.goto(portal.origin + "/frames-demo.html")
        assert framed.value.status == 200  # the server answered; the browser refused to show it
        frame = page.frame_locator("#demo")
        expect(frame.locator("#login")).to_have_count(0, timeout=TIMEOUT)
        assert page.frames[1].url != office.url + "/"  # Chromium shows its error page instead
    finally:
        context.close()
