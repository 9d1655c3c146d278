"""Room calls on the server: who is in which call, ICE servers, and the relay.

The :class:`signalling.calls.CallBook` decides membership and the relay rule;
this service checks what the book cannot (visibility, being inside the room),
mints ICE/TURN credentials, and delivers: ``call.updated`` to every member when
membership changes, ``call.signal`` to one member from another. Media never
passes the server. Leaving the room, or going offline after the grace period,
leaves the call.

Single node for now: in cluster mode the calls need a shared call store
(docs/calls.md), so the service is disabled there and says so (``unavailable``).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import structlog

from presence_server.config import Settings
from presence_server.outbox import Outbox
from presence_server.presence.service import PresenceHooks, PresenceService
from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from signalling.calls import Call, CallBook
from signalling.turn import ice_servers

__all__ = ["CallService"]

log = structlog.get_logger(__name__)


class CallService(PresenceHooks):
    def __init__(
        self,
        presence: PresenceService,
        outbox: Outbox,
        settings: Settings,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._presence = presence
        self._campus = presence.campus
        self._outbox = outbox
        self._ice = settings.ice
        self._max_signal = settings.calls.max_signal_bytes
        self._clock = clock
        self.enabled = enabled
        self.book = CallBook(max_mesh=settings.calls.max_mesh)
        presence.add_hooks(self)

    def ice_servers(self, user_id: str) -> list[dict[str, Any]]:
        secret = self._ice.turn_secret.get_secret_value() if self._ice.turn_secret else None
        return ice_servers(
            self._ice.stun_urls, self._ice.turn_urls, secret, user_id, self._clock(), self._ice.turn_ttl_seconds
        )

    # --------------------------------------------------------------- requests
    async def join(self, actor: Actor, room_id: str) -> dict[str, Any]:
        self._require_enabled()
        room = self._campus.visible_room(actor, room_id)
        where = await self._presence.location(actor.user_id)
        if where["room_id"] != room.id:
            raise DomainError(ErrorCode.FORBIDDEN, "join a room's call from inside the room")
        joined = self.book.join_room_call(actor.user_id, room.id, self._clock())
        if joined.left is not None:
            self._announce(joined.left)
        self._announce(joined.call)
        log.info("call_joined", call=joined.call.id, room=room.id, members=len(joined.call.members))
        return {"call": joined.call.to_wire(), "ice_servers": self.ice_servers(actor.user_id)}

    async def leave(self, actor: Actor) -> dict[str, Any]:
        self._require_enabled()
        call = self.book.leave(actor.user_id, self._clock())
        if call is not None:
            self._announce(call)
        return {}

    async def signal(self, actor: Actor, call_id: str, to: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """Relay one signalling message to one member of the sender's call."""
        self._require_enabled()
        call = self.book.call_of(actor.user_id)
        if call is None or call.id != call_id:
            raise DomainError(ErrorCode.FORBIDDEN, "not_in_call")
        self.book.check_relay(actor.user_id, to)
        size = len(json.dumps(data, separators=(",", ":")).encode())
        if size > self._max_signal:
            raise DomainError(ErrorCode.PAYLOAD_TOO_LARGE, f"{size} > {self._max_signal} bytes")
        message = {"call_id": call_id, "from": actor.user_id, "kind": kind, "data": data}
        self._outbox.post_user(to, "call.signal", message)  # FIFO per sender: order is kept
        return {}

    def _require_enabled(self) -> None:
        if not self.enabled:
            raise DomainError(ErrorCode.UNAVAILABLE, "calls are not available in cluster mode yet")

    def _announce(self, call: Call) -> None:
        wire = call.to_wire()
        for member in call.members:
            self._outbox.post_user(member, "call.updated", wire)

    # ------------------------------------------------------ presence hooks
    async def user_left_room(self, user_id: str, floor_id: str, room_id: str) -> None:
        call = self.book.call_of(user_id)
        if call is not None and call.room_id == room_id:
            left = self.book.leave(user_id, self._clock())
            if left is not None:
                self._announce(left)

    async def user_gone(self, user_id: str) -> None:
        left = self.book.leave(user_id, self._clock())
        if left is not None:
            self._announce(left)
