"""Pending knocks in Redis: the :class:`~presence_server.knocks.store.KnockStore`
shared by every node of a cluster (docs/cluster.md).

Key layout (``P`` is the prefix, ``"vo:"`` by default)::

    P{f:<floor>}:knocks    HASH  knock id -> msgpack [knocker (packed actor), room, floor,
                                 message, created_at, expires_at, recipients, to_owners]
    P{f:<floor>}:claimed   ZSET  knock id -> when claimed (Redis ms); void after CLAIM_LEASE_MS
    P{f:<floor>}:resolved  ZSET  knock id -> when resolved (Redis ms): the last RESOLVED_LIMIT,
                                 at most RESOLVED_MS old (key TTL RESOLVED_MS)
    P{u:<user>}:knock      STRING the user's pending knock id      TTL timeout + SLACK_MS
    P{u:<user>}:cooldowns  HASH  room -> until (repr of a float)   TTL cooldown (elapsed ones swept)
    P{u:<user>}:incoming   SET   knock ids the user was asked to answer   TTL timeout + SLACK_MS
    P{knocks}:deadlines    ZSET  knock id -> expires_at: the index ``due`` reads

Scripts (Lua in :mod:`presence_server.knocks.store_redis_lua`), each atomic and
given the keys of one hash tag only (Redis Cluster rule):

* floor slot, KEYS ``knocks, claimed, resolved``; a claim counts while younger
  than :data:`CLAIM_LEASE_MS` (Redis's clock):
  ``f_peek(ids)`` reads each id's state (pending, claimed, resolved, unknown)
  and record, consistently; ``f_claim(id)`` claims a pending, unclaimed knock;
  ``f_resolve(id, claimed)`` is the decision: ``HDEL`` of the record if it is
  unclaimed (or the caller says it holds the claim), and the id joins
  ``resolved``. Every other caller gets ``knock_resolved`` (``not_found`` for
  an id the floor never had or has forgotten).
* user slot, KEYS ``knock, cooldowns``: ``u_reserve(id, room, now)`` refuses
  ``already_knocking`` if the pointer is set, ``knock_cooldown`` (with the
  until) if the room's cool-down runs, else sets the pointer (SET NX semantics);
  ``u_settle(id, room, until, now)`` clears the pointer if it still names this
  knock and records a cool-down. Both drop elapsed cool-downs.

The rest are single commands. ``add``: ``u_reserve``; ``ZADD NX`` of the
deadline; ``HSETNX`` of the record; the recipients' ``incoming``. The deadline
goes in before the record so no knock is ever pending without one (it would
never expire). If a step fails, the record (if written) and the pointer are
taken back. ``resolve``: ``f_resolve`` decides, then ``u_settle``, then the
deadline and the ``incoming`` entries go. The outcome is decided by one script
in one slot, so exactly one caller wins however many nodes ask.

What a node dying between two steps leaves, and what heals it: a pointer (its
TTL, or the next ``add``, which drops a pointer naming a resolved knock); a
deadline without a record (``due``); ``incoming`` entries of resolved knocks
(``incoming`` drops them; TTL); a claim whose admit never finished (the lease:
after ``CLAIM_LEASE_MS`` the knock is pending again and ``due`` lists it). The
steps after a decided ``resolve`` are best effort for that reason: a Redis
error there is logged, not raised, since the outcome stands either way.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Final

import msgpack
import structlog
from redis.exceptions import RedisError

from presence_server.knocks.store_redis_lua import SCRIPTS
from rooms.redis_link import RedisLink, ScriptedRedis, as_bytes, as_text, scored
from presence_server.knocks.store import floor_of
from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode, StoreUnavailable
from rooms.knocks import Knock, KnockOutcome, Resolution
from rooms.person import PersonId

__all__ = ["RedisKnockStore", "CLAIM_LEASE_MS", "RESOLVED_LIMIT", "RESOLVED_MS", "SLACK_MS"]

log = structlog.get_logger(__name__)

#: A claim older than this is void: the claimer's node died mid-admit.
CLAIM_LEASE_MS: Final = 30_000
#: Resolved ids remembered per floor (``knock_resolved`` rather than ``not_found``).
RESOLVED_LIMIT: Final = 4096
RESOLVED_MS: Final = 3_600_000
#: How long keys describing a knock outlive its deadline (a late sweeper still finds them).
SLACK_MS: Final = 60_000

_REFUSALS: Final = (ErrorCode.ALREADY_KNOCKING, ErrorCode.KNOCK_COOLDOWN)
_REFUSED: Final = {b"claimed": ErrorCode.KNOCK_RESOLVED, b"resolved": ErrorCode.KNOCK_RESOLVED,
                   b"unknown": ErrorCode.NOT_FOUND}


class RedisKnockStore(ScriptedRedis):
    """:class:`~presence_server.knocks.store.KnockStore` in Redis, for cluster mode.

    Keeps the whole contract across nodes (see the module docstring), with one
    addition: a claim lapses after :data:`CLAIM_LEASE_MS`, so a node that dies
    mid-admit cannot hold a knock forever. ``now`` is the callers' wall clock;
    leases and the memory of resolved ids use Redis's clock. An outage
    raises :class:`~rooms.errors.StoreUnavailable`, except after a decided ``resolve``.
    """

    SCRIPTS = SCRIPTS

    def __init__(self, redis: RedisLink | str, *, prefix: str = "vo:", timeout: float, cooldown: float) -> None:
        self.timeout = timeout
        self.cooldown = cooldown
        super().__init__(redis, prefix=prefix)
        self._deadlines: Final = f"{prefix}{{knocks}}:deadlines"
        self._ttl_ms: Final = math.ceil(timeout * 1000) + SLACK_MS
        self._cooldown_ms: Final = max(1, math.ceil(cooldown * 1000))




    # -------------------------------------------------------------- changes
    async def add(
        self,
        knock_id: str,
        knocker: Actor,
        *,
        room_id: str,
        floor_id: str,
        recipients: frozenset[PersonId],
        to_owners: bool,
        message: str,
        now: float,
    ) -> Knock:
        if floor_of(knock_id) != floor_id:
            raise ValueError(f"knock id {knock_id!r} does not name floor {floor_id!r}")
        knock = Knock(knock_id, knocker, room_id, floor_id, message, now, now + self.timeout, recipients, to_owners)
        written = False
        try:
            await self._reserve(knock, now)
            await self._redis().zadd(self._deadlines, {knock_id: knock.expires_at}, nx=True)
            if not await self._redis().hsetnx(self._floor_keys(floor_id)[0], knock_id, _pack(knock)):
                raise DomainError(ErrorCode.CONFLICT, "knock id in use")
            written = True
            pipe = self._redis().pipeline(transaction=False)  # one slot per recipient
            for person in recipients:
                pipe.sadd(self._incoming_key(person), knock_id)
                pipe.pexpire(self._incoming_key(person), self._ttl_ms)
            await pipe.execute()
        except BaseException as exc:
            if not (isinstance(exc, DomainError) and exc.code in _REFUSALS):  # else nothing was reserved
                await self._take_back(knock, written, now)  # also after a cancel mid-reserve: CAS, harmless
            raise
        return knock

    async def claim(self, knock_id: str) -> Knock:
        reply = await self._run("f_claim", self._floor_keys(floor_of(knock_id)), [CLAIM_LEASE_MS, knock_id])
        return _unpack(knock_id, _accepted(reply))

    async def release(self, knock_id: str) -> None:
        await self._redis().zrem(self._floor_keys(floor_of(knock_id))[1], knock_id)

    async def resolve(
        self,
        knock_id: str,
        outcome: KnockOutcome,
        *,
        now: float,
        by: PersonId | None = None,
        reason: str | None = None,
        claimed: bool = False,
    ) -> Resolution:
        reply = await self._run(
            "f_resolve", self._floor_keys(floor_of(knock_id)),
            [CLAIM_LEASE_MS, knock_id, "1" if claimed else "0", RESOLVED_MS, RESOLVED_LIMIT],
        )
        knock = _unpack(knock_id, _accepted(reply))
        human_decline = outcome is KnockOutcome.DECLINED and by is not None and self.cooldown > 0
        try:
            await self._settle(knock, repr(now + self.cooldown) if human_decline else "", now)
        except (StoreUnavailable, RedisError):  # decided already; what is left behind heals (module docstring)
            log.warning("knock_settle_failed", knock=knock_id, outcome=outcome.value, exc_info=True)
        return Resolution(knock, outcome, by=by, reason=reason)

    # ---------------------------------------------------------------- reads
    async def get(self, knock_id: str) -> Knock:
        [(state, record)] = await self._peek(floor_of(knock_id), [knock_id])
        if state != b"pending":
            raise DomainError(_REFUSED[state])
        return _unpack(knock_id, record)

    async def pending_of(self, person: PersonId) -> Knock | None:
        knock_id = await self._redis().get(self._user_keys(person)[0])
        if knock_id is None:
            return None
        return await self._pending(as_text(knock_id))

    async def pending_for_room(self, floor_id: str, room_id: str) -> list[Knock]:
        records = await self._redis().hgetall(self._floor_keys(floor_id)[0])
        knocks = [_unpack(as_text(knock_id), as_bytes(record)) for knock_id, record in records.items()]
        return sorted((k for k in knocks if k.room_id == room_id), key=_oldest_first)

    async def incoming(self, person: PersonId) -> list[Knock]:
        key = self._incoming_key(person)
        ids = [as_text(m) for m in await self._redis().smembers(key)]
        found, over = await self._look_up(ids, keep={b"pending", b"claimed"})
        if over:  # resolved since (by a node that died before cleaning up)
            await self._redis().srem(key, *over)
        return sorted(found.values(), key=_oldest_first)

    async def due(self, now: float) -> list[Knock]:
        entries = scored(await self._redis().zrangebyscore(self._deadlines, "-inf", now, withscores=True))
        ids = [knock_id.decode() for knock_id, _ in entries]
        found, over = await self._look_up(ids, keep={b"pending"})
        # A deadline with no record and no memory of one is swept only well past
        # it: an add on a node whose clock is behind may not have written it yet.
        deadlines = {knock_id.decode(): score for knock_id, score in entries}
        gone = [i for i, state in over.items() if state != b"unknown" or deadlines[i] <= now - SLACK_MS / 1000]
        if gone:
            await self._redis().zrem(self._deadlines, *gone)
        return [found[knock_id] for knock_id in ids if knock_id in found]

    # ------------------------------------------------------------ internals
    async def _reserve(self, knock: Knock, now: float) -> None:
        keys = self._user_keys(knock.knocker.person_id)
        for attempt in range(2):
            reply = await self._run("u_reserve", keys, [knock.id, knock.room_id, repr(now), self._ttl_ms])
            if reply[0] == b"ok":
                return
            if reply[0] == b"cooldown":
                raise DomainError(ErrorCode.KNOCK_COOLDOWN, retry_after=round(float(reply[1]) - now, 1))
            other = reply[1].decode()
            # A pointer naming a resolved knock outlived a node that died mid-resolve.
            if attempt or not await self._is_resolved(other):
                raise DomainError(ErrorCode.ALREADY_KNOCKING)
            await self._run("u_settle", keys, [other, "", "", repr(now), self._cooldown_ms])

    async def _settle(self, knock: Knock, cooldown_until: str, now: float) -> None:
        """A decided knock's pointer, cool-down, deadline and ``incoming`` entries."""
        await self._run(
            "u_settle", self._user_keys(knock.knocker.person_id),
            [knock.id, knock.room_id, cooldown_until, repr(now), self._cooldown_ms],
        )
        pipe = self._redis().pipeline(transaction=False)
        pipe.zrem(self._deadlines, knock.id)
        for person in knock.recipients:
            pipe.srem(self._incoming_key(person), knock.id)
        await pipe.execute()

    async def _take_back(self, knock: Knock, written: bool, now: float) -> None:
        """Undo a failed ``add``: its record (if written) and the knocker's pointer."""
        try:
            if written:
                await self._run(
                    "f_resolve", self._floor_keys(knock.floor_id),
                    [CLAIM_LEASE_MS, knock.id, "1", RESOLVED_MS, RESOLVED_LIMIT],
                )
                await self._settle(knock, "", now)
            else:  # the deadline, if any, is ours or (ZADD NX) not touched; due() sweeps it
                await self._run("u_settle", self._user_keys(knock.knocker.person_id),
                                [knock.id, "", "", repr(now), self._cooldown_ms])
        except (StoreUnavailable, RedisError):  # the pointer's TTL and due() clean up after us
            log.warning("knock_take_back_failed", knock=knock.id, exc_info=True)

    async def _is_resolved(self, knock_id: str) -> bool:
        try:
            floor_id = floor_of(knock_id)
        except DomainError:
            return True
        [(state, _)] = await self._peek(floor_id, [knock_id])
        return state == b"resolved"

    async def _pending(self, knock_id: str) -> Knock | None:
        """The knock, claimed or not, if it is still pending."""
        found, _ = await self._look_up([knock_id], keep={b"pending", b"claimed"})
        return found.get(knock_id)

    async def _look_up(self, ids: list[str], *, keep: set[bytes]) -> tuple[dict[str, Knock], dict[str, bytes]]:
        """Knocks in a state of ``keep``; ids no longer pending, with their state."""
        by_floor: defaultdict[str, list[str]] = defaultdict(list)
        over: dict[str, bytes] = {}
        for knock_id in ids:
            try:
                by_floor[floor_of(knock_id)].append(knock_id)
            except DomainError:
                over[knock_id] = b"malformed"
        found: dict[str, Knock] = {}
        for floor_id, floor_ids in by_floor.items():  # one script per floor: one slot each
            for knock_id, (state, record) in zip(floor_ids, await self._peek(floor_id, floor_ids)):
                if state in keep:
                    found[knock_id] = _unpack(knock_id, record)
                elif state in (b"resolved", b"unknown"):
                    over[knock_id] = state
        return found, over

    async def _peek(self, floor_id: str, ids: list[str]) -> list[tuple[bytes, bytes]]:
        flat = await self._run("f_peek", self._floor_keys(floor_id), [CLAIM_LEASE_MS, *ids])
        return list(zip(flat[::2], flat[1::2]))


    def _floor_keys(self, floor_id: str) -> list[str]:
        base = f"{self._prefix}{{f:{floor_id}}}:"
        return [base + "knocks", base + "claimed", base + "resolved"]

    def _user_keys(self, person: PersonId) -> list[str]:
        base = f"{self._prefix}{{u:{person}}}:"
        return [base + "knock", base + "cooldowns"]

    def _incoming_key(self, person: PersonId) -> str:
        return f"{self._prefix}{{u:{person}}}:incoming"




