"""The campus service: the in-memory read model and its validated, authorised writes.

Reads are synchronous dictionary look-ups (they sit on the hot path of every
walk and knock). Writes go: authorise -> validate -> persist to the store ->
update memory -> notify listeners, all under one lock, so concurrent writes
cannot interleave and listeners see changes in the order they happened.

Visibility errors never leak: a floor or room the actor cannot see is
``NOT_FOUND``, exactly like one that does not exist; ``FORBIDDEN`` is only for
things the actor can see but may not change.

Projects (:mod:`rooms.campus_projects`) and the platform's municipalities and
cooperations (:mod:`rooms.campus_tenants`) are parts of this service kept in
modules of their own; they share its lock, state, store and listeners.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from rooms import access
from rooms.actors import Actor
from rooms.audit import AuditSink, field_changes, floor_scopes
from rooms.campus_projects import CampusProjects, project_scopes
from rooms.campus_state import CampusState
from rooms.campus_tenants import CampusTenants
from rooms.changes import CampusChange, CampusListener, ChangeKind
from rooms.errors import DomainError, ErrorCode
from rooms.model import Cooperation, DoorState, Floor, Municipality, OwnerKind, Rect, Room, RoomKind
from rooms.person import SEPARATOR, PersonId, qualify_legacy
from rooms.project import Project, ProjectPolicy
from rooms.seed import CampusSeed
from rooms.store import CampusData, CampusStore
from rooms.validation import (
    FLOOR_FIELDS,
    ROOM_FIELDS,
    check_enum,
    check_id,
    clean_floor_fields,
    clean_room_fields,
    invalid,
    reject_unknown,
)

# The change types are re-exported: callers of the service need them too.
__all__ = ["ChangeKind", "CampusChange", "CampusListener", "CampusService"]

log = logging.getLogger(__name__)

#: What a room's owner may change without being an admin of its floor.
_OWNER_FIELDS: Final = frozenset({"door"})


class CampusService(CampusProjects, CampusTenants):
    """The campus as this node knows it. One per process; ``start`` before use."""

    def __init__(
        self,
        store: CampusStore,
        *,
        clock: Callable[[], float] = time.time,
        project_policy: Callable[[str], ProjectPolicy] = lambda municipality: ProjectPolicy(),
        audit: AuditSink | None = None,
    ) -> None:
        self._store = store
        self._audit = audit  # told of every successful write (_audited); None: nothing recorded
        self._clock = clock
        self._project_policy = project_policy
        self._listeners: list[CampusListener] = []
        self._write_lock = asyncio.Lock()
        self._applying_remote = False  # set while apply_remote runs, under the write lock
        self._started = False
        self._state = CampusState()

    def add_listener(self, listener: CampusListener) -> None:
        self._listeners.append(listener)

    # -- lifecycle ----------------------------------------------------------

    async def start(self, seed: CampusSeed | None = None, *, legacy_owners: Mapping[str, str] = {}) -> None:
        """Open the store and load it; write ``seed`` first only if the store is empty.

        A store that has anything in it is never reseeded: after the first start,
        the store, not the seed file, is the truth (admins edit it live). Rooms
        stored with bare owner ids (release 0.1) are migrated to person ids and
        written back (:func:`rooms.person.qualify_legacy`, ``legacy_owners``
        resolving those on cooperation floors); an owner that stays ambiguous
        stops the start with ``ValueError`` naming the room and the owner.
        """
        if self._started:
            raise RuntimeError("CampusService is already started")
        await self._store.open()
        data = await self._store.load()
        if data.is_empty() and seed is not None:
            seed.check()
            data = await self._write_seed(seed)
        data = await self._migrate_owners(data, legacy_owners)
        self._state = CampusState(data)
        self._started = True

    async def close(self) -> None:
        """Close the store. Reads keep answering from memory; writes refuse."""
        async with self._write_lock:
            self._started = False
            await self._store.close()

    # -- reads (synchronous, from memory) -----------------------------------

    @property
    def municipalities(self) -> Mapping[str, Municipality]:
        """Read-only view of the current state (taken after ``start``)."""
        return self._state.municipalities

    @property
    def cooperations(self) -> Mapping[str, Cooperation]:
        """Read-only view of the current state (taken after ``start``)."""
        return self._state.cooperations

    @property
    def projects(self) -> Mapping[str, Project]:
        """Read-only view of every project (authorisation is the caller's)."""
        return self._state.projects

    def floor(self, floor_id: str) -> Floor | None:
        return self._state.floors.get(floor_id)

    def room(self, room_id: str) -> Room | None:
        return self._state.rooms.get(room_id)

    def rooms_on(self, floor_id: str) -> list[Room]:
        """The floor's rooms sorted by name, then id (stable for equal names)."""
        return self._state.rooms_on(floor_id)

    def visible_floors(self, actor: Actor) -> list[Floor]:
        """Floors the actor may see: their own municipality's first, then the
        cooperations', each by position, then name."""
        state = self._state
        floors = [f for f in state.floors.values() if access.can_see_floor(actor, f, state.cooperations, state.projects)]

        def order(f: Floor) -> tuple[bool, bool, str, int, str, str]:
            foreign = not (f.owner_kind is OwnerKind.MUNICIPALITY and f.owner_id == actor.municipality_id)
            return (foreign, f.owner_kind is OwnerKind.PROJECT, f.owner_id, f.position, f.name, f.id)

        return sorted(floors, key=order)

    def floors_owned_by(self, owner_kind: OwnerKind, owner_id: str) -> list[Floor]:
        """The floors of one municipality or cooperation (no visibility check), by id."""
        return sorted(
            (f for f in self._state.floors.values() if f.owner_kind is owner_kind and f.owner_id == owner_id),
            key=lambda f: f.id,
        )

    def can_see_floor(self, actor: Actor, floor_id: str) -> bool:
        floor = self._state.floors.get(floor_id)
        return floor is not None and access.can_see_floor(actor, floor, self._state.cooperations, self._state.projects)

    def visible_floor(self, actor: Actor, floor_id: str) -> Floor:
        """The floor, or ``NOT_FOUND`` if it is missing or the actor may not see it."""
        floor = self._state.floors.get(floor_id)
        if floor is None or not self.can_see_floor(actor, floor_id):
            raise DomainError(ErrorCode.NOT_FOUND, f"floor {floor_id!r}")
        return floor

    def visible_room(self, actor: Actor, room_id: str) -> Room:
        """The room, or ``NOT_FOUND`` if it is missing or its floor is not visible to the actor."""
        room = self._state.rooms.get(room_id)
        if room is None or not self.can_see_floor(actor, room.floor_id):
            raise DomainError(ErrorCode.NOT_FOUND, f"room {room_id!r}")
        return room

    def campus_view(self, actor: Actor) -> dict[str, Any]:
        """Everything the actor may see, JSON-ready.

        ``municipality`` is None if the actor's municipality is not on the campus.
        ``cooperations`` lists those the actor's municipality belongs to; it is
        always present and empty for guests, who see no cooperation floors.
        """
        own = self._state.municipalities.get(actor.municipality_id)
        cooperations = [] if actor.is_guest else [
            {"id": c.id, "name": c.name, "members": list(c.members)}
            for c in sorted(self._state.cooperations.values(), key=lambda c: c.id)
            if actor.municipality_id in c.members
        ]  # fmt: skip
        return {
            "municipality": None if own is None else {"id": own.id, "name": own.name},
            "cooperations": cooperations,
            "projects": [self.project_dict(p) for p in self.visible_projects(actor)],
            "floors": [
                {**f.to_dict(), "rooms": [r.to_dict() for r in self.rooms_on(f.id)]} for f in self.visible_floors(actor)
            ],
        }

    def audit_scope(self, floor: Floor | None, *, fallback: Sequence[str] = ()) -> tuple[tuple[str, ...], str | None]:
        """Who reads audit entries about ``floor``: the admins of its owner (its town, or
        every town of its cooperation), and for a project floor the project's
        coordinators plus the admins of its towns. Returns (scopes, project id)."""
        if floor is not None and floor.owner_kind is OwnerKind.PROJECT:
            project = self._state.projects.get(floor.owner_id)
            return (tuple(fallback) if project is None else project_scopes(project)), floor.owner_id
        return floor_scopes(floor, self._state.cooperations, fallback=fallback), None

    def next_expiry(self) -> float | None:
        """The earliest ``expires_at`` of any room, for scheduling :meth:`expire_rooms`."""
        return self._state.next_expiry()

    # -- writes -------------------------------------------------------------

    async def create_floor(
        self,
        actor: Actor,
        *,
        name: str,
        owner_kind: OwnerKind | str,
        owner_id: str,
        width: int = 1000,
        height: int = 600,
        position: int = 0,
        floor_id: str | None = None,
    ) -> Floor:
        """A new floor for a municipality or cooperation the actor administers.

        ``FORBIDDEN`` unless the actor is an admin of that owner; ``INVALID_PAYLOAD``
        naming ``owner_id`` if the owner does not exist; ``CONFLICT`` if ``floor_id``
        is taken. The id is generated (``f-`` + 8 hex digits) unless given.
        """
        async with self._write_lock:
            self._require_started()
            kind = check_enum(OwnerKind, owner_kind, "owner_kind")
            check_id(owner_id, "owner_id")
            if not access.can_admin_owner(actor, kind, owner_id, self._state.cooperations):
                raise DomainError(ErrorCode.FORBIDDEN, f"not an admin of {kind.value} {owner_id!r}")
            known: Mapping[str, object] = (
                self._state.municipalities if kind is OwnerKind.MUNICIPALITY else self._state.cooperations
            )
            if owner_id not in known:
                raise invalid("owner_id", f"no such {kind.value}")
            clean = clean_floor_fields({"name": name, "width": width, "height": height, "position": position})
            floor_id = self._new_id("f", self._state.floors, floor_id, "floor_id")
            floor = Floor(id=floor_id, owner_kind=kind, owner_id=owner_id, **clean)
            await self._store.put_floor(floor)
            self._state.put_floor(floor)
            await self._emit(CampusChange("floor_upserted", floor.id, floor=floor))
            await self._audited(actor, "floor.created", None, floor)
            return floor

    async def update_floor(self, actor: Actor, floor_id: str, **changes: Any) -> Floor:
        """Change ``name``, ``width``, ``height`` or ``position``.

        ``CONFLICT`` if a smaller floor would leave a room outside it. No changes,
        or changes to the same values, return the floor without a write or event.
        """
        async with self._write_lock:
            self._require_started()
            floor = self.visible_floor(actor, floor_id)
            self._require_admin(actor, floor)
            reject_unknown(changes, FLOOR_FIELDS)
            new = replace(floor, **clean_floor_fields(changes))
            if new == floor:
                return floor
            for room in self._state.rooms_on(floor.id):
                if room.rect.x + room.rect.w > new.width or room.rect.y + room.rect.h > new.height:
                    field = "width" if room.rect.x + room.rect.w > new.width else "height"
                    raise DomainError(
                        ErrorCode.CONFLICT, f"{field}: room {room.id!r} would lie outside the floor", field=field
                    )
            await self._store.put_floor(new)
            self._state.put_floor(new)
            await self._emit(CampusChange("floor_upserted", new.id, floor=new))
            await self._audited(actor, "floor.updated", floor, new)
            return new

    async def delete_floor(self, actor: Actor, floor_id: str) -> Floor:
        """Delete the floor and its rooms; listeners get ``room_deleted`` for each room, then ``floor_deleted``.

        The floor stays in memory until its rooms' events are out, so a listener
        handling ``room_deleted`` can still look the floor up.
        """
        async with self._write_lock:
            self._require_started()
            floor = self.visible_floor(actor, floor_id)
            self._require_admin(actor, floor)
            await self._store.delete_floor(floor.id)
            await self._drop_floor(floor)
            await self._audited(actor, "floor.deleted", floor, None)
            return floor

    async def create_room(
        self,
        actor: Actor,
        floor_id: str,
        *,
        name: str,
        kind: RoomKind | str,
        rect: Rect | Mapping[str, int],
        door: DoorState | str = DoorState.OPEN,
        capacity: int = 8,
        owners: Sequence[PersonId | str] = (),
        expires_at: float | None = None,
        room_id: str | None = None,
    ) -> Room:
        """A new room on a floor the actor administers; ``created_at`` is the clock's now.

        The id is generated (``r-`` + 8 hex digits) unless given; ``CONFLICT`` if taken.
        Rooms may overlap: the floor plan is the admin's to draw.
        """
        async with self._write_lock:
            self._require_started()
            floor = self.visible_floor(actor, floor_id)
            self._require_admin(actor, floor)
            self._check_project_room_limit(floor)
            now = self._clock()
            raw = {"name": name, "kind": kind, "rect": rect, "door": door, "capacity": capacity}
            clean = clean_room_fields({**raw, "owners": owners, "expires_at": expires_at}, floor, now=now)
            room_id = self._new_id("r", self._state.rooms, room_id, "room_id")
            room = Room(id=room_id, floor_id=floor.id, created_at=now, **clean)
            await self._store.put_room(room)
            self._state.put_room(room)
            await self._emit(CampusChange("room_upserted", floor.id, room=room))
            await self._audited(actor, "room.created", None, room)
            return room

    async def update_room(self, actor: Actor, room_id: str, **changes: Any) -> Room:
        """Change any of ``name, kind, rect, door, capacity, owners, expires_at``.

        Admins of the floor may change everything; a room's (non-guest) owner only
        the ``door`` (``FORBIDDEN`` for anything else). No effective change returns
        the room without a write or event.
        """
        async with self._write_lock:
            self._require_started()
            room = self.visible_room(actor, room_id)
            floor = self._state.floors[room.floor_id]
            cooperations, projects = self._state.cooperations, self._state.projects
            is_admin = access.can_admin_floor(actor, floor, cooperations, projects)
            if not is_admin and not access.can_change_door(actor, room, floor, cooperations, projects):
                raise DomainError(ErrorCode.FORBIDDEN, "not an admin of this floor or an owner of this room")
            reject_unknown(changes, ROOM_FIELDS)
            if not is_admin and not set(changes) <= _OWNER_FIELDS:
                raise DomainError(ErrorCode.FORBIDDEN, "room owners may only change the door")
            new = replace(room, **clean_room_fields(changes, floor, now=self._clock()))
            if new == room:
                return room
            await self._store.put_room(new)
            self._state.put_room(new)
            await self._emit(CampusChange("room_upserted", new.floor_id, room=new))
            await self._audited(actor, "room.updated", room, new)  # door.changed when only the door did
            return new

    async def delete_room(self, actor: Actor, room_id: str) -> Room:
        """Delete a room of a floor the actor administers; returns the removed room."""
        async with self._write_lock:
            self._require_started()
            room = self.visible_room(actor, room_id)
            self._require_admin(actor, self._state.floors[room.floor_id])
            await self._store.delete_room(room.id)
            self._state.remove_room(room.id)
            await self._emit(CampusChange("room_deleted", room.floor_id, room=room))
            await self._audited(actor, "room.deleted", room, None)
            return room

    async def expire_rooms(self, now: float | None = None) -> list[Room]:
        """System action: delete every room with ``expires_at <= now`` (default: the clock).

        Returns the removed rooms, earliest expiry first; listeners get
        ``room_deleted`` for each.
        """
        async with self._write_lock:
            self._require_started()
            now = self._clock() if now is None else now
            expired = self._state.expired(now)
            for room in expired:
                await self._store.delete_room(room.id)
                self._state.remove_room(room.id)
                await self._emit(CampusChange("room_deleted", room.floor_id, room=room))
                await self._audited(None, "room.expired", room, None)
            return expired

    async def restore_store(self) -> int:
        """Write back to the store what it lost and this node still holds in memory
        (cluster mode: Redis came back empty). Only what is missing is written, in
        dependency order (a room needs its floor), so several nodes restoring at once
        agree, and a room created or changed since is kept as stored. Returns how many
        entries were written."""
        async with self._write_lock:
            self._require_started()
            stored = await self._store.load()
            missing = (
                [m for m in self._state.municipalities.values() if m.id not in stored.municipalities],
                [c for c in self._state.cooperations.values() if c.id not in stored.cooperations],
                [f for f in self._state.floors.values() if f.id not in stored.floors],
                [r for r in self._state.rooms.values() if r.id not in stored.rooms],
                [p for p in self._state.projects.values() if p.id not in stored.projects],
            )
            for municipality in missing[0]:
                await self._store.put_municipality(municipality)
            for cooperation in missing[1]:
                await self._store.put_cooperation(cooperation)
            for project in missing[4]:  # before their floors, as when created
                await self._store.put_project(project)
            for floor in missing[2]:
                await self._store.put_floor(floor)
            for room in missing[3]:
                await self._store.put_room(room)
            return sum(len(entries) for entries in missing)

    async def apply_remote(self, change: CampusChange) -> None:
        """Take in a change another node already stored: memory and listeners only.

        ``floor_deleted`` also drops any rooms of that floor still in memory (with
        ``room_deleted`` events), in case their own events were missed.
        """
        async with self._write_lock:
            self._require_started()
            self._applying_remote = True
            try:
                await self._apply_remote(change)
            finally:
                self._applying_remote = False

    async def _apply_remote(self, change: CampusChange) -> None:
        if change.kind == "floor_upserted":
            assert change.floor is not None  # checked by CampusChange
            self._state.put_floor(change.floor)
        elif change.kind == "floor_deleted":
            floor = self._state.floors.get(change.floor_id) or change.floor
            if floor is not None:
                await self._drop_floor(floor)
            else:
                await self._emit(change)
            return
        elif change.kind == "room_upserted":
            assert change.room is not None
            self._state.put_room(change.room)
        elif change.kind == "project_upserted":
            assert change.project is not None
            self._state.put_project(change.project)
        elif change.kind == "project_deleted":
            assert change.project is not None
            self._state.remove_project(change.project.id)
        elif change.kind == "municipality_upserted":
            assert change.municipality is not None  # checked by CampusChange
            self._state.put_municipality(change.municipality)
        elif change.kind == "cooperation_upserted":
            assert change.cooperation is not None
            self._state.put_cooperation(change.cooperation)
        else:
            assert change.room is not None
            self._state.remove_room(change.room.id)
        await self._emit(change)

    # -- internals ----------------------------------------------------------

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("CampusService is not running: call .start() first")

    def _require_admin(self, actor: Actor, floor: Floor) -> None:
        if not access.can_admin_floor(actor, floor, self._state.cooperations, self._state.projects):
            raise DomainError(ErrorCode.FORBIDDEN, f"not an admin of floor {floor.id!r}")

    def _new_id(self, prefix: str, taken: Mapping[str, object], given: str | None, field: str) -> str:
        if given is not None:
            if check_id(given, field) in taken:
                raise DomainError(ErrorCode.CONFLICT, f"{field}: {given!r} already exists", field=field)
            return given
        while True:  # 2**32 ids: a collision is rare, a second one rarer still
            candidate = f"{prefix}-{secrets.token_hex(4)}"
            if candidate not in taken:
                return candidate

    async def _write_seed(self, seed: CampusSeed) -> CampusData:
        now = self._clock()
        for m in seed.municipalities:
            await self._store.put_municipality(m)
        for c in seed.cooperations:
            await self._store.put_cooperation(c)
        for f in seed.floors:
            await self._store.put_floor(f)
        for r in seed.rooms:
            await self._store.put_room(r if r.created_at else replace(r, created_at=now))
        # Read back rather than trust the seed: memory must equal what is stored.
        return await self._store.load()

    async def _migrate_owners(self, data: CampusData, assignments: Mapping[str, str]) -> CampusData:
        migrated: list[Room] = []
        problems: list[str] = []
        for room in data.rooms.values():
            if all(SEPARATOR in owner for owner in room.owners):
                continue
            floor = data.floors.get(room.floor_id)
            home = floor.owner_id if floor is not None and floor.owner_kind is OwnerKind.MUNICIPALITY else None
            try:
                owners = tuple(qualify_legacy(o, floor_municipality=home, assignments=assignments) for o in room.owners)
            except ValueError as exc:
                problems.append(f"room {room.id!r} on floor {room.floor_id!r}: {exc}")
                continue
            migrated.append(replace(room, owners=tuple(dict.fromkeys(owners))))
        if problems:
            raise ValueError("cannot migrate room owners to person ids:\n  " + "\n  ".join(problems))
        if not migrated:
            return data
        for room in migrated:
            await self._store.put_room(room)
        log.warning("migrated the owners of %d rooms to person ids (municipality/user_id)", len(migrated))
        return await self._store.load()

    async def _drop_floor(self, floor: Floor) -> None:
        """Forget an already-deleted floor: each room with its event, then the floor with its event."""
        for room in self.rooms_on(floor.id):
            self._state.remove_room(room.id)
            await self._emit(CampusChange("room_deleted", floor.id, room=room))
        self._state.remove_floor(floor.id)
        await self._emit(CampusChange("floor_deleted", floor.id, floor=floor))

    async def _emit(self, change: CampusChange) -> None:
        if self._applying_remote and not change.remote:
            change = replace(change, remote=True)
        for listener in list(self._listeners):
            try:
                await listener.campus_changed(change)
            except Exception:
                # The change is stored and in memory: failing the caller would report
                # a write that happened as one that did not.
                log.exception("campus listener %r failed on %s %s", listener, change.kind, change.floor_id)

    async def _audited(
        self, actor: Actor | None, action: str, old: Floor | Room | None, new: Floor | Room | None
    ) -> None:
        """Record a successful write in the audit trail: which fields changed (``old``
        None: created, ``new`` None: deleted, where only the name is kept), readable by
        the admins of the floor's owner (its municipality, or every member of its
        cooperation). ``actor`` None is the system (expiry)."""
        if self._audit is None:
            return
        subject = new if new is not None else old
        if subject is None:
            return
        if isinstance(subject, Room):
            floor = self._state.floors.get(subject.floor_id)
            target = {"room": subject.id, "floor": subject.floor_id}
            fields: tuple[str, ...] = ("name", "kind", "rect", "door", "capacity", "owners", "expires_at")
        else:
            floor, target = subject, {"floor": subject.id}
            fields = ("name", "owner_kind", "owner_id", "width", "height", "position")
        before, after = (None if old is None else old.to_dict()), (None if new is None else new.to_dict())
        change = field_changes(before, after, ("name",) if new is None else fields)
        if action == "room.updated" and set(change) == {"door"}:
            action = "door.changed"
        own = () if actor is None else (actor.municipality_id,)
        scopes, project = self.audit_scope(floor, fallback=own)
        try:
            await self._audit.record(
                action, actor=None if actor is None else actor.person_id, target=target, change=change, scopes=scopes,
                project=project,
            )
        except Exception:  # the write happened: a broken audit must not report it as failed
            log.exception("audit of %s on %s failed", action, target)
