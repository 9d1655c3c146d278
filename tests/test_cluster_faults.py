"""Issue 13's faults with real processes: a node paused for two TTLs, Redis
outages of 10, 30 and 60 s, a Redis that comes back empty. Each test runs its
own redis-server and three server processes, stops every one of them, and
prints how long the cluster took to converge (docs/cluster.md quotes them).
After each fault every watcher's view must equal the REST occupancy of every
node (``tests/support/cluster_truth.py``), with nobody joined or left twice.

Every wait is on a condition with a generous bound: the machine is shared.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from signalling.client import OfficeClient
from signalling.floorview import FloorView
from tests.support.cluster_truth import until_views_tell_the_truth
from tests.support.processes import ServerProcess
from tests.support.redis_server import RedisServer
from tests.test_cluster import Cluster, token
from tests.test_cluster_outage import until_ready

pytestmark = pytest.mark.slow

FLOOR = "projekt"
ROOMS = ("projekt-lounge", "projekt-raum-digitales-rathaus", None)
STATUSES = ("busy", "away", "do_not_disturb", "available")
TTL = 5.0  # membership's default heartbeat TTL
ADMIN = token("lea.lindenau", "lindenau", roles=("staff", "admin"))

Expected = dict[str, tuple[str | None, str, str]]  # person -> (room, status, text)


def env_for(redis: RedisServer, grace: float) -> dict[str, str]:
    return {
        "PRESENCE_REDIS__URL": redis.url,
        "PRESENCE_REDIS__PREFIX": f"x{uuid.uuid4().hex[:8]}:",
        "PRESENCE_PRESENCE__GRACE_SECONDS": str(grace),
        "PRESENCE_LIMITS__EVENTS_PER_SECOND": "1000",
        "PRESENCE_LIMITS__BURST": "1000",
        "PRESENCE_LOG__LEVEL": "info",
    }


def summary(view: FloorView) -> Expected:
    return {p: (m.get("room_id"), m["status"], m["text"]) for p, m in view.members.items()}


async def until_views(clients: list[OfficeClient], expected: Expected, timeout: float) -> None:
    """Every client's view of the floor shows exactly ``expected``."""
    await asyncio.gather(*(c.until_view(FLOOR, lambda v: summary(v) == expected, timeout=timeout) for c in clients))


