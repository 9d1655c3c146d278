"""Accessibility of <virtual-office-floor> in real headless Chromium: axe-core
(npm, web/node_modules) run in the page finds no serious or critical violation,
and walking and knocking work with the keyboard alone, with a visible focus."""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.axe import axe_violations, severe
from tests.support.browser import (
    PortalServer,
    deep_focus,
    dev_token,
    new_context,
    open_widget,
    tab_to,
    widget_page_html,
)
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.browser

FLOOR = "projekt"
MEETING = "projekt-besprechung"  # closed, owned by lea.lindenau
COORDINATION = "projekt-buero-koordination"  # closed, owned by lea.lindenau and jonas.lindenau
LOUNGE = "projekt-lounge"  # open
TIMEOUT = 15_000



@pytest.fixture(scope="module")
def office(portal: PortalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "PRESENCE_STORAGE__BACKEND": "memory",
        "PRESENCE_LOG__LEVEL": "warning",
        "PRESENCE_HTTP__CORS_ORIGINS": json.dumps([portal.origin]),
    }
    with ServerProcess(env, log_path=tmp_path_factory.mktemp("widget-a11y") / "server.log") as server:
        portal.pages["/intranet.html"] = widget_page_html(server.url, floor=FLOOR, title="Intranet")
        yield server


def open_as(chromium: Browser, portal: PortalServer, user: str, town: str, name: str, lang: str) -> Page:
    return open_widget(new_context(chromium), portal.origin + "/intranet.html", dev_token(user, town, name), lang=lang)


def test_axe_finds_no_serious_or_critical_violations(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    anna = open_as(chromium, portal, "anna.altbach", "altbach", "Anna Albrecht", "de")
    lea = open_as(chromium, portal, "lea.lindenau", "lindenau", "Lea Lorenz", "en")
    try:
        # The states worth checking: people on the plan, a pending knock, an incoming
        # knock with its buttons, a status text, the call panel with a video, and
        # the finder's results.
        assert lea.evaluate(f"async () => (await document.querySelector('virtual-office-floor').walkTo('{MEETING}')).ok")
        assert anna.evaluate("async () => (await document.querySelector('virtual-office-floor').setStatus('busy', 'Haushalt')).ok")
        expect(anna.locator(f'virtual-office-floor svg .avatar[data-room="{MEETING}"][data-person="lindenau/lea.lindenau"]')).to_be_visible(timeout=TIMEOUT)
        assert anna.evaluate(f"async () => (await document.querySelector('virtual-office-floor').knock('{MEETING}')).ok")
        expect(lea.locator("virtual-office-floor .alerts [data-knock]")).to_be_visible(timeout=TIMEOUT)
        assert lea.evaluate("async () => (await document.querySelector('virtual-office-floor').joinCall()).ok")
        expect(lea.locator("virtual-office-floor .call video")).to_have_count(1, timeout=TIMEOUT)
        # The specialist finder with results shown (status, location, ring and go buttons).
        for page, label, term, name in ((anna, "Suchbegriff", "Lea", "Lea Lorenz"), (lea, "Search term", "Anna", "Anna Albrecht")):
            page.locator("virtual-office-floor").get_by_label(label).fill(term)
            page.locator("virtual-office-floor").get_by_label(label).press("Enter")
            expect(page.locator("virtual-office-floor .finder-results h4")).to_contain_text(name, timeout=TIMEOUT)

        for page, who in ((anna, "Anna (de)"), (lea, "Lea (en)")):
            found = severe(axe_violations(page))
            assert found == [], f"{who}: {json.dumps(found, indent=1, ensure_ascii=False)}"
    finally:
        anna.context.close()
        lea.context.close()


def focus_indicator(page: Page) -> str:
    """What draws the focus of the focused control: its outline, or for a room of
    the plan the stroke of its rectangle."""
    indicator: str = page.evaluate(
        """() => {
            let a = document.activeElement;
            while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
            const shape = a.querySelector && a.querySelector(':scope > .room-bg');
            const style = getComputedStyle(shape || a);
            return shape ? `stroke ${style.stroke} ${style.strokeWidth}` : `outline ${style.outlineStyle} ${style.outlineWidth}`;
        }"""
    )
    return indicator


def test_walk_and_knock_with_the_keyboard_alone(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    mia = open_as(chromium, portal, "mia.altbach", "altbach", "Mia Arnold", "de")
    jonas = open_as(chromium, portal, "jonas.lindenau", "lindenau", "Jonas Lang", "de")
    try:
        # Walk: Tab to the lounge on the plan, press Enter.
        focus = tab_to(mia, f"plan:{LOUNGE}")
        assert focus["visible"] and "Lounge" in focus["label"] and "Tür offen" in focus["label"]
        assert focus_indicator(mia) == "stroke rgb(191, 75, 0) 6px"
        mia.keyboard.press("Enter")
        expect(mia.locator("virtual-office-floor")).to_have_attribute("data-location", f"{FLOOR}/{LOUNGE}", timeout=TIMEOUT)
        assert deep_focus(mia)["key"] == f"plan:{LOUNGE}"  # the redraw kept the focus where it was

        # Knock: Tab on to the coordination office (closed door) and press Enter.
        focus = tab_to(mia, f"plan:{COORDINATION}")
        assert "Tür zu – anklopfen" in focus["label"]
        mia.keyboard.press("Enter")
        expect(mia.locator("virtual-office-floor .pending")).to_contain_text("Sie klopfen an „Büro Projektkoordination“")

        # Jonas (an owner; nobody is inside) hears it and admits with the keyboard.
        expect(jonas.locator("virtual-office-floor .alerts [data-knock]")).to_be_visible(timeout=TIMEOUT)
        knock_id = jonas.locator("virtual-office-floor .alerts [data-knock]").get_attribute("data-knock")
        focus = tab_to(jonas, f"admit:{knock_id}")
        assert focus["visible"] and focus["label"] == "Hereinbitten"
        assert focus_indicator(jonas) == "outline solid 3px"
        jonas.keyboard.press("Enter")
        expect(mia.locator("virtual-office-floor")).to_have_attribute(
            "data-location", f"{FLOOR}/{COORDINATION}", timeout=TIMEOUT
        )
        expect(mia.locator("virtual-office-floor .notice")).to_contain_text("hereingebeten")
    finally:
        mia.context.close()
        jonas.context.close()


def test_a_refused_connection_is_said_in_words_and_axe_finds_nothing_serious(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    """A refusal the portal must act on is shown as text in a live region (role
    status), in the widget's language, and the refused widget passes axe too."""
    page = new_context(chromium).new_page()
    try:
        page.goto(f"{portal.origin}/intranet.html#token=not-a-token&lang=en")
        widget = page.locator("virtual-office-floor")
        expect(widget).to_have_attribute("data-connection", "refused", timeout=TIMEOUT)
        expect(widget.locator(".notice[role=status]")).to_have_text("Error: A valid token is required. (malformed token)")
        expect(widget.locator(".conn")).to_have_text("Connection refused")
        severe = [v for v in axe_violations(page) if v["impact"] in ("serious", "critical")]
        assert severe == [], json.dumps(severe, indent=1, ensure_ascii=False)
    finally:
        page.context.close()
