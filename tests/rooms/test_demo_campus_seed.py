"""The demo campus file loads, draws a believable floor plan, and bad seed files say what is wrong."""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from pathlib import Path

import pytest

from rooms.actors import Actor, Role
from rooms.campus import CampusService
from rooms.model import DoorState, Rect, RoomKind
from rooms.seed import CampusSeed, load_seed
from rooms.store_sqlite import SqliteCampusStore

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo_campus.toml"
TOWNS = ("altbach", "bergheim", "lindenau", "seefeld")


@pytest.fixture(scope="module")
def demo() -> CampusSeed:
    return load_seed(DEMO)


def overlaps(a: Rect, b: Rect) -> bool:
    # Sharing a wall (one ends where the next begins) is not an overlap.
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def test_overlap_helper_tells_touching_from_overlapping() -> None:
    assert not overlaps(Rect(0, 0, 100, 100), Rect(100, 0, 100, 100))
    assert overlaps(Rect(0, 0, 100, 100), Rect(99, 99, 10, 10))


def test_demo_has_the_four_towns_and_their_cooperation(demo: CampusSeed) -> None:
    assert {m.id: m.name for m in demo.municipalities} == {
        "altbach": "Gemeinde Altbach",
        "bergheim": "Stadt Bergheim",
        "lindenau": "Gemeinde Lindenau",
        "seefeld": "Markt Seefeld",
    }
    [coop] = demo.cooperations
    assert coop.id == "vier-taeler" and coop.name == "Interkommunale Kooperation Vier Täler"
    assert sorted(coop.members) == list(TOWNS)
    owners = {f.id: (f.owner_kind.value, f.owner_id) for f in demo.floors}
    assert owners == {"projekt": ("cooperation", "vier-taeler")} | {
        f"{t}-eg": ("municipality", t) for t in TOWNS
    }


def test_every_room_fits_its_floor_and_none_overlap(demo: CampusSeed) -> None:
    floors = {f.id: f for f in demo.floors}
    assert len({r.id for r in demo.rooms}) == len(demo.rooms)
    for room in demo.rooms:
        floor = floors[room.floor_id]
        r = room.rect
        assert r.x >= 0 and r.y >= 0 and r.x + r.w <= floor.width and r.y + r.h <= floor.height, room.id
    for floor_id in floors:
        rooms = [r for r in demo.rooms if r.floor_id == floor_id]
        for a, b in combinations(rooms, 2):
            assert not overlaps(a.rect, b.rect), (a.id, b.id)


def test_each_town_floor_is_a_working_town_hall(demo: CampusSeed) -> None:
    for town in TOWNS:
        rooms = [r for r in demo.rooms if r.floor_id == f"{town}-eg"]
        assert 4 <= len(rooms) <= 6, town
        kinds = Counter(r.kind for r in rooms)
        assert kinds[RoomKind.SERVICE_COUNTER] == 1 and kinds[RoomKind.LOUNGE] == 1 and kinds[RoomKind.MEETING] == 1
        assert {r.name for r in rooms} >= {"Bürgerbüro", "Teeküche"}
        doors = Counter(r.door for r in rooms)
        assert doors[DoorState.OPEN] >= 1 and doors[DoorState.CLOSED] >= 1 and doors[DoorState.LOCKED] == 1, town
        assert all(r.owners for r in rooms if r.kind is RoomKind.OFFICE), town
        assert all(r.id.startswith(f"{town}-") for r in rooms)
    project = {r.kind for r in demo.rooms if r.floor_id == "projekt"}
    assert project >= {RoomKind.PROJECT, RoomKind.MEETING, RoomKind.LOUNGE, RoomKind.OFFICE}
    owners = {o for r in demo.rooms for o in r.owners}
    assert {"altbach/anna.altbach", "bergheim/ben.bergheim", "lindenau/lea.lindenau", "seefeld/sven.seefeld"} <= owners


async def test_the_demo_campus_starts_a_service(tmp_path: Path, demo: CampusSeed) -> None:
    service = CampusService(SqliteCampusStore(tmp_path / "demo.sqlite3"))
    await service.start(demo)
    try:
        anna = Actor("anna.altbach", "altbach", "Anna Albrecht", frozenset({Role.STAFF}))
        view = service.campus_view(anna)
        assert view["municipality"]["name"] == "Gemeinde Altbach"
        assert {f["id"] for f in view["floors"]} == {"projekt", "altbach-eg"}
        assert sum(len(f["rooms"]) for f in view["floors"]) == 11
    finally:
        await service.close()


def room_entry(rect: str = "{ x = 0, y = 0, w = 10, h = 10 }", kind: str = "office", name: str = "R") -> str:
    return f'[[floors.rooms]]\nid = "r1"\nname = "{name}"\nkind = "{kind}"\nrect = {rect}\n'


GOOD_HEAD = """
[[municipalities]]
id = "altbach"
name = "Gemeinde Altbach"
[[floors]]
id = "altbach-eg"
name = "EG"
owner_kind = "municipality"
owner_id = "altbach"
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[municipalities]\nid=", "not valid TOML"),
        ('[[villages]]\nid = "x"', "unknown keys ['villages']"),
        (GOOD_HEAD + room_entry() + "capacty = 3\n",
         "floors[0] (id 'altbach-eg').rooms[0] (id 'r1'): unknown keys ['capacty']"),
        (GOOD_HEAD + room_entry(rect="{ x = 950, y = 0, w = 100, h = 10 }"),
         "floors[0] (id 'altbach-eg').rooms[0] (id 'r1'): rect: must lie within the floor"),
        (GOOD_HEAD + room_entry(kind="kitchen"),
         "rooms[0] (id 'r1'): kind: must be one of"),
        (GOOD_HEAD + '[[floors.rooms]]\nid = "r1"\nkind = "office"\nrect = { x = 0, y = 0, w = 10, h = 10 }\n',
         "rooms[0] (id 'r1'): name: must be a string"),
        (GOOD_HEAD + 'width = 50\n', "floors[0] (id 'altbach-eg'): width: must be between 100 and 10000"),
        (GOOD_HEAD.replace('owner_id = "altbach"', 'owner_id = "bergheim"'), "unknown municipality 'bergheim'"),
        (GOOD_HEAD + '[[cooperations]]\nid = "k"\nname = "K"\nmembers = ["altbach", "nowhere"]\n',
         "cooperation 'k': unknown member municipalities ['nowhere']"),
        (GOOD_HEAD + '[[municipalities]]\nid = "altbach"\nname = "Noch mal"\n',
         "municipalities: duplicate id 'altbach'"),
        ('[[municipalities]]\nname = "Ohne Id"\n', "municipalities[0]: id: must be"),
    ],
)
def test_bad_seed_files_name_the_entry_at_fault(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "campus.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_seed(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_a_minimal_seed_file_gets_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "campus.toml"
    path.write_text(
        GOOD_HEAD + room_entry(name=" R "),
        encoding="utf-8",
    )
    seed = load_seed(path)
    [floor] = seed.floors
    assert (floor.width, floor.height, floor.position) == (1000, 600, 0)
    [room] = seed.rooms
    assert (room.floor_id, room.name, room.door, room.capacity, room.owners, room.expires_at) == (
        "altbach-eg", "R", DoorState.OPEN, 8, (), None,
    )  # fmt: skip
