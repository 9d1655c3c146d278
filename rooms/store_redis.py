"""The campus store in Redis: the shared store for cluster mode.

Key layout (``P`` is the prefix, ``"vo:"`` by default); every value is a
msgpack-encoded dict, the same fields as the model's ``to_dict`` (plus a room's
``created_at``)::

    P{campus}:municipalities        HASH  municipality id -> municipality
    P{campus}:cooperations          HASH  cooperation id  -> cooperation
    P{campus}:floors                HASH  floor id        -> floor
    P{campus}:rooms                 HASH  room id         -> room
    P{campus}:floor_rooms:<floor>   SET   ids of the rooms on <floor>
    P{campus}:projects              HASH  project id      -> project

Every key carries the one hash tag ``{campus}``, so all of them live in one slot
and the multi-key scripts and transactions below stay atomic on Redis Cluster
too. Whatever the prefix, the tag a key hashes by lies inside ``P{campus}``, the
part all keys share, so the keys never split across slots. Nothing expires: the
campus is configuration, not something alive.

Invariant: a room id is in ``floor_rooms:<f>`` exactly when the room is stored
with ``floor_id == f``. ``delete_floor`` relies on it to find the floor's rooms.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from rooms.model import Cooperation, Floor, Municipality, Room
from rooms.project import Project
from rooms.redis_link import RedisLink, ScriptedRedis, as_bytes
from rooms.store import CampusData

__all__ = ["RedisCampusStore"]

#: The hash tag every campus key carries (see the module docstring).
HASH_TAG: Final = "{campus}"

# How often put_room / delete_room re-read a room that another writer changed
# between their read and their script. Writers on one node are serialised by the
# campus service, so a retry needs two nodes editing the same room at once.
_MAX_ATTEMPTS: Final = 20

# Scripts name every key they touch in KEYS, as Redis Cluster requires; none
# builds a key name itself. That is why put_room and delete_room first read the
# room (to learn the floor whose index they must also change) and then hand the
# script the bytes they read: the script refuses (returns -1) if the room changed
# in between, and the caller reads again. ARGV values are bytes; '' means "none".

# KEYS: floors, rooms, floor_rooms:<new floor>, floor_rooms:<old floor or new floor>
# ARGV: room id, new floor id, new encoded room, encoded room as read ('' if none)
# Returns 1 when stored, 0 when the floor does not exist, -1 when the room changed.
_PUT_ROOM: Final = """
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then
    return 0
end
local current = redis.call('HGET', KEYS[2], ARGV[1])
if (current or '') ~= ARGV[4] then
    return -1
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# KEYS: rooms, floor_rooms:<the room's floor>
# ARGV: room id, encoded room as read
# Returns 1 when deleted, -1 when the room changed (or went) since it was read.
_DELETE_ROOM: Final = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
    return -1
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS: floors, rooms, floor_rooms:<floor>
# ARGV: floor id
# Returns 1 when the floor existed (it, its rooms and its index are gone), else 0.
_DELETE_FLOOR: Final = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
    return 0
