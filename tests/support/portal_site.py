"""A town's portal on an origin of its own, as a web developer builds it from
docs/embedding.md: an aiohttp app (in a thread, on a free loopback port) that

* "signs in" a person (``/login?as=altbach/anna.altbach&name=...&ttl=12`` sets a
  cookie; a real portal has its own sign-in),
* renders pages from templates with ``{{ office_token }}`` (a token minted for
  the signed-in person with the town's HS256 key, :func:`presence_server.auth.mint_token`)
  and the office's address in place of the docs' ``https://office.example.org``,
* and answers ``POST /office-token`` with a fresh ``{"token": ...}`` for the
  signed-in person: the backend endpoint the docs' refresh snippets call.

``minted`` counts the tokens per person; :meth:`sign_out` makes the backend refuse
further tokens for someone (a portal session that ended), so their office
session runs out.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

from aiohttp import web

from presence_server.auth import mint_token
from presence_server.config import Settings
from tests.support.doc_snippets import render
from tests.support.processes import free_port

__all__ = ["PortalSite"]

_COOKIE = "portal_user"


class PortalSite:
    """Pages (path -> template) and the token endpoint of one portal, on ``host``."""

    def __init__(self, settings: Settings, office_url: str, *, host: str = "127.0.0.1") -> None:
        self.settings = settings
        self.office_url = office_url
        self.host = host
        self.port = free_port()
        self.pages: dict[str, str] = {}
        self.minted: Counter[str] = Counter()
        self._signed_out: set[str] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, name=f"portal-{self.port}", daemon=True)
        self._started = threading.Event()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str, person: str, name: str, *, ttl: int = 3600) -> str:
        """The address that signs ``person`` ("municipality/user_id") in and shows ``path``."""
        from urllib.parse import urlencode

        return f"{self.origin}/login?{urlencode({'as': person, 'name': name, 'ttl': ttl, 'next': path})}"

    def sign_out(self, person: str) -> None:
        with self._lock:
            self._signed_out.add(person)

    def sign_in(self, person: str) -> None:
        with self._lock:
            self._signed_out.discard(person)

    def tokens_minted(self, person: str) -> int:
        with self._lock:
            return self.minted[person]

    # ----------------------------------------------------------------- app
    def _token_for(self, who: dict[str, str]) -> str | None:
        person = who["as"]
        with self._lock:
            if person in self._signed_out:
                return None
            self.minted[person] += 1
        municipality, user_id = person.split("/", 1)
        return mint_token(self.settings.auth, municipality=municipality, user_id=user_id, name=who["name"],
                          ttl_seconds=int(who["ttl"]))

    @staticmethod
    def _who(request: web.Request) -> dict[str, str] | None:
        from urllib.parse import parse_qsl

        raw = request.cookies.get(_COOKIE)
        return dict(parse_qsl(raw)) if raw else None

    async def _login(self, request: web.Request) -> web.Response:
        from urllib.parse import urlencode

        query = request.query
        response = web.HTTPFound(query.get("next", "/"))
        response.set_cookie(_COOKIE, urlencode({k: query[k] for k in ("as", "name", "ttl")}), httponly=True,
                            samesite="Strict")
        raise response

    async def _page(self, request: web.Request) -> web.Response:
        template = self.pages.get(request.path)
        who = self._who(request)
        if template is None or who is None:
            raise web.HTTPNotFound()
        token = self._token_for(who) if "{{ office_token }}" in template else None
        body = render(template, office=self.office_url, token=token)
        return web.Response(text=body, content_type="text/html")

    async def _office_token(self, request: web.Request) -> web.Response:
        who = self._who(request)
        token = self._token_for(who) if who else None
        if token is None:
            return web.json_response({"error": "signed out"}, status=401)
        return web.json_response({"token": token}, headers={"Cache-Control": "no-store"})

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/login", self._login)
        app.router.add_post("/office-token", self._office_token)
        app.router.add_get("/{page:.*}", self._page)
        return app

    # ----------------------------------------------------------- lifecycle
    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        runner = web.AppRunner(self._app(), access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, self.host, self.port).start())
        self._runner = runner
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def start(self) -> PortalSite:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"portal on {self.origin} did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> PortalSite:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
