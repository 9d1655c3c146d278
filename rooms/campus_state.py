"""The campus read model: what this node knows, in dicts, with a by-floor index.

Pure and synchronous: no I/O, no locks, no authorisation. The campus service
owns one, changes it only after the store has accepted a change, and serves
every read from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from rooms.model import Cooperation, Floor, Municipality, OwnerKind, Room
from rooms.project import Project
from rooms.store import CampusData

__all__ = ["CampusState"]


class CampusState:
    """Municipalities, cooperations, floors and rooms, with rooms indexed by floor.

    Rooms whose floor is unknown are kept (a remote change may arrive before its
    floor); they simply belong to no visible floor.
    """

    def __init__(self, data: CampusData | None = None) -> None:
        data = data or CampusData()
        self._municipalities = dict(data.municipalities)
        self._cooperations = dict(data.cooperations)
        self._floors = dict(data.floors)
        self._projects = dict(data.projects)
        self._rooms: dict[str, Room] = {}
        self._rooms_by_floor: dict[str, dict[str, Room]] = {}
        for room in data.rooms.values():
            self.put_room(room)

    # -- reads --------------------------------------------------------------

    @property
    def municipalities(self) -> Mapping[str, Municipality]:
        return MappingProxyType(self._municipalities)

    @property
    def cooperations(self) -> Mapping[str, Cooperation]:
        return MappingProxyType(self._cooperations)

    @property
    def floors(self) -> Mapping[str, Floor]:
        return MappingProxyType(self._floors)

    @property
    def rooms(self) -> Mapping[str, Room]:
        return MappingProxyType(self._rooms)

    @property
    def projects(self) -> Mapping[str, Project]:
        return MappingProxyType(self._projects)

    def project_floor(self, project_id: str) -> Floor | None:
        """The floor a project owns (a scan: projects are few, and this is not on a hot path)."""
        for floor in self._floors.values():
            if floor.owner_kind is OwnerKind.PROJECT and floor.owner_id == project_id:
                return floor
        return None

    def rooms_on(self, floor_id: str) -> list[Room]:
        """The floor's rooms sorted by name, then id (stable for equal names)."""
        return sorted(self._rooms_by_floor.get(floor_id, {}).values(), key=lambda r: (r.name, r.id))

    def expired(self, now: float) -> list[Room]:
        """Rooms with ``expires_at <= now``, earliest first."""
        due = [r for r in self._rooms.values() if r.expires_at is not None and r.expires_at <= now]
        return sorted(due, key=lambda r: (r.expires_at or 0.0, r.id))

    def next_expiry(self) -> float | None:
        # A scan, not a heap: a campus has hundreds of rooms, and this runs once per expiry.
        return min((r.expires_at for r in self._rooms.values() if r.expires_at is not None), default=None)

    # -- changes ------------------------------------------------------------

    def put_project(self, project: Project) -> None:
        self._projects[project.id] = project

    def remove_project(self, project_id: str) -> Project | None:
        return self._projects.pop(project_id, None)

    def put_floor(self, floor: Floor) -> None:
        self._floors[floor.id] = floor

    def remove_floor(self, floor_id: str) -> Floor | None:
        """Remove the floor only; its rooms are the caller's to remove first (one event each)."""
        return self._floors.pop(floor_id, None)

    def put_room(self, room: Room) -> None:
        old = self._rooms.get(room.id)
        if old is not None and old.floor_id != room.floor_id:
            self._unindex(old)
        self._rooms[room.id] = room
        self._rooms_by_floor.setdefault(room.floor_id, {})[room.id] = room

    def remove_room(self, room_id: str) -> Room | None:
        room = self._rooms.pop(room_id, None)
        if room is not None:
            self._unindex(room)
        return room

    def _unindex(self, room: Room) -> None:
        on_floor = self._rooms_by_floor.get(room.floor_id)
        if on_floor is not None:
            on_floor.pop(room.id, None)
            if not on_floor:
                del self._rooms_by_floor[room.floor_id]
