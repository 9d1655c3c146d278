"""One simulated member of staff on the wire: python-socketio's *sync* client.

Used by the locust users (``office_user.py``) under gevent: locust monkey-patches
the standard library at import, so the client's reader and writer threads are
greenlets and its blocking ``call()`` yields to the other users. A real
Socket.IO 5 client (WebSocket transport, acknowledgements, the handshake's
``auth``) with the server's floor-view rules (``signalling/floorview.py``).

What this module measures, through two callbacks the owner supplies:

* ``on_request(kind, name, ms, error)`` for every request: ``kind`` is ``"sio"``
  (acknowledged; ``ms`` the round trip), or ``"refused"`` for a refusal that is
  part of office life (``knock_required`` at a closed door, ``room_full``,
  ``knock_resolved`` when a colleague answered first, ...: :data:`EXPECTED`),
  named ``"<event> <code>"``. ``error`` is set for everything else: a timeout, a
  lost connection, any other error code. Those are failures.
* ``on_latency(name, ms)`` when something another person did arrives here:

  ========================  =====================================================
  ``walk→screen``            a ``moved``/``joined`` diff of a walk made by a user of
                             this process (the mover notes the send time in
                             :data:`WALKS`; every other watcher here that sees the
                             diff reports it)
  ``status→screen``          a ``status`` diff whose text carries the sender's
                             send time after :data:`scenario.STAMP_MARK` (locust
                             users and the swarm both stamp)
  ``knock→door``             ``knock.incoming``: the knock message carries its
                             send time
  ``knock→answer``           the knocker: from ``knock.send`` to ``knock.outcome``,
                             the answerer's deliberate delay included
  ``ring→callee``            ``call.ring`` at the callee (the caller is in this
                             process: callees are picked from :data:`ONLINE`)
  ``signal→peer``            ``call.signal``: its data carries the send time
  ========================  =====================================================

All clocks are ``time.time()`` on one machine, so the differences are real.

People are named by their person id, ``"municipality/user_id"``, as the server
names them in diffs, members, knock outcomes, rings, call members and signals.
"""

from __future__ import annotations

import os
import random
import re
import time
from typing import Any, Callable, Final

import gevent
import gevent.event
import gevent.pool
import socketio
import socketio.exceptions

from scenario import STAMP_MARK, Behaviour, Staff
from signalling.floorview import FloorView

__all__ = ["OfficeSession", "ONLINE", "WALKS", "EXPECTED", "stamped", "stamp_of"]

#: Per event, the refusal codes that are ordinary office life, not failures.
EXPECTED: Final[dict[str, frozenset[str]]] = {
    "presence.move": frozenset({"knock_required", "room_full", "locked", "not_found"}),
    "knock.send": frozenset({"nobody_to_answer", "already_knocking", "knock_cooldown", "door_open", "already_inside",
                             "not_found", "locked"}),
    "knock.answer": frozenset({"knock_resolved", "not_found", "forbidden", "room_full", "locked"}),
    "knock.cancel": frozenset({"knock_resolved", "not_found"}),
    "call.ring": frozenset({"not_found", "do_not_disturb", "conflict"}),
    "call.answer": frozenset({"ring_resolved", "forbidden"}),
    "call.cancel": frozenset({"ring_resolved"}),
    "call.join": frozenset({"call_full", "forbidden", "not_found"}),
    "call.signal": frozenset({"not_in_call"}),
    "floor.watch": frozenset({"conflict"}),
}
#: Calls answer ``unavailable`` in cluster mode until their shared store exists
#: (docs/calls.md); a run over several nodes then counts them as refused, not failed.
CALL_EVENTS: Final = frozenset({"call.join", "call.leave", "call.signal", "call.ring", "call.answer", "call.cancel"})

#: person -> this process's session of that person (ring targets, ring latency).
ONLINE: dict[str, OfficeSession] = {}
#: person -> (floor_id, room_id, send time) of that person's latest walk in this process.
WALKS: dict[str, tuple[str, str | None, float]] = {}
#: (caller, callee) persons -> send time of the caller's ring.
RINGS: dict[tuple[str, str], float] = {}

#: Set OFFICE_GAP_LOG=<file> to log every sequence gap a floor view detects (diagnostics).
_GAP_LOG: Final = os.environ.get("OFFICE_GAP_LOG", "")
_STAMP: Final = re.compile(re.escape(STAMP_MARK) + r"([0-9]+\.[0-9]+)$")
_TEXTS: Final = ("Im Büro", "Haushaltsplan", "Bürgersprechstunde", "Im Termin", "Mittagspause", "Telefonat",
                 "Ratssitzung vorbereiten", "Digitalisierung")

Request = Callable[[str, str, float, "Exception | None"], None]
Latency = Callable[[str, float], None]


class OfficeError(Exception):
    """A request that failed for a reason that is not office life."""


