"""The portal in cluster mode: two in-process nodes over one real Redis. The
finder, badges and occupancy see people connected to either node, the
directory forgets someone who went offline on the other node, and every
webhook event is delivered once — by the node where the change happened."""

from __future__ import annotations

from collections import Counter
from typing import AsyncIterator

import pytest

from rooms.person import PersonId
from tests.conftest import OfficeServer, StartServer
from tests.support.portal import eventually, get, person
from tests.support.redis_server import RedisServer
from tests.support.webhook_receiver import Receiver

FLOOR = "projekt"
SECRET = b"altbach-webhook-secret-0123456789abcdef"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = await Receiver({"altbach": SECRET}).start()
    yield rec
    await rec.stop()


@pytest.fixture
async def nodes(start_server: StartServer, redis_server: RedisServer, redis_prefix: str,
                receiver: Receiver) -> tuple[OfficeServer, OfficeServer]:
    env = {
        "PRESENCE_REDIS__URL": redis_server.url,
        "PRESENCE_REDIS__PREFIX": redis_prefix,
        "PRESENCE_PRESENCE__GRACE_SECONDS": "0.3",
        "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__URL": receiver.url("altbach"),
        "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__SECRET": SECRET.decode(),
        # The receiver listens on loopback, which webhooks reach only when allowed.
        "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__ALLOW_NETWORKS": '["127.0.0.0/8"]',
    }
    a = await start_server(env)
    b = await start_server(env)
    return a, b


async def test_finder_badge_and_occupancy_see_people_on_every_node(nodes: tuple[OfficeServer, OfficeServer]) -> None:
    a, b = nodes
    tim = await person(b, "tim.bergheim", "bergheim", name="Tim Bauer", skills=["Naturschutz", "GIS"])
    await tim.move(FLOOR, "projekt-lounge")
    await tim.set_status("busy", "Kartierung")
    await person(a, "lea.lindenau", "lindenau", name="Lea Lorenz", skills=["Naturschutz"])
    anna = a.token("anna.altbach", "altbach")

    status, body = await get(a, anna, "/api/v1/people/search?skill=naturschutz")
    assert status == 200
    assert [(r["person"], r["status"], r["room_id"]) for r in body["results"]] == [
        ("lindenau/lea.lindenau", "available", None), ("bergheim/tim.bergheim", "busy", "projekt-lounge")]
    _, badge = await get(a, anna, "/api/v1/municipalities/bergheim/users/tim.bergheim/badge")
    assert (badge["badge"]["status_text"], badge["badge"]["room_name"]) == ("Kartierung", "Lounge")
    _, occupancy = await get(a, anna, f"/api/v1/floors/{FLOOR}/occupancy")
    lounge = next(r for r in occupancy["rooms"] if r["room_id"] == "projekt-lounge")
    assert [(o["person"], o["user_id"]) for o in lounge["occupants"]] == [("bergheim/tim.bergheim", "tim.bergheim")]
    assert badge["badge"]["in_call"] is False
    await tim.request("call.join", {"room_id": "projekt-lounge"})  # the call lives in Redis: node a sees it
    _, badge = await get(a, anna, "/api/v1/municipalities/bergheim/users/tim.bergheim/badge")
    assert badge["badge"]["in_call"] is True

    await tim.disconnect()  # his grace period runs out on node b; node a must not find him any more

    async def forgotten() -> bool:
        _, body = await get(a, anna, "/api/v1/people/search?skill=naturschutz")
        return [r["person"] for r in body["results"]] == ["lindenau/lea.lindenau"]

    await eventually(forgotten)
    assert (await get(a, anna, "/api/v1/municipalities/bergheim/users/tim.bergheim/badge"))[0] == 404
    assert await a.runtime.presence.store.member(PersonId("bergheim/tim.bergheim")) is None


async def test_each_webhook_event_is_delivered_once_by_the_node_where_it_happened(
    nodes: tuple[OfficeServer, OfficeServer], receiver: Receiver
) -> None:
    a, b = nodes
    for node, watcher in ((a, "mia.altbach"), (b, "clara.bergheim")):
        # Watchers on both nodes: each node then receives the other's diffs from the bus.
        await (await person(node, watcher, watcher.split(".")[1])).watch(FLOOR)
    anna = await person(a, "anna.altbach", "altbach")
    ben = await person(b, "ben.bergheim", "bergheim")
    lea = await person(a, "lea.lindenau", "lindenau")
    await lea.move(FLOOR, "projekt-besprechung")
    await anna.move(FLOOR)
    await ben.move(FLOOR)
    await ben.knock("projekt-besprechung")
    incoming = await lea.next_event("knock.incoming")
    await lea.answer(incoming["knock_id"], admit=False)
    # Alternate nodes: each node sends its receiver's events in order, so once the
    # last change of each node is in, any copy a node made of another node's
    # change would already have arrived.
    for n, (client, node) in enumerate([(anna, "a"), (ben, "b"), (anna, "a"), (ben, "b")], start=1):
        await client.set_status("busy", f"{node}{n}")
    await receiver.until(lambda ds: {"a3", "b4"} <= {d.event["data"].get("text") for d in ds})

    assert all(d.valid for d in receiver.deliveries)
    ids = Counter(d.event["id"] for d in receiver.deliveries)
    assert max(ids.values()) == 1
    texts = Counter(d.event["data"]["text"] for d in receiver.deliveries if d.event["type"] == "presence.status")
    assert texts == {"a1": 1, "b2": 1, "a3": 1, "b4": 1}
    joined = Counter(d.event["data"]["member"]["person"] for d in receiver.deliveries
                     if d.event["type"] == "presence.joined")
    assert joined == {"lindenau/lea.lindenau": 1, "altbach/anna.altbach": 1, "bergheim/ben.bergheim": 1}
    knocks = Counter(d.event["type"] for d in receiver.deliveries if d.event["type"].startswith("knock."))
    assert knocks == {"knock.opened": 1, "knock.resolved": 1}
