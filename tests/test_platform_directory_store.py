"""The platform opt-in of the people directory contract, run against every
implementation (memory and real Redis): it lives exactly as long as its entry."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from presence_server.directory.store import DirectoryStore
from presence_server.directory.store_memory import MemoryDirectoryStore
from presence_server.directory.store_redis import RedisDirectoryStore
from rooms.actors import Profile
from rooms.people import Person
from tests.support.redis_slots import record_script_slots

FRIDA = Person("frida", "ferndorf", "Frida Fink", Profile("Umweltamt", "Leitung", ("Naturschutzrecht", "GIS")), 100.0)
GERD = Person("gerd", "grunbach", "Gerd Gruber", Profile(None, None, ("Vergaberecht",)), 100.0)


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


async def test_nobody_is_published_by_default(store: DirectoryStore) -> None:
    await store.put(FRIDA, ttl=50)
    assert await store.published("ferndorf", "frida", now=120) == ()
    assert await store.published_people(now=120) == []


async def test_an_opt_in_is_stored_on_an_entry_and_listed_with_it(store: DirectoryStore) -> None:
    await store.put(FRIDA, ttl=50)
    await store.put(GERD, ttl=50)
    assert await store.publish("ferndorf", "frida", ("Naturschutzrecht",), now=120) is True
    assert await store.published("ferndorf", "frida", now=120) == ("Naturschutzrecht",)
    assert await store.published_people(now=120) == [(FRIDA, ("Naturschutzrecht",))]


async def test_an_empty_list_opts_out(store: DirectoryStore) -> None:
    await store.put(FRIDA, ttl=50)
    await store.publish("ferndorf", "frida", ("Naturschutzrecht", "GIS"), now=120)
    assert await store.publish("ferndorf", "frida", (), now=121) is True
    assert await store.published("ferndorf", "frida", now=121) == ()
    assert await store.published_people(now=121) == []


async def test_no_opt_in_without_an_unexpired_entry(store: DirectoryStore) -> None:
    assert await store.publish("ferndorf", "frida", ("GIS",), now=120) is False
    await store.put(FRIDA, ttl=50)  # expires at 150
    assert await store.publish("ferndorf", "frida", ("GIS",), now=150) is False
    assert await store.published_people(now=149) == []


async def test_the_opt_in_survives_a_refresh_of_its_entry(store: DirectoryStore) -> None:
    await store.put(FRIDA, ttl=50)
    await store.publish("ferndorf", "frida", ("GIS",), now=120)
    refreshed = Person("frida", "ferndorf", "Frida Fink", FRIDA.profile, 140.0)  # a token refresh, still valid
    await store.put(refreshed, ttl=50)
    assert await store.published_people(now=180) == [(refreshed, ("GIS",))]


async def test_the_opt_in_expires_with_its_entry_and_does_not_come_back(store: DirectoryStore) -> None:
    await store.put(FRIDA, ttl=50)  # 150
    await store.publish("ferndorf", "frida", ("GIS",), now=120)
    assert await store.published_people(now=150) == []
    assert await store.published("ferndorf", "frida", now=150) == ()
    # Seen again after the expiry (before a sweep ran): a new entry, no opt-in.
    await store.put(Person("frida", "ferndorf", "Frida Fink", FRIDA.profile, 200.0), ttl=50)
    assert await store.published_people(now=210) == []


async def test_sweep_and_forget_delete_the_opt_in(store: DirectoryStore) -> None:
    await store.put(FRIDA, ttl=50)  # 150
    await store.put(GERD, ttl=500)
    await store.publish("ferndorf", "frida", ("GIS",), now=120)
    await store.publish("grunbach", "gerd", ("Vergaberecht",), now=120)
    assert await store.sweep(now=200) == 1
    assert await store.published_people(now=0) == [(GERD, ("Vergaberecht",))]  # gone, not hidden
    assert await store.forget("grunbach", "gerd", seen_before=300) is True
    await store.put(GERD, ttl=500)  # back at once: a fresh entry carries no old opt-in
    assert await store.published_people(now=120) == []


async def test_a_forget_that_loses_the_race_keeps_the_opt_in(store: DirectoryStore) -> None:
    await store.put(Person("frida", "ferndorf", "Frida Fink", FRIDA.profile, 300.0), ttl=50)
    await store.publish("ferndorf", "frida", ("GIS",), now=310)
    assert await store.forget("ferndorf", "frida", seen_before=250) is False  # seen again since
    assert await store.published("ferndorf", "frida", now=320) == ("GIS",)


async def test_every_platform_script_touches_one_slot(redis_server, redis_prefix: str) -> None:
    store = RedisDirectoryStore(redis_server.url, prefix=redis_prefix)
    await store.open()
    try:
        ran = record_script_slots(store)
        await store.put(FRIDA, ttl=50)
        await store.publish("ferndorf", "frida", ("GIS",), now=120)
        await store.forget("ferndorf", "frida", seen_before=200)
        await store.put(GERD, ttl=1)
        await store.sweep(now=500)
        assert {name for name, _ in ran} == {"put", "publish", "forget", "drop_expired"}
        assert all(len(slots) == 1 for _, slots in ran)
    finally:
        await store.close()
