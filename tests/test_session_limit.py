"""Sessions per person: the (limit+1)-th connect of one person is refused with
``too_many_sessions``; a person is (municipality, user id), never the bare id;
a session that ends frees its slot. Real Socket.IO clients, real server."""

from __future__ import annotations

import asyncio

import pytest

from presence_server.session_limit import SessionLimit
from rooms.person import PersonId
from signalling.client import ConnectRefused, OfficeClient
from tests.conftest import OfficeServer, StartServer

LIMIT = 3


@pytest.fixture
async def office(start_server: StartServer) -> OfficeServer:
    return await start_server({"PRESENCE_LIMITS__MAX_SESSIONS_PER_PERSON": str(LIMIT)})


async def sessions_on_server(office: OfficeServer, count: int) -> None:
    async def settled() -> None:  # the server handles a disconnect after the client's close
        while office.runtime.gateway.session_count != count:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(settled(), 10)


async def test_one_session_more_than_the_limit_is_refused_with_a_structured_error(office: OfficeServer) -> None:
    for _ in range(LIMIT):
        await office.client("m.mueller", "altbach")
    with pytest.raises(ConnectRefused) as refused:
        await office.client("m.mueller", "altbach")
    assert refused.value.data == {
        "code": "too_many_sessions",
        "message": f"Too many open sessions: close another tab or device first. (at most {LIMIT} per person)",
        "limit": LIMIT,
    }
    german = OfficeClient(office.url, office.token("m.mueller", "altbach"), lang="de")
    office.clients.append(german)
    with pytest.raises(ConnectRefused) as refused:
        await german.connect()
    assert refused.value.code == "too_many_sessions"
    assert refused.value.data["message"].startswith("Zu viele offene Sitzungen")
    assert office.runtime.gateway.session_count == LIMIT  # refusals left nothing behind


async def test_the_same_user_id_in_two_municipalities_is_two_people_with_a_budget_each(office: OfficeServer) -> None:
    for _ in range(LIMIT):
        await office.client("m.mueller", "altbach")
    for _ in range(LIMIT):  # Bergheim's m.mueller is someone else: a full budget of their own
        client = await office.client("m.mueller", "bergheim")
        assert client.ready is not None and client.ready["me"]["municipality"] == "bergheim"
    for municipality in ("altbach", "bergheim"):
        with pytest.raises(ConnectRefused) as refused:
            await office.client("m.mueller", municipality)
        assert refused.value.code == "too_many_sessions"
    await office.client("a.other", "altbach")  # and nobody else is affected
    assert office.runtime.gateway.session_count == 2 * LIMIT + 1


async def test_a_session_that_disconnects_frees_its_slot(office: OfficeServer) -> None:
    clients = [await office.client("m.mueller", "altbach") for _ in range(LIMIT)]
    with pytest.raises(ConnectRefused):
        await office.client("m.mueller", "altbach")
    await clients[0].disconnect()
    await sessions_on_server(office, LIMIT - 1)
    await office.client("m.mueller", "altbach")  # the freed slot
    with pytest.raises(ConnectRefused):
        await office.client("m.mueller", "altbach")
    for client in clients[1:]:
        await client.disconnect()
    await sessions_on_server(office, 1)
    for _ in range(LIMIT - 1):
        await office.client("m.mueller", "altbach")


async def test_concurrent_connects_of_one_person_never_exceed_the_limit(office: OfficeServer) -> None:
    attempts = [OfficeClient(office.url, office.token("m.mueller", "altbach")) for _ in range(LIMIT + 4)]
    office.clients.extend(attempts)
    results = await asyncio.gather(*(c.connect() for c in attempts), return_exceptions=True)
    refused = [r for r in results if isinstance(r, ConnectRefused)]
    assert len(refused) == 4 and {r.code for r in refused} == {"too_many_sessions"}
    assert office.runtime.gateway.session_count == LIMIT


def test_the_count_is_keyed_by_person() -> None:
    alt, berg = PersonId("altbach/m.mueller"), PersonId("bergheim/m.mueller")
    limit = SessionLimit(2)
    assert (limit.acquire(alt), limit.acquire(alt)) == (1, 2)
    assert limit.acquire(alt) == 0  # at the limit: refused, nothing counted
    assert limit.acquire(berg) == 1  # same sub, another town: a budget of their own
    assert limit.release(alt) == 1 and limit.open_sessions(alt) == 1
    assert limit.release(alt) == 0 and limit.open_sessions(alt) == 0
    assert limit.acquire(alt) == 1
