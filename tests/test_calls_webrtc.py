"""Real aiortc peers set up calls through the server's signalling.

Media flows peer to peer on this machine; the server only relays offers and
answers between members of the call (docs/calls.md).
"""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from presence_server import metrics
from signalling.webrtc import CallPeer
from tests.conftest import OfficeServer

FLOOR, LOUNGE = "projekt", "projekt-lounge"
ANNA, BEN, LEA = "altbach/anna.altbach", "bergheim/ben.bergheim", "lindenau/lea.lindenau"


@pytest.fixture
async def peers(office: OfficeServer) -> AsyncIterator[list[CallPeer]]:
    """Call peers of three people from three towns, all in the lounge."""
    made: list[CallPeer] = []
    for user, municipality in (("anna.altbach", "altbach"), ("ben.bergheim", "bergheim"), ("lea.lindenau", "lindenau")):
        client = await office.client(user, municipality)
        await client.move(FLOOR, LOUNGE)
        made.append(CallPeer(client))
    yield made
    for peer in made:
        await peer.close()
    assert [e for p in made for e in p.errors] == []


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_two_peers_connect_talk_both_ways_and_hear_each_other(peers: list[CallPeer]) -> None:
    anna, ben, _ = peers
    setups = sample("vo_call_setup_seconds_count")
    await anna.join_room_call(LOUNGE)
    await ben.join_room_call(LOUNGE)
    await anna.wait_connected(BEN)
    await ben.wait_connected(ANNA)
    assert sample("vo_call_setup_seconds_count") == setups + 1  # one pair negotiated
    assert sample("vo_calls_active") == 1 and sample("vo_call_members") == 2
    await anna.send(BEN, "Hallo aus Altbach")
    assert await ben.receive(ANNA) == "Hallo aus Altbach"
    await ben.send(ANNA, "Moin aus Bergheim")
    assert await anna.receive(BEN) == "Moin aus Bergheim"
    assert await ben.wait_audio_frames(ANNA, 5) >= 5  # the synthetic track arrives
    assert await anna.wait_audio_frames(BEN, 5) >= 5
    anna.client.pending_events("call.updated")  # drop the updates so far (one said "anna alone" too)
    await ben.leave()
    await anna.client.next_event("call.updated", lambda c: c["members"] == [ANNA])
    assert anna.peers == []


async def test_three_peers_form_a_full_mesh(peers: list[CallPeer]) -> None:
    for peer in peers:
        await peer.join_room_call(LOUNGE)
    users = [ANNA, BEN, LEA]
    for peer, me in zip(peers, users):
        for other in users:
            if other != me:
                await peer.wait_connected(other)
        assert peer.peers == sorted(u for u in users if u != me)
    await peers[2].send(ANNA, "Dritte im Bunde")
    assert await peers[0].receive(LEA) == "Dritte im Bunde"


async def test_a_direct_call_rings_is_accepted_and_connects(office: OfficeServer) -> None:
    anna_client = await office.client("anna.altbach", "altbach")
    ben_client = await office.client("ben.bergheim", "bergheim")
    for client in (anna_client, ben_client):
        await client.move(FLOOR)
    anna, ben = CallPeer(anna_client), CallPeer(ben_client)
    try:
        ring = (await anna.ring(BEN))["ring"]
        assert (await ben_client.next_event("call.ring"))["ring"]["ring_id"] == ring["ring_id"]
        accepted = sample("vo_rings_total", outcome="accepted")
        await ben.accept(ring["ring_id"])
        assert sample("vo_rings_total", outcome="accepted") == accepted + 1
        await anna.wait_connected(BEN)
        await ben.wait_connected(ANNA)
        await anna.send(BEN, "Danke fürs Abnehmen")
        assert await ben.receive(ANNA) == "Danke fürs Abnehmen"
        assert await anna.wait_audio_frames(BEN, 5) >= 5
    finally:
        for peer in (anna, ben):
            await peer.close()
    assert anna.errors == [] and ben.errors == []
