"""CampusService records into an audit sink after each successful write, and only
then: refused writes, writes that change nothing, the seed and changes heard from
another node record nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from presence_server.audit.service import AuditLog
from presence_server.audit.store_memory import MemoryAuditStore
from rooms.actors import Actor, Role
from rooms.campus import CampusChange, CampusService
from rooms.errors import DomainError
from rooms.model import Cooperation, DoorState, Floor, Municipality, OwnerKind, Rect, Room, RoomKind
from rooms.seed import CampusSeed
from rooms.store_memory import MemoryCampusStore

NOW = 1_000_000.0
ADMIN_A = Actor("admin.altbach", "altbach", "Admin", frozenset({Role.STAFF, Role.ADMIN}))
STAFF_A = Actor("anna.altbach", "altbach", "Anna")


def seed() -> CampusSeed:
    return CampusSeed(
        municipalities=[Municipality("altbach", "Altbach"), Municipality("bergheim", "Bergheim")],
        cooperations=[Cooperation("vier-taeler", "Vier Täler", ("bergheim", "altbach"))],
        floors=[Floor("altbach-eg", "Rathaus", OwnerKind.MUNICIPALITY, "altbach"),
                Floor("projekt", "Projekt", OwnerKind.COOPERATION, "vier-taeler")],
        rooms=[Room("r-1", "altbach-eg", "Teeküche", RoomKind.LOUNGE, Rect(0, 0, 100, 100)),
               Room("p-1", "projekt", "Projektraum", RoomKind.PROJECT, Rect(0, 0, 100, 100))],
    )


@pytest.fixture
async def campus() -> AsyncIterator[tuple[CampusService, AuditLog]]:
    now = [NOW]
    log = AuditLog(MemoryAuditStore(), retention_days=180, clock=lambda: now[0])
    service = CampusService(MemoryCampusStore(), clock=lambda: now[0], audit=log)
    await service.start(seed())
    yield service, log
    await service.close()


async def actions(log: AuditLog, municipality: str = "altbach") -> list[tuple[str, str | None]]:
    return [(e.action, e.actor) for e in await log.for_municipality(municipality)]


async def test_the_seed_records_nothing(campus: tuple[CampusService, AuditLog]) -> None:
    _, log = campus
    assert await actions(log) == [] and await actions(log, "bergheim") == []


async def test_refused_and_empty_writes_record_nothing(campus: tuple[CampusService, AuditLog]) -> None:
    service, log = campus
    with pytest.raises(DomainError):
        await service.update_room(STAFF_A, "r-1", door="closed")  # not an admin, not an owner
    with pytest.raises(DomainError):
        await service.create_room(ADMIN_A, "altbach-eg", name="", kind="office", rect=Rect(0, 0, 10, 10))
    await service.update_room(ADMIN_A, "r-1", name="Teeküche")  # the same value
    assert await actions(log) == []


async def test_each_write_is_one_entry_and_a_floor_deletion_one_for_the_floor(
    campus: tuple[CampusService, AuditLog],
) -> None:
    service, log = campus
    await service.update_room(ADMIN_A, "r-1", door=DoorState.LOCKED)
    await service.update_room(ADMIN_A, "r-1", door="open", capacity=3)
    await service.delete_floor(ADMIN_A, "altbach-eg")
    assert await actions(log) == [("door.changed", "altbach/admin.altbach"), ("room.updated", "altbach/admin.altbach"),
                                  ("floor.deleted", "altbach/admin.altbach")]
    entries = await log.for_municipality("altbach")
    assert entries[1].change == {"door": {"old": "locked", "new": "open"}, "capacity": {"old": 8, "new": 3}}
    assert entries[2].target == {"floor": "altbach-eg"} and entries[2].change == {"name": {"old": "Rathaus"}}


async def test_a_cooperation_floor_is_readable_by_every_member_and_expiry_is_the_systems(
    campus: tuple[CampusService, AuditLog],
) -> None:
    service, log = campus
    await service.update_room(ADMIN_A, "p-1", expires_at=NOW + 10)
    assert [r.id for r in await service.expire_rooms(NOW + 10)] == ["p-1"]
    for town in ("altbach", "bergheim"):
        assert await actions(log, town) == [("room.updated", "altbach/admin.altbach"), ("room.expired", None)]
    expired = (await log.for_municipality("bergheim"))[1]
    assert expired.scopes == ("altbach", "bergheim") and expired.actor_municipality is None


async def test_changes_heard_from_another_node_are_not_recorded_again(campus: tuple[CampusService, AuditLog]) -> None:
    service, log = campus
    room = Room("r-2", "altbach-eg", "Neu", RoomKind.MEETING, Rect(0, 0, 10, 10))
    await service.apply_remote(CampusChange("room_upserted", "altbach-eg", room=room))
    await service.apply_remote(CampusChange("room_deleted", "altbach-eg", room=room))
    assert await actions(log) == []


async def test_a_service_without_a_sink_writes_as_before() -> None:
    service = CampusService(MemoryCampusStore())
    await service.start(seed())
    try:
        assert (await service.update_room(ADMIN_A, "r-1", door="closed")).door is DoorState.CLOSED
    finally:
        await service.close()
