"""The in-memory campus store: a real backend for one process, tests and demos.

Limit: single process only, and nothing survives a restart. Use
:mod:`rooms.store_sqlite` for a campus that must outlive the process.
"""

from __future__ import annotations

from dataclasses import replace

from rooms.model import Cooperation, Floor, Municipality, Room
from rooms.project import Project
from rooms.store import CampusData

__all__ = ["MemoryCampusStore"]


class MemoryCampusStore:
    """:class:`rooms.store.CampusStore` kept in plain dicts.

    Contract as in :mod:`rooms.store`, plus: ``put_room`` raises ``KeyError`` if the
    room's floor does not exist (the SQLite store's foreign key refuses the same),
    so that both backends behave alike. Values are frozen dataclasses, so copying
    the dicts is enough to keep callers' later mutations from leaking in or out.
    Single process only; nothing survives a restart.
    """

    def __init__(self) -> None:
        self._municipalities: dict[str, Municipality] = {}
        self._cooperations: dict[str, Cooperation] = {}
        self._floors: dict[str, Floor] = {}
        self._rooms: dict[str, Room] = {}
        self._projects: dict[str, Project] = {}

    async def open(self) -> None:
        """Nothing to connect; idempotent."""

    async def close(self) -> None:
        """Keeps the data: a closed-and-reopened memory store still has it, like a file would."""

    async def load(self) -> CampusData:
        return CampusData(
            municipalities=dict(self._municipalities),
            cooperations=dict(self._cooperations),
            floors=dict(self._floors),
            rooms=dict(self._rooms),
            projects=dict(self._projects),
        )

    async def put_municipality(self, municipality: Municipality) -> None:
        self._municipalities[municipality.id] = municipality

    async def put_cooperation(self, cooperation: Cooperation) -> None:
        # ``members`` is declared a tuple, but a caller may hand in a list; freeze it
        # so the stored value cannot change behind our back.
        self._cooperations[cooperation.id] = _frozen_cooperation(cooperation)

    async def put_floor(self, floor: Floor) -> None:
        self._floors[floor.id] = floor

    async def delete_floor(self, floor_id: str) -> bool:
        if self._floors.pop(floor_id, None) is None:
            return False
        for room_id in [r.id for r in self._rooms.values() if r.floor_id == floor_id]:
            del self._rooms[room_id]
        return True

    async def put_room(self, room: Room) -> None:
        if room.floor_id not in self._floors:
            raise KeyError(f"floor {room.floor_id!r} does not exist")
        self._rooms[room.id] = _frozen_room(room)

    async def delete_room(self, room_id: str) -> bool:
        return self._rooms.pop(room_id, None) is not None

    async def put_project(self, project: Project) -> None:
        self._projects[project.id] = project  # frozen, tuples: nothing can change it behind our back

    async def delete_project(self, project_id: str) -> bool:
        return self._projects.pop(project_id, None) is not None


def _frozen_cooperation(cooperation: Cooperation) -> Cooperation:
    if isinstance(cooperation.members, tuple):
        return cooperation
    return Cooperation(cooperation.id, cooperation.name, tuple(cooperation.members))


def _frozen_room(room: Room) -> Room:
    if isinstance(room.owners, tuple):
        return room
    return replace(room, owners=tuple(room.owners))
