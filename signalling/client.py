"""The Python client of the virtual office: bots, tests and scripts use it.

Speaks the real protocol (docs/protocol.md) over a real Socket.IO connection
(python-socketio's ``AsyncClient``, WebSocket only, no automatic reconnect).
Calls with real media and data channels are :class:`signalling.webrtc.CallPeer`,
which works on top of a client.

Contract:

* **Requests** are acknowledged events. :meth:`OfficeClient.request` returns the
  acknowledgement or raises :class:`RequestError` with the server's error ``code``
  (and ``reason`` where the protocol gives one). The typed methods (:meth:`move`,
  :meth:`set_status`, :meth:`knock`, :meth:`answer`, ...) return the objects of
  :mod:`signalling.wire`.
* **Events** reach two independent consumers (:mod:`signalling.events`):
  handlers registered with :meth:`on` (every event, typed where
  :data:`~signalling.wire.EVENT_PARSERS` knows it, each call in its own task,
  errors logged and counted, never fatal), and the mailbox that
  :meth:`next_event` / :meth:`expect` / :meth:`pending_events` read (an event is
  taken by at most one reader; events a reader passes over stay for the others).
* **Floors** you :meth:`watch` are kept as :class:`FloorView` objects (in
  :attr:`views`) and resynced by themselves on a gap. Each diff a view applies is
  also delivered once, in order, as the client's own event ``"view.diff"``
  (:data:`VIEW_DIFF`, a :class:`~signalling.wire.Diff`): what a bot reacting to
  people walking about wants, without the repeats a raw ``floor.diffs`` frame may
  carry. A diff lost in a gap is not replayed; the fresh snapshot holds its effect.
* **Signals** are the application's: the client installs no handler for SIGINT or
  SIGTERM (examples/doorbell_bot.py shows a clean shutdown on both).
"""

from __future__ import annotations

import asyncio
from collections import deque
import logging
from typing import Any, Callable, Sequence, TypeVar, overload

import socketio

from signalling.events import DEFAULT_MAILBOX_LIMIT, Handler, Handlers, Mailbox, Predicate
from signalling.floorview import FloorView
from signalling.wire import (
    Call,
    Diff,
    DiffFrame,
    Knock,
    KnockOutcome,
    Location,
    Member,
    Person,
    Presence,
    Ring,
    RingOutcome,
    Session,
    parse_event,
)

__all__ = [
    "OfficeClient",
    "RequestError",
    "ConnectRefused",
    "VIEW_DIFF",
    # the typed objects, re-exported so a bot imports from one place
    "Person",
    "Member",
    "Location",
    "Presence",
    "Knock",
    "KnockOutcome",
    "Ring",
    "RingOutcome",
    "Call",
    "Diff",
    "DiffFrame",
    "Session",
]

log = logging.getLogger(__name__)

#: The client's own event: one diff a watched floor's view just applied.
VIEW_DIFF = "view.diff"

H = TypeVar("H", bound=Handler)
Hook = Callable[[Any], Any]


class RequestError(Exception):
    """The server refused a request. Branch on :attr:`code` (and :attr:`reason`),
    never on the message, which is for people."""

    def __init__(self, event: str, error: dict[str, Any]) -> None:
        super().__init__(f"{event}: {error.get('code')}: {error.get('message')}")
        self.event = event
        self.error = error
        self.code: str = error.get("code", "")

    @property
    def reason(self) -> str | None:
        """The sub-reason some codes carry, e.g. ``already_ringing`` on a ``conflict``."""
        reason = self.error.get("reason")
        return None if reason is None else str(reason)


class ConnectRefused(Exception):
    """The server refused the connection (``code``: ``unauthenticated``,
    ``token_expired``, ...), or it could not be reached (``connect_failed``)."""

    def __init__(self, data: Any) -> None:
        super().__init__(f"connection refused: {data}")
        self.data = data
        self.code: str = data.get("code", "") if isinstance(data, dict) else ""


def person_arg(person: str | Member) -> Person:
    """A person argument as its id; a bare user id fails here, before the server refuses it."""
    return person.person if isinstance(person, Member) else Person(person)


