"""What portals read without a socket: floor occupancy, one person's badge, and
the specialist finder.

Visibility is the campus's: a floor is shown only to those who may see it
(otherwise ``not_found``, as for a missing floor), and people only to those who
may see their municipality (:func:`rooms.people.visible_municipalities`). A
person's floor and room are shown only if the caller may see that floor;
their status is shown to everyone who may see the person — a finder that
cannot say "free now" would not answer its question. An invited guest
(``Actor.project``) finds and sees only the members of their project.

The people directory (:mod:`presence_server.directory.service`) holds profiles
of people seen; status, location and calls are read live from the presence
store and the call store.

Beyond the cooperation (``scope="platform"``): the finder also answers with
people of municipalities the caller may not see, but only those who opted in
(published at least one skill their town publishes), matched and shown by
those skills alone: name, municipality, the published skills, online and
status — no department, job title or status text, and a floor or room only if
the caller may see that floor (:meth:`rooms.campus.CampusService.can_see_floor`).
Such cards carry ``"platform": true``. People the caller may see appear as in
the cooperation's finder.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, Final, Literal

from presence_server.calls.service import CallService
from presence_server.directory.service import DirectoryService
from presence_server.presence.service import PresenceService
from presence_server.presence.store import Member
from rooms.actors import Actor, Profile
from rooms.errors import DomainError, ErrorCode
from rooms.person import PersonId, person_id
from rooms.people import (
    Availability,
    Person,
    SearchCriteria,
    availability,
    matches,
    nearness,
    rank_key,
    visible_municipalities,
)

__all__ = ["PortalService", "MAX_RANKED", "OFFLINE", "Scope"]

#: At most this many matches are ranked (presence read for each); more are cut by name first.
MAX_RANKED: Final = 1000
#: Presence reads in flight at once while ranking (bounds Redis connections).
_LOOKUP_CONCURRENCY: Final = 32
#: The status shown for someone offline.
OFFLINE: Final = "offline"

#: Whom the finder searches: the caller's cooperations, or the whole platform's opt-ins too.
Scope = Literal["cooperation", "platform"]


class PortalService:
    def __init__(
        self,
        presence: PresenceService,
        calls: CallService,
        directory: DirectoryService,
    ) -> None:
        self._presence = presence
        self._campus = presence.campus
        self._calls = calls
        self.directory = directory

    # ------------------------------------------------------------ occupancy
    async def occupancy(self, actor: Actor, floor_id: str) -> dict[str, Any]:
        """Who is in which room of a floor, and who is in its hallway."""
        view = await self._presence.floor_view(actor, floor_id)  # not_found unless visible
        by_room: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
        for member in view["members"]:
            by_room[member.get("room_id")].append(_occupant(member))
        for people in by_room.values():
            people.sort(key=lambda o: (o["name"].casefold(), o["person"]))
        floor = view["floor"]
        return {
            "floor": {k: floor[k] for k in ("id", "name", "owner_kind", "owner_id")},
            "seq": view["seq"],
            "rooms": [
                {
                    "room_id": room["id"],
                    "name": room["name"],
                    "kind": room["kind"],
                    "door": room["door"],
                    "capacity": room["capacity"],
                    "occupants": by_room.get(room["id"], []),
                }
                for room in view["rooms"]
            ],
            "hallway": by_room.get(None, []),
        }

    # ---------------------------------------------------------------- badge
    async def badge(self, actor: Actor, municipality_id: str, user_id: str) -> dict[str, Any]:
        """One person's presence. ``not_found`` for an unknown person and, identically,
        for anyone of a municipality the caller may not see."""
        pid = person_id(municipality_id, user_id)
        if not self._may_see_person(actor, pid, municipality_id):
            raise DomainError(ErrorCode.NOT_FOUND, "user")
        member = await self._presence.store.member(pid)
        person: Person | None
        if member is not None:
            person = Person.of(member.actor, 0.0)
        else:
            person = await self.directory.get(municipality_id, user_id)
        if person is None:
            raise DomainError(ErrorCode.NOT_FOUND, "user")
        in_call = await self._calls.store.calls_of([pid]) if member is not None else {}
        return self._card(actor, person, member, pid in in_call)

    # --------------------------------------------------------------- search
    async def search(
        self, actor: Actor, criteria: SearchCriteria, *, limit: int, scope: Scope = "cooperation"
    ) -> list[dict[str, Any]]:
        """People the caller may see who match, ranked (see :mod:`rooms.people`); with
        ``scope="platform"`` also the people beyond who published a matching skill
        (the module docstring).

        Offline people are found only when the directory keeps them
        (``portal.directory_retention_days`` > 0). The caller is not in their own results.
        """
        if criteria.empty:
            raise DomainError(ErrorCode.INVALID_PAYLOAD, "give q, skill, department or job_title")
        municipalities = self._searched_municipalities(actor)
        found: list[tuple[Person, bool]] = [
            (p, False) for p in await self.directory.people(municipalities)
            if matches(p, criteria) and p.id != actor.person_id and self._may_see_person(actor, p.id, p.municipality)
        ]  # fmt: skip
        if scope == "platform":
            for person, skills in await self.directory.platform_people(actor):
                if person.municipality in municipalities or person.id == actor.person_id:
                    continue  # found above, as the cooperation shows them
                shown = _published_only(person, skills)
                if matches(shown, criteria):
                    found.append((shown, True))
        if len(found) > MAX_RANKED:
            found = sorted(found, key=lambda f: rank_key(f[0], Availability.AVAILABLE, 0))[:MAX_RANKED]
        members = await self._members([p.id for p, _ in found])
        me = await self._presence.store.member(actor.person_id)
        my_floor = me.floor_id if me is not None else None
        in_call = await self._calls.store.calls_of([m.person for m in members if m is not None])
        ranked: list[tuple[Any, dict[str, Any]]] = []
        for (person, beyond), member in zip(found, members):
            if member is None and not self.directory.keeps_offline:
                continue  # a stale entry of someone gone: online only
            if beyond:
                card = self._platform_card(actor, person, member, member is not None and member.person in in_call)
            else:
                if member is not None:
                    person = Person(person.user_id, person.municipality, member.actor.display_name,
                                    member.actor.profile, person.seen)  # the live token's profile wins
                card = self._card(actor, person, member, member is not None and member.person in in_call)
            tier = availability(card["status"] if card["online"] else None, in_call=card["in_call"])
            near = nearness(actor.municipality_id, my_floor, person.municipality,
                            member.floor_id if member is not None else None)
            ranked.append((rank_key(person, tier, near), card))
        ranked.sort(key=lambda pair: pair[0])
        return [card for _, card in ranked[:limit]]

    # ------------------------------------------------------------ internals
    def _searched_municipalities(self, actor: Actor) -> frozenset[str]:
        """Whose people the caller may find: for an invited guest, the towns of their
        project's members (named persons and member towns), else the usual rule."""
        if actor.project is None:
            return visible_municipalities(actor, self._campus.cooperations)
        project = self._campus.projects.get(actor.project)
        if project is None:
            return frozenset()
        named = {p.split("/", 1)[0] for p in (*project.coordinators, *project.members)}
        return frozenset({*project.municipalities, *named})

    def _may_see_person(self, actor: Actor, pid: PersonId, municipality_id: str) -> bool:
        """An invited guest sees only members of their project; others the
        municipalities of :func:`visible_municipalities`."""
        if actor.project is None:
            return municipality_id in visible_municipalities(actor, self._campus.cooperations)
        project = self._campus.projects.get(actor.project)
        return project is not None and project.includes(pid, municipality_id)

    async def _members(self, persons: list[PersonId]) -> list[Member | None]:
        limit = asyncio.Semaphore(_LOOKUP_CONCURRENCY)

        async def one(pid: PersonId) -> Member | None:
            async with limit:
                return await self._presence.store.member(pid)

        return list(await asyncio.gather(*(one(pid) for pid in persons)))

    def _platform_card(self, viewer: Actor, shown: Person, member: Member | None, in_call: bool) -> dict[str, Any]:
        """A person found beyond the caller's cooperations: ``shown`` carries only the
        published skills; the status text stays private, the floor shows only where
        the caller may see it (as in :meth:`_card`)."""
        card = self._card(viewer, shown, member, in_call)
        card["status_text"] = ""
        card["platform"] = True
        return card

    def _card(self, viewer: Actor, person: Person, member: Member | None, in_call: bool) -> dict[str, Any]:
        """A person as the finder and the badge show them to ``viewer``."""
        floor_id = room_id = floor_name = room_name = None
        if member is not None and member.floor_id is not None and self._campus.can_see_floor(viewer, member.floor_id):
            floor = self._campus.floor(member.floor_id)
            floor_id, floor_name = member.floor_id, floor.name if floor is not None else None
            if member.room_id is not None:
                room = self._campus.room(member.room_id)
                room_id, room_name = member.room_id, room.name if room is not None else None
        return {
            "person": person.id,
            "user_id": person.user_id,
            "name": person.name,
            "municipality": person.municipality,
            "department": person.profile.department,
            "job_title": person.profile.job_title,
            "skills": list(person.profile.skills),
            "online": member is not None,
            "status": member.status.value if member is not None else OFFLINE,
            "status_text": member.text if member is not None else "",
            "floor_id": floor_id,
            "floor_name": floor_name,
            "room_id": room_id,
            "room_name": room_name,
            "in_call": in_call,
        }


def _published_only(person: Person, skills: list[str]) -> Person:
    """``person`` as the platform shows them: name, municipality and the published skills."""
    return Person(person.user_id, person.municipality, person.name, Profile(None, None, tuple(skills)), person.seen)


def _occupant(member: dict[str, Any]) -> dict[str, Any]:
    return {
        "person": member["person"],
        "user_id": member["user_id"],
        "name": member["name"],
        "municipality": member["municipality"],
        "guest": member.get("guest", False),
        "status": member["status"],
        "status_text": member.get("text", ""),
        "in_call": member.get("in_call") is not None,
    }
