"""The "New project" dialog of <virtual-office-floor> in real headless Chromium,
as far as it is the widget's own: who gets the button, the keyboard (open with
Enter or Space, Tab wraps inside, Escape closes, focus back on the button), the
municipalities of the user's cooperations offered as members, an error said in
an alert with its field focused, and axe-core with the dialog open in German and
English. Creating a project across towns end to end: tests/browser/test_projects.py.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.axe import axe_violations, severe
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
TOWN_FLOOR = "altbach-eg"  # a guest of Altbach sees only Altbach's floors
TIMEOUT = 15_000


@pytest.fixture(scope="module")
def office(portal: PortalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "PRESENCE_STORAGE__BACKEND": "memory",
        "PRESENCE_LOG__LEVEL": "warning",
        "PRESENCE_HTTP__CORS_ORIGINS": json.dumps([portal.origin]),
    }
    with ServerProcess(env, log_path=tmp_path_factory.mktemp("widget-project-dialog") / "server.log") as server:
        portal.pages["/intranet.html"] = widget_page_html(server.url, floor=FLOOR, title="Intranet")
        portal.pages["/town.html"] = widget_page_html(server.url, floor=TOWN_FLOOR, title="Rathaus")
        yield server


def widget(page: Page) -> Locator:
    return page.locator("virtual-office-floor")


def dialog(page: Page) -> Locator:
    return widget(page).locator("dialog.project-dialog")


def focus_key(page: Page) -> str | None:
    focus = deep_focus(page)
    return None if focus is None else focus["key"]


def open_dialog_by_keyboard(page: Page, key: str = "Enter") -> None:
    focus = tab_to(page, "project:new")
    assert focus["visible"], focus
    page.keyboard.press(key)
    expect(dialog(page)).to_be_visible()
    assert focus_key(page) == "project:name"


def test_keyboard_opens_traps_and_closes_the_dialog_and_errors_focus_their_field(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    page = open_widget(new_context(chromium), portal.origin + "/intranet.html",
                       dev_token("anna.altbach", "altbach", "Anna Albrecht"), lang="de")
    try:
        button = widget(page).get_by_role("button", name="Neues Projekt")
        expect(button).to_be_visible()
        expect(button).to_have_attribute("aria-haspopup", "dialog")
        open_dialog_by_keyboard(page)
        expect(widget(page).get_by_role("dialog", name="Neues Projekt anlegen")).to_be_visible()
        # The municipalities of Anna's cooperation, her own marked as hers.
        towns = dialog(page).locator("fieldset.towns input[type=checkbox]")
        expect(towns).to_have_count(4, timeout=TIMEOUT)
        assert [towns.nth(i).get_attribute("value") for i in range(4)] == ["altbach", "bergheim", "lindenau", "seefeld"]
        expect(dialog(page).get_by_label("Altbach (Ihre Gemeinde)")).to_be_visible()
        expect(dialog(page).get_by_role("radio", name="Besprechungsraum")).to_be_checked()
        expect(dialog(page).get_by_role("radio", name="Projektbüro")).to_be_visible()
        expect(dialog(page).get_by_role("radio", name="Lounge")).to_be_visible()

        # Tab goes round inside the dialog: never onto the page behind it.
        seen = []
        for _ in range(40):
            page.keyboard.press("Tab")
            key = focus_key(page)
            assert key is not None and key.startswith(("project:", "project-")), f"focus left the dialog: {deep_focus(page)}"
            seen.append(key)
        assert seen.count("project:name") >= 2  # it wrapped
        assert {"project:purpose", "project-town:lindenau", "project:person-q", "project:ends",
                "project:template:meeting", "project:create", "project:cancel"} <= set(seen)
        # Shift+Tab from the first field wraps to the last button.
        dialog(page).get_by_label("Name des Projekts").focus()
        page.keyboard.press("Shift+Tab")
        assert focus_key(page) == "project:cancel"

        # Arrow keys move within the room templates.
        dialog(page).get_by_role("radio", name="Besprechungsraum").focus()
        page.keyboard.press("ArrowDown")
        expect(dialog(page).get_by_role("radio", name="Projektbüro")).to_be_checked()

        # Escape closes; the focus is back on the button.
        page.keyboard.press("Escape")
        expect(dialog(page)).to_be_hidden()
        assert focus_key(page) == "project:new"

        # Space opens it too. No name: said in the alert, the name field focused and marked.
        page.keyboard.press("Space")
        expect(dialog(page)).to_be_visible()
        assert focus_key(page) == "project:name"
        page.keyboard.press("Enter")  # submits the form
        alert = dialog(page).get_by_role("alert")
        expect(alert).to_have_text("Fehler: Bitte geben Sie dem Projekt einen Namen.")
        expect(dialog(page).get_by_label("Name des Projekts")).to_have_attribute("aria-invalid", "true")
        assert focus_key(page) == "project:name"

        # The cancel button closes as Escape does.
        tab_to(page, "project:cancel")
        page.keyboard.press("Enter")
        expect(dialog(page)).to_be_hidden()
        assert focus_key(page) == "project:new"
    finally:
        page.context.close()


def test_a_guest_gets_no_new_project_button(chromium: Browser, portal: PortalServer, office: ServerProcess) -> None:
    guest = open_widget(new_context(chromium), portal.origin + "/town.html",
                        dev_token("gast.altbach", "altbach", "Gerd Gast", roles=("guest",)), lang="de")
    staff = open_widget(new_context(chromium), portal.origin + "/town.html",
                        dev_token("karl.altbach", "altbach", "Karl Amann"), lang="de")
    try:
        expect(widget(staff).get_by_role("button", name="Neues Projekt")).to_be_visible()
        expect(widget(guest).locator('[data-key="project:new"]')).to_be_hidden()
        assert guest.evaluate("() => document.querySelector('virtual-office-floor').openProjectDialog()") is False
        expect(dialog(guest)).to_be_hidden()
    finally:
        guest.context.close()
        staff.context.close()


@pytest.mark.parametrize("lang", ["de", "en"])
def test_axe_finds_nothing_serious_with_the_dialog_open(
    chromium: Browser, portal: PortalServer, office: ServerProcess, lang: str
) -> None:
    page = open_widget(new_context(chromium), portal.origin + "/intranet.html",
                       dev_token(f"mia-{lang}.altbach", "altbach", "Mia Arnold"), lang=lang)
    try:
        open_dialog_by_keyboard(page)
        expect(dialog(page).locator("fieldset.towns input")).to_have_count(4, timeout=TIMEOUT)
        # The states worth checking: an error in the alert with its field marked.
        page.keyboard.press("Enter")
        expect(dialog(page).get_by_role("alert")).not_to_be_empty()
        found = severe(axe_violations(page))
        assert found == [], json.dumps(found, indent=1, ensure_ascii=False)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"widget-project-dialog-{lang}.png"))
    finally:
        page.context.close()


def test_people_are_added_and_removed_and_a_new_language_keeps_what_was_entered(
    chromium: Browser, portal: PortalServer, office: ServerProcess
) -> None:
    # Otto of Lindenau has been online, so the person search finds him.
    otto = open_widget(new_context(chromium), portal.origin + "/intranet.html",
                       dev_token("otto.lindenau", "lindenau", "Otto Lenz", department="Ordnungsamt"), lang="de")
    page = open_widget(new_context(chromium), portal.origin + "/intranet.html",
                       dev_token("jan.altbach", "altbach", "Jan Adler"), lang="de")
    try:
        open_dialog_by_keyboard(page)
        page.keyboard.type("Waldbad")
        box = dialog(page)
        box.get_by_label("Person suchen (Name, Amt, Fachgebiet)").fill("Otto")
        box.get_by_label("Person suchen (Name, Amt, Fachgebiet)").press("Enter")
        expect(box.locator('[role="status"]#vo-project-person-msg')).to_have_text("1 Treffer", timeout=TIMEOUT)
        expect(box).to_be_visible()  # Enter searched; it did not submit
        box.get_by_role("button", name="Hinzufügen – Otto Lenz (Lindenau)").press("Enter")
        chosen = box.locator("ul.project-chosen")
        expect(chosen.locator('li[data-person="lindenau/otto.lindenau"]')).to_contain_text("Otto Lenz (Lindenau)")
        expect(box.locator("ul.project-found")).to_be_hidden()  # the one result is chosen now
        expect(box.locator("#vo-project-person-msg")).to_have_text("Otto Lenz hinzugefügt.")
        assert focus_key(page) == "project:person-q"
        box.get_by_label("Lindenau").check()
        box.get_by_role("radio", name="Lounge").check()

        # The portal switches the language: the same dialog, still open, in English.
        page.evaluate("() => document.querySelector('virtual-office-floor').setAttribute('lang', 'en')")
        english = widget(page).get_by_role("dialog", name="Create a new project")
        expect(english).to_be_visible()
        expect(english.get_by_label("Project name")).to_have_value("Waldbad")
        expect(english.get_by_label("Lindenau")).to_be_checked()
        expect(english.get_by_role("radio", name="Lounge")).to_be_checked()
        english.get_by_role("button", name="Remove – Otto Lenz (Lindenau)").press("Enter")
        expect(english.locator("ul.project-chosen")).to_have_text("No individual people chosen yet.")
        expect(english.locator("#vo-project-person-msg")).to_have_text("Otto Lenz removed.")
        page.keyboard.press("Escape")
        expect(english).to_be_hidden()
        assert focus_key(page) == "project:new"
    finally:
        page.context.close()
        otto.context.close()
