"""How a Python client hands server events to the code using it.

Two independent ways, fed with every event the client receives:

* :class:`Mailbox` — for code that *waits* for an event (tests, scripts):
  ``OfficeClient.next_event`` / ``expect`` / ``pending_events``.
* :class:`Handlers` — for code that *reacts* to events (bots): callbacks
  registered with ``OfficeClient.on``.

Neither can starve the other: a handler sees every event whatever the mailbox's
readers take, and a reader never takes an event from another reader that wants it.
No Socket.IO in here, so both are testable with plain asyncio.
"""

from __future__ import annotations

import asyncio
import bisect
import inspect
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Final, Union

__all__ = ["Mailbox", "Handlers", "Handler", "Predicate", "DEFAULT_MAILBOX_LIMIT"]

log = logging.getLogger(__name__)

Predicate = Callable[[Any], bool]
#: A callback: one argument (the event's payload), plain or ``async``.
Handler = Callable[[Any], Union[Awaitable[Any], Any]]

#: Events kept per name for readers; older ones are dropped (and counted) beyond it,
#: so a long-running client that never reads its mailbox does not grow without bound.
DEFAULT_MAILBOX_LIMIT: Final = 1000


@dataclass(eq=False)
class _Waiter:
    predicate: Predicate | None
    future: asyncio.Future[tuple[int, Any]]


@dataclass(eq=False)
class _Stream:
    """The events of one name, numbered in arrival order."""

    kept: deque[tuple[int, Any]] = field(default_factory=deque)  # not taken, oldest first
    waiters: list[_Waiter] = field(default_factory=list)  # FIFO
    next_number: int = 0
    mark: int = 0  # the first number no reader has looked past


class Mailbox:
    """The events received and not yet taken, per event name (like an Erlang mailbox).

    Contract:

    * :meth:`take` returns the oldest kept event that matches its predicate (any
      event without one) and removes only that one; if none is kept it waits for
      the next matching arrival. Events it passes over stay kept: a concurrent
      waiter or a later ``take`` whose predicate matches them still gets them.
      Concurrent waiters are served in the order they started waiting; each event
      goes to at most one.
    * Every event has a read mark: taking an event moves the mark past it, and the
      events behind the mark count as *seen*. :meth:`drain` returns the unseen
      events (those after the mark, in arrival order) and empties the stream,
      passed-over ones included. (This is the position-in-a-stream reading that
      ``pending_events`` always had: "what arrived since the last ``next_event``".)
    * At most ``limit`` events are kept per name; beyond that the oldest is
      dropped and counted in :attr:`dropped`.
    """

    def __init__(self, limit: int = DEFAULT_MAILBOX_LIMIT) -> None:
        if limit < 1:
            raise ValueError("a mailbox keeps at least one event per name")
        self.limit = limit
        self.dropped = 0
        self._streams: dict[str, _Stream] = {}

    def _stream(self, event: str) -> _Stream:
        stream = self._streams.get(event)
        if stream is None:
            stream = self._streams[event] = _Stream()
        return stream

    def put(self, event: str, payload: Any) -> None:
        """One event arrived: to the first waiter that wants it, else kept."""
        stream = self._stream(event)
        number = stream.next_number
        stream.next_number += 1
        for waiter in list(stream.waiters):
            if waiter.future.done():
                continue
            try:
                wanted = waiter.predicate is None or waiter.predicate(payload)
            except Exception as exc:  # the waiter's own bug: it gets the error, others go on
                stream.waiters.remove(waiter)
                waiter.future.set_exception(exc)
                continue
            if wanted:
                stream.waiters.remove(waiter)
                stream.mark = max(stream.mark, number + 1)
                waiter.future.set_result((number, payload))
                return
        stream.kept.append((number, payload))
        if len(stream.kept) > self.limit:
            stream.kept.popleft()
            self.dropped += 1
            # Routine for a bot that reacts with handlers and never reads: debug only.
            log.debug("mailbox full: dropped the oldest %r event nobody read (limit %d)", event, self.limit)

    async def take(self, event: str, predicate: Predicate | None = None, timeout: float | None = 5.0) -> Any:
        """The oldest matching event (see the class contract); ``TimeoutError`` if
        none arrives within ``timeout`` seconds."""
        stream = self._stream(event)
        for index, (number, payload) in enumerate(stream.kept):
            if predicate is None or predicate(payload):
                del stream.kept[index]
                stream.mark = max(stream.mark, number + 1)
                return payload
        waiter = _Waiter(predicate, asyncio.get_running_loop().create_future())
        stream.waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                _, payload = await waiter.future
            return payload
        except BaseException:
            # Handed to us in the moment we were cancelled or timed out: keep it for the next reader.
            if waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
                number, payload = waiter.future.result()
                bisect.insort(stream.kept, (number, payload), key=lambda entry: entry[0])
            raise
        finally:
            if waiter in stream.waiters:
                stream.waiters.remove(waiter)

    def drain(self, event: str) -> list[Any]:
        """The unseen events of ``event``; the stream is empty afterwards."""
        stream = self._stream(event)
        unseen = [payload for number, payload in stream.kept if number >= stream.mark]
        stream.kept.clear()
        stream.mark = stream.next_number
        return unseen


class Handlers:
    """Callbacks per event name, each call in its own task owned by this registry.

    Contract: handlers of an event are started in the order events arrive and in
    the order they were registered, and then run concurrently (a slow handler
    delays nobody). A handler that raises is logged and counted in :attr:`errors`
    (the most recent 100); it stays registered and the client goes on.
    :meth:`close` cancels the calls still running.
    """

    def __init__(self) -> None:
        self.errors: deque[BaseException] = deque(maxlen=100)
        self._by_event: dict[str, list[Handler]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, event: str, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(f"a handler for {event!r} must be callable, not {type(handler).__name__}")
        self._by_event.setdefault(event, []).append(handler)

    def remove(self, event: str, handler: Handler) -> None:
        """Unregister ``handler``; not registered is not an error."""
        handlers = self._by_event.get(event, [])
        if handler in handlers:
            handlers.remove(handler)

    def wants(self, event: str) -> bool:
        return bool(self._by_event.get(event))

    def dispatch(self, event: str, payload: Any) -> None:
        for handler in list(self._by_event.get(event, ())):
            task = asyncio.create_task(self._call(event, handler, payload), name=f"handler:{event}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def failed(self, event: str, exc: BaseException) -> None:
        """Record a failure on the way to the handlers (e.g. a payload that did not parse)."""
        self.errors.append(exc)
        log.error("event %r not delivered to its handlers", event, exc_info=exc)

    async def _call(self, event: str, handler: Handler, payload: Any) -> None:
        try:
            result = handler(payload)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never kills the client: logged, counted, next event goes on
            self.errors.append(exc)
            log.error("handler %s for %r failed", getattr(handler, "__qualname__", handler), event, exc_info=exc)

    async def close(self) -> None:
        # Not the calling task itself: a handler may be what closes the client.
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
