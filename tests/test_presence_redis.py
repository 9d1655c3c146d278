"""What the Redis presence store promises beyond the shared contract: one presence
across nodes, capacity held cluster-wide, diffs published in sequence order, the
same truth everywhere after races, and a key layout fit for Redis Cluster.

Two store objects with different node ids on one Redis and prefix are two nodes.
Races are run as exact interleavings: :class:`Pause` holds one store before its
n-th script call while the other node acts, then lets it finish. Real
redis-server, a unique prefix per test; no mocks, no sleeps.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
import redis.asyncio as aioredis

from presence_server.cluster.bus import decode_envelope
from presence_server.presence.store_redis import TOMBSTONE_MS, RedisPresenceStore
from presence_server.diffs import FloorDiff
from presence_server.presence.state import Status
from rooms.actors import Actor, Profile, Role
from rooms.errors import DomainError, ErrorCode, StoreForgot
from rooms.person import PersonId, person_id
from tests.support.redis_server import RedisServer
from tests.support.redis_slots import record_script_slots

ANNA = Actor("anna", "altbach", "Anna")
BEN = Actor("ben", "bergheim", "Ben")
A, B = ANNA.person_id, BEN.person_id
FLOORS = ("f1", "f2", "f3")


def u(i: int) -> PersonId:
    """The person of ``Actor(f"u{i}", "seefeld", ...)``."""
    return person_id("seefeld", f"u{i}")


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain client on the same server, to look at what the stores wrote."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=False)
    yield client
    await client.aclose()


@pytest.fixture
async def nodes(
    redis_server: RedisServer, redis_prefix: str
) -> AsyncIterator[tuple[RedisPresenceStore, RedisPresenceStore]]:
    a = RedisPresenceStore(redis_server.url, prefix=redis_prefix, node_id="node-a")
    b = RedisPresenceStore(redis_server.url, prefix=redis_prefix, node_id="node-b")
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


class Pause:
    """Holds a store before its n-th script call (0-based) until released."""

    def __init__(self, store: RedisPresenceStore, before_call: int) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self.calls: list[str] = []
        run = store._run

        async def paused(script: str, keys: list[str], args: list[Any]) -> Any:
            self.calls.append(script)
            if len(self.calls) == before_call + 1:
                self.reached.set()
                await self.release.wait()
            return await run(script, keys, args)

        store._run = paused  # type: ignore[method-assign]


async def interleave(first: Awaitable[Any], pause: Pause, second: Awaitable[Any]) -> tuple[Any, Any]:
    """Run ``first`` until ``pause`` holds it (or it ends), all of ``second``, then the rest of ``first``."""
    task = asyncio.ensure_future(first)
    reached = asyncio.ensure_future(pause.reached.wait())
    await asyncio.wait({task, reached}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    reached.cancel()
    assert task.done() or pause.reached.is_set(), "first operation neither paused nor finished"
    try:
        other = await asyncio.wait_for(second, 5)
    finally:
        pause.release.set()
    return await asyncio.wait_for(task, 5), other


async def assert_converged(
    a: RedisPresenceStore, b: RedisPresenceStore, raw: aioredis.Redis, person: PersonId
) -> None:
    """Both nodes see the same member, every floor lists them exactly where the
    user's own record says, occupancy counts match the members, and the user's
    list of floors to clean holds nothing but where they are."""
    truth = await a.member(person)
    assert truth == await b.member(person)
    assert truth is not None
    for floor in FLOORS:
        seq_a, members = await a.snapshot(floor)
        assert (seq_a, members) == await b.snapshot(floor)
        listed = [m for m in members if m["person"] == person]
        assert listed == ([truth.to_wire()] if truth.floor_id == floor else []), floor
        occupancy = await raw.hgetall(f"{a.prefix}{{f:{floor}}}:occupancy")
        counted = Counter(m["room_id"] for m in members if m["room_id"] is not None)
        assert {k.decode(): int(v) for k, v in occupancy.items()} == dict(counted)
    pending = await raw.hkeys(f"{a.prefix}{{u:{person}}}:floors")
    assert {f.decode() for f in pending} <= {truth.floor_id}


async def anna_on_two_nodes(a: RedisPresenceStore, b: RedisPresenceStore) -> None:
    await a.connect("a1", ANNA, 0)
    await b.connect("a2", ANNA, 0)
    await a.move(A, "f1", "r1", capacity=None)


# ------------------------------------------------------------- one presence
async def test_a_user_with_sessions_on_two_nodes_is_one_presence(nodes, raw) -> None:
    a, b = nodes
    await a.connect("a1", ANNA, 0)
    diffs, member = await b.connect("b-a2", ANNA, 0)
    assert diffs == [] and member.sessions == 2
    await a.move(A, "f", "r", capacity=None)
    await a.set_status("a1", Status.BUSY, "Sitzung", all_sessions=False)
    diffs, member = await b.set_status("b-a2", Status.DO_NOT_DISTURB, "", all_sessions=False)
    assert [(d.type, d.data["status"]) for d in diffs] == [("status", "do_not_disturb")]
    assert await a.member(A) == await b.member(A) == member

    diffs, since = await b.disconnect("b-a2", 5.0)  # the merged status falls back; nobody leaves
    assert since is None
    assert [(d.type, d.data) for d in diffs] == [("status", {"person": A, "status": "busy", "text": "Sitzung"})]
    after = await a.member(A)
    assert after is not None and (after.floor_id, after.room_id, after.sessions) == ("f", "r", 1)
    assert (await a.snapshot("f"))[1] == [after.to_wire()]
    await assert_converged(a, b, raw, A)


async def test_one_subject_of_two_towns_on_two_nodes_is_two_presences_with_keys_of_their_own(
    nodes, raw, redis_prefix: str
) -> None:
    a, b = nodes
    altbach, bergheim = Actor("m.mueller", "altbach", "M. Müller"), Actor("m.mueller", "bergheim", "M. Müller")
    _, first = await a.connect("ma1", altbach, 0)
    diffs, second = await b.connect("mb1", bergheim, 0)
    assert diffs == [] and first.sessions == second.sessions == 1  # not one presence with two sessions
    await a.move(altbach.person_id, "f1", "r1", capacity=None)
    await b.move(bergheim.person_id, "f1", "r1", capacity=None)
    await b.set_status("mb1", Status.BUSY, "", all_sessions=True)
    for person in (altbach.person_id, bergheim.person_id):
        assert await raw.hkeys(f"{redis_prefix}{{u:{person}}}:sessions") != []
        await assert_converged(a, b, raw, person)
    assert not await raw.exists(f"{redis_prefix}{{u:m.mueller}}:presence")  # a bare subject is never a key
    occupancy = await raw.hgetall(f"{redis_prefix}{{f:f1}}:occupancy")
    assert occupancy == {b"r1": b"2"}
    assert (await a.member(altbach.person_id)).status is Status.AVAILABLE


async def test_each_node_lists_its_own_sessions_for_the_reaper(nodes, raw, redis_prefix: str) -> None:
    a, b = nodes
    await a.connect("a1", ANNA, 0)
    await b.connect("b1", BEN, 0)
    await b.connect("b2", ANNA, 0)
    assert await raw.smembers(f"{redis_prefix}{{node:node-a}}:sessions") == {b"altbach/anna\x00a1"}
    assert await raw.smembers(f"{redis_prefix}{{node:node-b}}:sessions") == {
        b"bergheim/ben\x00b1", b"altbach/anna\x00b2"}
    await b.disconnect("b2", 1.0)
    assert await raw.smembers(f"{redis_prefix}{{node:node-b}}:sessions") == {b"bergheim/ben\x00b1"}
    with pytest.raises(ValueError):
        await a.connect("a1", ANNA, 0)


async def test_a_lingering_user_is_expired_by_any_node_and_reported_gone_once(nodes) -> None:
    a, b = nodes
    await a.connect("a1", ANNA, 0)
    await a.move(A, "f", None, capacity=None)
    _, since = await a.disconnect("a1", 7.5)
    assert since == 7.5
    results = await asyncio.gather(a.expire(A, 7.5), b.expire(A, 7.5))
    assert [d.type for diffs, _ in results for d in diffs] == ["left"]
    assert sum(gone is not None for _, gone in results) == 1
    assert await a.member(A) is None and await b.snapshot("f") == (2, [])


async def test_a_user_forgotten_and_back_enters_again_despite_their_tombstone(nodes) -> None:
    # Versions start from the server clock, so a new presence outranks the old one's tombstone.
    a, _ = nodes
    await a.connect("a1", ANNA, 0)
    await a.move(A, "f", "r", capacity=None)
    await a.disconnect("a1", 1.0)
    await a.expire(A, 1.0)
    await a.connect("a2", ANNA, 2.0)
    diffs, _ = await a.move(A, "f", "r", capacity=None)
    assert [(d.type, d.seq) for d in diffs] == [("joined", 3)]


async def test_member_rebuilds_an_equal_actor(nodes) -> None:
    a, b = nodes
    actor = Actor(
        "gert", "seefeld", "Gert Ö.", frozenset({Role.GUEST}), Profile(None, "Gast", ("Wasser", "Straßen"))
    )
    await a.connect("g1", actor, 0)
    await a.move(actor.person_id, "f", None, capacity=None)
    member = await b.member(actor.person_id)
    assert member is not None and member.actor == actor and member.actor.is_guest
    assert [m.actor for m in await b.occupants("f", None)] == [actor]
    admin = Actor("gert", "seefeld", "Gert Ö.", frozenset({Role.STAFF, Role.ADMIN}), actor.profile)
    assert [d.type for d in await b.update_actor(admin)] == ["joined"]  # like the memory store
    assert (await a.member(actor.person_id)).actor == admin


# ----------------------------------------------------------------- capacity
async def test_twenty_users_entering_a_room_of_five_through_two_nodes_get_five_places(nodes) -> None:
    a, b = nodes
    users = [Actor(f"u{i}", "seefeld", f"U{i}") for i in range(20)]
    for i, actor in enumerate(users):
        await (a if i % 2 else b).connect(f"s{i}", actor, 0)

    async def enter(i: int) -> bool:
        try:
            await (a if i % 2 else b).move(u(i), "f", "r", capacity=5)
            return True
        except DomainError as refused:
            assert refused.code is ErrorCode.ROOM_FULL
            return False

    results = await asyncio.gather(*(enter(i) for i in range(20)))
    assert sum(results) == 5
    inside = {m.person for m in await a.occupants("f", "r")}
    assert inside == {u(i) for i, ok in enumerate(results) if ok}
    assert {m.person for m in await b.occupants("f", "r")} == inside
    for i, ok in enumerate(results):
        member = await b.member(u(i))
        assert member is not None and (member.floor_id == "f") is ok


# ------------------------------------------------------------ pub/sub order
async def test_a_floors_diffs_are_published_in_sequence_order_as_the_stores_returned_them(
    nodes, raw, redis_prefix: str
) -> None:
    a, b = nodes
    pubsub = raw.pubsub()
    await pubsub.subscribe(f"{redis_prefix}f:f")
    confirmed = await pubsub.get_message(timeout=5)
    assert confirmed is not None and confirmed["type"] == "subscribe"

    returned: list[tuple[str, FloorDiff]] = []

    def keep(node: str, diffs: list[FloorDiff]) -> None:
        returned.extend((node, d) for d in diffs if d.floor_id == "f")

    async def walk(store: RedisPresenceStore, i: int) -> None:
        user = f"u{i}"
        _, _ = await store.connect(f"s{i}", Actor(user, "seefeld", f"U{i}"), 0)
        person = u(i)
        for floor, room in (("g", None), ("f", None), ("f", "r1"), ("f", "r2"), ("g", "r1"), ("f", None)):
            keep(store.node_id, (await store.move(person, floor, room, capacity=None))[0])
            keep(store.node_id, (await store.set_status(f"s{i}", Status.BUSY, f"{floor}{room}", all_sessions=True))[0])
        keep(store.node_id, [await store.campus_diff("f", "room", {"room": {"id": user, "name": None}})])

    await asyncio.gather(*(walk(a if i % 2 else b, i) for i in range(6)))
    evacuated, _ = await a.evacuate_room("f", "r1")
    keep("node-a", evacuated)

    received: list[tuple[str, dict[str, Any]]] = []
    while len(received) < len(returned):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        assert message is not None, f"only {len(received)} of {len(returned)} diffs arrived"
        node, body = decode_envelope(message["data"])
        assert set(body) == {"floor_id", "first", "last", "diffs_json"} and body["floor_id"] == "f"
        wires = json.loads(body["diffs_json"])
        assert [w["seq"] for w in wires] == list(range(body["first"], body["last"] + 1))  # the range it names
        received.extend((node, wire) for wire in wires)
    await pubsub.aclose()

    assert [wire["seq"] for _, wire in received] == list(range(1, len(returned) + 1))
    assert received == [(node, d.to_wire()) for node, d in sorted(returned, key=lambda nd: nd[1].seq)]
    assert {node for node, _ in received} == {"node-a", "node-b"}


async def test_evacuating_a_room_is_one_step_on_the_floor(nodes, raw, redis_prefix: str) -> None:
    a, b = nodes
    for i in range(3):
        await (a if i % 2 else b).connect(f"s{i}", Actor(f"u{i}", "seefeld", f"U{i}"), 0)
        await (a if i % 2 else b).move(u(i), "f", "r", capacity=None)
    pubsub = raw.pubsub()
    await pubsub.subscribe(f"{redis_prefix}f:f")
    assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
    diffs, moved = await a.evacuate_room("f", "r")
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    await pubsub.aclose()
    assert message is not None
    _, body = decode_envelope(message["data"])
    assert json.loads(body["diffs_json"]) == [d.to_wire() for d in diffs]  # all of them, in one publish
    assert (body["first"], body["last"]) == (4, 6)
    assert sorted(moved) == ["seefeld/u0", "seefeld/u1", "seefeld/u2"] and [d.seq for d in diffs] == [4, 5, 6]
    for i in range(3):
        assert (await b.member(u(i))).room_id is None


# ------------------------------------------------------------------- races
@pytest.mark.parametrize("pause_at", range(7))
async def test_a_move_between_floors_racing_a_status_change_from_another_node_converges(
    nodes, raw, pause_at: int
) -> None:
    a, b = nodes
    await anna_on_two_nodes(a, b)
    pause = Pause(a, pause_at)
    (diffs, before), _ = await interleave(
        a.move(A, "f2", "r2", capacity=None),
        pause,
        b.set_status("a2", Status.BUSY, "Termin", all_sessions=False),
    )
    assert (before.floor_id, before.room_id) == ("f1", "r1")
    member = await a.member(A)
    assert member is not None
    assert (member.floor_id, member.room_id, member.status, member.text) == ("f2", "r2", Status.BUSY, "Termin")
    await assert_converged(a, b, raw, A)


@pytest.mark.parametrize("pause_at", range(3))
async def test_a_status_change_racing_a_move_from_another_node_converges(nodes, raw, pause_at: int) -> None:
    a, b = nodes
    await anna_on_two_nodes(a, b)
    pause = Pause(b, pause_at)
    await interleave(
        b.set_status("a2", Status.AWAY, "Mittag", all_sessions=True),
        pause,
        a.move(A, "f2", None, capacity=None),
    )
    member = await b.member(A)
    assert member is not None and (member.floor_id, member.status, member.text) == ("f2", Status.AWAY, "Mittag")
    await assert_converged(a, b, raw, A)


@pytest.mark.parametrize("pause_at", range(7))
@pytest.mark.parametrize("other", ["move", "move_back", "leave_floor", "set_status_all"])
async def test_two_changes_of_one_user_on_two_nodes_converge(nodes, raw, pause_at: int, other: str) -> None:
    a, b = nodes
    await anna_on_two_nodes(a, b)
    second = {
        "move": lambda: b.move(A, "f3", "r3", capacity=None),
        "move_back": lambda: b.move(A, "f1", "r3", capacity=None),
        "leave_floor": lambda: b.leave_floor(A),
        "set_status_all": lambda: b.set_status("a2", Status.DO_NOT_DISTURB, "", all_sessions=True),
    }[other]()
    await interleave(a.move(A, "f2", "r2", capacity=None), Pause(a, pause_at), second)
    member = await a.member(A)
    assert member is not None
    if other == "set_status_all":
        assert (member.floor_id, member.status) == ("f2", Status.DO_NOT_DISTURB)
    else:  # the later of the two wins, whichever it was
        assert member.floor_id in {"f2", {"move": "f3", "move_back": "f1"}.get(other)}
    await assert_converged(a, b, raw, A)


@pytest.mark.parametrize("pause_at", range(2))
async def test_of_two_status_changes_on_two_nodes_the_floor_shows_the_later(nodes, raw, pause_at: int) -> None:
    a, b = nodes
    await anna_on_two_nodes(a, b)
    await interleave(
        b.set_status("a2", Status.BUSY, "alt", all_sessions=False),
        Pause(b, pause_at),
        a.set_status("a1", Status.BUSY, "neu", all_sessions=False),
    )
    # Paused before its user script, B's change is the later one; after it, A's.
    assert (await a.member(A)).text == ("alt" if pause_at == 0 else "neu")
    await assert_converged(a, b, raw, A)


@pytest.mark.parametrize("pause_at", range(6))
async def test_a_move_within_a_floor_racing_a_status_change_never_shows_the_old_status_again(
    nodes, raw, pause_at: int
) -> None:
    a, b = nodes
    await anna_on_two_nodes(a, b)
    (moved, _), (changed, _) = await interleave(
        a.move(A, "f1", "r2", capacity=None),
        Pause(a, pause_at),
        b.set_status("a2", Status.BUSY, "Termin", all_sessions=False),
    )
    shown = [
        (view["status"], view["text"])
        for d in sorted(moved + changed, key=lambda d: d.seq)
        if d.type in ("status", "joined")
        for view in [d.data if d.type == "status" else d.data["member"]]
    ]
    assert shown == [("busy", "Termin")]
    await assert_converged(a, b, raw, A)


async def test_a_move_cut_off_after_entering_is_cleaned_up_though_another_cleanup_raced_it(nodes, raw) -> None:
    # A moves anna f1 -> f2 and stops before pruning; meanwhile B's move back to
    # f1 enters f1 and its node dies before committing. A's prune must not forget
    # f1, or nobody would take anna off it again.
    a, b = nodes
    await anna_on_two_nodes(a, b)
    pause_a, pause_b = Pause(a, 4), Pause(b, 2)
    task_a = asyncio.ensure_future(a.move(A, "f2", None, capacity=None))
    await asyncio.wait_for(pause_a.reached.wait(), 5)
    task_b = asyncio.ensure_future(b.move(A, "f1", "r3", capacity=None))
    await asyncio.wait_for(pause_b.reached.wait(), 5)
    task_b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task_b
    pause_a.release.set()
    await asyncio.wait_for(task_a, 5)
    assert A in [m["person"] for m in (await a.snapshot("f1"))[1]]  # the dead node's entry

    await a.leave_floor(A)
    await assert_converged(a, b, raw, A)
    assert (await a.snapshot("f1"))[1] == [] and (await a.snapshot("f2"))[1] == []


async def test_a_move_cut_off_between_its_scripts_is_repaired_by_the_next_location_change(
    nodes, raw, redis_prefix: str
) -> None:
    # The node dies after f_enter and before u_move_commit: the target floor
    # lists anna, her own record does not. Her next move cleans up after it.
    a, b = nodes
    await anna_on_two_nodes(a, b)
    pause = Pause(a, 2)
    task = asyncio.ensure_future(a.move(A, "f2", "r2", capacity=None))
    await asyncio.wait_for(pause.reached.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [m["person"] for m in (await b.snapshot("f2"))[1]] == [A]
    assert (await b.member(A)).floor_id == "f1"

    await b.move(A, "f3", None, capacity=None)
    await assert_converged(a, b, raw, A)
    assert (await b.snapshot("f2"))[1] == [] and (await b.member(A)).floor_id == "f3"


async def test_a_room_a_cut_off_move_already_counts_the_user_in_does_not_refuse_them(nodes, raw) -> None:
    a, b = nodes
    await anna_on_two_nodes(a, b)
    pause = Pause(a, 2)  # entered f2/r2 (capacity 1, now full with her), never committed
    task = asyncio.ensure_future(a.move(A, "f2", "r2", capacity=1))
    await asyncio.wait_for(pause.reached.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await b.move(A, "f2", "r2", capacity=1)  # she is the one inside: not full for her
    assert [m.person for m in await b.occupants("f2", "r2")] == [A]
    await assert_converged(a, b, raw, A)


async def test_evacuating_a_room_leaves_alone_who_walked_out_meanwhile(nodes, raw) -> None:
    a, b = nodes
    await anna_on_two_nodes(a, b)
    await b.connect("b1", BEN, 0)
    await b.move(B, "f1", "r1", capacity=None)
    pause = Pause(a, 0)  # evacuate has listed the occupants; anna walks to r2 first
    (diffs, moved), _ = await interleave(
        a.evacuate_room("f1", "r1"), pause, b.move(A, "f1", "r2", capacity=None)
    )
    assert moved == [B] and [(d.type, d.data["person"]) for d in diffs] == [("moved", B)]
    assert (await a.member(A)).room_id == "r2"
    await assert_converged(a, b, raw, A)


async def test_dropping_a_floor_supersedes_a_move_onto_it_still_in_flight(nodes, raw) -> None:
    a, b = nodes
    await anna_on_two_nodes(a, b)
    pause = Pause(a, 2)  # entered f2, not yet committed
    _, dropped = await interleave(a.move(A, "f2", "r2", capacity=None), pause, b.drop_floor("f2"))
    assert dropped == [A]
    member = await a.member(A)
    assert member is not None and member.floor_id == "f1"  # the drop was later: her old place stands
    assert (await b.snapshot("f2"))[1] == []
    await assert_converged(a, b, raw, A)


# ------------------------------------------------------------------- layout
# ------------------------------------------------------------ recovery
def anywhere(floor: str | None, room: str | None) -> tuple[str | None, str | None]:
    return floor, room


async def reap(survivor: RedisPresenceStore, node: str) -> None:
    """What the membership does with a dead node's sessions (no grace period)."""
    for person, sid in await survivor.node_sessions(node):
        _, since = await survivor.reap_session(node, person, sid, 5.0)
        if since is not None:
            await survivor.expire(person, since)
    await survivor.forget_node(node)


