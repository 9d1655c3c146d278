"""The specialist finder of <virtual-office-floor> in real headless Chromium.

Colleagues of three towns are online with the profile their tokens carry
(department, job title, skills); a user of a fourth page searches by skill in the
widget, which asks ``GET /api/v1/people/search`` across origins with the widget's
token. The results must be the API's, in the API's order, with status in words
and colour; the user rings a colleague from a result with the keyboard alone and
walks to another one on a floor the widget was not showing.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    ARTIFACTS,
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
LOUNGE = "projekt-lounge"  # open door
ALTBACH_FLOOR = "altbach-eg"  # Altbach's own floor: Altbach staff only
TEA_KITCHEN = "altbach-teekueche"  # open door
TIMEOUT = 15_000


@pytest.fixture(scope="module")
def office(portal: PortalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "PRESENCE_STORAGE__BACKEND": "memory",
        "PRESENCE_LOG__LEVEL": "warning",
        "PRESENCE_HTTP__CORS_ORIGINS": json.dumps([portal.origin]),
    }
    with ServerProcess(env, log_path=tmp_path_factory.mktemp("widget-finder") / "server.log") as server:
        portal.pages["/intranet.html"] = widget_page_html(server.url, floor=FLOOR, title="Intranet")
        yield server


def widget(page: Page):
    return page.locator("virtual-office-floor")


def finder(page: Page):
    return widget(page).locator("section.finder")


def call(page: Page, script: str) -> Any:
    """Call a method of the element and return its acknowledgement."""
    return page.evaluate(f"async () => await document.querySelector('virtual-office-floor').{script}")


def api_search(server: ServerProcess, token: str, **params: str) -> list[str]:
    """The finder's order as the API gives it, as person ids (a server-side call: no Origin header)."""
    url = f"{server.url}/api/v1/people/search?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    assert body["ok"], body
    return [r["person"] for r in body["results"]]


