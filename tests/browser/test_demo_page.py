"""The demo page (``/``) in real headless Chromium under the policy the server
sends with it.

The page is a portal built on ``<virtual-office-floor>``: a person picked in its
form gets a development token and sees the floors of their town and the shared
project floor in the element; they walk in, meet someone from another town and
call them with the element's own controls. axe-core finds nothing serious on
either floor, in German and English. No script or style the policy refuses; a
script the page did not ship does not run; a page on another origin cannot frame it.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.axe import axe_violations, install_axe, severe
from tests.support.browser import ARTIFACTS, PortalServer, new_context
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.browser

TIMEOUT = 15_000  # ms
SIGN_IN = "/?municipality=altbach&user=anna.altbach&name=Anna%20Albrecht&floor=projekt&room=hallway"
PROJECT_FLOOR = "Projektetage Digitales Rathaus"
LOUNGE = "projekt-lounge"  # open door
# Runs before the page's own scripts (injected by the browser, so outside the policy).
RECORD_PROBLEMS = """
window.cspViolations = [];
window.pageErrors = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.cspViolations.push({ directive: e.effectiveDirective, blocked: e.blockedURI }));
window.addEventListener("error", (e) => window.pageErrors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.pageErrors.push(String(e.reason)));
"""


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"PRESENCE_STORAGE__BACKEND": "memory", "PRESENCE_LOG__LEVEL": "warning"}
    log = tmp_path_factory.mktemp("demo-page") / "server.log"
    with ServerProcess(env, log_path=log) as server:
        yield server


def open_demo(chromium: Browser, office: ServerProcess, query: str, *, axe: bool = False) -> Page:
    """The demo page in a fresh profile, recording policy violations and script errors."""
    context = new_context(chromium)
    context.add_init_script(RECORD_PROBLEMS)
    if axe:
        install_axe(context)
    page = context.new_page()
    page.goto(office.url + query)
    return page


def widget(page: Page) -> Locator:  # the element; locators reach into its shadow root
    return page.locator("virtual-office-floor")


def floors_nav(page: Page, label: str = "Etagen") -> Locator:
    return page.get_by_role("navigation", name=label)


def shown_floor(page: Page) -> Locator:
    """The floor button marked as shown (the page marks what the element reports)."""
    return page.locator('nav button[aria-current="true"]')


def person_in(page: Page, room: str, person: str) -> Locator:
    """A person's entry in the element's list view (``room`` "" is the hallway), by person id."""
    return widget(page).locator(f'.rooms li[data-room="{room}"] li.person[data-person="{person}"]')


def assert_no_problems(page: Page) -> None:
    assert page.evaluate("window.cspViolations") == []
    assert page.evaluate("window.pageErrors") == []


def test_the_demo_page_works_under_its_policy_and_refuses_scripts_it_did_not_ship(
    chromium: Browser, office: ServerProcess
) -> None:
    page = open_demo(chromium, office, SIGN_IN)
    try:
        expect(person_in(page, "", "altbach/anna.altbach")).to_contain_text("Anna Albrecht", timeout=TIMEOUT)
        expect(widget(page).locator("svg")).to_be_visible(timeout=TIMEOUT)
        # The element's styles are a constructed stylesheet, which style-src 'self' lets through.
        dot = widget(page).locator("li.person .dot").first
        assert dot.evaluate("(el) => getComputedStyle(el).backgroundColor") not in ("", "rgba(0, 0, 0, 0)")
        assert_no_problems(page)

        page.evaluate("""() => { const s = document.createElement("script");
                                 s.textContent = "window.injected = true"; document.head.append(s); }""")
        page.wait_for_function("() => window.cspViolations.length > 0", timeout=TIMEOUT)
        assert page.evaluate("window.injected") is None
        assert [v["directive"] for v in page.evaluate("window.cspViolations")] == ["script-src-elem"]
    finally:
        page.context.close()


def test_a_person_picked_in_the_form_walks_in_meets_another_town_and_calls(
    chromium: Browser, office: ServerProcess
) -> None:
    mia = open_demo(chromium, office, "/?lang=de")
    lea = None
    try:
        # Mia picks herself in the form; the page mints her token and shows her town's floor.
        mia.get_by_label("Gemeinde").select_option("altbach")
        mia.get_by_label("Person").select_option("mia.altbach")
        expect(mia.get_by_label("Name")).to_have_value("Mia Arnold")
        mia.get_by_label("Name").press("Enter")  # signs in, as the button does
        expect(mia.locator("#whoami")).to_have_text("Angemeldet: Mia Arnold, Gemeinde Altbach", timeout=TIMEOUT)
        expect(floors_nav(mia).get_by_role("button")).to_have_text(
            ["Rathaus Altbach – Erdgeschoss", PROJECT_FLOOR], timeout=TIMEOUT
        )  # her town's floor and the cooperation's, no other town's
        expect(floors_nav(mia).get_by_role("button").first).to_be_focused()  # the form that had it is gone
        expect(shown_floor(mia)).to_have_text("Rathaus Altbach – Erdgeschoss", timeout=TIMEOUT)
        expect(widget(mia)).to_have_attribute("data-location", "altbach-eg/", timeout=TIMEOUT)

        # Lea of Lindenau is in the project floor's lounge (the page's shortcut, in English).
        lea = open_demo(
            chromium, office,
            f"/?municipality=lindenau&user=lea.lindenau&name=Lea%20Lorenz&floor=projekt&room={LOUNGE}&lang=en",
        )
        expect(widget(lea)).to_have_attribute("data-location", f"projekt/{LOUNGE}", timeout=TIMEOUT)

        # Mia shows the project floor and sees Lea there, with her town.
        floors_nav(mia).get_by_role("button", name=PROJECT_FLOOR).click()
        expect(shown_floor(mia)).to_have_text(PROJECT_FLOOR, timeout=TIMEOUT)
        expect(widget(mia).locator(".top h2")).to_have_text(PROJECT_FLOOR)
        expect(person_in(mia, LOUNGE, "lindenau/lea.lindenau")).to_contain_text("Lea Lorenz (Lindenau)", timeout=TIMEOUT)

        # She walks into the lounge with a click on the plan; Lea sees her come in.
        widget(mia).locator(f'svg g.room[data-room="{LOUNGE}"]').click()
        expect(widget(mia)).to_have_attribute("data-location", f"projekt/{LOUNGE}", timeout=TIMEOUT)
        expect(person_in(lea, LOUNGE, "altbach/mia.altbach")).to_contain_text("Mia Arnold (Altbach)", timeout=TIMEOUT)

        # Both join the lounge's call with the element's buttons (fake camera and microphone).
        widget(mia).get_by_role("button", name="Gespräch beitreten").click()
        expect(widget(mia)).to_have_attribute("data-call", "active", timeout=TIMEOUT)
        widget(lea).get_by_role("button", name="Join the call").click()
        for page in (mia, lea):
            expect(widget(page)).to_have_attribute("data-peers-connected", "1", timeout=20_000)
        expect(person_in(mia, LOUNGE, "lindenau/lea.lindenau")).to_contain_text("im Gespräch", timeout=TIMEOUT)
        ARTIFACTS.mkdir(exist_ok=True)
        mia.screenshot(path=str(ARTIFACTS / "demo-page-call.png"), full_page=True)

        widget(mia).get_by_role("button", name="Gespräch verlassen").click()
        expect(widget(lea)).to_have_attribute("data-peers-connected", "0", timeout=TIMEOUT)
        for page in (mia, lea):
            assert_no_problems(page)
    finally:
        mia.context.close()
        if lea is not None:
            lea.context.close()


def test_axe_finds_no_serious_violations_on_a_town_floor_and_the_shared_floor(
    chromium: Browser, office: ServerProcess
) -> None:
    karl = open_demo(chromium, office, "/?lang=de", axe=True)
    nina = open_demo(
        chromium, office, "/?municipality=lindenau&user=nina.lindenau&name=Nina%20Lehmann&floor=lindenau-eg&lang=en", axe=True
    )
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        found["Karl (de), the person picker"] = axe_violations(karl)
        karl.get_by_label("Person").select_option("karl.altbach")
        karl.get_by_role("button", name="Eintreten").click()
        expect(widget(karl)).to_have_attribute("data-location", "altbach-eg/", timeout=TIMEOUT)
        expect(widget(nina)).to_have_attribute("data-location", "lindenau-eg/", timeout=TIMEOUT)
        found["Karl (de), Altbach's floor"] = axe_violations(karl)
        found["Nina (en), Lindenau's floor"] = axe_violations(nina)

        # The shared floor with people of two towns on it: Nina in the lounge, Karl with a status text.
        floors_nav(karl).get_by_role("button", name=PROJECT_FLOOR).click()
        floors_nav(nina, "Floors").get_by_role("button", name=PROJECT_FLOOR).click()
        expect(shown_floor(nina)).to_have_text(PROJECT_FLOOR, timeout=TIMEOUT)
        widget(nina).locator(f'svg g.room[data-room="{LOUNGE}"]').click()
        expect(person_in(karl, LOUNGE, "lindenau/nina.lindenau")).to_be_visible(timeout=TIMEOUT)
        widget(karl).get_by_label("Statustext").fill("Haushalt")
        widget(karl).get_by_role("button", name="Status setzen").click()
        expect(widget(karl).locator(".notice")).to_contain_text("Status gesetzt", timeout=TIMEOUT)
        found["Karl (de), the project floor"] = axe_violations(karl)
        found["Nina (en), the project floor"] = axe_violations(nina)
    finally:
        karl.context.close()
        nina.context.close()
    problems = {where: severe(violations) for where, violations in found.items() if severe(violations)}
    assert problems == {}, json.dumps(problems, indent=1, ensure_ascii=False)


def test_after_a_reconnect_the_page_shows_the_floor_chosen_last(chromium: Browser, office: ServerProcess) -> None:
    # The element watches its floor again on every new session: the page makes sure it is
    # the one chosen in the page, not the one the element started with.
    page = open_demo(chromium, office, "/?municipality=bergheim&user=ben.bergheim&name=Ben%20Becker&floor=bergheim-eg")
    try:
        expect(widget(page)).to_have_attribute("data-location", "bergheim-eg/", timeout=TIMEOUT)
        floors_nav(page, "Floors").get_by_role("button", name=PROJECT_FLOOR).click()
        expect(widget(page).locator(".top h2")).to_have_text(PROJECT_FLOOR, timeout=TIMEOUT)
        page.evaluate("""() => { const el = document.querySelector('virtual-office-floor');
                                 window.readies = 0; el.addEventListener('vo-ready', () => { window.readies += 1; });
                                 el.session.dropTransport(); }""")  # as a network failure would
        page.wait_for_function("() => window.readies > 0", timeout=TIMEOUT)
        expect(widget(page).locator(".top h2")).to_have_text(PROJECT_FLOOR, timeout=TIMEOUT)
        expect(shown_floor(page)).to_have_text(PROJECT_FLOOR)
        assert_no_problems(page)
    finally:
        page.context.close()


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
