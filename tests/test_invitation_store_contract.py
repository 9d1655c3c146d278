"""The invitation store contract (presence_server/invitations/store.py), run against
every implementation: memory, SQLite (a real file) and Redis (a real redis-server)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import AsyncIterator

import pytest

from presence_server.invitations.store import Invitation, InvitationStore, hash_code, new_code
from presence_server.invitations.store_memory import MemoryInvitationStore
from presence_server.invitations.store_redis import RedisInvitationStore
from presence_server.invitations.store_sqlite import SqliteInvitationStore
from rooms.errors import DomainError
from rooms.person import PersonId
from tests.support.redis_slots import record_script_slots

#: Real time: the Redis store sets real key expiries (expires_at + keep_seconds).
NOW = float(int(time.time()))


def invitation(inv_id: str = "inv1", *, code: str = "code-1", project: str = "p1", max_uses: int = 1,
               expires_at: float = NOW + 100, created_at: float = NOW) -> Invitation:  # fmt: skip
    return Invitation(
        id=inv_id, project_id=project, municipality="altbach", display_name="Dr. Gast", max_uses=max_uses,
        uses=0, expires_at=expires_at, revoked=False, created_by=PersonId("altbach/anna"), created_at=created_at,
        code_hash=hash_code(code),
    )  # fmt: skip


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InvitationStore]:
    made: InvitationStore
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
        # NOW is fixed when the module is imported, possibly minutes before a test runs in
        # a long suite; the keys must outlive that (their TTL has its own test below).
        made = RedisInvitationStore(url, prefix=request.getfixturevalue("redis_prefix"), keep_seconds=86400)
    elif request.param == "sqlite":
        made = SqliteInvitationStore(tmp_path / "campus.sqlite3")
    else:
        made = MemoryInvitationStore()
    await made.open()
    yield made
    await made.close()


async def refusal(store: InvitationStore, code: str, now: float = NOW) -> str:
    with pytest.raises(DomainError) as err:
        await store.redeem(hash_code(code), now=now)
    return err.value.code.value


async def test_a_record_round_trips_and_is_found_by_id_code_and_project(store: InvitationStore) -> None:
    inv = invitation()
    await store.add(inv)
    assert await store.get("inv1") == inv
    assert await store.peek(hash_code("code-1")) == inv
    assert await store.for_project("p1") == [inv]
    assert await store.get("nope") is None and await store.peek(hash_code("other")) is None
    assert await store.for_project("p2") == []


async def test_ids_and_codes_are_unique(store: InvitationStore) -> None:
    await store.add(invitation())
    with pytest.raises(ValueError):
        await store.add(invitation("inv1", code="code-2"))
    with pytest.raises(ValueError):
        await store.add(invitation("inv2", code="code-1"))


async def test_each_redemption_counts_one_use_until_used_up(store: InvitationStore) -> None:
    await store.add(invitation(max_uses=2))
    assert (await store.redeem(hash_code("code-1"), now=NOW)).uses == 1
    assert (await store.redeem(hash_code("code-1"), now=NOW)).uses == 2
    assert await refusal(store, "code-1") == "invitation_used_up"
    assert (await store.get("inv1")).uses == 2  # type: ignore[union-attr]


async def test_refusals_in_the_contracts_order(store: InvitationStore) -> None:
    assert await refusal(store, "unknown") == "not_found"
    await store.add(invitation(expires_at=NOW + 10))
    assert await refusal(store, "code-1", now=NOW + 10) == "invitation_expired"  # at expiry: refused
    assert (await store.redeem(hash_code("code-1"), now=NOW + 9.9)).uses == 1
    assert await refusal(store, "code-1", now=NOW) == "invitation_used_up"
    revoked = await store.revoke("inv1")
    assert revoked is not None and revoked.revoked and revoked.uses == 1
    assert await refusal(store, "code-1", now=NOW + 50) == "invitation_revoked"  # revoked before expired
    assert (await store.revoke("inv1")).revoked  # type: ignore[union-attr]  # idempotent
    assert await store.revoke("nope") is None


async def test_concurrent_redemptions_of_the_last_use_have_exactly_one_winner(store: InvitationStore) -> None:
    await store.add(invitation(max_uses=3))
    results = await asyncio.gather(*(store.redeem(hash_code("code-1"), now=NOW) for _ in range(12)),
                                   return_exceptions=True)  # fmt: skip
    won = sorted(r.uses for r in results if isinstance(r, Invitation))
    lost = [r.code.value for r in results if isinstance(r, DomainError)]
    assert won == [1, 2, 3] and lost == ["invitation_used_up"] * 9


async def test_for_project_lists_oldest_first_and_only_that_project(store: InvitationStore) -> None:
    await store.add(invitation("inv2", code="c2", created_at=NOW + 1))
    await store.add(invitation("inv1", code="c1", created_at=NOW))
    await store.add(invitation("inv3", code="c3", project="p2"))
    assert [i.id for i in await store.for_project("p1")] == ["inv1", "inv2"]


async def test_purge_forgets_records_expired_before_the_retention(store: InvitationStore) -> None:
    if isinstance(store, RedisInvitationStore):
        pytest.skip("Redis forgets by key expiry (checked below)")
    await store.add(invitation("old", code="c1", expires_at=NOW - 100))
    await store.add(invitation("new", code="c2", expires_at=NOW + 100))
    assert await store.purge(expired_before=NOW) == 1
    assert await store.get("old") is None and await store.peek(hash_code("c1")) is None
    assert await store.get("new") is not None


async def test_redis_keys_expire_with_the_retention_and_scripts_touch_one_slot(redis_server: object, redis_prefix: str) -> None:
    url = redis_server.url  # type: ignore[attr-defined]
    store = RedisInvitationStore(url, prefix=redis_prefix, keep_seconds=60)
    await store.open()
    try:
        ran = record_script_slots(store)
        now = time.time()
        code = new_code()
        await store.add(invitation("inv1", code=code, expires_at=now + 30, created_at=now))
        await store.redeem(hash_code(code), now=now)
        await store.revoke("inv1")
        assert {name for name, _ in ran} == {"add", "redeem", "revoke"}
        assert len({slot for _, slots in ran for slot in slots}) == 1
        client = store._redis()
        for key in (f"{redis_prefix}{{inv}}:i:inv1", f"{redis_prefix}{{inv}}:c:{hash_code(code)}",
                    f"{redis_prefix}{{inv}}:p:p1"):  # fmt: skip
            ttl = await client.ttl(key)
            assert 80 <= ttl <= 91, (key, ttl)  # expires_at + keep_seconds
        assert code.encode() not in b"".join(
            v for v in (await client.hgetall(f"{redis_prefix}{{inv}}:i:inv1")).values()
        )  # only the hash is stored
    finally:
        await store.close()


async def test_sqlite_records_survive_a_restart_beside_the_campus(tmp_path: Path) -> None:
    from rooms.store_sqlite import SqliteCampusStore

    path = tmp_path / "campus.sqlite3"
    campus = SqliteCampusStore(path)  # the same file, its own connection and table
    await campus.open()
    first = SqliteInvitationStore(path)
    await first.open()
    await first.add(invitation(max_uses=2))
    await first.redeem(hash_code("code-1"), now=NOW)
    await first.close()
    await campus.close()
    again = SqliteInvitationStore(path)
    await again.open()
    try:
        kept = await again.get("inv1")
        assert kept is not None and kept.uses == 1
        assert (await again.redeem(hash_code("code-1"), now=NOW)).uses == 2
    finally:
        await again.close()