def test_search_by_skill_ranks_as_the_api_and_rings_and_walks_from_the_results(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    url = portal.origin + "/intranet.html"
    colleagues = {
        # Alphabetically last and of another town, but the only one free: ranked first.
        "zora.bergheim": dev_token("zora.bergheim", "bergheim", "Zora Ziegler", department="Umweltamt",
                                   job_title="Sachbearbeiterin", skills=("Naturschutzrecht", "Artenschutz")),
        # Own town, but busy and in a call.
        "bernd.altbach": dev_token("bernd.altbach", "altbach", "Bernd Bauer", department="Bauamt",
                                   skills=("Naturschutz", "Bauleitplanung")),
        # Alphabetically first, but do not disturb: last.
        "achim.lindenau": dev_token("achim.lindenau", "lindenau", "Achim Arndt", job_title="Förster",
                                    skills=("Naturschutzgebiete",)),
    }
    pages = {user: open_widget(new_context(chromium), url, token, lang="en" if user == "zora.bergheim" else "de")
             for user, token in colleagues.items()}
    anna_token = dev_token("anna.altbach", "altbach", "Anna Albrecht", department="Hauptamt")
    anna = open_widget(new_context(chromium), url, anna_token, lang="de")
    try:
        zora, bernd, achim = pages["zora.bergheim"], pages["bernd.altbach"], pages["achim.lindenau"]
        assert call(zora, f"walkTo('{LOUNGE}')")["ok"]
        assert call(achim, "setStatus('do_not_disturb', 'Waldbegehung')")["ok"]
        assert call(bernd, "setStatus('busy', 'Ortstermin')")["ok"]
        assert call(bernd, f"walkTo('{TEA_KITCHEN}', '{ALTBACH_FLOOR}')")["ok"]
        assert call(bernd, "joinCall()")["ok"]  # a room call of one: "in a call" all the same

        # Anna searches by skill with the keyboard alone: Tab to the field, type, Enter.
        focus = tab_to(anna, "finder:q")
        assert focus["visible"]
        anna.keyboard.type("naturschutz")
        anna.keyboard.press("Tab")
        assert deep_focus(anna)["key"] == "finder:field"
        anna.keyboard.press("ArrowDown")  # "Suchen in": from everything to skills
        expect(widget(anna).get_by_label("Suchen in")).to_have_value("skill")
        anna.keyboard.press("Shift+Tab")
        assert deep_focus(anna)["key"] == "finder:q"
        anna.keyboard.press("Enter")

        items = finder(anna).locator("ol.finder-results > li")
        expect(items).to_have_count(3, timeout=TIMEOUT)
        expect(finder(anna).locator('[role="status"]')).to_have_text("3 Treffer, die Verfügbaren zuerst")
        shown = [items.nth(i).get_attribute("data-person") for i in range(3)]
        # The widget shows the API's ranking, unchanged: free now first, then the
        # busy one in a call (same tier as busy), then do-not-disturb.
        assert shown == api_search(office, anna_token, skill="naturschutz")
        assert shown == ["bergheim/zora.bergheim", "altbach/bernd.altbach", "lindenau/achim.lindenau"]

        first = items.nth(0)
        expect(first.locator("h4")).to_have_text("Zora Ziegler (Bergheim)")
        expect(first).to_contain_text("Sachbearbeiterin · Umweltamt")
        expect(first).to_contain_text("Fachgebiete: Naturschutzrecht, Artenschutz")
        expect(first).to_contain_text("Ort: Lounge, Projektetage Digitales Rathaus")
        # Status in words and in colour (and a glyph).
        expect(first.locator(".status-words")).to_have_text("verfügbar")
        expect(first.locator(".dot")).to_have_text("✓")
        expect(first.locator(".dot")).to_have_css("background-color", "rgb(26, 127, 55)")
        expect(items.nth(1).locator(".status-words")).to_have_text("beschäftigt: Ortstermin · im Gespräch")
        expect(items.nth(1)).to_contain_text("Ort: Teeküche, Rathaus Altbach – Erdgeschoss")
        expect(items.nth(2).locator(".status-words")).to_have_text("nicht stören: Waldbegehung")
        expect(items.nth(2).locator(".dot")).to_have_css("background-color", "rgb(180, 35, 24)")
        ARTIFACTS.mkdir(exist_ok=True)
        finder(anna).screenshot(path=str(ARTIFACTS / "widget-finder-anna-de.png"))

        # Ring Zora from her result, by keyboard: the widget's own ring flow.
        focus = tab_to(anna, "finder-ring:bergheim/zora.bergheim", limit=10)
        assert focus["visible"] and focus["label"].startswith("Anrufen")
        anna.keyboard.press("Enter")
        expect(widget(anna).locator(".pending")).to_contain_text("Sie rufen Zora Ziegler an", timeout=TIMEOUT)
        card = widget(zora).locator(".alerts [data-ring]")
        expect(card).to_contain_text("Anna Albrecht (Altbach) is calling you", timeout=TIMEOUT)
        card.get_by_role("button", name="Decline").click()
        expect(widget(anna).locator(".notice")).to_contain_text("Anruf: abgelehnt", timeout=TIMEOUT)

        # Walk to Bernd: he sits on Altbach's floor, which the widget was not showing;
        # it switches to that floor and walks into his room.
        finder(anna).get_by_role("button", name="Hingehen – Bernd Bauer").click()
        expect(widget(anna)).to_have_attribute("data-location", f"{ALTBACH_FLOOR}/{TEA_KITCHEN}", timeout=TIMEOUT)
        expect(widget(anna).locator("h2")).to_have_text("Rathaus Altbach – Erdgeschoss", timeout=TIMEOUT)
    finally:
        for page in (*pages.values(), anna):
            page.context.close()


def test_no_match_an_empty_field_and_a_refused_search_are_said_plainly(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    page = open_widget(new_context(chromium), portal.origin + "/intranet.html",
                       dev_token("olga.lindenau", "lindenau", "Olga Lenz"), lang="en")
    status = finder(page).locator('[role="status"]')
    field = widget(page).get_by_label("Search term")
    try:
        # Nothing typed: said at once, no request.
        finder(page).get_by_role("button", name="Search", exact=True).click()
        expect(status).to_have_text("Please enter a search term.")
        expect(field).to_have_attribute("aria-invalid", "true")

        field.fill("Quantenphysik")
        field.press("Enter")
        expect(status).to_have_text("No results for “Quantenphysik”.", timeout=TIMEOUT)
        expect(finder(page)).to_have_attribute("data-state", "empty")
        expect(finder(page).locator("ol.finder-results")).to_be_hidden()

        # A skill longer than the API takes: the server's error, in the widget's language.
        widget(page).get_by_label("Search in").select_option("skill")
        field.fill("x" * 61)
        field.press("Enter")
        expect(finder(page)).to_have_attribute("data-state", "error", timeout=TIMEOUT)
        expect(status).to_contain_text("Error: The request is malformed")
        expect(status).to_have_class("finder-msg error")

        # A new language redraws the panel: the same search and answer, in new words.
        field.fill("Quantenphysik")
        field.press("Enter")
        expect(status).to_have_text("No results for “Quantenphysik”.", timeout=TIMEOUT)
        page.evaluate("() => document.querySelector('virtual-office-floor').setAttribute('lang', 'de')")
        expect(status).to_have_text("Keine Treffer für „Quantenphysik“.")
        expect(widget(page).get_by_label("Suchbegriff")).to_have_value("Quantenphysik")
        expect(widget(page).get_by_label("Suchen in")).to_have_value("skill")
    finally:
        page.context.close()
