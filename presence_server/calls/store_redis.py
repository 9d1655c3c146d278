"""Calls, rings and notes in Redis: the :class:`~presence_server.calls.store.CallStore`
shared by every node of a cluster (docs/calls.md).

Key layout (``P`` is the prefix, ``"vo:"`` by default), all in one hash tag::

    P{calls}:calls      HASH  call id -> msgpack call record
    P{calls}:user_call  HASH  user id -> call id          (who is in which call)
    P{calls}:room_call  HASH  room id -> call id          (a room has at most one call)
    P{calls}:seq        STRING  counter of room call ids   ("room:<room>:<n>")
    P{calls}:rings      HASH  ring id -> msgpack ring record (pending rings)
    P{calls}:ringing    HASH  "caller\\ncallee" -> ring id (one ring per pair)
    P{calls}:deadlines  ZSET  ring id -> expires_at        (what ``due`` reads)
    P{calls}:recent     ZSET  ring id -> resolved at       (the last 4096: ``ring_resolved``)
    P{calls}:notes      HASH  callee -> msgpack notes

Why one slot rather than the per-floor and per-user tags of presence and knocks:
accepting a ring moves two users, who may sit on any floors, out of their calls
and into a new one — atomically only within one slot. Call operations are rare
next to presence traffic (a join, a ring, an answer per conversation; the relay
check is one ``HMGET``), so one slot carries a state-wide deployment; it is the
place to shard (by cooperation) if that ever stops being true.

Each operation is one script (:mod:`presence_server.calls.store_redis_lua`), so
every contract of :class:`~signalling.calls.CallBook` holds across nodes: the
first ``resolve`` of a ring deletes it and wins, a mesh is checked and joined in
one step. Nothing here expires by TTL: calls end when their members leave, and
nodes remove the members of a node that died (``user_gone``); a ring ends by
its deadline, which every node's sweeper may resolve (one wins).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Final, Iterable

import msgpack

from presence_server.calls.store_redis_lua import SCRIPTS
from rooms.redis_link import RedisLink, ScriptedRedis, as_text
from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from rooms.person import PersonId
from signalling.calls import (
    CONFLICT_REASONS,
    RECENT_RINGS_REMEMBERED,
    Call,
    CallKind,
    Note,
    Ring,
    RingOutcome,
    RingResolution,
    RoomJoin,
    Topology,
    clean_note,
    DEFAULT_NOTE_MAX_CHARS,
    DEFAULT_NOTES_PER_CALLEE,
)

__all__ = ["RedisCallStore"]

_KEYS: Final = ("calls", "user_call", "room_call", "seq", "rings", "ringing", "deadlines", "recent", "notes")


class RedisCallStore(ScriptedRedis):
    """:class:`~presence_server.calls.store.CallStore` in Redis, for cluster mode.

    ``now`` is the callers' wall clock, as everywhere in the call contract; nodes
    are expected to keep their clocks in sync (NTP), as ring deadlines compare them.
    """

    SCRIPTS = SCRIPTS

    def __init__(
        self,
        redis: RedisLink | str,
        *,
        prefix: str = "vo:",
        max_mesh: int,
        ring_timeout: float,
        sfu: bool = False,
        note_max_chars: int = DEFAULT_NOTE_MAX_CHARS,
        notes_per_callee: int = DEFAULT_NOTES_PER_CALLEE,
    ) -> None:
        super().__init__(redis, prefix=prefix)
        self.max_mesh = max_mesh
        self.ring_timeout = ring_timeout
        self.sfu = sfu
        self.note_max_chars = note_max_chars
        self.notes_per_callee = notes_per_callee
        self._keys: Final = [f"{prefix}{{calls}}:{name}" for name in _KEYS]

    async def _call(self, script: str, *args: Any) -> dict[str, Any]:
        raw = await self._run(script, list(self._keys), [str(a) for a in args])
        out = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        if not isinstance(out, dict):  # Lua packs an empty table as an empty array
            return {}
        if "err" in out:
            code, detail = out["err"]
            extra: dict[str, Any] = {"max_mesh": self.max_mesh} if code == ErrorCode.CALL_FULL.value else {}
            if detail in CONFLICT_REASONS:
                extra["reason"] = detail  # a machine-readable sub-reason, as CallBook gives it
            raise DomainError(ErrorCode(code), detail or None, **extra)
        return out

    # ------------------------------------------------------------------ reads
    async def call_of(self, person: PersonId) -> Call | None:
        out = await self._call("call_of", person)
        return _call(out["call"]) if "call" in out else None

    async def calls_of(self, persons: Iterable[PersonId]) -> dict[PersonId, str]:
        users = list(persons)
        if not users:
            return {}
        ids = await self._redis().hmget(self._keys[1], users)
        return {user: as_text(cid) for user, cid in zip(users, ids) if cid is not None}

    async def stats(self) -> tuple[int, int]:
        pipe = self._redis().pipeline(transaction=False)
        pipe.hlen(self._keys[0])
        pipe.hlen(self._keys[1])
        calls, members = await pipe.execute()
        return int(calls), int(members)

    async def check_relay(self, sender: PersonId, recipient: PersonId, call_id: str) -> None:
        if sender == recipient:
            raise DomainError(ErrorCode.FORBIDDEN, "self")
        mine, theirs = await self._redis().hmget(self._keys[1], [sender, recipient])
        if mine is None or as_text(mine) != call_id or theirs != mine:
            raise DomainError(ErrorCode.NOT_IN_CALL)

    # ------------------------------------------------------------------ calls
    async def join_room_call(self, person: PersonId, room_id: str, now: float) -> RoomJoin:
        out = await self._call("join_room", person, room_id, repr(now), self.max_mesh, int(self.sfu), "")
        left = out.get("left")
        return RoomJoin(_call(out["call"]), bool(out["created"]), _call(left) if left else None)

    async def leave(self, person: PersonId, now: float) -> Call | None:
        out = await self._call("leave", person, repr(now), "")
        return _call(out["call"]) if "call" in out else None

    async def leave_room(self, person: PersonId, room_id: str, now: float) -> Call | None:
        out = await self._call("leave", person, repr(now), room_id)
        return _call(out["call"]) if "call" in out else None

    # ------------------------------------------------------------------ rings
    async def ring(self, ring_id: str, caller: Actor, callee: PersonId, *, callee_dnd: bool, now: float) -> Ring:
        expires_at = now + self.ring_timeout
        out = await self._call(
            "ring", ring_id, caller.person_id, _actor_json(caller), callee, int(callee_dnd), repr(now), repr(expires_at)
        )
        return _ring(ring_id, out["ring"])

    async def answer(self, ring_id: str, callee: PersonId, accept: bool, now: float) -> RingResolution:
        return await self._resolve(ring_id, callee, "accept" if accept else "decline", now)

    async def cancel(self, ring_id: str, caller: PersonId, now: float) -> RingResolution:
        return await self._resolve(ring_id, caller, "cancel", now)

    async def due(self, now: float) -> list[str]:
        ids = await self._redis().zrangebyscore(self._keys[6], "-inf", repr(now))
        return [as_text(i) for i in ids]

    async def expire(self, ring_id: str, now: float) -> RingResolution:
        return await self._resolve(ring_id, "", "expire", now)

    async def callee_unavailable(self, callee: PersonId, now: float) -> list[RingResolution]:
        return await self._resolve_each(lambda ring: ring[2] == callee, callee, "unavailable", now)

    async def cancel_all(self, caller: PersonId, now: float) -> list[RingResolution]:
        return await self._resolve_each(lambda ring: ring[1] == caller, caller, "cancel_all", now)

    async def _resolve_each(
        self, match: Callable[[list[Any]], bool], who: str, action: str, now: float
    ) -> list[RingResolution]:
        """Resolve every pending ring ``match`` picks; one another node resolved
        in the meantime is simply not among the results."""
        pending = await self._redis().hgetall(self._keys[4])
        out = []
        for ring_id, raw in pending.items():
            if match(msgpack.unpackb(raw, raw=False)):
                try:
                    out.append(await self._resolve(as_text(ring_id), who, action, now))
                except DomainError:
                    pass
        return out

    async def _resolve(self, ring_id: str, who: str, action: str, now: float) -> RingResolution:
        out = await self._call("resolve", ring_id, who, action, repr(now), RECENT_RINGS_REMEMBERED)
        resolution = RingResolution(
            _ring(ring_id, out["ring"]), RingOutcome(out["outcome"]), at=now, by=out.get("by") or None
        )
        if "call" in out:
            call = _call(out["call"])
            left = tuple(_call(c) for c in out.get("left") or ())
            return RingResolution(resolution.ring, resolution.outcome, now, resolution.by, call, left)
        return resolution

    # ------------------------------------------------------------------ notes
    async def leave_note(self, caller: Actor, callee: PersonId, text: str, now: float) -> Note:
        note = Note(caller, callee, clean_note(caller.person_id, callee, text, self.note_max_chars), created_at=now)
        blob = json.dumps({"caller": caller.to_record(), "text": note.text, "created_at": now})
        await self._call("note", callee, caller.person_id, blob, self.notes_per_callee)
        return note

    async def take_notes(self, callee: PersonId) -> list[Note]:
        out = await self._call("take_notes", callee)
        notes = []
        for _caller_id, blob in out.get("notes") or ():
            d = json.loads(blob)
            notes.append(Note(Actor.from_record(d["caller"]), callee, d["text"], created_at=d["created_at"]))
        return notes


# Records cross Lua as msgpack strings, which Lua keeps as text: actors and notes
# are JSON inside them (a msgpack blob would not be valid UTF-8 on the way back).
def _actor_json(actor: Actor) -> str:
    return json.dumps(actor.to_record(), separators=(",", ":"))


def _call(rec: list[Any]) -> Call:
    call_id, kind, room_id, members, created_at, topology, ended_at = rec
    return Call(
        call_id,
        CallKind(kind),
        room_id or None,
        frozenset(members or ()),
        created_at=float(created_at),
        topology=Topology(topology),
        ended_at=float(ended_at) if ended_at is not False else None,
    )


def _ring(ring_id: str, rec: list[Any]) -> Ring:
    caller, _caller_id, callee, created_at, expires_at = rec
    return Ring(ring_id, Actor.from_record(json.loads(caller)), callee, float(created_at), float(expires_at))
