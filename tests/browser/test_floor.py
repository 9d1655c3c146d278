"""<virtual-office-floor> in real headless Chromium against a real server.

Two people of different towns, each in their own browser context (own profile),
on the shared project floor of the demo campus, with the widget embedded in a
portal page on another origin. Everything goes through the widget's UI or its
public methods; the server is a real process.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    ARTIFACTS,
    PortalServer,
    dev_token,
    new_context,
    open_widget,
    record_session_events,
    session_events,
    widget_page_html,
    widget_state,
)
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.browser

FLOOR = "projekt"
MEETING = "projekt-besprechung"  # closed door, owned by lindenau/lea.lindenau
PROJECT_ROOM = "projekt-raum-digitales-rathaus"  # open door
LOUNGE = "projekt-lounge"  # open door
TIMEOUT = 15_000  # ms, for anything that crosses the server



@pytest.fixture(scope="module")
def office(portal: PortalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "PRESENCE_STORAGE__BACKEND": "memory",
        "PRESENCE_LOG__LEVEL": "warning",
        # The portal may embed the office for every town (a per-town list is tested in test_widget_embed).
        "PRESENCE_HTTP__CORS_ORIGINS": json.dumps([portal.origin]),
    }
    log = tmp_path_factory.mktemp("widget-floor") / "server.log"
    with ServerProcess(env, log_path=log) as server:
        portal.pages["/intranet.html"] = widget_page_html(server.url, floor=FLOOR, title="Intranet")
        yield server


def widget(page: Page):  # the element, for locators inside its shadow root
    return page.locator("virtual-office-floor")


def open_as(chromium: Browser, portal: PortalServer, user: str, town: str, name: str, lang: str = "de") -> Page:
    context = new_context(chromium)
    return open_widget(context, portal.origin + "/intranet.html", dev_token(user, town, name), lang=lang)


def plan_avatar(page: Page, room: str, person: str):
    """A person's avatar on the plan; ``person`` is their person id, "municipality/user_id"."""
    return widget(page).locator(f'svg .avatar[data-room="{room}"][data-person="{person}"]')


def list_person(page: Page, room: str, person: str):
    """A person's entry in the list view, by person id."""
    return widget(page).locator(f'.rooms li[data-room="{room}"] li.person[data-person="{person}"]')


def wait_call_media(page: Page, peer: str) -> dict:
    """Wait until the page's peer connection to ``peer`` (a person id) is connected and
    media from them arrives (audio bytes and decoded video frames); return the call state."""
    page.wait_for_function(
        """(peer) => { const c = document.querySelector('virtual-office-floor').callState;
            const p = c && c.peers[peer];
            return p && p.state === 'connected' && p.audioBytes > 0 && p.videoFrames > 0; }""",
        arg=peer,
        timeout=20_000,
    )
    return page.evaluate("() => document.querySelector('virtual-office-floor').callState")


