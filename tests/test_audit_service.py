"""The audit log around its store: retention with an injected clock, the supervised
maintenance loop, and an outage of a real Redis that neither fails the act being
recorded nor loses its entry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from presence_server.audit.service import AuditLog
from presence_server.audit.store_memory import MemoryAuditStore
from presence_server.audit.store_redis import RedisAuditStore
from presence_server.config import ConfigError, load_settings
from presence_server.metrics import REGISTRY
from rooms.audit import AuditEntry, field_changes, floor_scopes
from rooms.model import Cooperation, Floor, OwnerKind
from rooms.person import PersonId
from tests.support.portal import eventually
from tests.support.redis_server import RedisServer

DAY = 86400.0
ANNA = PersonId("altbach/anna.altbach")
TARGET = {"room": "r-1", "floor": "altbach-eg"}


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_entries_older_than_the_retention_are_purged_and_counted() -> None:
    now = [1_000_000.0]
    log = AuditLog(MemoryAuditStore(), retention_days=2, clock=lambda: now[0])
    old = await log.record("room.created", actor=ANNA, target=TARGET, scopes=["altbach"])
    now[0] += 1.5 * DAY
    young = await log.record("door.changed", actor=ANNA, target=TARGET, scopes=["altbach"])
    assert await log.purge() == 0  # 1.5 days: both within 2 days
    now[0] = old.at + 2 * DAY + 1  # the first is 2 days and a second old, the second half a day
    before = sample("vo_audit_purged_total")
    assert await log.purge() == 1
    assert sample("vo_audit_purged_total") == before + 1
    assert await log.for_municipality("altbach") == [young]
    now[0] = young.at + 2 * DAY  # exactly at the retention: still kept (older than, not as old as)
    assert await log.purge() == 0
    now[0] += 0.001
    assert await log.purge() == 1 and await log.for_municipality("altbach") == []


async def test_the_maintenance_loop_purges_at_start_and_restarts_after_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryAuditStore()
    now = [1_000_000.0]
    log = AuditLog(store, retention_days=1, purge_seconds=0.05, retry_seconds=0.05, clock=lambda: now[0])
    await log.record("room.created", actor=ANNA, target=TARGET, scopes=["altbach"])
    now[0] += 2 * DAY
    real, calls = store.purge, [0]

    async def crashing_once(*, before: float) -> int:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("injected")
        return await real(before=before)

    monkeypatch.setattr(store, "purge", crashing_once)
    restarts = sample("vo_loop_restarts_total", {"loop": "audit_maintenance"})
    log.start()
    try:
        async def purged() -> bool:
            return not await log.for_municipality("altbach")

        await eventually(purged)
        assert sample("vo_loop_restarts_total", {"loop": "audit_maintenance"}) == restarts + 1
        assert calls[0] >= 2
    finally:
        await log.close()


async def test_an_outage_neither_fails_the_record_nor_loses_the_entry(tmp_path: Any) -> None:
    redis = RedisServer(appendonly=True).start()  # its data survives the restart
    store = RedisAuditStore(redis.url, prefix="outage:")
    log = AuditLog(store, retention_days=180, retry_seconds=0.05)
    try:
        await store.open()
        first = await log.record("room.created", actor=ANNA, target=TARGET, scopes=["altbach"])
        failures = sample("vo_audit_write_failures_total", {"result": "retrying"})
        redis.stop()
        during = await log.record("door.changed", actor=ANNA, target=TARGET, scopes=["altbach"])  # does not raise
        assert log.pending == 1
        assert sample("vo_audit_write_failures_total", {"result": "retrying"}) == failures + 1
        redis.start()
        log.start()  # the maintenance loop writes what waits

        async def written() -> list[AuditEntry]:
            return [] if log.pending else await log.for_municipality("altbach")

        assert await eventually(written, timeout=15) == [first, during]
        after = await log.record("door.changed", actor=ANNA, target=TARGET, scopes=["altbach"])
        assert await log.for_municipality("altbach") == [first, during, after]
    finally:
        await log.close()
        await store.close()
        redis.cleanup()


async def test_for_project_reads_the_projects_entries_only() -> None:
    log = AuditLog(MemoryAuditStore(), retention_days=180)
    mine = await log.record("project.created", actor=ANNA, target={"project": "p-1"}, scopes=["altbach"], project="p-1")
    await log.record("project.created", actor=ANNA, target={"project": "p-2"}, scopes=["altbach"], project="p-2")
    assert await log.for_project("p-1") == [mine]


async def test_stream_pages_through_more_than_one_page(monkeypatch: pytest.MonkeyPatch) -> None:
    import presence_server.audit.service as service

    monkeypatch.setattr(service, "PAGE", 3)
    log = AuditLog(MemoryAuditStore(), retention_days=180)
    entries = [await log.record("door.changed", actor=ANNA, target=TARGET, scopes=["altbach"]) for _ in range(8)]
    assert [e async for e in log.stream(municipality="altbach", limit=100)] == entries
    assert [e async for e in log.stream(municipality="altbach", limit=5)] == entries[:5]
    assert [e async for e in log.stream(municipality="altbach", limit=6, after=entries[1].id)] == entries[2:8]


def test_retention_is_at_least_one_day_and_defaults_to_180() -> None:
    assert load_settings().audit.retention_days == 180
    with pytest.raises(ConfigError, match="audit.retention_days"):
        load_settings(env={"PRESENCE_AUDIT__RETENTION_DAYS": "0"})
    with pytest.raises(ValueError):
        AuditLog(MemoryAuditStore(), retention_days=0)


def test_field_changes_and_scopes_are_pure_rules() -> None:
    assert field_changes(None, {"a": 1, "b": 2}, ("a",)) == {"a": {"new": 1}}
    assert field_changes({"a": 1}, None, ("a",)) == {"a": {"old": 1}}
    assert field_changes({"a": 1, "b": 2}, {"a": 1, "b": 3}, ("a", "b")) == {"b": {"old": 2, "new": 3}}
    cooperations = {"vier-taeler": Cooperation("vier-taeler", "Vier Täler", ("bergheim", "altbach"))}
    town = Floor("f", "F", OwnerKind.MUNICIPALITY, "altbach")
    shared = Floor("p", "P", OwnerKind.COOPERATION, "vier-taeler")
    assert floor_scopes(town, cooperations) == ("altbach",)
    assert floor_scopes(shared, cooperations) == ("bergheim", "altbach")
    assert floor_scopes(None, cooperations, fallback=["seefeld"]) == ("seefeld",)


async def test_entry_ids_sort_by_time_even_within_one_microsecond() -> None:
    at = 1_700_000_000.123456
    ids = [AuditEntry.new("x", at=t, actor=None, target={}).id for t in (at, at + 0.000001, at + 1)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    same = {AuditEntry.new("x", at=at, actor=None, target={}).id for _ in range(100)}
    assert len(same) == 100
    await asyncio.sleep(0)


async def test_one_logs_entries_keep_their_order_within_a_microsecond_and_when_the_clock_steps_back() -> None:
    now = [1_000_000.0]
    log = AuditLog(MemoryAuditStore(), retention_days=180, clock=lambda: now[0])
    made = [await log.record(f"a{i}", actor=None, target={}, scopes=["altbach"]) for i in range(20)]
    now[0] -= 5  # an NTP step back
    made.append(await log.record("late", actor=None, target={}, scopes=["altbach"]))
    assert [e.action for e in await log.for_municipality("altbach")] == [e.action for e in made]


async def test_a_failure_that_is_no_outage_is_logged_not_retried_and_blocks_nothing(tmp_path: Any) -> None:
    from presence_server.audit.store_sqlite import SqliteAuditStore

    store = SqliteAuditStore(tmp_path / "audit.sqlite3")
    await store.open()
    log = AuditLog(store, retention_days=180)
    try:
        failed = sample("vo_audit_write_failures_total", {"result": "failed"})
        broken = await log.record("room.updated", actor=ANNA, target=TARGET, change={"x": {"new": object()}},
                                  scopes=["altbach"])  # not JSON: refused, but record() does not raise
        assert sample("vo_audit_write_failures_total", {"result": "failed"}) == failed + 1 and log.pending == 0
        fine = await log.record("door.changed", actor=ANNA, target=TARGET, scopes=["altbach"])
        assert [e.id for e in await log.for_municipality("altbach")] == [fine.id]
        assert broken.id != fine.id
    finally:
        await store.close()
