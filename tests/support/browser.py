"""Real headless Chromium for the widget tests, and portal pages on other origins.

* :func:`launch_chromium` starts Debian's ``/usr/bin/chromium`` through
  Playwright (never Playwright's own browser download), with Chromium's fake
  camera and microphone, so WebRTC calls carry real (synthetic) media.
* :class:`PortalServer` is a tiny HTTP server on its own loopback port: a portal
  on another origin (``http://127.0.0.1:<port>``) that embeds the widget.
* :func:`open_widget` opens a portal page with ``<virtual-office-floor>`` for one
  user and waits until the widget shows the floor.
* :func:`deep_focus` names the focused control inside the widget's shadow root.
* :func:`record_session_events` / :func:`session_events`: what the widget's session
  received from the server, below the element (a test can show that a session got
  no ``call.ring`` at all).

The widget names people by their person id, ``"municipality/user_id"`` (e.g.
``"lindenau/lea.lindenau"``): in ``data-person`` attributes, call peers, ``ring()``
and its events. A user id (the token's ``sub``) is unique only within its town.
"""

from __future__ import annotations

import html
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from playwright.sync_api import Browser, BrowserContext, Page, Playwright

from presence_server.auth import mint_token

__all__ = [
    "CHROMIUM",
    "ARTIFACTS",
    "launch_chromium",
    "PortalServer",
    "widget_page_html",
    "open_widget",
    "deep_focus",
    "tab_to",
    "widget_state",
    "record_session_events",
    "session_events",
    "require_chromium",
    "new_context",
    "dev_token",
]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
_FLAGS = [
    # What this machine needs (docs: /work/.library/env): no sandbox as root, no GPU,
    # no background connections to hosts a closed network refuses.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Calls: a synthetic camera and microphone, granted without a prompt.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # ICE over loopback too, so calls connect on a machine (or CI runner) with no other interface.
    "--allow-loopback-in-peer-connection",
]


def require_chromium() -> None:
    import pytest

    if shutil.which(CHROMIUM) is None:  # ./scripts/test installs it; a bare pytest run may not have it
        pytest.fail(f"{CHROMIUM} not found: run ./scripts/test (installs Debian's chromium)")


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=_FLAGS)


class PortalServer:
    """Serves ``pages`` (path -> HTML) on a free loopback port, in a thread."""

    def __init__(self, pages: dict[str, str] | None = None) -> None:
        self.pages: dict[str, str] = dict(pages or {})
        pages_ref = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = pages_ref.get(self.path.split("?")[0].split("#")[0])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="portal", daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> PortalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def widget_page_html(server: str, *, floor: str = "projekt", title: str = "Intranet", extra: str = "") -> str:
    """A portal page with the element; the test passes token and language in the
    fragment (``#token=...&lang=de``), which a small inline script right after the
    element hands over, the way docs/embedding.md §1 does: before the module
    script (deferred) has defined the element, so every test that uses this page
    goes through the element's adoption of early properties."""
    server_attr = html.escape(server, quote=True)
    return f"""<!doctype html>
<html lang="de">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<script>
  const params = new URLSearchParams(location.hash.slice(1));
  document.documentElement.lang = params.get("lang") || "de";
  window.voEvents = [];
  for (const name of ["vo-ready", "vo-presence", "vo-knock", "vo-ring", "vo-error", "vo-state", "vo-token-expiring"]) {{
    document.addEventListener(name, (e) => window.voEvents.push({{ name, detail: e.detail }}));
  }}
</script>
<script type="module" src="{server_attr}/widget/virtual-office-floor.js"></script>
</head>
<body>
<main>
<h1>{html.escape(title)}</h1>
<virtual-office-floor server="{server_attr}" floor="{html.escape(floor, quote=True)}"></virtual-office-floor>
<script>
  document.querySelector("virtual-office-floor").token = new URLSearchParams(location.hash.slice(1)).get("token");
</script>
{extra}
</main>
</body>
</html>"""


def open_widget(
    context: BrowserContext, url: str, token: str, *, lang: str = "de", on_console: Callable[[str], None] | None = None
) -> Page:
    """Open a portal page with the widget for ``token``; wait until it shows the floor
    with the user on it."""
    page = context.new_page()
    page.on("pageerror", lambda exc: print(f"page error: {exc}"))
    if on_console is not None:
        page.on("console", lambda msg: on_console(msg.text))
    page.goto(f"{url}#token={token}&lang={lang}")
    page.wait_for_function(
        "() => { const el = document.querySelector('virtual-office-floor');"
        " return el && el.dataset.seq !== undefined && el.state.location && el.state.location.floor_id; }",
        timeout=15_000,
    )
    return page


def widget_state(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("() => document.querySelector('virtual-office-floor').state")
    return result


def record_session_events(page: Page, *names: str) -> None:
    """Record the named events of the widget's session (the server's Socket.IO events as
    the session forwards them, before the element handles them) in ``window.voSession``."""
    page.evaluate(
        """(names) => {
            window.voSession = window.voSession || [];
            const session = document.querySelector('virtual-office-floor').session;
            for (const name of names) session.addEventListener(name, (e) => window.voSession.push({ name, detail: e.detail }));
        }""",
        list(names),
    )


def session_events(page: Page, name: str) -> list[dict[str, Any]]:
    """The payloads of the recorded session events called ``name`` (see :func:`record_session_events`)."""
    events: list[dict[str, Any]] = page.evaluate(
        "(name) => (window.voSession || []).filter((e) => e.name === name).map((e) => e.detail)", name
    )
    return events


def deep_focus(page: Page) -> dict[str, Any] | None:
    """The focused element inside shadow roots: its data-key, tag and whether it
    shows a focus indicator (:focus-visible)."""
    result: dict[str, Any] | None = page.evaluate(
        """() => {
            let a = document.activeElement;
            while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
            if (!a || a === document.body) return null;
            return { key: a.dataset ? a.dataset.key || null : null, tag: a.tagName.toLowerCase(),
                     visible: a.matches(':focus-visible'), label: a.getAttribute('aria-label') || a.textContent };
        }"""
    )
    return result


def tab_to(page: Page, key: str, *, limit: int = 80) -> dict[str, Any]:
    """Press Tab until the control with data-key ``key`` has the focus; return it
    as :func:`deep_focus` names it."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = deep_focus(page)
        if focus is not None and focus["key"] == key:
            return focus
    raise AssertionError(f"Tab never reached {key!r}; last focus {deep_focus(page)}")


def new_context(browser: Browser, **kw: Any) -> BrowserContext:
    """A fresh profile (cookies, storage) with camera and microphone granted."""
    return browser.new_context(permissions=["camera", "microphone"], viewport={"width": 1280, "height": 900}, **kw)


def dev_token(
    user: str,
    municipality: str,
    name: str,
    *,
    roles: tuple[str, ...] = ("staff",),
    ttl: int = 3600,
    department: str | None = None,
    job_title: str | None = None,
    skills: tuple[str, ...] = (),
) -> str:
    """A token signed with the development key of ``municipality`` (config/default.toml),
    as the portal's backend of that town would mint it; ``department``, ``job_title``
    and ``skills`` are the profile the specialist finder searches. The person it signs
    in is ``f"{municipality}/{user}"``: the same ``user`` in two towns is two people."""
    from tests.conftest import make_settings

    return mint_token(
        make_settings().auth, municipality=municipality, user_id=user, name=name, roles=roles, ttl_seconds=ttl,
        department=department, job_title=job_title, skills=skills,
    )
