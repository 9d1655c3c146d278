"""The Socket.IO transport: how audiences on this node are reached.

Floor watchers connected straight over WebSocket are written to by the fast
path (:class:`presence_server.fanout.FloorFanout`); watchers that came over
long-polling sit in the Socket.IO room ``f:<floor id>``. A user's sessions are
kept in a plain map for direct events (knocks, outcomes), which are few: a
Socket.IO room per user would cost a bidict per online user. This module
is the only place that knows those names; the domain addresses floors, users and
sessions through :class:`presence_server.outbox.Transport`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping, Protocol

import socketio

from presence_server.diffs import FLOOR_DIFFS_EVENT, Diffs, floor_diffs_json, floor_diffs_payload
from presence_server.fanout import FloorFanout
from presence_server.outbox import Outbox, Transport
from rooms.person import PersonId

__all__ = ["GatewayTransport", "NodeTransport", "SocketIOTransport", "floor_room"]


class GatewayTransport(Protocol):
    """What the gateway needs from a transport besides delivery (one node or cluster)."""

    async def attach(self, sid: str, person: PersonId, environ: Mapping[str, Any]) -> None: ...

    def detach(self, sid: str) -> None: ...

    async def watch(self, sid: str, floor_id: str) -> None: ...

    def watch_started(self, floor_id: str, seq: int) -> None: ...

    def watch_aborted(self, floor_id: str) -> None: ...

    async def unwatch(self, sid: str, floor_id: str) -> None: ...

    def post_welcome(self, sid: str, payload: dict[str, Any]) -> None: ...


class NodeTransport(Transport, GatewayTransport, Protocol):
    """A node's whole transport: delivery for the outbox, sessions and watches for
    the gateway (:class:`SocketIOTransport`, or the cluster transport around it)."""


def floor_room(floor_id: str) -> str:
    return "f:" + floor_id


class SocketIOTransport:
    def __init__(self, sio: socketio.AsyncServer, fanout: FloorFanout) -> None:
        self._sio = sio
        self.fanout = fanout
        self._polling: dict[str, set[str]] = {}  # floor -> sids watching through Socket.IO rooms
        self._user_sids: dict[PersonId, set[str]] = {}  # person -> their sessions on this node
        self._sid_user: dict[str, PersonId] = {}
        self.outbox: Outbox | None = None  # set once wiring is complete

    # ------------------------------------------------------------- sessions
    async def attach(self, sid: str, person: PersonId, environ: Mapping[str, Any]) -> None:
        """A new session: note its user; remember its socket if it is a direct WebSocket."""
        self._user_sids.setdefault(person, set()).add(sid)
        self._sid_user[sid] = person
        transport = _direct_websocket(environ)
        if transport is not None:
            self.fanout.register(sid, transport)

    def detach(self, sid: str) -> None:
        """The session is gone (Socket.IO leaves its rooms by itself)."""
        self.fanout.forget(sid)
        person = self._sid_user.pop(sid, None)
        if person is not None:
            sids = self._user_sids[person]
            sids.discard(sid)
            if not sids:
                del self._user_sids[person]
        for floor_id in [f for f, sids in self._polling.items() if sid in sids]:
            self._drop_polling(floor_id, sid)

    async def watch(self, sid: str, floor_id: str) -> None:
        if self.fanout.is_direct(sid):
            self.fanout.watch(floor_id, sid)
        else:
            self._polling.setdefault(floor_id, set()).add(sid)
            await self._sio.enter_room(sid, floor_room(floor_id))

    def watch_started(self, floor_id: str, seq: int) -> None:
        """The snapshot a watch began with was read at ``seq`` (only cluster mode cares)."""

    def watch_aborted(self, floor_id: str) -> None:
        """The snapshot of a watch could not be read (only cluster mode cares)."""

    async def unwatch(self, sid: str, floor_id: str) -> None:
        if self.fanout.is_direct(sid):
            self.fanout.unwatch(floor_id, sid)
        else:
            self._drop_polling(floor_id, sid)
            await self._sio.leave_room(sid, floor_room(floor_id))

    def _drop_polling(self, floor_id: str, sid: str) -> None:
        sids = self._polling.get(floor_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._polling[floor_id]

    # ------------------------------------------------------------- delivery
    async def send_diffs(self, floor_id: str, diffs: Diffs) -> None:
        """One ``floor.diffs`` frame, serialised here once for every direct watcher
        (remote diffs spliced in as they came off the bus)."""
        if self.fanout.watchers(floor_id):
            self.fanout.broadcast_json(floor_id, FLOOR_DIFFS_EVENT, floor_diffs_json(floor_id, diffs))
        if floor_id in self._polling:
            await self._sio.emit(FLOOR_DIFFS_EVENT, floor_diffs_payload(floor_id, diffs), to=floor_room(floor_id))

    async def send_floor_event(self, floor_id: str, event: str, payload: dict[str, Any]) -> None:
        """An event other than diffs to a floor's watchers here (e.g. ``floor.seq``)."""
        self.fanout.broadcast(floor_id, event, payload)
        if floor_id in self._polling:
            await self._sio.emit(event, payload, to=floor_room(floor_id))

    async def send_person(self, person: PersonId, event: str, payload: dict[str, Any]) -> None:
        for sid in list(self._user_sids.get(person, ())):
            await self._sio.emit(event, payload, to=sid)

    async def send_session(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        await self._sio.emit(event, payload, to=sid)

    async def close_floor(self, floor_id: str) -> None:
        self.fanout.close_floor(floor_id)
        self._polling.pop(floor_id, None)
        await self._sio.close_room(floor_room(floor_id))

    def post_welcome(self, sid: str, payload: dict[str, Any]) -> None:
        """``session.ready``: queued behind the connect so it arrives after it."""
        assert self.outbox is not None
        self.outbox.post_session(sid, "session.ready", payload)


def _direct_websocket(environ: Mapping[str, Any]) -> asyncio.Transport | None:
    """The raw connection of a session that opened straight over WebSocket.

    Only then is the connect request the WebSocket itself; a session that
    started with long-polling upgrades on another request and stays on the
    Socket.IO path."""
    if "transport=websocket" not in str(environ.get("QUERY_STRING", "")):
        return None
    request = environ.get("aiohttp.request")
    transport = getattr(request, "transport", None)
    return transport if isinstance(transport, asyncio.Transport) else None
