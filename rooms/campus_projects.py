"""The campus service's project part: reads and writes of projects (rooms/project.py).

A mixin of :class:`rooms.campus.CampusService`, kept in a module of its own so the
service stays readable; it shares the service's lock, state, store, listeners and
audit sink, and follows the same write path (authorise -> validate -> store ->
memory -> listeners -> audit, under the one write lock).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rooms import access
from rooms.actors import Actor
from rooms.audit import AuditSink, field_changes
from rooms.campus_state import CampusState
from rooms.changes import CampusChange
from rooms.errors import DomainError, ErrorCode
from rooms.model import Floor, OwnerKind, Room
from rooms.person import split_person
from rooms.project import TEMPLATES, Project, ProjectPolicy, RoomTemplate
from rooms.project_rules import PROJECT_FIELDS, check_duration, check_membership, clean_project_fields
from rooms.store import CampusStore
from rooms.validation import check_enum, invalid, reject_unknown

__all__ = ["CampusProjects", "project_scopes"]

log = logging.getLogger("rooms.campus")


class CampusProjects:
    """Projects: who is a member, their floors, and the coordinators' writes."""

    _write_lock: asyncio.Lock
    _state: CampusState
    _store: CampusStore
    _clock: Callable[[], float]
    _project_policy: Callable[[str], ProjectPolicy]
    _audit: AuditSink | None

    if TYPE_CHECKING:  # provided by CampusService

        def _require_started(self) -> None: ...

        def _new_id(self, prefix: str, taken: Mapping[str, object], given: str | None, field: str) -> str: ...

        async def _emit(self, change: CampusChange) -> None: ...

        async def _drop_floor(self, floor: Floor) -> None: ...

    # -- reads ---------------------------------------------------------------

    def visible_projects(self, actor: Actor) -> list[Project]:
        """The projects the actor is a member of, by name."""
        mine = [p for p in self._state.projects.values() if access.is_project_member(actor, p)]
        return sorted(mine, key=lambda p: (p.name, p.id))

    def visible_project(self, actor: Actor, project_id: str) -> Project:
        """The project, or ``NOT_FOUND`` if it is missing or the actor is not a member."""
        project = self._state.projects.get(project_id)
        if project is None or not access.is_project_member(actor, project):
            raise DomainError(ErrorCode.NOT_FOUND, f"project {project_id!r}")
        return project

    def project_floor(self, project_id: str) -> Floor | None:
        return self._state.project_floor(project_id)

    def project_dict(self, project: Project) -> dict[str, Any]:
        """A project as members see it, with its floor's id."""
        floor = self._state.project_floor(project.id)
        return {**project.to_dict(), "floor_id": None if floor is None else floor.id}

    # -- writes -------------------------------------------------------------

    async def create_project(
        self,
        actor: Actor,
        *,
        name: str,
        purpose: str = "",
        persons: Sequence[str] = (),
        municipalities: Sequence[str] = (),
        ends_at: float | None = None,
        template: RoomTemplate | str = RoomTemplate.MEETING,
    ) -> tuple[Project, Floor, list[Room]]:
        """Self-service: any member of staff whose town's policy allows it creates a
        project, becomes its first coordinator, and gets its floor with the
        template's rooms. The rooms close at ``ends_at`` (default and upper bound:
        the town's ``max_days``)."""
        async with self._write_lock:
            self._require_started()
            if actor.is_guest:
                raise DomainError(ErrorCode.FORBIDDEN, "guests do not create projects")
            policy = self._project_policy(actor.municipality_id)
            if not policy.may_create(is_admin=actor.is_admin):
                raise DomainError(ErrorCode.FORBIDDEN, "in your municipality only admins create projects")
            now = self._clock()
            raw = {"name": name, "purpose": purpose, "members": persons, "municipalities": municipalities}
            clean = clean_project_fields({**raw, "ends_at": ends_at}, now=now)
            kind = check_enum(RoomTemplate, template, "template")
            rooms_wanted = TEMPLATES[kind]
            if len(rooms_wanted) > policy.max_rooms:
                raise invalid("template", f"your municipality allows at most {policy.max_rooms} rooms per project")
            clean["ends_at"] = check_duration(clean["ends_at"], policy, created_at=now, now=now)
            project_id = self._new_id("p", self._state.projects, None, "project_id")
            project = check_membership(
                Project(id=project_id, coordinators=(actor.person_id,), created_by=actor.person_id, created_at=now, **clean),
                self._state.municipalities,
            )
            floor = Floor(
                id=self._new_id("f", self._state.floors, None, "floor_id"),
                name=project.name,
                owner_kind=OwnerKind.PROJECT,
                owner_id=project.id,
            )
            rooms: list[Room] = []
            for spec in rooms_wanted:
                taken = {**self._state.rooms, **{r.id: r for r in rooms}}
                rooms.append(
                    Room(
                        id=self._new_id("r", taken, None, "room_id"),
                        floor_id=floor.id,
                        name=spec.name,
                        kind=spec.kind,
                        rect=spec.rect,
                        door=spec.door,
                        capacity=spec.capacity,
                        expires_at=project.ends_at,
                        created_at=now,
                    )
                )
            # The project first: a floor owned by a project nobody knows is invisible to all.
            await self._store.put_project(project)
            await self._store.put_floor(floor)
            for room in rooms:
                await self._store.put_room(room)
            self._state.put_project(project)
            self._state.put_floor(floor)
            await self._emit(CampusChange("project_upserted", floor.id, project=project))
            await self._emit(CampusChange("floor_upserted", floor.id, floor=floor))
            for room in rooms:
                self._state.put_room(room)
                await self._emit(CampusChange("room_upserted", floor.id, room=room))
            await self._audited_project(actor, "project.created", None, project)
            log.info("project %s created by %s with floor %s", project.id, actor.person_id, floor.id)
            return project, floor, rooms

    async def update_project(self, actor: Actor, project_id: str, **changes: Any) -> Project:
        """A coordinator changes the name, purpose, end date or membership (whole lists).

        Membership changes take effect at once, everywhere: listeners get
        ``project_upserted`` and end the views of people who lost the project
        (``floor.revoked``). A new end date moves its rooms' ``expires_at``.
        """
        return await self._change_project(actor, project_id, lambda project: changes)

    async def add_member(
        self, actor: Actor, project_id: str, *, person: str | None = None, municipality: str | None = None,
        coordinator: bool = False,
    ) -> Project:
        """Add one person (as member or coordinator) or one whole municipality.
        Promoting a member to coordinator is adding them as coordinator."""  # fmt: skip
        if (person is None) == (municipality is None):
            raise invalid("person", "give either a person or a municipality")

        def changes(project: Project) -> dict[str, Any]:
            if municipality is not None:
                return {"municipalities": [*project.municipalities, municipality]}
            if coordinator:
                return {"coordinators": [*project.coordinators, person]}
            return {"members": [*project.members, person]}

        return await self._change_project(actor, project_id, changes)

    async def remove_member(
        self, actor: Actor, project_id: str, *, person: str | None = None, municipality: str | None = None
    ) -> Project:
        """Remove a person (member or coordinator; the last coordinator stays) or a municipality."""
        if (person is None) == (municipality is None):
            raise invalid("person", "give either a person or a municipality")

        def changes(project: Project) -> dict[str, Any]:
            if municipality is not None:
                return {"municipalities": [m for m in project.municipalities if m != municipality]}
            return {
                "coordinators": [p for p in project.coordinators if p != person],
                "members": [p for p in project.members if p != person],
            }

        return await self._change_project(actor, project_id, changes)

    async def _change_project(
        self, actor: Actor, project_id: str, make_changes: Callable[[Project], Mapping[str, Any]]
    ) -> Project:
        async with self._write_lock:
            self._require_started()
            project = self._require_coordinator(actor, project_id)
            changes = make_changes(project)  # under the lock: two coordinators cannot lose each other's change
            reject_unknown(changes, PROJECT_FIELDS)
            now = self._clock()
            clean = clean_project_fields(changes, now=now)
            if "ends_at" in clean:
                creator_town = split_person(project.created_by)[0] if project.created_by else actor.municipality_id
                policy = self._project_policy(creator_town)
                clean["ends_at"] = check_duration(clean["ends_at"], policy, created_at=project.created_at, now=now)
            new = check_membership(replace(project, **clean), self._state.municipalities)
            if new == project:
                return project
            floor = self._state.project_floor(project.id)
            await self._store.put_project(new)
            self._state.put_project(new)
            await self._emit(CampusChange("project_upserted", floor.id if floor else "", project=new))
            await self._audited_project(actor, _membership_action(project, new), project, new)
            if floor is not None and new.ends_at != project.ends_at:
                for room in self._state.rooms_on(floor.id):
                    moved = replace(room, expires_at=new.ends_at)
                    await self._store.put_room(moved)
                    self._state.put_room(moved)
                    await self._emit(CampusChange("room_upserted", floor.id, room=moved))
            return new

    async def delete_project(self, actor: Actor, project_id: str) -> Project:
        """A coordinator ends the project now: its floor and rooms go (everyone on
        it is moved off, as for any deleted floor), then the project record."""
        async with self._write_lock:
            self._require_started()
            project = self._require_coordinator(actor, project_id)
            floor = self._state.project_floor(project.id)
            if floor is not None:
                await self._store.delete_floor(floor.id)
                await self._drop_floor(floor)
            await self._store.delete_project(project.id)
            self._state.remove_project(project.id)
            await self._emit(CampusChange("project_deleted", floor.id if floor else "", project=project))
            await self._audited_project(actor, "project.deleted", project, None)
            return project

    async def _audited_project(self, actor: Actor, action: str, old: Project | None, new: Project | None) -> None:
        """Record a project write: changed fields (name only on deletion), readable by its
        coordinators and by the admins of its towns."""
        subject = new if new is not None else old
        if self._audit is None or subject is None:
            return
        fields = ("name", "purpose", "ends_at", "coordinators", "members", "municipalities")
        before, after = (None if old is None else old.to_dict()), (None if new is None else new.to_dict())
        change = field_changes(before, after, ("name",) if new is None else fields)
        try:
            await self._audit.record(
                action, actor=actor.person_id, target={"project": subject.id}, change=change,
                scopes=project_scopes(subject), project=subject.id,
            )
        except Exception:  # the write happened: a broken audit must not report it as failed
            log.exception("audit of %s on project %s failed", action, subject.id)

    def _require_coordinator(self, actor: Actor, project_id: str) -> Project:
        project = self.visible_project(actor, project_id)
        if not access.is_coordinator(actor, project):
            raise DomainError(ErrorCode.FORBIDDEN, f"not a coordinator of project {project_id!r}")
        return project

    def _check_project_room_limit(self, floor: Floor) -> None:
        if floor.owner_kind is not OwnerKind.PROJECT:
            return
        project = self._state.projects.get(floor.owner_id)
        town = split_person(project.created_by)[0] if project and project.created_by else ""
        limit = self._project_policy(town).max_rooms
        if len(self._state.rooms_on(floor.id)) >= limit:
            raise DomainError(ErrorCode.CONFLICT, f"a project floor holds at most {limit} rooms", limit=limit)


def _membership_action(old: Project, new: Project) -> str:
    """``project.member_added`` / ``member_removed`` when only membership grew or shrank."""
    def everyone(p: Project) -> set[str]:
        return {*p.coordinators, *p.members, *(f"municipality:{m}" for m in p.municipalities)}

    same_rest = (old.name, old.purpose, old.ends_at) == (new.name, new.purpose, new.ends_at)
    if same_rest and everyone(old) < everyone(new):
        return "project.member_added"
    if same_rest and everyone(new) < everyone(old):
        return "project.member_removed"
    return "project.updated"


def project_scopes(project: Project) -> tuple[str, ...]:
    """Whose admins read a project's entries: its member towns and its coordinators' towns."""
    return tuple(dict.fromkeys([*project.municipalities, *(split_person(p)[0] for p in project.coordinators)]))
