"""The people directory as the portal uses it: fed by presence, swept, read.

Presence hooks feed it: every connect and token refresh stores the token's
profile; when the person goes offline the entry is forgotten
(``portal.directory_retention_days = 0``, the default) or kept that many days.
Status, location and calls are never stored here; the portal reads them live
from the presence store and the call store.

A directory outage never costs anyone their connection: a failed write is
logged and written again by the next connect or token refresh, and entries
whose "gone" was lost expire on their own (``online_ttl``).

The platform directory (docs/portal.md, "Beyond the cooperation"): a
municipality names skills its staff may publish platform-wide
(``auth.municipalities.<id>.directory.publish_skills``), and each person opts in
per skill (:meth:`DirectoryService.publish`). The opt-in is stored with the
directory entry and lives exactly as long (docs/privacy.md). What counts is
decided at read time: a stored skill the person no longer has, or that their
town no longer publishes, is not published.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Callable, Final

import structlog

from presence_server.directory.store import DirectoryStore
from presence_server.presence.service import PresenceHooks, PresenceService
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode, StoreUnavailable
from rooms.people import Person, normalise
from rooms.person import PersonId, split_person

__all__ = ["DirectoryService", "SWEEP_SECONDS"]

log = structlog.get_logger(__name__)

#: How often expired directory entries are deleted.
SWEEP_SECONDS: Final = 60.0
_DAY: Final = 86400.0


class DirectoryService(PresenceHooks):
    def __init__(
        self,
        presence: PresenceService,
        store: DirectoryStore,
        *,
        retention_days: float,
        online_ttl: float,
        sweep_seconds: float = SWEEP_SECONDS,
        publish_skills: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``online_ttl``: how long an entry lives without a refresh while its person is
        online (a bound for entries whose "gone" never arrived, e.g. during an outage).
        ``publish_skills``: per municipality, the skills its staff may publish platform-wide."""
        self.store = store
        self._publish: dict[str, frozenset[str]] = {
            mid: frozenset(normalise(skill) for skill in skills) for mid, skills in (publish_skills or {}).items()
        }
        self._retention = retention_days * _DAY
        self._online_ttl = max(online_ttl, self._retention)
        self._sweep_seconds = sweep_seconds
        self._clock = clock
        self._sweeper: asyncio.Task[None] | None = None
        presence.add_hooks(self)

    @property
    def keeps_offline(self) -> bool:
        return self._retention > 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the sweep (the store is opened by its owner, the backends)."""
        self._sweeper = supervised("directory_sweep", self._sweep_forever)

    async def close(self) -> None:
        await cancel_and_wait(self._sweeper)
        self._sweeper = None

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_seconds)
            try:
                dropped = await self.store.sweep(now=self._clock())
            except StoreUnavailable as exc:  # the store away: next round
                log.warning("directory_sweep_store_unavailable", error=str(exc))
                continue
            if dropped:
                log.info("directory_swept", dropped=dropped)

    # ------------------------------------------------------------------ reads
    async def get(self, municipality: str, user_id: str) -> Person | None:
        """The entry, unless missing or expired now."""
        return await self.store.get(municipality, user_id, now=self._clock())

    async def people(self, municipalities: Iterable[str]) -> list[Person]:
        """Every unexpired entry of ``municipalities`` (in no particular order)."""
        return await self.store.people(municipalities, now=self._clock())

    # ------------------------------------------------------ platform directory
    def publishable(self, person: Actor | Person) -> list[str]:
        """``person``'s skills (token order and spelling) their municipality publishes;
        none for guests."""
        if isinstance(person, Actor):
            if person.is_guest:
                return []
            municipality = person.municipality_id
        else:
            municipality = person.municipality
        town = self._publish.get(municipality, frozenset())
        return [skill for skill in dict.fromkeys(person.profile.skills) if normalise(skill) in town]

    def _effective(self, person: Person, stored: Iterable[str]) -> list[str]:
        """The stored opt-in as it counts now: skills the person still has and their town
        still publishes, in the person's spelling."""
        chosen = {normalise(skill) for skill in stored}
        return [skill for skill in self.publishable(person) if normalise(skill) in chosen]

    async def publish(self, actor: Actor, skills: Sequence[str]) -> list[str]:
        """Make ``skills`` the ones ``actor`` publishes platform-wide (empty: opt out).
        Each must be one of :meth:`publishable` (``invalid_payload`` naming it); the
        person must be in the directory, i.e. online (``conflict`` otherwise)."""
        offered = {normalise(skill): skill for skill in self.publishable(actor)}
        refused = [skill for skill in skills if normalise(skill) not in offered]
        if refused:
            raise DomainError(
                ErrorCode.INVALID_PAYLOAD,
                f"skills: not among the skills you have that your municipality publishes: {refused[0]!r}",
                field="skills",
            )
        chosen = list(dict.fromkeys(offered[normalise(skill)] for skill in skills))
        stored = await self.store.publish(actor.municipality_id, actor.user_id, tuple(chosen), now=self._clock())
        if not stored:
            raise DomainError(ErrorCode.CONFLICT, "not in the people directory: connect to the office first")
        log.info("directory_published", person=actor.person_id, municipality=actor.municipality_id,
                 skills=len(chosen))
        return chosen

    async def published_of(self, actor: Actor) -> list[str]:
        """What ``actor`` publishes platform-wide now (``[]`` if not in the directory)."""
        entry = await self.get(actor.municipality_id, actor.user_id)
        if entry is None or actor.is_guest:
            return []
        return self._effective(entry, await self.store.published(entry.municipality, entry.user_id, now=self._clock()))

    async def platform_people(self, viewer: Actor) -> list[tuple[Person, list[str]]]:
        """Everyone published platform-wide, with the skills they publish now; nobody for
        a guest (visitors of one town do not search the platform)."""
        if viewer.is_guest:
            return []
        found: list[tuple[Person, list[str]]] = []
        for person, stored in await self.store.published_people(now=self._clock()):
            skills = self._effective(person, stored)
            if skills:
                found.append((person, skills))
        return found

    async def is_platform_visible(self, viewer: Actor, person: PersonId) -> bool:
        """Whether ``viewer`` may find, ring (and be offered to invite) ``person`` through
        the platform directory: ``person`` publishes at least one skill now and the
        viewer is not a guest. Says nothing about cooperation visibility, which the
        campus decides; this is the extra way beyond it. Never reveals a floor."""
        if viewer.is_guest:
            return False
        municipality, user_id = split_person(person)
        entry = await self.get(municipality, user_id)
        if entry is None or not self.publishable(entry):
            return False
        return bool(self._effective(entry, await self.store.published(municipality, user_id, now=self._clock())))

    # ------------------------------------------------------- presence hooks
    async def actor_seen(self, actor: Actor) -> None:
        if actor.is_guest:
            return  # visitors are not part of the staff directory
        try:
            await self.store.put(Person.of(actor, self._clock()), ttl=self._online_ttl)
        except StoreUnavailable:
            # A directory outage must not cost anyone their connection; the next
            # connect or token refresh writes the entry again.
            log.warning("directory_put_failed", person=actor.person_id, municipality=actor.municipality_id, exc_info=True)

    async def presence_ended(self, actor: Actor, since: float) -> None:
        if actor.is_guest:
            return
        try:
            if self.keeps_offline:
                await self.store.put(Person.of(actor, self._clock()), ttl=self._retention)
            else:
                # Seen after the linger began means they are back (on another node).
                await self.store.forget(actor.municipality_id, actor.user_id, seen_before=since)
        except StoreUnavailable:  # the entry expires by itself (online_ttl)
            log.warning("directory_end_failed", person=actor.person_id, municipality=actor.municipality_id, exc_info=True)
