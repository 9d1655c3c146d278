"""Embedding in real headless Chromium: a portal on another origin embeds the
custom element and the iframe page; the iframe and the portal talk by
postMessage both ways; a foreign origin is refused.

Origins (each a loopback port of its own):
* the presence server;
* the *portal*, allowed for Altbach and Lindenau (auth.municipalities.*.allowed_origins);
* a *foreign* page, allowed for nobody.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    ARTIFACTS,
    PortalServer,
    dev_token,
    new_context,
    widget_page_html,
)
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.browser

FLOOR = "projekt"
MEETING = "projekt-besprechung"
TIMEOUT = 15_000

# The portal's page: the element for one user, and the iframe page for another,
# plus the few lines a portal writes to talk to the iframe.
PORTAL_SCRIPT = """
<iframe id="office" title="Virtuelles Büro" allow="camera; microphone" width="1000" height="700"></iframe>
<script>
  const SERVER = %(server)s;
  const frameParams = new URLSearchParams(location.hash.slice(1));
  window.frameEvents = [];
  const pending = new Map();
  window.addEventListener("message", (event) => {
    if (event.origin !== SERVER) return;  // only the office may talk to us
    const data = event.data;
    if (data.type === "vo:result" && pending.has(data.id)) { pending.get(data.id)(data); pending.delete(data.id); }
    else if (data.type === "vo:event") window.frameEvents.push(data);
  });
  let next = 1;
  window.voCommand = (command) => new Promise((resolve) => {
    const id = next++;
    pending.set(id, resolve);
    document.getElementById("office").contentWindow.postMessage({ type: "vo:command", id, ...command }, SERVER);
  });
  window.addForeignFrame = (src) => {
    const frame = document.createElement("iframe");
    frame.title = "foreign";
    frame.src = src;
    document.body.append(frame);
  };
  document.getElementById("office").src =
    SERVER + "/embed/floors/%(floor)s?lang=" + (frameParams.get("frame_lang") || "en") + "#token=" + frameParams.get("frame_token");
</script>
"""

# A page of another origin, framed by the portal, that tries to drive the office iframe.
FOREIGN_SIBLING = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>foreign</title></head><body>
<script>
  parent.frames[0].postMessage({ type: "vo:command", id: "evil", command: "setStatus", status: "busy", text: "evil" }, "*");
</script></body></html>"""



