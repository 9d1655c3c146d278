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
        # (municipality, user id) -> published skills; only for entries in _entries
        self._published: dict[tuple[str, str], tuple[str, ...]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def put(self, person: Person, *, ttl: float) -> None:
        users = self._entries.setdefault(person.municipality, {})
        old = users.get(person.user_id)
        if old is not None and old[1] <= person.seen:  # expired: its opt-in went with it
            self._published.pop((person.municipality, person.user_id), None)
        users[person.user_id] = (person, person.seen + ttl)

    async def forget(self, municipality: str, user_id: str, *, seen_before: float) -> bool:
        users = self._entries.get(municipality, {})
        entry = users.get(user_id)
        if entry is None or entry[0].seen > seen_before:
            return False
        del users[user_id]
        self._published.pop((municipality, user_id), None)
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
        for mid, users in self._entries.items():
            for user_id in [u for u, (_, expires_at) in users.items() if expires_at <= now]:
                del users[user_id]
                self._published.pop((mid, user_id), None)
                dropped += 1
        return dropped

    async def publish(self, municipality: str, user_id: str, skills: tuple[str, ...], *, now: float) -> bool:
        if await self.get(municipality, user_id, now=now) is None:
            return False
        if skills:
            self._published[(municipality, user_id)] = tuple(skills)
        else:
            self._published.pop((municipality, user_id), None)
        return True

    async def published(self, municipality: str, user_id: str, *, now: float) -> tuple[str, ...]:
        if await self.get(municipality, user_id, now=now) is None:
            return ()
        return self._published.get((municipality, user_id), ())

    async def published_people(self, *, now: float) -> list[tuple[Person, tuple[str, ...]]]:
        found: list[tuple[Person, tuple[str, ...]]] = []
        for (mid, user_id), skills in self._published.items():
            entry = self._entries.get(mid, {}).get(user_id)
            if entry is not None and entry[1] > now:
                found.append((entry[0], skills))
        return found
