"""The people directory in Redis: the :class:`~presence_server.directory.DirectoryStore`
shared by every node of a cluster.

Key layout (``P`` is the prefix, ``"vo:"`` by default); every key carries the
hash tag ``{dir}``, so each script touches one slot (Redis Cluster rule)::

    P{dir}:m:<municipality>  HASH  user id -> JSON of person_to_dict (with expires_at)
    P{dir}:exp               ZSET  "<municipality>\\0<user id>" -> expires_at (unix s)
    P{dir}:pub               HASH  "<municipality>\\0<user id>" -> JSON list of published skills
                                   (the platform opt-in; only for entries in P{dir}:m:*)

``put`` and ``forget`` are Lua scripts, so the entry and its expiry index
change together and ``forget`` compares ``seen`` atomically with the delete.
The opt-in changes with its entry in the same scripts: ``forget`` and the
sweep's ``drop_expired`` delete it, ``put`` keeps it only over an unexpired
entry, and ``publish`` writes it only onto an unexpired one.
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

# KEYS: hash, index, opt-ins. ARGV: user, entry JSON, expires_at, index member, seen
_PUT: Final = """
local old = redis.call('ZSCORE', KEYS[2], ARGV[4])
if (not old) or tonumber(old) <= tonumber(ARGV[5]) then
  redis.call('HDEL', KEYS[3], ARGV[4])  -- no entry, or an expired one: no opt-in survives
end
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
redis.call('HDEL', KEYS[3], ARGV[2])
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
    redis.call('HDEL', KEYS[3], member)
    dropped = dropped + 1
  end
end
return dropped
"""

# KEYS: hash, opt-ins. ARGV: user, index member, now, skills JSON ('' deletes)
_PUBLISH: Final = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
if tonumber(cjson.decode(raw)['expires_at']) <= tonumber(ARGV[3]) then return 0 end
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[2], ARGV[2])
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
end
return 1
"""


class RedisDirectoryStore(ScriptedRedis):
    """:class:`~presence_server.directory.store.DirectoryStore` in Redis, for cluster
    mode (layout and scripts: the module docstring). An outage raises
    :class:`~rooms.errors.StoreUnavailable`."""

    SCRIPTS = {"put": _PUT, "forget": _FORGET, "drop_expired": _DROP_EXPIRED, "publish": _PUBLISH}

    def _hash(self, municipality: str) -> str:
        return f"{self.prefix}{{dir}}:m:{municipality}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}{{dir}}:exp"

    @property
    def _optins(self) -> str:
        return f"{self.prefix}{{dir}}:pub"

    async def put(self, person: Person, *, ttl: float) -> None:
        expires_at = person.seen + ttl
        raw = json.dumps(person_to_dict(person, expires_at), ensure_ascii=False, separators=(",", ":"))
        member = f"{person.municipality}\0{person.user_id}"
        await self._run("put", [self._hash(person.municipality), self._index, self._optins],
                        [person.user_id, raw, repr(expires_at), member, repr(person.seen)])

    async def forget(self, municipality: str, user_id: str, *, seen_before: float) -> bool:
        keys = [self._hash(municipality), self._index, self._optins]
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
                keys = [self._hash(mid), self._index, self._optins]
                dropped += int(await self._run("drop_expired", keys, [repr(now), mid, *users]))
            if len(due) < SWEEP_BATCH:
                return dropped

    async def publish(self, municipality: str, user_id: str, skills: tuple[str, ...], *, now: float) -> bool:
        value = json.dumps(list(skills), ensure_ascii=False, separators=(",", ":")) if skills else ""
        keys = [self._hash(municipality), self._optins]
        return bool(await self._run("publish", keys, [user_id, f"{municipality}\0{user_id}", repr(now), value]))

    async def published(self, municipality: str, user_id: str, *, now: float) -> tuple[str, ...]:
        async with self._redis().pipeline(transaction=False) as pipe:
            pipe.hget(self._hash(municipality), user_id)
            pipe.hget(self._optins, f"{municipality}\0{user_id}")
            raw, skills = await pipe.execute()
        if raw is None or skills is None or float(json.loads(raw)["expires_at"]) <= now:
            return ()
        return tuple(json.loads(skills))

    async def published_people(self, *, now: float) -> list[tuple[Person, tuple[str, ...]]]:
        optins = await self._redis().hgetall(self._optins)
        if not optins:
            return []
        by_municipality: dict[str, list[tuple[str, tuple[str, ...]]]] = defaultdict(list)
        for member, skills in optins.items():
            mid, _, user_id = as_text(member).partition("\0")
            by_municipality[mid].append((user_id, tuple(json.loads(skills))))
        groups = sorted(by_municipality.items())
        async with self._redis().pipeline(transaction=False) as pipe:
            for mid, users in groups:
                pipe.hmget(self._hash(mid), [user_id for user_id, _ in users])
            answers = await pipe.execute()
        found: list[tuple[Person, tuple[str, ...]]] = []
        for (_, users), entries in zip(groups, answers):
            for (_, chosen), raw in zip(users, entries):
                if raw is None:
                    continue
                entry = json.loads(raw)
                if float(entry["expires_at"]) > now:
                    found.append((person_from_dict(entry), chosen))
        return found
