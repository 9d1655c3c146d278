"""Background loops that crash are logged, counted and restarted — never silent.

Every loop a node runs in the background (the outbox drain, knock and ring
expiry, the directory sweep, room expiry, the cluster's gap release, sender,
campus inbox, bus reader and membership, webhook workers) runs under
:func:`supervise`. A loop catches what it expects (an outage of its store:
:class:`~rooms.errors.StoreUnavailable`, logged and tried again next round);
anything else ends the run, and the supervisor

* logs it with its traceback (``loop_crashed``, with the loop's name),
* counts it in ``vo_loop_restarts_total{loop}``, so an operator sees a loop
  that keeps failing rather than a feature that quietly stopped,
* and starts the loop again after a back-off that doubles from ``backoff`` up
  to ``cap`` (a loop that fails at once every time must not spin), and starts
  over from ``backoff`` once a run had lasted longer than ``cap``.

Cancellation is not a crash: it is the owner stopping the loop
(:func:`~presence_server.tasks.cancel_and_wait`) and ends the supervision. A
loop that returns has finished its work and is not restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

import structlog

from presence_server import metrics

__all__ = ["supervise", "supervised", "Loop", "BACKOFF_START", "BACKOFF_CAP"]

log = structlog.get_logger(__name__)

#: A loop: a coroutine function that runs until cancelled.
Loop = Callable[[], Coroutine[Any, Any, None]]

#: The first pause before a crashed loop runs again.
BACKOFF_START: Final = 0.1
#: The longest pause; also how long a run must have lasted to count as healthy again.
BACKOFF_CAP: Final = 30.0


async def supervise(name: str, run: Loop, *, backoff: float = BACKOFF_START, cap: float = BACKOFF_CAP) -> None:
    """Run ``run()`` until it returns or is cancelled, restarting it after each crash."""
    delay = backoff
    while True:
        started = time.monotonic()
        try:
            await run()
            return
        except Exception:  # CancelledError is a BaseException: the owner's stop passes through
            if time.monotonic() - started > cap:
                delay = backoff  # it had been running well: a new failure, not the same one again
            metrics.LOOP_RESTARTS.labels(name).inc()
            log.exception("loop_crashed", loop=name, restart_in=round(delay, 3))
        await asyncio.sleep(delay)  # back-off before the restart, not a wait for a result
        delay = min(cap, delay * 2)


def supervised(name: str, run: Loop, *, backoff: float = BACKOFF_START, cap: float = BACKOFF_CAP) -> asyncio.Task[None]:
    """Start ``run`` under :func:`supervise` as a task named ``name``. The caller owns
    the task and stops it with :func:`~presence_server.tasks.cancel_and_wait`."""
    return asyncio.create_task(supervise(name, run, backoff=backoff, cap=cap), name=name)
