"""The people directory in this process: the
:class:`~presence_server.directory.store.DirectoryStore` of a single node.

Single node only: another node cannot see it, and it is empty after a restart.
"""

from __future__ import annotations

from collections.abc import Iterable

from rooms.people import Person

__all__ = ["MemoryDirectoryStore"]


class MemoryDirectoryStore:
    """The directory in this process. Single node only; forgotten on restart."""

    def __init__(self) -> None:
        # municipality -> user id -> (person, expires_at)
        self._entries: dict[str, dict[str, tuple[Person, float]]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def put(self, person: Person, *, ttl: float) -> None:
        self._entries.setdefault(person.municipality, {})[person.user_id] = (person, person.seen + ttl)

    async def forget(self, municipality: str, user_id: str, *, seen_before: float) -> bool:
        users = self._entries.get(municipality, {})
        entry = users.get(user_id)
        if entry is None or entry[0].seen > seen_before:
            return False
        del users[user_id]
        return True

    async def get(self, municipality: str, user_id: str, *, now: float) -> Person | None:
        entry = self._entries.get(municipality, {}).get(user_id)
        return entry[0] if entry is not None and entry[1] > now else None

    async def people(self, municipalities: Iterable[str], *, now: float) -> list[Person]:
        return [
            person
            for mid in set(municipalities)
            for person, expires_at in self._entries.get(mid, {}).values()
            if expires_at > now
        ]

    async def sweep(self, *, now: float) -> int:
        dropped = 0
        for users in self._entries.values():
            for user_id in [u for u, (_, expires_at) in users.items() if expires_at <= now]:
                del users[user_id]
                dropped += 1
        return dropped
