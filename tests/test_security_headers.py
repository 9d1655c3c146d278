"""Browser security headers over real HTTP: the demo page, the embed page,
static files, API answers and error pages. The pages' scripts are files, so
the policy needs no 'unsafe-inline' (tests/browser/test_demo_page.py runs the
demo page under it)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from presence_server.security_headers import PAGE_POLICY
from tests.conftest import OfficeServer, StartServer

STATIC = Path(__file__).resolve().parents[1] / "presence_server" / "static"
PORTAL = "https://intranet.altbach.example"


def directives(csp: str) -> dict[str, list[str]]:
    parts = (d.split() for d in csp.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


def assert_scripts_only_from_files(csp: str) -> None:
    policy = directives(csp)
    scripts = policy.get("script-src", policy.get("default-src"))
    assert scripts is not None, csp
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts and "*" not in scripts, csp
    assert "'unsafe-inline'" not in policy.get("script-src-elem", []) + policy.get("script-src-attr", [])


async def test_the_demo_page_may_run_only_its_own_scripts_and_may_not_be_framed(office: OfficeServer) -> None:
    async with office.server_session() as http:
        async with http.get("/") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            headers = resp.headers
    csp = headers["Content-Security-Policy"]
    assert csp == PAGE_POLICY
    assert_scripts_only_from_files(csp)
    assert directives(csp)["frame-ancestors"] == ["'none'"] and headers["X-Frame-Options"] == "DENY"
    assert directives(csp)["default-src"] == ["'none'"] and directives(csp)["base-uri"] == ["'none'"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


async def test_the_embed_page_keeps_its_frame_ancestors_and_gets_the_common_headers(
    start_server: StartServer,
) -> None:
    office = await start_server({"PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__ALLOWED_ORIGINS": json.dumps([PORTAL])})
    token = office.token("anna.altbach", "altbach")  # in the fragment, as a portal passes it: never sent
    async with office.server_session() as http:
        async with http.get(f"/embed/floors/projekt#token={token}") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            headers = resp.headers
    csp = headers["Content-Security-Policy"]
    assert_scripts_only_from_files(csp)
    assert PORTAL in directives(csp)["frame-ancestors"] and "'none'" not in directives(csp)["frame-ancestors"]
    assert "X-Frame-Options" not in headers  # it would forbid the portals the policy allows
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert len(headers.getall("Content-Security-Policy")) == 1


async def test_scripts_styles_api_answers_and_errors_are_never_sniffed(office: OfficeServer) -> None:
    token = office.token("anna.altbach", "altbach")
    paths = {
        "/static/demo.js": "application/javascript",
        "/static/demo.css": "text/css",
        "/widget/embed.js": "application/javascript",
        "/widget/embed.css": "text/css",
        "/vendor/socket.io.min.js": "application/javascript",
        "/api/v1/campus": "application/json",
        "/healthz": "application/json",
        "/api/v1/no-such-thing": "application/json",  # the JSON 404
        "/socket.io/?EIO=4&transport=polling": "text/plain",  # Engine.IO's own answer
    }
    async with office.server_session(token) as http:
        for path, content_type in paths.items():
            async with http.get(path) as resp:
                assert resp.content_type == content_type, path
                assert resp.headers.get("X-Content-Type-Options") == "nosniff", path
                # Not documents: no page policy on them.
                assert "X-Frame-Options" not in resp.headers, path


async def test_a_document_whose_handler_sets_its_own_policy_keeps_it(office: OfficeServer) -> None:
    token = office.token("anna.altbach", "altbach")
    async with office.server_session(token) as http:
        # The badge SVG is a document too; its policy allows only its inline style.
        async with http.get("/api/v1/municipalities/altbach/users/nobody/badge?format=svg") as resp:
            assert resp.status == 404 and resp.content_type == "image/svg+xml"
            assert resp.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["Referrer-Policy"] == "no-referrer"


class _Scripts(HTMLParser):
    """Inline scripts and inline event handlers: what script-src 'self' would refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self._in_inline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.inline += [f"<{tag} {name}=...>" for name, _ in attrs if name.startswith("on")]
        self.inline += [f"<{tag} href=javascript:...>" for name, v in attrs
                        if name in ("href", "src", "action") and (v or "").strip().lower().startswith("javascript:")]
        # A data block (type="application/json") is never run, so the policy does not apply to it.
        data_block = (named.get("type") or "").lower() in ("application/json", "application/ld+json")
        self._in_inline = tag == "script" and "src" not in named and not data_block

    def handle_data(self, data: str) -> None:
        if self._in_inline and data.strip():
            self.inline.append(f"<script>{data.strip()[:40]}...")

    def handle_endtag(self, tag: str) -> None:
        self._in_inline = False


def test_the_served_pages_hold_no_inline_script() -> None:
    pages = sorted(STATIC.rglob("*.html"))
    assert {p.name for p in pages} >= {"index.html", "embed.html"}
    for page in pages:
        parser = _Scripts()
        parser.feed(page.read_text(encoding="utf-8"))
        assert parser.inline == [], page
        assert not re.search(r"\sstyle\s*=", page.read_text(encoding="utf-8")), f"{page}: style attribute"
