"""Projects across towns from the widget, end to end in real headless Chromium
against a real server (issue 14: "a staff member creates a project from the
widget and a colleague from another town walks into its room; axe-core stays
clean on the new dialogs; keyboard only works").

Anna of Altbach, in a portal page built on docs/embedding.md's examples, creates
a project with the keyboard alone: a name, a purpose, the whole municipality of
Lindenau and Ben of Bergheim (found with the person search) as members, an end
date and the project-office template. Her widget shows the new floor; Lea of
Lindenau (the demo page, another browser context) finds it among her floors and
walks into its meeting room; Sven of Seefeld does not see it. When Anna removes
Lindenau and Ben, their widgets leave the floor and say why (``floor.revoked``).
A refusal of the server (an end date beyond the town's policy) is said in the
dialog's alert with the date field focused; axe-core finds nothing serious with
the dialog open, in German and in English.
"""

from __future__ import annotations

import datetime as dt
import json
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
PROJECT = "Radwegenetz Vier Täler"
PURPOSE = "Radwege zwischen Altbach und Lindenau gemeinsam planen"
# The page's own record of the element's project events (widget_page_html records the others).
RECORD = """<script>
  for (const name of ["vo-project-created", "vo-floor-revoked"]) {
    document.addEventListener(name, (e) => window.voEvents.push({ name, detail: e.detail }));
  }
</script>"""


@pytest.fixture(scope="module")
def office(portal: PortalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "PRESENCE_STORAGE__BACKEND": "memory",
        "PRESENCE_LOG__LEVEL": "warning",
        "PRESENCE_HTTP__CORS_ORIGINS": json.dumps([portal.origin]),
    }
    with ServerProcess(env, log_path=tmp_path_factory.mktemp("widget-projects") / "server.log") as server:
        # A portal page with docs/embedding.md's project example: it logs what the portal hears.
        portal.pages["/projects.html"] = widget_page_html(
            server.url, floor=FLOOR, title="Intranet", extra=doc_snippet("embedding", "element-projects") + RECORD)
        yield server


def widget(page: Page) -> Locator:
    return page.locator("virtual-office-floor")


def dialog(page: Page) -> Locator:
    return widget(page).locator("dialog.project-dialog")


def focus_key(page: Page) -> str | None:
    focus = deep_focus(page)
    return None if focus is None else focus["key"]


