"""A person is (municipality, user id): the same ``sub`` in two towns is two people,
and one town's identity provider can never act as another town's person.

Every test runs twice: against one server process, and against two server
processes sharing one real Redis (the two people sit on different nodes). Real
Socket.IO clients and real REST calls; nothing is mocked.

"Never reaches" is proven with a barrier, not a sleep: after the event that must
not arrive, something is sent on the same person's channel (a later ring), and
that arrives in order; anything misrouted would have arrived before it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from signalling.client import OfficeClient, RequestError
from tests.support.office import NODE_KINDS, Office, start_nodes, unique
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.slow

FLOOR = "projekt"  # the shared floor of the cooperation: Altbach, Bergheim and Lindenau all see it


@pytest.fixture(scope="module", params=NODE_KINDS)
def nodes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    with start_nodes(request, tmp_path_factory, logs="identity-logs", prefix="q") as started:
        yield started


@pytest.fixture
async def office(nodes: list[ServerProcess]) -> AsyncIterator[Office]:
    async with Office(nodes) as office:
        yield office


async def create_room(office: Office, room_id: str, owner: str, *, door: str, x: int) -> None:
    admin = office.token("admin", "altbach", roles=("staff", "admin"))
    status, body = await office.rest("POST", f"/api/v1/floors/{FLOOR}/rooms", admin, {
        "id": room_id, "name": room_id, "kind": "office", "rect": {"x": x, "y": 380, "w": 60, "h": 60},
        "door": door, "capacity": 4, "owners": [owner],
    })  # fmt: skip
    assert status == 201, body

    await office.until_known_everywhere(f"/api/v1/rooms/{room_id}", admin)  # made on node 0


async def ring_barrier(office: Office, target: OfficeClient, person: str, node: int) -> dict[str, Any]:
    """Ring ``person`` from a fresh caller and return the ring ``target`` receives:
    everything sent to ``target`` earlier has arrived by then (FIFO per person)."""
    caller = await office.client(node, unique("barrier"), "bergheim")
    await caller.move(FLOOR)
    ack = await caller.request("call.ring", {"person": person})
    ring = await target.next_event("call.ring", lambda e: e["ring"]["ring_id"] == ack["ring"]["ring_id"])
    return ring["ring"]  # type: ignore[no-any-return]


async def test_the_same_sub_in_two_towns_is_two_people_to_everyone(office: Office) -> None:
    sub = unique("m.mueller")
    skill = f"Naturschutz-{uuid.uuid4().hex[:4]}"
    alt = await office.client(0, sub, "altbach", name="Max Müller", skills=[skill])
    lin = await office.client(1, sub, "lindenau", name="Marie Müller", skills=[skill])
    assert (alt.person, lin.person) == (f"altbach/{sub}", f"lindenau/{sub}")
    await alt.move(FLOOR)
    await lin.move(FLOOR)

    watcher = await office.client(0, unique("ben"), "bergheim")
    view = await watcher.watch(FLOOR)
    await watcher.until_view(FLOOR, lambda v: {alt.person, lin.person} <= set(v.members))
    assert view.members[alt.person]["name"] == "Max Müller"
    assert view.members[lin.person]["name"] == "Marie Müller"
    assert (view.members[alt.person]["municipality"], view.members[lin.person]["municipality"]) == (
        "altbach", "lindenau")  # fmt: skip

    # Statuses are theirs alone.
    await lin.set_status("busy", "Termin")
    await watcher.until_view(FLOOR, lambda v: v.members[lin.person]["status"] == "busy")
    assert view.members[alt.person]["status"] == "available"

    # Badges and the finder: two people.
    reader = office.token(unique("reader"), "bergheim")
    badges = {}
    for town in ("altbach", "lindenau"):
        status, body = await office.rest("GET", f"/api/v1/municipalities/{town}/users/{sub}/badge", reader)
        assert status == 200, body
        badges[town] = body["badge"]
    assert (badges["altbach"]["name"], badges["lindenau"]["name"]) == ("Max Müller", "Marie Müller")
    assert (badges["altbach"]["status"], badges["lindenau"]["status"]) == ("available", "busy")
    status, body = await office.rest("GET", f"/api/v1/people/search?skill={skill}", reader)
    assert status == 200, body
    assert sorted(p["person"] for p in body["results"]) == sorted([alt.person, lin.person])

    # Occupancy counts two.
    status, body = await office.rest("GET", f"/api/v1/floors/{FLOOR}/occupancy", reader)
    hallway = [o["person"] for o in body["hallway"]]
    assert alt.person in hallway and lin.person in hallway

    # One leaving does not remove the other.
    await alt.disconnect()
    await watcher.until_view(FLOOR, lambda v: alt.person not in v.members)
    assert lin.person in view.members
    fresh = await office.client(1, unique("eva"), "bergheim")
    snapshot = await fresh.watch(FLOOR)
    assert lin.person in snapshot.members and alt.person not in snapshot.members


async def test_each_owns_only_their_own_room(office: Office) -> None:
    sub = unique("m.mueller")
    alt = await office.client(0, sub, "altbach")
    lin = await office.client(1, sub, "lindenau")
    alt_room, lin_room = f"r-alt-{sub[-6:]}", f"r-lin-{sub[-6:]}"
    await create_room(office, alt_room, alt.person, door="locked", x=20)
    await create_room(office, lin_room, lin.person, door="locked", x=100)

    assert (await alt.move(FLOOR, alt_room))["room_id"] == alt_room  # owners pass a locked door
    with pytest.raises(RequestError) as err:
        await alt.move(FLOOR, lin_room)
    assert err.value.code == "locked"
    assert (await lin.move(FLOOR, lin_room))["room_id"] == lin_room

    # Over REST: the door of the other town's room is not theirs to change.
    status, body = await office.rest("PATCH", f"/api/v1/rooms/{lin_room}", office.token(sub, "altbach"),
                                     {"door": "open"})  # fmt: skip
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = await office.rest("PATCH", f"/api/v1/rooms/{lin_room}", office.token(sub, "lindenau"),
                                     {"door": "closed"})  # fmt: skip
    assert status == 200 and body["room"]["door"] == "closed"
    assert body["room"]["owners"] == [lin.person]


async def test_a_knock_to_one_is_never_seen_or_answered_by_the_other(office: Office) -> None:
    sub = unique("m.mueller")
    alt = await office.client(0, sub, "altbach")
    lin = await office.client(1, sub, "lindenau")
    room = f"r-knock-{sub[-6:]}"
    await create_room(office, room, lin.person, door="closed", x=180)
    await alt.move(FLOOR)
    await lin.move(FLOOR, room)

    knocker = await office.client(0, unique("ben"), "bergheim")
    await knocker.move(FLOOR)
    knock = await knocker.knock(room, "Kurz?")
    incoming = await lin.next_event("knock.incoming", lambda k: k["knock_id"] == knock["knock_id"])
    assert incoming["knocker"]["person"] == knocker.person

    with pytest.raises(RequestError) as err:
        await alt.answer(knock["knock_id"], True)
    assert err.value.code == "forbidden"
    await ring_barrier(office, alt, alt.person, node=1)
    assert alt.pending_events("knock.incoming") == []

    outcome = (await lin.answer(knock["knock_id"], True))["outcome"]
    assert (outcome["outcome"], outcome["by"], outcome["knocker_id"]) == ("admitted", lin.person, knocker.person)


async def test_a_ring_to_one_never_reaches_the_other(office: Office) -> None:
    sub = unique("m.mueller")
    alt = await office.client(0, sub, "altbach")
    lin = await office.client(1, sub, "lindenau")
    await alt.move(FLOOR)
    await lin.move(FLOOR)
    caller = await office.client(1, unique("ben"), "bergheim")
    await caller.move(FLOOR)

    ack = await caller.request("call.ring", {"person": alt.person})
    assert ack["ring"]["callee_id"] == alt.person
    ring = (await alt.next_event("call.ring"))["ring"]
    assert ring["ring_id"] == ack["ring"]["ring_id"] and ring["caller"]["person"] == caller.person

    with pytest.raises(RequestError) as err:
        await lin.request("call.answer", {"ring_id": ring["ring_id"], "accept": True})
    assert err.value.code == "forbidden"
    later = await ring_barrier(office, lin, lin.person, node=0)
    assert [e["ring"]["ring_id"] for e in lin.pending_events("call.ring")] == []
    assert later["callee_id"] == lin.person

    answer = await alt.request("call.answer", {"ring_id": ring["ring_id"], "accept": True})
    assert answer["outcome"]["outcome"] == "accepted" and sorted(answer["call"]["members"]) == sorted(
        [alt.person, caller.person])  # fmt: skip

    # A second ring to someone already in a call with you says why, as a field.
    with pytest.raises(RequestError) as err:
        await caller.request("call.ring", {"person": alt.person})
    assert (err.value.code, err.value.error.get("reason")) == ("conflict", "already_in_call")


async def test_another_towns_token_with_a_persons_sub_can_do_nothing_as_that_person(office: Office) -> None:
    """Altbach's provider signs ``sub`` = the id of a Lindenau person: that is
    Altbach's person of that name, with none of the Lindenau person's rights."""
    sub = unique("lea.lindenau")
    lea = await office.client(0, sub, "lindenau", name="Lea Lindner", job_title="Bauamt")
    room = f"r-lea-{sub[-6:]}"
    await create_room(office, room, lea.person, door="closed", x=260)
    await lea.move(FLOOR, room)

    mallory = await office.client(1, sub, "altbach", name="Mallory", job_title="Bauamt")
    assert mallory.person == f"altbach/{sub}" != lea.person
    await mallory.move(FLOOR)

    # Owner rights: neither the door nor walking in.
    status, body = await office.rest("PATCH", f"/api/v1/rooms/{room}", mallory.token, {"door": "open"})
    assert (status, body["error"]["code"]) == (403, "forbidden")
    with pytest.raises(RequestError) as err:
        await mallory.move(FLOOR, room)
    assert err.value.code == "knock_required"

    # Knocks meant for Lea: not received, not answerable.
    knocker = await office.client(0, unique("ben"), "bergheim")
    await knocker.move(FLOOR)
    knock = await knocker.knock(room)
    await lea.next_event("knock.incoming", lambda k: k["knock_id"] == knock["knock_id"])
    with pytest.raises(RequestError) as err:
        await mallory.answer(knock["knock_id"], True)
    assert err.value.code == "forbidden"
    await ring_barrier(office, mallory, mallory.person, node=0)
    assert mallory.pending_events("knock.incoming") == []
    await lea.answer(knock["knock_id"], True)

    # Signalling into Lea's call, and TURN credentials in her name.
    joined = await lea.request("call.join", {"room_id": room})
    assert joined["ice_servers"][-1]["username"].endswith(":" + lea.person)
    with pytest.raises(RequestError) as err:
        await mallory.request("call.signal", {"call_id": joined["call"]["call_id"], "to": lea.person,
                                              "kind": "offer", "data": {"sdp": "x"}})  # fmt: skip
    assert err.value.code == "not_in_call"
    ring = await mallory.request("call.ring", {"person": knocker.person})
    assert ring["ice_servers"][-1]["username"].endswith(":" + mallory.person)

    # The finder shows two people, each with their own town.
    status, body = await office.rest("GET", "/api/v1/people/search?q=Bauamt&limit=50", knocker.token)
    found = {p["person"]: p["municipality"] for p in body["results"] if p["user_id"] == sub}
    assert found == {lea.person: "lindenau", mallory.person: "altbach"}


async def test_a_bare_user_id_is_refused_where_a_person_is_meant(office: Office) -> None:
    anna = await office.client(0, unique("anna"), "altbach")
    with pytest.raises(RequestError) as err:
        await anna.request("call.ring", {"person": "lea.lindenau"})
    assert (err.value.code, err.value.error["field"]) == ("invalid_payload", "person")
    admin = office.token("admin", "altbach", roles=("staff", "admin"))
    status, body = await office.rest("POST", f"/api/v1/floors/{FLOOR}/rooms", admin, {
        "name": "Bare", "kind": "office", "rect": {"x": 340, "y": 380, "w": 60, "h": 60}, "owners": ["lea.lindenau"],
    })  # fmt: skip
    assert (status, body["error"]["code"]) == (400, "invalid_payload")
    assert body["error"]["field"].startswith("owners")
