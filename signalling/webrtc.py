"""WebRTC calls for :class:`~signalling.client.OfficeClient`, with aiortc.

A :class:`CallPeer` joins a room call through the server's signalling
(``call.join``, ``call.signal``, ``call.leave``; see ``docs/calls.md``) and keeps
one ``RTCPeerConnection`` per other member: a data channel named ``"chat"`` and,
if asked, a synthetic audio track. The server only brokers: it relays SDP between
members of one call and hands out ICE servers; media and data-channel messages
flow peer to peer (or through TURN) and never pass the server.

Direct calls: :meth:`CallPeer.ring` a person (by person id); the callee's peer
accepts the ring with :meth:`CallPeer.accept` (it arrives as the server event
``call.ring``, a :class:`~signalling.wire.Ring` in a handler) and offers to the
caller, whose peer adopts the new call from ``call.updated``.

Mesh rule: for each pair the member who was in the call first makes the offer,
so a newcomer only answers. Signalling is non-trickle: aiortc gathers every
candidate inside ``setLocalDescription``, so each SDP sent is complete and
``candidate`` signals are ignored.

Contract: one ``CallPeer`` per client (it intercepts the client's ``call.updated``
and ``call.signal``, so that when the client's handlers and mailbox get a
``call.updated`` the peer has already applied it). Talk to a member with
:meth:`~CallPeer.send` and :meth:`~CallPeer.receive` or ``async for`` over
:meth:`~CallPeer.messages`; all take person ids. Failures inside the peer's own
tasks are logged and kept in :attr:`~CallPeer.errors`. :meth:`~CallPeer.close`
leaves the call and releases everything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Coroutine

from aiortc import RTCConfiguration, RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from signalling.client import OfficeClient, person_arg
from signalling.wire import Call, Member, Person, Ring, RingOutcome

__all__ = ["CallPeer", "rtc_configuration"]

log = logging.getLogger(__name__)


def rtc_configuration(ice_servers: list[dict[str, Any]] | None) -> RTCConfiguration:
    """The wire's ``[{urls, username?, credential?}]`` as an aiortc configuration.

    An empty list stays empty: aiortc would otherwise fall back to Google's STUN
    server, which a machine without Internet waits on during gathering."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in ice_servers or []
        ]
    )


@dataclass(eq=False)
class _Link:
    """Everything about one remote member."""

    pc: RTCPeerConnection
    channel: RTCDataChannel | None = None
    messages: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    frames: int = 0


