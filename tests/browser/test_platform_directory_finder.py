"""The finder's "whole platform" toggle of <virtual-office-floor> in real headless
Chromium: a specialist of another cooperation who published a skill is found only
with the toggle on, shown with her published skill and no location, rung from the
result with the keyboard alone; axe-core finds nothing serious in either language."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Browser, expect

from presence_server.auth import mint_token
from tests.conftest import make_settings
from tests.support.axe import axe_violations, install_axe, severe
from tests.support.browser import (
    PortalServer,
    deep_focus,
    new_context,
    open_widget,
    tab_to,
    widget_page_html,
)
from tests.support.processes import ServerProcess
from tests.test_platform_directory import NATURE, zwei_ufer_env

pytestmark = pytest.mark.browser

TIMEOUT = 15_000
FRIDA = "ferndorf/frida.ferndorf"


@pytest.fixture(scope="module")
def env(portal: PortalServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        **zwei_ufer_env(tmp_path_factory.mktemp("platform-seed")),
        "PRESENCE_STORAGE__BACKEND": "memory",
        "PRESENCE_LOG__LEVEL": "warning",
        "PRESENCE_HTTP__CORS_ORIGINS": json.dumps([portal.origin]),
    }


@pytest.fixture(scope="module")
def office(portal: PortalServer, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("widget-platform") / "server.log"
    with ServerProcess(env, log_path=log) as server:
        portal.pages["/intranet.html"] = widget_page_html(server.url, floor="projekt", title="Intranet Altbach")
        portal.pages["/ufer.html"] = widget_page_html(server.url, floor="ufer-projekt", title="Intranet Ferndorf")
        yield server


def token(env: dict[str, str], user: str, town: str, name: str, *, skills: tuple[str, ...] = ()) -> str:
    settings = make_settings(env)
    return mint_token(settings.auth, municipality=town, user_id=user, name=name, roles=("staff",),
                      ttl_seconds=3600, skills=skills)


def publish(server: ServerProcess, bearer: str, skills: list[str]) -> dict:
    request = urllib.request.Request(
        f"{server.url}/api/v1/me/published-skills", method="PUT", data=json.dumps({"skills": skills}).encode(),
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_the_whole_platform_toggle_finds_and_rings_an_opted_in_specialist(
    chromium: Browser, portal: PortalServer, office: ServerProcess, env: dict[str, str], tmp_path: Path
) -> None:
    frida_token = token(env, "frida.ferndorf", "ferndorf", "Frida Fink", skills=(NATURE, "GIS"))
    frida = open_widget(new_context(chromium), portal.origin + "/ufer.html", frida_token, lang="en")
    anna_context = new_context(chromium)
    install_axe(anna_context)
    anna = open_widget(anna_context, portal.origin + "/intranet.html",
                       token(env, "anna.altbach", "altbach", "Anna Albrecht"), lang="de")
    widget = anna.locator("virtual-office-floor")
    finder = widget.locator("section.finder")
    status = finder.locator('[role="status"]')
    try:
        assert publish(office, frida_token, [NATURE])["published"] == [NATURE]
        widget.get_by_label("Suchbegriff").fill("Naturschutzrecht")
        widget.get_by_label("Suchbegriff").press("Enter")
        expect(status).to_have_text("Keine Treffer für „Naturschutzrecht“.", timeout=TIMEOUT)

        # The toggle, by keyboard: Tab to it, Space, then back to the field and Enter.
        toggle = widget.get_by_label("ganze Plattform")
        expect(toggle).not_to_be_checked()
        focus = tab_to(anna, "finder:platform")
        assert focus["visible"]
        anna.keyboard.press("Space")
        expect(toggle).to_be_checked()
        anna.keyboard.press("Shift+Tab")
        anna.keyboard.press("Shift+Tab")
        assert deep_focus(anna)["key"] == "finder:q"
        anna.keyboard.press("Enter")

        items = finder.locator("ol.finder-results > li")
        expect(items).to_have_count(1, timeout=TIMEOUT)
        item = items.nth(0)
        expect(item).to_have_attribute("data-person", FRIDA)
        expect(item).to_have_attribute("data-platform", "true")
        expect(item.locator("h4")).to_contain_text("Frida Fink")
        expect(item).to_contain_text("Andere Kooperation")
        expect(item).to_contain_text(f"Fachgebiete: {NATURE}")
        expect(item).not_to_contain_text("GIS")  # not published
        expect(item).not_to_contain_text("Ort:")  # her floor is not Anna's to see
        expect(item.get_by_role("button", name="Hingehen")).to_have_count(0)

        found = severe(axe_violations(anna))
        assert found == [], json.dumps(found, indent=1, ensure_ascii=False)

        # Ring her from the result, by keyboard: the widget's own ring flow.
        focus = tab_to(anna, f"finder-ring:{FRIDA}", limit=20)
        assert focus["visible"] and focus["label"].startswith("Anrufen")
        anna.keyboard.press("Enter")
        expect(widget.locator(".pending")).to_contain_text("Sie rufen Frida Fink an", timeout=TIMEOUT)
        card = frida.locator("virtual-office-floor .alerts [data-ring]")
        expect(card).to_contain_text("Anna Albrecht (Altbach) is calling you", timeout=TIMEOUT)
        card.get_by_role("button", name="Decline").click()
        expect(widget.locator(".notice")).to_contain_text("Anruf: abgelehnt", timeout=TIMEOUT)

        # A new language keeps the toggle; opting out empties the platform's answer.
        anna.evaluate("() => document.querySelector('virtual-office-floor').setAttribute('lang', 'en')")
        expect(widget.get_by_label("whole platform")).to_be_checked()
        found = severe(axe_violations(anna))
        assert found == [], json.dumps(found, indent=1, ensure_ascii=False)
        assert publish(office, frida_token, [])["published"] == []
        widget.get_by_label("Search term").press("Enter")
        expect(status).to_have_text("No results for “Naturschutzrecht”.", timeout=TIMEOUT)
    finally:
        frida.context.close()
        anna.context.close()
