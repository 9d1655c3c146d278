"""One command, one report: a whole load test of the presence server.

    python -m loadtests.run --preset smoke                  # seconds; CI runs it
    python -m loadtests.run --preset cooperation --nodes 1  # 2,000 staff online, ~4 minutes
    python -m loadtests.run --preset cooperation --nodes 2  # the same over Redis
    python -m loadtests.run --preset region                 # the swarm steps up to the limit

Starts Redis (for several nodes, or with ``--redis``) and the nodes itself on
127.0.0.1, generates their campus and configuration from the scenario, holds the
swarm's connections, runs locust headless against the nodes, watches CPU and
memory, and writes ``loadtests/reports/<preset>-<N>n-<timestamp>/``: ``summary.md``,
PNG charts, locust's CSV and HTML reports, ``run.json``. Every process it starts
is stopped by its PID at the end, also on failure, timeout or Ctrl-C.

Presets (``--users``, ``--online``, ``--duration`` ... override them):

=============  ==============================================================
``smoke``      2 towns, 40 staff: 12 locust users, 28 in the swarm, 8 s
``cooperation``  4 towns, 2,000 staff online: 200 locust users (2 locust worker
               processes), 1,800 in the swarm; 4 minutes, ramp-up included
``region``     the swarm alone, growing town by town (2,000 staff more per
               step) until presence p99 passes 200 ms or 19,500 are online (a
               node's open-files limit here is 20,000)
=============  ==============================================================
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the load-test modules import each other flat (as bench_fanout.py does)

import office_report  # noqa: E402
from procs import rss_kb  # noqa: E402
from runinfo import code_version  # noqa: E402
from scenario import Scenario, load_scenario, write_run_files  # noqa: E402
from stack import Monitor, Stack, load_average, process_tree  # noqa: E402
from steps import run_steps  # noqa: E402
from swarm import Person, SwarmPool  # noqa: E402

REPORTS = HERE / "reports"


@dataclass(frozen=True, slots=True)
class Preset:
    scenario: str
    users: int  # locust users (active staff)
    online: int  # staff online in all: users + swarm
    duration: float  # seconds of locust run time, ramp-up included (region: seconds per step)
    spawn_rate: float
    processes: int  # locust worker processes (0: one process, no master)
    swarm_every: float | None  # seconds between status changes of one swarm connection (None: the scenario's)
    steps: tuple[int, ...] = ()  # region: swarm populations to step through


PRESETS = {
    "smoke": Preset("smoke", users=12, online=40, duration=8, spawn_rate=12, processes=0, swarm_every=2.0),
    "cooperation": Preset("cooperation", users=200, online=2000, duration=240, spawn_rate=20, processes=2,
                          swarm_every=None),
    "region": Preset("region", users=0, online=20000, duration=30, spawn_rate=0, processes=0, swarm_every=None,
                     steps=(*range(2000, 18001, 2000), 19500)),
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.run", description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=PRESETS, default="smoke")
    p.add_argument("--nodes", type=int, default=1, help="server nodes (more than one: over Redis)")
    p.add_argument("--redis", action="store_true", help="use Redis even on one node")
    p.add_argument("--users", type=int, help="locust users (active staff)")
    p.add_argument("--online", type=int, help="staff online in all (the swarm holds online - users)")
    p.add_argument("--duration", type=float, help="locust run time in s, ramp-up included (region: per step)")
    p.add_argument("--spawn-rate", type=float, help="locust users started per second")
    p.add_argument("--processes", type=int, help="locust worker processes (0: a single process)")
    p.add_argument("--swarm-every", type=float, help="seconds between two status changes of a swarm connection")
    p.add_argument("--steps", help="region: comma-separated swarm populations")
    p.add_argument("--p99-limit", type=float, default=200.0, help="region: stop stepping above this p99 (ms)")
    p.add_argument("--retries", type=int, default=2, help="region: measure a step again up to N times while its "
                   "p99 is above the limit and other processes used > 25%% of a core (a shared machine)")
    p.add_argument("--swarm-procs", type=int, default=0, help="swarm worker processes (default: 1 per 5,000)")
    p.add_argument("--pin", choices=("on", "off"), default="off",
                   help="on: servers and Redis on the first half of the cores, load generators on the rest; "
                   "off (default): the kernel places everything (locust needs more CPU than a node here)")
    p.add_argument("--out", type=Path, help="report directory (default loadtests/reports/<preset>-<N>n-<time>)")
    p.add_argument("--timeout", type=float, default=1800.0, help="hard limit for the whole run, seconds")
    args = p.parse_args(argv)
    pre = PRESETS[args.preset]
    args.users = pre.users if args.users is None else args.users
    args.online = pre.online if args.online is None else args.online
    args.duration = pre.duration if args.duration is None else args.duration
    args.spawn_rate = pre.spawn_rate if args.spawn_rate is None else args.spawn_rate
    args.processes = pre.processes if args.processes is None else args.processes
    args.step_list = [int(s) for s in args.steps.split(",")] if args.steps else list(pre.steps)
    if args.nodes < 1 or args.users < 0 or args.online < args.users:
        p.error("need --nodes >= 1 and 0 <= --users <= --online")
    return args


class Run:
    """Everything one run starts, and what it measured."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.preset = PRESETS[args.preset]
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.out: Path = args.out or REPORTS / f"{args.preset}-{args.nodes}n-{stamp}"
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.secret_dir = Path(tempfile.mkdtemp(prefix="office-run-"))  # server.toml holds the secrets
        ncpu = os.cpu_count() or 1
        pin = args.pin == "on" and ncpu >= 2
        half = max(1, ncpu // 2)
        self.server_cpus = list(range(half)) if pin else None
        self.gen_cpus = list(range(half, ncpu)) if pin else None
        self.stack: Stack | None = None
        self.pool: SwarmPool | None = None
        self.locust: subprocess.Popen[bytes] | None = None
        self.locust_pids: list[int] = []
        self.monitor: Monitor | None = None
        self.harness_errors: list[str] = []
        self.notes: list[str] = []
        self.data: dict[str, Any] = {}
        self.swarm_recv = array("d")
        self.swarm_lat = array("d")
        self.swarm_counts = {"acks": 0, "refused": 0, "sent": 0, "closed": 0}
        self.swarm_first_refusal: str | None = None
        self.swarm_sent_t: list[tuple[float, int]] = []
        self.seen_pids: set[int] = set()  # every process this run started (run.json lists them)

    # ------------------------------------------------------------ plumbing
    def groups(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        if self.stack is not None:
            for k, n in enumerate(self.stack.nodes):
                if n.proc is not None:
                    out[f"node {k}"] = [n.pid]
            if self.stack.redis is not None and self.stack.redis.proc is not None:
                out["redis"] = [self.stack.redis.pid]
        if self.pool is not None:
            out["swarm"] = self.pool.pids
        if self.locust is not None and self.locust.poll() is None:
            self.locust_pids = sorted(set(self.locust_pids) | set(process_tree(self.locust.pid)))
            out["locust"] = process_tree(self.locust.pid)
        for pids in out.values():
            self.seen_pids.update(pids)
        out["runner"] = [os.getpid()]
        return out

    def swarm_people(self, scenario: Scenario, n: int) -> list[Person]:
        staff = scenario.swarm_staff()
        if n > len(staff):
            raise RuntimeError(f"the scenario has {len(staff)} staff for the swarm, {n} wanted")
        return [Person(i, s.user_id, s.name, s.municipality, s.home_floor) for i, s in enumerate(staff[:n])]

    def swarm_procs(self, n: int) -> int:
        return self.args.swarm_procs or max(1, math.ceil(n / 5000))

    async def collect_swarm(self) -> None:
        if self.pool is None:
            return
        s = await self.pool.collect_sample()
        self.swarm_recv.extend(s.received)
        self.swarm_lat.extend(s.latency_ms)
        for k in ("acks", "refused", "sent", "closed"):
            self.swarm_counts[k] += getattr(s, k)
        self.swarm_first_refusal = self.swarm_first_refusal or s.first_refusal
        self.swarm_sent_t.append((time.time(), s.sent))

    def node_rss(self) -> list[int]:
        assert self.stack is not None
        return [rss_kb(n.pid) for n in self.stack.nodes]

    # ------------------------------------------------------------ the run
    async def run(self) -> None:
        args = self.args
        scenario = load_scenario(self.preset.scenario, active=args.users)
        server_toml, campus_toml = write_run_files(scenario, self.secret_dir)
        shutil.copy(campus_toml, self.logs / "campus.toml")
        self.data.update(scenario=scenario.name, municipalities=len(scenario.municipalities),
                         floors=sum(m.floors for m in scenario.municipalities) + scenario.project_floors,
                         staff=scenario.total_staff, users=args.users, nodes=args.nodes)
        print(f"== {args.preset}: {args.nodes} node(s){' over Redis' if args.nodes > 1 or args.redis else ''}, "
              f"report in {self.out}", flush=True)
        self.stack = Stack(server_toml, self.logs, nodes=args.nodes, redis=args.redis, cpus=self.server_cpus)
        self.stack.start()
        print(f"   nodes ready: {', '.join(self.stack.urls)}", flush=True)
        self.monitor = Monitor(self.groups, self.stack.urls)
        self.monitor.start()
        self.data["load_before"] = load_average()
        if self.preset.steps:
            await run_steps(self, scenario, server_toml)
        else:
            await self.cooperation(scenario, server_toml)
        self.data["load_after"] = load_average()

    async def cooperation(self, scenario: Scenario, server_toml: Path) -> None:
        args = self.args
        assert self.stack is not None
        n_swarm = args.online - args.users
        every = args.swarm_every or self.preset.swarm_every or scenario.behaviour.swarm_status_every
        self.data.update(swarm=n_swarm, swarm_every=every)
        if n_swarm:
            people = self.swarm_people(scenario, n_swarm)
            self.pool = SwarmPool(people, self.stack.urls, str(server_toml), self.swarm_procs(n_swarm),
                                  cpus=self.gen_cpus)
            self.pool.start()
            await self.pool.prepare()
            before = self.node_rss()
            ok, failed, error, took = await self.pool.connect_upto(n_swarm)
            await asyncio.sleep(1.0)
            after = self.node_rss()
            self.data.update(swarm_connected=ok, swarm_failed=failed, swarm_connect_s=took,
                             rss_before_kb=before, rss_after_swarm_kb=after)
            print(f"   swarm: {ok} connected in {took:.1f}s" + (f", {failed} failed ({error})" if failed else ""),
                  flush=True)
            if failed:
                self.harness_errors.append(f"{failed} swarm connections failed: {error}")
            await self.pool.set_activity(every)
        await self.run_locust(scenario, server_toml)

    async def run_locust(self, scenario: Scenario, server_toml: Path) -> None:
        args = self.args
        assert self.stack is not None
        if args.users == 0:
            return
        prefix = self.out / "locust"
        argv = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
                "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.duration:g}s", "--stop-timeout", "5",
                "--host", self.stack.urls[0], "--office-nodes", ",".join(self.stack.urls),
                "--office-scenario", self.preset.scenario, "--office-config", str(server_toml),
                "--office-active", str(args.users), "--csv", str(prefix), "--csv-full-history",
                "--html", str(self.out / "locust.html"), "--only-summary", "--reset-stats",
                "--loglevel", "INFO"]  # INFO: "All users spawned" marks the steady phase
        if args.processes:
            argv += ["--processes", str(args.processes)]
        log = open(self.logs / "locust.log", "wb")
        cpus = self.gen_cpus
        # gevent reports a greenlet that blocks its loop for more than a second (with its stack) in
        # locust.log: such a block stalls every user of that process and every figure it measures.
        env = {**os.environ, "GEVENT_MONITOR_THREAD_ENABLE": "true", "GEVENT_MAX_BLOCKING_TIME": "1.0"}
        self.locust = subprocess.Popen(
            argv, cwd=HERE.parent, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True, preexec_fn=(lambda: os.sched_setaffinity(0, set(cpus))) if cpus else None)
        log.close()
        started = time.time()
        self.data["locust_started"] = started
        print(f"   locust: {args.users} users at {args.spawn_rate:g}/s for {args.duration:g}s "
              f"({args.processes or 1} process(es))", flush=True)
        # Locust stops its users within --stop-timeout (5 s) after its run time. Now and then (under load,
        # about one run in ten on this machine) its shutdown stalls after "--run-time limit reached" with
        # its loop idle; a SIGTERM then runs the shutdown again and it writes its statistics and exits.
        nudge_at = time.monotonic() + args.duration + 25
        give_up_at = nudge_at + 30
        nudged = False
        spawned_at: float | None = None
        while self.locust.poll() is None:
            now = time.monotonic()
            if now > give_up_at:
                self.harness_errors.append(f"locust did not exit even after SIGTERM (stacks in {self.logs / 'locust.log'})")
                break
            if now > nudge_at and not nudged:
                nudged = True
                for sig in (signal.SIGUSR1, signal.SIGUSR2):  # thread and greenlet stacks into locust.log
                    for pid in process_tree(self.locust.pid):
                        try:
                            os.kill(pid, sig)
                        except ProcessLookupError:
                            pass
                    await asyncio.sleep(0.5)
                self.locust.send_signal(signal.SIGTERM)
                self.notes.append("locust's shutdown stalled after its run time; a SIGTERM finished it (its thread "
                                  "and greenlet stacks are in logs/locust.log)")
            if not self.stack.alive():
                self.harness_errors.append("a server process died during the run")
                break
            await asyncio.sleep(2.0)
            await self.collect_swarm()
            if spawned_at is None and b"All users spawned" in (self.logs / "locust.log").read_bytes():
                spawned_at = time.time()
                print(f"   all users spawned after {spawned_at - started:.0f}s; statistics reset", flush=True)
        await self.collect_swarm()
        self.data["locust_spawned"] = spawned_at
        self.data["locust_exit"] = self.locust.returncode
        self.data["locust_ended"] = time.time()
        if self.locust.returncode not in (0, 1):  # 1: some requests failed (reported), not a broken harness
            self.harness_errors.append(f"locust exited with {self.locust.returncode}; see logs/locust.log")

    # ------------------------------------------------------------ teardown
    def stop_everything(self) -> None:
        if self.locust is not None and self.locust.poll() is None:
            pids = process_tree(self.locust.pid)
            self.locust.send_signal(signal.SIGTERM)
            try:
                self.locust.wait(15)
            except subprocess.TimeoutExpired:
                for pid in reversed(pids):  # workers first, then the master: each by its PID
                    _kill_locust(pid)
                self.locust.wait(5)
        for pid in self.locust_pids:  # a forked worker that outlived its master
            _kill_locust(pid)
        if self.pool is not None:
            try:
                self.pool.stop()
            except Exception as exc:
                print(f"warning: swarm did not stop cleanly: {exc}", file=sys.stderr)
        if self.monitor is not None:
            self.monitor.halt()
        if self.stack is not None:
            self.stack.stop()
        shutil.rmtree(self.secret_dir, ignore_errors=True)
        self.groups()
        self.data["pids"] = sorted(self.seen_pids)


def _kill_locust(pid: int) -> None:
    """SIGKILL ``pid`` if it still is one of our locust processes (a PID may have been reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"locustfile.py" in f.read():
                os.kill(pid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        print("the load tests need the `load` extra: .venv/bin/pip install -e '.[load]'", file=sys.stderr)
        return 2
    run = Run(args)
    if run.gen_cpus:
        os.sched_setaffinity(0, set(run.gen_cpus))
    started, code = dt.datetime.now(), code_version()
    t0 = time.monotonic()
    interrupted: str | None = None

    def backstop(signum: int, frame: Any) -> None:  # only if cancellation itself hangs
        print("!! hard timeout: stopping everything", file=sys.stderr, flush=True)
        run.stop_everything()
        os._exit(3)

    async def guarded() -> None:
        # SIGTERM cancels the run like Ctrl-C does (a Python-level handler that raises does not
        # get through uvloop); the finally below then stops everything by PID.
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await asyncio.wait_for(run.run(), args.timeout)

    signal.signal(signal.SIGALRM, backstop)
    signal.alarm(int(args.timeout) + 120)
    try:
        uvloop.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError, asyncio.TimeoutError, TimeoutError) as exc:
        interrupted = ("interrupted" if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError))
                       else f"timed out after {args.timeout:g}s")
    except Exception as exc:
        import traceback

        traceback.print_exc()
        interrupted = f"failed: {type(exc).__name__}: {exc}"
    finally:
        run.stop_everything()
        signal.alarm(0)
    if interrupted:
        run.harness_errors.append(f"run {interrupted}")
    run.data["seconds"] = time.monotonic() - t0
    code_after = code_version()
    if code_after != code:
        code += f"; changed during the run, at the end: {code_after}"
    summary = office_report.write_report(run, started=started, code=code, argv=sys.argv[1:] if argv is None else argv)
    print(f"\n{summary}\nreport: {run.out}")
    return 2 if run.harness_errors else 0


if __name__ == "__main__":
    sys.exit(main())
