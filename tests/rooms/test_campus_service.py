"""CampusService: seeding, reads, authorised and validated writes, events, expiry, remote changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from rooms.actors import Actor, Role
from rooms.campus import CampusChange, CampusService
from rooms.errors import DomainError, ErrorCode
from rooms.person import PersonId
from rooms.model import Cooperation, DoorState, Floor, Municipality, OwnerKind, Rect, Room, RoomKind
from rooms.seed import CampusSeed
from rooms.store import CampusData
from rooms.store_memory import MemoryCampusStore
from rooms.store_sqlite import SqliteCampusStore

NOW = 1_000_000.0


def person(user_id: str, municipality: str, *roles: Role) -> Actor:
    return Actor(user_id, municipality, user_id.title(), frozenset(roles or {Role.STAFF}))


ANNA = person("anna.altbach", "altbach")  # staff, owns her office
ADMIN_A = person("admin.altbach", "altbach", Role.ADMIN)
GUEST_A = person("gast", "altbach", Role.GUEST)
ADMIN_B = person("admin.bergheim", "bergheim", Role.ADMIN)  # cooperation member, other town
ADMIN_S = person("admin.seefeld", "seefeld", Role.ADMIN)  # not a member of the cooperation
ADMIN_N = person("admin.neustadt", "neustadt", Role.ADMIN)  # municipality unknown to the campus


def small_seed() -> CampusSeed:
    return CampusSeed(
        municipalities=[
            Municipality("altbach", "Gemeinde Altbach"),
            Municipality("bergheim", "Stadt Bergheim"),
            Municipality("seefeld", "Markt Seefeld"),
        ],
        cooperations=[Cooperation("vier-taeler", "Vier Täler", ("altbach", "bergheim"))],
        floors=[
            Floor("altbach-eg", "Rathaus Altbach", OwnerKind.MUNICIPALITY, "altbach"),
            Floor("projekt", "Projektetage", OwnerKind.COOPERATION, "vier-taeler", position=1),
            Floor("seefeld-eg", "Rathaus Seefeld", OwnerKind.MUNICIPALITY, "seefeld"),
        ],
        rooms=[
            Room("altbach-buero-anna", "altbach-eg", "Büro Anna", RoomKind.OFFICE, Rect(20, 20, 200, 200),
                 DoorState.CLOSED, 4, (PersonId("altbach/anna.altbach"),)),  # fmt: skip
            Room("altbach-teekueche", "altbach-eg", "Teeküche", RoomKind.LOUNGE, Rect(300, 20, 200, 200)),
            Room("projekt-raum", "projekt", "Projektraum", RoomKind.PROJECT, Rect(20, 20, 400, 200)),
            Room("seefeld-buero", "seefeld-eg", "Büro Sven", RoomKind.OFFICE, Rect(20, 20, 200, 200)),
        ],
    )


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    """A listener that records every change and what the service showed at that moment."""

    service: CampusService | None = None
    changes: list[CampusChange] = field(default_factory=list)
    floor_seen: list[bool] = field(default_factory=list)  # was change.floor_id still known?
    room_seen: list[bool] = field(default_factory=list)  # was change.room still known?

    async def campus_changed(self, change: CampusChange) -> None:
        self.changes.append(change)
        if self.service is not None:
            self.floor_seen.append(self.service.floor(change.floor_id) is not None)
            self.room_seen.append(change.room is not None and self.service.room(change.room.id) is not None)

    @property
    def kinds(self) -> list[tuple[str, str]]:
        return [(c.kind, c.room.id if c.room else c.floor_id) for c in self.changes]


@pytest.fixture
def store() -> MemoryCampusStore:
    return MemoryCampusStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def campus(store: MemoryCampusStore, clock: Clock) -> AsyncIterator[CampusService]:
    service = CampusService(store, clock=clock)
    await service.start(small_seed())
    yield service
    await service.close()


@pytest.fixture
def events(campus: CampusService) -> Recorder:
    recorder = Recorder(campus)
    campus.add_listener(recorder)
    return recorder


async def snapshot(store: MemoryCampusStore) -> CampusData:
    return await store.load()


# -- start and seed -------------------------------------------------------------


async def test_start_writes_the_seed_into_an_empty_store(store: MemoryCampusStore, clock: Clock) -> None:
    service = CampusService(store, clock=clock)
    await service.start(small_seed())
    data = await store.load()
    assert set(data.municipalities) == {"altbach", "bergheim", "seefeld"}
    assert set(data.floors) == {"altbach-eg", "projekt", "seefeld-eg"}
    assert len(data.rooms) == 4
    assert data.rooms["projekt-raum"].created_at == NOW
    assert service.room("altbach-buero-anna") == data.rooms["altbach-buero-anna"]
    assert service.cooperations["vier-taeler"].members == ("altbach", "bergheim")


async def test_start_never_reseeds_a_store_with_data(tmp_path: Path) -> None:
    path = tmp_path / "campus.sqlite3"
    first = CampusService(SqliteCampusStore(path))
    await first.start(small_seed())
    await first.close()

    other_seed = CampusSeed(
        municipalities=[Municipality("x", "X")],
        floors=[Floor("x-eg", "X", OwnerKind.MUNICIPALITY, "x")],
    )
    second = CampusService(SqliteCampusStore(path))
    await second.start(other_seed)
    try:
        assert second.floor("x-eg") is None
        assert "x" not in second.municipalities
        assert second.floor("altbach-eg") is not None
        assert [r.id for r in second.rooms_on("altbach-eg")] == ["altbach-buero-anna", "altbach-teekueche"]
    finally:
        await second.close()


async def test_start_without_a_seed_leaves_an_empty_store_empty(store: MemoryCampusStore) -> None:
    service = CampusService(store)
    await service.start()
    assert (await store.load()).is_empty()
    assert service.visible_floors(ADMIN_A) == []


async def test_a_seed_with_a_dangling_reference_is_refused(store: MemoryCampusStore) -> None:
    seed = small_seed()
    seed.floors.append(Floor("lost", "Lost", OwnerKind.COOPERATION, "no-such-coop"))
    with pytest.raises(ValueError, match="no-such-coop"):
        await CampusService(store).start(seed)
    assert (await store.load()).is_empty()


async def test_writes_before_start_are_refused(store: MemoryCampusStore) -> None:
    service = CampusService(store)
    with pytest.raises(RuntimeError, match="start"):
        await service.delete_room(ADMIN_A, "anything")


# -- reads ------------------------------------------------------------------------


def test_each_actor_sees_their_floors_in_order(campus: CampusService) -> None:
    assert [f.id for f in campus.visible_floors(ANNA)] == ["altbach-eg", "projekt"]  # own town first
    assert [f.id for f in campus.visible_floors(ADMIN_B)] == ["projekt"]
    assert [f.id for f in campus.visible_floors(GUEST_A)] == ["altbach-eg"]
    assert [f.id for f in campus.visible_floors(ADMIN_S)] == ["seefeld-eg"]
    assert campus.visible_floors(ADMIN_N) == []


def test_an_invisible_floor_or_room_is_indistinguishable_from_a_missing_one(campus: CampusService) -> None:
    for floor_id in ("seefeld-eg", "no-such-floor"):
        with pytest.raises(DomainError) as err:
            campus.visible_floor(ANNA, floor_id)
        assert err.value.code is ErrorCode.NOT_FOUND
    for room_id in ("seefeld-buero", "no-such-room"):
        with pytest.raises(DomainError) as err:
            campus.visible_room(ANNA, room_id)
        assert err.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(DomainError) as err:
        campus.visible_room(GUEST_A, "projekt-raum")
    assert err.value.code is ErrorCode.NOT_FOUND
    assert campus.visible_room(ANNA, "projekt-raum").name == "Projektraum"
    assert campus.can_see_floor(ANNA, "projekt") and not campus.can_see_floor(ANNA, "seefeld-eg")


def test_rooms_on_a_floor_are_sorted_by_name(campus: CampusService) -> None:
    assert [r.name for r in campus.rooms_on("altbach-eg")] == ["Büro Anna", "Teeküche"]
    assert campus.rooms_on("no-such-floor") == []


def test_campus_view_for_staff_and_for_a_guest(campus: CampusService) -> None:
    view = campus.campus_view(ANNA)
    assert view["municipality"] == {"id": "altbach", "name": "Gemeinde Altbach"}
    assert view["cooperations"] == [{"id": "vier-taeler", "name": "Vier Täler", "members": ["altbach", "bergheim"]}]
    assert [f["id"] for f in view["floors"]] == ["altbach-eg", "projekt"]
    altbach = view["floors"][0]
    assert altbach["owner_kind"] == "municipality"
    assert [r["id"] for r in altbach["rooms"]] == ["altbach-buero-anna", "altbach-teekueche"]
    assert altbach["rooms"][0]["door"] == "closed"

    guest = campus.campus_view(GUEST_A)
    assert guest["cooperations"] == []
    assert [f["id"] for f in guest["floors"]] == ["altbach-eg"]
    assert campus.campus_view(ADMIN_N)["municipality"] is None


# -- authorisation ------------------------------------------------------------------

DENIALS = [
    # (actor, floor or room id, expected code)
    (ADMIN_S, "altbach-eg", ErrorCode.NOT_FOUND),  # other municipality
    (ADMIN_S, "projekt", ErrorCode.NOT_FOUND),  # not a cooperation member
    (ANNA, "altbach-eg", ErrorCode.FORBIDDEN),  # own municipality, not an admin
    (ANNA, "projekt", ErrorCode.FORBIDDEN),
    (GUEST_A, "altbach-eg", ErrorCode.FORBIDDEN),  # a guest sees the floor, changes nothing
    (GUEST_A, "projekt", ErrorCode.NOT_FOUND),  # ... and does not see cooperation floors
]


@pytest.mark.parametrize(("actor", "floor_id", "code"), DENIALS, ids=lambda v: getattr(v, "user_id", str(v)))
async def test_floor_and_room_writes_are_refused_without_leaking(
    campus: CampusService, store: MemoryCampusStore, events: Recorder, actor: Actor, floor_id: str, code: ErrorCode
) -> None:
    before = await snapshot(store)
    room_id = campus.rooms_on(floor_id)[0].id
    attempts = [
        campus.update_floor(actor, floor_id, name="Neu"),
        campus.delete_floor(actor, floor_id),
        campus.create_room(actor, floor_id, name="Neu", kind=RoomKind.OFFICE, rect=Rect(600, 300, 100, 100)),
        campus.update_room(actor, room_id, name="Neu"),
        campus.delete_room(actor, room_id),
    ]
    for attempt in attempts:
        with pytest.raises(DomainError) as err:
            await attempt
        assert err.value.code is code
    after = await snapshot(store)
    assert after == before
    assert [r.created_at for r in after.rooms.values()] == [r.created_at for r in before.rooms.values()]
    assert events.changes == []


async def test_create_floor_needs_an_admin_of_the_owner(
    campus: CampusService, store: MemoryCampusStore, events: Recorder
) -> None:
    before = await snapshot(store)
    cases = [
        (ANNA, OwnerKind.MUNICIPALITY, "altbach", ErrorCode.FORBIDDEN),
        (GUEST_A, OwnerKind.MUNICIPALITY, "altbach", ErrorCode.FORBIDDEN),
        (ADMIN_A, OwnerKind.MUNICIPALITY, "bergheim", ErrorCode.FORBIDDEN),
        (ADMIN_S, OwnerKind.COOPERATION, "vier-taeler", ErrorCode.FORBIDDEN),
        (ADMIN_A, OwnerKind.COOPERATION, "no-such-coop", ErrorCode.FORBIDDEN),
        (ADMIN_N, OwnerKind.MUNICIPALITY, "neustadt", ErrorCode.INVALID_PAYLOAD),  # admin, but no such owner
    ]
    for actor, kind, owner_id, code in cases:
        with pytest.raises(DomainError) as err:
            await campus.create_floor(actor, name="Neu", owner_kind=kind, owner_id=owner_id)
        assert err.value.code is code, (actor.user_id, owner_id)
    assert await snapshot(store) == before and events.changes == []


async def test_admins_create_floors_for_their_town_and_their_cooperation(
    campus: CampusService, store: MemoryCampusStore
) -> None:
    own = await campus.create_floor(ADMIN_A, name="  1. OG  ", owner_kind="municipality", owner_id="altbach")
    assert own.id.startswith("f-") and len(own.id) == 10
    assert own.name == "1. OG" and own.owner_kind is OwnerKind.MUNICIPALITY
    shared = await campus.create_floor(
        ADMIN_B, name="Archiv", owner_kind=OwnerKind.COOPERATION, owner_id="vier-taeler", width=2000, floor_id="archiv"
    )
    assert shared == Floor("archiv", "Archiv", OwnerKind.COOPERATION, "vier-taeler", 2000, 600, 0)
    assert (await store.load()).floors["archiv"] == shared
    assert campus.visible_floor(ANNA, "archiv") == shared

    with pytest.raises(DomainError) as err:
        await campus.create_floor(
            ADMIN_A, name="Doppelt", owner_kind="municipality", owner_id="altbach", floor_id="archiv"
        )
    assert err.value.code is ErrorCode.CONFLICT


async def test_a_room_owner_may_change_the_door_and_nothing_else(
    campus: CampusService, store: MemoryCampusStore
) -> None:
    room = await campus.update_room(ANNA, "altbach-buero-anna", door="open")
    assert room.door is DoorState.OPEN
    assert (await store.load()).rooms["altbach-buero-anna"].door is DoorState.OPEN

    for changes in ({"name": "Meins"}, {"door": "locked", "capacity": 2}):
        with pytest.raises(DomainError) as err:
            await campus.update_room(ANNA, "altbach-buero-anna", **changes)
        assert err.value.code is ErrorCode.FORBIDDEN
    assert campus.room("altbach-buero-anna") == room
    # A colleague who owns nothing here may not touch the door at all.
    with pytest.raises(DomainError) as err:
        await campus.update_room(person("mia.altbach", "altbach"), "altbach-buero-anna", door="closed")
    assert err.value.code is ErrorCode.FORBIDDEN


async def test_a_guest_owner_may_not_change_the_door(campus: CampusService) -> None:
    await campus.update_room(ADMIN_A, "altbach-teekueche", owners=["altbach/gast"])
    with pytest.raises(DomainError) as err:
        await campus.update_room(GUEST_A, "altbach-teekueche", door="locked")
    assert err.value.code is ErrorCode.FORBIDDEN
    assert campus.room("altbach-teekueche").door is DoorState.OPEN  # type: ignore[union-attr]


async def test_an_admin_of_a_member_town_edits_a_cooperation_room(campus: CampusService) -> None:
    room = await campus.update_room(
        ADMIN_B, "projekt-raum", name="Projektraum Digitales Rathaus", kind="meeting",
        rect={"x": 0, "y": 0, "w": 500, "h": 300}, capacity=30,
        owners=["bergheim/ben.bergheim", "bergheim/ben.bergheim", "altbach/anna.altbach"], expires_at=NOW + 60,  # the duplicate is dropped
    )  # fmt: skip
    assert room == Room(
        "projekt-raum", "projekt", "Projektraum Digitales Rathaus", RoomKind.MEETING, Rect(0, 0, 500, 300),
        DoorState.OPEN, 30, (PersonId("bergheim/ben.bergheim"), PersonId("altbach/anna.altbach")), NOW + 60,
    )  # fmt: skip


# -- validation ----------------------------------------------------------------------

FLOOR_INVALID = [
    ({"name": "   "}, "name"),
    ({"name": "x" * 81}, "name"),
    ({"name": 7}, "name"),
    ({"width": 99}, "width"),
    ({"height": 10_001}, "height"),
    ({"width": True}, "width"),
    ({"position": "1"}, "position"),
    ({"owner_id": "bergheim"}, "owner_id"),  # not changeable
    ({"colour": "blau"}, "colour"),
]

ROOM_INVALID = [
    ({"name": ""}, "name"),
    ({"kind": "kitchen"}, "kind"),
    ({"door": "ajar"}, "door"),
    ({"rect": Rect(900, 20, 200, 100)}, "rect"),  # sticks out on the right of a 1000-wide floor
    ({"rect": Rect(20, 500, 100, 101)}, "rect"),  # and at the bottom of a 600-high one
    ({"rect": Rect(-1, 0, 100, 100)}, "rect"),
    ({"rect": Rect(0, 0, 9, 100)}, "rect"),
    ({"rect": {"x": 0, "y": 0, "w": 100}}, "rect"),
    ({"rect": {"x": 0, "y": 0, "w": 100, "h": "10"}}, "rect.h"),
    ({"capacity": 0}, "capacity"),
    ({"capacity": 501}, "capacity"),
    ({"owners": "anna.altbach"}, "owners"),  # a string, not a list
    ({"owners": [f"u{i}" for i in range(21)]}, "owners"),
    ({"owners": [""]}, "owners"),
    ({"owners": ["altbach/" + "x" * 129]}, "owners"),
    ({"owners": ["anna.altbach"]}, "owners"),  # a bare user id: which town's Anna?
    ({"owners": ["alt bach/anna"]}, "owners"),  # not a municipality id
    ({"expires_at": NOW}, "expires_at"),  # not in the future
    ({"expires_at": "tomorrow"}, "expires_at"),
    ({"floor_id": "seefeld-eg"}, "floor_id"),  # not changeable
    ({"created_at": 0.0}, "created_at"),
]


@pytest.mark.parametrize(("changes", "field_name"), FLOOR_INVALID)
async def test_invalid_floor_changes_name_the_field(
    campus: CampusService, store: MemoryCampusStore, events: Recorder, changes: dict[str, Any], field_name: str
) -> None:
    before = await snapshot(store)
    with pytest.raises(DomainError) as err:
        await campus.update_floor(ADMIN_A, "altbach-eg", **changes)
    assert err.value.code is ErrorCode.INVALID_PAYLOAD
    assert err.value.detail is not None and err.value.detail.startswith(f"{field_name}:")
    assert err.value.extra == {"field": field_name}
    assert await snapshot(store) == before and events.changes == []


@pytest.mark.parametrize(("changes", "field_name"), ROOM_INVALID)
async def test_invalid_room_changes_name_the_field(
    campus: CampusService, store: MemoryCampusStore, events: Recorder, changes: dict[str, Any], field_name: str
) -> None:
    before = await snapshot(store)
    with pytest.raises(DomainError) as err:
        await campus.update_room(ADMIN_A, "altbach-teekueche", **changes)
    assert err.value.code is ErrorCode.INVALID_PAYLOAD
    assert err.value.detail is not None and err.value.detail.startswith(f"{field_name}:")
    assert await snapshot(store) == before and events.changes == []


@pytest.mark.parametrize(
    ("kwargs", "field_name"),
    [
        ({"kind": "kitchen"}, "kind"),
        ({"rect": Rect(0, 0, 1001, 10)}, "rect"),
        ({"capacity": -3}, "capacity"),
        ({"room_id": "has space"}, "room_id"),
        ({"name": "\t"}, "name"),
    ],
)
async def test_invalid_new_rooms_name_the_field(
    campus: CampusService, store: MemoryCampusStore, kwargs: dict[str, Any], field_name: str
) -> None:
    before = await snapshot(store)
    args: dict[str, Any] = {"name": "Neu", "kind": "office", "rect": Rect(600, 300, 100, 100), **kwargs}
    with pytest.raises(DomainError) as err:
        await campus.create_room(ADMIN_A, "altbach-eg", **args)
    assert err.value.code is ErrorCode.INVALID_PAYLOAD and err.value.extra == {"field": field_name}
    assert await snapshot(store) == before


async def test_create_room_accepts_enum_values_as_strings_and_stamps_created_at(
    campus: CampusService, store: MemoryCampusStore, clock: Clock
) -> None:
    clock.now = NOW + 5
    room = await campus.create_room(
        ADMIN_A, "altbach-eg", name="Besprechung", kind="meeting", rect={"x": 600, "y": 300, "w": 100, "h": 100},
        door="closed", capacity=6, owners=(PersonId("altbach/anna.altbach"),),
    )  # fmt: skip
    assert room.id.startswith("r-") and len(room.id) == 10
    assert (room.kind, room.door, room.rect, room.created_at) == (
        RoomKind.MEETING, DoorState.CLOSED, Rect(600, 300, 100, 100), NOW + 5,
    )  # fmt: skip
    assert (await store.load()).rooms[room.id] == room
    with pytest.raises(DomainError) as err:
        await campus.create_room(
            ADMIN_A, "altbach-eg", name="X", kind="office", rect=Rect(0, 0, 10, 10), room_id=room.id
        )
    assert err.value.code is ErrorCode.CONFLICT


async def test_a_floor_cannot_shrink_under_its_rooms(campus: CampusService, store: MemoryCampusStore) -> None:
    with pytest.raises(DomainError) as err:
        await campus.update_floor(ADMIN_A, "altbach-eg", width=400)  # the Teeküche ends at x=500
    assert err.value.code is ErrorCode.CONFLICT and err.value.extra == {"field": "width"}
    floor = await campus.update_floor(ADMIN_A, "altbach-eg", width=500, height=220, position=2)
    assert (floor.width, floor.height, floor.position) == (500, 220, 2)
    assert (await store.load()).floors["altbach-eg"] == floor


async def test_a_change_to_the_same_values_is_no_change(campus: CampusService, events: Recorder) -> None:
    floor = campus.floor("altbach-eg")
    assert await campus.update_floor(ADMIN_A, "altbach-eg", name="Rathaus Altbach") is floor
    office = campus.room("altbach-buero-anna")
    assert await campus.update_room(ANNA, "altbach-buero-anna", door=DoorState.CLOSED) is office
    assert await campus.update_room(ADMIN_A, "altbach-teekueche") is campus.room("altbach-teekueche")
    assert events.changes == []


# -- events -----------------------------------------------------------------------------


async def test_listeners_receive_changes_in_order_after_memory_is_updated(
    campus: CampusService, events: Recorder
) -> None:
    second = Recorder()
    campus.add_listener(second)
    floor = await campus.create_floor(ADMIN_A, name="OG", owner_kind="municipality", owner_id="altbach", floor_id="og")
    room = await campus.create_room(
        ADMIN_A, "og", name="Büro", kind="office", rect=Rect(0, 0, 100, 100), room_id="og-1"
    )
    renamed = await campus.update_room(ADMIN_A, "og-1", name="Büro 1")
    await campus.update_floor(ADMIN_A, "og", name="1. OG")
    removed = await campus.delete_room(ADMIN_A, "og-1")

    expected = [
        ("floor_upserted", "og"), ("room_upserted", "og-1"), ("room_upserted", "og-1"),
        ("floor_upserted", "og"), ("room_deleted", "og-1"),
    ]  # fmt: skip
    assert events.kinds == expected and second.kinds == expected
    assert events.changes[0].floor == floor
    assert events.changes[1].room == room and events.changes[2].room == renamed
    assert events.changes[2].room.name == "Büro 1"  # type: ignore[union-attr]
    assert events.changes[3].floor.name == "1. OG"  # type: ignore[union-attr]
    assert events.changes[4].room == removed == renamed
    # Each listener saw memory already changed: rooms present after an upsert, gone after a delete.
    assert events.room_seen == [False, True, True, False, False]


async def test_delete_floor_tells_about_each_room_then_the_floor(
    campus: CampusService, store: MemoryCampusStore, events: Recorder
) -> None:
    floor = await campus.delete_floor(ADMIN_A, "altbach-eg")
    assert events.kinds == [
        ("room_deleted", "altbach-buero-anna"),
        ("room_deleted", "altbach-teekueche"),
        ("floor_deleted", "altbach-eg"),
    ]
    assert events.changes[-1].floor == floor
    # While the rooms' events go out the floor is still there to look up; by its own event it is gone.
    assert events.floor_seen == [True, True, False]
    data = await store.load()
    assert "altbach-eg" not in data.floors
    assert not [r for r in data.rooms.values() if r.floor_id == "altbach-eg"]
    assert campus.rooms_on("altbach-eg") == [] and campus.room("altbach-teekueche") is None


async def test_a_failing_listener_neither_fails_the_write_nor_silences_others(campus: CampusService) -> None:
    class Broken:
        async def campus_changed(self, change: CampusChange) -> None:
            raise RuntimeError("boom")

    campus.add_listener(Broken())
    after = Recorder()
    campus.add_listener(after)
    room = await campus.update_room(ADMIN_A, "altbach-teekueche", capacity=3)
    assert room.capacity == 3 and after.kinds == [("room_upserted", "altbach-teekueche")]


async def test_concurrent_writes_do_not_interleave(campus: CampusService) -> None:
    """A listener that yields mid-notification: the next write must wait for it."""
    active = 0
    overlaps = 0
    seen: list[str] = []

    class Slow:
        async def campus_changed(self, change: CampusChange) -> None:
            nonlocal active, overlaps
            active += 1
            overlaps += active > 1
            for _ in range(3):
                await _yield_to_loop()
            seen.append(change.room.id if change.room else change.floor_id)
            active -= 1

    campus.add_listener(Slow())
    names = [f"R{i}" for i in range(10)]
    rooms = await asyncio.gather(*(
        campus.create_room(ADMIN_A, "altbach-eg", name=n, kind="office", rect=Rect(600, 300, 50, 50)) for n in names
    ))  # fmt: skip
    assert overlaps == 0
    assert seen == [r.id for r in rooms]
    assert len({r.id for r in rooms}) == 10


async def _yield_to_loop() -> None:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.call_soon(fut.set_result, None)
    await fut


# -- expiry ----------------------------------------------------------------------------


async def test_expire_rooms_removes_only_rooms_that_are_due(
    campus: CampusService, store: MemoryCampusStore, clock: Clock, events: Recorder
) -> None:
    assert campus.next_expiry() is None
    await campus.update_room(ADMIN_A, "altbach-teekueche", expires_at=NOW + 10)
    await campus.update_room(ADMIN_A, "projekt-raum", expires_at=NOW + 20)
    await campus.update_room(ADMIN_A, "altbach-buero-anna", expires_at=NOW + 30)
    assert campus.next_expiry() == NOW + 10
    events.changes.clear()

    assert await campus.expire_rooms(NOW + 9) == []
    clock.now = NOW + 20  # exactly due counts as expired
    expired = await campus.expire_rooms()
    assert [r.id for r in expired] == ["altbach-teekueche", "projekt-raum"]
    assert events.kinds == [("room_deleted", "altbach-teekueche"), ("room_deleted", "projekt-raum")]
    assert set((await store.load()).rooms) == {"altbach-buero-anna", "seefeld-buero"}
    assert campus.room("projekt-raum") is None and campus.room("altbach-buero-anna") is not None
    assert campus.next_expiry() == NOW + 30


# -- remote changes ----------------------------------------------------------------------


async def test_apply_remote_updates_memory_and_listeners_but_not_the_store(
    campus: CampusService, store: MemoryCampusStore, events: Recorder
) -> None:
    before = await snapshot(store)
    floor = Floor("remote-og", "Remote OG", OwnerKind.MUNICIPALITY, "altbach")
    room = Room("remote-1", "remote-og", "Remote", RoomKind.OFFICE, Rect(0, 0, 100, 100))
    await campus.apply_remote(CampusChange("floor_upserted", floor.id, floor=floor))
    await campus.apply_remote(CampusChange("room_upserted", floor.id, room=room))
    assert campus.visible_floor(ANNA, "remote-og") == floor and campus.rooms_on("remote-og") == [room]

    moved = Room("altbach-teekueche", "altbach-eg", "Küche", RoomKind.LOUNGE, Rect(300, 20, 200, 200))
    await campus.apply_remote(CampusChange("room_upserted", "altbach-eg", room=moved))
    assert campus.room("altbach-teekueche") == moved
    await campus.apply_remote(CampusChange("room_deleted", "projekt", room=campus.room("projekt-raum")))
    assert campus.room("projekt-raum") is None
    # A floor deletion drops rooms still in memory, each with its event.
    await campus.apply_remote(CampusChange("floor_deleted", "remote-og"))
    assert campus.floor("remote-og") is None and campus.room("remote-1") is None

    assert await snapshot(store) == before
    assert events.kinds == [
        ("floor_upserted", "remote-og"), ("room_upserted", "remote-1"), ("room_upserted", "altbach-teekueche"),
        ("room_deleted", "projekt-raum"), ("room_deleted", "remote-1"), ("floor_deleted", "remote-og"),
    ]  # fmt: skip
    assert events.changes[-1].floor == floor


def test_changes_refuse_missing_parts_and_round_trip_through_dicts() -> None:
    room = Room("r", "f", "R", RoomKind.OFFICE, Rect(1, 2, 30, 40), owners=(PersonId("m/a"),), created_at=12.5)
    with pytest.raises(ValueError):
        CampusChange("room_upserted", "f")
    with pytest.raises(ValueError):
        CampusChange("room_deleted", "other-floor", room=room)
    with pytest.raises(ValueError):
        CampusChange("floor_upserted", "f")
    with pytest.raises(ValueError):
        CampusChange("moved", "f")  # type: ignore[arg-type]
    change = CampusChange("room_upserted", "f", room=room)
    back = CampusChange.from_dict(change.to_dict())
    assert back == change and back.room is not None and back.room.created_at == 12.5


async def test_changes_heard_from_another_node_are_marked_remote(campus: CampusService, events: Recorder) -> None:
    floor = campus.floor("altbach-eg")
    assert floor is not None
    room = campus.rooms_on("altbach-eg")[0]
    await campus.apply_remote(CampusChange("room_deleted", "altbach-eg", room=room))
    await campus.apply_remote(CampusChange("floor_deleted", "altbach-eg", floor=floor))
    assert events.changes and all(change.remote for change in events.changes)


# -- a store that lost its data (cluster: Redis back empty) ----------------------


async def test_a_store_that_lost_everything_gets_back_what_memory_holds(
    campus: CampusService, store: MemoryCampusStore, events: Recorder
) -> None:
    made = await campus.create_room(
        ADMIN_A, "altbach-eg", name="Neu", kind=RoomKind.PROJECT, rect=Rect(600, 300, 100, 100)
    )
    before = await snapshot(store)
    store.__init__()  # type: ignore[misc]  # emptied, as Redis restarted without its data
    written = await campus.restore_store()
    assert await snapshot(store) == before and made.id in before.rooms
    assert written == 3 + 1 + 3 + 5
    assert await campus.restore_store() == 0  # nothing missing: nothing written twice
    assert events.kinds == [("room_upserted", made.id)]  # a restore is no change to announce


async def test_a_restore_keeps_what_the_store_has_and_adds_only_what_it_lacks(
    campus: CampusService, store: MemoryCampusStore
) -> None:
    before = await snapshot(store)
    changed = replace(before.rooms["projekt-raum"], name="Umbenannt anderswo")
    store.__init__()  # type: ignore[misc]
    for floor in before.floors.values():
        await store.put_floor(floor)
    await store.put_room(changed)  # written by another node after the loss
    assert await campus.restore_store() == 3 + 1 + 3
    assert (await snapshot(store)).rooms["projekt-raum"].name == "Umbenannt anderswo"
