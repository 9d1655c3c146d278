"""One contract, every backend: what rooms.store.CampusStore promises, checked against each store."""

from __future__ import annotations

from dataclasses import replace

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path

import pytest

from rooms.person import PersonId
from rooms.project import Project
from rooms.model import Cooperation, DoorState, Floor, Municipality, OwnerKind, Rect, Room, RoomKind
from rooms.store import CampusStore
from rooms.store_memory import MemoryCampusStore
from rooms.store_redis import RedisCampusStore
from rooms.store_sqlite import SCHEMA_VERSION, SqliteCampusStore

ALTBACH = Municipality("altbach", "Gemeinde Altbach")
BERGHEIM = Municipality("bergheim", "Stadt Bergheim")
COOP = Cooperation("vier-taeler", "Kooperation Vier Täler", ("altbach", "bergheim"))
FLOOR_A = Floor("altbach-eg", "Rathaus Altbach – EG", OwnerKind.MUNICIPALITY, "altbach", 1200, 700, -1)
FLOOR_P = Floor("projekt", "Projektetage", OwnerKind.COOPERATION, "vier-taeler")
ROOM_A = Room(
    id="altbach-buero-anna",
    floor_id="altbach-eg",
    name="Büro Anna Albrecht",
    kind=RoomKind.OFFICE,
    rect=Rect(20, 30, 200, 210),
    door=DoorState.CLOSED,
    capacity=3,
    owners=(PersonId("altbach/anna.altbach"), PersonId("altbach/jan.altbach")),
    expires_at=1_900_000_000.125,
    created_at=1_700_000_000.5,
)
ROOM_B = Room("altbach-teekueche", "altbach-eg", "Teeküche", RoomKind.LOUNGE, Rect(400, 360, 240, 220))
ROOM_P = Room("projekt-raum", "projekt", "Projektraum", RoomKind.PROJECT, Rect(20, 20, 400, 220), DoorState.LOCKED)

StoreFactory = Callable[[], CampusStore]


def _store_factory(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Store objects of one backend that all see the same data (but for memory)."""
    if backend == "memory":
        return MemoryCampusStore
    if backend == "sqlite":
        path = tmp_path / "nested" / "dir" / "campus.sqlite3"  # parent dirs do not exist yet
        return lambda: SqliteCampusStore(path)
    # The Redis server is started only when a Redis case runs; one server for the
    # session, a key prefix of its own for every test.
    url = request.getfixturevalue("redis_server").url
    prefix = request.getfixturevalue("redis_prefix")
    return lambda: RedisCampusStore(url, prefix=prefix)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes store objects; for SQLite they open one file, for Redis one server and prefix."""
    return _store_factory(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "redis"])
def new_durable_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """As ``new_store``, for the backends whose data outlives the store object."""
    return _store_factory(request.param, request, tmp_path)


@pytest.fixture
async def store(new_store: StoreFactory) -> AsyncIterator[CampusStore]:
    s = new_store()
    await s.open()
    yield s
    await s.close()


async def fill(store: CampusStore) -> None:
    await store.put_municipality(ALTBACH)
    await store.put_municipality(BERGHEIM)
    await store.put_cooperation(COOP)
    await store.put_floor(FLOOR_A)
    await store.put_floor(FLOOR_P)
    for room in (ROOM_A, ROOM_B, ROOM_P):
        await store.put_room(room)


async def test_a_new_store_is_empty(store: CampusStore) -> None:
    data = await store.load()
    assert data.is_empty()


async def test_everything_put_is_loaded_back_equal(store: CampusStore) -> None:
    await fill(store)
    data = await store.load()
    assert data.municipalities == {"altbach": ALTBACH, "bergheim": BERGHEIM}
    assert data.cooperations == {"vier-taeler": COOP}
    assert data.floors == {"altbach-eg": FLOOR_A, "projekt": FLOOR_P}
    assert data.rooms == {r.id: r for r in (ROOM_A, ROOM_B, ROOM_P)}
    # created_at is compare=False on Room, so check it (and the exact types) by hand.
    anna = data.rooms["altbach-buero-anna"]
    assert anna.created_at == 1_700_000_000.5
    assert anna.expires_at == 1_900_000_000.125
    assert anna.owners == ("altbach/anna.altbach", "altbach/jan.altbach") and isinstance(anna.owners, tuple)
    assert anna.door is DoorState.CLOSED and anna.kind is RoomKind.OFFICE
    assert data.cooperations["vier-taeler"].members == ("altbach", "bergheim")
    assert data.floors["altbach-eg"].position == -1


async def test_put_replaces_by_id(store: CampusStore) -> None:
    await fill(store)
    await store.put_municipality(Municipality("altbach", "Stadt Altbach"))
    await store.put_cooperation(Cooperation("vier-taeler", "Vier Täler", ("altbach",)))
    await store.put_floor(Floor("projekt", "Neue Projektetage", OwnerKind.COOPERATION, "vier-taeler", 2000, 900, 3))
    renamed = Room("altbach-teekueche", "altbach-eg", "Küche", RoomKind.LOUNGE, Rect(1, 2, 30, 40), capacity=2)
    await store.put_room(renamed)
    data = await store.load()
    assert data.municipalities["altbach"].name == "Stadt Altbach"
    assert data.cooperations["vier-taeler"].members == ("altbach",)
    expected = Floor("projekt", "Neue Projektetage", OwnerKind.COOPERATION, "vier-taeler", 2000, 900, 3)
    assert data.floors["projekt"] == expected
    assert data.rooms["altbach-teekueche"] == renamed
    assert len(data.rooms) == 3 and len(data.floors) == 2 and len(data.municipalities) == 2


