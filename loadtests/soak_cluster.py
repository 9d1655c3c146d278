"""A churn soak of a three-node cluster: do views stay true for minutes on end?

    python -m loadtests.soak_cluster --minutes 10      # the soak of issue 13
    python -m loadtests.soak_cluster --seconds 60      # a quick one

Starts a real ``redis-server`` and three nodes of the presence server on
127.0.0.1 (``stack.Stack``: the dev config and demo campus, cluster mode, the
per-session rate limit lifted, a 2 s grace period), then, on every node at once:

* **movers** walk between the open rooms and hallways of two floors
  (``projekt``, ``altbach-eg``), change their status, leave the floors, and
  now and then drop their connection and come back — before or after the grace
  period, to a random node;
* **watchers** watch both floors for the whole run (and now and then reconnect,
  to a random node, and watch again);
* **browsers** are short sessions that connect, watch a floor, switch to the
  other, unwatch and go, one after the other: the new watchers that once made
  every old watcher of a node miss a diff (issue 13).

Every view is a :class:`tests.support.cluster_truth.CheckedView`: it counts the
sequence **gaps** it saw (a diff with a seq past the next one), and diffs a
consistent stream never holds (a ``joined`` for someone on the floor, a ``left``
for someone not on it). At the end the churn stops, every mover is connected,
and every node's REST occupancy must agree with the movers' own record of
their acknowledged actions and with every watcher's view (members, rooms,
statuses): no ghosts, nobody missing.

Prints the figures as Markdown (and writes them to
``loadtests/results/soak-cluster-<date>.md``); the exit status is 0 when the
cluster told the truth throughout (0 gaps, no anomaly, no unexpected refusal,
converged), 1 when it did not, 2 when the harness failed. Every process it
starts is stopped by its PID at the end (also on failure, ``--timeout`` and
Ctrl-C / SIGTERM). ``tests/test_cluster_soak.py`` runs a short version.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import re
import signal
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # the load-test modules import each other flat
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # signalling (the SDK) and tests.support

from procs import cpu_seconds, rss_kb  # noqa: E402
from stack import Stack, load_average  # noqa: E402
from targets import CONFIG  # noqa: E402

from presence_server.auth import mint_token  # noqa: E402
from presence_server.config import load_settings  # noqa: E402
from signalling.client import ConnectRefused, OfficeClient, RequestError  # noqa: E402
from tests.support.cluster_truth import CheckedView, Summary, checked_watch, until_views_tell_the_truth  # noqa: E402

__all__ = ["SoakConfig", "SoakResult", "run_soak", "main"]

RESULTS: Final = HERE / "results"
_GIVEN_UP: Final = re.compile(r"^vo_cluster_gaps_given_up_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)
MUNICIPALITY: Final = "altbach"  # sees both floors: its own and the cooperation's
#: The floors and the rooms anyone may walk into (open doors); None is the hallway.
FLOORS: Final[dict[str, tuple[str | None, ...]]] = {
    "projekt": ("projekt-raum-digitales-rathaus", "projekt-lounge", "projekt-buero-it-verbund", None),
    "altbach-eg": ("altbach-buergerbuero", "altbach-teekueche", "altbach-buero-anna", None),
}
STATUSES: Final = ("available", "busy", "away", "do_not_disturb")
#: Refusals that are office life, not faults: a small room that is full.
EXPECTED_REFUSALS: Final = frozenset({"room_full"})
_TOKEN_SETTINGS: Final = load_settings(CONFIG, env={"PRESENCE_STORAGE__BACKEND": "memory"}).auth


def token(user: str, roles: tuple[str, ...] = ("staff",)) -> str:
    return mint_token(_TOKEN_SETTINGS, municipality=MUNICIPALITY, user_id=user, name=user.split(".")[0].title(),
                      roles=roles, ttl_seconds=6 * 3600)


@dataclass(frozen=True, slots=True)
class SoakConfig:
    seconds: float
    log_dir: Path
    nodes: int = 3
    movers_per_node: int = 6
    watchers_per_node: int = 3
    browsers: int = 3  # concurrent short-session loops
    grace: float = 2.0
    seed: int = 13
    node_cpus: tuple[int, ...] | None = None  # pin every node to these cores (a crowded machine)


@dataclass(slots=True)
class SoakResult:
    seconds: float = 0.0
    actions: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)  # expected ones (room_full)
    errors: Counter[str] = field(default_factory=Counter)  # anything else: unexpected
    sessions: int = 0  # sessions opened in all
    views: int = 0  # floor views kept in all
    applied: int = 0  # diffs applied by all views
    gaps: int = 0
    resyncs: int = 0
    duplicate_joins: int = 0
    duplicate_leaves: int = 0
    unknown_member: int = 0
    latencies: list[float] = field(default_factory=list)  # status -> screen, seconds
    converged_in: float | None = None
    model_mismatch: dict[str, Any] = field(default_factory=dict)  # floor -> (expected, truth) where they differ
    given_up: list[int] = field(default_factory=list)  # per node: vo_cluster_gaps_given_up_total
    node_cpu: list[float] = field(default_factory=list)
    node_rss_mib: list[float] = field(default_factory=list)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def truthful(self) -> bool:
        return (self.gaps == 0 and self.duplicate_joins == 0 and self.duplicate_leaves == 0
                and self.unknown_member == 0 and not self.errors and self.converged_in is not None
                and not self.model_mismatch)

    def markdown(self, config: SoakConfig) -> str:
        lat = sorted(self.latencies)

        def pct(p: float) -> str:
            return f"{lat[min(len(lat) - 1, int(p * len(lat)))] * 1000:.0f} ms" if lat else "-"

        rows = [
            ("duration", f"{self.seconds:.0f} s of churn on {config.nodes} nodes"),
            ("clients", f"{config.movers_per_node * config.nodes} movers, {config.watchers_per_node * config.nodes} "
                        f"watchers (both floors), {config.browsers} browser loops; {self.sessions} sessions in all"),
            ("actions", ", ".join(f"{k} {v}" for k, v in sorted(self.actions.items()))),
            ("expected refusals", ", ".join(f"{k} {v}" for k, v in sorted(self.refusals.items())) or "0"),
            ("unexpected errors", ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "**0**"),
            ("floor views", f"{self.views}, {self.applied:,} diffs applied"),
            ("sequence gaps", f"**{self.gaps}**"),
            ("resyncs", str(self.resyncs)),
            ("gaps given up by the nodes", " + ".join(map(str, self.given_up)) or "-"),
            ("duplicate joins / leaves / changes of absent members",
             f"{self.duplicate_joins} / {self.duplicate_leaves} / {self.unknown_member}"),
            ("status→screen p50 / p95 / p99 / max", f"{pct(0.5)} / {pct(0.95)} / {pct(0.99)} / {pct(1.0)}"),
            ("views equal to every node's REST occupancy",
             f"yes, {self.converged_in:.1f} s after the churn stopped" if self.converged_in is not None else "**no**"),
            ("REST equal to the movers' acknowledged actions", "yes" if not self.model_mismatch else
             f"**no**: {self.model_mismatch}"),
            ("node CPU (s) / RSS (MiB)", ", ".join(f"{c:.0f} / {r:.0f}" for c, r in zip(self.node_cpu, self.node_rss_mib))),
            ("load average at the end", " ".join(f"{x:.2f}" for x in self.load)),
        ]
        lines = ["| | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
        verdict = "**0 gaps, every view true**" if self.truthful else "**the cluster did not tell the truth**"
        return "\n".join([f"# Cluster churn soak ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
                          verdict, "", *lines, ""])


class _Soak:
    def __init__(self, config: SoakConfig, urls: list[str]) -> None:
        self.config = config
        self.urls = urls
        self.rng = random.Random(config.seed)
        self.result = SoakResult()
        self.stop = asyncio.Event()
        self.views: list[CheckedView] = []
        self.clients: list[OfficeClient] = []
        self.final_watchers: list[OfficeClient] = []  # the watchers' sessions at the end
        # person -> (floor, room, status, text) after their last acknowledged action
        self.model: dict[str, tuple[str | None, str | None, str, str]] = {}

    # ------------------------------------------------------------ helpers
    def _node(self) -> str:
        return self.rng.choice(self.urls)

    async def _connect(self, user: str, url: str | None = None) -> OfficeClient:
        client = OfficeClient(url or self._node(), token(user), request_timeout=20)
        self.clients.append(client)
        self.result.sessions += 1
        for attempt in range(5):
            try:
                return await client.connect(timeout=20)
            except ConnectRefused as refused:
                self.result.errors[f"connect:{refused.code}"] += 1
                await asyncio.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"{user} could not connect")

    async def _watch(self, client: OfficeClient, floor: str) -> CheckedView:
        view = await checked_watch(client, floor)
        if view not in self.views:
            view.on_apply = self._on_apply
            self.views.append(view)
        return view

    def _on_apply(self, floor_id: str, diff: dict[str, Any]) -> None:
        if diff["type"] == "status" and diff["text"].startswith("t"):
            try:
                self.result.latencies.append(time.time() - float(diff["text"][1:]))
            except ValueError:
                pass

    async def _request(self, kind: str, client: OfficeClient, event: str, data: Any) -> dict[str, Any] | None:
        self.result.actions[kind] += 1
        try:
            return await client.request(event, data)
        except RequestError as refused:
            (self.result.refusals if refused.code in EXPECTED_REFUSALS else self.result.errors)[refused.code] += 1
        except (TimeoutError, asyncio.TimeoutError):
            self.result.errors[f"{event}:timeout"] += 1
        return None

    async def _pause(self, low: float, high: float) -> bool:
        """Sleep a think time; False once the churn is over."""
        try:
            await asyncio.wait_for(self.stop.wait(), self.rng.uniform(low, high))
        except (TimeoutError, asyncio.TimeoutError):
            return True
        return False

    def _remember(self, client: OfficeClient) -> None:
        """What ``session.ready`` says of this person: where they are, their status."""
        assert client.ready is not None
        location, me = client.ready.get("location") or {}, client.ready["me"]
        self.model[client.person] = (location.get("floor_id"), location.get("room_id"), me["status"], me["text"])

    # ------------------------------------------------------------- actors
    async def mover(self, user: str) -> None:
        client = await self._connect(user)
        self._remember(client)
        while await self._pause(0.2, 1.2):
            r = self.rng.random()
            person = client.person
            floor, room, status, text = self.model[person]
            if r < 0.5:
                floor = self.rng.choice(list(FLOORS))
                room = self.rng.choice(FLOORS[floor])
                ack = await self._request("move", client, "presence.move", {"floor_id": floor, "room_id": room})
                if ack is not None:
                    self.model[person] = (ack["location"]["floor_id"], ack["location"]["room_id"], status, text)
            elif r < 0.8:
                status, text = self.rng.choice(STATUSES), f"t{time.time():.6f}"
                ack = await self._request("status", client, "presence.status", {"status": status, "text": text})
                if ack is not None:
                    self.model[person] = (floor, room, ack["presence"]["status"], ack["presence"]["text"])
            elif r < 0.88:
                ack = await self._request("leave", client, "presence.leave", {})
                if ack is not None:
                    self.model[person] = (None, None, status, text)
            else:  # drop the connection; back before or after the grace period, anywhere
                self.result.actions["reconnect"] += 1
                await client.disconnect()
                await asyncio.sleep(self.rng.uniform(0, 2 * self.config.grace))
                client = await self._connect(user)
                self._remember(client)

    async def watcher(self, user: str) -> None:
        client = await self._connect(user)
        for floor in FLOORS:
            await self._watch(client, floor)
        while await self._pause(20, 70):
            self.result.actions["watcher reconnect"] += 1
            await client.disconnect()
            client = await self._connect(user)
            for floor in FLOORS:
                await self._watch(client, floor)
        self.final_watchers.append(client)

    async def browser(self, k: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            client = await self._connect(f"soak-b{k}-{n % 7}.{MUNICIPALITY}")
            first, second = self.rng.sample(list(FLOORS), 2)
            self.result.actions["browse"] += 1
            await self._watch(client, first)
            if await self._pause(0.5, 4):
                await self._watch(client, second)
                if await self._pause(0.5, 4):
                    await client.unwatch(first)
                    await self._pause(0.2, 2)
            await client.disconnect()

    # ---------------------------------------------------------------- run
    async def run(self) -> SoakResult:
        cfg = self.config
        movers = [f"soak-m{i:02}.{MUNICIPALITY}" for i in range(cfg.movers_per_node * cfg.nodes)]
        watchers = [f"soak-w{i:02}.{MUNICIPALITY}" for i in range(cfg.watchers_per_node * cfg.nodes)]
        tasks = [asyncio.create_task(self.watcher(u), name=u) for u in watchers]
        await asyncio.sleep(1)  # watchers first: they see the whole churn
        tasks += [asyncio.create_task(self.mover(u), name=u) for u in movers]
        tasks += [asyncio.create_task(self.browser(k), name=f"browser{k}") for k in range(cfg.browsers)]
        started = time.monotonic()
        try:
            done, _ = await asyncio.wait(tasks, timeout=cfg.seconds, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # an actor that broke is a harness failure: raise it
            self.stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
        finally:
            self.stop.set()
            for task in tasks:
                task.cancel()
        self.result.seconds = time.monotonic() - started
        # The churn is over: browsers are gone, every mover is connected.
        movers_now = {c.person: c for c in self.clients if c.sio.connected and c.person.split("/")[1].startswith("soak-m")}
        assert len(movers_now) == len(movers), f"{len(movers_now)} of {len(movers)} movers connected"
        await self.check_truth()
        return self.result

    async def check_truth(self) -> None:
        admin = token("soak-admin.altbach", roles=("staff", "admin"))
        converged = 0.0
        for floor in FLOORS:
            truth, took = await until_views_tell_the_truth(self.final_watchers, self.urls, floor, admin, timeout=60)
            converged = max(converged, took)
            expected: Summary = {p: (room, status, text) for p, (f, room, status, text) in self.model.items()
                                 if f == floor}
            if truth.members != expected:
                self.result.model_mismatch[floor] = {
                    p: (expected.get(p), truth.members.get(p)) for p in set(expected) | set(truth.members)
                    if expected.get(p) != truth.members.get(p)}
        self.result.converged_in = converged

    def tally(self) -> None:
        r = self.result
        r.views = len(self.views)
        r.applied = sum(v.applied for v in self.views)
        r.gaps = sum(v.gaps for v in self.views)
        r.resyncs = sum(c.resyncs for c in self.clients)
        r.duplicate_joins = sum(v.duplicate_joins for v in self.views)
        r.duplicate_leaves = sum(v.duplicate_leaves for v in self.views)
        r.unknown_member = sum(v.unknown_member for v in self.views)

    async def close(self) -> None:
        for client in self.clients:
            if client.sio.connected:
                await client.disconnect()


async def _soak(config: SoakConfig, stack: Stack) -> SoakResult:
    soak = _Soak(config, stack.urls)
    try:
        await soak.run()
    finally:
        soak.tally()
        await soak.close()
    return soak.result


def run_soak(config: SoakConfig) -> SoakResult:
    """Start Redis and the nodes, soak, stop every process by PID; the figures."""
    config.log_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PRESENCE_STORAGE__BACKEND": "memory",  # the campus lives in Redis in cluster mode
        "PRESENCE_PRESENCE__GRACE_SECONDS": str(config.grace),
        "PRESENCE_LIMITS__EVENTS_PER_SECOND": "1000",
        "PRESENCE_LIMITS__BURST": "1000",
        "PRESENCE_LOG__LEVEL": "warning",
        "PRESENCE_LOG__FORMAT": "json",
    }
    stack = Stack(CONFIG, config.log_dir, nodes=config.nodes, redis=True, cpus=config.node_cpus, env=env)
    try:
        stack.start()
        result = asyncio.run(_soak(config, stack))
        if not stack.alive():
            raise RuntimeError(f"a process of the stack died; logs in {config.log_dir}")
        result.given_up = [_gaps_given_up(url) for url in stack.urls]
        result.node_cpu = [cpu_seconds(n.pid) for n in stack.nodes]
        result.node_rss_mib = [rss_kb(n.pid) / 1024 for n in stack.nodes]
        result.load = load_average()
        return result
    finally:
        stack.stop()


def _gaps_given_up(url: str) -> int:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return int(sum(float(m.group(1)) for m in _GIVEN_UP.finditer(text)))


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt  # unwinds through run_soak's finally: every child stopped by PID


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="length of the churn (default 10)")
    length.add_argument("--seconds", type=float, help="length of the churn, in seconds")
    parser.add_argument("--movers-per-node", type=int, default=6)
    parser.add_argument("--watchers-per-node", type=int, default=3)
    parser.add_argument("--browsers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--node-cpus", help="pin all nodes to these cores, e.g. 0 (a crowded machine)")
    parser.add_argument("--logs", type=Path, help="server and Redis logs (default: a temporary directory)")
    parser.add_argument("--timeout", type=float, help="hard limit for the whole run (default: churn + 5 min)")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else 60 * (args.minutes if args.minutes is not None else 10)
    log_dir = args.logs or Path(tempfile.mkdtemp(prefix="vo-soak-"))
    config = SoakConfig(seconds=seconds, log_dir=log_dir, movers_per_node=args.movers_per_node,
                        watchers_per_node=args.watchers_per_node, browsers=args.browsers, seed=args.seed,
                        node_cpus=tuple(int(c) for c in args.node_cpus.split(",")) if args.node_cpus else None)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGALRM, _interrupt)
    signal.alarm(int(args.timeout or seconds + 300))
    try:
        result = run_soak(config)
    except KeyboardInterrupt:
        print(f"interrupted (Ctrl-C, SIGTERM or --timeout); every process stopped; logs in {log_dir}")
        return 2
    except Exception as exc:
        print(f"the soak failed: {exc!r}; logs in {log_dir}")
        return 2
    finally:
        signal.alarm(0)
    report = result.markdown(config) + f"\nServer and Redis logs: `{log_dir}`\n"
    print(report)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"soak-cluster-{dt.datetime.now(dt.timezone.utc):%Y-%m-%d-%H%M}.md"
    out.write_text(report)
    print(f"written to {out}")
    return 0 if result.truthful else 1


if __name__ == "__main__":
    sys.exit(main())
