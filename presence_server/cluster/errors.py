"""Which exceptions mean "the shared store is away", so callers can answer
``unavailable`` (retry later) instead of ``internal``."""

from __future__ import annotations

from typing import Final

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["STORE_UNAVAILABLE", "StoreForgot"]


class StoreForgot(RedisConnectionError):
    """Redis no longer holds a session this node holds: the node was declared dead
    (fenced) or Redis lost its data. Answered ``unavailable`` like an outage; the
    node registers the session again as soon as it notices (within a heartbeat)."""


STORE_UNAVAILABLE: Final = (RedisConnectionError, RedisTimeoutError, ConnectionRefusedError)
