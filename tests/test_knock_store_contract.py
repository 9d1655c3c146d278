"""The knock store contract, run against every implementation (add backends to ``new_store``)."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest

from presence_server.knocks.store_redis import RedisKnockStore
from presence_server.knocks.store import KnockStore, floor_of, new_knock_id
from presence_server.knocks.store_memory import MemoryKnockStore
from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from rooms.knocks import KnockOutcome
from rooms.person import PersonId

BEN = Actor("ben", "bergheim", "Ben")
ANNA = Actor("anna", "altbach", "Anna")
LEA = Actor("lea", "lindenau", "Lea")
JONAS = Actor("jonas", "bergheim", "Jonas")
B, L, J = BEN.person_id, LEA.person_id, JONAS.person_id


@pytest.fixture(params=["memory", "redis"])
async def new_store(request: pytest.FixtureRequest) -> AsyncIterator[KnockStore]:
    store: KnockStore
    if request.param == "redis":
        # Looked up only here, so the memory runs need no redis-server.
        url = request.getfixturevalue("redis_server").url
        store = RedisKnockStore(url, prefix=request.getfixturevalue("redis_prefix"), timeout=30, cooldown=20)
    else:
        store = MemoryKnockStore(timeout=30, cooldown=20)
    await store.open()
    yield store
    await store.close()


async def knock(store: KnockStore, knocker: Actor = BEN, *, room: str = "r", floor: str = "f", now: float = 0.0,
                recipients: frozenset[PersonId] = frozenset({L, J})):
    return await store.add(new_knock_id(floor), knocker, room_id=room, floor_id=floor, recipients=recipients,
                           to_owners=False, message="Hallo", now=now)


async def code(awaitable) -> ErrorCode:
    with pytest.raises(DomainError) as refused:
        await awaitable
    return refused.value.code


def test_knock_ids_name_their_floor() -> None:
    assert floor_of(new_knock_id("projekt")) == "projekt"
    with pytest.raises(DomainError):
        floor_of("k-nofloor")


async def test_a_knock_round_trips(new_store: KnockStore) -> None:
    k = await knock(new_store, now=100.0)
    got = await new_store.get(k.id)
    assert got == k and got.expires_at == 130.0 and got.recipients == frozenset({L, J})
    assert got.knocker == BEN and got.message == "Hallo" and got.to_owners is False


async def test_the_first_resolution_wins_and_every_later_one_is_refused(new_store: KnockStore) -> None:
    k = await knock(new_store)
    resolution = await new_store.resolve(k.id, KnockOutcome.ADMITTED, now=1, by=L)
    assert (resolution.outcome, resolution.by, resolution.knock.id) == (KnockOutcome.ADMITTED, L, k.id)
    wire = resolution.to_wire()
    assert (wire["knocker_id"], wire["by"]) == ("bergheim/ben", "lindenau/lea")
    for outcome in KnockOutcome:
        assert await code(new_store.resolve(k.id, outcome, now=1, by=J)) is ErrorCode.KNOCK_RESOLVED
    assert await code(new_store.get(k.id)) is ErrorCode.KNOCK_RESOLVED
    assert await new_store.pending_of(B) is None


async def test_concurrent_answers_give_exactly_one_outcome(new_store: KnockStore) -> None:
    for _ in range(50):
        k = await knock(new_store)
        results = await asyncio.gather(
            new_store.resolve(k.id, KnockOutcome.ADMITTED, now=1, by=L),
            new_store.resolve(k.id, KnockOutcome.DECLINED, now=1, reason="room_empty"),
            return_exceptions=True,
        )
        assert sum(not isinstance(r, Exception) for r in results) == 1
        errors = [r for r in results if isinstance(r, Exception)]
        assert all(isinstance(e, DomainError) and e.code is ErrorCode.KNOCK_RESOLVED for e in errors)


async def test_an_unknown_knock_is_not_found(new_store: KnockStore) -> None:
    assert await code(new_store.get(new_knock_id("f"))) is ErrorCode.NOT_FOUND


async def test_one_pending_knock_per_knocker(new_store: KnockStore) -> None:
    k = await knock(new_store)
    assert await code(knock(new_store, room="other")) is ErrorCode.ALREADY_KNOCKING
    assert (await new_store.pending_of(B)) == k
    await new_store.resolve(k.id, KnockOutcome.CANCELLED, now=1, by=B)
    await knock(new_store, room="other")


async def test_a_human_decline_starts_a_cooldown_for_that_room_only(new_store: KnockStore) -> None:
    k = await knock(new_store, now=100)
    await new_store.resolve(k.id, KnockOutcome.DECLINED, now=100, by=L)
    with pytest.raises(DomainError) as refused:
        await knock(new_store, now=110)
    assert refused.value.code is ErrorCode.KNOCK_COOLDOWN and refused.value.extra["retry_after"] == 10
    other = await knock(new_store, room="other", now=110)
    await new_store.resolve(other.id, KnockOutcome.CANCELLED, now=111, by=B)
    await knock(new_store, now=120)  # over


async def test_a_decline_without_a_person_sets_no_cooldown(new_store: KnockStore) -> None:
    k = await knock(new_store)
    await new_store.resolve(k.id, KnockOutcome.DECLINED, now=1, reason="room_empty")
    await knock(new_store, now=2)


async def test_a_claimed_knock_refuses_others_until_resolved_or_released(new_store: KnockStore) -> None:
    k = await knock(new_store)
    await new_store.claim(k.id)
    assert await code(new_store.claim(k.id)) is ErrorCode.KNOCK_RESOLVED
    assert await code(new_store.resolve(k.id, KnockOutcome.DECLINED, now=1, by=J)) is ErrorCode.KNOCK_RESOLVED
    assert await new_store.due(1000) == []
    await new_store.release(k.id)
    assert [x.id for x in await new_store.due(1000)] == [k.id]
    await new_store.claim(k.id)
    resolution = await new_store.resolve(k.id, KnockOutcome.ADMITTED, now=2, by=L, claimed=True)
    assert resolution.outcome is KnockOutcome.ADMITTED


async def test_rooms_recipients_and_due(new_store: KnockStore) -> None:
    k1 = await knock(new_store, BEN, room="r1", now=0, recipients=frozenset({L}))
    k2 = await knock(new_store, ANNA, room="r2", now=10, recipients=frozenset({L, J}))
    assert [k.id for k in await new_store.pending_for_room("f", "r1")] == [k1.id]
    assert sorted(k.id for k in await new_store.incoming(L)) == sorted([k1.id, k2.id])
    assert [k.id for k in await new_store.incoming(J)] == [k2.id]
    assert await new_store.due(29.9) == []
    assert [k.id for k in await new_store.due(30)] == [k1.id]
    await new_store.resolve(k1.id, KnockOutcome.EXPIRED, now=30, reason="timeout")
    assert [k.id for k in await new_store.incoming(L)] == [k2.id]


async def test_the_same_subject_in_two_towns_never_shares_a_pending_knock(new_store: KnockStore) -> None:
    # m.mueller of Altbach and m.mueller of Bergheim are two people: each may knock,
    # each sees only the knocks addressed to them, and a decline binds only the one declined.
    altbach = Actor("m.mueller", "altbach", "Martina Müller")
    bergheim = Actor("m.mueller", "bergheim", "Michael Müller")
    ma, mb = altbach.person_id, bergheim.person_id

    first = await knock(new_store, altbach, room="r", now=0, recipients=frozenset({L}))
    second = await knock(new_store, bergheim, room="r", now=1, recipients=frozenset({L}))  # not already_knocking
    assert first.id != second.id
    assert await new_store.pending_of(ma) == first and await new_store.pending_of(mb) == second
    assert first.knocker == altbach and second.knocker == bergheim
    assert sorted(k.id for k in await new_store.pending_for_room("f", "r")) == sorted([first.id, second.id])

    declined = await new_store.resolve(first.id, KnockOutcome.DECLINED, now=2, by=L)
    assert declined.to_wire()["knocker_id"] == "altbach/m.mueller"
    assert await new_store.pending_of(ma) is None
    assert await new_store.pending_of(mb) == second  # the other's knock is untouched
    assert await code(knock(new_store, altbach, room="r", now=3)) is ErrorCode.KNOCK_COOLDOWN
    await new_store.resolve(second.id, KnockOutcome.CANCELLED, now=3, by=mb)
    again = await knock(new_store, bergheim, room="r", now=4, recipients=frozenset())  # no cooldown of the other's
    await new_store.resolve(again.id, KnockOutcome.CANCELLED, now=4, by=mb)

    # Recipients are persons: a knock for one m.mueller is not the other's to answer.
    for_altbach = await knock(new_store, BEN, room="r2", now=5, recipients=frozenset({ma}))
    assert [k.id for k in await new_store.incoming(ma)] == [for_altbach.id]
    assert await new_store.incoming(mb) == []
    assert (await new_store.get(for_altbach.id)).recipients == frozenset({"altbach/m.mueller"})
