"""The embedded campus store: one SQLite file, the default for a single node.

All SQLite work runs on one dedicated worker thread that owns the one connection:
``sqlite3`` blocks, and the event loop must not. A single-thread executor both
keeps the connection on the thread that created it and serialises every call, so
no lock is needed and calls run in the order they were made. That machinery is
:class:`rooms.sqlite_worker.SqliteWorker`, which the other SQLite stores share.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Final

from rooms.model import Cooperation, DoorState, Floor, Municipality, OwnerKind, Rect, Room, RoomKind
from rooms.project import Project
from rooms.sqlite_worker import Migrations, OnSqliteWorker
from rooms.store import CampusData

__all__ = ["SqliteCampusStore", "SCHEMA_VERSION"]

#: Bumped with every entry in :data:`_MIGRATIONS`; kept in ``PRAGMA user_version``.
SCHEMA_VERSION: Final = 2

# _MIGRATIONS[n] takes a database from version n to n + 1. Append, never edit:
# files in the field are at every version that was ever released.
_MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE municipalities (
        id   TEXT PRIMARY KEY,
        name TEXT NOT NULL
    );
    CREATE TABLE cooperations (
        id      TEXT PRIMARY KEY,
        name    TEXT NOT NULL,
        members TEXT NOT NULL          -- JSON array of municipality ids
    );
    CREATE TABLE floors (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        owner_kind TEXT NOT NULL,
        owner_id   TEXT NOT NULL,      -- municipality or cooperation id, by owner_kind
        width      INTEGER NOT NULL,
        height     INTEGER NOT NULL,
        position   INTEGER NOT NULL
    );
    CREATE TABLE rooms (
        id         TEXT PRIMARY KEY,
        floor_id   TEXT NOT NULL REFERENCES floors(id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        kind       TEXT NOT NULL,
        x          INTEGER NOT NULL,
        y          INTEGER NOT NULL,
        w          INTEGER NOT NULL,
        h          INTEGER NOT NULL,
        door       TEXT NOT NULL,
        capacity   INTEGER NOT NULL,
        owners     TEXT NOT NULL,      -- JSON array of user ids
        expires_at REAL,
        created_at REAL NOT NULL
    );
    CREATE INDEX rooms_by_floor ON rooms(floor_id);
    """,
    # 1 -> 2: projects (rooms/project.py). The record as JSON: it is read whole and
    # never queried by field, and a new field then needs no migration.
    """
    CREATE TABLE projects (
        id     TEXT PRIMARY KEY,
        record TEXT NOT NULL           -- Project.to_dict() as JSON
    );
    """,
)
_SCHEMA: Final = Migrations(_MIGRATIONS)
assert _SCHEMA.version == SCHEMA_VERSION

# Upserts, not INSERT OR REPLACE: REPLACE deletes the old row first, and deleting a
# floor row would cascade to its rooms.
_PUT_MUNICIPALITY: Final = """
    INSERT INTO municipalities (id, name) VALUES (?, ?)
    ON CONFLICT(id) DO UPDATE SET name = excluded.name
"""
_PUT_COOPERATION: Final = """
    INSERT INTO cooperations (id, name, members) VALUES (?, ?, ?)
    ON CONFLICT(id) DO UPDATE SET name = excluded.name, members = excluded.members
"""
_PUT_FLOOR: Final = """
    INSERT INTO floors (id, name, owner_kind, owner_id, width, height, position)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(id) DO UPDATE SET
        name = excluded.name, owner_kind = excluded.owner_kind, owner_id = excluded.owner_id,
        width = excluded.width, height = excluded.height, position = excluded.position
"""
_PUT_ROOM: Final = """
    INSERT INTO rooms (id, floor_id, name, kind, x, y, w, h, door, capacity, owners, expires_at, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(id) DO UPDATE SET
        floor_id = excluded.floor_id, name = excluded.name, kind = excluded.kind,
        x = excluded.x, y = excluded.y, w = excluded.w, h = excluded.h,
        door = excluded.door, capacity = excluded.capacity, owners = excluded.owners,
        expires_at = excluded.expires_at, created_at = excluded.created_at
"""


