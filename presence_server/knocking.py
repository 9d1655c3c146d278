"""Doorknocks: who hears a knock, who may answer, and the one outcome.

The :class:`rooms.knocks.KnockBook` holds the state machine; this service adds the
people (occupants or owners), the timers and the delivery. Every outcome is
delivered once, as ``knock.outcome``, to the knocker and to everyone who heard
the knock or is inside the room now.

An admit must move the knocker (an await on the presence store) before the
outcome is final, so it *claims* the knock first: while the move is under way
every other answer already gets ``knock_resolved``; if the move is refused
(the room filled up), the claim is released and the knock stays pending.
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
from presence_server.tasks import cancel_and_wait
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
        self._tasks: set[asyncio.Task[None]] = set()
        presence.add_hooks(self)

    async def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            await cancel_and_wait(task)

    # --------------------------------------------------------------- requests
    async def knock(self, actor: Actor, room_id: str, message: str) -> dict[str, Any]:
        room = self._campus.visible_room(actor, room_id)
        where = await self._presence.location(actor.user_id)
        if where["room_id"] == room.id:
            raise DomainError(ErrorCode.ALREADY_INSIDE)
        if room.door is DoorState.OPEN:
            raise DomainError(ErrorCode.DOOR_OPEN)
        if room.door is DoorState.LOCKED:
            raise DomainError(ErrorCode.LOCKED)
        answerers = await self._presence.answerers(room.floor_id, room.id)
        to_owners = not answerers
        if to_owners:
            # Nobody inside: the knock reaches the room's owners wherever they are.
            owners = [o for o in room.owners if o != actor.user_id]
            reachable = await asyncio.gather(*(self._is_reachable(o) for o in owners))
            recipients = frozenset(o for o, ok in zip(owners, reachable) if ok)
            if not recipients:
                raise DomainError(ErrorCode.NOBODY_TO_ANSWER)
        else:
            recipients = frozenset(m.user_id for m in answerers)
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
        self._arm_timer(knock)
        wire = knock.to_wire()
        for user_id in recipients:
            self._outbox.post_user(user_id, "knock.incoming", {**wire, "silent": await self._is_silent(user_id)})
        self._outbox.post_user(actor.user_id, "knock.pending", wire)
        log.info("knock_opened", knock=knock.id, room=room.id, recipients=len(recipients), to_owners=to_owners)
        return {"knock": wire}

    async def answer(self, actor: Actor, knock_id: str, admit: bool) -> dict[str, Any]:
        knock = self.book.get(knock_id)
        room = self._campus.room(knock.room_id)
        if room is None:  # removed a moment ago; room_removed resolves the knock
            raise DomainError(ErrorCode.KNOCK_RESOLVED)
        if not await self._may_answer(actor, knock, room):
            raise DomainError(ErrorCode.FORBIDDEN)
        if not admit:
            resolution = await self._resolve(knock_id, KnockOutcome.DECLINED, by=actor.user_id)
            return {"outcome": resolution.to_wire()}
        self.book.claim(knock_id)  # from here on, every other answer is too late
        try:
            await self._presence.move(knock.knocker, room.floor_id, room.id, admitted=True)
        except BaseException:
            self.book.release(knock_id)  # refused (room full, door locked meanwhile): still pending
            if knock_id not in self._timers:  # its timer fired while it was claimed
                self._arm_timer(knock)
            raise
        resolution = await self._resolve(knock_id, KnockOutcome.ADMITTED, by=actor.user_id, claimed=True)
        return {"outcome": resolution.to_wire()}

    async def cancel(self, actor: Actor, knock_id: str) -> dict[str, Any]:
        knock = self.book.get(knock_id)
        if knock.knocker.user_id != actor.user_id:
            raise DomainError(ErrorCode.FORBIDDEN)
        resolution = await self._resolve(knock.id, KnockOutcome.CANCELLED, by=actor.user_id)
        return {"outcome": resolution.to_wire()}

    async def pending_for(self, user_id: str) -> dict[str, Any]:
        """Knocks a (re)connecting session should know of: its own, and those it may answer."""
        own = self.book.pending_of(user_id)
        silent = await self._is_silent(user_id)
        incoming = [{**k.to_wire(), "silent": silent} for k in self.book.pending() if user_id in k.recipients]
        return {"own": own.to_wire() if own else None, "incoming": incoming}

    async def _may_answer(self, actor: Actor, knock: Knock, room: Room) -> bool:
        if actor.is_guest:
            return False
        if room.is_owner(actor.user_id):
            return True
        return any(m.user_id == actor.user_id for m in await self._presence.answerers(room.floor_id, room.id))

    async def _is_reachable(self, user_id: str) -> bool:
        """Online with a session, and allowed to answer (guests are not)."""
        member = await self._presence.store.member(user_id)
        return member is not None and member.sessions > 0 and not member.actor.is_guest

    async def _is_silent(self, user_id: str) -> bool:
        # Do-not-disturb hears a knock silently: flagged, not an interruption.
        member = await self._presence.store.member(user_id)
        return member is not None and member.status is Status.DO_NOT_DISTURB

    # -------------------------------------------------------------- outcomes
    async def _resolve(
        self,
        knock_id: str,
        outcome: KnockOutcome,
        *,
        by: str | None = None,
        reason: str | None = None,
        claimed: bool = False,
    ) -> Resolution:
        # Synchronous up to here: the book decides the one outcome before any await.
        resolution = self.book.resolve(knock_id, outcome, now=self._clock(), by=by, reason=reason, claimed=claimed)
        timer = self._timers.pop(knock_id, None)
        if timer is not None:
            timer.cancel()
        metrics.KNOCKS.labels(outcome.value).inc()
        log.info("knock_resolved", knock=knock_id, outcome=outcome.value, by=by, reason=reason)
        knock = resolution.knock
        audience = set(knock.recipients)
        audience.update(m.user_id for m in await self._presence.store.occupants(knock.floor_id, knock.room_id))
        audience.add(knock.knocker.user_id)
        wire = resolution.to_wire()
        for user_id in audience:
            self._outbox.post_user(user_id, "knock.outcome", wire)
        return resolution

    def _arm_timer(self, knock: Knock) -> None:
        delay = max(0.0, knock.expires_at - self._clock())
        self._timers[knock.id] = asyncio.get_running_loop().call_later(delay, self._spawn_expire, knock.id)

    def _spawn_expire(self, knock_id: str) -> None:
        self._timers.pop(knock_id, None)
        task = asyncio.create_task(self._expire(knock_id), name=f"knock-expire-{knock_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire(self, knock_id: str) -> None:
        try:
            await self._resolve(knock_id, KnockOutcome.EXPIRED, reason="timeout")
        except DomainError:
            pass  # answered (or being admitted) as the timer fired
        self.book.forget_cooldowns(self._clock())

    # ------------------------------------------------------ presence hooks
    async def room_emptied(self, floor_id: str, room_id: str) -> None:
        for knock in self.book.pending_for_room(room_id):
            if not knock.to_owners:
                await self._resolve_if_pending(knock.id, KnockOutcome.DECLINED, "room_empty")

    async def user_gone(self, user_id: str) -> None:
        knock = self.book.pending_of(user_id)
        if knock is not None:
            await self._resolve_if_pending(knock.id, KnockOutcome.CANCELLED, "knocker_left")

    async def room_removed(self, room: Room) -> None:
        for knock in self.book.pending_for_room(room.id):
            await self._resolve_if_pending(knock.id, KnockOutcome.CANCELLED, "room_removed")

    async def _resolve_if_pending(self, knock_id: str, outcome: KnockOutcome, reason: str) -> None:
        try:
            await self._resolve(knock_id, outcome, reason=reason)
        except DomainError:
            pass  # another answer won in the meantime
