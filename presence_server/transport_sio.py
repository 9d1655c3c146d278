"""The Socket.IO transport: audiences as Socket.IO rooms on this node.

A floor's watchers sit in the room ``f:<floor id>``, a user's sessions in
``u:<user id>``. This module is the only place that knows those names; the domain
addresses floors, users and sessions through :class:`presence_server.outbox.Transport`.
"""

from __future__ import annotations

from typing import Any

import socketio

from presence_server.outbox import Outbox

__all__ = ["SocketIOTransport", "floor_room", "user_room"]


def floor_room(floor_id: str) -> str:
    return "f:" + floor_id


def user_room(user_id: str) -> str:
    return "u:" + user_id


class SocketIOTransport:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self.outbox: Outbox | None = None  # set once wiring is complete

    async def send_floor(self, floor_id: str, event: str, payload: dict[str, Any]) -> None:
        await self._sio.emit(event, payload, to=floor_room(floor_id))

    async def send_user(self, user_id: str, event: str, payload: dict[str, Any]) -> None:
        await self._sio.emit(event, payload, to=user_room(user_id))

    async def send_session(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        await self._sio.emit(event, payload, to=sid)

    async def close_floor(self, floor_id: str) -> None:
        await self._sio.close_room(floor_room(floor_id))

    async def attach_user(self, sid: str, user_id: str) -> None:
        await self._sio.enter_room(sid, user_room(user_id))

    async def watch(self, sid: str, floor_id: str) -> None:
        await self._sio.enter_room(sid, floor_room(floor_id))

    async def unwatch(self, sid: str, floor_id: str) -> None:
        await self._sio.leave_room(sid, floor_room(floor_id))

    def post_welcome(self, sid: str, payload: dict[str, Any]) -> None:
        """``session.ready``: queued behind the connect so it arrives after it."""
        assert self.outbox is not None
        self.outbox.post_session(sid, "session.ready", payload)
