"""Picks the campus store by configuration, so nothing else names a backend class."""

from __future__ import annotations

from typing import Final

from rooms.store import CampusStore

__all__ = ["make_campus_store", "BACKENDS", "DEFAULT_SQLITE_PATH"]

BACKENDS: Final = ("memory", "sqlite")

#: Where the SQLite store lives when the configuration names no file.
DEFAULT_SQLITE_PATH: Final = "var/campus.sqlite3"


def make_campus_store(backend: str, *, sqlite_path: str | None = None) -> CampusStore:
    """A new, not yet opened store for ``backend`` ("memory" or "sqlite").

    ``sqlite_path`` is only read by the SQLite backend (default
    :data:`DEFAULT_SQLITE_PATH`). Raises ``ValueError`` for an unknown backend.
    """
    # Imported here so that choosing one backend never loads the others' modules
    # (the Redis one will need the optional ``redis`` package).
    if backend == "memory":
        from rooms.store_memory import MemoryCampusStore

        return MemoryCampusStore()
    if backend == "sqlite":
        from rooms.store_sqlite import SqliteCampusStore

        return SqliteCampusStore(sqlite_path or DEFAULT_SQLITE_PATH)
    # "redis" (cluster mode) plugs in here: rooms.store_redis.RedisCampusStore.
    raise ValueError(f"unknown campus store backend {backend!r}; expected one of {', '.join(BACKENDS)}")
