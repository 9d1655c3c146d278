"""The truth of a floor, asked of every node of a cluster.

A watcher's view tells the truth when it equals what *every* node answers over
REST: the portal occupancy (who is in which room, with status and status
text) and the floor's rooms. :func:`until_views_tell_the_truth` waits until
all nodes agree and every view equals them, and returns how long that took.

:class:`CheckedView` is a :class:`~signalling.floorview.FloorView` that also
counts what a consistent stream can never contain: a ``joined`` for someone
already on the floor, a ``left`` for someone not on it, a change for someone
not on it. Used by the fault tests and by ``loadtests/soak_cluster.py``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Sequence

import aiohttp

from signalling.client import OfficeClient
from signalling.floorview import FloorView

__all__ = ["Summary", "Truth", "CheckedView", "summary", "node_truth", "nodes_agree", "until_views_tell_the_truth",
           "checked_watch"]

#: person -> (room or None for the hallway, status, status text)
Summary = dict[str, tuple[str | None, str, str]]


def summary(view: FloorView) -> Summary:
    return {p: (m.get("room_id"), m["status"], m.get("text", "")) for p, m in view.members.items()}


def rooms_of(view: FloorView) -> dict[str, tuple[str, str, int]]:
    return {r["id"]: (r["name"], r["door"], r["capacity"]) for r in view.rooms.values()}


@dataclass(frozen=True, slots=True)
class Truth:
    """One node's answer for one floor."""

    seq: int
    members: Summary
    rooms: dict[str, tuple[str, str, int]]

    def same_state(self, other: Truth) -> bool:
        return self.members == other.members and self.rooms == other.rooms

    def told_by(self, view: FloorView) -> bool:
        return not view.stale and summary(view) == self.members and rooms_of(view) == self.rooms


async def node_truth(http: aiohttp.ClientSession, url: str, floor: str, token: str) -> Truth:
    """``GET /api/v1/floors/{floor}/occupancy`` on one node."""
    async with http.get(f"{url}/api/v1/floors/{floor}/occupancy", headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.json()
        if resp.status != 200:
            raise AssertionError(f"{url}: occupancy of {floor} answered {resp.status}: {body}")
    members: Summary = {}
    for occupants, room in [(r["occupants"], r["room_id"]) for r in body["rooms"]] + [(body["hallway"], None)]:
        for o in occupants:
            assert o["person"] not in members, f"{url}: {o['person']} twice in the occupancy of {floor}"
            members[o["person"]] = (room, o["status"], o["status_text"])
    rooms = {r["room_id"]: (r["name"], r["door"], r["capacity"]) for r in body["rooms"]}
    return Truth(int(body["seq"]), members, rooms)


async def nodes_agree(urls: Sequence[str], floor: str, token: str, timeout: float) -> Truth:
    """Ask every node until all give the same state twice in a row (a quiet floor); returns it."""
    deadline = time.monotonic() + timeout
    last: list[Truth] = []
    async with aiohttp.ClientSession() as http:
        while True:
            answers = [await node_truth(http, url, floor, token) for url in urls]
            if all(a.same_state(answers[0]) for a in answers) and last and answers[0].same_state(last[0]):
                return answers[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"nodes disagree on {floor}: " + "; ".join(
                    f"{url}: seq {a.seq}, {sorted(a.members.items())}" for url, a in zip(urls, answers)))
            last = answers
            await asyncio.sleep(0.2)  # polling REST, bounded by the deadline


async def until_views_tell_the_truth(
    clients: Sequence[OfficeClient], urls: Sequence[str], floor: str, token: str, *, timeout: float
) -> tuple[Truth, float]:
    """Wait until every node answers the same for ``floor`` and every client's view of
    it equals that answer (members, rooms, statuses). Returns the truth and the seconds
    it took. The floor must be quiet meanwhile (no changes being made)."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        truth = await nodes_agree(urls, floor, token, timeout=max(0.5, deadline - time.monotonic()))
        try:
            await asyncio.gather(*(
                c.until_view(floor, truth.told_by, timeout=max(0.5, min(5.0, deadline - time.monotonic())))
                for c in clients
            ))
        except (asyncio.TimeoutError, TimeoutError):
            if time.monotonic() < deadline:
                continue  # the truth may have moved on (a late leave): ask the nodes again
            wrong = {c.person: (summary(c.views[floor]), c.views[floor].stale) for c in clients
                     if not truth.told_by(c.views[floor])}
            raise AssertionError(f"{len(wrong)} of {len(clients)} views of {floor} differ from {truth}: {wrong}")
        again = await nodes_agree(urls, floor, token, timeout=max(0.5, deadline - time.monotonic()))
        if again.same_state(truth):
            return truth, time.monotonic() - started


class CheckedView(FloorView):
    """A floor view that counts diffs a consistent stream never holds (module docstring)."""

    def __init__(self, floor_id: str) -> None:
        super().__init__(floor_id)
        self.duplicate_joins = 0
        self.duplicate_leaves = 0
        self.unknown_member = 0  # moved/status/call for someone not on the floor
        self.applied = 0

    def apply(self, diff: dict[str, Any]) -> bool:
        if not self.stale and int(diff["seq"]) == self.seq + 1:
            kind = diff["type"]
            if kind == "joined" and diff["member"]["person"] in self.members:
                self.duplicate_joins += 1
            elif kind == "left" and diff["person"] not in self.members:
                self.duplicate_leaves += 1
            elif kind in ("moved", "status", "call") and diff["person"] not in self.members:
                self.unknown_member += 1
            self.applied += 1
        return super().apply(diff)

    @property
    def anomalies(self) -> int:
        return self.duplicate_joins + self.duplicate_leaves + self.unknown_member


async def checked_watch(client: OfficeClient, floor: str) -> CheckedView:
    """``client.watch(floor)`` with a :class:`CheckedView` (kept across resyncs)."""
    view = client.views.get(floor)
    if not isinstance(view, CheckedView):
        view = client.views[floor] = CheckedView(floor)
    await client.watch(floor)
    return view
