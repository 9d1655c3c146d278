"""What the Redis stores of a node share: one client, Lua scripts, open and close."""

from __future__ import annotations

import weakref
from typing import Any, ClassVar, Final, Mapping

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

__all__ = ["ScriptedRedis", "POOL_CONNECTIONS", "POOL_WAIT_SECONDS", "drop_idle_connections"]

#: Connections a store opens to Redis at most; more concurrent calls wait.
POOL_CONNECTIONS: Final = 64
#: How long a call waits for a free connection before the store counts as away.
POOL_WAIT_SECONDS: Final = 10.0

_OPEN: weakref.WeakSet[ScriptedRedis] = weakref.WeakSet()


async def drop_idle_connections() -> None:
    """Close the idle pooled connections of every open store of this process. Call it
    when Redis is back after an outage: they all died with the old server, and
    redis-py does not retry a command on one (a MULTI/EXEC, or a script that might
    have run), so each would answer its next request ``unavailable``."""
    for store in list(_OPEN):
        if store._client is not None:
            await store._client.connection_pool.disconnect(inuse_connections=False)


class ScriptedRedis:
    """Base of a store that runs named Lua scripts on one Redis client.

    Subclasses set ``SCRIPTS`` (name -> Lua source) and run them with
    :meth:`_run`, passing every key the script touches (the Redis Cluster rule).
    """

    SCRIPTS: ClassVar[Mapping[str, str]] = {}

    def __init__(self, url: str, *, prefix: str) -> None:
        self._url = url
        self._prefix = prefix
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}

    @property
    def prefix(self) -> str:
        return self._prefix

    async def open(self) -> None:
        """Connect and register the scripts. Idempotent; raises if Redis is away."""
        if self._client is not None:
            return
        # A blocking pool: a burst of requests (two hundred people leaving at once)
        # waits for a free connection instead of failing with MaxConnectionsError,
        # which redis-py's default pool raises past 100 connections in use.
        pool = aioredis.BlockingConnectionPool.from_url(
            self._url, decode_responses=False, max_connections=POOL_CONNECTIONS, timeout=POOL_WAIT_SECONDS
        )
        client = aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
        try:
            await client.ping()  # fail at start-up, not on the first request
        except BaseException:
            await client.aclose()
            raise
        # A Script keeps its SHA and reloads itself after a NOSCRIPT (restart, failover).
        self._scripts = {name: client.register_script(source) for name, source in self.SCRIPTS.items()}
        self._client = client
        _OPEN.add(self)

    async def close(self) -> None:
        """Idempotent; a closed store may be opened again."""
        if self._client is None:
            return
        client, self._client = self._client, None
        _OPEN.discard(self)
        self._scripts = {}
        await client.aclose()

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """The one place scripts run (tests wrap it to check the keys' slots)."""
        return await self._scripts_or_raise()[script](keys=keys, args=args)

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError(f"{type(self).__name__} is not open: call .open() first")
        return self._client

    def _scripts_or_raise(self) -> dict[str, AsyncScript]:
        self._redis()
        return self._scripts
