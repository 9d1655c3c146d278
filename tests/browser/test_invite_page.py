"""The landing page of an invitation link (``/invite#<code>``) in real headless
Chromium, on a server with the default SQLite storage: the page redeems the code
from the fragment, drops it from the address bar, shows the project's floor in
``<virtual-office-floor>`` to the guest (German and English), survives a reload
without using the link again, says why a used-up link is refused, and ends the
visit when the coordinator revokes the link. axe-core finds nothing serious."""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.axe import axe_violations, install_axe, severe
from tests.support.browser import dev_token, new_context
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.browser

TIMEOUT = 15_000  # ms
RECORD_PROBLEMS = """
window.cspViolations = [];
window.pageErrors = [];
document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(e.effectiveDirective));
window.addEventListener("error", (e) => window.pageErrors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.pageErrors.push(String(e.reason)));
"""


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    where = tmp_path_factory.mktemp("invite-page")
    env = {"PRESENCE_STORAGE__SQLITE_PATH": str(where / "campus.sqlite3"), "PRESENCE_LOG__LEVEL": "warning"}
    with ServerProcess(env, log_path=where / "server.log") as server:
        yield server


def call(office: ServerProcess, method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
    request = urllib.request.Request(office.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
        return answer


def open_page(chromium: Browser, office: ServerProcess, path: str) -> Page:
    context = new_context(chromium)
    context.add_init_script(RECORD_PROBLEMS)
    install_axe(context)
    page = context.new_page()
    page.goto(path if path.startswith("http") else office.url + path)
    return page


def test_a_guest_opens_the_link_sees_the_project_floor_and_is_ended_by_revoking(
    chromium: Browser, office: ServerProcess
) -> None:
    anna = dev_token("anna.altbach", "altbach", "Anna Albrecht")
    made = call(office, "POST", "/api/v1/projects", anna, {"name": "Auenschutz", "template": "meeting"})
    project, floor = made["project"]["id"], made["floor"]
    invited = call(office, "POST", f"/api/v1/projects/{project}/invitations", anna,
                   {"display_name": "Dr. Erika Extern", "max_uses": 1})  # fmt: skip
    link: str = invited["link"]
    assert link.startswith(office.url + "/invite#")

    page = open_page(chromium, office, link.replace("/invite#", "/invite?lang=de#"))
    other = None
    try:
        expect(page.locator("#whoami")).to_have_text("Sie sind zu Gast als Dr. Erika Extern.", timeout=TIMEOUT)
        element = page.locator("virtual-office-floor")
        expect(element.locator(".top h2")).to_have_text(floor["name"], timeout=TIMEOUT)
        guest = f"altbach/gast-{invited['invitation']['id']}-1"
        expect(element.locator(f'li.person[data-person="{guest}"]')).to_contain_text("Dr. Erika Extern", timeout=TIMEOUT)
        assert "#" not in page.url  # the code left the address bar
        assert severe(axe_violations(page)) == []

        # A reload keeps the visit (this tab's sessionStorage) and uses the link no more.
        page.reload()
        expect(element.locator(f'li.person[data-person="{guest}"]')).to_be_visible(timeout=TIMEOUT)
        listed = call(office, "GET", f"/api/v1/projects/{project}/invitations", anna)["invitations"]
        assert [i["uses"] for i in listed] == [1]

        # Someone else with the same single-use link is told why, in English.
        other = open_page(chromium, office, link.replace("/invite#", "/invite?lang=en#"))
        expect(other.locator("#messages")).to_have_text(
            "This invitation has already been used as often as allowed.", timeout=TIMEOUT
        )
        assert severe(axe_violations(other)) == []

        # The coordinator revokes the link: the guest's visit ends, and the page says so.
        call(office, "DELETE", f"/api/v1/projects/{project}/invitations/{invited['invitation']['id']}", anna)
        expect(page.locator("#messages")).to_have_text("Diese Einladung wurde zurückgezogen.", timeout=TIMEOUT)
        expect(page.locator("virtual-office-floor")).to_have_count(0)
        for shown in (page, other):
            assert shown.evaluate("window.cspViolations") == [] and shown.evaluate("window.pageErrors") == []
    finally:
        page.context.close()
        if other is not None:
            other.context.close()
