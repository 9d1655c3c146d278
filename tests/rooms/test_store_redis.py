"""What the Redis campus store promises beyond the shared contract: key layout,
isolation by prefix, atomicity, and the floor index kept right under concurrency.

Real redis-server (the session fixture), a unique key prefix per test; no mocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgpack
import pytest
import redis.asyncio as aioredis
import redis.exceptions
from redis.crc import key_slot

from rooms.errors import StoreUnavailable
from rooms.model import Floor, OwnerKind, Rect, Room, RoomKind
from rooms.store_redis import RedisCampusStore
from tests.rooms.test_campus_store_contract import FLOOR_A, FLOOR_P, ROOM_A, ROOM_B, ROOM_P, fill
from tests.support.processes import free_port
from tests.support.redis_server import RedisServer


@pytest.fixture
async def store(redis_server: RedisServer, redis_prefix: str) -> AsyncIterator[RedisCampusStore]:
    s = RedisCampusStore(redis_server.url, prefix=redis_prefix)
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain client on the same server, to look at what the store wrote."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=False)
    yield client
    await client.aclose()


def key(prefix: str, name: str) -> bytes:
    return f"{prefix}{{campus}}:{name}".encode()


async def keys_under(client: aioredis.Redis, prefix: str) -> set[bytes]:
    return {k async for k in client.scan_iter(match=prefix + "*")}


async def test_stores_with_different_prefixes_do_not_see_each_other(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    one = RedisCampusStore(redis_server.url, prefix=redis_prefix + "one:")
    two = RedisCampusStore(redis_server.url, prefix=redis_prefix + "two:")
    await one.open()
    await two.open()
    try:
        await fill(one)
        await two.put_floor(FLOOR_A)
        await two.put_room(ROOM_B)
        assert await two.delete_floor("projekt") is False  # one's floor, not two's
        assert await two.delete_room("altbach-buero-anna") is False

        data_two = await two.load()
        assert set(data_two.floors) == {"altbach-eg"} and set(data_two.rooms) == {"altbach-teekueche"}
        assert not data_two.municipalities and not data_two.cooperations
        await two.delete_floor("altbach-eg")
        data_one = await one.load()
        assert set(data_one.floors) == {"altbach-eg", "projekt"}
        assert set(data_one.rooms) == {"altbach-buero-anna", "altbach-teekueche", "projekt-raum"}
    finally:
        await one.close()
        await two.close()


async def test_every_key_written_has_the_prefix_and_the_campus_hash_tag(redis_server: RedisServer) -> None:
    # A database of its own, so that any key that appears was written by this store.
    url = f"redis://127.0.0.1:{redis_server.port}/7"
    client = aioredis.Redis.from_url(url, decode_responses=False)
    await client.flushdb()
    store = RedisCampusStore(url, prefix="layout:")
    await store.open()
    try:
        await fill(store)
        await store.put_room(Room("moved", "projekt", "Umzug", RoomKind.MEETING, Rect(0, 0, 5, 5)))
        await store.put_room(Room("moved", "altbach-eg", "Umzug", RoomKind.MEETING, Rect(0, 0, 5, 5)))
        await store.delete_room("altbach-teekueche")
        written = {k async for k in client.scan_iter(match="*")}
        assert written == {
            b"layout:{campus}:municipalities",
            b"layout:{campus}:cooperations",
            b"layout:{campus}:floors",
            b"layout:{campus}:rooms",
            b"layout:{campus}:floor_rooms:altbach-eg",
            b"layout:{campus}:floor_rooms:projekt",
        }
        assert all(k.startswith(b"layout:") and b"{campus}" in k for k in written)
        assert len({key_slot(k) for k in written}) == 1  # one slot: atomic on Redis Cluster too
    finally:
        await store.close()
        await client.flushdb()
        await client.aclose()


async def test_values_are_msgpack_maps_and_the_index_lists_each_floors_rooms(
    store: RedisCampusStore, raw: aioredis.Redis, redis_prefix: str
) -> None:
    await fill(store)
    stored = msgpack.unpackb(await raw.hget(key(redis_prefix, "rooms"), "altbach-buero-anna"), raw=False)
    assert stored == {**ROOM_A.to_dict(), "created_at": ROOM_A.created_at}
    assert msgpack.unpackb(await raw.hget(key(redis_prefix, "floors"), "projekt"), raw=False) == FLOOR_P.to_dict()
    on_a = await raw.smembers(key(redis_prefix, "floor_rooms:altbach-eg"))
    assert on_a == {b"altbach-buero-anna", b"altbach-teekueche"}
    assert await raw.smembers(key(redis_prefix, "floor_rooms:projekt")) == {b"projekt-raum"}


async def test_delete_floor_removes_the_floor_its_rooms_and_its_index_together(
    store: RedisCampusStore, raw: aioredis.Redis, redis_prefix: str
) -> None:
    await fill(store)
    before = await keys_under(raw, redis_prefix)
    assert await store.delete_floor("altbach-eg") is True
    assert not await raw.exists(key(redis_prefix, "floor_rooms:altbach-eg"))
    assert await raw.hkeys(key(redis_prefix, "rooms")) == [b"projekt-raum"]
    assert await raw.hkeys(key(redis_prefix, "floors")) == [b"projekt"]
    assert before - await keys_under(raw, redis_prefix) == {key(redis_prefix, "floor_rooms:altbach-eg")}


async def test_no_load_sees_a_floor_half_deleted(store: RedisCampusStore) -> None:
    # Readers race a delete_floor of a floor with many rooms: each load sees the
    # floor with all its rooms, or neither; never rooms whose floor is gone.
    await store.put_floor(FLOOR_A)
    await store.put_floor(FLOOR_P)
    rooms = [Room(f"r{i}", "altbach-eg", f"Raum {i}", RoomKind.OFFICE, Rect(i, 0, 1, 1)) for i in range(1200)]
    for room in rooms:
        await store.put_room(room)
    await store.put_room(ROOM_P)
    seen: list[int] = []

    async def reader() -> None:
        for _ in range(30):
            data = await store.load()
            assert all(r.floor_id in data.floors for r in data.rooms.values())
            seen.append(len(data.rooms))

    readers = [asyncio.create_task(reader()) for _ in range(3)]
    await asyncio.sleep(0)
    assert await store.delete_floor("altbach-eg") is True
    await asyncio.gather(*readers)
    assert set(seen) <= {1201, 1}
    assert set((await store.load()).rooms) == {"projekt-raum"}


async def test_a_room_moved_to_another_floor_follows_it_in_the_index(
    store: RedisCampusStore, raw: aioredis.Redis, redis_prefix: str
) -> None:
    await fill(store)
    moved = Room(ROOM_B.id, "projekt", ROOM_B.name, ROOM_B.kind, ROOM_B.rect)
    await store.put_room(moved)
    assert await raw.smembers(key(redis_prefix, "floor_rooms:altbach-eg")) == {b"altbach-buero-anna"}
    assert await raw.smembers(key(redis_prefix, "floor_rooms:projekt")) == {b"projekt-raum", b"altbach-teekueche"}
    # Deleting the floor it left keeps it; deleting the floor it is on takes it.
    await store.delete_floor("altbach-eg")
    assert set((await store.load()).rooms) == {"projekt-raum", "altbach-teekueche"}
    await store.delete_floor("projekt")
    assert not (await store.load()).rooms


async def test_delete_room_takes_it_out_of_its_floors_index(
    store: RedisCampusStore, raw: aioredis.Redis, redis_prefix: str
) -> None:
    await fill(store)
    assert await store.delete_room("projekt-raum") is True
    assert not await raw.exists(key(redis_prefix, "floor_rooms:projekt"))  # an empty set is no key
    assert await store.delete_floor("projekt") is True


async def test_a_refused_room_writes_nothing(store: RedisCampusStore, raw: aioredis.Redis, redis_prefix: str) -> None:
    await fill(store)
    before = {k: await raw.dump(k) for k in await keys_under(raw, redis_prefix)}
    with pytest.raises(KeyError, match="nowhere"):
        await store.put_room(Room("stray", "nowhere", "Irgendwo", RoomKind.OFFICE, Rect(0, 0, 1, 1)))
    with pytest.raises(KeyError):  # an existing room cannot be moved to a missing floor either
        await store.put_room(Room(ROOM_A.id, "nowhere", ROOM_A.name, ROOM_A.kind, ROOM_A.rect))
    assert {k: await raw.dump(k) for k in await keys_under(raw, redis_prefix)} == before


async def test_concurrent_writers_on_one_room_keep_the_index_right(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    # Two nodes (two store objects) move the same rooms between floors at once;
    # their read-then-script steps interleave, which the scripts detect and retry.
    stores = [RedisCampusStore(redis_server.url, prefix=redis_prefix) for _ in range(2)]
    for s in stores:
        await s.open()
    try:
        floors = [Floor(f"f{i}", f"Etage {i}", OwnerKind.MUNICIPALITY, "altbach") for i in range(3)]
        for floor in floors:
            await stores[0].put_floor(floor)

        async def mover(store: RedisCampusStore, offset: int) -> None:
            for i in range(60):
                floor_id = floors[(i + offset) % 3].id
                await store.put_room(Room(f"room{i % 4}", floor_id, "Wanderer", RoomKind.PROJECT, Rect(0, 0, 1, 1)))
                if i % 7 == 0:
                    await store.delete_room(f"room{(i + 1) % 4}")

        await asyncio.gather(mover(stores[0], 0), mover(stores[1], 1))

        data = await stores[0].load()
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            for floor in floors:
                indexed = await client.smembers(key(redis_prefix, f"floor_rooms:{floor.id}"))
                assert {m.decode() for m in indexed} == {r.id for r in data.rooms.values() if r.floor_id == floor.id}
        finally:
            await client.aclose()
        for floor in floors:
            await stores[1].delete_floor(floor.id)
        assert (await stores[0].load()).is_empty()
    finally:
        for s in stores:
            await s.close()


async def test_a_store_reopened_after_close_works_again(store: RedisCampusStore) -> None:
    await store.put_floor(FLOOR_A)
    await store.close()
    with pytest.raises(RuntimeError, match=r"open\(\) first"):
        await store.put_room(ROOM_A)
    await store.open()
    await store.put_room(ROOM_A)
    assert set((await store.load()).rooms) == {ROOM_A.id}


async def test_scripts_reload_after_the_server_forgets_them(store: RedisCampusStore, raw: aioredis.Redis) -> None:
    # A restarted or failed-over server has an empty script cache.
    await fill(store)
    await raw.script_flush()
    assert await store.delete_room(ROOM_B.id) is True
    assert await store.delete_floor(FLOOR_A.id) is True


async def test_open_against_no_server_raises_store_unavailable_and_stays_closed() -> None:
    s = RedisCampusStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreUnavailable) as refused:
        await s.open()
    assert isinstance(refused.value.__cause__, redis.exceptions.ConnectionError)  # translated, not lost
    with pytest.raises(RuntimeError, match=r"open\(\) first"):
        await s.load()
    await s.close()  # harmless after a failed open


async def test_a_room_changed_between_read_and_write_is_read_again(
    store: RedisCampusStore, redis_server: RedisServer, redis_prefix: str, raw: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Deterministic version of the race above: right after the store reads the
    # room, another node moves it. The script must refuse the stale read, and the
    # store must read again, so the index ends up naming the room's real floor.
    await fill(store)
    other = RedisCampusStore(redis_server.url, prefix=redis_prefix)
    await other.open()
    client = store._client  # the store's own connection; wrapped for one call
    assert client is not None
    real_hget = client.hget
    interfered = False

    async def hget_then_interfere(name: bytes, field: str) -> bytes | None:
        nonlocal interfered
        value = await real_hget(name, field)
        if not interfered:
            interfered = True
            await other.put_room(Room(ROOM_B.id, "projekt", ROOM_B.name, ROOM_B.kind, ROOM_B.rect))
        return value

    monkeypatch.setattr(client, "hget", hget_then_interfere)
    try:
        await store.put_room(Room(ROOM_B.id, "altbach-eg", "Küche", ROOM_B.kind, ROOM_B.rect))
    finally:
        await other.close()
    assert interfered
    assert await raw.smembers(key(redis_prefix, "floor_rooms:projekt")) == {b"projekt-raum"}
    on_a = await raw.smembers(key(redis_prefix, "floor_rooms:altbach-eg"))
    assert on_a == {b"altbach-buero-anna", b"altbach-teekueche"}
    assert (await store.load()).rooms[ROOM_B.id].name == "Küche"
