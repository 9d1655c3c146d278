"""Every background loop runs supervised: a crash is logged, counted in
``vo_loop_restarts_total{loop}`` and the loop starts again and keeps working.

One test per loop, each with a failure injected where the loop itself (not
one item it handles) would die: the first call of the step the loop repeats
raises, the next ones work. Then the loop's real work must still happen.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

import presence_server.supervise as supervise_module
import presence_server.tasks as tasks_module
from presence_server.backends import ClusterBackends
from presence_server.cluster.bus_redis import RedisBus
from presence_server.cluster.membership import Membership
from presence_server.cluster.node import CAMPUS_CHANNEL, ClusterNode
from presence_server.cluster.transport import ClusterTransport
from presence_server.diffs import DiffsText, FloorDiff
from presence_server.directory.service import DirectoryService
from presence_server.directory.store_memory import MemoryDirectoryStore
from presence_server.metrics import REGISTRY
from presence_server.outbox import Outbox
from presence_server.supervise import supervise, supervised
from presence_server.tasks import cancel_and_wait
from presence_server.webhooks import WebhookDispatcher, WebhookTarget
from presence_server.webhook_guard import DestinationPolicy
from rooms.actors import Actor, Profile, Role
from rooms.changes import CampusChange
from rooms.model import Floor, OwnerKind
from rooms.people import Person
from rooms.person import PersonId
from rooms.redis_link import RedisLink
from tests.conftest import OfficeServer, StartServer
from tests.support.portal import eventually
from tests.support.redis_server import RedisServer
from tests.support.webhook_receiver import Receiver

FLOOR = "projekt"
MEETING = "projekt-besprechung"  # closed door


class Crashes:
    """Stands in for the supervisor's logger: what it logged, with the exception."""

    def __init__(self) -> None:
        self.logged: list[tuple[str, dict[str, Any], BaseException | None]] = []

    def exception(self, event: str, **fields: Any) -> None:
        self.logged.append((event, fields, sys.exc_info()[1]))

    def of(self, loop: str) -> list[BaseException | None]:
        return [exc for event, fields, exc in self.logged if event == "loop_crashed" and fields["loop"] == loop]


@pytest.fixture
def crashes(monkeypatch: pytest.MonkeyPatch) -> Crashes:
    recorder = Crashes()
    monkeypatch.setattr(supervise_module, "log", recorder)
    return recorder


def restarts(loop: str) -> float:
    return REGISTRY.get_sample_value("vo_loop_restarts_total", {"loop": loop}) or 0.0


class Injected(RuntimeError):
    """The failure the tests inject."""


