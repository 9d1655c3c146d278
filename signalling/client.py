"""A Python client of the virtual office: tests, bots and load tests use it.

Speaks the real protocol over a real Socket.IO connection (python-socketio's
``AsyncClient``). Requests are acknowledged events; refusals raise
:class:`RequestError` carrying the server's error code. Watched floors are kept
as :class:`FloorView` objects and resynced by themselves when a gap shows up.

Calls (WebRTC via aiortc) are added on top of this by the call-brokering work.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, Callable, Sequence

import socketio

from signalling.floorview import FloorView

__all__ = ["OfficeClient", "RequestError", "ConnectRefused"]


class RequestError(Exception):
    def __init__(self, event: str, error: dict[str, Any]) -> None:
        super().__init__(f"{event}: {error.get('code')}: {error.get('message')}")
        self.event = event
        self.error = error
        self.code: str = error.get("code", "")


class ConnectRefused(Exception):
    def __init__(self, data: Any) -> None:
        super().__init__(f"connection refused: {data}")
        self.data = data
        self.code: str = data.get("code", "") if isinstance(data, dict) else ""


class OfficeClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        lang: str = "en",
        auto_resync: bool = True,
        request_timeout: float = 5.0,
        transports: Sequence[str] = ("websocket",),
    ) -> None:
        self.url = url
        self.token = token
        self.lang = lang
        self.auto_resync = auto_resync
        self.request_timeout = request_timeout
        self.transports = list(transports)
        self.sio = socketio.AsyncClient(reconnection=False)
        self.views: dict[str, FloorView] = {}
        self.ready: dict[str, Any] | None = None
        self.resyncs = 0
        self._queues: defaultdict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self._refused: Any = None
        self._ready = asyncio.Event()
        self._view_changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.drop_next_frame = False  # tests: simulate one lost frame
        self.sio.on("*", self._on_any)
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("session.ready", self._on_ready)
        self.sio.on("floor.diffs", self._on_diffs)
        self.sio.on("floor.seq", self._on_seq)
        self.sio.on("session.degraded", self._on_degraded)
        self.degraded = False

    # ------------------------------------------------------------ connection
    async def connect(self, timeout: float = 5.0) -> OfficeClient:
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
        await asyncio.wait_for(self._ready.wait(), timeout)
        return self

    async def disconnect(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.sio.connected and self.sio.transport() == "polling":
            # The engine.io client would wait for its pending long-poll, which the
            # server answers only at the next ping (25 s): send CLOSE and go.
            await self.sio.eio.disconnect(abort=True)
        if self.sio.connected:
            await self.sio.disconnect()

    @property
    def sid(self) -> str | None:
        return self.sio.sid

    @property
    def person(self) -> str:
        """Who this client is: ``"municipality/user_id"`` (a user id alone is unique
        only within its town)."""
        assert self.ready is not None
        return str(self.ready["me"]["person"])

    # -------------------------------------------------------------- requests
    async def call(self, event: str, data: Any = None, timeout: float | None = None) -> dict[str, Any]:
        """Send a request and return the raw acknowledgement."""
        ack = await self.sio.call(event, data, timeout=timeout or self.request_timeout)
        return ack  # type: ignore[no-any-return]

    async def request(self, event: str, data: Any = None, timeout: float | None = None) -> dict[str, Any]:
        """Send a request; return its result, or raise :class:`RequestError`."""
        ack = await self.call(event, data, timeout)
        if not ack.get("ok"):
            raise RequestError(event, ack.get("error", {}))
        return ack

    async def watch(self, floor_id: str) -> FloorView:
        view = self.views.get(floor_id)
        if view is None:
            view = self.views[floor_id] = FloorView(floor_id)
        for _ in range(5):  # a gap inside the early frames asks for one more snapshot
            view.stale = True
            result = await self.request("floor.watch", {"floor_id": floor_id})
            if view.load_snapshot(result["snapshot"]):
                break
        await self._notify_view()
        return view

    async def move(self, floor_id: str, room_id: str | None = None) -> dict[str, Any]:
        return (await self.request("presence.move", {"floor_id": floor_id, "room_id": room_id}))["location"]

    async def set_status(self, status: str, text: str = "", scope: str = "user") -> dict[str, Any]:
        return await self.request("presence.status", {"status": status, "text": text, "scope": scope})

    async def knock(self, room_id: str, message: str = "") -> dict[str, Any]:
        return (await self.request("knock.send", {"room_id": room_id, "message": message}))["knock"]

    async def answer(self, knock_id: str, admit: bool) -> dict[str, Any]:
        return await self.request("knock.answer", {"knock_id": knock_id, "admit": admit})

    # ---------------------------------------------------------------- events
    async def next_event(
        self, event: str, predicate: Callable[[Any], bool] | None = None, timeout: float = 5.0
    ) -> Any:
        """The next ``event`` (matching ``predicate``) received; earlier non-matching ones are consumed."""
        queue = self._queues[event]

        async def _next() -> Any:
            while True:
                payload = await queue.get()
                if predicate is None or predicate(payload):
                    return payload

        return await asyncio.wait_for(_next(), timeout)

    def pending_events(self, event: str) -> list[Any]:
        """Everything received of ``event`` and not yet consumed (drains the queue)."""
        queue = self._queues[event]
        items = []
        while not queue.empty():
            items.append(queue.get_nowait())
        return items

    async def until_view(self, floor_id: str, predicate: Callable[[FloorView], bool], timeout: float = 5.0) -> FloorView:
        """Wait until the floor view satisfies ``predicate``."""
        view = self.views[floor_id]
        async with self._view_changed:
            await asyncio.wait_for(self._view_changed.wait_for(lambda: not view.stale and predicate(view)), timeout)
        return view

    async def _on_any(self, event: str, *args: Any) -> None:
        self._queues[event].put_nowait(args[0] if len(args) == 1 else args)

    async def _on_connect_error(self, data: Any) -> None:
        # The server refuses with {message: code, data: {code, message}}.
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]
        self._refused = data

    async def _on_ready(self, data: Any) -> None:
        self.ready = data
        self._ready.set()
        self._queues["session.ready"].put_nowait(data)

    async def _on_diffs(self, frame: dict[str, Any]) -> None:
        self._queues["floor.diffs"].put_nowait(frame)
        view = self.views.get(frame["floor_id"])
        if view is None:
            return
        if self.drop_next_frame:
            self.drop_next_frame = False
            return
        if not view.apply_frame(frame) and self.auto_resync:
            self.resyncs += 1
            await self._spawn_resync(view.floor_id)
        await self._notify_view()

    async def _on_seq(self, data: dict[str, Any]) -> None:
        """The server says where a floor stands (after an outage, or after it refused a
        snapshot): resync if behind, or if the view is stale (its snapshot was refused)."""
        self._queues["floor.seq"].put_nowait(data)
        view = self.views.get(data["floor_id"])
        if view is not None and (view.stale or int(data["seq"]) > view.seq) and self.auto_resync:
            self.resyncs += 1
            await self._spawn_resync(view.floor_id)

    async def _on_degraded(self, data: dict[str, Any]) -> None:
        self.degraded = bool(data.get("degraded"))
        self._queues["session.degraded"].put_nowait(data)

    async def _spawn_resync(self, floor_id: str) -> None:
        task = asyncio.create_task(self.watch(floor_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify_view(self) -> None:
        async with self._view_changed:
            self._view_changed.notify_all()
