"""WebRTC calls for :class:`~signalling.client.OfficeClient`, with aiortc.

A :class:`CallPeer` joins a room call through the server's signalling
(``call.join``, ``call.signal``, ``call.leave``; see ``docs/calls.md``) and keeps
one ``RTCPeerConnection`` per other member: a data channel named ``"chat"`` and,
if asked, a synthetic audio track. The server only brokers: it relays SDP between
members of one call and hands out ICE servers; media and data-channel messages
flow peer to peer (or through TURN) and never pass the server.

Mesh rule: for each pair the member who was in the call first makes the offer,
so a newcomer only answers. Signalling is non-trickle: aiortc gathers every
candidate inside ``setLocalDescription``, so each SDP sent is complete and
``candidate`` signals are ignored.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine

from aiortc import RTCConfiguration, RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from signalling.client import OfficeClient

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
    def __init__(self, client: OfficeClient, *, audio: bool = True) -> None:
        self.client = client
        self.audio = audio
        self.call: dict[str, Any] | None = None
        self._awaiting_direct = False  # we rang someone; their accept makes a call we adopt
        self.config = rtc_configuration(None)
        self.errors: list[BaseException] = []  # handler failures; tests assert it stays empty
        self._links: dict[str, _Link] = {}
        self._known: set[str] = set()  # members this peer has accounted for
        self._joined = asyncio.Event()  # set while in a call, once its ack is handled
        self._joining = False
        self._updates = asyncio.Lock()  # FIFO: call.updated applied in arrival order
        self._changed = asyncio.Event()  # replaced at every bump; see _until
        self._tasks: set[asyncio.Task[Any]] = set()
        client.sio.on("call.updated", self._on_updated)
        client.sio.on("call.signal", self._on_signal)

    # ------------------------------------------------------------------ API
    async def join_room_call(self, room_id: str) -> dict[str, Any]:
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
        self.call = result["call"]
        self.config = rtc_configuration(result.get("ice_servers"))
        # Those already inside offer to us; we offer only to later arrivals.
        self._known = set(self.call["members"])
        self._joining = False
        self._joined.set()
        return result

    async def ring(self, person: str) -> dict[str, Any]:
        """Ring a colleague; if they accept, they offer to us (see :meth:`accept`)."""
        result = await self.client.request("call.ring", {"person": person})
        self.config = rtc_configuration(result.get("ice_servers"))
        self._awaiting_direct = True
        return result

    async def accept(self, ring_id: str) -> dict[str, Any]:
        """Accept a ring: the new direct call is ours, and we offer to the caller."""
        self._joined.clear()
        self._joining = True
        try:
            result = await self.client.request("call.answer", {"ring_id": ring_id, "accept": True})
        except BaseException:
            self._joining = False
            raise
        await self._close_links()
        self.call = result["call"]
        self.config = rtc_configuration(result.get("ice_servers"))
        me = self.client.person
        self._known = set(self.call["members"])
        self._joining = False
        self._joined.set()
        for caller in sorted(self._known - {me}):
            self._spawn(self._offer(caller))
        return result

    async def leave(self) -> None:
        self._joined.clear()
        self.call = None
        try:
            await self.client.request("call.leave", {})
        finally:
            await self._close_links()

    async def close(self) -> None:
        try:
            if self.call is not None and self.client.sio.connected:
                await self.leave()
        finally:
            await self._close_links()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def peers(self) -> list[str]:
        return sorted(u for u, link in self._links.items() if link.pc.connectionState == "connected")

    async def wait_connected(self, person: str, timeout: float = 15) -> None:
        def connected() -> bool:
            link = self._links.get(person)
            if link is not None and link.pc.connectionState == "failed":
                raise ConnectionError(f"connection to {person} failed")
            return link is not None and link.pc.connectionState == "connected"

        await self._until(connected, timeout)

    async def send(self, person: str, text: str, timeout: float = 10) -> None:
        def open_() -> bool:
            link = self._links.get(person)
            return link is not None and link.channel is not None and link.channel.readyState == "open"

        await self._until(open_, timeout)
        channel = self._links[person].channel
        assert channel is not None
        channel.send(text)

    async def receive(self, person: str, timeout: float = 10) -> str:
        async with asyncio.timeout(timeout):
            await self._until(lambda: person in self._links, None)
            return await self._links[person].messages.get()

    async def wait_audio_frames(self, person: str, n: int = 5, timeout: float = 15) -> int:
        await self._until(lambda: person in self._links and self._links[person].frames >= n, timeout)
        return self._links[person].frames

    # ------------------------------------------------------ server events
    async def _on_updated(self, data: dict[str, Any]) -> None:
        self._spawn(self._apply_update(data))

    async def _on_signal(self, data: dict[str, Any]) -> None:
        self.client._queues["call.signal"].put_nowait(data)
        self._spawn(self._handle_signal(data))

    async def _apply_update(self, data: dict[str, Any]) -> None:
        try:
            await self._apply(data.get("call", data))  # the wire form itself; a {"call": ...} wrapper too
        finally:
            # Queued once applied, so next_event("call.updated") means the links follow it.
            self.client._queues["call.updated"].put_nowait(data)

    async def _apply(self, call: dict[str, Any]) -> None:
        me = self.client.person
        if self._awaiting_direct and self.call is None and call.get("kind") == "direct" and not call.get("ended"):
            if me in call["members"]:  # our ring was accepted: the callee offers to us
                self._awaiting_direct = False
                self.call, self._known = call, set(call["members"])
                self._bump()
                return
        if not await self._in_call(call["call_id"]):
            return
        async with self._updates:
            if self.call is None or call["call_id"] != self.call["call_id"]:
                return
            self.call = None if call.get("ended") else call
            me = self.client.person
            members = set() if call.get("ended") else set(call["members"])
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
        sender, kind, payload = data["from"], data["kind"], data.get("data") or {}
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
        return self.call is not None and call_id == self.call["call_id"]

    # ------------------------------------------------------ offer / answer
    async def _offer(self, person: str) -> None:
        link = self._new_link(person)
        if not self.audio:  # still offer to receive theirs
            link.pc.addTransceiver("audio", direction="recvonly")
        self._watch_channel(link, link.pc.createDataChannel("chat"))
        await link.pc.setLocalDescription(await link.pc.createOffer())  # gathers ICE
        await self._send_signal(person, "offer", link.pc)

    async def _answer(self, person: str, offer: RTCSessionDescription) -> None:
        old = self._links.pop(person, None)
        if old is not None:  # they rejoined and we missed their leaving
            await old.pc.close()
        link = self._new_link(person)
        link.pc.on("datachannel", lambda channel: self._watch_channel(link, channel))
        await link.pc.setRemoteDescription(offer)
        await link.pc.setLocalDescription(await link.pc.createAnswer())  # gathers ICE
        await self._send_signal(person, "answer", link.pc)

    async def _send_signal(self, person: str, kind: str, pc: RTCPeerConnection) -> None:
        assert self.call is not None and pc.localDescription is not None
        sdp = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
        await self.client.request(
            "call.signal", {"call_id": self.call["call_id"], "to": person, "kind": kind, "data": sdp}
        )

    def _new_link(self, person: str) -> _Link:
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
        channel.on("message", lambda message: (link.messages.put_nowait(str(message)), self._bump()))
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

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("call handler failed", exc_info=exc)
            self.errors.append(exc)  # type: ignore[arg-type]
