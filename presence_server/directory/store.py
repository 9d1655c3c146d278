"""The people directory: profiles of people seen, for the finder and badges.

A directory entry is a :class:`~rooms.people.Person` (user id, municipality,
name, department, job title, skills, when last seen) with an expiry. Nothing
else is kept: no status, no location, no history; presence comes from the
presence store when someone asks.

Contract (the same for every store; ``tests/test_directory_contract.py`` runs
it against each):

* entries are keyed by (municipality, user id): the same user id in two
  municipalities is two people;
* :meth:`DirectoryStore.put` replaces the entry and its expiry (``seen + ttl``);
* an entry is never returned at or after its expiry, and expired entries are
  deleted by :meth:`DirectoryStore.sweep` (which readers may also do lazily);
* :meth:`DirectoryStore.forget` deletes an entry only if it was seen at or
  before ``seen_before``, so a "gone" that races a reconnect elsewhere cannot
  delete the newer entry.

The platform directory (docs/portal.md, "Beyond the cooperation") adds one
thing per entry: the skills its person chose to publish platform-wide (the
*opt-in*). It lives exactly as long as the entry:

* :meth:`DirectoryStore.publish` stores it only on an unexpired entry (nothing
  is kept about someone the directory does not keep) and an empty list deletes it;
* :meth:`DirectoryStore.put` keeps the opt-in of an unexpired entry it replaces
  (a token refresh or a reconnect is the same person) and drops that of an
  expired one;
* :meth:`DirectoryStore.forget` and :meth:`DirectoryStore.sweep` drop it with
  the entry;
* :meth:`DirectoryStore.published_people` returns only unexpired entries with
  a non-empty opt-in. The store keeps what it was given; which of those skills
  still count (the person still has them, their town still publishes them) is
  the service's question at read time.

Implementations: :class:`~presence_server.directory.store_memory.MemoryDirectoryStore`
(one node only: another node cannot see it, and it is empty after a restart)
and :class:`~presence_server.directory.store_redis.RedisDirectoryStore`
(cluster mode).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from rooms.actors import Profile
from rooms.people import Person

__all__ = ["DirectoryStore", "person_to_dict", "person_from_dict"]


class DirectoryStore(Protocol):
    async def open(self) -> None:
        """Connect / prepare. Idempotent."""

    async def close(self) -> None:
        """Release resources. Idempotent."""

    async def put(self, person: Person, *, ttl: float) -> None:
        """Add or replace ``person``; it expires at ``person.seen + ttl``."""

    async def forget(self, municipality: str, user_id: str, *, seen_before: float) -> bool:
        """Delete the entry if it was seen at or before ``seen_before``; True if deleted."""

    async def get(self, municipality: str, user_id: str, *, now: float) -> Person | None:
        """The entry, unless missing or expired at ``now``."""

    async def people(self, municipalities: Iterable[str], *, now: float) -> list[Person]:
        """Every unexpired entry of the given municipalities (in no particular order)."""

    async def sweep(self, *, now: float) -> int:
        """Delete entries expired at ``now`` (and their opt-ins); returns how many."""

    async def publish(self, municipality: str, user_id: str, skills: tuple[str, ...], *, now: float) -> bool:
        """Store the skills the person publishes platform-wide (empty: none, the
        opt-in is deleted). False, and nothing stored, without an unexpired entry."""

    async def published(self, municipality: str, user_id: str, *, now: float) -> tuple[str, ...]:
        """The stored opt-in of an unexpired entry; ``()`` if none."""

    async def published_people(self, *, now: float) -> list[tuple[Person, tuple[str, ...]]]:
        """Every unexpired entry with a non-empty opt-in, with it (in no particular order)."""


def person_to_dict(person: Person, expires_at: float) -> dict[str, Any]:
    """The stored form (JSON-ready)."""
    return {
        "user_id": person.user_id,
        "municipality": person.municipality,
        "name": person.name,
        "department": person.profile.department,
        "job_title": person.profile.job_title,
        "skills": list(person.profile.skills),
        "seen": person.seen,
        "expires_at": expires_at,
    }


def person_from_dict(d: dict[str, Any]) -> Person:
    profile = Profile(d.get("department"), d.get("job_title"), tuple(d.get("skills") or ()))
    return Person(d["user_id"], d["municipality"], d["name"], profile, float(d["seen"]))
