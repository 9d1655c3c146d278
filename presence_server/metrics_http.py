"""Serving ``/metrics``: where (the main port or a listener of its own) and for
whom (anyone, or whoever sends the metrics token). Settings: ``metrics``
(:mod:`presence_server.config_metrics`); docs/deployment.md.

The listener of its own is a second aiohttp runner owned by the main app's
``cleanup_ctx``: it binds when the server starts, before it takes clients (so
a start can be watched), and is closed after everything else has stopped.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import AsyncIterator, Awaitable, Callable, Final

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from presence_server import metrics, security_headers
from presence_server.config import Settings
from rooms.errors import DomainError, ErrorCode

__all__ = ["install", "metrics_handler", "MetricsListener", "METRICS_LISTENER", "METRICS_PATH"]

log = structlog.get_logger(__name__)

METRICS_PATH: Final = "/metrics"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def metrics_handler(token: bytes | None) -> Handler:
    """The ``/metrics`` handler; with ``token``, only for ``Authorization: Bearer <token>``.

    A refusal raises :class:`DomainError` ``unauthenticated``: the error
    middleware answers 401 with the one error shape, as for every other token."""
    # Compared as SHA-256 digests: compare_digest is constant-time only for inputs
    # of equal length, and the token's length is a secret too.
    expected = _digest(token) if token is not None else None

    async def serve_metrics(request: web.Request) -> web.Response:
        if expected is not None:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(_digest(given.strip().encode()), expected):
                raise DomainError(ErrorCode.UNAUTHENTICATED, "Authorization: Bearer <metrics token> required")
        return web.Response(body=metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})

    return serve_metrics


class MetricsListener:
    """``/metrics`` alone on ``host``:``port``, as a second aiohttp runner."""

    def __init__(self, *, host: str, port: int, handler: Handler, middlewares: Sequence[Middleware] = ()) -> None:
        self._host = host
        self._port = port
        self._handler = handler
        self._middlewares = list(middlewares or [])
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one picked for port 0)."""
        if self._runner is None:
            raise RuntimeError("MetricsListener is not started: call .start() first")
        address = self._runner.addresses[0]
        return int(address[1])

    async def start(self) -> None:
        app = web.Application(middlewares=self._middlewares)
        security_headers.install(app)
        app.router.add_get(METRICS_PATH, self._handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except OSError as exc:
            await runner.cleanup()
            log.error("metrics_listen_failed", host=self._host, port=self._port, error=str(exc))
            raise
        self._runner = runner
        log.info("metrics_listening", host=self._host, port=self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


METRICS_LISTENER: Final = web.AppKey("metrics_listener", MetricsListener)


def install(app: web.Application, settings: Settings, *, middlewares: Sequence[Middleware]) -> None:
    """Serve ``/metrics`` as ``settings.metrics`` says. ``middlewares`` turn a
    refusal into the error shape on a listener of its own too."""
    conf = settings.metrics
    handler = metrics_handler(conf.token_bytes)
    if conf.port is None:
        app.router.add_get(METRICS_PATH, handler)
        if conf.token is None and not settings.dev_mode:
            log.warning("metrics_unprotected", hint="set metrics.port or metrics.token (docs/deployment.md)")
        return
    listener = MetricsListener(host=conf.listen_host, port=conf.port, handler=handler, middlewares=middlewares)
    app[METRICS_LISTENER] = listener

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await listener.start()
        try:
            yield
        finally:
            await listener.close()

    app.cleanup_ctx.append(lifecycle)