async def test_replacing_a_floor_keeps_its_rooms(store: CampusStore) -> None:
    # Guards against INSERT OR REPLACE, which deletes the old row and cascades.
    await fill(store)
    await store.put_floor(Floor("altbach-eg", "Umbenannt", OwnerKind.MUNICIPALITY, "altbach", 1200, 700))
    data = await store.load()
    assert set(data.rooms) == {"altbach-buero-anna", "altbach-teekueche", "projekt-raum"}


async def test_delete_room_reports_whether_it_existed(store: CampusStore) -> None:
    await fill(store)
    assert await store.delete_room("altbach-teekueche") is True
    assert await store.delete_room("altbach-teekueche") is False
    assert await store.delete_room("never-was") is False
    assert set((await store.load()).rooms) == {"altbach-buero-anna", "projekt-raum"}


async def test_delete_floor_removes_its_rooms_and_only_its_rooms(store: CampusStore) -> None:
    await fill(store)
    assert await store.delete_floor("altbach-eg") is True
    data = await store.load()
    assert set(data.floors) == {"projekt"}
    assert set(data.rooms) == {"projekt-raum"}
    assert await store.delete_floor("altbach-eg") is False


async def test_a_room_on_an_unknown_floor_is_refused_and_not_stored(store: CampusStore) -> None:
    await fill(store)
    stray = Room("stray", "no-such-floor", "Irgendwo", RoomKind.OFFICE, Rect(0, 0, 10, 10))
    with pytest.raises(KeyError):
        await store.put_room(stray)
    assert "stray" not in (await store.load()).rooms


async def test_loaded_data_is_a_copy(store: CampusStore) -> None:
    await fill(store)
    first = await store.load()
    first.rooms.clear()
    first.floors["extra"] = FLOOR_P
    second = await store.load()
    assert len(second.rooms) == 3 and set(second.floors) == {"altbach-eg", "projekt"}


async def test_list_members_and_owners_are_stored_as_tuples(store: CampusStore) -> None:
    await fill(store)
    members = ["altbach"]
    await store.put_cooperation(Cooperation("k2", "K2", members))  # type: ignore[arg-type]
    members.append("bergheim")  # must not leak into the store
    assert (await store.load()).cooperations["k2"].members == ("altbach",)


async def test_open_and_close_are_idempotent(new_store: StoreFactory) -> None:
    s = new_store()
    await s.open()
    await s.open()
    await s.put_municipality(ALTBACH)
    await s.close()
    await s.close()


async def test_data_survives_close_and_reopen_in_a_new_store_object(new_durable_store: StoreFactory) -> None:
    first = new_durable_store()
    await first.open()
    await fill(first)
    await first.delete_room("altbach-teekueche")
    await first.close()

    second = new_durable_store()
    await second.open()
    data = await second.load()
    await second.close()
    assert data.municipalities == {"altbach": ALTBACH, "bergheim": BERGHEIM}
    assert data.cooperations == {"vier-taeler": COOP}
    assert data.floors == {"altbach-eg": FLOOR_A, "projekt": FLOOR_P}
    assert data.rooms == {"altbach-buero-anna": ROOM_A, "projekt-raum": ROOM_P}
    assert data.rooms["altbach-buero-anna"].created_at == ROOM_A.created_at


async def test_projects_round_trip_replace_and_delete(store: CampusStore) -> None:
    project = Project(
        "p-1", "Digitales Bauamt", "Bauanträge online", coordinators=(PersonId("altbach/anna"),),
        members=(PersonId("seefeld/sven"),), municipalities=("bergheim",), ends_at=2e9,
        created_by=PersonId("altbach/anna"), created_at=1e9,
    )  # fmt: skip
    await store.put_project(project)
    assert (await store.load()).projects == {"p-1": project}
    renamed = replace(project, name="Bauamt digital", municipalities=())
    await store.put_project(renamed)
    assert (await store.load()).projects == {"p-1": renamed}
    assert await store.delete_project("p-1") is True
    assert await store.delete_project("p-1") is False
    assert (await store.load()).projects == {}


async def test_sqlite_writes_are_committed_before_returning(tmp_path: Path) -> None:
    path = tmp_path / "campus.sqlite3"
    s = SqliteCampusStore(path)
    await s.open()
    try:
        await fill(s)
        # A second, independent connection sees the data while the store is still open.
        with closing(sqlite3.connect(path)) as other:
            assert other.execute("SELECT count(*) FROM rooms").fetchone()[0] == 3
    finally:
        await s.close()


async def test_sqlite_file_is_wal_versioned_and_enforces_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "campus.sqlite3"
    s = SqliteCampusStore(path)
    await s.open()
    await s.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        fk = conn.execute("SELECT \"table\", on_delete FROM pragma_foreign_key_list('rooms')").fetchall()
        assert fk == [("floors", "CASCADE")]


async def test_sqlite_refuses_a_file_from_a_newer_version(tmp_path: Path) -> None:
    path = tmp_path / "campus.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    s = SqliteCampusStore(path)
    with pytest.raises(RuntimeError, match="newer"):
        await s.open()
    # The failed open left nothing running; a further close is harmless.
    await s.close()


async def test_sqlite_store_used_before_open_says_so(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"open\(\) first"):
        await SqliteCampusStore(tmp_path / "x.sqlite3").load()
