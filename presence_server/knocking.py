"""Doorknocks on one node: who hears a knock, who may answer, and the one outcome.

The :class:`rooms.knocks.KnockBook` holds the state machine; this service adds the
people (occupants or owners), the timers and the delivery. Every outcome is
delivered once, as ``knock.outcome``, to the knocker and to everyone who heard
the knock or is inside the room now.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any, Callable

import structlog

from presence_server import metrics
from presence_server.outbox import Outbox
from presence_server.presence.service import PresenceHooks, PresenceService
from presence_server.presence.state import Status
from rooms.access import check_enter
from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from rooms.knocks import Knock, KnockBook, KnockOutcome, Resolution
from rooms.model import DoorState, Room

__all__ = ["KnockService"]

log = structlog.get_logger(__name__)


class KnockService(PresenceHooks):
    def __init__(
        self,
        presence: PresenceService,
        outbox: Outbox,
        *,
        timeout_seconds: float,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._presence = presence
        self._campus = presence.campus
        self._outbox = outbox
        self._clock = clock
        self.book = KnockBook(timeout=timeout_seconds, cooldown=cooldown_seconds)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        presence.add_hooks(self)

    def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    # --------------------------------------------------------------- requests
    def knock(self, actor: Actor, room_id: str, message: str) -> dict[str, Any]:
        room = self._campus.visible_room(actor, room_id)
        where = self._presence.location(actor.user_id)
        if where["room_id"] == room.id:
            raise DomainError(ErrorCode.ALREADY_INSIDE)
        if room.door is DoorState.OPEN:
            raise DomainError(ErrorCode.DOOR_OPEN)
        if room.door is DoorState.LOCKED:
            raise DomainError(ErrorCode.LOCKED)
        answerers = self._presence.answerers(room.floor_id, room.id)
        to_owners = not answerers
        if to_owners:
            # Nobody inside: the knock reaches the room's owners wherever they are.
            recipients = frozenset(
                owner for owner in room.owners if owner != actor.user_id and self._is_reachable(owner)
            )
            if not recipients:
                raise DomainError(ErrorCode.NOBODY_TO_ANSWER)
        else:
            recipients = frozenset(u.actor.user_id for u in answerers)
        now = self._clock()
        knock = self.book.open(
            "k-" + secrets.token_urlsafe(9),
            actor,
            room_id=room.id,
            floor_id=room.floor_id,
            recipients=recipients,
            to_owners=to_owners,
            message=message,
            now=now,
        )
        self._timers[knock.id] = asyncio.get_running_loop().call_later(
            knock.expires_at - now, self._expire, knock.id
        )
        wire = knock.to_wire()
        for user_id in recipients:
            self._outbox.post_user(user_id, "knock.incoming", {**wire, "silent": self._is_silent(user_id)})
        self._outbox.post_user(actor.user_id, "knock.pending", wire)
        log.info("knock_opened", knock=knock.id, room=room.id, recipients=len(recipients), to_owners=to_owners)
        return {"knock": wire}

    def answer(self, actor: Actor, knock_id: str, admit: bool) -> dict[str, Any]:
        knock = self.book.get(knock_id)
        room = self._campus.room(knock.room_id)
        if room is None:  # removed a moment ago; room_removed resolves the knock
            raise DomainError(ErrorCode.KNOCK_RESOLVED)
        if not self._may_answer(actor, knock, room):
            raise DomainError(ErrorCode.FORBIDDEN)
        if admit:
            knocker = knock.knocker
            occupants = self._presence.state.occupants(room.id, room.floor_id)
            # Check before resolving: a refused admit (room full, door locked
            # meanwhile) leaves the knock pending for another answer.
            check_enter(knocker, room, occupants=occupants, admitted=True)
            resolution = self._resolve(knock.id, KnockOutcome.ADMITTED, by=actor.user_id)
            if self._presence.state.user(knocker.user_id) is not None:
                self._presence.move(knocker, room.floor_id, room.id, admitted=True)
        else:
            resolution = self._resolve(knock.id, KnockOutcome.DECLINED, by=actor.user_id)
        return {"outcome": resolution.to_wire()}

    def cancel(self, actor: Actor, knock_id: str) -> dict[str, Any]:
        knock = self.book.get(knock_id)
        if knock.knocker.user_id != actor.user_id:
            raise DomainError(ErrorCode.FORBIDDEN)
        resolution = self._resolve(knock.id, KnockOutcome.CANCELLED, by=actor.user_id)
        return {"outcome": resolution.to_wire()}

    def _may_answer(self, actor: Actor, knock: Knock, room: Room) -> bool:
        if actor.is_guest:
            return False
        if room.is_owner(actor.user_id):
            return True
        return any(u.actor.user_id == actor.user_id for u in self._presence.answerers(room.floor_id, room.id))

    def _is_reachable(self, user_id: str) -> bool:
        """Online with a session, and allowed to answer (guests are not)."""
        user = self._presence.state.user(user_id)
        return user is not None and bool(user.sessions) and not user.actor.is_guest

    def pending_for(self, user_id: str) -> dict[str, Any]:
        """Knocks a (re)connecting session should know of: its own, and those it may answer."""
        own = self.book.pending_of(user_id)
        incoming = [
            {**k.to_wire(), "silent": self._is_silent(user_id)}
            for k in self.book.pending()
            if user_id in k.recipients
        ]
        return {"own": own.to_wire() if own else None, "incoming": incoming}

    def _is_silent(self, user_id: str) -> bool:
        user = self._presence.state.user(user_id)
        # Do-not-disturb hears a knock silently: flagged, not an interruption.
        return user is not None and user.status is Status.DO_NOT_DISTURB

    # -------------------------------------------------------------- outcomes
    def _resolve(self, knock_id: str, outcome: KnockOutcome, *, by: str | None = None, reason: str | None = None) -> Resolution:
        resolution = self.book.resolve(knock_id, outcome, now=self._clock(), by=by, reason=reason)
        timer = self._timers.pop(knock_id, None)
        if timer is not None:
            timer.cancel()
        knock = resolution.knock
        audience = set(knock.recipients)
        audience.update(u.actor.user_id for u in self._presence.state.occupants_of(knock.floor_id, knock.room_id))
        audience.add(knock.knocker.user_id)
        wire = resolution.to_wire()
        for user_id in audience:
            self._outbox.post_user(user_id, "knock.outcome", wire)
        metrics.KNOCKS.labels(outcome.value).inc()
        log.info("knock_resolved", knock=knock_id, outcome=outcome.value, by=by, reason=reason)
        return resolution

    def _expire(self, knock_id: str) -> None:
        self._timers.pop(knock_id, None)
        try:
            self._resolve(knock_id, KnockOutcome.EXPIRED, reason="timeout")
        except DomainError:
            pass  # answered in the same loop turn as the timer fired
        self.book.forget_cooldowns(self._clock())

    # ------------------------------------------------------ presence hooks
    def room_emptied(self, floor_id: str, room_id: str) -> None:
        for knock in self.book.pending_for_room(room_id):
            if not knock.to_owners:
                self._resolve(knock.id, KnockOutcome.DECLINED, reason="room_empty")

    def user_gone(self, user_id: str) -> None:
        knock = self.book.pending_of(user_id)
        if knock is not None:
            self._resolve(knock.id, KnockOutcome.CANCELLED, reason="knocker_left")

    def room_removed(self, room: Room) -> None:
        for knock in self.book.pending_for_room(room.id):
            self._resolve(knock.id, KnockOutcome.CANCELLED, reason="room_removed")