async def test_a_reaped_nodes_session_comes_back_once_with_its_status_and_location(nodes) -> None:
    a, b = nodes
    await a.connect("a1", ANNA, 0)
    await a.move(A, "f1", "r1", capacity=None)
    await a.set_status("a1", Status.BUSY, "Haushalt", all_sessions=False)
    await reap(b, "node-a")
    assert await b.member(A) is None
    with pytest.raises(StoreForgot):  # answered unavailable, never internal
        await a.set_status("a1", Status.AWAY, "", all_sessions=False)
    with pytest.raises(StoreForgot):  # not "not online": the user is online here
        await a.move(A, "f2", None, capacity=None)
    diffs, member = await a.restore("a1", ANNA, 6.0, place=anywhere)
    assert [d.type for d in diffs] == ["joined"]
    joined = diffs[0].data["member"]
    assert (joined["person"], joined["status"], joined["text"], joined["room_id"]) == (A, "busy", "Haushalt", "r1")
    assert member is not None and (member.floor_id, member.room_id, member.status) == ("f1", "r1", Status.BUSY)
    assert await a.restore("a1", ANNA, 7.0, place=anywhere) == ([], None)  # registered already: nothing twice
    _, occupants = await b.snapshot("f1")
    assert [m["person"] for m in occupants] == [A]
    assert await a.set_status("a1", Status.AVAILABLE, "", all_sessions=False)  # served again


