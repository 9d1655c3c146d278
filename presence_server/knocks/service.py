"""Doorknocks: who hears a knock, who may answer, and the one outcome.

The :class:`~presence_server.knocks.store.KnockStore` decides outcomes (one per
knock, cluster-wide); this service adds the people (occupants or owners), the
expiry sweep and the delivery. Every outcome is
delivered once, as ``knock.outcome``, to the knocker and to everyone who heard
the knock or is inside the room now.

An admit must move the knocker (an await on the presence store) before the
outcome is final, so it *claims* the knock first: while the move is under way
every other answer already gets ``knock_resolved``; if the move is refused
(the room filled up), the claim is released and the knock stays pending.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import structlog

from presence_server import metrics
from presence_server.knocks.store import KnockStore, new_knock_id
from presence_server.outbox import Outbox
from presence_server.presence.service import PresenceHooks, PresenceService
from presence_server.presence.state import Status
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from rooms.access import is_room_owner
from rooms.actors import Actor
from rooms.audit import AuditSink
from rooms.errors import DomainError, ErrorCode, StoreUnavailable
from rooms.knocks import Knock, KnockOutcome, Resolution
from rooms.model import DoorState, Room
from rooms.person import PersonId

__all__ = ["KnockService"]

log = structlog.get_logger(__name__)


class KnockService(PresenceHooks):
    def __init__(
        self,
        presence: PresenceService,
        outbox: Outbox,
        *,
        store: KnockStore,
        clock: Callable[[], float] = time.time,
        audit: AuditSink | None = None,
    ) -> None:
        self._presence = presence
        self._audit = audit  # admissions are recorded; declines, cancels and movements never
        self._campus = presence.campus
        self._outbox = outbox
        self._clock = clock
        self.store = store
        self._sweeper: asyncio.Task[None] | None = None
        self._observers: list[Callable[[str, dict[str, Any]], None]] = []
        presence.add_hooks(self)

    def add_observer(self, observe: Callable[[str, dict[str, Any]], None]) -> None:
        """``observe(kind, data)`` hears each knock once cluster-wide, on the node that
        opened it (``"opened"``, the knock's wire form) or decided it (``"resolved"``,
        the resolution's). It must not block; exceptions are logged."""
        self._observers.append(observe)

    def _notify(self, kind: str, data: dict[str, Any]) -> None:
        for observe in self._observers:
            try:
                observe(kind, data)
            except Exception:
                log.exception("knock_observer_failed", kind=kind)

    def start(self) -> None:
        self._sweeper = supervised("knock_expiry", self._expire_forever)

    async def close(self) -> None:
        await cancel_and_wait(self._sweeper)
        self._sweeper = None

    # --------------------------------------------------------------- requests
    async def knock(self, actor: Actor, room_id: str, message: str) -> dict[str, Any]:
        room = self._campus.visible_room(actor, room_id)
        where = await self._presence.location(actor.person_id)
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
            owners = [o for o in room.owners if o != actor.person_id]  # persons, never bare subjects
            reachable = await asyncio.gather(*(self._is_reachable(o) for o in owners))
            recipients = frozenset(o for o, ok in zip(owners, reachable) if ok)
            if not recipients:
                raise DomainError(ErrorCode.NOBODY_TO_ANSWER)
        else:
            recipients = frozenset(m.person for m in answerers)
        now = self._clock()
        knock = await self.store.add(
            new_knock_id(room.floor_id),
            actor,
            room_id=room.id,
            floor_id=room.floor_id,
            recipients=recipients,
            to_owners=to_owners,
            message=message,
            now=now,
        )
        wire = knock.to_wire()
        for person in recipients:
            self._outbox.post_person(person, "knock.incoming", {**wire, "silent": await self._is_silent(person)})
        self._outbox.post_person(actor.person_id, "knock.pending", wire)
        self._notify("opened", wire)
        log.info("knock_opened", knock=knock.id, room=room.id, recipients=len(recipients), to_owners=to_owners)
        return {"knock": wire}

    async def answer(self, actor: Actor, knock_id: str, admit: bool) -> dict[str, Any]:
        knock = await self.store.get(knock_id)
        room = self._campus.room(knock.room_id)
        if room is None:  # removed a moment ago; room_removed resolves the knock
            raise DomainError(ErrorCode.KNOCK_RESOLVED)
        if not await self._may_answer(actor, knock, room):
            raise DomainError(ErrorCode.FORBIDDEN)
        if not admit:
            resolution = await self._resolve(knock_id, KnockOutcome.DECLINED, by=actor.person_id)
            return {"outcome": resolution.to_wire()}
        await self.store.claim(knock_id)  # from here on, every other answer is too late
        try:
            await self._presence.move(knock.knocker, room.floor_id, room.id, admitted=True)
        except BaseException:
            await self.store.release(knock_id)  # refused (room full, door locked meanwhile): still pending
            raise
        resolution = await self._resolve(knock_id, KnockOutcome.ADMITTED, by=actor.person_id, claimed=True)
        await self._audit_admission(actor, knock, room)
        return {"outcome": resolution.to_wire()}

    async def cancel(self, actor: Actor, knock_id: str) -> dict[str, Any]:
        knock = await self.store.get(knock_id)
        if knock.knocker.person_id != actor.person_id:
            raise DomainError(ErrorCode.FORBIDDEN)
        resolution = await self._resolve(knock.id, KnockOutcome.CANCELLED, by=actor.person_id)
        return {"outcome": resolution.to_wire()}

    async def pending_for(self, person: PersonId) -> dict[str, Any]:
        """Knocks a (re)connecting session should know of: its own, and those it may answer."""
        own = await self.store.pending_of(person)
        silent = await self._is_silent(person)
        incoming = [{**k.to_wire(), "silent": silent} for k in await self.store.incoming(person)]
        return {"own": own.to_wire() if own else None, "incoming": incoming}

    async def _audit_admission(self, actor: Actor, knock: Knock, room: Room) -> None:
        """``knock.admitted``: who let whom into which room, readable by whoever may read
        the room's own entries (CampusService.audit_scope)."""
        if self._audit is None:
            return
        floor = self._campus.floor(room.floor_id)
        scopes, project = self._campus.audit_scope(floor, fallback=[actor.municipality_id])
        target = {"room": room.id, "floor": room.floor_id, "person": knock.knocker.person_id, "knock": knock.id}
        try:
            await self._audit.record(
                "knock.admitted", actor=actor.person_id, target=target, scopes=scopes, project=project
            )
        except Exception:  # the admission happened: a broken audit must not undo or fail it
            log.exception("knock_audit_failed", knock=knock.id)

    async def _may_answer(self, actor: Actor, knock: Knock, room: Room) -> bool:
        if actor.is_guest:
            return False
        if is_room_owner(actor, room):
            return True
        return any(m.person == actor.person_id for m in await self._presence.answerers(room.floor_id, room.id))

    async def _is_reachable(self, person: PersonId) -> bool:
        """Online with a session, and allowed to answer (guests are not)."""
        member = await self._presence.store.member(person)
        return member is not None and member.sessions > 0 and not member.actor.is_guest

    async def _is_silent(self, person: PersonId) -> bool:
        # Do-not-disturb hears a knock silently: flagged, not an interruption.
        member = await self._presence.store.member(person)
        return member is not None and member.status is Status.DO_NOT_DISTURB

    # -------------------------------------------------------------- outcomes
    async def _resolve(
        self,
        knock_id: str,
        outcome: KnockOutcome,
        *,
        by: PersonId | None = None,
        reason: str | None = None,
        claimed: bool = False,
    ) -> Resolution:
        # The store decides the one outcome; everything after is telling people.
        resolution = await self.store.resolve(knock_id, outcome, now=self._clock(), by=by, reason=reason, claimed=claimed)
        metrics.KNOCKS.labels(outcome.value).inc()
        log.info("knock_resolved", knock=knock_id, outcome=outcome.value, by=by, reason=reason)
        knock = resolution.knock
        audience = set(knock.recipients)
        audience.update(m.person for m in await self._presence.store.occupants(knock.floor_id, knock.room_id))
        audience.add(knock.knocker.person_id)
        wire = resolution.to_wire()
        for person in audience:
            self._outbox.post_person(person, "knock.outcome", wire)
        self._notify("resolved", wire)
        return resolution

    async def _expire_forever(self) -> None:
        """Expire knocks whose time is up, whichever node opened them."""
        period = min(1.0, self.store.timeout / 4)
        while True:
            await asyncio.sleep(period)
            try:
                for knock in await self.store.due(self._clock()):
                    await self._resolve_if_pending(knock.id, KnockOutcome.EXPIRED, "timeout")
            except StoreUnavailable as exc:  # try again next round; anything else is a crash
                log.warning("knock_expiry_store_unavailable", error=str(exc))

    # ------------------------------------------------------ presence hooks
    async def room_emptied(self, floor_id: str, room_id: str) -> None:
        for knock in await self.store.pending_for_room(floor_id, room_id):
            if not knock.to_owners:
                await self._resolve_if_pending(knock.id, KnockOutcome.DECLINED, "room_empty")

    async def user_gone(self, person: PersonId) -> None:
        knock = await self.store.pending_of(person)
        if knock is not None:
            await self._resolve_if_pending(knock.id, KnockOutcome.CANCELLED, "knocker_left")

    async def room_removed(self, room: Room) -> None:
        for knock in await self.store.pending_for_room(room.floor_id, room.id):
            await self._resolve_if_pending(knock.id, KnockOutcome.CANCELLED, "room_removed")

    async def _resolve_if_pending(self, knock_id: str, outcome: KnockOutcome, reason: str) -> None:
        try:
            await self._resolve(knock_id, outcome, reason=reason)
        except DomainError:
            pass  # another answer won in the meantime