def stamped(text: str, now: float | None = None) -> str:
    return f"{text}{STAMP_MARK}{time.time() if now is None else now:.6f}"


def stamp_of(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    m = _STAMP.search(text)
    return float(m.group(1)) if m else None


class OfficeSession:
    """One person's connection, floor views, knocks and calls.

    Server events are handled on the client's greenlets; requests block the
    calling greenlet (the locust user) until acknowledged. ``stop()`` ends every
    greenlet this session spawned.
    """

    def __init__(self, staff: Staff, token: str, url: str, behaviour: Behaviour, visible_floors: list[str], *,
                 on_request: Request, on_latency: Latency) -> None:
        self.staff = staff
        self.person = staff.person  # "municipality/user_id", as the server names us
        self.token = token
        self.url = url
        self.b = behaviour
        self.visible = visible_floors
        self.on_request = on_request
        self.on_latency = on_latency
        self.views: dict[str, FloorView] = {}
        self.floor: str | None = None
        self.room: str | None = None
        self.status = "available"
        self.call: dict[str, Any] | None = None  # {"call_id", "kind", "members"}
        self.ringing = False
        self._knock_waits: dict[str, tuple[gevent.event.AsyncResult, float]] = {}
        self._ring_waits: dict[str, gevent.event.AsyncResult] = {}
        self._ready = gevent.event.Event()
        self._greenlets = gevent.pool.Group()
        self.sio: socketio.Client | None = None
        self.connected = False

    # ------------------------------------------------------------ connection
    def connect(self) -> None:
        """Connect (WebSocket only, token in ``auth``) and wait for ``session.ready``."""
        sio = socketio.Client(reconnection=False, handle_sigint=False)
        for event, handler in (
            ("session.ready", self._on_ready), ("floor.diffs", self._on_diffs), ("floor.seq", self._on_floor_seq),
            ("knock.incoming", self._on_knock_incoming), ("knock.outcome", self._on_knock_outcome),
            ("presence.location", self._on_location), ("call.ring", self._on_ring),
            ("call.ring_outcome", self._on_ring_outcome), ("call.updated", self._on_call_updated),
            ("call.signal", self._on_signal), ("disconnect", self._on_disconnect),
        ):
            sio.on(event, handler)
        self.sio = sio
        self._ready.clear()
        start = time.perf_counter()
        try:
            sio.connect(self.url, transports=["websocket"], auth={"token": self.token, "lang": "en"},
                        wait_timeout=self.b.ack_timeout)
            if not self._ready.wait(self.b.ack_timeout):
                raise OfficeError("no session.ready")
        except Exception as exc:
            self.on_request("sio", "connect", _ms(start), exc)
            raise OfficeError(f"connect: {type(exc).__name__}: {exc}") from exc
        self.connected = True
        ONLINE[self.person] = self
        self.on_request("sio", "connect", _ms(start), None)

    def disconnect(self) -> None:
        ONLINE.pop(self.person, None)
        self.connected = False
        if self.sio is not None:
            try:
                self.sio.disconnect()
            except Exception:  # already gone
                pass

    def stop(self) -> None:
        self.disconnect()
        self._greenlets.kill(block=False)
        for result, _ in self._knock_waits.values():
            result.set(None)

    def spawn(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        self._greenlets.add(gevent.spawn_later(delay, self._guarded, fn, *args))

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except OfficeError:
            pass  # already reported as a failed request
        except socketio.exceptions.SocketIOError:
            pass  # disconnected meanwhile (a reconnect task, the end of the run)

    # ------------------------------------------------------------ requests
    def request(self, event: str, payload: dict[str, Any], *, quiet: frozenset[str] = frozenset()) -> dict[str, Any] | None:
        """Send one event, wait for its acknowledgement, report it.

        Returns the ack's result fields on success, ``None`` for an expected
        refusal (reported as ``refused``); raises :class:`OfficeError` otherwise.
        """
        if self.sio is None or not self.connected:
            raise OfficeError(f"{event}: not connected")
        start = time.perf_counter()
        try:
            ack = self.sio.call(event, payload, timeout=self.b.ack_timeout)
        except Exception as exc:
            self.on_request("sio", event, _ms(start), exc)
            raise OfficeError(f"{event}: {type(exc).__name__}: {exc}") from exc
        ms = _ms(start)
        if isinstance(ack, dict) and ack.get("ok") is True:
            self.on_request("sio", event, ms, None)
            return ack
        code = (ack or {}).get("error", {}).get("code") if isinstance(ack, dict) else None
        if code in EXPECTED.get(event, ()) or code in quiet or (code == "unavailable" and event in CALL_EVENTS):
            self.on_request("refused", f"{event} {code}", ms, None)
            return None
        exc = OfficeError(f"{event} refused: {code}: {(ack or {}).get('error', {}).get('message') if isinstance(ack, dict) else ack}")
        self.on_request("sio", event, ms, exc)
        raise exc

    def watch(self, floor_id: str) -> bool:
        view = self.views.setdefault(floor_id, FloorView(floor_id))
        view.stale = True  # buffer diffs until the snapshot is in
        ack = self.request("floor.watch", {"floor_id": floor_id})
        if ack is None:
            self.views.pop(floor_id, None)
            return False
        if not view.load_snapshot(ack["snapshot"]):
            self.spawn(0, self.watch, floor_id)  # a gap while replaying: take another snapshot
        return True

    def unwatch(self, floor_id: str) -> None:
        self.views.pop(floor_id, None)
        self.request("floor.unwatch", {"floor_id": floor_id})

    def move(self, floor_id: str, room_id: str | None) -> bool:
        WALKS[self.person] = (floor_id, room_id, time.time())
        ack = self.request("presence.move", {"floor_id": floor_id, "room_id": room_id})
        if ack is None:
            WALKS.pop(self.person, None)
            return False
        self.floor, self.room = ack["location"]["floor_id"], ack["location"]["room_id"]
        return True

    def set_status(self, status: str) -> None:
        text = stamped(random.choice(_TEXTS))
        if self.request("presence.status", {"status": status, "text": text}) is not None:
            self.status = status

    def knock(self, room_id: str) -> None:
        """Knock, wait for the outcome (``knock→answer``), withdraw it if nobody answers."""
        sent = time.time()
        ack = self.request("knock.send", {"room_id": room_id, "message": stamped("Kurz Zeit?", sent)})
        if ack is None:
            return
        knock_id = ack["knock"]["knock_id"]
        result = gevent.event.AsyncResult()
        self._knock_waits[knock_id] = (result, sent)
        try:
            outcome = result.get(timeout=self.b.knock_wait)
        except gevent.Timeout:
            outcome = None
        finally:
            self._knock_waits.pop(knock_id, None)
        if outcome is None and self.connected:
            self.request("knock.cancel", {"knock_id": knock_id})
        elif outcome is not None and outcome.get("outcome") == "admitted":
            self.room = outcome.get("room_id")

    def ring(self, callee: str) -> None:
        """Ring a colleague (a person id); on accept the callee offers, and the caller hangs up later."""
        RINGS[(self.person, callee)] = time.time()
        sent = time.time()
        ack = self.request("call.ring", {"person": callee})
        if ack is None:
            RINGS.pop((self.person, callee), None)
            return
        ring_id = ack["ring"]["ring_id"]
        result = gevent.event.AsyncResult()
        self._ring_waits[ring_id] = result
        try:
            outcome = result.get(timeout=self.b.answer_delay[1] + self.b.ack_timeout)
        except gevent.Timeout:
            outcome = None
        finally:
            self._ring_waits.pop(ring_id, None)
        if outcome is None:
            if self.connected:
                self.request("call.cancel", {"ring_id": ring_id})
            return
        self.on_latency("ring→answered", (time.time() - sent) * 1000)
        if outcome.get("outcome") == "accepted":
            self.spawn(random.uniform(*self.b.call_seconds), self.hang_up, outcome.get("call_id"))

    def join_room_call(self) -> None:
        ack = self.request("call.join", {"room_id": self.room})
        if ack is not None:
            self._adopt(ack["call"])
            self.spawn(random.uniform(*self.b.call_seconds), self.hang_up, ack["call"]["call_id"])

    def hang_up(self, call_id: str | None) -> None:
        if self.call is not None and self.call.get("call_id") == call_id and self.connected:
            self.call = None
            self.request("call.leave", {})

    # ------------------------------------------------------------ server events
    def _on_ready(self, data: dict[str, Any]) -> None:
        loc = data.get("location") or {}
        self.floor, self.room = loc.get("floor_id"), loc.get("room_id")
        self._ready.set()

    def _on_disconnect(self, *args: Any) -> None:
        self.connected = False
        ONLINE.pop(self.person, None)

    def _on_diffs(self, frame: dict[str, Any]) -> None:
        now = time.time()
        floor_id = frame.get("floor_id")
        for diff in frame.get("diffs", ()):
            kind, who = diff.get("type"), diff.get("person")
            if kind == "joined":
                who = (diff.get("member") or {}).get("person")
            if who == self.person or who is None:
                continue
            if kind in ("moved", "joined"):
                walk = WALKS.get(who)
                room = diff.get("room_id") if kind == "moved" else (diff.get("member") or {}).get("room_id")
                if walk is not None and walk[0] == floor_id and walk[1] == room:
                    self.on_latency("walk→screen", (now - walk[2]) * 1000)
            elif kind == "status":
                t = stamp_of(diff.get("text"))
                if t is not None:
                    self.on_latency("status→screen", (now - t) * 1000)
        view = self.views.get(floor_id or "")
        if view is None:
            return
        before, stale = view.seq, view.stale
        if not view.apply_frame(frame):
            if _GAP_LOG:  # diagnostics: which diffs were missing, on which node
                with open(_GAP_LOG, "a") as f:
                    f.write(f"{now:.3f} {self.url} {self.person} {floor_id} had={before} stale={stale} "
                            f"got={[(d.get('seq'), d.get('type')) for d in frame.get('diffs', ())]}\n")
            self.spawn(0, self._resync, floor_id)

    def _resync(self, floor_id: str) -> None:
        self.on_request("refused", "floor.diffs gap (resync)", 0.0, None)
        if floor_id in self.views:
            self.watch(floor_id)

    def _on_floor_seq(self, data: dict[str, Any]) -> None:
        view = self.views.get(data.get("floor_id", ""))
        if view is not None and int(data.get("seq", 0)) > view.seq:
            self.spawn(0, self._resync, view.floor_id)

    def _on_location(self, data: dict[str, Any]) -> None:
        self.floor, self.room = data.get("floor_id"), data.get("room_id")

    def _on_knock_incoming(self, knock: dict[str, Any]) -> None:
        t = stamp_of(knock.get("message"))
        if t is not None:
            self.on_latency("knock→door", (time.time() - t) * 1000)
        admit = random.random() < self.b.admit_share
        self.spawn(random.uniform(*self.b.answer_delay), self._answer_knock, knock["knock_id"], admit)

    def _answer_knock(self, knock_id: str, admit: bool) -> None:
        if self.connected:
            self.request("knock.answer", {"knock_id": knock_id, "admit": admit})

    def _on_knock_outcome(self, outcome: dict[str, Any]) -> None:
        waiting = self._knock_waits.get(outcome.get("knock_id", ""))
        if waiting is not None and outcome.get("knocker_id") == self.person:
            result, sent = waiting
            self.on_latency("knock→answer", (time.time() - sent) * 1000)
            result.set(outcome)

    def _on_ring(self, data: dict[str, Any]) -> None:
        ring = data["ring"]  # the server sends {"ring": {...}}
        caller = (ring.get("caller") or {}).get("person", "")
        sent = RINGS.pop((caller, self.person), None)
        if sent is not None:
            self.on_latency("ring→callee", (time.time() - sent) * 1000)
        accept = random.random() < self.b.accept_share and self.call is None
        self.spawn(random.uniform(*self.b.answer_delay), self._answer_ring, ring["ring_id"], caller, accept)

    def _answer_ring(self, ring_id: str, caller: str, accept: bool) -> None:
        if not self.connected:
            return
        ack = self.request("call.answer", {"ring_id": ring_id, "accept": accept})
        if ack is not None and ack.get("call"):
            self._adopt(ack["call"])
            self._signal(ack["call"]["call_id"], caller, "offer")  # the accepter offers (docs/calls.md)

    def _on_ring_outcome(self, outcome: dict[str, Any]) -> None:
        result = self._ring_waits.get(outcome.get("ring_id", ""))
        if result is not None:
            result.set(outcome)

    def _adopt(self, call: dict[str, Any]) -> None:
        if call.get("ended") or self.person not in call.get("members", ()):
            if self.call is not None and self.call.get("call_id") == call.get("call_id"):
                self.call = None
            return
        before = set(self.call["members"]) if self.call and self.call["call_id"] == call["call_id"] else None
        self.call = {"call_id": call["call_id"], "kind": call.get("kind"), "members": list(call["members"])}
        if before is not None and call.get("kind") == "room":
            # Mesh rule: whoever was in the call first offers to each newcomer.
            for newcomer in set(call["members"]) - before - {self.person}:
                self.spawn(0, self._signal, call["call_id"], newcomer, "offer")

    def _on_call_updated(self, call: dict[str, Any]) -> None:
        self._adopt(call)

    def _signal(self, call_id: str, to: str, kind: str) -> None:
        if not self.connected:
            return
        data = {"sdp" if kind in ("offer", "answer") else "candidate": f"load-test {kind}", "t": time.time()}
        self.request("call.signal", {"call_id": call_id, "to": to, "kind": kind, "data": data})

    def _on_signal(self, message: dict[str, Any]) -> None:
        data = message.get("data") or {}
        if isinstance(data.get("t"), (int, float)):
            self.on_latency("signal→peer", (time.time() - data["t"]) * 1000)
        kind, peer, call_id = message.get("kind"), message.get("from"), message.get("call_id")
        if kind == "offer":
            self.spawn(0, self._signal, call_id, peer, "answer")
            self.spawn(0, self._signal, call_id, peer, "candidate")
        elif kind == "answer":
            self.spawn(0, self._signal, call_id, peer, "candidate")


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
