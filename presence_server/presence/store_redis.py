"""Presence in Redis: the :class:`~presence_server.presence.store.PresenceStore`
shared by every node of a cluster (docs/cluster.md).

Key layout (``P`` is the prefix, ``"vo:"`` by default)::

    (<person> is "municipality/user_id": ids of two towns never share a key)
    P{u:<person>}:presence   HASH  actor (msgpack), public (JSON of actor.public_dict()),
                                 status, text (effective), floor, room (absent: none /
                                 hallway), ver, locver, since (lingering since, repr of a float)
    P{u:<person>}:sessions   HASH  sid -> msgpack [node, status, text, order]
    P{u:<person>}:floors     HASH  floor -> version: every floor that may list the user
    P{f:<floor>}:seq       STRING the floor's sequence number (never deleted)
    P{f:<floor>}:members   HASH  person -> msgpack [lv, av, room, status, text, actor, public]
    P{f:<floor>}:occupancy HASH  room -> persons inside
    P{f:<floor>}:gone      HASH  person -> lv of the removal (tombstone)      } TTL 60 s,
    P{f:<floor>}:gone_at   ZSET  person -> when the tombstone may go (ms)     } swept lazily
    P{node:<id>}:sessions  SET   "person\\x00sid" of the node's sessions (for the reaper)
    P{node:<id>}:sids      HASH  sid -> person (disconnect and set_status find the user)
    P{node:<id>}:lingering HASH  person -> since: grace periods this node started (the
                                 reaper ends them if the node dies)

Every script gets the keys of one hash tag only (Redis Cluster rule): user
scripts ``presence, sessions, floors``; floor scripts ``seq, members,
occupancy, gone, gone_at``; the node script its two keys. A floor script that
stamps diffs publishes them itself, on ``P + "f:" + floor`` as the bus envelope
``{n: node, b: {floor_id, first, last, diffs_json}}``, so Redis delivers a
floor's diffs in sequence order. ``diffs_json`` is ``[FloorDiff.to_wire(), ...]``
as JSON (Lua tables cannot hold a null) covering seq ``first`` to ``last``:
receivers order by those two and forward the text to their sockets unchanged.
The caller gets the same diffs back, typed, and delivers them locally first.

Versions instead of locks. A user's sessions, effective status and location
live in the user's slot, their entry on a floor in the floor's slot. Every user
script that writes increments ``ver`` (seeded from the server clock, so a user
forgotten and back again continues above their old tombstones). A floor keeps,
per member, ``lv`` (version of the location change that placed them) and ``av``
(version of the status/actor shown): ``f_enter`` applies only above ``lv`` and
any tombstone, ``f_leave`` only above ``lv``, ``f_update`` only above ``av`` and
never adds or moves anyone (only ``f_enter`` does, capacity-checked). Each floor thus
ends with the newest location and attributes it was sent, in whatever order
the scripts of two nodes arrive.

Which scripts each operation runs, in order:

* ``connect``: ``node_add`` (sid index first, so a crash leaves nothing the
  reaper cannot find), ``u_connect``, and ``f_update`` on the user's floor if
  the actor changed. ``disconnect``: ``u_disconnect``, ``f_update`` if the
  merged status changed, then the index entry is removed. ``set_status`` and
  ``update_actor``: ``u_set_status`` / ``u_update_actor``, then ``f_update``.
  Attribute changes are committed in the user slot first and need no check.
* ``move`` (a location change): ``u_move_begin`` takes a version ``v``, reads
  the attributes and adds the target floor to ``floors``; ``f_enter`` checks
  capacity and places the member at ``lv = av = v``; ``u_move_commit`` writes
  the location with ``locver = v`` unless a location with a higher version was
  committed meanwhile (then this move was superseded and stops: the newer one
  cleans up after it). If attributes changed since ``v`` it sends them to the
  new floor (``f_update`` at the current ``ver``). Last, ``f_leave`` at ``v`` on
  every other floor in ``floors`` and ``u_prune`` of those confirmed clean.
  The floor decides before the user slot commits, so nobody can read a location
  its floor has not admitted, and a refusal (``room_full``) changes nothing.
* ``leave_floor``, ``expire``, ``drop_floor`` (per member): ``u_vacate``
  (location none, ``locver = v``), then ``f_leave`` at ``v`` on every floor in
  ``floors`` and ``u_prune``; ``expire`` ends with ``u_expire_end``, which
  deletes the user only if nothing happened since (else they came back).
  ``drop_floor`` first empties the floor at once with ``f_drop`` (no diffs),
  and its per-member ``f_leave`` is silent.
* ``evacuate_room``: ``u_move_begin`` per occupant (only if still in that room),
  one ``f_evacuate`` moving them all to the hallway, then each one's move
  continues from ``u_move_commit`` as above.

Why two nodes acting for one user at once converge: user scripts are
serialised in the user's slot, so each operation has its own version. A
commit is refused below the committed ``locver``, so the committed location
only moves forward and always names a floor that admitted it at that version.
Every location change is preceded by a ``floors`` entry, and every committed
location change removes the user, at its version, from every floor in
``floors`` except its own: a superseded move's entry is removed by its
superseder, or refused by the tombstone if it arrives later. An attribute
change either happens before a move's commit (the commit sees ``ver`` moved and
re-sends the attributes) or after it (it reads the new floor and updates it).
A node that dies between two scripts leaves at most a member listed where
``floors`` still names them (cleaned by the user's next location change or
expiry) or a floor showing older attributes (until the next change).

What this node knows, for when Redis forgets. The store keeps in memory, for
every session this node registered, the session's own status and text and its
user's last location seen in a script's answer (newest ``locver`` wins). When
the node was fenced (declared dead and reaped) or Redis lost its data,
:meth:`restore` registers a live session again from that memory: ``node_add``,
``u_connect``, ``u_set_status`` for the session, and, if the user has no
location in Redis, the move back to the remembered one (no capacity check: they
were inside, and someone inside is never refused). A location changed by
another node (the same user's tab there, a knock admitted there) is known here
only if Redis still holds the user. :meth:`raise_seq` lifts a floor's sequence
number above what this node delivered, so sequence numbers never go back for
a view after Redis lost them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack

from presence_server.presence.store_redis_lua import SCRIPTS, TOMBSTONE_MS
from rooms.redis_link import RedisLink, ScriptedRedis, as_text
from presence_server.diffs import FloorDiff
from presence_server.presence.state import Status
from presence_server.presence.store import Member, Placer
from rooms.access import room_full
from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode, StoreForgot
from rooms.person import PersonId

__all__ = ["RedisPresenceStore", "TOMBSTONE_MS"]


@dataclass(frozen=True, slots=True)
class _User:
    """A user script's answer: a tag and the user's state as the script left it."""

    tag: str
    ver: int = 0
    locver: int = 0
    floor: str | None = None
    room: str | None = None
    status: str = ""
    text: str = ""
    actor: bytes = b""
    public: bytes = b""
    since: str = ""
    sessions: int = 0
    floors: tuple[str, ...] = ()
    extra: tuple[Any, ...] = ()

    @classmethod
    def parse(cls, reply: list[Any]) -> _User:
        tag = reply[0].decode()
        if len(reply) == 1:
            return cls(tag)
        floor = reply[3].decode() or None
        return cls(
            tag, int(reply[1]), int(reply[2]), floor, (reply[4].decode() or None) if floor else None,
            reply[5].decode(), reply[6].decode(), reply[7], reply[8], reply[9].decode(), int(reply[10]),
            tuple(f.decode() for f in reply[11]), tuple(reply[12:]),
        )

    def member(self) -> Member:
        return Member(_unpack_actor(self.actor), Status(self.status), self.text, self.floor, self.room, self.sessions)

    def attributes(self) -> list[Any]:
        return [self.status, self.text, self.actor, self.public]


@dataclass(slots=True)
class _Kept:
    """What this node last knew of a user it holds sessions of."""

    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # sid -> (status, text)
    locver: int = 0
    floor: str | None = None
    room: str | None = None


class RedisPresenceStore(ScriptedRedis):
    """:class:`~presence_server.presence.store.PresenceStore` in Redis, for cluster mode.

    Each method is a short sequence of single-slot scripts (see the module
    docstring); each script is atomic, and every floor change checks, changes,
    takes its sequence numbers and publishes in one script. ``disconnect`` and
    ``set_status`` find a session through this node's index: call them on the
    node that holds the session (the one whose ``node_id`` connected it). Sids
    must be unique across the cluster (Socket.IO's are random). An outage
    raises :class:`~rooms.errors.StoreUnavailable`. Stores with different prefixes share a server without
    seeing each other.
    """

    SCRIPTS = SCRIPTS

    def __init__(self, redis: RedisLink | str, *, prefix: str = "vo:", node_id: str) -> None:
        self.node_id: Final = node_id
        super().__init__(redis, prefix=prefix)
        self._node_sids, self._node_sessions, self._node_lingering = self._node_keys(node_id)
        self._kept: dict[PersonId, _Kept] = {}
        self._kept_sid: dict[str, PersonId] = {}

    def _node_keys(self, node_id: str) -> tuple[str, str, str]:
        """A node's session index, session list and lingering users (for the reaper)."""
        base = f"{self._prefix}{{node:{node_id}}}:"
        return base + "sids", base + "sessions", base + "lingering"




    # ------------------------------------------------------------- sessions
    async def connect(self, sid: str, actor: Actor, now: float) -> tuple[list[FloorDiff], Member]:
        if not await self._run("node_add", [self._node_sids, self._node_sessions], [sid, actor.person_id]):
            raise ValueError(f"session {sid} already connected")
        user = await self._user("u_connect", actor.person_id, sid, self.node_id, _pack_actor(actor), _public(actor))
        if user.tag == "duplicate":
            await self._forget_session(sid, actor.person_id)
            raise ValueError(f"session {sid} already connected")
        self._keep(actor.person_id, sid, user.status, user.text)  # a new session inherits
        self._note(actor.person_id, user.locver, user.floor, user.room)
        diffs = await self._show(actor.person_id, user) if user.tag == "changed" else []
        return diffs, user.member()

    async def disconnect(self, sid: str, now: float) -> tuple[list[FloorDiff], float | None]:
        person = await self._user_of(sid)
        if person is None:
            self._unkeep(sid)
            return [], None
        diffs, since = await self._disconnect(person, sid, now)
        if since is not None:
            # The grace timer lives on this node; if the node dies, the reaper ends it.
            await self._redis().hset(self._node_lingering, person, repr(since))
        await self._forget_session(sid, person)  # after: a crash before it leaves work the reaper can find
        return diffs, since

    async def _disconnect(self, person: PersonId, sid: str, now: float) -> tuple[list[FloorDiff], float | None]:
        user = await self._user("u_disconnect", person, sid, repr(float(now)))
        diffs = await self._show(person, user) if user.tag == "changed" else []
        return diffs, float(user.since) if user.tag == "lingering" else None

    # ------------------------------------------------------- dead nodes
    async def node_sessions(self, node_id: str) -> list[tuple[PersonId, str]]:
        """(person, sid) of the sessions a node registered and has not removed."""
        _, sessions, _ = self._node_keys(node_id)
        members = await self._redis().smembers(sessions)
        pairs = (as_text(m).split("\x00", 1) for m in members)
        return [(PersonId(person), sid) for person, sid in pairs]

    async def node_lingering(self, node_id: str) -> list[tuple[PersonId, float]]:
        """(person, since) of the grace periods a node had started and not ended."""
        _, _, lingering = self._node_keys(node_id)
        entries = await self._redis().hgetall(lingering)
        return [(PersonId(as_text(person)), float(since)) for person, since in entries.items()]

    async def reap_session(self, node_id: str, person: PersonId, sid: str, now: float) -> tuple[list[FloorDiff], float | None]:
        """Remove a session another node held (that node died). Like ``disconnect``."""
        diffs, since = await self._disconnect(person, sid, now)
        sids, sessions, _ = self._node_keys(node_id)
        pipe = self._redis().pipeline(transaction=True)
        pipe.hdel(sids, sid)
        pipe.srem(sessions, f"{person}\x00{sid}")
        await pipe.execute()
        return diffs, since

    async def forget_node(self, node_id: str) -> None:
        await self._redis().delete(*self._node_keys(node_id))

    async def expire(self, person: PersonId, since: float) -> tuple[list[FloorDiff], Member | None]:
        await self._redis().hdel(self._node_lingering, person)
        user = await self._user("u_vacate", person, "expire", repr(float(since)))
        if user.tag == "none":
            return [], None
        version = int(user.extra[0])
        diffs, clean = await self._clear(person, version, user.floors, keep=None)
        end = await self._run("u_expire_end", self._user_keys(person), [version, *clean])
        return diffs, user.member() if end == b"gone" else None

    async def update_actor(self, actor: Actor) -> list[FloorDiff]:
        user = await self._user("u_update_actor", actor.person_id, _pack_actor(actor), _public(actor))
        return await self._show(actor.person_id, user) if user.tag == "changed" else []

    async def set_status(
        self, sid: str, status: Status, text: str, *, all_sessions: bool
    ) -> tuple[list[FloorDiff], Member]:
        person = await self._user_of(sid)
        if person is None:
            raise StoreForgot(sid)  # this node was fenced or Redis lost it: registered again soon
        user = await self._user("u_set_status", person, sid, status.value, text, "1" if all_sessions else "0")
        if user.tag == "none":
            raise StoreForgot(sid)
        kept = self._kept.get(person)
        if kept is not None:
            for own in list(kept.sessions) if all_sessions else [sid]:
                kept.sessions[own] = (status.value, text)
        diffs = await self._show(person, user) if user.tag == "changed" else []
        return diffs, user.member()

    # ------------------------------------------------------------- recovery
    async def restore(
        self, sid: str, actor: Actor, now: float, *, place: Placer
    ) -> tuple[list[FloorDiff], Member | None]:
        """Register again a live session of this node that Redis no longer holds
        (fenced, or Redis lost its data), with the session's status and its user's
        location as this node last knew them. ``None`` if it was still registered."""
        person = actor.person_id
        kept = self._kept.get(person) or _Kept()
        status, text = kept.sessions.get(sid, ("", ""))
        floor_id, room_id = place(kept.floor, kept.room)
        if not await self._run("node_add", [self._node_sids, self._node_sessions], [sid, person]):
            return [], None
        # A user Redis lost starts with no location (locver 0): below what is kept, so
        # the memory survives until the move back; new versions are seeded from the
        # clock, hence above the lost ones.
        user = await self._user("u_connect", person, sid, self.node_id, _pack_actor(actor), _public(actor))
        if user.tag == "duplicate":  # the user's slot still lists it: only the index was lost
            return [], user.member()
        self._keep(person, sid, status or user.status, text if status else user.text)
        diffs = await self._show(person, user) if user.tag == "changed" else []
        if status and (status, text) != (user.status, user.text):
            user = await self._user("u_set_status", person, sid, status, text, "0")
            diffs += await self._show(person, user) if user.tag == "changed" else []
        if user.floor is None and floor_id is not None:
            moved, _ = await self._move(person, floor_id, room_id, None)
            diffs += moved
        return diffs, await self.member(person)

    async def raise_seq(self, floor_id: str, delivered: int) -> int:
        """Lift the floor's seq above ``delivered`` (what this node already delivered)
        if it is not above it; returns the floor's seq. After Redis lost its data,
        views that were ahead of the new seq would skip every diff."""
        return int(await self._run("f_raise_seq", self._floor_keys(floor_id)[:1], [delivered]))

    async def floor_seq(self, floor_id: str) -> int:
        return int(await self._redis().get(self._floor_keys(floor_id)[0]) or 0)

    def keep_only(self, sids: set[str]) -> None:
        """Forget what is kept of sessions that ended while Redis could not hear it."""
        for sid in set(self._kept_sid) - sids:
            self._unkeep(sid)

    def _keep(self, person: PersonId, sid: str, status: str, text: str) -> None:
        self._kept.setdefault(person, _Kept()).sessions[sid] = (status, text)
        self._kept_sid[sid] = person

    def _unkeep(self, sid: str) -> None:
        person = self._kept_sid.pop(sid, None)
        kept = self._kept.get(person) if person is not None else None
        if kept is not None:
            kept.sessions.pop(sid, None)
            if not kept.sessions:
                del self._kept[person]  # type: ignore[arg-type]

    def _note(self, person: PersonId, locver: int, floor: str | None, room: str | None) -> None:
        """Remember a user's location if it is the newest seen (users with sessions here)."""
        kept = self._kept.get(person)
        if kept is not None and locver >= kept.locver:
            kept.locver, kept.floor, kept.room = locver, floor, room

    # ------------------------------------------------------------- location
    async def move(
        self, person: PersonId, floor_id: str, room_id: str | None, *, capacity: int | None
    ) -> tuple[list[FloorDiff], Member]:
        diffs, before = await self._move(person, floor_id, room_id, capacity)
        if before is None:
            if person in self._kept:  # online here: Redis forgot them (fenced, or emptied)
                raise StoreForgot(person)
            raise DomainError(ErrorCode.CONFLICT, "not online")
        return diffs, before

    async def leave_floor(self, person: PersonId) -> tuple[list[FloorDiff], Member | None]:
        user = await self._user("u_vacate", person, "leave", "")
        if user.tag == "none":
            return [], None
        if user.tag == "same":
            return [], user.member()
        version = int(user.extra[0])
        self._note(person, version, None, None)
        diffs, clean = await self._clear(person, version, user.floors, keep=None)
        await self._prune(person, version, clean)
        return diffs, user.member()

    # ---------------------------------------------------------------- reads
    async def member(self, person: PersonId) -> Member | None:
        presence, sessions, _ = self._user_keys(person)
        pipe = self._redis().pipeline(transaction=True)
        pipe.hmget(presence, "actor", "status", "text", "floor", "room")
        pipe.hlen(sessions)
        (actor, status, text, floor, room), count = await pipe.execute()
        if actor is None:
            return None
        floor_id = floor.decode() if floor else None
        room_id = room.decode() if room and floor_id else None
        return Member(_unpack_actor(actor), Status(status.decode()), text.decode(), floor_id, room_id, int(count))

    async def snapshot(self, floor_id: str) -> tuple[int, list[dict[str, Any]]]:
        seq_key, members_key, *_ = self._floor_keys(floor_id)
        pipe = self._redis().pipeline(transaction=True)  # one slot: no diff can fall between
        pipe.get(seq_key)
        pipe.hgetall(members_key)
        seq, members = await pipe.execute()
        return int(seq or 0), [_wire(msgpack.unpackb(blob, raw=True)) for blob in members.values()]

    async def occupants(self, floor_id: str, room_id: str | None) -> list[Member]:
        members = await self._redis().hgetall(self._floor_keys(floor_id)[1])
        records = {PersonId(as_text(p)): msgpack.unpackb(blob, raw=True) for p, blob in members.items()}
        inside = {user: r for user, r in records.items() if (r[2].decode() or None) == room_id}
        if not inside:
            return []
        pipe = self._redis().pipeline(transaction=False)  # several user slots: no transaction
        for person in inside:
            pipe.hlen(self._user_keys(person)[1])
        counts = await pipe.execute()
        return [
            Member(_unpack_actor(r[5]), Status(r[3].decode()), r[4].decode(), floor_id, room_id, int(n))
            for r, n in zip(inside.values(), counts)
        ]

    # --------------------------------------------------------------- campus
    async def campus_diff(self, floor_id: str, type_: str, data: dict[str, Any]) -> FloorDiff:
        _, diffs = await self._floor("f_campus", floor_id, type_, _json(data))
        return diffs[0]

    async def evacuate_room(self, floor_id: str, room_id: str) -> tuple[list[FloorDiff], list[PersonId]]:
        # Each occupant's move begins in their slot (a version; only if still in
        # the room), one script moves them all on the floor, each commits after.
        begun: list[tuple[PersonId, _User]] = []
        for occupant in await self.occupants(floor_id, room_id):
            begin = await self._user("u_move_begin", occupant.person, floor_id, "", "1", floor_id, room_id)
            if begin.tag == "ok":
                begun.append((occupant.person, begin))
        if not begun:
            return [], []
        args = [x for person, begin in begun for x in (person, begin.ver, *begin.attributes())]
        _, diffs, tags = await self._floor_raw("f_evacuate", floor_id, *args)
        moved: list[PersonId] = []
        for (person, begin), tag in zip(begun, tags):
            diffs += await self._commit(person, begin, floor_id, "", tag.decode(), [])
            if tag == b"ok":
                moved.append(person)
        return diffs, moved

    async def drop_floor(self, floor_id: str) -> list[PersonId]:
        _, _, users = await self._floor_raw("f_drop", floor_id)
        gone = [PersonId(u.decode()) for u in users]
        for person in gone:
            user = await self._user("u_vacate", person, "floor", floor_id)
            if user.tag == "none":
                continue
            version = int(user.extra[0])
            keep = user.floor if user.floor != floor_id else None
            if keep is None:
                self._note(person, version, None, None)
            # Silent on the deleted floor (its watchers heard floor_removed); a move
            # this supersedes may have left the user elsewhere: those hear a leave.
            _, clean = await self._clear(person, version, user.floors, keep=keep, silent=floor_id)
            await self._prune(person, version, clean)
        return gone

    # ------------------------------------------------------------ internals
    async def _move(
        self, person: PersonId, floor_id: str, room_id: str | None, capacity: int | None
    ) -> tuple[list[FloorDiff], Member | None]:
        room = room_id or ""
        begin = await self._user("u_move_begin", person, floor_id, room, "0", "", "")
        if begin.tag == "none":
            return [], None
        if begin.tag == "same":
            return [], begin.member()
        tag, diffs = await self._floor(
            "f_enter", floor_id, person, begin.ver, room, -1 if capacity is None else capacity, *begin.attributes()
        )
        if tag == "full":  # only a capacity-checked entry can be refused
            assert capacity is not None
            raise room_full(capacity)
        return await self._commit(person, begin, floor_id, room, tag, diffs), begin.member()

    async def _commit(
        self, person: PersonId, begin: _User, floor_id: str, room: str, entered: str, diffs: list[FloorDiff]
    ) -> list[FloorDiff]:
        """The rest of a move its floor answered ``entered``: commit, show newer
        attributes, clean the other floors. Returns every diff published."""
        if entered == "stale":  # a newer location change of this user reached the floor first
            return diffs
        commit = await self._user("u_move_commit", person, begin.ver, floor_id, room)
        if commit.tag != "ok":  # superseded or gone: the newer change cleans up after us
            return diffs
        if commit.ver != begin.ver:  # status or actor changed since begin: show the new ones
            _, shown = await self._floor("f_update", floor_id, person, commit.ver, *commit.attributes())
            diffs = diffs + shown
        left, clean = await self._clear(person, begin.ver, commit.floors, keep=floor_id)
        await self._prune(person, begin.ver, clean)
        return left + diffs

    async def _show(self, person: PersonId, user: _User) -> list[FloorDiff]:
        """Show a user's changed status or actor on their floor, at their version."""
        if user.floor is None:
            return []
        _, diffs = await self._floor("f_update", user.floor, person, user.ver, *user.attributes())
        return diffs

    async def _clear(
        self, person: PersonId, version: int, floors: tuple[str, ...], *, keep: str | None, silent: str | None = None
    ) -> tuple[list[FloorDiff], list[str]]:
        """Take the user off every floor in ``floors`` but ``keep``, at ``version``;
        returns the diffs and the floors now confirmed clean."""
        diffs: list[FloorDiff] = []
        clean: list[str] = []
        for floor_id in floors:
            if floor_id == keep:
                continue
            tag, own = await self._floor("f_leave", floor_id, person, version, "1" if floor_id == silent else "0")
            diffs += own
            if tag != "stale":
                clean.append(floor_id)
        return diffs, clean

    async def _prune(self, person: PersonId, version: int, floors: list[str]) -> None:
        if floors:
            await self._run("u_prune", self._user_keys(person), [version, *floors])

    async def _user_of(self, sid: str) -> PersonId | None:
        person = await self._redis().hget(self._node_sids, sid)
        return PersonId(as_text(person)) if person is not None else None

    async def _forget_session(self, sid: str, person: PersonId) -> None:
        self._unkeep(sid)
        pipe = self._redis().pipeline(transaction=True)
        pipe.hdel(self._node_sids, sid)
        pipe.srem(self._node_sessions, f"{person}\x00{sid}")
        await pipe.execute()

    async def _user(self, script: str, person: PersonId, *args: Any) -> _User:
        user = _User.parse(await self._run(script, self._user_keys(person), list(args)))
        if user.ver:  # the answer carries the user's state (u_vacate's: as before it)
            self._note(person, user.locver, user.floor, user.room)
        return user

    async def _floor(self, script: str, floor_id: str, *args: Any) -> tuple[str, list[FloorDiff]]:
        tag, diffs, _ = await self._floor_raw(script, floor_id, *args)
        return tag, diffs

    async def _floor_raw(self, script: str, floor_id: str, *args: Any) -> tuple[str, list[FloorDiff], list[Any]]:
        channel = f"{self._prefix}f:{floor_id}"
        reply = await self._run(script, self._floor_keys(floor_id), [channel, self.node_id, floor_id, *args])
        diffs = [FloorDiff.from_wire(floor_id, wire) for wire in json.loads(reply[1])] if reply[1] else []
        return reply[0].decode(), diffs, reply[2] if len(reply) > 2 else []


    def _user_keys(self, person: PersonId) -> list[str]:
        base = f"{self._prefix}{{u:{person}}}:"
        return [base + "presence", base + "sessions", base + "floors"]

    def _floor_keys(self, floor_id: str) -> list[str]:
        base = f"{self._prefix}{{f:{floor_id}}}:"
        return [base + "seq", base + "members", base + "occupancy", base + "gone", base + "gone_at"]




# ------------------------------------------------------------------ encoding
def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _public(actor: Actor) -> str:
    return _json(actor.public_dict())


def _pack_actor(actor: Actor) -> bytes:
    # Equal actors give equal bytes (Actor.to_record), which the scripts compare
    # to tell a changed name or profile.
    return msgpack.packb(actor.to_record(), use_bin_type=True)  # type: ignore[no-any-return]


def _unpack_actor(blob: bytes) -> Actor:
    return Actor.from_record(msgpack.unpackb(blob, raw=False))


def _wire(record: list[Any]) -> dict[str, Any]:
    """A floor's member record ``[lv, av, room, status, text, actor, public]`` as watchers see it."""
    return {**json.loads(record[6]), "status": record[3].decode(), "text": record[4].decode(),
            "room_id": record[2].decode() or None}