@pytest.fixture(scope="module")
def foreign() -> Iterator[PortalServer]:
    server = PortalServer({"/sibling.html": FOREIGN_SIBLING}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def office(portal: PortalServer, foreign: PortalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    allowed = {"altbach": [portal.origin], "lindenau": [portal.origin], "bergheim": [], "seefeld": []}
    env = {
        "PRESENCE_STORAGE__BACKEND": "memory",
        "PRESENCE_LOG__LEVEL": "warning",
        "PRESENCE_HTTP__CORS_ORIGINS": "[]",
        **{f"PRESENCE_AUTH__MUNICIPALITIES__{town.upper()}__ALLOWED_ORIGINS": json.dumps(o) for town, o in allowed.items()},
    }
    with ServerProcess(env, log_path=tmp_path_factory.mktemp("widget-embed") / "server.log") as server:
        script = PORTAL_SCRIPT % {"server": json.dumps(server.url), "floor": FLOOR}
        for site in (portal, foreign):
            site.pages["/portal.html"] = widget_page_html(server.url, floor=FLOOR, title="Intranet", extra=script)
        yield server


def portal_page(chromium: Browser) -> Page:
    return new_context(chromium).new_page()


def portal_url(site: PortalServer, element_token: str, frame_token: str) -> str:
    return f"{site.origin}/portal.html#token={element_token}&lang=de&frame_token={frame_token}"


def frame_events(page: Page, event: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = page.evaluate("(name) => window.frameEvents.filter((e) => e.event === name)", event)
    return events


def wait_frame_event(page: Page, event: str, predicate: str = "true") -> dict[str, Any]:
    """Wait for an event from the iframe matching a JS predicate over `e`."""
    page.wait_for_function(
        f"() => window.frameEvents.some((e) => e.event === {json.dumps(event)} && ({predicate}))", timeout=TIMEOUT
    )
    matching: dict[str, Any] = page.evaluate(
        f"() => window.frameEvents.filter((e) => e.event === {json.dumps(event)} && ({predicate})).pop()"
    )
    return matching


def list_person(page: Page, room: str, person: str):
    """A person's entry in the element's list view; ``person`` is "municipality/user_id"."""
    return page.locator(f'virtual-office-floor .rooms li[data-room="{room}"] li.person[data-person="{person}"]')


def test_portal_embeds_element_and_iframe_and_they_talk_by_postmessage(
    chromium: Browser, portal: PortalServer, foreign: PortalServer, office: ServerProcess
) -> None:
    anna = dev_token("anna.altbach", "altbach", "Anna Albrecht")
    lea = dev_token("lea.lindenau", "lindenau", "Lea Lorenz")
    page = portal_page(chromium)
    try:
        page.goto(portal_url(portal, anna, lea))
        # The iframe says it is ready, to the portal's origin only, with who (the person
        # id, and the user id and town as information) and where.
        ready = wait_frame_event(page, "ready")
        assert (ready["person"], ready["user_id"], ready["municipality"], ready["floor_id"]) == (
            "lindenau/lea.lindenau", "lea.lindenau", "lindenau", FLOOR)
        # The token came in the fragment and is gone from the frame's address.
        office_frame = next(f for f in page.frames if f.url.startswith(office.url))
        assert "token" not in office_frame.url
        # The element on the portal page is connected too, and sees the iframe's user.
        expect(list_person(page, "", "lindenau/lea.lindenau")).to_be_visible(timeout=TIMEOUT)

        # Command walkTo: the iframe's user walks into her meeting room ...
        result = page.evaluate(f"() => window.voCommand({{ command: 'walkTo', room_id: '{MEETING}' }})")
        assert result["ok"] is True and result["result"]["location"] == {"floor_id": FLOOR, "room_id": MEETING}
        # ... the element sees it, and the iframe reports the change as a presence event.
        expect(list_person(page, MEETING, "lindenau/lea.lindenau")).to_be_visible(timeout=TIMEOUT)
        wait_frame_event(page, "presence", f"e.location.room_id === '{MEETING}'")

        # Command setStatus: the element shows the new status and text.
        result = page.evaluate("() => window.voCommand({ command: 'setStatus', status: 'busy', text: 'Im Termin' })")
        assert result["ok"] is True and result["result"]["presence"] == {"status": "busy", "text": "Im Termin"}
        expect(list_person(page, MEETING, "lindenau/lea.lindenau")).to_contain_text("beschäftigt: Im Termin", timeout=TIMEOUT)

        # Refusals come back in the one error shape.
        bad = page.evaluate("() => window.voCommand({ command: 'setStatus', status: 'asleep' })")
        assert bad["ok"] is False and bad["error"]["code"] == "invalid_payload"
        unknown = page.evaluate("() => window.voCommand({ command: 'format' })")
        assert unknown["ok"] is False and unknown["error"]["code"] == "unknown_event"

        # Anna (the element) knocks on Lea's door: the iframe tells the portal.
        page.locator(f'virtual-office-floor svg g.room[data-room="{MEETING}"]').click()
        knock = wait_frame_event(page, "knock")["knock"]
        assert (knock["room_id"], knock["knocker"]["person"]) == (MEETING, "altbach/anna.altbach")

        # A frame of a foreign origin inside the portal tries to drive the office: ignored.
        ignored = f"command from {foreign.origin} ignored: origin not allowed"
        with page.expect_console_message(lambda msg: ignored in msg.text, timeout=TIMEOUT):
            page.evaluate(f"() => window.addForeignFrame('{foreign.origin}/sibling.html')")
        result = page.evaluate("() => window.voCommand({ command: 'setStatus', status: 'busy', text: 'Im Termin 2' })")
        assert result["ok"] is True
        expect(list_person(page, MEETING, "lindenau/lea.lindenau")).to_contain_text("Im Termin 2", timeout=TIMEOUT)
        assert "evil" not in list_person(page, MEETING, "lindenau/lea.lindenau").inner_text()

        ARTIFACTS.mkdir(exist_ok=True)
        # (A full-page shot leaves the cross-origin frame blank in headless Chromium: one shot each.)
        page.screenshot(path=str(ARTIFACTS / "widget-embed-portal.png"))
        page.locator("#office").screenshot(path=str(ARTIFACTS / "widget-embed-iframe.png"))
    finally:
        page.context.close()


def test_a_foreign_origin_is_refused(
    chromium: Browser, portal: PortalServer, foreign: PortalServer, office: ServerProcess
) -> None:
    anna = dev_token("anna.altbach", "altbach", "Anna Albrecht")
    lea = dev_token("lea.lindenau", "lindenau", "Lea Lorenz")
    page = portal_page(chromium)
    try:
        # The iframe page may not render in this origin's frame (frame-ancestors) ...
        with page.expect_console_message(lambda m: "frame-ancestors" in m.text, timeout=TIMEOUT) as refusal:
            page.goto(portal_url(foreign, anna, lea))
        # The policy names only the portal allowed for the floor's towns, not this origin.
        assert f"frame-ancestors 'self' {portal.origin}\"" in refusal.value.text
        office_frame = page.main_frame.child_frames[0]
        assert office_frame.url == "chrome-error://chromewebdata/"  # Chromium's page for a blocked frame
        # ... and the element loads (public code) but its socket is refused for this origin,
        # with a reason the portal can act on.
        element = page.locator("virtual-office-floor")
        expect(element).to_have_attribute("data-connection", "refused", timeout=TIMEOUT)
        expect(element.locator(".conn")).to_have_text("Verbindung abgelehnt")
        expect(element.locator(".notice")).to_have_text("Fehler: Diese Website darf das virtuelle Büro nicht verwenden.")
        assert frame_events(page, "ready") == []
    finally:
        page.context.close()


def test_a_portal_not_allowed_for_the_users_town_is_refused(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    """The portal may embed the shared floor (Altbach and Lindenau allow it), but
    Seefeld allows no portal: Seefeld's staff get no session there."""
    paula = dev_token("paula.seefeld", "seefeld", "Paula Sommer")
    page = portal_page(chromium)
    try:
        page.goto(portal_url(portal, paula, paula))
        element = page.locator("virtual-office-floor")
        expect(element).to_have_attribute("data-connection", "refused", timeout=TIMEOUT)
        expect(element.locator(".notice")).to_have_text(
            "Fehler: Diese Website darf das virtuelle Büro für Ihre Gemeinde nicht verwenden.")
        office_frame = page.frame_locator("#office")
        expect(office_frame.locator("#vo-refused")).to_have_text(
            "This website may not use the virtual office for your municipality.", timeout=TIMEOUT
        )
        error = wait_frame_event(page, "error")["error"]
        assert error["code"] == "municipality_not_allowed"
        assert frame_events(page, "ready") == []
    finally:
        page.context.close()