def fail_once(obj: Any, name: str, *, on_call: int = 1) -> list[int]:
    """Make ``obj.name`` raise :class:`Injected` on its ``on_call``-th call (1-based)
    and work otherwise. Returns a one-element list counting the calls."""
    real = getattr(obj, name)
    calls = [0]

    if asyncio.iscoroutinefunction(real):
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == on_call:
                raise Injected(name)
            return await real(*args, **kwargs)
    else:
        def wrapper(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            calls[0] += 1
            if calls[0] == on_call:
                raise Injected(name)
            return real(*args, **kwargs)

    setattr(obj, name, wrapper)
    return calls


async def crashed_once(crashes: Crashes, loop: str, before: float) -> None:
    """The loop's crash was counted once and logged with the injected error."""
    async def counted() -> bool:
        return restarts(loop) >= before + 1

    await eventually(counted)
    assert restarts(loop) == before + 1
    assert [type(exc) for exc in crashes.of(loop)] == [Injected]


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async def probe() -> bool:
        return check()

    await eventually(probe, timeout=timeout)


# ------------------------------------------------------------------ supervise


async def test_a_crashed_loop_is_logged_counted_and_restarted_after_a_growing_pause(crashes: Crashes) -> None:
    starts: list[float] = []

    async def flaky() -> None:
        starts.append(time.monotonic())
        if len(starts) <= 3:
            raise Injected(f"run {len(starts)}")
        await asyncio.Event().wait()  # then it keeps running

    before = restarts("flaky")
    task = supervised("flaky", flaky, backoff=0.05, cap=1.0)
    await until(lambda: len(starts) == 4)
    assert restarts("flaky") == before + 3 and len(crashes.of("flaky")) == 3
    pauses = [b - a for a, b in zip(starts, starts[1:])]
    assert pauses[0] >= 0.05 and pauses[1] >= 0.1 and pauses[2] >= 0.2  # doubling, so a hot failure cannot spin
    assert [fields["restart_in"] for _, fields, _ in crashes.logged] == [0.05, 0.1, 0.2]
    assert await cancel_and_wait(task) is None and task.cancelled()
    assert restarts("flaky") == before + 3  # stopping is not a crash


async def test_the_pause_never_exceeds_the_cap(crashes: Crashes) -> None:
    async def broken() -> None:
        raise Injected("always")

    task = supervised("broken", broken, backoff=0.01, cap=0.02)
    await until(lambda: len(crashes.of("broken")) >= 4)
    await cancel_and_wait(task)
    assert {fields["restart_in"] for _, fields, _ in crashes.logged[2:]} == {0.02}


async def test_a_loop_that_returns_is_done_and_not_restarted(crashes: Crashes) -> None:
    runs: list[int] = []

    async def once() -> None:
        runs.append(1)

    await asyncio.wait_for(supervise("once", once), 1)
    assert runs == [1] and crashes.logged == []


async def test_cancel_and_wait_surfaces_what_a_finished_task_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    logged: list[tuple[str, dict[str, Any]]] = []

    class Log:
        def error(self, event: str, **fields: Any) -> None:
            logged.append((event, fields))

    monkeypatch.setattr(tasks_module, "log", Log())

    async def fails() -> None:
        raise Injected("before anyone stopped it")

    task = asyncio.create_task(fails(), name="doomed")
    await asyncio.sleep(0)
    assert task.done()
    failure = await cancel_and_wait(task)
    assert isinstance(failure, Injected)
    assert logged == [("task_failed", {"task": "doomed", "exc_info": failure})]


# --------------------------------------------------------------- the loops


class RecordingTransport:
    def __init__(self) -> None:
        self.diffs: list[tuple[str, list[Any]]] = []
        self.closed: list[str] = []

    async def send_diffs(self, floor_id: str, diffs: Sequence[Any]) -> None:
        self.diffs.append((floor_id, list(diffs)))

    async def send_person(self, person: PersonId, event: str, payload: dict[str, Any]) -> None: ...

    async def send_session(self, sid: str, event: str, payload: dict[str, Any]) -> None: ...

    async def close_floor(self, floor_id: str) -> None:
        self.closed.append(floor_id)


def moved(seq: int, floor: str = "f") -> FloorDiff:
    return FloorDiff(floor, seq, "moved", {"person": "seefeld/u", "from": None, "room_id": None})


async def test_outbox_drain(crashes: Crashes) -> None:
    transport = RecordingTransport()
    outbox = Outbox(transport)
    fail_once(outbox, "_flush")
    before = restarts("outbox_drain")
    outbox.start()
    outbox.post_diffs([moved(1)])  # its first flush crashes the drain
    await crashed_once(crashes, "outbox_drain", before)
    await asyncio.wait_for(outbox.flushed(), 5)  # the restarted drain sends what was pending
    assert transport.diffs == [("f", [moved(1)])]
    outbox.post_diffs([moved(2)])
    await asyncio.wait_for(outbox.flushed(), 5)
    assert transport.diffs[-1] == ("f", [moved(2)])
    await outbox.close()


async def test_knock_expiry(start_server: StartServer, crashes: Crashes) -> None:
    office = await start_server({"PRESENCE_KNOCK__TIMEOUT_SECONDS": "1"})
    before = restarts("knock_expiry")
    fail_once(office.runtime.knocks.store, "due")
    lea = await office.client("lea.lindenau", "lindenau")
    await lea.move(FLOOR, MEETING)
    ben = await office.client("ben.bergheim", "bergheim")
    await ben.move(FLOOR)
    knock = await ben.knock(MEETING)
    await crashed_once(crashes, "knock_expiry", before)
    outcome = await ben.next_event("knock.outcome", timeout=10)
    assert (outcome["knock_id"], outcome["outcome"]) == (knock["knock_id"], "expired")


async def test_ring_expiry(start_server: StartServer, crashes: Crashes) -> None:
    office = await start_server({"PRESENCE_CALLS__RING_TIMEOUT_SECONDS": "1"})
    before = restarts("ring_expiry")
    fail_once(office.runtime.calls.store, "due")
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(FLOOR)
    ben = await office.client("ben.bergheim", "bergheim")
    await ben.move(FLOOR)
    ring = (await anna.request("call.ring", {"person": "bergheim/ben.bergheim"}))["ring"]
    await crashed_once(crashes, "ring_expiry", before)
    outcome = await anna.next_event("call.ring_outcome", timeout=10)
    assert (outcome["ring_id"], outcome["outcome"]) == (ring["ring_id"], "expired")


async def test_room_expiry(start_server: StartServer, crashes: Crashes) -> None:
    office = await start_server({"PRESENCE_CAMPUS__EXPIRY_SWEEP_SECONDS": "0.2"})
    campus = office.runtime.campus
    fail_once(campus, "expire_rooms")
    before = restarts("room_expiry")
    admin = Actor("admin.altbach", "altbach", "Admin", frozenset({Role.STAFF, Role.ADMIN}))
    await campus.update_room(admin, "altbach-teekueche", expires_at=time.time() + 0.5)
    await crashed_once(crashes, "room_expiry", before)
    await until(lambda: campus.room("altbach-teekueche") is None)


class StubPresence:
    def add_hooks(self, hooks: Any) -> None:
        pass


async def test_directory_sweep(crashes: Crashes) -> None:
    store = MemoryDirectoryStore()
    now = [1000.0]
    directory = DirectoryService(
        StubPresence(), store, retention_days=0, online_ttl=10, sweep_seconds=0.02, clock=lambda: now[0]  # type: ignore[arg-type]
    )
    await store.put(Person("anna", "altbach", "Anna", Profile(), 1000.0), ttl=10)
    calls = fail_once(store, "sweep")
    before = restarts("directory_sweep")
    directory.start()
    await crashed_once(crashes, "directory_sweep", before)
    now[0] = 2000.0  # the entry has expired: the next sweeps drop it
    await until(lambda: calls[0] >= 2 and not store._entries.get("altbach"))
    await directory.close()


class StubBus:
    node_id = "node-a"

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.channels: set[str] = set()

    async def start(self, on_message: Any, on_state: Any, on_echo: Any = None) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        self.published.extend(messages)

    async def subscribe(self, channel: str) -> None:
        self.channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)


