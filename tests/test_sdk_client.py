"""The Python client as a bot uses it, against a real server: event handlers,
waiting without losing events, typed results (signalling/client.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import pytest

from signalling.client import VIEW_DIFF, Diff, Knock, KnockOutcome, Location, OfficeClient, Presence, RequestError
from signalling.webrtc import CallPeer
from tests.conftest import OfficeServer

FLOOR, MEETING, LOUNGE = "projekt", "projekt-besprechung", "projekt-lounge"  # MEETING: closed, owner lea
BEN, LEA = "bergheim/ben.bergheim", "lindenau/lea.lindenau"


async def lea_inside_ben_outside(office: OfficeServer) -> tuple[OfficeClient, OfficeClient]:
    lea = await office.client("lea.lindenau", "lindenau")
    await lea.move(FLOOR, MEETING)
    ben = await office.client("ben.bergheim", "bergheim")
    await ben.move(FLOOR)
    return lea, ben


async def test_handlers_get_typed_events_and_a_failing_handler_kills_nothing(
    office: OfficeServer, caplog: pytest.LogCaptureFixture
) -> None:
    lea, ben = await lea_inside_ben_outside(office)
    knocks: asyncio.Queue[Knock] = asyncio.Queue()

    @lea.on("knock.incoming")
    async def on_knock(knock: Knock) -> None:
        await knocks.put(knock)

    def broken(_: Knock) -> None:
        raise RuntimeError("a bug in the bot")

    lea.on("knock.incoming", broken)
    with caplog.at_level(logging.ERROR, logger="signalling.events"):
        first = await ben.knock(MEETING, "Kurze Frage")
        incoming = await asyncio.wait_for(knocks.get(), 5)
        assert (incoming.knock_id, incoming.knocker.person, incoming.message) == (first.knock_id, BEN, "Kurze Frage")
        await lea.answer(first.knock_id, admit=False)
        await ben.move(FLOOR)  # still connected and served after the handler failed
        lea.off("knock.incoming", broken)
    assert [str(e) for e in lea.handler_errors] == ["a bug in the bot"]
    assert "a bug in the bot" in caplog.text


async def test_waiting_for_one_outcome_keeps_the_others_for_whoever_wants_them(office: OfficeServer) -> None:
    """The bug a polling bot had: next_event with a predicate discarded every other
    event it read while waiting."""
    lea, ben = await lea_inside_ben_outside(office)
    jonas = await office.client("jonas.lindenau", "lindenau")
    await jonas.move(FLOOR)
    knock_ben = await ben.knock(MEETING)
    knock_jonas = await jonas.knock(MEETING)
    # Two readers of lea's outcomes at once, each waiting for its own knock.
    def knock_id_is(knock_id: str) -> Callable[[dict[str, Any]], bool]:
        return lambda outcome: bool(outcome["knock_id"] == knock_id)

    waits = [
        asyncio.create_task(lea.next_event("knock.outcome", knock_id_is(k.knock_id))) for k in (knock_jonas, knock_ben)
    ]
    await lea.answer(knock_ben.knock_id, admit=True)
    await lea.answer(knock_jonas.knock_id, admit=False)
    for_jonas, for_ben = await asyncio.gather(*waits)
    assert (for_jonas["outcome"], for_ben["outcome"]) == ("declined", "admitted")
    # Ben waits for jonas's outcome first (he is inside and hears it); his own stays for later.
    seen = await ben.expect("knock.outcome", lambda o: o.knock_id == knock_jonas.knock_id)
    own: KnockOutcome = await ben.expect("knock.outcome", lambda o: o.knock_id == knock_ben.knock_id, timeout=1)
    assert (seen.outcome, own.outcome, own.by) == ("declined", "admitted", LEA)


async def test_view_diffs_report_each_change_once_in_order(office: OfficeServer) -> None:
    watcher = await office.client("sven.seefeld", "seefeld")
    diffs: list[Diff] = []
    status_seen = asyncio.Event()

    def record(diff: Diff) -> None:  # a plain function works as well as a coroutine
        diffs.append(diff)
        if diff.type == "status":
            status_seen.set()

    watcher.on(VIEW_DIFF, record)
    await watcher.watch(FLOOR)
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(FLOOR)
    await anna.move(FLOOR, LOUNGE)
    await anna.set_status("busy", "Workshop")
    await asyncio.wait_for(status_seen.wait(), 5)
    mine = [d for d in diffs if d.person == anna.person]
    assert [(d.type, d.room_id) for d in mine] == [("joined", None), ("moved", LOUNGE), ("status", None)]
    assert [d.seq for d in diffs] == sorted({d.seq for d in diffs})  # no repeats, in order
    assert all(d.floor_id == FLOOR for d in diffs)
    member = watcher.views[FLOOR].member(anna.person)
    assert member is not None and (member.room_id, member.status) == (LOUNGE, "busy")


async def test_requests_return_typed_results_that_read_like_before(office: OfficeServer) -> None:
    lea, ben = await lea_inside_ben_outside(office)
    location = await ben.move(FLOOR, LOUNGE)
    assert isinstance(location, Location) and location == {"floor_id": FLOOR, "room_id": LOUNGE}
    presence = await ben.set_status("busy", "Haushalt")
    assert isinstance(presence, Presence) and (presence.status, presence.text) == ("busy", "Haushalt")
    assert presence["presence"] == {"status": "busy", "text": "Haushalt"}  # the old return: the acknowledgement
    knock = await ben.knock(MEETING)
    assert knock.knocker.person == BEN and knock["knock_id"] == knock.knock_id
    outcome = await lea.answer(knock.knock_id, admit=True)
    assert (outcome.outcome, outcome.by, outcome.knocker_id) == ("admitted", LEA, BEN)
    assert outcome["outcome"]["outcome"] == "admitted"
    assert (await ben.leave()) == Location(None, None)
    assert lea.session.me.person == LEA and lea.me.municipality == "lindenau"


async def test_refusals_carry_code_and_reason_and_bare_user_ids_fail_early(office: OfficeServer) -> None:
    anna = await office.client("anna.altbach", "altbach")
    ben = await office.client("ben.bergheim", "bergheim")
    for client in (anna, ben):
        await client.move(FLOOR)
    peer = CallPeer(anna, audio=False)
    try:
        ring = await peer.ring(BEN)
        assert ring.callee_id == BEN and ring.caller.person == anna.person and ring["ring"]["ring_id"] == ring.ring_id
        with pytest.raises(RequestError) as refused:
            await peer.ring(ben.person)
        assert (refused.value.code, refused.value.reason) == ("conflict", "already_ringing")
        with pytest.raises(ValueError, match="municipality/user_id"):
            await peer.ring("ben.bergheim")
        cancelled = await peer.cancel(ring)
        assert (cancelled.outcome, cancelled.by) == ("cancelled", anna.person)
        assert (await peer.outcome(ring, timeout=5)).outcome == "cancelled"
    finally:
        await peer.close()
    assert peer.errors == []

