"""Which exceptions mean "the shared store is away", so callers can answer
``unavailable`` (retry later) instead of ``internal``."""

from __future__ import annotations

from typing import Final

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["STORE_UNAVAILABLE"]

STORE_UNAVAILABLE: Final = (RedisConnectionError, RedisTimeoutError, ConnectionRefusedError)