class StubLocal(RecordingTransport):
    outbox = None

    async def watch(self, sid: str, floor_id: str) -> None: ...


@pytest.fixture
async def cluster_transport() -> AsyncIterator[tuple[ClusterTransport, StubLocal]]:
    local = StubLocal()
    transport = ClusterTransport(local, StubBus(), reorder_hold=0.05)  # type: ignore[arg-type]
    yield transport, local
    await transport.close()


async def watching(transport: ClusterTransport, floor_id: str = "f") -> None:
    await transport.watch("sid-1", floor_id)
    transport.watch_started(floor_id, 0)


async def test_gap_release(cluster_transport: tuple[ClusterTransport, StubLocal], crashes: Crashes) -> None:
    transport, local = cluster_transport
    fail_once(transport._order, "due")
    before = restarts("gap_release")
    transport.start()
    await watching(transport)
    await transport.send_diffs("f", [moved(2)])  # 1 never comes: the gap is given up after the hold
    await crashed_once(crashes, "gap_release", before)
    await until(lambda: local.diffs == [("f", [moved(2)])])


async def test_cluster_sender(cluster_transport: tuple[ClusterTransport, StubLocal], crashes: Crashes) -> None:
    transport, local = cluster_transport
    fail_once(transport._work, "get")
    before = restarts("cluster_sender")
    transport.start()
    await crashed_once(crashes, "cluster_sender", before)
    await watching(transport)
    remote = DiffsText("f", 1, 1, '[{"seq":1,"type":"left","person":"bergheim/ben"}]')
    transport.on_bus_message("f:f", {"floor_id": "f", "first": 1, "last": 1, "diffs_json": remote.text})
    await until(lambda: local.diffs == [("f", [remote])])


