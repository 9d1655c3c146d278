"""Expiry with teeth: a session whose token ran out and was not refreshed within
``auth.refresh_grace_seconds`` gets no more floor updates, is told why
(``session.ended`` with ``token_expired``) and is disconnected; its person then
leaves the floor like after any disconnect. A refresh, even after ``exp``, moves
the deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from presence_server.session_expiry import ExpiryTimers
from signalling.client import OfficeClient, RequestError
from tests.conftest import OfficeServer, StartServer

FLOOR = "projekt"
TTL = 2  # seconds: the shortest token mint_token makes worth testing
GRACE = 1.5  # auth.refresh_grace_seconds here
BOUND = 15.0  # generous: a loaded 2-core machine


@pytest.fixture
async def office(start_server: StartServer) -> OfficeServer:
    return await start_server({
        "PRESENCE_AUTH__LEEWAY_SECONDS": "0",
        "PRESENCE_AUTH__REFRESH_GRACE_SECONDS": str(GRACE),
        "PRESENCE_PRESENCE__GRACE_SECONDS": "0.3",
    })


async def connect(office: OfficeServer, token: str) -> OfficeClient:
    client = OfficeClient(office.url, token)
    office.clients.append(client)
    await client.connect()
    await client.watch(FLOOR)
    await client.move(FLOOR)
    return client


async def until_refused_as_expired(client: OfficeClient) -> None:
    """Wait (bounded) until the session's token has expired: its requests say so."""
    deadline = time.monotonic() + BOUND
    while True:
        ack = await client.call("presence.status", {"status": "available"})
        if not ack["ok"]:
            assert ack["error"]["code"] == "token_expired"
            return
        assert time.monotonic() < deadline, "the token never expired"
        await asyncio.sleep(0.1)  # the token's exp is a wall-clock time: poll it, bounded


async def test_an_expired_session_is_cut_off_after_the_grace_and_leaves_the_floor(office: OfficeServer) -> None:
    lea = await connect(office, office.token("lea.lindenau", "lindenau"))
    anna = await connect(office, office.token("anna.altbach", "altbach", ttl=TTL))
    await lea.until_view(FLOOR, lambda v: "altbach/anna.altbach" in v.members)

    # Expired: Anna may no longer act, but within the grace she still sees the floor
    # (and may still refresh, next test).
    await until_refused_as_expired(anna)
    anna.pending_events("floor.diffs")
    await lea.set_status("busy", "in der Gnadenfrist")
    frame = await anna.next_event("floor.diffs", timeout=BOUND)
    assert frame["diffs"][0]["type"] == "status"

    # After the grace: told why, then disconnected by the server ...
    ended = await anna.next_event("session.ended", timeout=GRACE + BOUND)
    assert ended["error"]["code"] == "token_expired"
    assert ended["error"]["message"].startswith("The token has expired.")
    await asyncio.wait_for(anna.sio.wait(), BOUND)
    assert not anna.sio.connected
    # ... and, once the presence grace is over, gone from everyone's floor.
    await lea.until_view(FLOOR, lambda v: "altbach/anna.altbach" not in v.members, timeout=BOUND)
    assert office.runtime.gateway.session_count == 1


async def test_a_refresh_even_after_exp_keeps_the_session(office: OfficeServer) -> None:
    """Two people with tokens of the same lifetime: the one who refreshes (after
    exp, within the grace) stays; the other is cut off."""
    now = time.time()
    bea = await connect(office, office.token("bea.bergheim", "bergheim", ttl=TTL, now=now))
    carl = await connect(office, office.token("carl.bergheim", "bergheim", ttl=TTL, now=now))
    await until_refused_as_expired(bea)
    fresh = office.token("bea.bergheim", "bergheim", ttl=3600)
    ack = await bea.request("auth.refresh", {"token": fresh})
    assert ack["token_expires_at"] > now + 3000
    assert (await bea.set_status("busy", "erneuert"))["presence"]["text"] == "erneuert"

    # Carl's deadline is the one Bea had: once he is cut off, it has passed for her too.
    ended = await carl.next_event("session.ended", timeout=GRACE + BOUND)
    assert ended["error"]["code"] == "token_expired"
    await bea.until_view(FLOOR, lambda v: "bergheim/carl.bergheim" not in v.members, timeout=BOUND)
    assert bea.sio.connected and bea.pending_events("session.ended") == []
    assert (await bea.move(FLOOR, "projekt-lounge")) == {"floor_id": FLOOR, "room_id": "projekt-lounge"}


async def test_expiry_timers_fire_once_and_never_after_cancel_or_close() -> None:
    fired: list[str] = []
    done = asyncio.Event()

    async def on_expiry(sid: str) -> None:
        fired.append(sid)
        done.set()

    timers = ExpiryTimers(on_expiry)
    timers.schedule("a", time.time() + 3600)
    timers.schedule("b", time.time() + 3600)
    timers.cancel("b")
    timers.schedule("a", time.time())  # moved: now
    await asyncio.wait_for(done.wait(), BOUND)
    assert fired == ["a"] and len(timers) == 0
    timers.schedule("c", time.time() + 3600)
    await timers.close()
    timers.schedule("d", time.time())
    assert len(timers) == 0 and fired == ["a"]

