"""Picks the campus store by configuration, so nothing else names a backend class."""

from __future__ import annotations

from typing import Final

from rooms.store import CampusStore

__all__ = ["make_campus_store", "BACKENDS", "DEFAULT_SQLITE_PATH", "DEFAULT_REDIS_PREFIX"]

BACKENDS: Final = ("memory", "sqlite", "redis")

#: Where the SQLite store lives when the configuration names no file.
DEFAULT_SQLITE_PATH: Final = "var/campus.sqlite3"

#: The key prefix of the Redis store when the configuration names none.
DEFAULT_REDIS_PREFIX: Final = "vo:"


def make_campus_store(
    backend: str,
    *,
    sqlite_path: str | None = None,
    redis_url: str | None = None,
    redis_prefix: str = DEFAULT_REDIS_PREFIX,
) -> CampusStore:
    """A new, not yet opened store for ``backend`` ("memory", "sqlite" or "redis").

    ``sqlite_path`` is only read by the SQLite backend (default
    :data:`DEFAULT_SQLITE_PATH`); ``redis_url`` and ``redis_prefix`` only by the
    Redis backend, which has no default URL. Raises ``ValueError`` for an unknown
    backend, or for "redis" without ``redis_url``.
    """
    # Imported here so that choosing one backend never loads the others' modules:
    # the Redis one needs the optional ``redis`` package, which a single node lacks.
    if backend == "memory":
        from rooms.store_memory import MemoryCampusStore

        return MemoryCampusStore()
    if backend == "sqlite":
        from rooms.store_sqlite import SqliteCampusStore

        return SqliteCampusStore(sqlite_path or DEFAULT_SQLITE_PATH)
    if backend == "redis":
        if not redis_url:
            raise ValueError("campus store backend 'redis' needs a redis_url")
        from rooms.store_redis import RedisCampusStore

        return RedisCampusStore(redis_url, prefix=redis_prefix)
    raise ValueError(f"unknown campus store backend {backend!r}; expected one of {', '.join(BACKENDS)}")