class OfficeClient:
    """One session of one person. Use it as ``async with OfficeClient(url, token) as
    client:``, or call :meth:`connect` and :meth:`disconnect` yourself."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        lang: str = "en",
        auto_resync: bool = True,
        request_timeout: float = 5.0,
        transports: Sequence[str] = ("websocket",),
        mailbox_limit: int = DEFAULT_MAILBOX_LIMIT,
    ) -> None:
        self.url = url
        self.token = token
        self.lang = lang
        self.auto_resync = auto_resync
        self.request_timeout = request_timeout
        self.transports = list(transports)
        # handle_sigint=False: the application owns its signals. python-socketio's
        # default SIGINT handler would disconnect, cancel every task of the loop and
        # stop it, so a bot could never hang up and leave cleanly.
        self.sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        self.views: dict[str, FloorView] = {}
        self.ready: dict[str, Any] | None = None  # session.ready as received
        self.resyncs = 0
        self.degraded = False
        self.drop_next_frame = False  # tests: simulate one lost frame
        self._mailbox = Mailbox(mailbox_limit)
        self._handlers = Handlers()
        self._intercepts: dict[str, Hook] = {}
        self._refused: Any = None
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._view_changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sio.on("*", self._on_any)
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("session.ready", self._on_ready)
        self.sio.on("floor.diffs", self._on_diffs)
        self.sio.on("floor.seq", self._on_seq)
        self.sio.on("session.degraded", self._on_degraded)

    # ------------------------------------------------------------ connection
    async def connect(self, timeout: float = 5.0) -> OfficeClient:
        """Connect and wait for ``session.ready``; :class:`ConnectRefused` if refused."""
        try:
            await self.sio.connect(
                self.url,
                auth={"token": self.token, "lang": self.lang},
                transports=self.transports,
                wait_timeout=timeout,
            )
        except socketio.exceptions.ConnectionError as exc:
            if self._refused is not None:
                raise ConnectRefused(self._refused) from None
            raise ConnectRefused({"code": "connect_failed", "message": str(exc)}) from exc
        self._closed.clear()
        await asyncio.wait_for(self._ready.wait(), timeout)
        return self

    async def disconnect(self) -> None:
        """Stop handlers still running and close the connection. Idempotent."""
        for task in list(self._tasks):
            task.cancel()
        await self._handlers.close()
        if self.sio.connected and self.sio.transport() == "polling":
            # The engine.io client would wait for its pending long-poll, which the
            # server answers only at the next ping (25 s): send CLOSE and go.
            await self.sio.eio.disconnect(abort=True)
        if self.sio.connected:
            await self.sio.disconnect()
        self._closed.set()

    async def __aenter__(self) -> OfficeClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    async def wait_disconnected(self, timeout: float | None = None) -> None:
        """Return once the connection is gone (the server closed it, or :meth:`disconnect`)."""
        async with asyncio.timeout(timeout):
            await self._closed.wait()

    @property
    def sid(self) -> str | None:
        sid: str | None = self.sio.sid
        return sid

    @property
    def person(self) -> Person:
        """Who this client is, ``"municipality/user_id"`` (a :class:`Person`, which is a
        ``str``): a user id alone is unique only within its town."""
        if self.ready is None:
            raise RuntimeError("not connected: call connect() first")
        return Person(self.ready["me"]["person"])

    @property
    def session(self) -> Session:
        """``session.ready`` of this connection, typed."""
        if self.ready is None:
            raise RuntimeError("not connected: call connect() first")
        return Session.from_wire(self.ready)

    @property
    def me(self) -> Member:
        return self.session.me

    @property
    def handler_errors(self) -> deque[BaseException]:
        """The most recent failures of event handlers and intercept hooks (logged too)."""
        return self._handlers.errors

    # -------------------------------------------------------------- requests
    async def call(self, event: str, data: Any = None, timeout: float | None = None) -> dict[str, Any]:
        """Send a request and return the raw acknowledgement, refusals included."""
        ack = await self.sio.call(event, data, timeout=timeout or self.request_timeout)
        return ack  # type: ignore[no-any-return]

    async def request(self, event: str, data: Any = None, timeout: float | None = None) -> dict[str, Any]:
        """Send a request; return its acknowledgement, or raise :class:`RequestError`."""
        ack = await self.call(event, data, timeout)
        if not ack.get("ok"):
            raise RequestError(event, ack.get("error", {}))
        return ack

    async def watch(self, floor_id: str) -> FloorView:
        """Subscribe to a floor; its view is current when this returns and stays so."""
        view = self.views.get(floor_id)
        if view is None:
            view = self.views[floor_id] = FloorView(floor_id, on_apply=self._on_applied)
        for _ in range(5):  # a gap inside the early frames asks for one more snapshot
            view.stale = True
            result = await self.request("floor.watch", {"floor_id": floor_id})
            if view.load_snapshot(result["snapshot"]):
                break
        await self._notify_view()
        return view

    async def unwatch(self, floor_id: str) -> None:
        await self.request("floor.unwatch", {"floor_id": floor_id})
        self.views.pop(floor_id, None)

    async def move(self, floor_id: str, room_id: str | None = None) -> Location:
        """Walk onto a floor's hallway (``room_id`` None) or into a room."""
        ack = await self.request("presence.move", {"floor_id": floor_id, "room_id": room_id})
        return Location.from_wire(ack["location"])

    async def leave(self) -> Location:
        """Leave the floor (to no floor)."""
        return Location.from_wire((await self.request("presence.leave", {}))["location"])

    async def set_status(self, status: str, text: str = "", scope: str = "user") -> Presence:
        """Set the status; returns the *effective* one (protocol §6). Item access
        reads the acknowledgement, as before typed results (``["presence"]``)."""
        ack = await self.request("presence.status", {"status": status, "text": text, "scope": scope})
        return Presence.from_wire(ack["presence"]).with_compat(ack)

    async def knock(self, room_id: str, message: str = "") -> Knock:
        return Knock.from_wire((await self.request("knock.send", {"room_id": room_id, "message": message}))["knock"])

    async def answer(self, knock_id: str, admit: bool) -> KnockOutcome:
        """Admit or decline a knock. Item access reads the acknowledgement, as before
        typed results (``["outcome"]["outcome"]``); attributes are the outcome's."""
        ack = await self.request("knock.answer", {"knock_id": knock_id, "admit": admit})
        return KnockOutcome.from_wire(ack["outcome"]).with_compat(ack)

    async def cancel_knock(self, knock_id: str) -> KnockOutcome:
        return KnockOutcome.from_wire((await self.request("knock.cancel", {"knock_id": knock_id}))["outcome"])

    async def note(self, person: str | Member, text: str) -> None:
        """Leave a note for someone in do-not-disturb (``call.note``)."""
        await self.request("call.note", {"person": person_arg(person), "text": text})

    # ---------------------------------------------------------------- events
    @overload
    def on(self, event: str) -> Callable[[H], H]: ...
    @overload
    def on(self, event: str, handler: H) -> H: ...
    def on(self, event: str, handler: H | None = None) -> Any:
        """Call ``handler(payload)`` for every ``event`` received (see the module contract).

        ``client.on("knock.incoming", greet)`` or, as a decorator,
        ``@client.on("knock.incoming")``. ``handler`` may be ``async``. The payload is
        typed for the events of :data:`~signalling.wire.EVENT_PARSERS` (e.g. a
        :class:`Knock`), a :class:`Diff` for :data:`VIEW_DIFF`, the wire dict
        otherwise. Register before :meth:`connect` to see ``session.ready``.
        """
        if handler is None:

            def register(fn: H) -> H:
                self._handlers.add(event, fn)
                return fn

            return register
        self._handlers.add(event, handler)
        return handler

    def off(self, event: str, handler: Handler) -> None:
        self._handlers.remove(event, handler)

    def intercept(self, event: str, hook: Hook | None) -> None:
        """For extensions (``CallPeer``): ``await hook(payload)`` runs before the
        mailbox and the handlers get ``event``, so they see its effect. ``None``
        removes it. One hook per event."""
        if hook is None:
            self._intercepts.pop(event, None)
        elif event in self._intercepts and self._intercepts[event] != hook:
            raise RuntimeError(f"{event!r} is intercepted already (one CallPeer per client): close that first")
        else:
            self._intercepts[event] = hook

    async def next_event(self, event: str, predicate: Predicate | None = None, timeout: float = 5.0) -> Any:
        """The oldest ``event`` received and not yet taken that matches ``predicate``,
        as received (a dict); waits for one up to ``timeout`` (``TimeoutError``).
        Takes only that one: events it passes over stay for other readers."""
        return await self._mailbox.take(event, predicate, timeout)

    async def expect(self, event: str, predicate: Callable[[Any], bool] | None = None, timeout: float = 5.0) -> Any:
        """:meth:`next_event` with typed payloads: ``predicate`` sees and the result is
        what a handler of ``event`` would get (e.g. a :class:`RingOutcome`)."""
        if predicate is None:
            raw = await self._mailbox.take(event, None, timeout)
        else:
            check = predicate
            raw = await self._mailbox.take(event, lambda payload: check(parse_event(event, payload)), timeout)
        return parse_event(event, raw)

    def pending_events(self, event: str) -> list[Any]:
        """The events named ``event`` received since the last one :meth:`next_event` took, as
        received; empties the mailbox of ``event`` (passed-over ones included)."""
        return self._mailbox.drain(event)

    @property
    def dropped_events(self) -> int:
        """Events the mailbox dropped unread (over ``mailbox_limit`` per event name)."""
        return self._mailbox.dropped

    async def until_view(self, floor_id: str, predicate: Callable[[FloorView], bool], timeout: float = 5.0) -> FloorView:
        """Wait until the floor view satisfies ``predicate``."""
        view = self.views[floor_id]
        async with self._view_changed:
            await asyncio.wait_for(self._view_changed.wait_for(lambda: not view.stale and predicate(view)), timeout)
        return view

    # --------------------------------------------------------- event intake
    def _deliver(self, event: str, payload: Any) -> None:
        """Hand one event to the mailbox and to the handlers."""
        self._mailbox.put(event, payload)
        if self._handlers.wants(event):
            try:
                typed = parse_event(event, payload)
            except Exception as exc:  # a payload off its documented shape: loud, not fatal
                self._handlers.failed(event, exc)
                return
            self._handlers.dispatch(event, typed)

    async def _receive(self, event: str, payload: Any) -> None:
        hook = self._intercepts.get(event)
        if hook is not None:
            try:
                await hook(payload)
            except Exception as exc:
                self._handlers.failed(event, exc)
        self._deliver(event, payload)

    async def _on_any(self, event: str, *args: Any) -> None:
        await self._receive(event, args[0] if len(args) == 1 else args)

    def _on_applied(self, floor_id: str, diff: dict[str, Any]) -> None:
        self._deliver(VIEW_DIFF, Diff.from_wire(diff, floor_id))

    async def _on_connect_error(self, data: Any) -> None:
        # The server refuses with {message: code, data: {code, message}}.
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]
        self._refused = data

    async def _on_disconnect(self, *reason: Any) -> None:
        self._closed.set()

    async def _on_ready(self, data: Any) -> None:
        self.ready = data
        self._ready.set()
        await self._receive("session.ready", data)

    async def _on_diffs(self, frame: dict[str, Any]) -> None:
        await self._receive("floor.diffs", frame)
        view = self.views.get(frame["floor_id"])
        if view is None:
            return
        if self.drop_next_frame:
            self.drop_next_frame = False
            return
        if not view.apply_frame(frame) and self.auto_resync:
            self.resyncs += 1
            self._spawn_resync(view.floor_id)
        await self._notify_view()

    async def _on_seq(self, data: dict[str, Any]) -> None:
        """The server says where a floor stands (after an outage, or after it refused a
        snapshot): resync if behind, or if the view is stale (its snapshot was refused)."""
        await self._receive("floor.seq", data)
        view = self.views.get(data["floor_id"])
        if view is not None and (view.stale or int(data["seq"]) > view.seq) and self.auto_resync:
            self.resyncs += 1
            self._spawn_resync(view.floor_id)

    async def _on_degraded(self, data: dict[str, Any]) -> None:
        self.degraded = bool(data.get("degraded"))
        await self._receive("session.degraded", data)

    def _spawn_resync(self, floor_id: str) -> None:
        task = asyncio.create_task(self.watch(floor_id), name=f"resync:{floor_id}")
        self._tasks.add(task)
        task.add_done_callback(self._resync_done)

    def _resync_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The view stays stale; the next gap or floor.seq tries again.
            log.error("resync of a floor view failed", exc_info=task.exception())

    async def _notify_view(self) -> None:
        async with self._view_changed:
            self._view_changed.notify_all()
