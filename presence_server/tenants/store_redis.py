"""The tenant store in Redis: cluster mode, shared by every node.

Key layout (``P`` is the deployment's prefix, ``redis.prefix``)::

    P{tenants}:municipalities   HASH  municipality id -> TenantRecord.to_json()

One key, so every command touches one slot (Redis Cluster). No TTL: a
municipality is configuration, not something alive. ``create`` is ``HSETNX``
(atomic: one of two concurrent adds wins); ``replace`` is a short Lua script
(``HEXISTS`` then ``HSET``), so it never creates a record a concurrent writer
did not. Outages surface as :class:`~rooms.errors.StoreUnavailable` through
the shared :class:`~rooms.redis_link.RedisLink`.
"""

from __future__ import annotations

from typing import Final

from presence_server.tenants.store import TenantRecord
from rooms.redis_link import RedisLink, ScriptedRedis, as_text

__all__ = ["RedisTenantStore", "HASH_TAG"]

HASH_TAG: Final = "{tenants}"

_REPLACE: Final = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class RedisTenantStore(ScriptedRedis):
    """:class:`~presence_server.tenants.store.TenantStore` in one Redis hash."""

    SCRIPTS = {"replace": _REPLACE}

    def __init__(self, redis: RedisLink | str, *, prefix: str = "vo:") -> None:
        super().__init__(redis, prefix=prefix)
        self._key: Final = f"{prefix}{HASH_TAG}:municipalities"

    @property
    def key(self) -> str:
        return self._key

    async def load(self) -> dict[str, TenantRecord]:
        blobs = await self._redis().hgetall(self._key)
        records = [TenantRecord.from_json(as_text(blob)) for blob in blobs.values()]
        return {r.id: r for r in records}

    async def get(self, municipality_id: str) -> TenantRecord | None:
        blob = await self._redis().hget(self._key, municipality_id)
        return None if blob is None else TenantRecord.from_json(as_text(blob))

    async def create(self, record: TenantRecord) -> bool:
        return bool(await self._redis().hsetnx(self._key, record.id, record.to_json()))

    async def replace(self, record: TenantRecord) -> bool:
        return bool(await self._run("replace", [self._key], [record.id, record.to_json()]))
