"""One contract, every tenant store: memory, SQLite and a real Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import pytest

from presence_server.config import MunicipalityAuth
from presence_server.tenants.store import TenantRecord, TenantStore
from presence_server.tenants.store_memory import MemoryTenantStore
from presence_server.tenants.store_redis import RedisTenantStore
from presence_server.tenants.store_sqlite import SqliteTenantStore
from tests.support.redis_slots import record_script_slots

HS = MunicipalityAuth(algorithm="HS256", secret="dev-only-tannau-secret-change-me-00000",  # type: ignore[arg-type]
                      allowed_origins=["https://intranet.tannau.example"])
JWKS = MunicipalityAuth(algorithm="RS256", jwks_url="https://idp.tannau.example/jwks", issuer="https://idp.tannau.example",
                        audience="virtual-office")
TANNAU = TenantRecord("tannau", HS, 1000.0)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TenantStore]:
    tenants: TenantStore
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
        tenants = RedisTenantStore(url, prefix=request.getfixturevalue("redis_prefix"))
    elif request.param == "sqlite":
        tenants = SqliteTenantStore(tmp_path / "campus.sqlite3")
    else:
        tenants = MemoryTenantStore()
    await tenants.open()
    yield tenants
    await tenants.close()


async def test_a_record_round_trips_with_its_secret_and_origins(store: TenantStore) -> None:
    assert await store.get("tannau") is None
    assert await store.create(TANNAU) is True
    assert await store.get("tannau") == TANNAU
    got = await store.get("tannau")
    assert got is not None and got.auth.secret is not None
    assert got.auth.secret.get_secret_value() == "dev-only-tannau-secret-change-me-00000"
    assert await store.load() == {"tannau": TANNAU}


async def test_create_refuses_an_existing_id_and_changes_nothing(store: TenantStore) -> None:
    assert await store.create(TANNAU)
    assert await store.create(TenantRecord("tannau", JWKS, 2000.0)) is False
    assert await store.get("tannau") == TANNAU


async def test_of_two_concurrent_creates_exactly_one_wins(store: TenantStore) -> None:
    results = await asyncio.gather(*(store.create(TenantRecord("tannau", JWKS, float(i))) for i in range(10)))
    assert sorted(results) == [False] * 9 + [True]


async def test_replace_changes_existing_records_only(store: TenantStore) -> None:
    assert await store.replace(TANNAU) is False
    assert await store.get("tannau") is None
    await store.create(TANNAU)
    changed = TenantRecord("tannau", JWKS, 2000.0)
    assert await store.replace(changed) is True
    assert await store.load() == {"tannau": changed}


async def test_the_sqlite_store_keeps_records_across_reopening(tmp_path: Path) -> None:
    first = SqliteTenantStore(tmp_path / "campus.sqlite3")
    await first.open()
    await first.create(TANNAU)
    await first.close()
    second = SqliteTenantStore(tmp_path / "campus.sqlite3")
    await second.open()
    try:
        assert await second.load() == {"tannau": TANNAU}
    finally:
        await second.close()


async def test_the_redis_store_keeps_to_one_slot(redis_server: object, redis_prefix: str) -> None:
    tenants = RedisTenantStore(redis_server.url, prefix=redis_prefix)  # type: ignore[attr-defined]
    await tenants.open()
    try:
        ran = record_script_slots(tenants)
        await tenants.create(TANNAU)
        await tenants.replace(TANNAU)
        assert [name for name, _ in ran] == ["replace"] and all(len(slots) == 1 for _, slots in ran)
        assert "{tenants}" in tenants.key
    finally:
        await tenants.close()


async def test_a_node_writes_back_the_towns_a_store_lost(store: TenantStore) -> None:
    """Redis came back empty (cluster recovery, app._recover): what the node holds is
    written back, and what another node wrote meanwhile is kept."""
    from presence_server.auth import TokenVerifier
    from presence_server.origins import TownOrigins
    from presence_server.tenants.service import TenantService
    from rooms.campus import CampusService
    from rooms.store_memory import MemoryCampusStore
    from tests.conftest import make_settings

    campus = CampusService(MemoryCampusStore())
    await campus.start()
    tenants = TenantService(store, verifier=TokenVerifier(make_settings().auth), origins=TownOrigins([], {}),
                            campus=campus)
    assert tenants.install(TANNAU)  # held in memory, not in the store
    newer = TenantRecord("seewinkel", JWKS, 3000.0)
    await store.create(newer)
    assert await tenants.restore_store() == 1
    assert await store.load() == {"tannau": TANNAU, "seewinkel": newer}
    await campus.close()
