"""The people directory contract, run against every implementation (memory and real Redis)."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from presence_server.directory.store_redis import SWEEP_BATCH, RedisDirectoryStore
from presence_server.directory.store import DirectoryStore
from presence_server.directory.store_memory import MemoryDirectoryStore
from rooms.actors import Profile
from rooms.people import Person
from tests.support.redis_slots import record_script_slots

ANNA = Person("anna", "altbach", "Anna Albrecht", Profile("Bauamt", "Sachbearbeiterin", ("Naturschutz", "GIS")), 100.0)
ANNA_B = Person("anna", "bergheim", "Anna Brandt", Profile("Hauptamt", None, ()), 100.0)
BEN = Person("ben", "bergheim", "Ben Berger", Profile(None, "Kämmerer", ("Haushalt",)), 100.0)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[DirectoryStore]:
    directory: DirectoryStore
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
        directory = RedisDirectoryStore(url, prefix=request.getfixturevalue("redis_prefix"))
    else:
        directory = MemoryDirectoryStore()
    await directory.open()
    yield directory
    await directory.close()


async def test_a_person_round_trips_with_profile_and_seen(store: DirectoryStore) -> None:
    await store.put(ANNA, ttl=50)
    assert await store.get("altbach", "anna", now=120) == ANNA
    assert await store.people(["altbach"], now=120) == [ANNA]


async def test_the_same_user_id_in_two_municipalities_is_two_people(store: DirectoryStore) -> None:
    await store.put(ANNA, ttl=50)
    await store.put(ANNA_B, ttl=50)
    assert await store.get("bergheim", "anna", now=120) == ANNA_B
    assert await store.get("altbach", "anna", now=120) == ANNA
    both = await store.people(["altbach", "bergheim"], now=120)
    assert sorted(p.municipality for p in both) == ["altbach", "bergheim"]


async def test_people_lists_only_the_municipalities_asked_for(store: DirectoryStore) -> None:
    for person in (ANNA, ANNA_B, BEN):
        await store.put(person, ttl=50)
    assert sorted(p.user_id for p in await store.people(["bergheim"], now=120)) == ["anna", "ben"]
    assert await store.people(["seefeld"], now=120) == []
    assert await store.people([], now=120) == []


async def test_an_entry_is_never_returned_at_or_after_its_expiry(store: DirectoryStore) -> None:
    await store.put(ANNA, ttl=50)  # expires at 150
    assert await store.get("altbach", "anna", now=149.9) == ANNA
    assert await store.get("altbach", "anna", now=150) is None
    assert await store.people(["altbach"], now=150) == []


async def test_put_again_replaces_the_entry_and_extends_it(store: DirectoryStore) -> None:
    await store.put(ANNA, ttl=50)
    newer = Person("anna", "altbach", "Dr. Anna Albrecht", Profile("Umweltamt"), 200.0)
    await store.put(newer, ttl=50)
    assert await store.get("altbach", "anna", now=240) == newer
    assert await store.sweep(now=240) == 0  # the old expiry (150) no longer counts


async def test_sweep_deletes_expired_entries_only(store: DirectoryStore) -> None:
    await store.put(ANNA, ttl=50)  # 150
    await store.put(BEN, ttl=500)  # 600
    assert await store.sweep(now=200) == 1
    assert await store.sweep(now=200) == 0
    assert await store.get("bergheim", "ben", now=200) == BEN
    # Gone for good, not just hidden: still absent for a reader at an earlier clock.
    assert await store.get("altbach", "anna", now=0) is None


async def test_sweep_handles_more_than_one_batch(store: DirectoryStore) -> None:
    for i in range(SWEEP_BATCH + 7):
        await store.put(Person(f"u{i}", "altbach", f"U {i}", seen=100.0), ttl=10)
    assert await store.sweep(now=111) == SWEEP_BATCH + 7
    assert await store.people(["altbach"], now=0) == []


async def test_forget_respects_a_newer_sighting(store: DirectoryStore) -> None:
    await store.put(ANNA, ttl=50)  # seen 100
    assert await store.forget("altbach", "anna", seen_before=99) is False
    assert await store.get("altbach", "anna", now=120) == ANNA
    assert await store.forget("altbach", "anna", seen_before=100) is True
    assert await store.get("altbach", "anna", now=120) is None
    assert await store.forget("altbach", "anna", seen_before=1000) is False
    assert await store.sweep(now=1000) == 0  # the index entry went with it


async def test_redis_scripts_touch_one_slot_each(redis_server, redis_prefix: str) -> None:
    directory = RedisDirectoryStore(redis_server.url, prefix=redis_prefix)
    await directory.open()
    try:
        ran = record_script_slots(directory)
        await directory.put(ANNA, ttl=1)
        await directory.put(BEN, ttl=1)
        await directory.forget("altbach", "anna", seen_before=1000)
        await directory.sweep(now=1000)
        assert {name for name, _ in ran} == {"put", "forget", "drop_expired"}
        assert all(len(slots) == 1 for _, slots in ran)
        assert len({slot for _, slots in ran for slot in slots}) == 1
    finally:
        await directory.close()
