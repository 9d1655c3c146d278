"""A town's portal built strictly from docs/embedding.md, in headless Chromium.

The portal (tests/support/portal_site.py) is an aiohttp app on an origin of its
own with a backend that mints tokens with the town's HS256 key. Its pages are
made of the documentation's examples, read out of docs/embedding.md at run time
(tests/support/doc_snippets.py): nothing here copies a snippet. Only the test's
own recorders (which events arrived) are added around them.

Server: leeway 0, a refresh grace of GRACE s and a presence grace of 1 s, so
token lifetimes of seconds show the whole cycle. Origins: the portal is allowed
for Altbach, Lindenau and Bergheim; Seefeld allows none; a second, foreign
portal is allowed nowhere.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import make_settings
from tests.support.browser import ARTIFACTS, new_context
from tests.support.doc_snippets import doc_snippet
from tests.support.portal_site import PortalSite
from tests.support.processes import ServerProcess, free_port

pytestmark = pytest.mark.browser

FLOOR = "projekt"
MEETING = "projekt-besprechung"  # closed; Lea Lindenau owns it
GRACE = 3  # auth.refresh_grace_seconds of this server
SHORT = 12  # s: a short token; vo-token-expiring after 9 s
TIMEOUT = 20_000  # ms, for anything that crosses the server on a loaded machine
REFRESH_CYCLES_MS = 120_000  # three refreshes of 12 s tokens, generously

# The test's instruments: what arrived, in order. Not part of any documented snippet.
RECORD_ELEMENT = """<script>
  window.voEvents = [];
  for (const name of ["vo-ready", "vo-presence", "vo-knock", "vo-knock-outcome", "vo-state", "vo-error", "vo-token-expiring"])
    document.addEventListener(name, (e) => window.voEvents.push({ name, detail: e.detail }));
</script>"""
RECORD_FRAME = """<script>
  window.frameEvents = [];
  for (const name of ["ready", "error", "state", "presence", "knock", "knockOutcome", "tokenExpiring"])
    document.getElementById("office").addEventListener(`office:${name}`, (e) => window.frameEvents.push(e.detail));
</script>"""


def page_html(head: str, *snippets: str) -> str:
    return (f'<!doctype html>\n<html lang="de">\n<head><meta charset="utf-8"><title>Intranet</title>{head}</head>\n'
            f'<body><main><h1>Intranet</h1>\n' + "\n".join(snippets) + "\n</main></body></html>")


ELEMENT_PAGE = page_html(RECORD_ELEMENT, doc_snippet("embedding", "element"),
                         doc_snippet("embedding", "element-refresh"), doc_snippet("embedding", "element-errors"))
IFRAME_PAGE = page_html("", doc_snippet("embedding", "iframe"), doc_snippet("embedding", "iframe-api"),
                        doc_snippet("embedding", "iframe-ready"), RECORD_FRAME)


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[PortalSite, PortalSite]]:
    """The town's portal and a foreign one, on loopback origins of their own."""
    settings = make_settings()
    with PortalSite(settings, "") as portal, PortalSite(settings, "") as foreign:
        for site in (portal, foreign):
            site.pages.update({"/element.html": ELEMENT_PAGE, "/iframe.html": IFRAME_PAGE})
        yield portal, foreign


