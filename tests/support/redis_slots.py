"""Record which hash slots every Lua script of a store touches (Redis Cluster rule:
one slot per script). Wraps the one place ScriptedRedis runs scripts."""

from __future__ import annotations

from typing import Any

from redis.cluster import key_slot

from rooms.redis_link import ScriptedRedis

__all__ = ["record_script_slots"]


def record_script_slots(*stores: ScriptedRedis) -> list[tuple[str, set[int]]]:
    """From now on, every script the stores run appends (name, slots of its keys)."""
    ran: list[tuple[str, set[int]]] = []
    for store in stores:
        run = store._run

        async def checked(script: str, keys: list[str], args: list[Any], run: Any = run) -> Any:
            ran.append((script, {key_slot(k.encode()) for k in keys}))
            return await run(script, keys, args)

        store._run = checked  # type: ignore[method-assign]
    return ran