class StubCampus:
    def __init__(self) -> None:
        self.applied: list[CampusChange] = []

    def add_listener(self, listener: Any) -> None: ...

    async def apply_remote(self, change: CampusChange) -> None:
        self.applied.append(change)


class StubMembership:
    async def start(self, **handlers: Any) -> None: ...

    def on_fenced(self, handler: Any) -> None: ...

    def redis_state(self, connected: bool) -> None: ...

    async def close(self, *, handover_seconds: float) -> None: ...


async def test_cluster_campus_inbox(cluster_transport: tuple[ClusterTransport, StubLocal], crashes: Crashes) -> None:
    transport, _ = cluster_transport
    backends = ClusterBackends("node-a", StubBus(), object(), StubMembership())  # type: ignore[arg-type]
    campus = StubCampus()
    presence = type("StubPresenceService", (), {"reap_linger": nothing})()
    node = ClusterNode(
        backends, transport, campus, presence, on_state=lambda up: asyncio.sleep(0), recover=nothing  # type: ignore[arg-type]
    )
    fail_once(node._campus_inbox, "get")
    before = restarts("cluster_campus")
    await node.start()
    await crashed_once(crashes, "cluster_campus", before)
    change = CampusChange("floor_upserted", "anbau", Floor("anbau", "Anbau", OwnerKind.MUNICIPALITY, "altbach"))
    node._on_message(CAMPUS_CHANNEL, change.to_dict())
    await until(lambda: [c.floor_id for c in campus.applied] == ["anbau"])
    await node.close(handover_seconds=0)


class StubSessions:
    """The cluster side of a presence store: one dead node with one session."""

    node_id = "node-a"

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    async def node_sessions(self, node_id: str) -> list[tuple[PersonId, str]]:
        return [(PersonId("altbach/anna"), "sid-9")] if node_id == "node-dead" else []

    async def node_lingering(self, node_id: str) -> list[tuple[PersonId, float]]:
        return []

    async def forget_node(self, node_id: str) -> None:
        self.forgotten.append(node_id)


@pytest.fixture
async def link(redis_server: RedisServer) -> AsyncIterator[RedisLink]:
    link = RedisLink(redis_server.url)
    await link.open()
    yield link
    await link.close()


async def nothing(*args: Any) -> None: ...


async def test_cluster_heartbeat(link: RedisLink, redis_prefix: str, crashes: Crashes) -> None:
    membership = Membership(link, prefix=redis_prefix, node_id="node-a", sessions=StubSessions(),  # type: ignore[arg-type]
                            heartbeat=0.02, ttl=5, check=60)
    fail_once(membership, "_beat", on_call=2)
    before = restarts("cluster_heartbeat")
    await membership.start(on_dead_session=nothing, on_dead_linger=nothing)
    await crashed_once(crashes, "cluster_heartbeat", before)
    alive = f"{redis_prefix}{{node:node-a}}:alive"
    await link.client.delete(alive)

    async def beating_again() -> bool:
        return bool(await link.client.exists(alive))

    await eventually(beating_again)
    await membership.close(handover_seconds=0.1)


async def test_cluster_reaper(link: RedisLink, redis_prefix: str, crashes: Crashes) -> None:
    sessions = StubSessions()
    reaped: list[tuple[str, PersonId, str]] = []

    async def on_dead_session(node: str, person: PersonId, sid: str) -> None:
        reaped.append((node, person, sid))

    # A node never seen alive is reaped after it was watched absent for a full ttl.
    membership = Membership(link, prefix=redis_prefix, node_id="node-a", sessions=sessions,  # type: ignore[arg-type]
                            heartbeat=60, ttl=0.3, check=0.02)
    fail_once(membership, "_reap_dead")
    before = restarts("cluster_reaper")
    await membership.start(on_dead_session=on_dead_session, on_dead_linger=nothing)
    await crashed_once(crashes, "cluster_reaper", before)
    await link.client.sadd(f"{redis_prefix}nodes", "node-dead")  # listed, never alive
    await until(lambda: membership.reaped == ["node-dead"])
    assert reaped == [("node-dead", PersonId("altbach/anna"), "sid-9")] and sessions.forgotten == ["node-dead"]
    await membership.close(handover_seconds=0.1)


