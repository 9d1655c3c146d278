"""The fast broadcast path: frames written once per watcher, slow clients cut off,
long-polling clients still served through Socket.IO."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlparse

from prometheus_client.parser import text_string_to_metric_families

from presence_server import metrics
from presence_server.diffs import DiffsText, FloorDiff, floor_diffs_json, floor_diffs_payload
from presence_server.fanout import encode_event_frame, encode_json_event_frame
from rooms.person import PersonId
from signalling.client import OfficeClient
from tests.conftest import OfficeServer, StartServer
from tests.support.rawws import StalledClient

FLOOR = "projekt"
ANNA = "altbach/anna.altbach"


def counter(name: str) -> float:
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return 0.0


def test_an_event_frame_is_a_websocket_text_frame_with_a_socketio_event() -> None:
    small = encode_event_frame("floor.diffs", {"floor_id": "f", "diffs": []})
    assert small[0] == 0x81 and small[1] == len(small) - 2
    assert json.loads(small[4:]) == ["floor.diffs", {"floor_id": "f", "diffs": []}]
    assert small[2:4] == b"42"
    large = encode_event_frame("floor.diffs", {"x": "y" * 70_000})
    assert large[1] == 127 and int.from_bytes(large[2:10], "big") == len(large) - 10


def test_a_floor_frame_is_encoded_once_and_equals_what_python_socketio_would_send() -> None:
    ours = FloorDiff("f", 4, "status", {"person": "altbach/anna", "status": "busy", "text": "Grüße"})
    # Another node's diffs as its floor script published them (cjson leaves UTF-8 unescaped).
    theirs = DiffsText("f", 5, 6, '[{"seq":5,"type":"left","person":"bergheim/ben"},'
                                  '{"seq":6,"type":"status","person":"x/y","status":"away","text":"Tschüss"}]')
    payload = floor_diffs_payload("f", [ours, theirs])
    assert [w["seq"] for w in payload["diffs"]] == [4, 5, 6]
    text = floor_diffs_json("f", [ours, theirs])
    assert json.loads(text) == payload
    assert theirs.text[1:-1] in text  # spliced as it came, not re-encoded
    # Typed diffs only: byte for byte python-socketio's own encoding.
    assert encode_json_event_frame("floor.diffs", floor_diffs_json("f", [ours])) == encode_event_frame(
        "floor.diffs", floor_diffs_payload("f", [ours])
    )
    assert floor_diffs_json("f", [DiffsText("f", 7, 6, "[]")]) == '{"floor_id":"f","diffs":[]}'


def test_a_remote_floor_removal_is_recognised_in_the_text_and_only_there() -> None:
    removed = DiffsText("f", 9, 9, '[{"seq":9,"type":"floor_removed"}]')
    teasing = json.dumps([{"seq": 9, "type": "status", "person": "a/b", "status": "busy",
                           "text": '"type":"floor_removed"'}], separators=(",", ":"))
    assert removed.removes_floor and not DiffsText("f", 9, 9, teasing).removes_floor


async def test_websocket_watchers_get_frames_through_the_direct_path(office: OfficeServer) -> None:
    before = counter("vo_fanout_deliveries_total")
    watchers = [await office.client(f"w{i}.seefeld", "seefeld") for i in range(5)]
    for watcher in watchers:
        await watcher.watch(FLOOR)
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(FLOOR)
    for watcher in watchers:
        await watcher.until_view(FLOOR, lambda v: ANNA in v.members)
    assert counter("vo_fanout_deliveries_total") - before >= 5


async def test_a_long_polling_watcher_is_served_through_socketio(office: OfficeServer) -> None:
    polling = OfficeClient(office.url, office.token("ben.bergheim", "bergheim"), transports=["polling"])
    office.clients.append(polling)
    await polling.connect()
    direct = await office.client("sven.seefeld", "seefeld")
    await polling.watch(FLOOR)
    await direct.watch(FLOOR)
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(FLOOR, "projekt-lounge")
    for client in (polling, direct):
        await client.until_view(FLOOR, lambda v: v.members.get(ANNA, {}).get("room_id") == "projekt-lounge")
    assert polling.sio.transport() == "polling"


async def test_a_client_that_stops_reading_is_disconnected_and_others_keep_their_frames(
    start_server: StartServer,
) -> None:
    office = await start_server(
        {
            "PRESENCE_FANOUT__MAX_SEND_BUFFER_BYTES": "65536",
            "PRESENCE_LIMITS__EVENTS_PER_SECOND": "100000",
            "PRESENCE_LIMITS__BURST": "100000",
            "PRESENCE_PRESENCE__STATUS_TEXT_MAX": "1000",  # big frames fill buffers sooner
        }
    )
    url = urlparse(office.url)
    # Blocking calls in a thread: the server runs on this test's event loop.
    stalled = await asyncio.to_thread(StalledClient, url.hostname, url.port)
    await asyncio.to_thread(stalled.socketio_connect, {"token": office.token("slow.seefeld", "seefeld")})
    await asyncio.to_thread(stalled.emit_with_ack, "floor.watch", {"floor_id": FLOOR})  # then it reads nothing
    healthy = await office.client("ben.bergheim", "bergheim")
    await healthy.watch(FLOOR)
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(FLOOR)
    before = counter("vo_slow_clients_disconnected_total")

    # ~1 KB frames, 16 requests in flight at a time. Bounded: at most ~50 MB.
    filler = "x" * 990
    n = 0
    for batch in range(3_000):
        texts = [f"{filler}{batch:05d}{i:02d}" for i in range(16)]
        await asyncio.gather(*(anna.set_status("busy", text) for text in texts))
        n = batch
        if counter("vo_slow_clients_disconnected_total") > before:
            break
    assert counter("vo_slow_clients_disconnected_total") == before + 1
    assert await asyncio.to_thread(stalled.is_closed_by_peer)
    stalled.close()
    # The healthy watcher saw the latest change, and the stalled one is gone from presence.
    last = f"{filler}{n:05d}15"
    await healthy.until_view(FLOOR, lambda v: v.members.get(ANNA, {}).get("text") == last, timeout=10)

    async def session_closed() -> None:  # engine.io notices the aborted socket
        while (await office.runtime.presence.store.member(PersonId("seefeld/slow.seefeld"))).sessions:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(session_closed(), timeout=10)
