"""The one Redis connection policy of a node, and the base of its Redis stores.

Every Redis-backed part of a node — the campus, presence, knock, call and
directory stores, the bus and the membership heartbeat — talks to Redis through
one :class:`RedisLink`: one client over one connection pool, so a node opens
one pool with one policy instead of one per part:

* a *blocking* pool of at most :data:`POOL_CONNECTIONS` connections: a burst
  (two hundred people leaving at once) waits up to :data:`POOL_WAIT_SECONDS`
  for a free connection instead of failing, as redis-py's default pool does
  past its limit;
* bytes in and out (``decode_responses=False``): Lua scripts and msgpack
  records are bytes, and each store decodes what it reads;
* TCP keepalive, so a silent peer ends the bus's blocking read;
* the bus's pub/sub takes one connection of the same pool for as long as it
  is subscribed (the only connection a node holds open on its own).

Errors: an outage (connection refused or lost, a timeout, a pool that stayed
full, a replica that is read-only during a failover) becomes
:class:`~rooms.errors.StoreUnavailable` in :func:`translated`, the one place
that knows redis-py's exception types; the client below applies it to every
command and pipeline. Other Redis errors (a script bug, a wrong key type) are
bugs, not outages, and propagate unchanged.

:class:`ScriptedRedis` is the base of a store on the link: its Lua scripts,
open and close. Given a URL instead of a link, a store makes and owns a link of
its own (tests, tools); given a link, it shares it and leaves closing it to the
link's owner (:func:`presence_server.backends.make_backends`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Final

import redis.asyncio as aioredis
import redis.exceptions as rx
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from rooms.errors import StoreUnavailable

__all__ = [
    "RedisLink",
    "ScriptedRedis",
    "translated",
    "as_bytes",
    "as_text",
    "scored",
    "POOL_CONNECTIONS",
    "POOL_WAIT_SECONDS",
]

#: Connections a node opens to Redis at most; more concurrent calls wait.
POOL_CONNECTIONS: Final = 64
#: How long a call waits for a free connection before Redis counts as away.
POOL_WAIT_SECONDS: Final = 10.0

# redis-py wraps socket errors in its ConnectionError, but a few paths (DNS,
# a refused connect under some event loops) still surface a bare OSError.
_OUTAGES: Final = (rx.ConnectionError, rx.TimeoutError, rx.ReadOnlyError, OSError)


@contextmanager
def translated() -> Iterator[None]:
    """Run a Redis call; an outage leaves it as :class:`StoreUnavailable`."""
    try:
        yield
    except _OUTAGES as exc:
        raise StoreUnavailable(f"redis: {exc or type(exc).__name__}") from exc


def as_bytes(reply: object) -> bytes:
    """One string reply of the link's client. redis-py types replies ``bytes | str``
    (it may decode them); the link never does, so anything else is a bug here."""
    if isinstance(reply, bytes):
        return reply
    raise TypeError(f"expected a bytes reply from Redis, got {type(reply).__name__}")


def as_text(reply: object) -> str:
    """One string reply, decoded (UTF-8): ids, names, numbers as text."""
    return as_bytes(reply).decode()


def scored(replies: object) -> list[tuple[bytes, float]]:
    """The reply of a ``ZRANGE…`` with ``withscores=True``: (member, score) pairs."""
    if not isinstance(replies, list):
        raise TypeError(f"expected a list reply from Redis, got {type(replies).__name__}")
    return [(as_bytes(member), float(score)) for member, score in replies]


class _Pipeline(Pipeline):
    """A pipeline whose round trip translates outages like any command."""

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        with translated():
            return await super().execute(raise_on_error)


class _Client(aioredis.Redis):
    """redis-py's client with every command and pipeline translated (scripts run
    as EVALSHA commands, so they are covered too)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        with translated():
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> _Pipeline:
        return _Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class RedisLink:
    """One node's connection to Redis (see the module docstring for the policy).

    Constructing it does no I/O; :meth:`open` connects and checks the server
    answers, :meth:`close` releases every connection. Both are idempotent, and
    a closed link may be opened again.
    """

    def __init__(self, url: str) -> None:
        self._url: Final = url
        self._client: aioredis.Redis | None = None

    @property
    def url(self) -> str:
        return self._url

    @property
    def is_open(self) -> bool:
        return self._client is not None

    @property
    def client(self) -> aioredis.Redis:
        """The shared client; its commands raise StoreUnavailable for an outage."""
        if self._client is None:
            raise RuntimeError("RedisLink is not open: call .open() first")
        return self._client

    async def open(self) -> None:
        """Connect. Raises :class:`StoreUnavailable` (and stays closed) if Redis is away."""
        if self._client is not None:
            return
        pool = aioredis.BlockingConnectionPool.from_url(
            self._url,
            decode_responses=False,
            socket_keepalive=True,
            max_connections=POOL_CONNECTIONS,
            timeout=POOL_WAIT_SECONDS,
        )
        client = _Client.from_pool(pool)  # the client owns the pool: aclose() closes it
        try:
            await client.ping()  # fail at start-up, not on the first request
        except BaseException:
            await client.aclose()
            raise
        self._client = client

    async def close(self) -> None:
        if self._client is None:
            return
        client, self._client = self._client, None
        await client.aclose()

    async def drop_idle_connections(self) -> None:
        """Close the idle connections of the shared pool. Call it when Redis is back
        after an outage: they all died with the old server, and redis-py does not
        retry a command on one (a MULTI/EXEC, or a script that might have run), so
        each would answer its next request ``unavailable``. Connections in use (the
        bus's subscription) stay; their owners notice and reconnect themselves."""
        if self._client is not None:
            await self._client.connection_pool.disconnect(inuse_connections=False)


class ScriptedRedis:
    """Base of a store on a :class:`RedisLink` that runs named Lua scripts.

    Subclasses set ``SCRIPTS`` (name -> Lua source) and run them with
    :meth:`_run`, passing every key the script touches (the Redis Cluster rule).
    A store answers only between its own :meth:`open` and :meth:`close`,
    whether or not the link it shares is open for others.
    """

    SCRIPTS: ClassVar[Mapping[str, str]] = {}

    def __init__(self, redis: RedisLink | str, *, prefix: str) -> None:
        self._owns_link: Final = isinstance(redis, str)
        self._link: Final = RedisLink(redis) if isinstance(redis, str) else redis
        self._prefix: Final = prefix
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}

    @property
    def url(self) -> str:
        return self._link.url

    @property
    def prefix(self) -> str:
        return self._prefix

    async def open(self) -> None:
        """Connect (if the link is not open yet) and register the scripts.
        Idempotent; raises StoreUnavailable if Redis is away."""
        if self._client is not None:
            return
        await self._link.open()
        client = self._link.client
        # A Script keeps its SHA and reloads itself after a NOSCRIPT (restart, failover).
        self._scripts = {name: client.register_script(source) for name, source in self.SCRIPTS.items()}
        self._client = client

    async def close(self) -> None:
        """Idempotent; a closed store may be opened again. Closes the link only if it owns it."""
        if self._client is None:
            return
        self._client = None
        self._scripts = {}
        if self._owns_link:
            await self._link.close()

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
