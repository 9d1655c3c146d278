"""Where the campus is kept: the storage contract.

Contract for every implementation:

* Each method is atomic: after it returns, the change is durable (for durable
  backends) and visible to the next ``load``; on error nothing was changed.
* ``delete_floor`` removes the floor's rooms with it.
* Values round-trip exactly: what ``put_*`` stored, ``load`` returns equal.
* Backends do no validation or authorisation; :class:`rooms.campus.CampusService` does.
* A backend that cannot be reached raises :class:`rooms.errors.StoreUnavailable`.

Implementations: :mod:`rooms.store_memory` (single process, nothing survives a
restart), :mod:`rooms.store_sqlite` (the embedded default, one file) and
:mod:`rooms.store_redis` (cluster mode: all nodes share one campus), picked
by :func:`presence_server.backends.make_backends` like every other store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from rooms.model import Cooperation, Floor, Municipality, Room
from rooms.project import Project

__all__ = ["CampusData", "CampusStore"]


@dataclass(slots=True)
class CampusData:
    """Everything a store holds, as loaded in one go at start-up."""

    municipalities: dict[str, Municipality] = field(default_factory=dict)
    cooperations: dict[str, Cooperation] = field(default_factory=dict)
    floors: dict[str, Floor] = field(default_factory=dict)
    rooms: dict[str, Room] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.municipalities or self.cooperations or self.floors or self.rooms or self.projects)


class CampusStore(Protocol):
    async def open(self) -> None:
        """Connect / create the schema. Idempotent."""

    async def close(self) -> None:
        """Release resources. Idempotent."""

    async def load(self) -> CampusData:
        """Everything, consistent as of one moment."""

    async def put_municipality(self, municipality: Municipality) -> None: ...

    async def put_cooperation(self, cooperation: Cooperation) -> None: ...

    async def put_floor(self, floor: Floor) -> None:
        """Insert or replace by id."""

    async def delete_floor(self, floor_id: str) -> bool:
        """Remove the floor and its rooms; False if it did not exist."""

    async def put_room(self, room: Room) -> None:
        """Insert or replace by id."""

    async def delete_room(self, room_id: str) -> bool:
        """False if it did not exist."""

    async def put_project(self, project: Project) -> None:
        """Insert or replace by id. A project's floor is stored as a floor."""

    async def delete_project(self, project_id: str) -> bool:
        """Remove the project record only (its floor is deleted separately); False if it did not exist."""