async def test_a_restored_session_keeps_the_location_redis_still_holds(nodes) -> None:
    a, b = nodes
    await anna_on_two_nodes(a, b)  # a remembers f1/r1
    await b.move(A, "f2", None, capacity=None)  # a cannot know this one
    await reap(b, "node-a")
    diffs, member = await a.restore("a1", ANNA, 6.0, place=anywhere)
    assert member is not None and (member.floor_id, member.room_id, member.sessions) == ("f2", None, 2)
    assert diffs == []


async def test_a_removed_room_is_restored_as_its_floors_hallway(nodes) -> None:
    a, b = nodes
    await a.connect("a1", ANNA, 0)
    await a.move(A, "f1", "gone", capacity=None)
    await reap(b, "node-a")
    _, member = await a.restore("a1", ANNA, 6.0, place=lambda f, r: (f, None))
    assert member is not None and (member.floor_id, member.room_id) == ("f1", None)


async def test_after_redis_lost_everything_sessions_and_seqs_come_back(nodes, raw, redis_prefix: str) -> None:
    a, b = nodes
    await a.connect("a1", ANNA, 0)
    await b.connect("b1", BEN, 0)
    await a.move(A, "f1", "r1", capacity=None)
    await b.move(B, "f1", None, capacity=None)
    await a.leave_floor(A)
    await a.move(A, "f1", "r1", capacity=None)
    delivered, _ = await a.snapshot("f1")
    await raw.delete(*[k async for k in raw.scan_iter(match=f"{redis_prefix}*")])
    assert await a.raise_seq("f1", delivered) == delivered + 1
    assert await b.raise_seq("f1", delivered - 2) == delivered + 1  # never back
    diffs_a, _ = await a.restore("a1", ANNA, 9.0, place=anywhere)
    diffs_b, _ = await b.restore("b1", BEN, 9.0, place=anywhere)
    assert all(d.seq > delivered + 1 for d in diffs_a + diffs_b)
    seq, members = await a.snapshot("f1")
    assert seq == delivered + 3
    assert {m["person"]: m["room_id"] for m in members} == {A: "r1", B: None}
    assert await raw.hgetall(f"{redis_prefix}{{f:f1}}:occupancy") == {b"r1": b"1"}


