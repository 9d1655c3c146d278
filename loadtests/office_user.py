"""The locust user: one active member of staff through a working day.

Each user takes the next identity of the scenario's active staff (distributed
runs: worker ``w`` of ``W`` takes ``w, w+W, w+2W, ...``, so identities never
collide), mints its own token with the run's HS256 secret, connects to one of
the nodes (round-robin, like a load balancer), watches its home floor (and the
project floor if it works there), walks onto it, and then, between think times,
does one task at a time, chosen by the scenario's weights:

``walk``       to an open room, an own office or the hallway of its floor; one in
               four walks goes to another floor it may see (watching that floor
               first, as a client shows the floor it stands on)
``status``     a new status with a stamped text
``watch``      look at another visible floor (snapshot), stop looking at the last one
``knock``      at a closed room with somebody inside, who admits or declines
``ring``       a colleague of this process on a floor the caller may see; on accept
               the callee offers and both exchange answer and candidates
``room_call``  join the call of the room one is in, if someone else is there
``reconnect``  drop the connection and come back within the grace period

Requests and the latencies of :mod:`office_client` go to locust as request
events (``request_type`` ``sio``, ``refused`` or ``presence``).
"""

from __future__ import annotations

import functools
import itertools
import random
import time
from typing import Any, Callable

import gevent
from locust import User, task
from locust.exception import StopUser

from office_client import ONLINE, OfficeError, OfficeSession
from scenario import Scenario, Staff, load_scenario

__all__ = ["StaffUser", "setup", "TASKS"]

TASKS = ("walk", "status", "watch", "knock", "ring", "room_call", "reconnect")
_STATUSES = ("available", "available", "available", "busy", "busy", "away", "do_not_disturb")


class _Setup:
    """What every user of this process shares: read once from the options."""

    scenario: Scenario | None = None
    settings: Any = None
    nodes: list[str] = []
    counter = itertools.count()


def setup(options: Any, host: str | None) -> _Setup:
    """Load the scenario and the server config named by the ``--office-*`` options (once).

    A distributed worker learns the host from the master's first spawn message,
    so the first user of a process may be the one that gets here first."""
    if _Setup.scenario is None:
        from presence_server.config import load_settings

        if not options.office_config:
            raise RuntimeError("--office-config (or OFFICE_CONFIG) must name the server's config: "
                               "its HS256 secrets mint the users' tokens")
        nodes = [u.strip().rstrip("/") for u in (options.office_nodes or host or "").split(",") if u.strip()]
        if not nodes:
            raise RuntimeError("no server: give --host or --office-nodes")
        active = getattr(options, "office_active", None)
        scenario = load_scenario(options.office_scenario, active=int(active) if active else None)
        _Setup.settings = load_settings(options.office_config)
        _Setup.nodes = nodes
        weights = scenario.behaviour.weights
        StaffUser.tasks = [getattr(StaffUser, name) for name in TASKS for _ in range(weights.get(name, 0))]
        _Setup.scenario = scenario  # last: a failed setup is tried again, not half-kept
    return _Setup


def _office_task(fn: Callable[[StaffUser], None]) -> Callable[[StaffUser], None]:
    """A task whose failed request was already reported (as a failed request):
    locust need not count it again as an exception."""

    @functools.wraps(fn)
    def run(self: StaffUser) -> None:
        try:
            fn(self)
        except OfficeError:
            pass

    return task(run)