async def rest(node: ServerProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession(node.url, headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        async with http.request(method, path, json=body) as resp:
            return resp.status, await resp.json()


async def truth(node: ServerProcess) -> dict[str, Any]:
    status, body = await rest(node, "GET", f"/api/v1/floors/{FLOOR}")
    assert status == 200, body
    return body["snapshot"]  # type: ignore[no-any-return]


async def populate(users: list[OfficeClient]) -> Expected:
    """Each user walks onto the floor (a room or the hallway) with a status of its own."""
    expected: Expected = {}
    for i, user in enumerate(users):
        await user.move(FLOOR, ROOMS[i % 3])
        await user.set_status(STATUSES[i % 4], f"t{i}", scope="session")
        expected[user.person] = (ROOMS[i % 3], STATUSES[i % 4], f"t{i}")
    return expected


def diffs_of(client: OfficeClient, kind: str) -> Counter[str]:
    """How many ``kind`` diffs per person the client received (and consumed now)."""
    return Counter(
        d["member"]["person"] if kind == "joined" else d["person"]
        for frame in client.pending_events("floor.diffs") for d in frame["diffs"] if d["type"] == kind
    )


async def occupancy_counters(redis: RedisServer, prefix: str) -> dict[str, int]:
    client = aioredis.Redis.from_url(redis.url, decode_responses=True)
    try:
        return {room: int(n) for room, n in (await client.hgetall(f"{prefix}{{f:{FLOOR}}}:occupancy")).items()}
    finally:
        await client.aclose()


def logged(nodes: list[ServerProcess], event: str) -> int:
    return sum(Path(n.log_path).read_text().count(f'"{event}"') for n in nodes if n.log_path)


async def move_reaches_everyone(mover: OfficeClient, room: str, watchers: list[OfficeClient]) -> None:
    """``mover`` walks; every watcher receives that move as a diff (not just a later snapshot)."""
    person = mover.person
    for w in watchers:
        w.pending_events("floor.diffs")
    await mover.move(FLOOR, room)

    def has_move(frame: dict[str, Any]) -> bool:
        return any(d["type"] == "moved" and d["person"] == person and d["room_id"] == room for d in frame["diffs"])

    await asyncio.gather(*(w.next_event("floor.diffs", has_move, timeout=30) for w in watchers))


async def test_a_node_paused_for_two_ttls_comes_back_with_its_users_seen_once_by_everyone(tmp_path: Path) -> None:
    redis = RedisServer().start()
    env = env_for(redis, grace=30)  # a reaped node's users leave at once, not after the grace period
    nodes = [ServerProcess(env, log_path=tmp_path / f"node{i}.log").start() for i in range(3)]
    c = Cluster(nodes)
    try:
        watchers = [await c.client(i, f"watcher{i}.seefeld", "seefeld") for i in range(3)]  # watcher2: paused too
        for w in watchers:
            await w.watch(FLOOR)
        users = [await c.client(2, f"p{i:02}.bergheim", "bergheim") for i in range(20)]
        expected = await populate(users)
        # A survivor shares the lounge's call with one of them (users[0] is in the lounge).
        caller = await c.client(0, "caller.seefeld", "seefeld")
        await caller.move(FLOOR, "projekt-lounge")
        await caller.request("call.join", {"room_id": "projekt-lounge"})
        await users[0].request("call.join", {"room_id": "projekt-lounge"})
        pair = sorted([caller.person, users[0].person])
        await caller.next_event("call.updated", lambda call: call["members"] == pair, timeout=10)
        expected_all = {**expected, caller.person: ("projekt-lounge", "available", "")}
        await until_views(watchers, expected_all, timeout=30)
        for w in watchers:
            w.pending_events("floor.diffs")

        nodes[2].pause()
        paused = time.monotonic()
        await until_views(watchers[:2], {caller.person: expected_all[caller.person]}, timeout=40)  # reaped
        reaped_after = time.monotonic() - paused
        while time.monotonic() - paused < 2 * TTL:  # paused for two TTLs (longer if the reaping took longer)
            await asyncio.sleep(0.2)
        nodes[2].resume()
        resumed = time.monotonic()

        # Requests sent right away are refused "unavailable" while the node recovers, never "internal".
        early = await asyncio.gather(*(
            u.call("presence.status", {"status": "busy", "text": f"t{i}", "scope": "session"}, timeout=30)
            for i, u in enumerate(users[:4])
        ))
        assert all(a["ok"] or a["error"]["code"] == "unavailable" for a in early), early
        for i, answer in enumerate(early):
            if answer["ok"]:  # served after recovery: the view must show it
                person = users[i].person
                expected[person] = expected_all[person] = (expected[person][0], "busy", f"t{i}")
        await until_views(watchers, expected_all, timeout=60)
        recovered = time.monotonic() - resumed
        print(f"\nfault 2 (SIGSTOP {time.monotonic() - paused - recovered:.0f} s = 2 TTL): reaped after "
              f"{reaped_after:.1f} s; back in every view {recovered:.1f} s after SIGCONT")
        assert recovered < 10, recovered  # the bound
        # Back in the call it had joined through the paused node.
        await caller.next_event("call.updated", lambda call: call["members"] == pair, timeout=10)

        for w in watchers[:2]:  # each leave once, each return once
            frames = w.pending_events("floor.diffs")
            left = Counter(d["person"] for f in frames for d in f["diffs"] if d["type"] == "left")
            joined = Counter(d["member"]["person"] for f in frames for d in f["diffs"] if d["type"] == "joined")
            assert left == joined == Counter(list(expected)), (left, joined)
        # Every request they send now succeeds: a status and a walk each, no internal, no unavailable.
        for i, user in enumerate(users):
            answer = await user.call("presence.status", {"status": "available", "text": "", "scope": "session"})
            assert answer["ok"], answer
            room = ROOMS[(i + 1) % 3]
            answer = await user.call("presence.move", {"floor_id": FLOOR, "room_id": room})
            assert answer["ok"], answer
            expected[user.person] = expected_all[user.person] = (room, "available", "")
        await until_views(watchers, expected_all, timeout=30)
        told, _ = await until_views_tell_the_truth(watchers, [n.url for n in nodes], FLOOR, ADMIN, timeout=30)
        assert told.members == expected_all  # 21 people, nobody doubled, nobody missing
        counted = Counter(room for room, _, _ in expected_all.values() if room is not None)
        assert await occupancy_counters(redis, env["PRESENCE_REDIS__PREFIX"]) == dict(counted)
        assert logged(nodes[:2], "cluster_node_dead") == 1 and logged(nodes[2:], "cluster_node_rejoined") == 1
    finally:
        for client in c.clients:
            await client.disconnect()
        for node in nodes:
            node.stop()
        redis.cleanup()


async def outage(redis: RedisServer, nodes: list[ServerProcess], leaving: list[OfficeClient], *, seconds: float,
                 empty: bool) -> float:
    """Redis away for ``seconds`` while some users leave; back (with its data or
    ``empty``). Returns when it was started again."""
    redis.stop()
    stopped = time.monotonic()
    await until_ready(nodes, 503, timeout=30)
    for user in leaving:
        await user.disconnect()
    while time.monotonic() - stopped < seconds:  # longer than the TTL: every alive key expires
        await asyncio.sleep(0.2)
    redis.start(empty=empty)
    return time.monotonic()


async def test_redis_outages_of_10_30_and_60_s_reap_nobody_and_every_view_converges_within_10_s(
    tmp_path: Path,
) -> None:
    """Three outages in a row on one cluster (Redis with AOF), each longer than the
    heartbeat TTL: after each, no node was reaped, every view converges within 10 s
    of Redis returning and equals every node's REST occupancy, and a move made right
    after recovery reaches every watcher as a diff."""
    redis = RedisServer(appendonly=True).start()
    env = env_for(redis, grace=1)
    nodes = [ServerProcess(env, log_path=tmp_path / f"node{i}.log").start() for i in range(3)]
    urls = [n.url for n in nodes]
    c = Cluster(nodes)
    try:
        users = [await c.client(i % 3, f"u{i:02}.altbach", "altbach") for i in range(25)]
        for user in users:
            await user.watch(FLOOR)
        expected = await populate(users)
        await until_views(users, expected, timeout=30)
        staying = list(users)
        times: list[str] = []
        for round_no, seconds in enumerate((10, 30, 60)):
            leaving, staying = staying[-2:], staying[:-2]  # two people go while Redis is away
            for user in leaving:
                del expected[user.person]
            for user in staying:
                user.pending_events("floor.diffs")

            restarted = await outage(redis, nodes, leaving, seconds=seconds, empty=False)
            await until_ready(nodes, 200, timeout=60)
            await until_views(staying, expected, timeout=60)
            recovered = time.monotonic() - restarted
            times.append(f"{seconds} s: {recovered:.1f} s")
            print(f"\nfault 3 (Redis away {seconds} s, AOF): every view converged {recovered:.1f} s after Redis was back")
            assert recovered < 10, times  # the bound

            assert logged(nodes, "cluster_node_dead") == 0  # nobody was reaped
            for user in staying:
                assert not set(diffs_of(user, "left")) & set(expected)  # nobody staying ever left a view
            mover = staying[round_no]
            room = ROOMS[(round_no + 1) % 2]
            await move_reaches_everyone(mover, room, staying)
            expected[mover.person] = (room, *expected[mover.person][1:])
            told, _ = await until_views_tell_the_truth(staying, urls, FLOOR, ADMIN, timeout=30)
            assert told.members == expected
        print(f"\nfault 3, views converged after Redis was back: {'; '.join(times)}")
    finally:
        for client in c.clients:
            await client.disconnect()
        for node in nodes:
            node.stop()
        redis.cleanup()


async def test_a_redis_restarted_empty_is_rebuilt_from_what_the_nodes_hold(tmp_path: Path) -> None:
    redis = RedisServer(appendonly=True).start()  # started empty below all the same
    env = env_for(redis, grace=1)
    nodes = [ServerProcess(env, log_path=tmp_path / f"node{i}.log").start() for i in range(3)]
    c = Cluster(nodes)
    try:
        body = {"name": "Vor dem Verlust", "kind": "project", "rect": {"x": 640, "y": 360, "w": 120, "h": 120}}
        status, created = await rest(nodes[0], "POST", f"/api/v1/floors/{FLOOR}/rooms", body)
        assert status == 201, created
        room = created["room"]["id"]
        users = [await c.client(i % 3, f"u{i:02}.bergheim", "bergheim") for i in range(25)]
        for user in users:
            await user.watch(FLOOR)
        expected = await populate(users)
        await users[1].move(FLOOR, room)  # someone in the room made over REST
        expected[users[1].person] = (room, *expected[users[1].person][1:])
        await until_views(users, expected, timeout=30)
        staying, leaving = users[:20], users[20:]
        for user in leaving:
            del expected[user.person]
        seqs = {user.person: user.views[FLOOR].seq for user in staying}

        restarted = await outage(redis, nodes, leaving, seconds=2 * TTL, empty=True)
        await until_ready(nodes, 200, timeout=60)
        await until_views(staying, expected, timeout=60)  # the five who left are gone, everyone else is back
        recovered = time.monotonic() - restarted
        print(f"\nfault 4 (Redis back empty after {2 * TTL:.0f} s): every view converged "
              f"{recovered:.1f} s after Redis was back")

        assert all(user.views[FLOOR].seq > seqs[user.person] for user in staying)  # never backwards
        counted = Counter(r for r, _, _ in expected.values() if r is not None)
        assert await occupancy_counters(redis, env["PRESENCE_REDIS__PREFIX"]) == dict(counted)
        urls = [n.url for n in nodes]
        rebuilt, _ = await until_views_tell_the_truth(staying, urls, FLOOR, ADMIN, timeout=30)
        assert rebuilt.members == expected and room in rebuilt.rooms  # presence and campus, on every node
        await move_reaches_everyone(staying[0], room, staying)
        expected[staying[0].person] = (room, *expected[staying[0].person][1:])
        moved, _ = await until_views_tell_the_truth(staying, urls, FLOOR, ADMIN, timeout=30)
        assert moved.members == expected

        # The room made over REST is in Redis again: a node started now loads it.
        for client in c.clients:
            if client.url == nodes[2].url:
                await client.disconnect()
        nodes[2].stop()
        nodes[2].start(timeout=60)
        assert room in {r["id"] for r in (await truth(nodes[2]))["rooms"]}
        fresh = OfficeClient(nodes[2].url, token("fresh.seefeld", "seefeld"))
        c.clients.append(fresh)
        await fresh.connect()
        assert room in (await fresh.watch(FLOOR)).rooms
    finally:
        for client in c.clients:
            await client.disconnect()
        for node in nodes:
            node.stop()
        redis.cleanup()
