"""The audit trail in Redis: the :class:`~presence_server.audit.store.AuditStore`
shared by every node of a cluster.

Key layout (``P`` is the prefix, ``"vo:"`` by default); every key carries the
hash tag ``{audit}``, so each script touches one slot (Redis Cluster rule)::

    P{audit}:e               HASH  entry id -> JSON of AuditEntry.to_dict()
    P{audit}:all             ZSET  entry ids, score 0 (ordered by id = by time; for the purge)
    P{audit}:m:<municipality> ZSET entry ids whose scopes name the municipality, score 0
    P{audit}:p:<project>     ZSET  entry ids of the project, score 0

Ids sort by time (:func:`rooms.audit.new_entry_id`) and every index has score
0, so a time range is a lexicographic range (``ZRANGEBYLEX``) and paging by
``after`` is an exclusive bound. ``append`` is one script (the entry and every
index it belongs to, or nothing; ``HSETNX`` makes a retried append a no-op).
``purge`` reads the oldest ids in batches, looks up which indexes hold them,
and drops each batch with one script that is told every key it touches.
No TTLs: entries are records, not something alive, and go by ``purge``
(``audit.retention_days``). One slot for the trail is fine: administrative
acts and admissions come in hundreds a day, a few hundred bytes each.
"""

from __future__ import annotations

import json
from typing import Final

from presence_server.audit.store import AuditQuery, id_range
from rooms.audit import AuditEntry, entry_id_bound
from rooms.redis_link import ScriptedRedis, as_text

__all__ = ["RedisAuditStore", "PURGE_BATCH"]

#: Ids a purge drops per script run.
PURGE_BATCH: Final = 500

# KEYS: entries, all, index sets... ARGV: id, json
_APPEND: Final = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
for i = 2, #KEYS do redis.call('ZADD', KEYS[i], 0, ARGV[1]) end
return 1
"""

# KEYS: entries, all, every index set the ids may be in. ARGV: ids
_DROP: Final = """
local dropped = 0
for _, id in ipairs(ARGV) do
  dropped = dropped + redis.call('HDEL', KEYS[1], id)
  for i = 2, #KEYS do redis.call('ZREM', KEYS[i], id) end
end
return dropped
"""


class RedisAuditStore(ScriptedRedis):
    """:class:`~presence_server.audit.store.AuditStore` in Redis, for cluster mode
    (layout and scripts: the module docstring). An outage raises
    :class:`~rooms.errors.StoreUnavailable`."""

    SCRIPTS = {"append": _APPEND, "drop": _DROP}

    @property
    def _entries(self) -> str:
        return f"{self.prefix}{{audit}}:e"

    @property
    def _all(self) -> str:
        return f"{self.prefix}{{audit}}:all"

    def _municipality(self, municipality: str) -> str:
        return f"{self.prefix}{{audit}}:m:{municipality}"

    def _project(self, project: str) -> str:
        return f"{self.prefix}{{audit}}:p:{project}"

    def _indexes(self, entry: AuditEntry) -> list[str]:
        keys = [self._all, *(self._municipality(s) for s in entry.scopes)]
        if entry.project is not None:
            keys.append(self._project(entry.project))
        return keys

    async def append(self, entry: AuditEntry) -> None:
        raw = json.dumps(entry.to_dict(), ensure_ascii=False, separators=(",", ":"))
        await self._run("append", [self._entries, *self._indexes(entry)], [entry.id, raw])

    async def query(self, query: AuditQuery) -> list[AuditEntry]:
        if query.municipality is not None:
            index = self._municipality(query.municipality)
        else:
            assert query.project is not None  # AuditQuery: exactly one scope
            index = self._project(query.project)
        low, inclusive, high = id_range(query)
        start = "-" if low is None else ("[" if inclusive else "(") + low
        stop = "+" if high is None else "(" + high
        client = self._redis()
        ids = await client.zrangebylex(index, start, stop, start=0, num=query.limit)
        if not ids:
            return []
        bodies = await client.hmget(self._entries, ids)
        # An id whose body is gone was purged between the two reads: skip it.
        return [AuditEntry.from_dict(json.loads(body)) for body in bodies if body is not None]

    async def purge(self, *, before: float) -> int:
        bound = "(" + entry_id_bound(before)
        client = self._redis()
        dropped = 0
        previous: list[str] = []
        while True:
            ids = [as_text(i) for i in await client.zrangebylex(self._all, "-", bound, start=0, num=PURGE_BATCH)]
            if not ids or ids == previous:  # nothing left, or nothing could be dropped: never spin
                return dropped
            previous = ids
            keys = {self._entries: None, self._all: None}
            for body in await client.hmget(self._entries, ids):
                if body is not None:
                    keys.update(dict.fromkeys(self._indexes(AuditEntry.from_dict(json.loads(body)))))
            dropped += int(await self._run("drop", list(keys), ids))
            if len(ids) < PURGE_BATCH:
                return dropped
