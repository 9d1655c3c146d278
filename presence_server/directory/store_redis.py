"""The people directory in Redis: the :class:`~presence_server.directory.DirectoryStore`
shared by every node of a cluster.

Key layout (``P`` is the prefix, ``"vo:"`` by default); every key carries the
hash tag ``{dir}``, so each script touches one slot (Redis Cluster rule)::

    P{dir}:m:<municipality>  HASH  user id -> JSON of person_to_dict (with expires_at)
    P{dir}:exp               ZSET  "<municipality>\\0<user id>" -> expires_at (unix s)

``put`` and ``forget`` are Lua scripts, so the entry and its expiry index
change together and ``forget`` compares ``seen`` atomically with the delete.
``sweep`` reads the due part of the index and drops each entry with a script
that checks the expiry again (a ``put`` in between has moved it). Readers
filter expired entries themselves, so an entry is never returned after its
expiry even before a sweep ran. One slot for the whole directory is fine at
the scale of a cooperation (thousands of people, a few hundred bytes each).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Final

from rooms.redis_link import ScriptedRedis, as_text
from presence_server.directory.store import person_from_dict, person_to_dict
from rooms.people import Person

__all__ = ["RedisDirectoryStore", "SWEEP_BATCH"]

#: Index entries a sweep reads per round.
SWEEP_BATCH: Final = 500

_PUT: Final = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""

# ARGV: user, index member, seen_before
_FORGET: Final = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local entry = cjson.decode(raw)
if tonumber(entry['seen']) > tonumber(ARGV[3]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""

# ARGV: now, municipality, user ids...
_DROP_EXPIRED: Final = """
local dropped = 0
for i = 3, #ARGV do
  local member = ARGV[2] .. '\\0' .. ARGV[i]
  local score = redis.call('ZSCORE', KEYS[2], member)
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], member)
    dropped = dropped + 1
  end
end
return dropped
"""


class RedisDirectoryStore(ScriptedRedis):
    """:class:`~presence_server.directory.store.DirectoryStore` in Redis, for cluster
    mode (layout and scripts: the module docstring). An outage raises
    :class:`~rooms.errors.StoreUnavailable`."""

    SCRIPTS = {"put": _PUT, "forget": _FORGET, "drop_expired": _DROP_EXPIRED}

    def _hash(self, municipality: str) -> str:
        return f"{self.prefix}{{dir}}:m:{municipality}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}{{dir}}:exp"

    async def put(self, person: Person, *, ttl: float) -> None:
        expires_at = person.seen + ttl
        raw = json.dumps(person_to_dict(person, expires_at), ensure_ascii=False, separators=(",", ":"))
        member = f"{person.municipality}\0{person.user_id}"
        await self._run("put", [self._hash(person.municipality), self._index],
                        [person.user_id, raw, repr(expires_at), member])

    async def forget(self, municipality: str, user_id: str, *, seen_before: float) -> bool:
        keys = [self._hash(municipality), self._index]
        return bool(await self._run("forget", keys, [user_id, f"{municipality}\0{user_id}", repr(seen_before)]))

    async def get(self, municipality: str, user_id: str, *, now: float) -> Person | None:
        raw = await self._redis().hget(self._hash(municipality), user_id)
        if raw is None:
            return None
        entry = json.loads(raw)
        return person_from_dict(entry) if float(entry["expires_at"]) > now else None

    async def people(self, municipalities: Iterable[str], *, now: float) -> list[Person]:
        wanted = sorted(set(municipalities))
        if not wanted:
            return []
        async with self._redis().pipeline(transaction=False) as pipe:
            for mid in wanted:
                pipe.hvals(self._hash(mid))
            answers = await pipe.execute()
        people: list[Person] = []
        for values in answers:
            for raw in values:
                entry = json.loads(raw)
                if float(entry["expires_at"]) > now:
                    people.append(person_from_dict(entry))
        return people

    async def sweep(self, *, now: float) -> int:
        dropped = 0
        while True:
            due = await self._redis().zrangebyscore(self._index, "-inf", repr(now), start=0, num=SWEEP_BATCH)
            if not due:
                return dropped
            by_municipality: dict[str, list[str]] = defaultdict(list)
            for member in due:
                mid, _, user_id = as_text(member).partition("\0")
                by_municipality[mid].append(user_id)
            for mid, users in by_municipality.items():
                keys = [self._hash(mid), self._index]
                dropped += int(await self._run("drop_expired", keys, [repr(now), mid, *users]))
            if len(due) < SWEEP_BATCH:
                return dropped