end
local ids = redis.call('SMEMBERS', KEYS[3])
-- In batches: unpack() of a very long list would overflow Lua's stack.
for i = 1, #ids, 500 do
    redis.call('HDEL', KEYS[2], unpack(ids, i, math.min(i + 499, #ids)))
end
redis.call('DEL', KEYS[3])
return 1
"""


class RedisCampusStore(ScriptedRedis):
    """:class:`rooms.store.CampusStore` in Redis, shared by every node of a cluster.

    Contract as in :mod:`rooms.store`: each method is one atomic Redis command,
    script or MULTI/EXEC, so on error nothing was changed, and ``load`` reads all
    four hashes as of one moment. ``put_room`` raises ``KeyError`` if the room's
    floor does not exist, as the other stores do. An outage raises
    :class:`~rooms.errors.StoreUnavailable`; whether to retry is the caller's
    decision. Durability is whatever the Redis server is configured for (AOF,
    RDB). Stores with different prefixes share a server without seeing each other.
    """

    SCRIPTS = {"put_room": _PUT_ROOM, "delete_room": _DELETE_ROOM, "delete_floor": _DELETE_FLOOR}

    def __init__(self, redis: RedisLink | str, *, prefix: str = "vo:") -> None:
        super().__init__(redis, prefix=prefix)
        base = f"{prefix}{HASH_TAG}:"
        self._municipalities_key: Final = base + "municipalities"
        self._cooperations_key: Final = base + "cooperations"
        self._floors_key: Final = base + "floors"
        self._rooms_key: Final = base + "rooms"
        self._floor_rooms_base: Final = base + "floor_rooms:"
        self._projects_key: Final = base + "projects"

    async def load(self) -> CampusData:
        # MULTI/EXEC: the reads run back to back with no write in between.
        pipe = self._redis().pipeline(transaction=True)
        keys = (self._municipalities_key, self._cooperations_key, self._floors_key, self._rooms_key, self._projects_key)
        for key in keys:
            pipe.hgetall(key)
        municipalities, cooperations, floors, rooms, projects = await pipe.execute()
        data = CampusData()
        for blob in municipalities.values():
            municipality = _decode_municipality(blob)
            data.municipalities[municipality.id] = municipality
        for blob in cooperations.values():
            cooperation = _decode_cooperation(blob)
            data.cooperations[cooperation.id] = cooperation
        for blob in floors.values():
            floor = Floor.from_dict(_unpack(blob))
            data.floors[floor.id] = floor
        for blob in rooms.values():
            room = Room.from_dict(_unpack(blob))
            data.rooms[room.id] = room
        for blob in projects.values():
            project = Project.from_dict(_unpack(blob))
            data.projects[project.id] = project
        return data

    async def put_municipality(self, municipality: Municipality) -> None:
        blob = _pack({"id": municipality.id, "name": municipality.name})
        await self._redis().hset(self._municipalities_key, municipality.id, blob)

    async def put_cooperation(self, cooperation: Cooperation) -> None:
        blob = _pack({"id": cooperation.id, "name": cooperation.name, "members": list(cooperation.members)})
        await self._redis().hset(self._cooperations_key, cooperation.id, blob)

    async def put_floor(self, floor: Floor) -> None:
        # A plain HSET replaces the floor and leaves its rooms and their index alone.
        await self._redis().hset(self._floors_key, floor.id, _pack(floor.to_dict()))

    async def delete_floor(self, floor_id: str) -> bool:
        keys = [self._floors_key, self._rooms_key, self._floor_rooms_key(floor_id)]
        return int(await self._run("delete_floor", keys, [floor_id])) == 1

    async def put_room(self, room: Room) -> None:
        client = self._redis()
        blob = _pack({**room.to_dict(), "created_at": room.created_at})
        for _ in range(_MAX_ATTEMPTS):
            current = _optional_bytes(await client.hget(self._rooms_key, room.id))
            old_floor = room.floor_id if current is None else _unpack(current)["floor_id"]
            keys = [
                self._floors_key,
                self._rooms_key,
                self._floor_rooms_key(room.floor_id),
                self._floor_rooms_key(old_floor),
            ]
            result = int(await self._run("put_room", keys, [room.id, room.floor_id, blob, current or b""]))
            if result == 1:
                return
            if result == 0:
                raise KeyError(f"floor {room.floor_id!r} does not exist")
        raise RuntimeError(f"room {room.id!r} kept changing under put_room; gave up after {_MAX_ATTEMPTS} attempts")

    async def delete_room(self, room_id: str) -> bool:
        client = self._redis()
        for _ in range(_MAX_ATTEMPTS):
            current = _optional_bytes(await client.hget(self._rooms_key, room_id))
            if current is None:
                return False
            keys = [self._rooms_key, self._floor_rooms_key(_unpack(current)["floor_id"])]
            if int(await self._run("delete_room", keys, [room_id, current])) == 1:
                return True
        raise RuntimeError(f"room {room_id!r} kept changing under delete_room; gave up after {_MAX_ATTEMPTS} attempts")

    async def put_project(self, project: Project) -> None:
        await self._redis().hset(self._projects_key, project.id, _pack(project.to_dict()))

    async def delete_project(self, project_id: str) -> bool:
        return int(await self._redis().hdel(self._projects_key, project_id)) == 1

    # -- helpers --------------------------------------------------------------

    def _floor_rooms_key(self, floor_id: str) -> str:
        return self._floor_rooms_base + floor_id


def _optional_bytes(reply: object) -> bytes | None:
    return None if reply is None else as_bytes(reply)


def _pack(value: dict[str, Any]) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def _unpack(blob: bytes) -> dict[str, Any]:
    value = msgpack.unpackb(blob, raw=False)
    if not isinstance(value, dict):
        raise ValueError(f"campus value is not a msgpack map: {blob[:40]!r}")
    return value


def _decode_municipality(blob: bytes) -> Municipality:
    d = _unpack(blob)
    return Municipality(d["id"], d["name"])


def _decode_cooperation(blob: bytes) -> Cooperation:
    d = _unpack(blob)
    return Cooperation(d["id"], d["name"], tuple(d["members"]))
