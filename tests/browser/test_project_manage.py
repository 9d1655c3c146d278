"""The coordinator's side of a project in <virtual-office-floor>, in real headless
Chromium against a real server (issue 14: coordinators manage members and
invitation links; before, only over REST or raw socket events).

Anna of Altbach coordinates a project. On its floor, with the keyboard alone, she
opens "Projekt verwalten": adds Ben of Bergheim (found with the person search) as a
member — his widget, in another browser context, is told and shows the project's
floor, without a "manage" button of his own — adds and removes the municipality of
Lindenau, creates a single-use invitation link, copies it (Clipboard API, said in a
live region) and a guest who opens it (``/invite#<code>``) lands on the project's
floor; she revokes the link after a confirmation step and the guest's page says the
visit ended. A missing name is said in the dialog's alert with the field focused;
the link is shown once; axe-core finds nothing serious with the dialog open, in
German and in English; docs/embedding.md's invitation example hears both events.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.axe import axe_violations, install_axe, severe
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
from tests.support.doc_snippets import doc_snippet
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.browser

FLOOR = "projekt"
TIMEOUT = 15_000
PROJECT = "Auenschutz Vier Täler"
GUEST = "Dr. Erika Extern"


@pytest.fixture(scope="module")
def office(portal: PortalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "PRESENCE_STORAGE__BACKEND": "memory",
        "PRESENCE_LOG__LEVEL": "warning",
        "PRESENCE_HTTP__CORS_ORIGINS": json.dumps([portal.origin]),
    }
    with ServerProcess(env, log_path=tmp_path_factory.mktemp("widget-project-manage") / "server.log") as server:
        portal.pages["/intranet.html"] = widget_page_html(server.url, floor=FLOOR, title="Intranet")
        yield server


def rest(office: ServerProcess, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(office.url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as error:
        answer = json.load(error)
    return answer


def widget(page: Page) -> Locator:
    return page.locator("virtual-office-floor")


def manage(page: Page) -> Locator:
    return widget(page).locator("dialog.project-manage")


def focus_key(page: Page) -> str | None:
    focus = deep_focus(page)
    return None if focus is None else focus["key"]


def check_axe(page: Page, lang: str) -> None:
    found = severe(axe_violations(page))
    assert found == [], json.dumps(found, indent=1, ensure_ascii=False)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"widget-project-manage-{lang}.png"))


def test_a_coordinator_manages_members_and_invitation_links_by_keyboard(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    anna_token = dev_token("anna.altbach", "altbach", "Anna Albrecht")
    made = rest(office, "POST", "/api/v1/projects", anna_token, {"name": PROJECT, "template": "meeting"})
    assert made["ok"], made
    project, floor = made["project"], made["floor"]
    # Anna's portal page shows the project's floor, with docs/embedding.md's invitation example.
    portal.pages["/auenschutz.html"] = widget_page_html(
        office.url, floor=floor["id"], title="Auenschutz", extra=doc_snippet("embedding", "element-invitations"))

    # Ben of Bergheim has been online, so the person search finds him; no member yet: no button.
    ben = open_widget(new_context(chromium), portal.origin + "/intranet.html",
                      dev_token("ben.bergheim", "bergheim", "Ben Becker", department="Umweltamt"), lang="de")
    anna_context = new_context(chromium)
    anna_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=portal.origin)
    install_axe(anna_context)
    anna = open_widget(anna_context, portal.origin + "/auenschutz.html", anna_token, lang="de")
    guest = None
    try:
        expect(widget(anna).locator(".top h2")).to_have_text(floor["name"], timeout=TIMEOUT)
        button = widget(anna).get_by_role("button", name="Projekt verwalten")
        expect(button).to_be_visible(timeout=TIMEOUT)
        expect(button).to_have_attribute("aria-haspopup", "dialog")
        expect(widget(ben).locator('[data-key="manage:open"]')).to_be_hidden()

        # ---------------------------------------------------------- open by keyboard
        focus = tab_to(anna, "manage:open")
        assert focus["visible"], focus
        anna.keyboard.press("Enter")
        box = widget(anna).get_by_role("dialog", name=f"Projekt „{PROJECT}“ verwalten")
        expect(box).to_be_visible()
        assert deep_focus(anna)["tag"] == "h3"  # the title: what follows is read from the top
        coordinators = manage(anna).locator("ul.manage-coordinators")
        expect(coordinators).to_have_text("Anna Albrecht (Sie) (einzige Koordination: bleibt)")
        expect(coordinators.get_by_role("button")).to_have_count(0)  # the last coordinator stays

        # ------------------------------------------- Ben, found and added as a member
        tab_to(anna, "manage:person-q", limit=10)
        anna.keyboard.type("Ben Becker")
        anna.keyboard.press("Enter")  # searches
        found = manage(anna).locator('ul.project-found li[data-person="bergheim/ben.bergheim"]')
        expect(found).to_contain_text("Ben Becker (Bergheim)", timeout=TIMEOUT)
        focus = tab_to(anna, "manage-add:bergheim/ben.bergheim", limit=6)
        assert focus["label"] == "Als Mitglied hinzufügen – Ben Becker (Bergheim)"
        anna.keyboard.press("Enter")
        persons = manage(anna).locator("ul.manage-persons")
        expect(persons.locator('li[data-id="bergheim/ben.bergheim"]')).to_contain_text("Ben Becker (Bergheim)", timeout=TIMEOUT)
        expect(manage(anna).locator("#vo-manage-member-msg")).to_have_text("Ben Becker (Bergheim) ist jetzt Mitglied.")
        expect(manage(anna).locator("ul.project-found")).to_be_hidden()
        assert focus_key(anna) == "manage:person-q"
        assert rest(office, "GET", f"/api/v1/projects/{project['id']}", anna_token)["project"]["members"] == ["bergheim/ben.bergheim"]

        # Ben is told at once, finds the floor in his floor picker and sees it — as a member, no button.
        expect(widget(ben).locator(".notice")).to_contain_text(f"Sie sind jetzt Mitglied des Projekts „{PROJECT}“", timeout=TIMEOUT)
        tab_to(ben, "floors:select")
        picker = widget(ben).get_by_label("Etage", exact=True)
        expect(picker.locator(f'optgroup[label="Projekte"] option[value="{floor["id"]}"]')).to_have_count(1, timeout=TIMEOUT)
        picker.select_option(floor["id"])
        widget(ben).get_by_role("button", name="Anzeigen").press("Enter")
        expect(widget(ben).locator(".top h2")).to_have_text(floor["name"], timeout=TIMEOUT)
        expect(widget(ben).locator("svg g.room")).to_have_count(1)
        expect(widget(ben).locator('[data-key="manage:open"]')).to_be_hidden()
        assert ben.evaluate("() => document.querySelector('virtual-office-floor').projectManage.projectId") == project["id"]

        # ---------------------------------- a whole municipality added, then removed
        tab_to(anna, "manage:town", limit=6)
        anna.keyboard.type("Lindenau")  # the select's type-ahead
        tab_to(anna, "manage:town-add", limit=2)
        anna.keyboard.press("Enter")
        towns = manage(anna).locator("ul.manage-towns")
        expect(towns.locator('li[data-id="lindenau"]')).to_contain_text("Lindenau", timeout=TIMEOUT)
        expect(manage(anna).locator("#vo-manage-member-msg")).to_have_text("Lindenau ist jetzt Mitglied.")
        assert rest(office, "GET", f"/api/v1/projects/{project['id']}", anna_token)["project"]["municipalities"] == ["lindenau"]
        expect(manage(anna).locator('#vo-manage-town option[value="lindenau"]')).to_have_count(0)  # no longer offered
        anna.keyboard.press("Shift+Tab")
        while focus_key(anna) != "manage-remove:town:lindenau":
            anna.keyboard.press("Shift+Tab")
        assert deep_focus(anna)["label"] == "Entfernen – Lindenau"
        anna.keyboard.press("Enter")
        expect(towns).to_have_text("Keine.", timeout=TIMEOUT)
        expect(manage(anna).locator("#vo-manage-member-msg")).to_have_text("Lindenau entfernt.")
        assert rest(office, "GET", f"/api/v1/projects/{project['id']}", anna_token)["project"]["municipalities"] == []

        # ------------------------------------------------ a single-use invitation link
        invitations = manage(anna).locator("ul.manage-invitations")
        expect(invitations).to_have_text("Noch keine Einladungslinks.")
        tab_to(anna, "manage:inv-create", limit=12)
        anna.keyboard.press("Enter")  # no name: said in the alert, the field focused and marked
        alert = manage(anna).locator("#vo-manage-inv-error")
        expect(alert).to_have_attribute("role", "alert")
        expect(alert).to_have_text("Fehler: Bitte geben Sie den Namen der eingeladenen Person an.")
        assert focus_key(anna) == "manage:inv-name"
        name_field = manage(anna).get_by_label("Name der eingeladenen Person (so sehen die anderen sie)")
        expect(name_field).to_have_attribute("aria-invalid", "true")
        anna.keyboard.type(GUEST)
        expect(manage(anna).get_by_label("Wie oft nutzbar (1–50)")).to_have_value("1")  # single use
        expect(manage(anna).get_by_label("Gültig für")).to_have_value(str(7 * 86_400))
        with anna.expect_console_message(lambda m: m.text.startswith(f"invitation for {GUEST}:"), timeout=TIMEOUT) as heard:
            tab_to(anna, "manage:inv-create", limit=4)
            anna.keyboard.press("Enter")
        link_field = manage(anna).get_by_label(f"Neuer Link für „{GUEST}“ (wird nur jetzt angezeigt)")
        expect(link_field).to_be_visible(timeout=TIMEOUT)
        assert focus_key(anna) == "manage:link"
        link = link_field.input_value()
        assert link.startswith(office.url + "/invite#"), link  # resolved against the widget's server
        expect(link_field).to_have_attribute("readonly", "")
        expect(alert).to_be_empty()
        expect(name_field).not_to_have_attribute("aria-invalid", "true")
        expect(manage(anna).locator("#vo-manage-inv-msg")).to_have_text("Link erstellt. Er wird nur jetzt angezeigt: kopieren Sie ihn.")
        listed = rest(office, "GET", f"/api/v1/projects/{project['id']}/invitations", anna_token)["invitations"]
        assert [(i["display_name"], i["max_uses"], i["uses"], i["revoked"]) for i in listed] == [(GUEST, 1, 0, False)]
        invitation = listed[0]
        # docs/embedding.md's example heard vo-invitation-created (never the link itself).
        said_until = heard.value.text.removeprefix(f"invitation for {GUEST}: 1 use(s) until ")
        until = dt.datetime.fromisoformat(said_until.replace("Z", "+00:00")).timestamp()
        assert abs(until - invitation["expires_at"]) < 0.01, (heard.value.text, invitation)
        assert 7 * 86_400 - 120 < invitation["expires_at"] - dt.datetime.now().timestamp() <= 7 * 86_400  # "7 Tage"
        item = invitations.locator(f'li[data-invitation="{invitation["id"]}"]')
        expect(item).to_contain_text(f"{GUEST} – 0 von 1 Nutzungen – gültig bis ")

        # Copy link: the Clipboard API holds it, and the live region says so.
        tab_to(anna, "manage:copy", limit=2)
        anna.keyboard.press("Enter")
        expect(manage(anna).locator("#vo-manage-inv-msg")).to_have_text("Link kopiert.")
        assert anna.evaluate("() => navigator.clipboard.readText()") == link

        check_axe(anna, "de")  # the dialog with members, a new link and the list, in German

        # ------------------------------------------ the guest opens the link: the project's floor
        guest_context = new_context(chromium)
        guest = guest_context.new_page()
        guest.on("pageerror", lambda exc: print(f"guest page error: {exc}"))
        guest.goto(link.replace("/invite#", "/invite?lang=de#"))
        expect(guest.locator("#whoami")).to_have_text(f"Sie sind zu Gast als {GUEST}.", timeout=TIMEOUT)
        guest_widget = guest.locator("virtual-office-floor")
        expect(guest_widget.locator(".top h2")).to_have_text(floor["name"], timeout=TIMEOUT)
        guest_person = f"altbach/gast-{invitation['id']}-1"
        expect(guest_widget.locator(f'li.person[data-person="{guest_person}"]')).to_contain_text(GUEST, timeout=TIMEOUT)
        expect(guest_widget.locator('[data-key="manage:open"]')).to_be_hidden()  # guests: no managing
        expect(guest_widget.locator('[data-key="project:new"]')).to_be_hidden()
        # Anna sees the guest arrive on the floor.
        expect(widget(anna).locator(f'li.person[data-person="{guest_person}"]')).to_contain_text(GUEST, timeout=TIMEOUT)

        # The list, refreshed, counts the use (the server counted it at redeeming).
        tab_to(anna, "manage:inv-refresh", limit=12)
        anna.keyboard.press("Enter")
        expect(item).to_contain_text(f"{GUEST} – 1 von 1 Nutzungen – gültig bis ", timeout=TIMEOUT)
        expect(manage(anna).locator("#vo-manage-inv-msg")).to_have_text("Liste aktualisiert.")
        assert focus_key(anna) == "manage:inv-refresh"

        # ----------------------------------------- revoke, after a confirmation step
        with anna.expect_console_message(lambda m: m.text == f"invitation for {GUEST} revoked", timeout=TIMEOUT):
            anna.keyboard.press("Shift+Tab")  # the revoke button is just before "refresh"
            assert focus_key(anna) == f"manage-revoke:{invitation['id']}"
            assert deep_focus(anna)["label"] == f"Zurückziehen – {GUEST}"
            anna.keyboard.press("Enter")
            confirm = item.get_by_role("group", name=f"Den Link für „{GUEST}“ wirklich zurückziehen?"
                                                     " Wer mit ihm zu Gast ist, verliert den Zugang sofort.")
            expect(confirm).to_be_visible()
            assert focus_key(anna) == f"manage-revoke-no:{invitation['id']}"  # the harmless answer first
            anna.keyboard.press("Shift+Tab")
            assert focus_key(anna) == f"manage-revoke-yes:{invitation['id']}"
            anna.keyboard.press("Enter")
        expect(guest.locator("#messages")).to_have_text("Diese Einladung wurde zurückgezogen.", timeout=TIMEOUT)
        expect(guest.locator("virtual-office-floor")).to_have_count(0)
        revoked_at = time.monotonic()
        expect(item).to_contain_text(f"{GUEST} – 1 von 1 Nutzungen – zurückgezogen")
        expect(item.get_by_role("button")).to_have_count(0)
        expect(manage(anna).locator("#vo-manage-inv-msg")).to_have_text(
            f"Der Link für „{GUEST}“ ist zurückgezogen; wer mit ihm zu Gast war, ist abgemeldet.")
        assert deep_focus(anna)["tag"] == "h4"  # the list's heading: the button is gone
        assert rest(office, "GET", f"/api/v1/projects/{project['id']}/invitations", anna_token)["invitations"][0]["revoked"] is True

        # Escape closes, the focus is back on the button; the link is not shown again.
        anna.keyboard.press("Escape")
        expect(manage(anna)).to_be_hidden()
        assert focus_key(anna) == "manage:open"
        anna.keyboard.press("Enter")
        expect(box).to_be_visible()
        expect(manage(anna).locator("#vo-manage-link")).to_be_hidden()
        assert manage(anna).locator("#vo-manage-link").input_value() == ""
        # Tab goes round inside the dialog, never onto the page behind it; Shift+Tab too.
        seen = []
        for _ in range(30):
            anna.keyboard.press("Tab")
            key = focus_key(anna)
            assert key is not None and key.startswith("manage"), f"focus left the dialog: {deep_focus(anna)}"
            seen.append(key)
        assert seen.count("manage:person-q") >= 2 and "manage:close" in seen  # it wrapped
        tab_to(anna, "manage-remove:person:bergheim/ben.bergheim", limit=20)  # the first control
        anna.keyboard.press("Shift+Tab")
        assert focus_key(anna) == "manage:close"

        # ---------------------------------------------- the same dialog in English
        anna.evaluate("() => document.querySelector('virtual-office-floor').setAttribute('lang', 'en')")
        english = widget(anna).get_by_role("dialog", name=f"Manage the project “{PROJECT}”")
        expect(english).to_be_visible()
        expect(english.locator(f'li[data-invitation="{invitation["id"]}"]')).to_contain_text(
            f"{GUEST} – 1 of 1 uses – revoked", timeout=TIMEOUT)
        expect(english.locator("ul.manage-persons")).to_contain_text("Ben Becker (Bergheim)")
        check_axe(anna, "en")

        # Ben removed by keyboard: his widget leaves the floor and says why.
        english.get_by_role("button", name="Remove – Ben Becker (Bergheim)").focus()
        anna.keyboard.press("Enter")
        expect(english.locator("#vo-manage-member-msg")).to_have_text("Ben Becker (Bergheim) removed.", timeout=TIMEOUT)
        expect(english.locator("ul.manage-persons")).to_have_text("None.")
        assert focus_key(anna) == "manage:person-q"
        expect(widget(ben).locator(".notice")).to_contain_text(f"Sie sind nicht mehr Mitglied des Projekts „{floor['name']}“", timeout=TIMEOUT)
        expect(widget(ben).locator(".top h2")).not_to_have_text(floor["name"], timeout=TIMEOUT)
        # The revoked guest leaves the floor at once, not after the presence grace
        # (presence.grace_seconds, 15 s here) that spares a reload its leave and join.
        expect(widget(anna).locator(f'li.person[data-person="{guest_person}"]')).to_have_count(0, timeout=5_000)
        print(f"revoked guest left the coordinator's floor {time.monotonic() - revoked_at:.1f} s after the guest's page said so")
    finally:
        for page in (anna, ben, guest):
            if page is not None:
                page.context.close()


def test_the_button_follows_the_coordinator_role_live(chromium: Browser, portal: PortalServer, office: ServerProcess) -> None:
    """Only coordinators of the floor's project get the button: not on another
    floor, not as a plain member; made coordinator (by anyone, over REST) it comes,
    and leaves again when the role goes — the open dialog closes with it. Someone
    not on the floor and never found is named by their user id and town."""
    carl_token = dev_token("carl.altbach", "altbach", "Carl Arndt")
    dora_token = dev_token("dora.seefeld", "seefeld", "Dora Sommer")
    made = rest(office, "POST", "/api/v1/projects", carl_token,
                {"name": "Wasserwege", "members": {"persons": ["seefeld/dora.seefeld"]}})  # fmt: skip
    assert made["ok"], made
    project, floor = made["project"], made["floor"]
    portal.pages["/wasserwege.html"] = widget_page_html(office.url, floor=floor["id"], title="Wasserwege")
    carl = open_widget(new_context(chromium), portal.origin + "/intranet.html", carl_token, lang="en")
    dora = open_widget(new_context(chromium), portal.origin + "/wasserwege.html", dora_token, lang="en")
    try:
        # Carl coordinates, but the floor shown is the cooperation's: no button.
        expect(widget(carl).locator(".top h2")).not_to_have_text(floor["name"])
        expect(widget(carl).locator('[data-key="manage:open"]')).to_be_hidden()
        expect(widget(dora).locator(".top h2")).to_have_text(floor["name"], timeout=TIMEOUT)
        expect(widget(dora).locator('[data-key="manage:open"]')).to_be_hidden()  # a member only

        promoted = rest(office, "POST", f"/api/v1/projects/{project['id']}/members", carl_token,
                        {"person": "seefeld/dora.seefeld", "role": "coordinator"})  # fmt: skip
        assert promoted["ok"], promoted
        button = widget(dora).get_by_role("button", name="Manage project")
        expect(button).to_be_visible(timeout=TIMEOUT)
        button.press("Enter")
        expect(manage(dora)).to_be_visible()
        expect(manage(dora).locator("ul.manage-coordinators li")).to_have_count(2)
        coordinators = manage(dora).locator("ul.manage-coordinators")
        expect(coordinators).to_contain_text("Dora Sommer (you)")
        # Carl can be removed from here; Dora's own entry cannot (another coordinator does that).
        expect(coordinators.get_by_role("button")).to_have_count(1)
        expect(coordinators.locator('li[data-id="altbach/carl.altbach"]').get_by_role("button")).to_have_text("Remove – carl.altbach (Altbach)")

        # A refusal of the server (a person of a town the platform does not know) is said
        # in the members' alert, with the person field focused and marked.
        dora.evaluate("() => document.querySelector('virtual-office-floor').projectManage.addPerson('atlantis/niemand')")
        alert = manage(dora).locator("#vo-manage-member-error")
        expect(alert).to_contain_text("Error: ", timeout=TIMEOUT)
        query = manage(dora).get_by_label("Add a person as member (name, department, skill)")
        expect(query).to_be_focused()
        expect(query).to_have_attribute("aria-invalid", "true")
        expect(query).to_have_attribute("aria-errormessage", "vo-manage-member-error")
        assert rest(office, "GET", f"/api/v1/projects/{project['id']}", carl_token)["project"]["members"] == []

        # Carl takes the role back: Dora's dialog closes and the button goes.
        changed = rest(office, "PATCH", f"/api/v1/projects/{project['id']}", carl_token,
                       {"coordinators": ["altbach/carl.altbach"], "members": ["seefeld/dora.seefeld"]})  # fmt: skip
        assert changed["ok"], changed
        expect(manage(dora)).to_be_hidden(timeout=TIMEOUT)
        expect(widget(dora).locator('[data-key="manage:open"]')).to_be_hidden()
        expect(widget(dora).locator(".top h2")).to_have_text(floor["name"])  # still a member: still on the floor
    finally:
        carl.context.close()
        dora.context.close()