class SqliteCampusStore(OnSqliteWorker):
    """:class:`rooms.store.CampusStore` in one SQLite file (WAL mode).

    Contract as in :mod:`rooms.store`. Every write is a single statement in
    autocommit mode, so it is committed (and, with ``synchronous=FULL``, on disk)
    before the call returns. ``put_room`` raises ``KeyError`` if the room's floor
    does not exist (the foreign key refuses it), as the memory store does.
    One process per file: the file is not a cluster backend.
    """

    def __init__(self, path: str | Path) -> None:
        # Campus edits are rare and must not vanish on power loss: the worker pays for FULL.
        super().__init__(path, thread_name="campus-sqlite", schema=_SCHEMA, foreign_keys=True)

    @property
    def path(self) -> Path:
        return self._worker.path

    async def load(self) -> CampusData:
        return await self._worker.run(self._load)

    async def put_municipality(self, municipality: Municipality) -> None:
        await self._worker.execute(_PUT_MUNICIPALITY, (municipality.id, municipality.name))

    async def put_cooperation(self, cooperation: Cooperation) -> None:
        members = json.dumps(list(cooperation.members))
        await self._worker.execute(_PUT_COOPERATION, (cooperation.id, cooperation.name, members))

    async def put_floor(self, floor: Floor) -> None:
        await self._worker.execute(
            _PUT_FLOOR,
            (floor.id, floor.name, floor.owner_kind.value, floor.owner_id, floor.width, floor.height, floor.position),
        )

    async def delete_floor(self, floor_id: str) -> bool:
        # The rooms go with it through ON DELETE CASCADE, in the same statement.
        return await self._worker.execute("DELETE FROM floors WHERE id = ?", (floor_id,)) > 0

    async def put_room(self, room: Room) -> None:
        r = room.rect
        params = (
            room.id, room.floor_id, room.name, room.kind.value, r.x, r.y, r.w, r.h,
            room.door.value, room.capacity, json.dumps(list(room.owners)), room.expires_at, room.created_at,
        )  # fmt: skip
        try:
            await self._worker.execute(_PUT_ROOM, params)
        except sqlite3.IntegrityError as exc:
            if "FOREIGN KEY" not in str(exc):
                raise
            raise KeyError(f"floor {room.floor_id!r} does not exist") from exc

    async def delete_room(self, room_id: str) -> bool:
        return await self._worker.execute("DELETE FROM rooms WHERE id = ?", (room_id,)) > 0

    async def put_project(self, project: Project) -> None:
        record = json.dumps(project.to_dict(), separators=(",", ":"))
        await self._worker.execute(
            "INSERT INTO projects (id, record) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET record = excluded.record",
            (project.id, record),
        )

    async def delete_project(self, project_id: str) -> bool:
        return await self._worker.execute("DELETE FROM projects WHERE id = ?", (project_id,)) > 0

    # -- worker-thread side -------------------------------------------------

    def _load(self) -> CampusData:
        conn = self._worker.connection()
        data = CampusData()
        # One read transaction, so the four tables are read as of one moment.
        conn.execute("BEGIN")
        try:
            for id_, name in conn.execute("SELECT id, name FROM municipalities"):
                data.municipalities[id_] = Municipality(id_, name)
            for id_, name, members in conn.execute("SELECT id, name, members FROM cooperations"):
                data.cooperations[id_] = Cooperation(id_, name, tuple(json.loads(members)))
            for row in conn.execute("SELECT id, name, owner_kind, owner_id, width, height, position FROM floors"):
                floor = Floor(row[0], row[1], OwnerKind(row[2]), row[3], row[4], row[5], row[6])
                data.floors[floor.id] = floor
            for row in conn.execute(
                "SELECT id, floor_id, name, kind, x, y, w, h, door, capacity, owners, expires_at, created_at"
                " FROM rooms"
            ):
                room = Room(
                    id=row[0],
                    floor_id=row[1],
                    name=row[2],
                    kind=RoomKind(row[3]),
                    rect=Rect(row[4], row[5], row[6], row[7]),
                    door=DoorState(row[8]),
                    capacity=row[9],
                    owners=tuple(json.loads(row[10])),
                    expires_at=row[11],
                    created_at=row[12],
                )
                data.rooms[room.id] = room
            for (record,) in conn.execute("SELECT record FROM projects"):
                project = Project.from_dict(json.loads(record))
                data.projects[project.id] = project
        finally:
            conn.execute("COMMIT")
        return data
