"""The audit store contract (presence_server/audit/store.py), run against every
implementation: memory, SQLite (a real file) and a real redis-server."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest

from presence_server.audit.store import AuditQuery, AuditStore
from presence_server.audit.store_memory import MemoryAuditStore
from presence_server.audit.store_redis import PURGE_BATCH, RedisAuditStore
from presence_server.audit.store_sqlite import SqliteAuditStore
from rooms.audit import AuditEntry
from rooms.person import PersonId
from tests.support.redis_slots import record_script_slots

ANNA = PersonId("altbach/anna.altbach")
LEA = PersonId("lindenau/lea.lindenau")


def entry(at: float, action: str = "room.updated", *, scopes: tuple[str, ...] = ("altbach",),
          project: str | None = None, actor: PersonId | None = ANNA) -> AuditEntry:
    return AuditEntry.new(action, at=at, actor=actor, target={"room": "r-1", "floor": "f-1"},
                          change={"door": {"old": "open", "new": "closed"}}, scopes=scopes, project=project)


def of(municipality: str, **kw: object) -> AuditQuery:
    return AuditQuery(municipality=municipality, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuditStore]:
    audit: AuditStore
    if request.param == "redis":
        audit = RedisAuditStore(request.getfixturevalue("redis_server").url, prefix=request.getfixturevalue("redis_prefix"))
    elif request.param == "sqlite":
        audit = SqliteAuditStore(tmp_path / "audit.sqlite3")
    else:
        audit = MemoryAuditStore()
    await audit.open()
    yield audit
    await audit.close()


async def test_an_entry_round_trips_with_every_field(store: AuditStore) -> None:
    e = AuditEntry.new("knock.admitted", at=1000.5, actor=LEA,
                       target={"room": "r-1", "floor": "projekt", "person": "altbach/anna.altbach"},
                       change={"name": {"old": "Ä", "new": "Ö"}}, scopes=("lindenau", "altbach"), project="p-1")
    await store.append(e)
    assert await store.query(of("lindenau")) == [e]
    assert await store.query(AuditQuery(project="p-1")) == [e]
    assert e.actor_municipality == "lindenau" and e.scopes == ("altbach", "lindenau")
    assert AuditEntry.from_dict(e.to_dict()) == e


async def test_a_municipality_reads_only_entries_that_name_it(store: AuditStore) -> None:
    own, shared, other = entry(100, scopes=("altbach",)), entry(101, scopes=("altbach", "lindenau")), entry(
        102, scopes=("seefeld",))
    for e in (own, shared, other):
        await store.append(e)
    assert await store.query(of("altbach")) == [own, shared]
    assert await store.query(of("lindenau")) == [shared]
    assert await store.query(of("seefeld")) == [other]
    assert await store.query(of("bergheim")) == []
    assert await store.query(AuditQuery(project="p-1")) == []


async def test_a_project_reads_only_its_own_entries(store: AuditStore) -> None:
    mine, theirs, none = entry(100, project="p-1"), entry(101, project="p-2"), entry(102)
    for e in (mine, theirs, none):
        await store.append(e)
    assert await store.query(AuditQuery(project="p-1")) == [mine]
    assert await store.query(AuditQuery(project="p-2")) == [theirs]


async def test_entries_come_oldest_first_whatever_the_order_they_were_appended_in(store: AuditStore) -> None:
    entries = [entry(100 + i) for i in range(5)]
    for e in reversed(entries):
        await store.append(e)
    assert await store.query(of("altbach")) == entries


async def test_since_is_inclusive_until_exclusive(store: AuditStore) -> None:
    entries = [entry(100.0 + i) for i in range(5)]  # 100 .. 104
    for e in entries:
        await store.append(e)
    assert await store.query(of("altbach", since=101.0, until=103.0)) == entries[1:3]
    assert await store.query(of("altbach", since=103.5)) == entries[4:]
    assert await store.query(of("altbach", until=100.0)) == []


async def test_limit_and_after_page_through_everything_once(store: AuditStore) -> None:
    entries = [entry(100.0) for _ in range(3)] + [entry(101.0 + i) for i in range(4)]  # three share one time
    for e in entries:
        await store.append(e)
    expected = sorted(entries, key=lambda e: e.id)
    pages: list[list[AuditEntry]] = []
    after: str | None = None
    for _ in range(10):  # bounded: a cursor that does not advance must fail, not hang
        page = await store.query(of("altbach", since=100.0, after=after, limit=2))
        if not page:
            break
        pages.append(page)
        after = page[-1].id
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [e for p in pages for e in p] == expected


async def test_a_retried_append_does_not_duplicate(store: AuditStore) -> None:
    e = entry(100)
    await store.append(e)
    await store.append(e)
    assert await store.query(of("altbach")) == [e]
    assert await store.purge(before=200) == 1


async def test_purge_deletes_what_is_older_from_every_scope_and_counts_it(store: AuditStore) -> None:
    old = [entry(100, scopes=("altbach", "lindenau"), project="p-1"), entry(150, scopes=("seefeld",))]
    young = [entry(200, scopes=("altbach", "lindenau"), project="p-1"), entry(250, scopes=("seefeld",))]
    for e in old + young:
        await store.append(e)
    assert await store.purge(before=200) == 2
    assert await store.purge(before=200) == 0
    assert await store.query(of("altbach")) == [young[0]]
    assert await store.query(of("lindenau")) == [young[0]]
    assert await store.query(of("seefeld")) == [young[1]]
    assert await store.query(AuditQuery(project="p-1")) == [young[0]]


async def test_purge_handles_more_than_one_batch(store: AuditStore) -> None:
    for i in range(PURGE_BATCH + 7):
        await store.append(entry(100 + i / 1000))
    keep = entry(5000)
    await store.append(keep)
    assert await store.purge(before=1000) == PURGE_BATCH + 7
    assert await store.query(of("altbach")) == [keep]


def test_a_query_reads_exactly_one_scope() -> None:
    with pytest.raises(ValueError):
        AuditQuery()
    with pytest.raises(ValueError):
        AuditQuery(municipality="altbach", project="p-1")
    with pytest.raises(ValueError):
        AuditQuery(municipality="altbach", limit=0)


async def test_the_sqlite_trail_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    first = SqliteAuditStore(path)
    await first.open()
    e = entry(100)
    await first.append(e)
    await first.close()
    second = SqliteAuditStore(path)
    await second.open()
    try:
        assert await second.query(of("altbach")) == [e]
    finally:
        await second.close()


async def test_redis_scripts_touch_one_slot_each(redis_server, redis_prefix: str) -> None:
    audit = RedisAuditStore(redis_server.url, prefix=redis_prefix)
    await audit.open()
    try:
        ran = record_script_slots(audit)
        await audit.append(entry(100, scopes=("altbach", "lindenau", "seefeld"), project="p-1"))
        await audit.purge(before=1000)
        assert {name for name, _ in ran} == {"append", "drop"}
        assert all(len(slots) == 1 for _, slots in ran)
        assert len({slot for _, slots in ran for slot in slots}) == 1
    finally:
        await audit.close()