async def test_bus_reader(redis_server: RedisServer, redis_prefix: str, crashes: Crashes) -> None:
    received: list[tuple[str, dict[str, Any]]] = []

    def on_message(channel: str, body: dict[str, Any]) -> None:
        if not received and body.get("n") == 1:
            received.append(("crash", body))
            raise Injected("a handler bug")  # raised inside the reader: it ends the run
        received.append((channel, body))

    async def on_state(up: bool) -> None: ...

    reader = RedisBus(redis_server.url, node_id="reader", prefix=redis_prefix)
    writer = RedisBus(redis_server.url, node_id="writer", prefix=redis_prefix)
    before = restarts("bus_reader")
    await reader.start(on_message, on_state)
    await writer.start(lambda c, b: None, on_state)
    try:
        await reader.subscribe("f:x")
        await writer.publish([("f:x", {"n": 1})])
        await crashed_once(crashes, "bus_reader", before)
        await writer.publish([("f:x", {"n": 2})])
        await until(lambda: received[1:] == [("f:x", {"n": 2})])
    finally:
        await writer.close()
        await reader.close()


async def test_webhook_worker(crashes: Crashes) -> None:
    receiver = await Receiver({"hook": b"s" * 32}).start()
    try:
        target = WebhookTarget("altbach", "hook", receiver.url("hook"), b"s" * 32, frozenset({"presence"}), 10,
                               DestinationPolicy([ipaddress.ip_network("127.0.0.0/8")]))
        campus = StubCampusFloors()
        dispatcher = WebhookDispatcher(campus, [target], timeout=5, retries=0, backoff=0.1)  # type: ignore[arg-type]
        fail_once(dispatcher, "_work")
        loop = "webhook:altbach/hook"
        before = restarts(loop)
        await dispatcher.start()
        await crashed_once(crashes, loop, before)
        dispatcher.on_diffs([FloorDiff("altbach-eg", 1, "left", {"person": "altbach/anna"})])
        await receiver.until(lambda ds: len(ds) == 1)
        assert receiver.events("hook")[0]["type"] == "presence.left"
        await dispatcher.close()
    finally:
        await receiver.stop()


class StubCampusFloors:
    """Enough of the campus for routing: one floor of Altbach, no cooperations or projects."""

    cooperations: dict[str, Any] = {}
    projects: dict[str, Any] = {}

    def floor(self, floor_id: str) -> Floor | None:
        return Floor(floor_id, "EG", OwnerKind.MUNICIPALITY, "altbach") if floor_id == "altbach-eg" else None



async def test_tenant_refresh(crashes: Crashes) -> None:
    from presence_server.auth import TokenVerifier
    from presence_server.config import MunicipalityAuth
    from presence_server.origins import TownOrigins
    from presence_server.tenants.service import TenantService
    from presence_server.tenants.store import TenantRecord
    from presence_server.tenants.store_memory import MemoryTenantStore
    from rooms.campus import CampusService
    from rooms.store_memory import MemoryCampusStore
    from tests.conftest import make_settings

    store = MemoryTenantStore()
    campus = CampusService(MemoryCampusStore())
    await campus.start()
    verifier = TokenVerifier(make_settings().auth)
    tenants = TenantService(store, verifier=verifier, origins=TownOrigins([], {}), campus=campus, refresh_seconds=0.02)
    calls = fail_once(tenants, "refresh")
    before = restarts("tenant_refresh")
    await tenants.start()
    await crashed_once(crashes, "tenant_refresh", before)
    # Written behind the node's back (as another node would): the next rounds install it.
    conf = MunicipalityAuth(algorithm="RS256", jwks_url="https://idp.tannau.example/jwks")
    await store.create(TenantRecord("tannau", conf, 1.0))
    await until(lambda: calls[0] >= 2 and verifier.auth_for("tannau") == conf)
    await tenants.close()
    await campus.close()