class StaffUser(User):
    """One active member of staff (see the module docstring). The ``@task``
    weights here are placeholders: :func:`setup` sets the scenario's."""

    def wait_time(self) -> float:
        return random.uniform(*self.conf.scenario.behaviour.think_time)

    # ------------------------------------------------------------ life cycle
    def on_start(self) -> None:
        self.conf = setup(self.environment.parsed_options, self.environment.host)
        scenario = self.conf.scenario
        assert scenario is not None
        runner = self.environment.runner
        index = getattr(runner, "worker_index", 0) or 0
        options = self.environment.parsed_options
        stride = max(1, int(getattr(options, "expect_workers", 1) or 1)) if getattr(options, "worker", False) else 1
        slot = max(0, index) + stride * next(self.conf.counter)
        active = scenario.active_staff()
        if slot >= len(active):
            self._fire("sio", "identity", 0.0, OfficeError(
                f"user #{slot} but the scenario has only {len(active)} active staff: raise population.active"))
            raise StopUser()
        self.me: Staff = active[slot]
        from presence_server.auth import mint_token

        token = mint_token(self.conf.settings.auth, municipality=self.me.municipality, user_id=self.me.user_id,
                           name=self.me.name, roles=("staff",), ttl_seconds=8 * 3600)
        url = self.conf.nodes[slot % len(self.conf.nodes)]
        self.home = [self.me.home_floor] + (scenario.project_floor_ids() if self.me.project else [])
        self.s = OfficeSession(self.me, token, url, scenario.behaviour, scenario.visible_floors(self.me.municipality),
                               on_request=self._fire, on_latency=self._latency)
        self.browsing: str | None = None
        try:
            self._arrive()
        except OfficeError:
            self.s.stop()
            raise StopUser() from None

    def on_stop(self) -> None:
        s = getattr(self, "s", None)
        if s is not None:
            with gevent.Timeout(3, False):  # a disconnect that hangs must not hold up the end of the run
                s.stop()

    def _arrive(self) -> None:
        self.s.connect()
        for floor_id in self.home:
            self.s.watch(floor_id)
        if self.s.floor is None:  # a reconnect within the grace period finds us where we were
            self.s.move(self.me.home_floor, None)

    # ------------------------------------------------------------ reporting
    def _fire(self, kind: str, name: str, ms: float, error: Exception | None) -> None:
        self.environment.events.request.fire(request_type=kind, name=name, response_time=ms, response_length=0,
                                             exception=error, context={"user": self.me.person if hasattr(self, "me") else None})

    def _latency(self, name: str, ms: float) -> None:
        self.environment.events.request.fire(request_type="presence", name=name, response_time=max(0.0, ms),
                                             response_length=0, exception=None, context={})

    def _ensure_connected(self) -> None:
        """A session the server dropped (or a failed reconnect) comes back first."""
        if not self.s.connected:
            self.s.stop()
            self.s = OfficeSession(self.me, self.s.token, self.s.url, self.s.b, self.s.visible,
                                   on_request=self._fire, on_latency=self._latency)
            self._arrive()

    # ------------------------------------------------------------ tasks
    @_office_task
    def walk(self) -> None:
        self._ensure_connected()
        s = self.s
        if s.floor is None or random.random() < 0.25:
            floor_id = random.choice(self.home if random.random() < 0.7 else s.visible)
            if floor_id != s.floor:
                if floor_id not in s.views and not s.watch(floor_id):
                    return
                old = s.floor
                if s.move(floor_id, None) and old and old not in self.home and old in s.views:
                    s.unwatch(old)
                return
        view = s.views.get(s.floor or "")
        if view is None or view.stale:
            s.move(s.floor, None)
            return
        targets: list[str | None] = [None]
        for room in view.rooms.values():
            mine = s.person in room.get("owners", ())  # owners are person ids
            if (room["door"] == "open" or mine) and len(view.occupants(room["id"])) < room["capacity"]:
                targets.append(room["id"])
        targets = [t for t in targets if t != s.room] or [None]
        s.move(s.floor, random.choice(targets))

    @_office_task
    def status(self) -> None:
        self._ensure_connected()
        if self.s.status == "do_not_disturb":  # nobody stays unreachable all day
            self.s.set_status("available")
        else:
            self.s.set_status(random.choice(_STATUSES))

    @_office_task
    def watch(self) -> None:
        self._ensure_connected()
        s = self.s
        if self.browsing and self.browsing in s.views and self.browsing not in self.home and self.browsing != s.floor:
            s.unwatch(self.browsing)
        choices = [f for f in s.visible if f not in s.views]
        self.browsing = random.choice(choices) if choices else None
        if self.browsing:
            s.watch(self.browsing)

    @_office_task
    def knock(self) -> None:
        self._ensure_connected()
        s = self.s
        view = s.views.get(s.floor or "")
        if view is None or view.stale:
            return
        rooms = [r["id"] for r in view.rooms.values()
                 if r["door"] == "closed" and r["id"] != s.room and s.person not in r.get("owners", ())
                 and view.occupants(r["id"])]
        if rooms:
            s.knock(random.choice(rooms))

    @_office_task
    def ring(self) -> None:
        self._ensure_connected()
        s = self.s
        if s.call is not None:
            return
        visible = set(s.visible)
        callees = [p for p, other in ONLINE.items()
                   if p != s.person and other.call is None and other.floor in visible and other.connected]
        if callees:
            s.ring(random.choice(callees))

    @_office_task
    def room_call(self) -> None:
        self._ensure_connected()
        s = self.s
        view = s.views.get(s.floor or "")
        if s.call is None and s.room and view is not None and len(view.occupants(s.room) - {s.person}) >= 1:
            s.join_room_call()

    @_office_task
    def reconnect(self) -> None:
        self._ensure_connected()
        if self.s.call is not None:
            return
        start = time.perf_counter()
        old = self.s
        old.stop()
        self.s = OfficeSession(self.me, old.token, old.url, old.b, old.visible,
                               on_request=self._fire, on_latency=self._latency)
        self._arrive()
        self._fire("sio", "reconnect (connect, watch, back on the floor)", (time.perf_counter() - start) * 1000, None)