def rest(office: ServerProcess, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The REST API as a portal's backend calls it (no Origin header)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(office.url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as error:
        answer = json.load(error)
    return answer


def visible_floors(office: ServerProcess, token: str) -> list[str]:
    campus = rest(office, "GET", "/api/v1/campus", token)
    assert campus["ok"], campus
    return [f["id"] for f in campus["campus"]["floors"]]


def open_demo(chromium: Browser, office: ServerProcess, query: str, *, axe: bool = False) -> Page:
    context = new_context(chromium)
    if axe:
        install_axe(context)
    page = context.new_page()
    page.on("pageerror", lambda exc: print(f"page error: {exc}"))
    page.goto(office.url + query)
    return page


def test_a_staff_member_creates_a_project_by_keyboard_and_a_colleague_of_another_town_walks_in(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    url = portal.origin + "/projects.html"
    # Ben of Bergheim has been online, so the person search finds him.
    ben_token = dev_token("ben.bergheim", "bergheim", "Ben Becker", department="Tiefbauamt")
    ben = open_widget(new_context(chromium), url, ben_token, lang="de")
    anna_token = dev_token("anna.altbach", "altbach", "Anna Albrecht")
    anna_context = new_context(chromium, locale="en-US")  # the date field's segments: month/day/year
    anna = open_widget(anna_context, url, anna_token, lang="de")
    sven = None
    # Lea of Lindenau is signed in on the demo page already: she learns of the project live.
    lea = open_demo(chromium, office, "/?municipality=lindenau&user=lea.lindenau&name=Lea%20Lorenz&lang=de")
    try:
        floors = lea.get_by_role("navigation", name="Etagen")
        expect(floors.get_by_role("button")).to_have_count(2, timeout=TIMEOUT)  # her town's and the cooperation's
        # ---------------------------------------------------------- keyboard only
        focus = tab_to(anna, "project:new")
        assert focus["visible"] and focus["label"] == "Neues Projekt"
        anna.keyboard.press("Enter")
        expect(dialog(anna)).to_be_visible()
        assert focus_key(anna) == "project:name"
        anna.keyboard.type(PROJECT)
        anna.keyboard.press("Tab")
        assert focus_key(anna) == "project:purpose"
        anna.keyboard.type(PURPOSE)
        expect(dialog(anna).locator("fieldset.towns input")).to_have_count(4, timeout=TIMEOUT)
        tab_to(anna, "project-town:lindenau", limit=6)
        anna.keyboard.press("Space")
        expect(dialog(anna).get_by_label("Lindenau")).to_be_checked()

        # Ben, found with the person search and added.
        tab_to(anna, "project:person-q", limit=6)
        anna.keyboard.type("Ben Becker")
        anna.keyboard.press("Enter")  # searches; does not submit the dialog
        found = dialog(anna).locator('ul.project-found li[data-person="bergheim/ben.bergheim"]')
        expect(found).to_contain_text("Ben Becker (Bergheim)", timeout=TIMEOUT)
        expect(dialog(anna)).to_be_visible()
        focus = tab_to(anna, "project-add:bergheim/ben.bergheim", limit=6)
        assert focus["label"] == "Hinzufügen – Ben Becker (Bergheim)"
        anna.keyboard.press("Enter")
        expect(dialog(anna).locator('ul.project-chosen li[data-person="bergheim/ben.bergheim"]')).to_contain_text("Ben Becker")
        assert focus_key(anna) == "project:person-q"

        # An end date typed into the date field; the project-office template by arrow key.
        end = dt.date.today() + dt.timedelta(days=90)
        tab_to(anna, "project:ends", limit=10)
        anna.keyboard.type(end.strftime("%m%d%Y"))
        expect(dialog(anna).get_by_label("Endet am (optional)")).to_have_value(end.isoformat())
        tab_to(anna, "project:template:meeting", limit=4)
        anna.keyboard.press("ArrowDown")
        expect(dialog(anna).get_by_role("radio", name="Projektbüro")).to_be_checked()

        found_axe = severe(axe_violations(anna))  # the dialog filled in, in German
        assert found_axe == [], json.dumps(found_axe, indent=1, ensure_ascii=False)
        ARTIFACTS.mkdir(exist_ok=True)
        anna.screenshot(path=str(ARTIFACTS / "widget-project-create-de.png"))

        tab_to(anna, "project:create", limit=6)
        # docs/embedding.md's example hears it (and logs it).
        with anna.expect_console_message(lambda m: m.text.startswith(f"project {PROJECT}: floor "), timeout=TIMEOUT) as heard:
            anna.keyboard.press("Enter")
        expect(dialog(anna)).to_be_hidden(timeout=TIMEOUT)
        assert focus_key(anna) == "project:new"  # back on the button
        # The widget shows the project's new floor and says so.
        expect(widget(anna).locator(".notice")).to_contain_text(f"Projekt „{PROJECT}“ angelegt", timeout=TIMEOUT)
        anna.wait_for_function("() => window.voEvents.some((e) => e.name === 'vo-project-created')", timeout=TIMEOUT)
        created = anna.evaluate("() => window.voEvents.find((e) => e.name === 'vo-project-created').detail")
        project, floor = created["project"], created["floor"]
        floor_id = floor["id"]
        expect(widget(anna)).to_have_attribute("floor", floor_id)
        expect(widget(anna).locator(".top h2")).to_have_text(floor["name"], timeout=TIMEOUT)
        rooms = {r["name"]: r["id"] for r in floor["rooms"]}
        assert set(rooms) == {"Projektbüro", "Besprechungsraum"}  # the project-office template
        expect(widget(anna).locator("svg g.room")).to_have_count(2)
        # She still stands in the shared floor's hallway, named as such though another floor is shown.
        expect(widget(anna).locator(".where")).to_have_text("Ihr Ort: Flur, Projektetage Digitales Rathaus")
        # What the server keeps is what the dialog said.
        assert project["name"] == PROJECT and project["purpose"] == PURPOSE
        assert project["coordinators"] == ["altbach/anna.altbach"]
        assert project["municipalities"] == ["lindenau"]
        assert "bergheim/ben.bergheim" in project["members"]
        ends = dt.datetime.fromtimestamp(project["ends_at"])
        assert ends.date() == end + dt.timedelta(days=1) and ends.hour == 0  # the end of the day chosen
        assert heard.value.text == f"project {PROJECT}: floor {floor_id}"

        # ------------------------------------------- who sees it: exactly the members
        assert floor_id in visible_floors(office, ben_token)
        sven_token = dev_token("sven.seefeld", "seefeld", "Sven Schuster")
        assert floor_id not in visible_floors(office, sven_token)

        # Lea (Lindenau is a member town) was told, and the project floor is among hers now.
        joined = f"Sie sind jetzt Mitglied des Projekts „{PROJECT}“"
        expect(widget(lea).locator(".notice")).to_contain_text(joined, timeout=TIMEOUT)
        expect(widget(ben).locator(".notice")).to_contain_text(joined, timeout=TIMEOUT)  # and Ben, named
        expect(widget(anna).locator(".notice")).not_to_contain_text(joined)  # not the creator
        floors.get_by_role("button", name=floor["name"]).click(timeout=TIMEOUT)
        expect(widget(lea).locator(".top h2")).to_have_text(floor["name"], timeout=TIMEOUT)
        meeting = rooms["Besprechungsraum"]
        widget(lea).locator(f'svg g.room[data-room="{meeting}"]').click()
        expect(widget(lea)).to_have_attribute("data-location", f"{floor_id}/{meeting}", timeout=TIMEOUT)
        # Anna, on the project floor, sees her come in.
        lea_in = widget(anna).locator(f'.rooms li[data-room="{meeting}"] li.person[data-person="lindenau/lea.lindenau"]')
        expect(lea_in).to_contain_text("Lea Lorenz (Lindenau)", timeout=TIMEOUT)
        anna.screenshot(path=str(ARTIFACTS / "widget-project-floor-de.png"))
        # Sven's demo page lists no such floor.
        sven = open_demo(chromium, office, "/?municipality=seefeld&user=sven.seefeld&name=Sven%20Schuster&lang=de")
        expect(sven.get_by_role("navigation", name="Etagen").get_by_role("button")).not_to_have_count(0, timeout=TIMEOUT)
        expect(sven.get_by_role("navigation", name="Etagen").get_by_role("button", name=floor["name"])).to_have_count(0)

        # ------------------------------- removed from the project: the floor goes, said why
        # Ben's widget (a portal page without a list of floors of its own): its floor
        # picker, read again when it gets the focus, lists the project under "Projekte".
        tab_to(ben, "floors:select")
        picker = widget(ben).get_by_label("Etage", exact=True)
        expect(picker.locator(f'optgroup[label="Projekte"] option[value="{floor_id}"]')).to_have_text(floor["name"], timeout=TIMEOUT)
        picker.select_option(floor_id)
        widget(ben).get_by_role("button", name="Anzeigen").press("Enter")
        expect(widget(ben).locator(".top h2")).to_have_text(floor["name"], timeout=TIMEOUT)
        expect(widget(ben)).to_have_attribute("floor", floor_id)
        widget(ben).locator(f'svg g.room[data-room="{meeting}"]').focus()  # his focus is on the floor
        with ben.expect_console_message(lambda m: m.text.startswith(f"floor {floor_id} gone"), timeout=TIMEOUT) as heard:
            for query in ("municipality=lindenau", "person=bergheim/ben.bergheim"):
                removed = rest(office, "DELETE", f"/api/v1/projects/{project['id']}/members?{query}", anna_token)
                assert removed["ok"], removed
        # docs/embedding.md's example: why, and which floor the widget shows instead (Ben's first).
        assert floor_id not in visible_floors(office, ben_token)
        assert heard.value.text == f"floor {floor_id} gone (membership); now showing {visible_floors(office, ben_token)[0]}"
        gone = f"Sie sind nicht mehr Mitglied des Projekts „{floor['name']}“"
        for page in (lea, ben):
            expect(widget(page).locator(".notice")).to_contain_text(gone, timeout=TIMEOUT)
            expect(widget(page).locator(".top h2")).not_to_have_text(floor["name"], timeout=TIMEOUT)
            expect(widget(page)).not_to_have_attribute("data-location", f"{floor_id}/{meeting}")
        expect(floors.get_by_role("button", name=floor["name"])).to_have_count(0, timeout=TIMEOUT)
        expect(picker.locator(f'option[value="{floor_id}"]')).to_have_count(0)  # gone from Ben's picker
        assert focus_key(ben) == "floors:select"  # his focus went back to the floor picker
        expect(lea_in).to_have_count(0, timeout=TIMEOUT)
        lea.screenshot(path=str(ARTIFACTS / "demo-page-floor-revoked-de.png"))

        # Anna ends the project: its floor is deleted under her widget, which says so.
        ended = rest(office, "DELETE", f"/api/v1/projects/{project['id']}", anna_token)
        assert ended["ok"], ended
        expect(widget(anna).locator(".notice")).to_contain_text(f"Die Etage „{floor['name']}“ wurde gelöscht.", timeout=TIMEOUT)
        expect(widget(anna).locator(".top h2")).not_to_have_text(floor["name"], timeout=TIMEOUT)
        anna.wait_for_function(
            "(id) => window.voEvents.some((e) => e.name === 'vo-floor-revoked' && e.detail.floor_id === id"
            " && e.detail.reason === 'deleted')", arg=floor_id, timeout=TIMEOUT)
        expect(widget(anna)).not_to_have_attribute("floor", floor_id)
    finally:
        for page in (anna, ben, lea, sven):
            if page is not None:
                page.context.close()


def test_a_refusal_of_the_server_is_said_in_the_dialog_with_its_field_focused_in_english(
    chromium: Browser, office: ServerProcess
) -> None:
    nina = open_demo(chromium, office, "/?municipality=lindenau&user=nina.lindenau&name=Nina%20Lehmann&lang=en", axe=True)
    try:
        expect(widget(nina)).to_have_attribute("data-location", "lindenau-eg/", timeout=TIMEOUT)
        widget(nina).get_by_role("button", name="New project").focus()
        nina.keyboard.press("Enter")
        expect(nina.locator("virtual-office-floor").get_by_role("dialog", name="Create a new project")).to_be_visible()
        nina.keyboard.type("Waldkindergarten")
        # Beyond what the town allows (config projects.max_days, 365 by default): the server says no.
        too_late = dt.date.today() + dt.timedelta(days=800)
        dialog(nina).get_by_label("Ends on (optional)").fill(too_late.isoformat())
        dialog(nina).get_by_role("radio", name="Lounge").check()
        dialog(nina).get_by_role("button", name="Create project").press("Enter")
        alert = dialog(nina).get_by_role("alert")
        expect(alert).to_contain_text("Error:", timeout=TIMEOUT)
        expect(alert).to_contain_text("365")
        date = dialog(nina).get_by_label("Ends on (optional)")
        expect(date).to_be_focused()
        expect(date).to_have_attribute("aria-invalid", "true")
        found = severe(axe_violations(nina))  # the dialog with a refusal, in English
        assert found == [], json.dumps(found, indent=1, ensure_ascii=False)
        ARTIFACTS.mkdir(exist_ok=True)
        nina.screenshot(path=str(ARTIFACTS / "demo-page-project-refused-en.png"))
        # Nothing was created.
        token = dev_token("nina.lindenau", "lindenau", "Nina Lehmann")
        listed = rest(office, "GET", "/api/v1/projects", token)
        assert listed["ok"] and listed["projects"] == [], listed

        # Without an end date it goes through; the demo page lists the new floor as the one shown.
        date.fill("")
        dialog(nina).get_by_role("button", name="Create project").press("Enter")
        expect(dialog(nina)).to_be_hidden(timeout=TIMEOUT)
        expect(widget(nina).locator(".notice")).to_contain_text("Project “Waldkindergarten” created.", timeout=TIMEOUT)
        listed = rest(office, "GET", "/api/v1/projects", token)
        assert [p["name"] for p in listed["projects"]] == ["Waldkindergarten"], listed
        floor_name = next(f["name"] for f in rest(office, "GET", "/api/v1/campus", token)["campus"]["floors"]
                          if f["id"] == listed["projects"][0]["floor_id"])
        shown = nina.locator('nav button[aria-current="true"]')
        expect(shown).to_have_text(floor_name, timeout=TIMEOUT)
        expect(widget(nina).locator(".top h2")).to_have_text(floor_name)
        expect(widget(nina).locator("svg g.room")).to_have_count(1)  # the lounge template
    finally:
        nina.context.close()
