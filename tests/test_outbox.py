"""The outbox keeps order and groups a floor's burst into one frame."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from presence_server.diffs import FloorDiff
from presence_server.outbox import Outbox


class RecordingTransport:
    """A real Transport implementation that records instead of sending."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, Any]] = []

    async def send_diffs(self, floor_id: str, diffs: Sequence[FloorDiff]) -> None:
        await asyncio.sleep(0)  # yield, as a real transport does
        self.sent.append(("floor", floor_id, "floor.diffs", list(diffs)))

    async def send_person(self, user_id: str, event: str, payload: dict[str, Any]) -> None:
        self.sent.append(("user", user_id, event, payload))

    async def send_session(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        self.sent.append(("session", sid, event, payload))

    async def close_floor(self, floor_id: str) -> None:
        self.sent.append(("close", floor_id, "", {}))


class FailingFor(RecordingTransport):
    def __init__(self, broken_user: str) -> None:
        super().__init__()
        self.broken_user = broken_user

    async def send_person(self, user_id: str, event: str, payload: dict[str, Any]) -> None:
        if user_id == self.broken_user:
            raise ConnectionError("socket gone")
        await super().send_person(user_id, event, payload)


def diff(floor: str, seq: int) -> FloorDiff:
    return FloorDiff(floor, seq, "moved", {"user_id": "u", "from": None, "room_id": None})


async def test_a_burst_on_one_floor_goes_out_as_one_frame_in_sequence_order() -> None:
    transport = RecordingTransport()
    outbox = Outbox(transport)
    outbox.start()
    outbox.post_diffs([diff("a", 1), diff("b", 1)])
    outbox.post_diffs([diff("a", 2)])
    outbox.post_person("u", "knock.incoming", {"n": 1})
    outbox.post_person("u", "knock.outcome", {"n": 2})
    await asyncio.wait_for(outbox.flushed(), 1)
    floors = [(t[1], [d.seq for d in t[3]]) for t in transport.sent if t[0] == "floor"]
    assert floors == [("a", [1, 2]), ("b", [1])]
    assert [t[2] for t in transport.sent if t[0] == "user"] == ["knock.incoming", "knock.outcome"]
    await outbox.close()


async def test_changes_posted_during_a_flush_follow_in_a_later_frame() -> None:
    transport = RecordingTransport()
    outbox = Outbox(transport)
    outbox.start()
    outbox.post_diffs([diff("a", 1)])
    await asyncio.sleep(0)  # let the drain start; it yields inside send_diffs
    outbox.post_diffs([diff("a", 2)])
    await asyncio.wait_for(outbox.flushed(), 1)
    seqs = [d.seq for t in transport.sent for d in t[3]]
    assert seqs == [1, 2]
    await outbox.close()


async def test_close_delivers_what_is_pending() -> None:
    transport = RecordingTransport()
    outbox = Outbox(transport, window=10)  # a long window: only close() can flush in time
    outbox.start()
    outbox.post_diffs([diff("a", 1)])
    await outbox.close()
    assert len(transport.sent) == 1


async def test_one_failing_audience_does_not_cost_the_others_their_events() -> None:
    transport = FailingFor("broken")
    outbox = Outbox(transport)
    outbox.start()
    outbox.post_person("before", "knock.outcome", {})
    outbox.post_person("broken", "knock.outcome", {})
    outbox.post_person("after", "knock.outcome", {})
    outbox.post_diffs([diff("a", 1)])
    await asyncio.wait_for(outbox.flushed(), 1)
    assert [t[1] for t in transport.sent] == ["a", "before", "after"]
    outbox.post_person("later", "knock.outcome", {})  # and the drain task lives on
    await asyncio.wait_for(outbox.flushed(), 1)
    assert transport.sent[-1][1] == "later"
    await outbox.close()


async def test_a_closed_floor_is_unsubscribed_after_its_last_frame() -> None:
    transport = RecordingTransport()
    outbox = Outbox(transport)
    outbox.start()
    outbox.post_diffs([diff("a", 7)])
    outbox.post_floor_closed("a")
    await asyncio.wait_for(outbox.flushed(), 1)
    assert [(t[0], t[1]) for t in transport.sent] == [("floor", "a"), ("close", "a")]
    await outbox.close()