def test_walk_knock_admit_status_and_room_call_between_two_towns(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    anna = open_as(chromium, portal, "anna.altbach", "altbach", "Anna Albrecht", lang="de")
    lea = open_as(chromium, portal, "lea.lindenau", "lindenau", "Lea Lorenz", lang="en")
    try:
        # Both stepped onto the floor's hallway and see each other there.
        expect(list_person(anna, "", "lindenau/lea.lindenau")).to_be_visible(timeout=TIMEOUT)
        expect(list_person(lea, "", "altbach/anna.altbach")).to_be_visible(timeout=TIMEOUT)

        # Lea walks into her meeting room with a click on the plan (owners pass closed doors) ...
        widget(lea).locator(f'svg g.room[data-room="{MEETING}"]').click()
        expect(widget(lea)).to_have_attribute("data-location", f"{FLOOR}/{MEETING}", timeout=TIMEOUT)
        # ... and Anna sees her move: on the plan and in the list.
        expect(plan_avatar(anna, MEETING, "lindenau/lea.lindenau")).to_be_visible(timeout=TIMEOUT)
        expect(list_person(anna, MEETING, "lindenau/lea.lindenau")).to_contain_text("Lea Lorenz (Lindenau)")

        # Anna clicks the closed door: that knocks. Lea hears it (a card and the live region).
        widget(anna).locator(f'svg g.room[data-room="{MEETING}"]').click()
        expect(widget(anna).locator(".pending")).to_contain_text("Sie klopfen an „Besprechungsraum Vier Täler“")
        card = widget(lea).locator(".alerts [data-knock]")
        expect(card).to_contain_text("Anna Albrecht (Altbach) is knocking on “Besprechungsraum Vier Täler”", timeout=TIMEOUT)
        expect(widget(lea).locator('[aria-live="assertive"]')).to_contain_text("Anna Albrecht (Altbach) is knocking")

        # Lea admits; Anna is inside and both pages say so.
        card.get_by_role("button", name="Admit").click()
        expect(widget(anna)).to_have_attribute("data-location", f"{FLOOR}/{MEETING}", timeout=TIMEOUT)
        expect(widget(anna).locator(".notice")).to_contain_text("hereingebeten")
        expect(list_person(lea, MEETING, "altbach/anna.altbach")).to_be_visible(timeout=TIMEOUT)
        expect(card).to_have_count(0)

        # Anna sets her status and text; Lea sees both, in words and not by colour alone.
        widget(anna).get_by_label("Status", exact=True).select_option("busy")
        widget(anna).get_by_label("Statustext").fill("Haushaltsplan 2027")
        widget(anna).get_by_role("button", name="Status setzen").click()
        person = list_person(lea, MEETING, "altbach/anna.altbach")
        expect(person).to_have_attribute("data-status", "busy", timeout=TIMEOUT)
        expect(person).to_contain_text("busy: Haushaltsplan 2027")
        expect(person.locator(".dot")).to_have_text("!")

        # Both join the room's call with Chromium's fake camera and microphone.
        widget(lea).get_by_role("button", name="Join the call").click()
        expect(widget(lea)).to_have_attribute("data-call", "active", timeout=TIMEOUT)
        widget(anna).get_by_role("button", name="Gespräch beitreten").click()
        anna_call = wait_call_media(anna, "lindenau/lea.lindenau")
        lea_call = wait_call_media(lea, "altbach/anna.altbach")
        assert anna_call["call_id"] == lea_call["call_id"] and anna_call["kind"] == "room"
        assert sorted(anna_call["members"]) == ["altbach/anna.altbach", "lindenau/lea.lindenau"]
        assert anna_call["media"] == lea_call["media"] == "audio+video"
        expect(widget(anna)).to_have_attribute("data-peers-connected", "1")
        # The floor shows who is in a call (a marker in the plan, words in the list).
        expect(list_person(lea, MEETING, "altbach/anna.altbach")).to_contain_text("in a call", timeout=TIMEOUT)

        # Screenshots of the floor in both browsers, in the call.
        ARTIFACTS.mkdir(exist_ok=True)
        for page, who in ((anna, "anna-de"), (lea, "lea-en")):
            widget(page).screenshot(path=str(ARTIFACTS / f"widget-floor-{who}.png"))

        widget(anna).get_by_role("button", name="Gespräch verlassen").click()
        expect(widget(anna)).to_have_attribute("data-call", "idle", timeout=TIMEOUT)
        expect(widget(lea)).to_have_attribute("data-peers-connected", "0", timeout=TIMEOUT)
    finally:
        anna.context.close()
        lea.context.close()


def test_ring_a_colleague_and_answer(chromium: Browser, portal: PortalServer, office: ServerProcess) -> None:
    jan = open_as(chromium, portal, "jan.altbach", "altbach", "Jan Adler", lang="de")
    greta = open_as(chromium, portal, "greta.bergheim", "bergheim", "Greta Berger", lang="de")
    try:
        expect(list_person(jan, "", "bergheim/greta.bergheim")).to_be_visible(timeout=TIMEOUT)
        list_person(jan, "", "bergheim/greta.bergheim").get_by_role("button", name="Anrufen – Greta Berger").click()
        expect(widget(jan).locator(".pending")).to_contain_text("Sie rufen Greta Berger an")
        card = widget(greta).locator(".alerts [data-ring]")
        expect(card).to_contain_text("Jan Adler (Altbach) ruft Sie an", timeout=TIMEOUT)
        expect(widget(greta).locator('[aria-live="assertive"]')).to_contain_text("Jan Adler (Altbach) ruft Sie an")
        card.get_by_role("button", name="Annehmen").click()
        jan_call = wait_call_media(jan, "bergheim/greta.bergheim")
        greta_call = wait_call_media(greta, "altbach/jan.altbach")
        assert jan_call["kind"] == greta_call["kind"] == "direct"
        assert jan_call["call_id"] == greta_call["call_id"]
        expect(card).to_have_count(0)
        expect(widget(jan).locator(".call h3")).to_contain_text("Gespräch mit Greta Berger")
        widget(greta).get_by_role("button", name="Gespräch verlassen").click()
        # A direct call ends when one side leaves.
        expect(widget(jan)).to_have_attribute("data-call", "idle", timeout=TIMEOUT)
    finally:
        jan.context.close()
        greta.context.close()


def test_the_same_user_id_in_two_towns_is_two_people_and_a_ring_reaches_only_the_one_rung(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    """A token's sub is unique only within its town: Altbach's and Lindenau's
    "m.mueller" (same sub, same name) are two people on the shared floor, and
    ringing one never rings the other."""
    altbach, lindenau = "altbach/m.mueller", "lindenau/m.mueller"
    mm_altbach = open_as(chromium, portal, "m.mueller", "altbach", "Michael Müller")
    mm_lindenau = open_as(chromium, portal, "m.mueller", "lindenau", "Michael Müller")
    clara = open_as(chromium, portal, "clara.bergheim", "bergheim", "Clara Brandt")
    try:
        for page in (mm_altbach, mm_lindenau):
            record_session_events(page, "call.ring")
        # Clara sees two entries and two avatars, each with its town.
        for person, town in ((altbach, "Altbach"), (lindenau, "Lindenau")):
            expect(list_person(clara, "", person)).to_contain_text(f"Michael Müller ({town})", timeout=TIMEOUT)
            expect(plan_avatar(clara, "", person)).to_have_count(1)
        namesakes = [m for m in widget_state(clara)["members"] if m["user_id"] == "m.mueller"]
        assert sorted((m["person"], m["municipality"]) for m in namesakes) == [
            (altbach, "altbach"), (lindenau, "lindenau")]
        # Each of them is "you" once; the namesake is a colleague who can be rung.
        ready = next(e["detail"] for e in mm_altbach.evaluate("() => window.voEvents") if e["name"] == "vo-ready")
        assert (ready["person"], ready["user_id"], ready["municipality"]) == (altbach, "m.mueller", "altbach")
        expect(list_person(mm_altbach, "", altbach)).to_contain_text("Michael Müller (Sie)")
        expect(list_person(mm_altbach, "", altbach).get_by_role("button")).to_have_count(0)
        expect(list_person(mm_altbach, "", lindenau)).to_contain_text("Michael Müller (Lindenau)", timeout=TIMEOUT)
        expect(list_person(mm_altbach, "", lindenau).get_by_role("button", name="Anrufen")).to_be_visible()

        # A bare user id names nobody: refused, nobody rings.
        bare = clara.evaluate("async () => document.querySelector('virtual-office-floor').ring('m.mueller')")
        assert bare["ok"] is False and bare["error"]["code"] == "invalid_payload"

        # Clara rings Lindenau's Michael from the list (the button names the town) ...
        list_person(clara, "", lindenau).get_by_role("button", name="Anrufen – Michael Müller (Lindenau)").click()
        expect(widget(clara).locator(".pending")).to_contain_text("Sie rufen Michael Müller an")
        card = widget(mm_lindenau).locator(".alerts [data-ring]")
        expect(card).to_contain_text("Clara Brandt (Bergheim) ruft Sie an", timeout=TIMEOUT)
        card.get_by_role("button", name="Ablehnen").click()
        expect(widget(clara).locator(".notice")).to_contain_text("Anruf: abgelehnt", timeout=TIMEOUT)
        # ... and only him: long after the ring went out, Altbach's Michael heard nothing.
        assert [e["ring"]["callee_id"] for e in session_events(mm_lindenau, "call.ring")] == [lindenau]
        assert session_events(mm_altbach, "call.ring") == []
        expect(widget(mm_altbach).locator(".alerts [data-ring]")).to_have_count(0)

        # The element's method rings by person id: now Altbach's Michael, and only him.
        ack = clara.evaluate(f"async () => document.querySelector('virtual-office-floor').ring('{altbach}')")
        assert ack["ok"] is True and ack["ring"]["callee_id"] == altbach
        card = widget(mm_altbach).locator(".alerts [data-ring]")
        expect(card).to_contain_text("Clara Brandt (Bergheim) ruft Sie an", timeout=TIMEOUT)
        widget(clara).get_by_role("button", name="Auflegen").click()
        expect(card).to_have_count(0, timeout=TIMEOUT)
        assert [e["ring"]["callee_id"] for e in session_events(mm_altbach, "call.ring")] == [altbach]
        assert len(session_events(mm_lindenau, "call.ring")) == 1
        vo_rings = [e["detail"]["ring"] for e in mm_altbach.evaluate("() => window.voEvents") if e["name"] == "vo-ring"]
        assert [(r["callee_id"], r["caller"]["person"]) for r in vo_rings] == [(altbach, "bergheim/clara.bergheim")]
    finally:
        for page in (mm_altbach, mm_lindenau, clara):
            page.context.close()


def test_reconnects_by_itself_and_resyncs_on_a_sequence_gap(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    karl = open_as(chromium, portal, "karl.altbach", "altbach", "Karl Amann")
    nina = open_as(chromium, portal, "nina.lindenau", "lindenau", "Nina Lehmann")
    try:
        expect(list_person(nina, "", "altbach/karl.altbach")).to_be_visible(timeout=TIMEOUT)
        # Nina's connection drops; while she is away Karl walks into the lounge.
        nina.evaluate("() => document.querySelector('virtual-office-floor').session.dropTransport()")
        expect(widget(nina)).to_have_attribute("data-connection", "reconnecting", timeout=TIMEOUT)
        assert karl.evaluate(f"async () => (await document.querySelector('virtual-office-floor').walkTo('{LOUNGE}')).ok")
        # Nina's widget reconnects on its own, watches again and shows where Karl is now.
        expect(widget(nina)).to_have_attribute("data-connection", "connected", timeout=TIMEOUT)
        expect(list_person(nina, LOUNGE, "altbach/karl.altbach")).to_be_visible(timeout=TIMEOUT)
        # The grace period kept Nina on the floor: nobody saw her leave.
        assert widget_state(nina)["location"] == {"floor_id": FLOOR, "room_id": None}

        # A frame that skips a sequence number is a gap: the widget drops it and takes
        # a fresh snapshot, so the bogus change never shows.
        before = widget_state(nina)
        nina.evaluate(
            """(seq) => document.querySelector('virtual-office-floor').session.injectFrame({floor_id: 'projekt',
                 diffs: [{seq, type: 'status', person: 'altbach/karl.altbach', status: 'do_not_disturb', text: 'bogus'}]})""",
            before["seq"] + 2,
        )
        nina.wait_for_function(
            "() => { const s = document.querySelector('virtual-office-floor').state; return s.gaps === 1 && !s.stale; }",
            timeout=TIMEOUT,
        )
        karl_there = next(m for m in widget_state(nina)["members"] if m["person"] == "altbach/karl.altbach")
        assert (karl_there["status"], karl_there["text"], karl_there["room_id"]) == ("available", "", LOUNGE)
        # And the view goes on: Karl's next change arrives as usual.
        karl.evaluate("async () => document.querySelector('virtual-office-floor').setStatus('away', 'Mittag')")
        expect(list_person(nina, LOUNGE, "altbach/karl.altbach")).to_contain_text("abwesend: Mittag", timeout=TIMEOUT)
    finally:
        karl.context.close()
        nina.context.close()



def test_a_fresh_token_from_the_portal_refreshes_the_session(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    short = dev_token("otto.lindenau", "lindenau", "Otto Lenz", ttl=12)
    page = open_widget(new_context(chromium), portal.origin + "/intranet.html", short, lang="de")
    try:
        # At three quarters of a short token's life the widget asks the portal for a new one ...
        page.wait_for_function("() => window.voEvents.some((e) => e.name === 'vo-token-expiring')", timeout=TIMEOUT)
        old = widget_state(page)["token_expires_at"]
        # ... and the portal sets it: the session goes on with it (auth.refresh), no reconnect.
        fresh = dev_token("otto.lindenau", "lindenau", "Otto Lenz", ttl=3600)
        page.evaluate("(t) => { document.querySelector('virtual-office-floor').token = t; }", fresh)
        page.wait_for_function(
            f"() => document.querySelector('virtual-office-floor').state.token_expires_at > {old}", timeout=TIMEOUT
        )
        # Someone else's token is refused, shown, and the session stays Otto's.
        other = dev_token("nina.lindenau", "lindenau", "Nina Lehmann")
        page.evaluate("(t) => { document.querySelector('virtual-office-floor').token = t; }", other)
        expect(widget(page).locator(".notice")).to_contain_text("Fehler: Dazu sind Sie nicht berechtigt.", timeout=TIMEOUT)
        state = widget_state(page)
        assert (state["connection"], state["me"]["person"]) == ("connected", "lindenau/otto.lindenau")
    finally:
        page.context.close()