@pytest.fixture(scope="module")
def office(sites: tuple[PortalSite, PortalSite], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    portal, foreign = sites
    allowed = {"altbach": [portal.origin], "lindenau": [portal.origin], "bergheim": [portal.origin], "seefeld": []}
    env = {
        "PRESENCE_STORAGE__BACKEND": "memory",
        "PRESENCE_LOG__LEVEL": "info",
        "PRESENCE_HTTP__CORS_ORIGINS": "[]",
        "PRESENCE_AUTH__LEEWAY_SECONDS": "0",
        "PRESENCE_AUTH__REFRESH_GRACE_SECONDS": str(GRACE),
        "PRESENCE_PRESENCE__GRACE_SECONDS": "1",
        **{f"PRESENCE_AUTH__MUNICIPALITIES__{town.upper()}__ALLOWED_ORIGINS": json.dumps(o) for town, o in allowed.items()},
    }
    with ServerProcess(env, log_path=tmp_path_factory.mktemp("portal-docs") / "server.log") as server:
        portal.office_url = foreign.office_url = server.url
        yield server


@pytest.fixture
def browser_pages(chromium: Browser) -> Iterator[list[Page]]:
    """Pages opened by a test, each in a fresh profile; closed after it."""
    pages: list[Page] = []
    yield pages
    for page in pages:
        page.context.close()


def open_page(pages: list[Page], chromium: Browser, site: PortalSite, path: str, person: str, name: str,
              *, ttl: int = 3600, console: list[str] | None = None) -> Page:
    page = new_context(chromium).new_page()
    pages.append(page)
    page.on("pageerror", lambda exc: print(f"page error ({person}): {exc}"))
    if console is not None:
        page.on("console", lambda msg: console.append(msg.text))
    page.goto(site.url(path, person, name, ttl=ttl))
    return page


def element(page: Page):
    return page.locator("virtual-office-floor")


def events(page: Page, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate("(n) => window.voEvents.filter((e) => e.name === n).map((e) => e.detail)", name)
    return found


def frame_events(page: Page, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate("(n) => window.frameEvents.filter((e) => e.event === n)", name)
    return found


def wait_element_ready(page: Page) -> dict[str, Any]:
    page.wait_for_function("() => window.voEvents.some((e) => e.name === 'vo-ready')", timeout=TIMEOUT)
    return events(page, "vo-ready")[0]


def wait_frame(page: Page, name: str, predicate: str = "true", timeout: int = TIMEOUT) -> dict[str, Any]:
    page.wait_for_function(
        f"() => window.frameEvents.some((e) => e.event === {json.dumps(name)} && ({predicate}))", timeout=timeout)
    found: dict[str, Any] = page.evaluate(
        f"() => window.frameEvents.filter((e) => e.event === {json.dumps(name)} && ({predicate})).pop()")
    return found


def list_person(page: Page, person: str, room: str = ""):
    return element(page).locator(f'.rooms li[data-room="{room}"] li.person[data-person="{person}"]')


def until(condition: Callable[[], bool], timeout_ms: int) -> None:
    """Wait (bounded) for state only the portal's backend sees, e.g. how many tokens it minted."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def run_snippet(page: Page, code: str) -> None:
    """Run a JavaScript example of the docs in the portal page, as the portal's own code."""
    page.evaluate(f"async () => {{\n{code}\n}}")


def test_the_documented_element_and_iframe_keep_their_sessions_over_three_short_tokens(
    chromium: Browser, sites: tuple[PortalSite, PortalSite], office: ServerProcess, browser_pages: list[Page]
) -> None:
    portal, _ = sites
    ben = open_page(browser_pages, chromium, portal, "/element.html", "bergheim/ben.bergheim", "Ben Berger")
    anna = open_page(browser_pages, chromium, portal, "/element.html", "altbach/anna.altbach", "Anna Albrecht", ttl=SHORT)
    lea = open_page(browser_pages, chromium, portal, "/iframe.html", "lindenau/lea.lindenau", "Lea Lorenz", ttl=SHORT)

    # The token set before the element was defined was adopted: no own property hides the setter.
    ready = wait_element_ready(anna)
    assert anna.evaluate("() => Object.hasOwn(document.querySelector('virtual-office-floor'), 'token')") is False
    # vo-ready comes with the real place (the hallway the widget stepped into) and a floor that shows her.
    assert ready["location"] == {"floor_id": FLOOR, "room_id": None} and ready["seq"] > 0
    assert "altbach/anna.altbach" in {m["person"] for m in ready["members"]}
    first = events(anna, "vo-presence")[0]
    assert first["seq"] == ready["seq"] and "altbach/anna.altbach" in {m["person"] for m in first["members"]}
    order = anna.evaluate("() => window.voEvents.map((e) => e.name).filter((n) => n === 'vo-ready' || n === 'vo-presence')")
    assert order[0] == "vo-ready"  # no presence before ready
    frame_ready = wait_frame(lea, "ready")
    assert (frame_ready["person"], frame_ready["location"]) == ("lindenau/lea.lindenau", {"floor_id": FLOOR, "room_id": None})
    assert "lindenau/lea.lindenau" in {m["person"] for m in frame_ready["members"]}
    socket_id = anna.evaluate("() => document.querySelector('virtual-office-floor').session._socket.id")

    # Three times the token nears its end; each time the documented snippet fetches a
    # fresh one from the portal's backend and hands it over: element and iframe alike.
    anna.wait_for_function(
        """() => { window.seenExpiry = window.seenExpiry || new Set();
                   window.seenExpiry.add(document.querySelector('virtual-office-floor').state.token_expires_at);
                   return window.seenExpiry.size >= 4; }""", timeout=REFRESH_CYCLES_MS, polling=250)
    lea.wait_for_function("() => window.frameEvents.filter((e) => e.event === 'tokenExpiring').length >= 3",
                          timeout=REFRESH_CYCLES_MS)
    assert portal.tokens_minted("altbach/anna.altbach") >= 4
    # Lea's backend is asked for the third fresh token (the frame then gets it by command).
    until(lambda: portal.tokens_minted("lindenau/lea.lindenau") >= 4, TIMEOUT)

    # Long past the first token's end (and its grace): the same sessions, never a reconnect.
    assert len(events(anna, "vo-token-expiring")) >= 3
    assert [e["state"] for e in events(anna, "vo-state")] == ["connecting", "connected"]
    assert len(events(anna, "vo-ready")) == 1 and events(anna, "vo-error") == []
    assert anna.evaluate("() => document.querySelector('virtual-office-floor').session._socket.id") == socket_id
    expect(element(anna)).to_have_attribute("data-connection", "connected")
    assert frame_events(lea, "error") == [] and len(frame_events(lea, "ready")) == 1
    assert all(e["state"] == "connected" for e in frame_events(lea, "state"))
    # ... and both still act and are seen: Ben never saw them leave.
    assert anna.evaluate("async () => (await document.querySelector('virtual-office-floor').setStatus('busy', 'erneuert')).ok")
    lea.evaluate("() => officeCommand('setStatus', { status: 'away', text: 'auch erneuert' })")
    expect(list_person(ben, "altbach/anna.altbach")).to_contain_text("beschäftigt: erneuert", timeout=TIMEOUT)
    expect(list_person(ben, "lindenau/lea.lindenau")).to_contain_text("abwesend: auch erneuert", timeout=TIMEOUT)

    # When vo-token-expiring fires: 60 s ahead, or at three quarters of a short token's life.
    delays = anna.evaluate(
        f"""async () => {{ const m = await import({json.dumps(office.url + '/widget/virtual-office-floor.js')});
            const now = 1e12; return [m.expiryWarningDelay(now / 1000 + 12, now, now),
                                      m.expiryWarningDelay(now / 1000 + 900, now, now),
                                      m.expiryWarningDelay(now / 1000 + 12, now, now + 20000)]; }}""")
    assert delays == [9000, 840000, 0]


def test_a_session_whose_portal_stops_handing_out_tokens_is_cut_off_after_the_grace(
    chromium: Browser, sites: tuple[PortalSite, PortalSite], office: ServerProcess, browser_pages: list[Page]
) -> None:
    portal, _ = sites
    ben = open_page(browser_pages, chromium, portal, "/element.html", "bergheim/berta.bergheim", "Berta Brandt")
    carl = open_page(browser_pages, chromium, portal, "/element.html", "altbach/carl.altbach", "Carl Adam", ttl=6)
    dora = open_page(browser_pages, chromium, portal, "/iframe.html", "lindenau/dora.lindenau", "Dora Lang", ttl=6)
    wait_element_ready(carl)
    wait_frame(dora, "ready")
    for person in ("altbach/carl.altbach", "lindenau/dora.lindenau"):
        expect(list_person(ben, person)).to_be_visible(timeout=TIMEOUT)
        portal.sign_out(person)  # from now on the portal's backend refuses them tokens

    # The element: asked for a token, got none; after exp + grace the server ends the session.
    expect(element(carl)).to_have_attribute("data-connection", "refused", timeout=TIMEOUT + 6_000 + GRACE * 1000)
    assert carl.evaluate("() => document.querySelector('virtual-office-floor').state.error.code") == "token_expired"
    expect(element(carl).locator(".notice")).to_contain_text("Das Token ist abgelaufen.")
    # The iframe tells its portal the same.
    error = wait_frame(dora, "error", timeout=TIMEOUT + 6_000 + GRACE * 1000)["error"]
    assert error["code"] == "token_expired"
    # Both leave the floor like after closing the tab; the cut-off sessions see no more updates.
    seq = carl.evaluate("() => document.querySelector('virtual-office-floor').dataset.seq")
    for person in ("altbach/carl.altbach", "lindenau/dora.lindenau"):
        expect(list_person(ben, person)).to_have_count(0, timeout=TIMEOUT)
    assert ben.evaluate("async () => (await document.querySelector('virtual-office-floor').setStatus('busy', 'danach')).ok")
    expect(list_person(ben, "bergheim/berta.bergheim")).to_contain_text("danach", timeout=TIMEOUT)
    assert carl.evaluate("() => document.querySelector('virtual-office-floor').dataset.seq") == seq

    # Signed in again, a fresh token brings the element back.
    portal.sign_in("altbach/carl.altbach")
    carl.evaluate("""async () => { const r = await fetch('/office-token', { method: 'POST' });
                                   document.querySelector('virtual-office-floor').token = (await r.json()).token; }""")
    expect(element(carl)).to_have_attribute("data-connection", "connected", timeout=TIMEOUT)
    expect(list_person(ben, "altbach/carl.altbach")).to_be_visible(timeout=TIMEOUT)


def test_a_refused_origin_and_a_refused_town_name_their_code_in_element_and_iframe(
    chromium: Browser, sites: tuple[PortalSite, PortalSite], office: ServerProcess, browser_pages: list[Page]
) -> None:
    portal, foreign = sites
    logs: dict[str, list[str]] = {"foreign": [], "town": []}
    # A portal no list allows: the element's socket is refused with origin_not_allowed ...
    f_element = open_page(browser_pages, chromium, foreign, "/element.html", "altbach/anna.altbach", "Anna Albrecht",
                          console=logs["foreign"])
    f_frame = open_page(browser_pages, chromium, foreign, "/iframe.html", "altbach/anna.altbach", "Anna Albrecht",
                        console=logs["foreign"])
    # ... and Seefeld, whose staff this (otherwise allowed) portal may not serve: municipality_not_allowed.
    t_element = open_page(browser_pages, chromium, portal, "/element.html", "seefeld/paula.seefeld", "Paula Sommer",
                          console=logs["town"])
    t_frame = open_page(browser_pages, chromium, portal, "/iframe.html", "seefeld/paula.seefeld", "Paula Sommer")

    for page, code, text in (
        (f_element, "origin_not_allowed", "Diese Website darf das virtuelle Büro nicht verwenden."),
        (t_element, "municipality_not_allowed", "Diese Website darf das virtuelle Büro für Ihre Gemeinde nicht verwenden."),
    ):
        expect(element(page)).to_have_attribute("data-connection", "refused", timeout=TIMEOUT)
        state = page.evaluate("() => document.querySelector('virtual-office-floor').state")
        assert state["error"] == {"code": code, "message": text}
        assert [e["error"]["code"] for e in events(page, "vo-error")] == [code]
        expect(element(page).locator(".notice")).to_have_text(f"Fehler: {text}")
        expect(element(page).locator(".conn")).to_have_text("Verbindung abgelehnt")
        # Refused for good: no retry until the portal sets a new token.
        assert page.evaluate("() => document.querySelector('virtual-office-floor').session._socket.active") is False
        assert [e["state"] for e in events(page, "vo-state")] == ["connecting", "refused"]
    # The documented error handler saw the code.
    assert any(line.startswith("virtual office refused: origin_not_allowed: ") for line in logs["foreign"])
    assert any(line.startswith("virtual office refused: municipality_not_allowed: ") for line in logs["town"])

    # The town's iframe loads (the portal may frame the shared floor), and refuses Seefeld at once.
    error = wait_frame(t_frame, "error")["error"]
    assert error["code"] == "municipality_not_allowed"
    expect(t_frame.frame_locator("#office").locator("#vo-refused")).to_have_text(
        "Diese Website darf das virtuelle Büro für Ihre Gemeinde nicht verwenden.")
    assert frame_events(t_frame, "ready") == []
    # The foreign portal's iframe was blocked by the browser (frame-ancestors); the
    # documented snippet tells that from its silence.
    error = wait_frame(f_frame, "error", timeout=40_000)["error"]
    assert error["code"] == "origin_not_allowed"
    assert any("frame-ancestors" in line for line in logs["foreign"])
    assert frame_events(f_frame, "ready") == []


def test_knock_and_answer_through_postmessage(
    chromium: Browser, sites: tuple[PortalSite, PortalSite], office: ServerProcess, browser_pages: list[Page]
) -> None:
    portal, _ = sites
    lea_log: list[str] = []
    anna_log: list[str] = []
    lea = open_page(browser_pages, chromium, portal, "/iframe.html", "lindenau/lea.lindenau", "Lea Lorenz", console=lea_log)
    anna = open_page(browser_pages, chromium, portal, "/iframe.html", "altbach/anna.altbach", "Anna Albrecht",
                     console=anna_log)
    wait_frame(lea, "ready")
    wait_frame(anna, "ready")

    # Lea walks into her meeting room and sets her status; she admits whoever knocks.
    run_snippet(lea, doc_snippet("embedding", "iframe-commands"))
    assert f"in {MEETING}, busy" in lea_log
    run_snippet(lea, doc_snippet("embedding", "iframe-answer"))

    # Anna sees her there and knocks; the outcome comes back as knockOutcome.
    wait_frame(anna, "presence", f"e.members.some((m) => m.person === 'lindenau/lea.lindenau' && m.room_id === '{MEETING}')")
    run_snippet(anna, doc_snippet("embedding", "iframe-knock"))
    outcome = wait_frame(anna, "knockOutcome")["outcome"]
    assert (outcome["outcome"], outcome["room_id"], outcome["by"]) == ("admitted", MEETING, "lindenau/lea.lindenau")
    assert f"knock on {MEETING}: admitted" in anna_log
    knock = wait_frame(lea, "knock")["knock"]
    assert knock["knocker"]["person"] == "altbach/anna.altbach" and knock["message"] == "Kurz?"
    assert "Anna Albrecht admitted: true" in lea_log
    wait_frame(anna, "presence", f"e.location.room_id === '{MEETING}'")

    # A command the frame does not know: answered in the frame's language.
    unknown = anna.evaluate("() => officeCommand('format')")
    assert unknown["ok"] is False
    assert unknown["error"] == {"code": "unknown_event", "message": "Unbekanntes Ereignis. (format)"}
    ARTIFACTS.mkdir(exist_ok=True)
    anna.locator("#office").screenshot(path=str(ARTIFACTS / "portal-docs-iframe.png"))


def test_an_office_that_cannot_be_reached_is_unavailable_said_once_and_retried(
    chromium: Browser, office: ServerProcess, browser_pages: list[Page]
) -> None:
    """No connection at all is no refusal: the element says "unavailable" in its own
    words, once, and keeps trying. (The page's own setup, not a doc example: the
    module comes from the running office, the socket goes to a port nobody
    listens on, as with an office that is down or a wrong `server` attribute.)"""
    dead = f"http://127.0.0.1:{free_port()}"
    with PortalSite(make_settings(), office.url) as site:
        site.pages["/element.html"] = page_html(
            RECORD_ELEMENT,
            '<script type="module" src="https://office.example.org/widget/virtual-office-floor.js"></script>',
            f'<virtual-office-floor server="{dead}" floor="projekt"></virtual-office-floor>',
            '<script>document.querySelector("virtual-office-floor").token = "{{ office_token }}";</script>',
        )
        page = open_page(browser_pages, chromium, site, "/element.html", "altbach/anna.altbach", "Anna Albrecht")
        expect(element(page)).to_have_attribute("data-connection", "error", timeout=TIMEOUT)
        state = page.evaluate("() => document.querySelector('virtual-office-floor').state")
        assert state["error"] == {"code": "unavailable", "message": "Das virtuelle Büro ist gerade nicht erreichbar."}
        expect(element(page).locator(".notice")).to_have_text("Fehler: Das virtuelle Büro ist gerade nicht erreichbar.")
        # Two more attempts later: still trying, and said only once.
        page.evaluate("""() => { window.attempts = 0;
            document.querySelector('virtual-office-floor').session._socket.io.on('reconnect_attempt', () => window.attempts++); }""")
        page.wait_for_function("() => window.attempts >= 2", timeout=TIMEOUT)
        assert page.evaluate("() => document.querySelector('virtual-office-floor').session._socket.active") is True
        assert [e["error"]["code"] for e in events(page, "vo-error")] == ["unavailable"]