async def exercise(a: RedisPresenceStore, b: RedisPresenceStore) -> None:
    """Every operation, so that every script runs."""
    await a.connect("a1", ANNA, 0)
    await b.connect("a2", ANNA, 0)
    await b.connect("b1", BEN, 0)
    await a.update_actor(Actor("anna", "altbach", "Dr. Anna"))
    await a.move(A, "f1", "r1", capacity=2)
    await b.set_status("a2", Status.BUSY, "x", all_sessions=True)
    await b.move(B, "f1", "r1", capacity=2)
    with pytest.raises(DomainError):
        await a.move(A, "f1", "r9", capacity=0)
    await a.campus_diff("f1", "room", {"room": {"id": "r1"}})
    await a.evacuate_room("f1", "r1")
    await a.move(A, "f2", None, capacity=None)
    await b.drop_floor("f1")
    await b.leave_floor(A)
    await b.disconnect("a2", 1.0)
    await b.disconnect("b1", 1.0)
    await b.expire(B, 1.0)
    await a.disconnect("a1", 2.0)
    await a.expire(A, 2.0)
    await a.raise_seq("f2", 0)


async def test_every_key_written_starts_with_the_prefix_and_carries_a_hash_tag(redis_server: RedisServer) -> None:
    # A database of its own, so that any key that appears was written by these stores.
    url = f"redis://127.0.0.1:{redis_server.port}/8"
    client = aioredis.Redis.from_url(url, decode_responses=False)
    await client.flushdb()
    a = RedisPresenceStore(url, prefix="layout:", node_id="node-a")
    b = RedisPresenceStore(url, prefix="layout:", node_id="node-b")
    await a.open()
    await b.open()
    try:
        await a.connect("c1", Actor("carl", "seefeld", "Carl"), 0)
        await b.connect("d1", Actor("dora", "seefeld", "Dora"), 0)
        await a.move(person_id("seefeld", "carl"), "g1", "r1", capacity=None)
        await b.move(person_id("seefeld", "dora"), "g1", None, capacity=None)
        await b.move(person_id("seefeld", "dora"), "g2", None, capacity=None)
        written = {k async for k in client.scan_iter(match="*")}
        tagged = re.compile(rb"^layout:\{(u|f|node):[^{}]+\}:[a-z_]+$")
        assert written and all(tagged.match(k) for k in written), written
        assert {k.split(b"}:")[1] for k in written} == {
            b"presence", b"sessions", b"floors", b"seq", b"members", b"occupancy", b"gone", b"gone_at", b"sids"
        }
        for name in (b"layout:{f:g1}:gone", b"layout:{f:g1}:gone_at"):  # tombstones do not outlive a minute
            assert 0 < await client.pttl(name) <= TOMBSTONE_MS
        await exercise(a, b)
        written = {k async for k in client.scan_iter(match="*")}
        assert all(tagged.match(k) for k in written), written
        # Nothing is kept of users who are gone.
        assert not any(k.startswith((b"layout:{u:altbach/anna}", b"layout:{u:bergheim/ben}")) for k in written)
    finally:
        await a.close()
        await b.close()
        await client.flushdb()
        await client.aclose()


async def test_no_script_touches_keys_of_two_slots(nodes) -> None:
    a, b = nodes
    ran = record_script_slots(a, b)
    await exercise(a, b)
    assert [(script, slots) for script, slots in ran if len(slots) != 1] == []
    assert {script for script, _ in ran} == set(a._scripts)  # every script was checked


async def test_open_and_close_are_idempotent_and_a_closed_store_says_so(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    store = RedisPresenceStore(redis_server.url, prefix=redis_prefix, node_id="n")
    await store.open()
    await store.open()
    await store.connect("s", ANNA, 0)
    await store.close()
    await store.close()
    with pytest.raises(RuntimeError, match="open"):
        await store.member(A)