class CallPeer:
    """The calls of one client, with one aiortc connection per other member."""

    def __init__(self, client: OfficeClient, *, audio: bool = True) -> None:
        self.client = client
        self.audio = audio
        self.call: Call | None = None  # the call we are in, as last updated
        self._awaiting_direct = False  # we rang someone; their accept makes a call we adopt
        self.config = rtc_configuration(None)
        self.errors: list[BaseException] = []  # handler failures; tests assert it stays empty
        self._links: dict[Person, _Link] = {}
        self._known: set[Person] = set()  # members this peer has accounted for
        self._joined = asyncio.Event()  # set while in a call, once its ack is handled
        self._joining = False
        self._updates = asyncio.Lock()  # FIFO: call.updated applied in arrival order
        self._changed = asyncio.Event()  # replaced at every bump; see _until
        self._tasks: set[asyncio.Task[Any]] = set()
        client.intercept("call.updated", self._on_updated)
        client.intercept("call.signal", self._on_signal)

    # ------------------------------------------------------------------ API
    async def join_room_call(self, room_id: str) -> Call:
        """Join the call of the room we are in (leaving any other call). Item access
        reads the acknowledgement, as before typed results (``["call"]["call_id"]``)."""
        self._joined.clear()
        self._joining = True
        try:
            result = await self.client.request("call.join", {"room_id": room_id})
        except BaseException:
            self._joining = False
            if self.call is not None:  # refused: the server keeps us in the old call
                self._joined.set()
            raise
        await self._close_links()  # joining a call leaves the previous one
        call = self.call = Call.from_wire(result["call"])
        self.config = rtc_configuration(result.get("ice_servers"))
        # Those already inside offer to us; we offer only to later arrivals.
        self._known = set(call.members)
        self._joining = False
        self._joined.set()
        return call.with_compat(result)

    async def ring(self, person: str | Member) -> Ring:
        """Ring a colleague (a person id, ``municipality/user_id``) on all their
        devices; if they accept, they offer to us (see :meth:`accept`) and
        :meth:`wait_connected` returns. How it ended comes as ``call.ring_outcome``
        (:meth:`outcome`). Refusals raise ``RequestError``: ``not_found``,
        ``do_not_disturb``, ``conflict`` with ``reason`` ``already_ringing`` or
        ``already_in_call``. Item access reads the acknowledgement (``["ring"]``)."""
        result = await self.client.request("call.ring", {"person": person_arg(person)})
        self.config = rtc_configuration(result.get("ice_servers"))
        self._awaiting_direct = True
        return Ring.from_wire(result["ring"]).with_compat(result)

    async def outcome(self, ring: Ring | str, timeout: float | None = None) -> RingOutcome:
        """How a ring ended (its one ``call.ring_outcome``); waits up to ``timeout``
        seconds, by default until the ring expires plus a margin."""
        ring_id = ring if isinstance(ring, str) else ring.ring_id
        if timeout is None:
            rings_for = ring.expires_at - time.time() if isinstance(ring, Ring) else 60.0
            timeout = max(0.0, rings_for) + self.client.request_timeout
        outcome: RingOutcome = await self.client.expect(
            "call.ring_outcome", lambda o: o.ring_id == ring_id, timeout=timeout
        )
        if not outcome.accepted:
            self._awaiting_direct = False  # no call to adopt from this ring
        return outcome

    async def accept(self, ring: Ring | str) -> Call:
        """Accept a ring (or its id): the new direct call is ours, and we offer to the
        caller. ``ring_resolved`` if it ended already (another device, timeout).
        Item access reads the acknowledgement (``["outcome"]``, ``["call"]``)."""
        ring_id = ring if isinstance(ring, str) else ring.ring_id
        self._joined.clear()
        self._joining = True
        try:
            result = await self.client.request("call.answer", {"ring_id": ring_id, "accept": True})
        except BaseException:
            self._joining = False
            raise
        await self._close_links()
        call = self.call = Call.from_wire(result["call"])
        self.config = rtc_configuration(result.get("ice_servers"))
        me = self.client.person
        self._known = set(call.members)
        self._joining = False
        self._joined.set()
        for caller in sorted(self._known - {me}):
            self._spawn(self._offer(caller))
        return call.with_compat(result)

    async def decline(self, ring: Ring | str) -> RingOutcome:
        ring_id = ring if isinstance(ring, str) else ring.ring_id
        result = await self.client.request("call.answer", {"ring_id": ring_id, "accept": False})
        return RingOutcome.from_wire(result["outcome"])

    async def cancel(self, ring: Ring | str) -> RingOutcome:
        """Stop ringing (the caller only)."""
        ring_id = ring if isinstance(ring, str) else ring.ring_id
        self._awaiting_direct = False
        result = await self.client.request("call.cancel", {"ring_id": ring_id})
        return RingOutcome.from_wire(result["outcome"])

    async def leave(self) -> None:
        self._joined.clear()
        self.call = None
        try:
            await self.client.request("call.leave", {})
        finally:
            await self._close_links()

    async def close(self) -> None:
        """Leave the call (if still connected), close every connection, release the client."""
        try:
            if self.call is not None and self.client.sio.connected:
                await self.leave()
        finally:
            self.client.intercept("call.updated", None)
            self.client.intercept("call.signal", None)
            await self._close_links()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def peers(self) -> list[Person]:
        """The members we are connected to."""
        return sorted(u for u, link in self._links.items() if link.pc.connectionState == "connected")

    async def wait_connected(self, person: str, timeout: float = 15) -> None:
        """Wait until the connection to ``person`` is up; ``ConnectionError`` if it failed."""
        key = Person(person)

        def connected() -> bool:
            link = self._links.get(key)
            if link is not None and link.pc.connectionState == "failed":
                raise ConnectionError(f"connection to {key} failed")
            return link is not None and link.pc.connectionState == "connected"

        await self._until(connected, timeout)

    async def send(self, person: str, text: str, timeout: float = 10) -> None:
        """Send ``text`` on the data channel to ``person``, once it is open."""
        key = Person(person)

        def open_() -> bool:
            link = self._links.get(key)
            return link is not None and link.channel is not None and link.channel.readyState == "open"

        await self._until(open_, timeout)
        channel = self._links[key].channel
        assert channel is not None
        channel.send(text)

    async def receive(self, person: str, timeout: float = 10) -> str:
        """The next data-channel message from ``person``."""
        key = Person(person)
        async with asyncio.timeout(timeout):
            await self._until(lambda: key in self._links, None)
            return await self._links[key].messages.get()

    async def messages(self, person: str, timeout: float = 15) -> AsyncIterator[str]:
        """Every data-channel message from ``person`` until the connection to them
        ends (they left the call, the call ended, or it failed). ``timeout`` bounds
        only the wait for the connection to come up."""
        key = Person(person)
        await self.wait_connected(key, timeout)
        link = self._links[key]

        def arrived_or_over() -> bool:
            over = self._links.get(key) is not link or link.pc.connectionState in ("closed", "failed")
            return over or not link.messages.empty()

        while True:
            await self._until(arrived_or_over, None)
            if link.messages.empty():
                return
            yield link.messages.get_nowait()

    async def wait_audio_frames(self, person: str, n: int = 5, timeout: float = 15) -> int:
        key = Person(person)
        await self._until(lambda: key in self._links and self._links[key].frames >= n, timeout)
        return self._links[key].frames

    # ------------------------------------------------------ server events
    async def _on_updated(self, data: dict[str, Any]) -> None:
        # Awaited by the client before its mailbox and handlers get the update, so
        # next_event("call.updated") means the links follow it. Our own task, so
        # close() can cancel it; its failure is logged and kept in self.errors.
        task = self._spawn(self._apply(Call.from_wire(data.get("call", data))))
        await asyncio.wait({task})

    async def _on_signal(self, data: dict[str, Any]) -> None:
        self._spawn(self._handle_signal(data))

    async def _apply(self, call: Call) -> None:
        me = self.client.person
        if self._awaiting_direct and self.call is None and call.kind == "direct" and not call.ended:
            if me in call.members:  # our ring was accepted: the callee offers to us
                self._awaiting_direct = False
                self.call, self._known = call, set(call.members)
                self._bump()
                return
        if not await self._in_call(call.call_id):
            return
        async with self._updates:
            if self.call is None or call.call_id != self.call.call_id:
                return
            self.call = None if call.ended else call
            members = set() if call.ended else set(call.members)
            for gone in self._known - members:
                link = self._links.pop(gone, None)
                if link is not None:
                    await link.pc.close()
            for newcomer in sorted(members - self._known - {me}):
                self._spawn(self._offer(newcomer))
            self._known = members
            self._bump()

    async def _handle_signal(self, data: dict[str, Any]) -> None:
        if not await self._in_call(data.get("call_id")):
            log.warning("call.signal %s for another call ignored", data.get("kind"))
            return
        sender, kind, payload = Person(data["from"]), data["kind"], data.get("data") or {}
        if kind == "offer":
            await self._answer(sender, RTCSessionDescription(sdp=payload["sdp"], type="offer"))
        elif kind == "answer":
            link = self._links.get(sender)
            if link is None:
                raise LookupError(f"answer from {sender}, who was offered nothing")
            await link.pc.setRemoteDescription(RTCSessionDescription(sdp=payload["sdp"], type="answer"))
        else:  # candidates are already in the complete SDPs; renegotiation is not supported
            log.debug("call.signal %s from %s ignored", kind, sender)

    async def _in_call(self, call_id: Any) -> bool:
        """True if ``call_id`` is our call; waits for our join's ack if it is under way
        (python-socketio handles each message in its own task, so an event that
        follows the ack on the wire may be handled first)."""
        if self._joining:
            await asyncio.wait_for(self._joined.wait(), self.client.request_timeout)
        return self.call is not None and call_id == self.call.call_id

    # ------------------------------------------------------ offer / answer
    async def _offer(self, person: Person) -> None:
        link = self._new_link(person)
        if not self.audio:  # still offer to receive theirs
            link.pc.addTransceiver("audio", direction="recvonly")
        self._watch_channel(link, link.pc.createDataChannel("chat"))
        await link.pc.setLocalDescription(await link.pc.createOffer())  # gathers ICE
        await self._send_signal(person, "offer", link.pc)

    async def _answer(self, person: Person, offer: RTCSessionDescription) -> None:
        old = self._links.pop(person, None)
        if old is not None:  # they rejoined and we missed their leaving
            await old.pc.close()
        link = self._new_link(person)
        link.pc.on("datachannel", lambda channel: self._watch_channel(link, channel))
        await link.pc.setRemoteDescription(offer)
        await link.pc.setLocalDescription(await link.pc.createAnswer())  # gathers ICE
        await self._send_signal(person, "answer", link.pc)

    async def _send_signal(self, person: Person, kind: str, pc: RTCPeerConnection) -> None:
        assert self.call is not None and pc.localDescription is not None
        sdp = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
        await self.client.request(
            "call.signal", {"call_id": self.call.call_id, "to": person, "kind": kind, "data": sdp}
        )

    def _new_link(self, person: Person) -> _Link:
        pc = RTCPeerConnection(self.config)
        link = self._links[person] = _Link(pc)
        if self.audio:
            pc.addTrack(AudioStreamTrack())
        pc.on("connectionstatechange", self._bump)
        pc.on("track", lambda track: self._spawn(self._count_frames(link, track)) if track.kind == "audio" else None)
        self._bump()
        return link

    def _watch_channel(self, link: _Link, channel: RTCDataChannel) -> None:
        link.channel = channel
        channel.on("open", self._bump)

        def on_message(message: str | bytes) -> None:
            link.messages.put_nowait(str(message))
            self._bump()

        channel.on("message", on_message)
        self._bump()

    async def _count_frames(self, link: _Link, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                link.frames += 1
                self._bump()
        except MediaStreamError:  # the track ended: the connection closed
            pass

    async def _close_links(self) -> None:
        links, self._links = self._links, {}
        self._known = set()
        await asyncio.gather(*(link.pc.close() for link in links.values()))
        self._bump()

    # ------------------------------------------------------------- helpers
    def _bump(self) -> None:
        """Wake every :meth:`_until`; callable from aiortc's synchronous callbacks."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _until(self, predicate: Callable[[], bool], timeout: float | None) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("call handler failed", exc_info=exc)
            self.errors.append(exc)  # type: ignore[arg-type]
