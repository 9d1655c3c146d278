"""Room calls on the server: who is in which call, ICE servers, and the relay.

The :class:`signalling.calls.CallBook` decides membership and the relay rule;
this service checks what the book cannot (visibility, being inside the room,
do-not-disturb), mints ICE/TURN credentials, and delivers: ``call.updated`` to
every member when membership changes, ``call.signal`` to one member from
another, ``call.ring`` to every session of a callee and ``call.ring_outcome`` to
both parties. Media never passes the server. Leaving the room, or going offline
after the grace period, leaves the call; a ring nobody answers expires.

Where calls live is the :class:`~presence_server.calls.store.CallStore` given:
this node's memory, or Redis in cluster mode, where every node sees the same
calls and rings and a ring still has exactly one outcome. Signals and call
events reach members on other nodes through the outbox's user channels, which
keep each sender's order.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any, Awaitable, Callable, Final

import structlog

from presence_server import metrics
from presence_server.config import Settings
from presence_server.outbox import Outbox
from presence_server.presence.service import PresenceHooks, PresenceService
from presence_server.presence.store import Member
from presence_server.presence.state import Status
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode, StoreUnavailable
from rooms.person import PersonId
from presence_server.calls.store import CallStore
from signalling.calls import Call, RingOutcome, RingResolution
from signalling.turn import ice_servers

__all__ = ["CallService"]

log = structlog.get_logger(__name__)

#: Joins remembered for the set-up time metric; beyond this the oldest are dropped.
_SETUP_TRACKED: Final = 10_000

#: Whether a caller may ring a person whose floor they cannot see (the platform directory).
Reachable = Callable[[Actor, PersonId], Awaitable[bool]]


class CallService(PresenceHooks):
    def __init__(
        self,
        presence: PresenceService,
        outbox: Outbox,
        settings: Settings,
        store: CallStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._presence = presence
        self._campus = presence.campus
        self._outbox = outbox
        self._ice = settings.ice
        self._max_signal = settings.calls.max_signal_bytes
        self._clock = clock
        self.store = store
        # (call id, person) -> when they entered it, on this node (insertion order: oldest first)
        self._joined_at: dict[tuple[str, PersonId], float] = {}
        # person -> the room whose call they joined through this node: if Redis forgets
        # them (this node fenced, or Redis emptied), rejoin_room_call puts them back.
        self._room_calls: dict[PersonId, str] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._reachable: Reachable | None = None
        presence.add_hooks(self)
        presence.add_annotator(self._in_call)

    def reachable_beyond_floors(self, reachable: Reachable) -> None:
        """Also let callers ring (and leave notes for) people ``reachable`` says yes to
        although their floor is out of the caller's sight: the platform directory's
        opted-in specialists (docs/portal.md). Their floor stays unrevealed."""
        self._reachable = reachable

    async def _check_callee(self, actor: Actor, callee_id: PersonId) -> Member:
        """The callee, if online and on a floor the caller may see, or reachable beyond
        floors; otherwise ``not_found`` (the same for offline and out of sight)."""
        callee = await self._presence.store.member(callee_id)
        if callee is None:
            raise DomainError(ErrorCode.NOT_FOUND, "user")
        if callee.floor_id is not None and self._campus.can_see_floor(actor, callee.floor_id):
            return callee
        if self._reachable is not None and callee_id != actor.person_id and await self._reachable(actor, callee_id):
            return callee
        raise DomainError(ErrorCode.NOT_FOUND, "user")  # nowhere the caller may look

    async def _in_call(self, persons: list[PersonId]) -> dict[PersonId, dict[str, Any]]:
        """Snapshot annotation: ``in_call`` only for people in a call (absent otherwise,
        as in ``joined`` diffs, so views built from diffs equal fresh snapshots)."""
        return {person: {"in_call": call_id} for person, call_id in (await self.store.calls_of(persons)).items()}

    def ice_servers(self, person: PersonId) -> list[dict[str, Any]]:
        secret = self._ice.turn_secret.get_secret_value() if self._ice.turn_secret else None
        return ice_servers(
            self._ice.stun_urls, self._ice.turn_urls, secret, person, self._clock(), self._ice.turn_ttl_seconds
        )

    # --------------------------------------------------------------- requests
    async def join(self, actor: Actor, room_id: str) -> dict[str, Any]:
        room = self._campus.visible_room(actor, room_id)
        where = await self._presence.location(actor.person_id)
        if where["room_id"] != room.id:
            raise DomainError(ErrorCode.FORBIDDEN, "join a room's call from inside the room")
        joined = await self.store.join_room_call(actor.person_id, room.id, self._clock())
        if joined.left is not None:
            await self._announce(joined.left)
        await self._announce(joined.call)
        await self._show_on_floor({actor.person_id})
        self._room_calls[actor.person_id] = room.id
        log.info("call_joined", call=joined.call.id, room=room.id, members=len(joined.call.members))
        self._setup_started(joined.call.id, actor.person_id)
        return {"call": joined.call.to_wire(), "ice_servers": self.ice_servers(actor.person_id)}

    async def leave(self, actor: Actor) -> dict[str, Any]:
        self._room_calls.pop(actor.person_id, None)
        call = await self.store.leave(actor.person_id, self._clock())
        if call is not None:
            await self._announce(call)
            await self._show_on_floor(self._ended_with(call, actor.person_id))
        return {}

    async def signal(self, actor: Actor, call_id: str, to: PersonId, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """Relay one signalling message to one member of the sender's call."""
        await self.store.check_relay(actor.person_id, to, call_id)
        size = len(json.dumps(data, separators=(",", ":")).encode())
        if size > self._max_signal:
            raise DomainError(
                ErrorCode.PAYLOAD_TOO_LARGE, f"{size} > {self._max_signal} bytes", limit=self._max_signal
            )
        if kind == "answer":
            self._setup_done(call_id, actor.person_id, to)
        message = {"call_id": call_id, "from": actor.person_id, "kind": kind, "data": data}
        self._outbox.post_person(to, "call.signal", message)  # FIFO per sender: order is kept
        return {}

    # ------------------------------------------------------------ direct calls
    async def ring(self, actor: Actor, callee_id: PersonId) -> dict[str, Any]:
        """Ring a colleague whose floor the caller may see, or a platform-published
        specialist (:meth:`reachable_beyond_floors`); every session of theirs rings."""
        callee = await self._check_callee(actor, callee_id)
        ring = await self.store.ring(
            "ring-" + secrets.token_urlsafe(9),
            actor,
            callee_id,
            callee_dnd=callee.status is Status.DO_NOT_DISTURB,
            now=self._clock(),
        )
        self._outbox.post_person(callee_id, "call.ring", {"ring": ring.to_wire()})  # as documented: {ring}
        return {"ring": ring.to_wire(), "ice_servers": self.ice_servers(actor.person_id)}

    async def answer(self, actor: Actor, ring_id: str, accept: bool) -> dict[str, Any]:
        resolution = await self.store.answer(ring_id, actor.person_id, accept, self._clock())
        await self._resolved(resolution)
        if resolution.call is not None:
            await self._show_on_floor(set(resolution.call.members))
        result: dict[str, Any] = {"outcome": resolution.to_wire()}
        if resolution.call is not None:
            result.update(call=resolution.call.to_wire(), ice_servers=self.ice_servers(actor.person_id))
            for member in resolution.call.members:
                self._setup_started(resolution.call.id, member)
        return result

    async def rejoin_room_call(self, actor: Actor) -> None:
        """Put a user Redis forgot (and whose node registered them again) back into
        the room call they had joined through this node, if they are in that room
        again; idempotent. Everyone in the call hears ``call.updated`` as for a join."""
        room_id = self._room_calls.get(actor.person_id)
        if room_id is None:
            return
        try:
            await self.join(actor, room_id)
        except DomainError:  # no longer inside, the room is gone, or the call is full
            self._room_calls.pop(actor.person_id, None)

    async def cancel(self, actor: Actor, ring_id: str) -> dict[str, Any]:
        resolution = await self.store.cancel(ring_id, actor.person_id, self._clock())
        await self._resolved(resolution)
        return {"outcome": resolution.to_wire()}

    async def note(self, actor: Actor, callee_id: PersonId, text: str) -> dict[str, Any]:
        """A short note for a callee in do-not-disturb, shown when they are available again."""
        callee = await self._check_callee(actor, callee_id)
        if callee.status is not Status.DO_NOT_DISTURB:
            raise DomainError(ErrorCode.CONFLICT, "notes are for colleagues in do-not-disturb: ring instead")
        await self.store.leave_note(actor, callee_id, text, self._clock())
        return {}

    async def _resolved(self, resolution: RingResolution) -> None:
        wire = resolution.to_wire()
        for person in {resolution.ring.caller.person_id, resolution.ring.callee}:
            self._outbox.post_person(person, "call.ring_outcome", wire)
        for call in resolution.left:
            await self._announce(call)
        if resolution.call is not None:  # a direct call: they left any room call for it
            for member in resolution.call.members:
                self._room_calls.pop(member, None)
            await self._announce(resolution.call)
        metrics.RINGS.labels(resolution.outcome.value).inc()
        if resolution.outcome in (RingOutcome.ACCEPTED, RingOutcome.DECLINED):
            metrics.RING_ANSWER_SECONDS.observe(max(0.0, resolution.at - resolution.ring.created_at))

    def _setup_started(self, call_id: str, person: PersonId) -> None:
        """Remember when ``person`` entered ``call_id``, for ``vo_call_setup_seconds``.
        Entries end with the member's first answer; bounded, since a member alone in
        a call never gets one (the oldest are dropped)."""
        self._joined_at[(call_id, person)] = time.monotonic()
        while len(self._joined_at) > _SETUP_TRACKED:
            del self._joined_at[next(iter(self._joined_at))]

    def _setup_done(self, call_id: str, sender: PersonId, recipient: PersonId) -> None:
        """A pair's SDP answer passed: the later of the two to enter waited this long
        (the earlier one may have been alone in the call for any time)."""
        starts = [self._joined_at.pop((call_id, person), None) for person in (sender, recipient)]
        known = [s for s in starts if s is not None]
        if known:
            metrics.CALL_SETUP_SECONDS.observe(time.monotonic() - max(known))

    def start(self) -> None:
        self._sweeper = supervised("ring_expiry", self._expire_rings_forever)

    async def close(self) -> None:
        await cancel_and_wait(self._sweeper)

    async def _expire_rings_forever(self) -> None:
        """Every node sweeps; the store lets exactly one resolve each ring."""
        period = min(1.0, self.store.ring_timeout / 4)
        while True:
            await asyncio.sleep(period)
            try:
                now = self._clock()
                for ring_id in await self.store.due(now):
                    try:
                        await self._resolved(await self.store.expire(ring_id, now))
                    except DomainError:
                        pass  # answered in the same moment, or another node expired it
            except StoreUnavailable:  # the next sweep catches up; anything else is a crash
                log.warning("ring_sweep_store_unavailable")

    @staticmethod
    def _ended_with(call: Call, leaver: PersonId) -> set[PersonId]:
        """Whose "in a call" changed: the leaver, and everyone if the call ended."""
        return {leaver, *call.members} if call.ended else {leaver}

    async def _show_on_floor(self, persons: set[PersonId]) -> None:
        """Tell each user's floor whether they are in a call now (a ``call`` diff)."""
        in_call = await self.store.calls_of(persons)
        for person in sorted(persons):
            member = await self._presence.store.member(person)
            if member is not None and member.floor_id is not None:
                data = {"person": person, "in_call": in_call.get(person)}
                await self._presence.post_floor_diff(member.floor_id, "call", data)

    async def _announce(self, call: Call) -> None:
        wire = call.to_wire()
        for member in call.members:
            self._outbox.post_person(member, "call.updated", wire)
        active, members = await self.store.stats()  # the whole store's: cluster-wide in cluster mode
        metrics.CALLS_ACTIVE.set(active)
        metrics.CALL_MEMBERS.set(members)

    # ------------------------------------------------------ presence hooks
    async def user_left_room(self, person: PersonId, floor_id: str, room_id: str) -> None:
        if self._room_calls.get(person) == room_id:
            del self._room_calls[person]
        left = await self.store.leave_room(person, room_id, self._clock())
        if left is not None:
            await self._announce(left)
            await self._show_on_floor(self._ended_with(left, person))

    async def user_gone(self, person: PersonId) -> None:
        self._room_calls.pop(person, None)
        now = self._clock()
        left = await self.store.leave(person, now)
        if left is not None:
            await self._announce(left)
            await self._show_on_floor(self._ended_with(left, person) - {person})  # they are gone
        for resolution in [*await self.store.cancel_all(person, now), *await self.store.callee_unavailable(person, now)]:
            await self._resolved(resolution)
        # Notes wait for a callee who is online in do-not-disturb, not for one who
        # left: nothing about a caller is kept once the callee is gone (docs/privacy.md).
        await self.store.take_notes(person)

    async def user_arrived(self, person: PersonId, floor_id: str) -> None:
        """Someone in a (direct) call walked onto another floor: show it there too,
        since the joined diff the floor saw carries no call."""
        call = await self.store.call_of(person)
        if call is not None:
            await self._presence.post_floor_diff(floor_id, "call", {"person": person, "in_call": call.id})

    async def status_changed(self, person: PersonId, status: Status) -> None:
        now = self._clock()
        if status is Status.DO_NOT_DISTURB:  # stop ringing someone who just asked for quiet
            for resolution in await self.store.callee_unavailable(person, now):
                await self._resolved(resolution)
        elif status is Status.AVAILABLE:
            notes = await self.store.take_notes(person)
            if notes:
                self._outbox.post_person(person, "call.notes", {"notes": [n.to_wire() for n in notes]})
