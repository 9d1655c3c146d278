"""Stopping tasks an owner started: cancel, wait, and never lose what they raised."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

__all__ = ["cancel_and_wait"]

log = structlog.get_logger(__name__)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> BaseException | None:
    """Cancel ``task`` and wait until it has really finished (its ``finally``
    blocks included), so its owner can release what the task was using.

    A task that had already failed, or fails while it stops, had an exception
    nobody read: it is logged here with its traceback (``task_failed``) and
    returned, rather than raised, so an owner shutting down still releases
    everything else it holds.
    """
    if task is None:
        return None
    if not task.done():
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            # Its own cancellation. (Whether our caller is being cancelled too cannot
            # be told reliably: aiohttp runs cleanup in a task it once cancelled.)
            return None
        except Exception as exc:  # raised on its way out (in a finally block)
            log.error("task_failed", task=task.get_name(), exc_info=exc)
            return exc
        return None
    if task.cancelled():
        return None
    failure = task.exception()  # reading it also stops asyncio's "never retrieved" warning
    if failure is not None:
        log.error("task_failed", task=task.get_name(), exc_info=failure)
    return failure