# ------------------------------------------------------------------ encoding
def _pack_actor(actor: Actor) -> bytes:
    # The knocker inside a knock record: msgpack of Actor.to_record, as the presence
    # store packs actors (records written before the families split read back alike).
    packed: bytes = msgpack.packb(actor.to_record(), use_bin_type=True)
    return packed


def _unpack_actor(blob: bytes) -> Actor:
    return Actor.from_record(msgpack.unpackb(blob, raw=False))


def _pack(knock: Knock) -> bytes:
    return msgpack.packb(  # type: ignore[no-any-return]
        [_pack_actor(knock.knocker), knock.room_id, knock.floor_id, knock.message, knock.created_at,
         knock.expires_at, sorted(knock.recipients), knock.to_owners],
        use_bin_type=True,
    )


def _unpack(knock_id: str, blob: bytes) -> Knock:
    knocker, room_id, floor_id, message, created_at, expires_at, recipients, to_owners = msgpack.unpackb(
        blob, raw=False
    )
    return Knock(knock_id, _unpack_actor(knocker), room_id, floor_id, message, created_at, expires_at,
                 frozenset(PersonId(r) for r in recipients), to_owners)


def _oldest_first(knock: Knock) -> tuple[float, str]:
    return knock.created_at, knock.id


def _accepted(reply: list[Any]) -> bytes:
    """The record of a script that said ``ok``; its refusal as a DomainError otherwise."""
    if reply[0] != b"ok":
        raise DomainError(_REFUSED[reply[0]])
    return reply[1]  # type: ignore[no-any-return]
