"""Several real server processes over one real Redis act as one office."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import AsyncIterator, Iterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from presence_server.auth import mint_token
from signalling.client import OfficeClient, RequestError
from signalling.webrtc import CallPeer
from tests.conftest import make_settings
from tests.support.cluster_truth import until_views_tell_the_truth
from tests.support.processes import ServerProcess
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow

FLOOR = "projekt"
ANNA, BEN, JONAS = "altbach/anna.altbach", "bergheim/ben.bergheim", "lindenau/jonas.lindenau"
MIA = "altbach/mia.altbach"
SETTINGS = make_settings()


def token(user: str, municipality: str, roles: tuple[str, ...] = ("staff",)) -> str:
    return mint_token(SETTINGS.auth, municipality=municipality, user_id=user, name=user.split(".")[0].title(),
                      roles=roles)


class Cluster:
    def __init__(self, nodes: list[ServerProcess]) -> None:
        self.nodes = nodes
        self.clients: list[OfficeClient] = []

    async def client(self, node: int, user: str, municipality: str) -> OfficeClient:
        client = OfficeClient(self.nodes[node].url, token(user, municipality))
        self.clients.append(client)
        return await client.connect()

    async def metrics(self, node: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        async with aiohttp.ClientSession() as http:
            async with http.get(self.nodes[node].url + "/metrics") as resp:
                text = await resp.text()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(text) for s in f.samples}


@pytest.fixture(scope="module")
def three_nodes(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """Three nodes sharing one Redis under a prefix of their own; started once per module."""
    logs = tmp_path_factory.mktemp("cluster-logs")
    env = {
        "PRESENCE_REDIS__URL": redis_server.url,
        "PRESENCE_REDIS__PREFIX": f"c{uuid.uuid4().hex[:8]}:",
        "PRESENCE_PRESENCE__GRACE_SECONDS": "1",
        "PRESENCE_LIMITS__EVENTS_PER_SECOND": "1000",
        "PRESENCE_LIMITS__BURST": "1000",
        "PRESENCE_KNOCK__COOLDOWN_SECONDS": "0",  # the knock race declines round after round
        "PRESENCE_LOG__LEVEL": "info",
    }
    nodes: list[ServerProcess] = []
    try:
        for i in range(3):
            nodes.append(ServerProcess(env, log_path=logs / f"node{i}.log").start())
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
async def cluster(three_nodes: list[ServerProcess]) -> AsyncIterator[Cluster]:
    c = Cluster(three_nodes)
    yield c
    for client in c.clients:
        await client.disconnect()


async def test_joins_walks_and_status_are_seen_on_every_node_in_order(cluster: Cluster) -> None:
    watchers = [await cluster.client(i, f"watcher{i}.seefeld", "seefeld") for i in range(3)]
    views = [await w.watch(FLOOR) for w in watchers]
    starts = [v.seq for v in views]
    anna = await cluster.client(0, "anna.altbach", "altbach")
    ben = await cluster.client(1, "ben.bergheim", "bergheim")
    lea = await cluster.client(2, "lea.lindenau", "lindenau")
    await anna.move(FLOOR)
    await ben.move(FLOOR, "projekt-lounge")
    await lea.move(FLOOR, "projekt-raum-digitales-rathaus")
    await anna.move(FLOOR, "projekt-lounge")
    await ben.set_status("busy", "Haushalt")
    await lea.set_status("do_not_disturb")

    def settled(v) -> bool:
        m = v.members
        return (m.get("altbach/anna.altbach", {}).get("room_id") == "projekt-lounge"
                and m.get("bergheim/ben.bergheim", {}).get("text") == "Haushalt"
                and m.get("lindenau/lea.lindenau", {}).get("status") == "do_not_disturb")

    for watcher in watchers:
        await watcher.until_view(FLOOR, settled, timeout=10)
    assert views[0].as_comparable() == views[1].as_comparable() == views[2].as_comparable()
    for watcher, view, start in zip(watchers, views, starts):
        assert view.gaps == 0 and watcher.resyncs == 0
        received = [d["seq"] for f in watcher.pending_events("floor.diffs") for d in f["diffs"] if d["seq"] > start]
        # Every diff after the snapshot, once each, in order, without a gap.
        assert received == list(range(start + 1, view.seq + 1)), received


async def test_a_user_with_sessions_on_two_nodes_is_one_presence(cluster: Cluster) -> None:
    watcher = await cluster.client(2, "watcher.seefeld", "seefeld")
    await watcher.watch(FLOOR)
    tab0 = await cluster.client(0, "jonas.lindenau", "lindenau")
    await tab0.move(FLOOR)
    tab1 = await cluster.client(1, "jonas.lindenau", "lindenau")
    assert tab1.ready["location"] == {"floor_id": FLOOR, "room_id": None}
    await tab1.set_status("busy", scope="session")
    await watcher.until_view(FLOOR, lambda v: v.members.get(JONAS, {}).get("status") == "busy")
    await tab1.disconnect()  # the busy tab closes: status falls back, no leave
    await watcher.until_view(FLOOR, lambda v: v.members.get(JONAS, {}).get("status") == "available")
    kinds = [d["type"] for f in watcher.pending_events("floor.diffs") for d in f["diffs"]
             if d.get("person") == JONAS or d.get("member", {}).get("person") == JONAS]
    assert "left" not in kinds


async def test_capacity_holds_across_nodes_when_twenty_enter_at_once(cluster: Cluster) -> None:
    admin = token("lea.lindenau", "lindenau", roles=("staff", "admin"))
    body = {"name": "Enger Raum", "kind": "meeting", "capacity": 5, "rect": {"x": 640, "y": 360, "w": 120, "h": 120}}
    async with aiohttp.ClientSession(cluster.nodes[0].url, headers={"Authorization": f"Bearer {admin}"}) as http:
        async with http.post(f"/api/v1/floors/{FLOOR}/rooms", json=body) as resp:
            assert resp.status == 201, await resp.text()
            room = (await resp.json())["room"]["id"]
    walkers = [await cluster.client(i % 3, f"walker{i}.seefeld", "seefeld") for i in range(20)]

    async def enter(client: OfficeClient) -> bool:
        try:
            await client.move(FLOOR, room)
            return True
        except RequestError as refused:
            assert refused.code in ("room_full", "not_found")  # not_found: the room not yet known there
            return False

    # Every node must know the new room before the race starts.
    watcher = walkers[2]
    view = await watcher.watch(FLOOR)
    await watcher.until_view(FLOOR, lambda v: room in v.rooms, timeout=5)
    del view
    results = await asyncio.gather(*(enter(w) for w in walkers))
    assert sum(results) == 5
    await watcher.until_view(FLOOR, lambda v: len(v.occupants(room)) == 5, timeout=10)


async def test_a_node_with_no_watcher_of_a_floor_receives_none_of_its_traffic(cluster: Cluster) -> None:
    floor = "altbach-eg"
    watcher = await cluster.client(1, "jan.altbach", "altbach")
    await watcher.watch(floor)
    mover = await cluster.client(0, "mia.altbach", "altbach")
    await mover.move(floor)
    await mover.move(floor, "altbach-teekueche")
    await watcher.until_view(floor, lambda v: v.members.get(MIA, {}).get("room_id") == "altbach-teekueche")
    key = ("vo_bus_floor_received_total", (("floor", floor),))
    assert (await cluster.metrics(1)).get(key, 0) >= 1  # node 1 has a watcher: it hears the floor
    assert (await cluster.metrics(2)).get(key, 0) == 0  # node 2 has none: not one message


async def test_a_campus_change_on_one_node_is_live_on_the_others(cluster: Cluster) -> None:
    watcher = await cluster.client(2, "sven.seefeld", "seefeld")
    await watcher.watch(FLOOR)
    admin = token("ben.bergheim", "bergheim", roles=("staff", "admin"))
    async with aiohttp.ClientSession(cluster.nodes[0].url, headers={"Authorization": f"Bearer {admin}"}) as http:
        async with http.patch("/api/v1/rooms/projekt-buero-it-verbund", json={"door": "closed"}) as resp:
            assert resp.status == 200
    await watcher.until_view(FLOOR, lambda v: v.rooms["projekt-buero-it-verbund"]["door"] == "closed", timeout=5)
    async with aiohttp.ClientSession(cluster.nodes[1].url, headers={"Authorization": f"Bearer {admin}"}) as http:
        async with http.get("/api/v1/rooms/projekt-buero-it-verbund") as resp:
            assert (await resp.json())["room"]["door"] == "closed"


async def test_a_killed_node_s_users_leave_every_view_once_within_ten_seconds(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    import signal
    import time

    env = {
        "PRESENCE_REDIS__URL": redis_server.url,
        "PRESENCE_REDIS__PREFIX": f"k{uuid.uuid4().hex[:8]}:",
        "PRESENCE_PRESENCE__GRACE_SECONDS": "30",  # a crash must not wait for the grace period
    }
    nodes = [ServerProcess(env, log_path=tmp_path / f"node{i}.log").start() for i in range(3)]
    c = Cluster(nodes)
    try:
        watchers = [await c.client(i, f"watcher{i}.seefeld", "seefeld") for i in (0, 1)]
        for watcher in watchers:
            await watcher.watch(FLOOR)
        doomed = [await c.client(2, f"doomed{i}.bergheim", "bergheim") for i in range(3)]
        for i, client in enumerate(doomed):
            await client.move(FLOOR, "projekt-lounge" if i else None)
        for watcher in watchers:
            await watcher.until_view(FLOOR, lambda v: {f"bergheim/doomed{i}.bergheim" for i in range(3)} <= set(v.members))
        # A survivor shares a room call with one of them.
        await watchers[0].move(FLOOR, "projekt-lounge")
        await watchers[0].request("call.join", {"room_id": "projekt-lounge"})
        await doomed[1].request("call.join", {"room_id": "projekt-lounge"})
        await watchers[0].next_event("call.updated", lambda c: len(c["members"]) == 2, timeout=5)
        watchers[0].pending_events("call.updated")  # the earlier "alone" update must not answer the wait below
        started = time.monotonic()
        nodes[2].stop(signal.SIGKILL)
        for watcher in watchers:
            await watcher.until_view(FLOOR, lambda v: not any(p.startswith("bergheim/doomed") for p in v.members),
                                     timeout=10)
        gone_after = time.monotonic() - started
        print(f"\nfault 1 (kill -9): its users gone from every view {gone_after:.1f} s after the kill")
        assert gone_after < 10
        alone = await watchers[0].next_event("call.updated", lambda c: c["members"] == ["seefeld/watcher0.seefeld"],
                                             timeout=5)
        assert not alone["ended"]  # the call goes on without the member the dead node held
        for watcher in watchers:
            lefts = [d["person"] for f in watcher.pending_events("floor.diffs") for d in f["diffs"] if d["type"] == "left"]
            assert sorted(lefts) == [f"bergheim/doomed{i}.bergheim" for i in range(3)]  # each once
            assert await watcher.request("campus.get")  # still served
        admin = token("lea.lindenau", "lindenau", roles=("staff", "admin"))
        await until_views_tell_the_truth(watchers, [nodes[0].url, nodes[1].url], FLOOR, admin, timeout=10)
    finally:
        for client in c.clients:
            if client.sio.connected and client.url != nodes[2].url:
                await client.disconnect()
        for node in nodes:
            node.stop()


async def test_a_draining_node_hands_its_users_over_without_a_leave(redis_server: RedisServer, tmp_path: Path) -> None:
    import signal

    env = {
        "PRESENCE_REDIS__URL": redis_server.url,
        "PRESENCE_REDIS__PREFIX": f"d{uuid.uuid4().hex[:8]}:",
        "PRESENCE_PRESENCE__GRACE_SECONDS": "4",
    }
    nodes = [ServerProcess(env, log_path=tmp_path / f"node{i}.log").start() for i in range(2)]
    c = Cluster(nodes)
    try:
        watcher = await c.client(0, "sven.seefeld", "seefeld")
        await watcher.watch(FLOOR)
        anna = await c.client(1, "anna.altbach", "altbach")
        ben = await c.client(1, "ben.bergheim", "bergheim")
        await anna.move(FLOOR, "projekt-lounge")
        await anna.set_status("busy", "Workshop")
        await ben.move(FLOOR)
        await watcher.until_view(FLOOR, lambda v: {ANNA, BEN} <= set(v.members))
        watcher.pending_events("floor.diffs")

        # In a thread: the clients on this loop must answer the close handshake meanwhile.
        stopping = asyncio.ensure_future(asyncio.to_thread(nodes[1].stop, signal.SIGTERM))
        assert (await anna.next_event("session.reconnect"))["reason"] == "shutdown"
        back = await c.client(0, "anna.altbach", "altbach")  # anna reconnects elsewhere; ben does not
        assert back.ready["location"] == {"floor_id": FLOOR, "room_id": "projekt-lounge"}
        assert back.ready["me"]["text"] == "Workshop"
        await watcher.until_view(FLOOR, lambda v: BEN not in v.members, timeout=15)
        diffs = [d for f in watcher.pending_events("floor.diffs") for d in f["diffs"]]
        about = lambda p: [d["type"] for d in diffs if p in (d.get("person"), d.get("member", {}).get("person"))]  # noqa: E731
        assert about(ANNA) == []  # handed over: no flicker
        assert about(BEN) == ["left"]  # gone for good, once
        assert await stopping == 0  # drained, then exited cleanly
    finally:
        for client in c.clients:
            if client.sio.connected:
                await client.disconnect()
        for node in nodes:
            node.stop()


async def test_a_knock_answered_from_two_nodes_at_once_has_one_outcome_100_times(cluster: Cluster) -> None:
    meeting = "projekt-besprechung"  # closed; owner lindenau/lea.lindenau
    lea = await cluster.client(0, "lea.lindenau", "lindenau")
    await lea.move(FLOOR, meeting)
    jonas = await cluster.client(1, "jonas.lindenau", "lindenau")
    entry = await jonas.knock(meeting)
    await lea.answer(entry["knock_id"], admit=True)
    await jonas.next_event("knock.outcome", lambda o: o["knock_id"] == entry["knock_id"], timeout=5)
    knocker = await cluster.client(2, "tim.bergheim", "bergheim")  # the knocker on a third node
    await knocker.move(FLOOR)
    for round_no in range(100):
        knock = await knocker.knock(meeting)
        admit_first = round_no % 2 == 0
        acks = await asyncio.gather(
            lea.call("knock.answer", {"knock_id": knock["knock_id"], "admit": admit_first}),
            jonas.call("knock.answer", {"knock_id": knock["knock_id"], "admit": not admit_first}),
        )
        winners = [a for a in acks if a["ok"]]
        assert len(winners) == 1, acks
        assert [a["error"]["code"] for a in acks if not a["ok"]] == ["knock_resolved"]
        outcome = winners[0]["outcome"]["outcome"]
        for client in (knocker, lea, jonas):  # every node delivers the same one outcome
            seen = await client.next_event("knock.outcome", lambda o, k=knock["knock_id"]: o["knock_id"] == k, timeout=5)
            assert seen["outcome"] == outcome and seen["knocker_id"] == "bergheim/tim.bergheim"
            assert seen["by"] == ("lindenau/lea.lindenau" if acks[0]["ok"] else JONAS)  # whoever won
        if outcome == "admitted":
            await knocker.move(FLOOR)  # step out for the next round


async def test_one_sessions_requests_apply_in_the_order_sent(cluster: Cluster) -> None:
    """Twenty status changes fired without waiting: every watcher sees all of them,
    in order, and the last one sent is the one that stays."""
    watcher = await cluster.client(1, "watcher.seefeld", "seefeld")
    await watcher.watch(FLOOR)
    mia = await cluster.client(0, "mia.altbach", "altbach")
    await mia.move(FLOOR)
    await watcher.until_view(FLOOR, lambda v: MIA in v.members)
    watcher.pending_events("floor.diffs")
    acks = await asyncio.gather(
        *(mia.call("presence.status", {"status": "busy", "text": f"Schritt {i:02d}"}) for i in range(20))
    )
    assert all(a["ok"] for a in acks)
    await watcher.until_view(FLOOR, lambda v: v.members[MIA]["text"] == "Schritt 19", timeout=5)
    texts = [d["text"] for f in watcher.pending_events("floor.diffs") for d in f["diffs"] if d["type"] == "status"]
    assert texts == [f"Schritt {i:02d}" for i in range(20)]


async def test_a_room_call_spans_nodes_with_real_aiortc_peers(cluster: Cluster) -> None:
    lounge = "projekt-lounge"
    watcher = await cluster.client(2, "sven.seefeld", "seefeld")
    await watcher.watch(FLOOR)
    anna_client = await cluster.client(0, "anna.altbach", "altbach")
    ben_client = await cluster.client(1, "ben.bergheim", "bergheim")
    outsider = await cluster.client(2, "tim.bergheim", "bergheim")
    for client in (anna_client, ben_client, outsider):
        await client.move(FLOOR, lounge)
    anna, ben = CallPeer(anna_client), CallPeer(ben_client)
    try:
        await anna.join_room_call(lounge)
        joined = await ben.join_room_call(lounge)
        call_id = joined["call"]["call_id"]
        await anna.wait_connected(BEN)
        await ben.wait_connected(ANNA)
        await anna.send(BEN, "Hallo von Knoten 0")
        assert await ben.receive(ANNA) == "Hallo von Knoten 0"
        await ben.send(ANNA, "Antwort von Knoten 1")
        assert await anna.receive(BEN) == "Antwort von Knoten 1"
        # A watcher on a third node sees both in the call.
        await watcher.until_view(FLOOR, lambda v: all(
            v.members.get(p, {}).get("in_call") == call_id for p in (ANNA, BEN)), timeout=5)
        # Someone outside the call, on another node, relays nothing to its members.
        refused = await outsider.call("call.signal", {"call_id": call_id, "to": ANNA, "kind": "offer",
                                                      "data": {"sdp": "v=0"}})
        assert refused["error"]["code"] == "not_in_call"
        await ben.leave()
        update = await anna_client.next_event("call.updated", lambda c: c["members"] == [ANNA], timeout=5)
        assert update["call_id"] == call_id
        await watcher.until_view(FLOOR, lambda v: "in_call" not in v.members[BEN], timeout=5)
    finally:
        for peer in (anna, ben):
            await peer.close()
    assert [e for p in (anna, ben) for e in p.errors] == []
    assert outsider.pending_events("call.signal") == []


async def test_a_ring_answered_on_two_nodes_at_once_has_one_outcome(cluster: Cluster) -> None:
    caller = await cluster.client(0, "mia.altbach", "altbach")
    phone = await cluster.client(1, "jonas.lindenau", "lindenau")  # the callee's two devices,
    laptop = await cluster.client(2, "jonas.lindenau", "lindenau")  # on two other nodes
    await caller.move(FLOOR)
    await phone.move(FLOOR)
    for round_no in range(10):
        ring = (await caller.request("call.ring", {"person": JONAS}))["ring"]
        for device in (phone, laptop):
            await device.next_event("call.ring", lambda r, i=ring["ring_id"]: r["ring"]["ring_id"] == i, timeout=5)
        if round_no == 0:  # the shared store says why a second ring conflicts, as one node does
            again = await caller.call("call.ring", {"person": JONAS})
            assert (again["error"]["code"], again["error"]["reason"]) == ("conflict", "already_ringing")
        accept_first = round_no % 2 == 0
        acks = await asyncio.gather(
            phone.call("call.answer", {"ring_id": ring["ring_id"], "accept": accept_first}),
            laptop.call("call.answer", {"ring_id": ring["ring_id"], "accept": not accept_first}),
        )
        winners = [a for a in acks if a["ok"]]
        assert len(winners) == 1, acks
        assert [a["error"]["code"] for a in acks if not a["ok"]] == ["ring_resolved"]
        outcome = winners[0]["outcome"]["outcome"]
        for client in (caller, phone, laptop):  # every device, on every node, hears the same outcome
            seen = await client.next_event(
                "call.ring_outcome", lambda o, i=ring["ring_id"]: o["ring_id"] == i, timeout=5)
            assert (seen["outcome"], seen["by"], seen["caller_id"]) == (outcome, JONAS, MIA)
        if outcome == "accepted":
            assert winners[0]["call"]["members"] == [MIA, JONAS]
            again = await caller.call("call.ring", {"person": JONAS})
            assert (again["error"]["code"], again["error"]["reason"]) == ("conflict", "already_in_call")
            await caller.request("call.leave")
            await phone.next_event("call.updated", lambda c: c["ended"], timeout=5)


async def test_the_same_user_id_of_two_towns_on_two_nodes_is_two_people(cluster: Cluster) -> None:
    watcher = await cluster.client(2, "watcher.seefeld", "seefeld")
    await watcher.watch(FLOOR)
    altbach = await cluster.client(0, "m.mueller", "altbach")
    lindenau = await cluster.client(1, "m.mueller", "lindenau")
    await altbach.move(FLOOR, "projekt-lounge")
    await lindenau.move(FLOOR)
    await altbach.set_status("busy", "Altbach")
    await watcher.until_view(FLOOR, lambda v: v.members.get("altbach/m.mueller", {}).get("text") == "Altbach"
                             and "lindenau/m.mueller" in v.members, timeout=5)
    assert watcher.views[FLOOR].members["lindenau/m.mueller"]["status"] == "available"
    ring = (await watcher.request("call.ring", {"person": "lindenau/m.mueller"}))["ring"]
    heard = await lindenau.next_event("call.ring", timeout=5)
    assert heard["ring"]["ring_id"] == ring["ring_id"]
    await watcher.request("call.cancel", {"ring_id": ring["ring_id"]})
    await altbach.disconnect()  # gone after the grace period; Lindenau's person stays
    await watcher.until_view(FLOOR, lambda v: "altbach/m.mueller" not in v.members, timeout=10)
    assert "lindenau/m.mueller" in watcher.views[FLOOR].members
    assert altbach.pending_events("call.ring") == []
