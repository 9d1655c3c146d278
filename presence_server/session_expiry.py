"""Sessions whose token has run out: one deadline per session, and what happens at it.

A token's ``exp`` ends what its holder may *do* at once (every event answers
``token_expired``, docs/protocol.md §2), but a socket that stays open would go on
*receiving* every floor change of the towns it may see. So each session gets a
deadline, ``exp + auth.leeway_seconds + auth.refresh_grace_seconds``; a refresh
(``auth.refresh``) moves it, and when it passes the gateway ends the session
(:meth:`presence_server.gateway.Gateway`'s ``_expire``).

:class:`ExpiryTimers` holds the deadlines: one loop timer per session (no task
while waiting), and for each deadline that passes one task that it owns, logs
if it fails and cancels on :meth:`close`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

__all__ = ["ExpiryTimers"]

log = structlog.get_logger(__name__)


class ExpiryTimers:
    """Per-session deadlines (unix time). ``on_expiry(sid)`` runs once a deadline has
    passed, in a task this object owns; it is not called for a cancelled deadline."""

    def __init__(self, on_expiry: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        self._on_expiry = on_expiry
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False

    def schedule(self, sid: str, deadline: float) -> None:
        """Set (or move) the deadline of ``sid``."""
        if self._closed:
            return
        self.cancel(sid)
        delay = max(0.0, deadline - time.time())
        self._timers[sid] = asyncio.get_running_loop().call_later(delay, self._fire, sid)

    def cancel(self, sid: str) -> None:
        timer = self._timers.pop(sid, None)
        if timer is not None:
            timer.cancel()

    def __len__(self) -> int:
        return len(self._timers)

    def _fire(self, sid: str) -> None:
        self._timers.pop(sid, None)
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._on_expiry(sid), name=f"session-expiry-{sid}")
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("session_expiry_failed", error=repr(task.exception()))

    async def close(self) -> None:
        """Stop: no deadline fires any more; expiries under way are cancelled."""
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
