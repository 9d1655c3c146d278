"""The README's fifth town in the demo page, in real headless Chromium.

The README's walkthrough adds Tannau and puts it into the cooperation while the
server runs (its commands, run as written); then the link it gives signs Tina of
Tannau in on the demo page: she sees the shared project floor and stands in its
hallway, and Anna of Altbach, already there, sees her arrive.
"""

from __future__ import annotations

import subprocess
from typing import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.test_demo_page import PROJECT_FLOOR, TIMEOUT, assert_no_problems, floors_nav, open_demo, person_in
from tests.conftest import ROOT
from tests.support.doc_snippets import doc_snippet
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"PRESENCE_STORAGE__BACKEND": "memory", "PRESENCE_LOG__LEVEL": "warning"}
    log = tmp_path_factory.mktemp("onboarding-demo") / "server.log"
    with ServerProcess(env, log_path=log) as server:
        yield server


def test_the_fifth_town_of_the_readme_walks_onto_the_project_floor(chromium: Browser, office: ServerProcess) -> None:
    anna = open_demo(chromium, office, "/?municipality=altbach&user=anna.altbach&name=Anna%20Albrecht&floor=projekt&room=hallway")
    tina = None
    try:
        expect(person_in(anna, "", "altbach/anna.altbach")).to_contain_text("Anna Albrecht", timeout=TIMEOUT)
        code = doc_snippet("readme", "fifth-town").replace("http://127.0.0.1:8080", office.url)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, (done.stdout, done.stderr)
        tina = open_demo(chromium, office,
                         "/?municipality=tannau&user=tina.tannau&name=Tina%20Thaler&floor=projekt&room=hallway&lang=de")
        expect(floors_nav(tina).get_by_role("button")).to_have_text([PROJECT_FLOOR], timeout=TIMEOUT)
        expect(tina.locator("#whoami")).to_contain_text("Tina Thaler", timeout=TIMEOUT)
        expect(person_in(tina, "", "tannau/tina.tannau")).to_contain_text("Tina Thaler", timeout=TIMEOUT)
        expect(person_in(anna, "", "tannau/tina.tannau")).to_contain_text("Tina Thaler", timeout=TIMEOUT)
        assert_no_problems(tina)
    finally:
        anna.context.close()
        if tina is not None:
            tina.context.close()
