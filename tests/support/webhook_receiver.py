"""A real webhook receiver for tests: an aiohttp server on a free loopback port
that checks every request's signature on its own (hmac + hashlib, nothing from
the server's code) and records what arrived."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

__all__ = ["Receiver", "Delivery", "verify_signature"]


def verify_signature(secret: bytes, header: str, body: bytes, *, tolerance: float = 300) -> bool:
    """The receiver's side of the scheme in docs/portal.md."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    timestamp, signature = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    valid: bool

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Paths name the webhook (``/altbach`` ...). ``answer(delivery)`` decides the reply:
    a status, a whole response (a redirect with its ``Location``), or an awaitable of
    either; ``hold`` (if set) is awaited before answering, to stall the sender."""

    secrets: dict[str, bytes]
    answer: Callable[[Delivery], Any] = lambda d: 204
    hold: asyncio.Event | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        secret = self.secrets.get(name, b"")
        valid = verify_signature(secret, request.headers.get("X-VO-Signature", ""), body)
        delivery = Delivery(name, dict(request.headers), body, valid)
        async with self._arrived:
            self.deliveries.append(delivery)
            self._arrived.notify_all()
        if self.hold is not None:
            await self.hold.wait()
        answer = self.answer(delivery)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer if isinstance(answer, web.StreamResponse) else web.Response(status=answer)

    def events(self, path: str) -> list[dict[str, Any]]:
        return [d.event for d in self.deliveries if d.path == path]

    async def until(self, predicate: Callable[[list[Delivery]], bool], timeout: float = 5.0) -> list[Delivery]:
        """Wait until the deliveries so far satisfy ``predicate``."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: predicate(self.deliveries)), timeout)
        return list(self.deliveries)
