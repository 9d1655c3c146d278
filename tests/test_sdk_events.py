"""The client's event intake without a server: the mailbox readers wait on, and
the handlers bots register (signalling/events.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from signalling.events import Handlers, Mailbox


async def test_a_reader_waiting_for_one_event_leaves_the_others_for_later_readers() -> None:
    box = Mailbox()
    waiting = asyncio.create_task(box.take("knock.outcome", lambda o: o["knock_id"] == "k2"))
    await asyncio.sleep(0)  # let it start waiting
    box.put("knock.outcome", {"knock_id": "k1"})
    box.put("knock.outcome", {"knock_id": "k2"})
    assert (await waiting)["knock_id"] == "k2"
    assert (await box.take("knock.outcome", lambda o: o["knock_id"] == "k1", timeout=0.1))["knock_id"] == "k1"


async def test_concurrent_readers_each_get_their_own_event_whatever_the_arrival_order() -> None:
    box = Mailbox()
    first = asyncio.create_task(box.take("call.ring_outcome", lambda o: o["ring_id"] == "a"))
    second = asyncio.create_task(box.take("call.ring_outcome", lambda o: o["ring_id"] == "b"))
    await asyncio.sleep(0)
    box.put("call.ring_outcome", {"ring_id": "b"})
    box.put("call.ring_outcome", {"ring_id": "a"})
    assert [(await first)["ring_id"], (await second)["ring_id"]] == ["a", "b"]
    assert box.drain("call.ring_outcome") == []  # each event went to exactly one reader


async def test_one_event_goes_to_the_longest_waiting_reader_only() -> None:
    box = Mailbox()
    readers = [asyncio.create_task(box.take("call.updated")) for _ in range(2)]
    await asyncio.sleep(0)
    box.put("call.updated", 1)
    box.put("call.updated", 2)
    assert [await r for r in readers] == [1, 2]


async def test_pending_means_what_arrived_since_the_last_event_a_reader_took() -> None:
    box = Mailbox()
    for n in range(4):
        box.put("floor.diffs", n)
    assert await box.take("floor.diffs", lambda n: n == 2) == 2  # passes over 0 and 1
    assert box.drain("floor.diffs") == [3]
    assert box.drain("floor.diffs") == []
    with pytest.raises(TimeoutError):  # the drain forgot the passed-over ones too
        await box.take("floor.diffs", lambda n: n == 0, timeout=0.01)


async def test_a_reader_that_times_out_loses_nothing_for_the_next() -> None:
    box = Mailbox()
    with pytest.raises(TimeoutError):
        await box.take("knock.incoming", lambda k: k == "never", timeout=0.01)
    box.put("knock.incoming", "k1")
    assert await box.take("knock.incoming", timeout=0.1) == "k1"


async def test_a_cancelled_reader_hands_its_event_back() -> None:
    box = Mailbox()
    reader = asyncio.create_task(box.take("call.ring"))
    await asyncio.sleep(0)
    box.put("call.ring", "r1")  # handed over...
    reader.cancel()  # ...but the reader is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert await box.take("call.ring", timeout=0.1) == "r1"


async def test_a_predicate_that_raises_fails_its_own_reader_only() -> None:
    box = Mailbox()
    broken = asyncio.create_task(box.take("x", lambda p: p["missing"]))
    fine = asyncio.create_task(box.take("x"))
    await asyncio.sleep(0)
    box.put("x", {})
    with pytest.raises(KeyError):
        await broken
    assert await fine == {}


async def test_the_mailbox_keeps_at_most_its_limit_per_event_and_counts_what_it_drops() -> None:
    box = Mailbox(limit=3)
    for n in range(5):
        box.put("floor.diffs", n)
    box.put("knock.outcome", "own limit")
    assert box.dropped == 2
    assert box.drain("floor.diffs") == [2, 3, 4]
    assert box.drain("knock.outcome") == ["own limit"]


async def test_handlers_sync_and_async_see_every_event_and_a_failing_one_kills_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handlers = Handlers()
    seen: list[tuple[str, int]] = []
    done = asyncio.Event()

    def plain(n: int) -> None:
        seen.append(("plain", n))

    async def slow(n: int) -> None:
        await asyncio.sleep(0)
        seen.append(("async", n))
        if n == 2:
            done.set()

    def broken(n: int) -> None:
        raise RuntimeError(f"bug {n}")

    for handler in (plain, broken, slow):
        handlers.add("knock.incoming", handler)
    with caplog.at_level(logging.ERROR, logger="signalling.events"):
        handlers.dispatch("knock.incoming", 1)
        handlers.dispatch("knock.incoming", 2)
        await asyncio.wait_for(done.wait(), 1)
    assert sorted(seen) == [("async", 1), ("async", 2), ("plain", 1), ("plain", 2)]
    assert [str(e) for e in handlers.errors] == ["bug 1", "bug 2"]
    assert "broken" in caplog.text and "knock.incoming" in caplog.text
    handlers.remove("knock.incoming", broken)
    handlers.dispatch("knock.incoming", 3)
    await handlers.close()
    assert len(handlers.errors) == 2


async def test_closing_cancels_handlers_still_running() -> None:
    handlers = Handlers()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def forever(_: object) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    handlers.add("call.ring", forever)
    handlers.dispatch("call.ring", None)
    await asyncio.wait_for(started.wait(), 1)
    await handlers.close()
    assert cancelled.is_set() and list(handlers.errors) == []


def test_a_handler_must_be_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        Handlers().add("call.ring", "not a function")  # type: ignore[arg-type]
