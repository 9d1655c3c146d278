"""Fan-out benchmark: presence diffs from one driver to every watcher of one floor.

Starts its own Redis and server nodes on 127.0.0.1 and runs the same generator and
workload against each target in turn (ours, reference 1: python-socketio's Redis
recipe, reference 2: a bare aiohttp broadcaster), stepping through the rates; then
opens idle connections and reports memory per connection. Prints a Markdown
report and writes it to ``loadtests/results/fanout-<date>.md``.

    .venv/bin/python loadtests/bench_fanout.py
    .venv/bin/python loadtests/bench_fanout.py --watchers 200 --rates 10,50 --seconds 3 --idle 1000

Not a test: it gates nothing and prints figures. See loadtests/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import procs  # noqa: E402
import report  # noqa: E402
from driver import Driver  # noqa: E402
from procs import Children, Child, all_cpu_ticks, cpu_seconds, free_port, other_cpu_seconds, rss_kb  # noqa: E402
from report import IdleResult, StepResult  # noqa: E402
from runinfo import code_version, run_info  # noqa: E402
from targets import CONFIG, TARGETS, node_children, ours_cluster_available  # noqa: E402
from wsgen import GeneratorPool, WatcherSpec, mint_token_for, raise_nofile_limit  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: A step whose p99 or missing share is this bad has saturated the target: higher rates only take longer.
SATURATED_P99_MS = 5000.0
SATURATED_LOSS = 0.2
CONNS_PER_WORKER = 5000
#: Other processes using more than this (% of one core) during a step disturbed it: repeat it.
DISTURBED_OTHER_CPU = 20.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--watchers", type=int, default=1000, help="watchers on the floor (default 1000)")
    p.add_argument("--rates", default="10,25,50,100,200", help="changes per second, comma-separated")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each step (default 5)")
    p.add_argument("--idle", type=int, default=10000, help="idle connections for the memory test (0: skip)")
    p.add_argument("--idle-targets", default="ours,socketio,bare",
                   help="targets of the memory test (default: all three, the references for scale)")
    p.add_argument("--targets", default="ours,socketio,bare", help="fan-out targets, in order")
    p.add_argument("--nodes", default="1", help="node counts to run, comma-separated, e.g. 1,2")
    p.add_argument("--procs", type=int, default=0, help="generator worker processes (default: one per "
                   f"generator core, at least one per {CONNS_PER_WORKER} connections)")
    p.add_argument("--pin", choices=("auto", "on", "off"), default="auto",
                   help="pin servers and Redis to the first half of the cores, generator and driver to "
                   "the rest (auto: on with 2+ cores)")
    p.add_argument("--client", choices=("raw", "aiohttp"), default="raw",
                   help="generator WebSocket client: raw asyncio protocol (default) or aiohttp's")
    p.add_argument("--retries", type=int, default=2,
                   help=f"repeat a step up to this often while other processes use > {DISTURBED_OTHER_CPU:g}%% CPU")
    p.add_argument("--keep-going", action="store_true", help="run higher rates even after a target saturated")
    p.add_argument("--timeout", type=float, default=2400.0, help="hard limit for the whole run, seconds")
    p.add_argument("--out", type=Path, default=None, help="report file (default loadtests/results/fanout-<date>.md)")
    args = p.parse_args(argv)
    args.rate_list = [float(r) for r in args.rates.split(",") if r.strip()]
    args.target_list = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.idle_target_list = [t.strip() for t in args.idle_targets.split(",") if t.strip()]
    args.node_list = [int(n) for n in args.nodes.split(",") if n.strip()]
    for t in [*args.target_list, *args.idle_target_list]:
        if t not in TARGETS:
            p.error(f"unknown target {t!r} (known: {', '.join(TARGETS)})")
    if any(n < 1 for n in args.node_list) or any(r <= 0 for r in args.rate_list):
        p.error("--nodes and --rates must be positive")
    return args


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.children = Children()
        self.pools: list[GeneratorPool] = []
        self.log_dir = Path(tempfile.mkdtemp(prefix="fanout-logs-"))
        self.steps: list[StepResult] = []
        self.idle: list[IdleResult] = []
        self.notes: list[str] = []
        ncpu = os.cpu_count() or 1
        pin = args.pin == "on" or (args.pin == "auto" and ncpu >= 2)
        half = max(1, ncpu // 2)
        self.server_cpus: list[int] | None = list(range(half)) if pin else None
        self.gen_cpus: list[int] | None = list(range(half, ncpu)) if pin else None
        self.gen_cores = len(self.gen_cpus) if self.gen_cpus else ncpu
        self.settings: Any = None

    # ------------------------------------------------------------------ plumbing
    def procs_for(self, conns: int) -> int:
        if self.args.procs:
            return self.args.procs
        return max(self.gen_cores, math.ceil(conns / CONNS_PER_WORKER))

    def start_redis(self, label: str) -> Child | None:
        child = procs.redis_child(free_port(), log_path=self.log_dir / f"redis-{label}.log", cpus=self.server_cpus)
        if child is None:
            return None
        return self.children.start(child)

    def start_nodes(self, target: str, nodes: int, redis: Child | None) -> list[Child]:
        redis_url = f"redis://127.0.0.1:{redis.port}/0" if redis else None
        started = []
        for child in node_children(target, nodes, redis_url=redis_url, log_dir=self.log_dir, cpus=self.server_cpus):
            started.append(self.children.start(child))
        return started

    def stop(self, pool: GeneratorPool | None, *children: Child | None) -> None:
        if pool is not None:
            pool.stop()
            if pool in self.pools:
                self.pools.remove(pool)
        for child in children:
            if child is not None:
                self.children.stop(child)

    def new_pool(self, target: str, urls: list[str], n: int) -> GeneratorPool:
        def spec_for(indices: tuple[int, ...]) -> WatcherSpec:
            return WatcherSpec(kind=target, node_urls=tuple(urls), indices=indices, config_path=str(CONFIG),
                               client=self.args.client)

        pool = GeneratorPool(spec_for, n, self.procs_for(n), cpus=self.gen_cpus)
        self.pools.append(pool)
        pool.start()
        return pool

    def driver_token(self) -> str:
        if self.settings is None:
            from presence_server.config import load_settings

            self.settings = load_settings(str(CONFIG))
        return mint_token_for(self.settings, "altbach", "driver.altbach", "Driver", 3600)

    def skip(self, nodes: int, target: str, why: str) -> None:
        print(f"  {target} x{nodes}: skipped: {why}", flush=True)
        for rate in self.args.rate_list:
            self.steps.append(StepResult(nodes, target, rate, self.args.watchers, skipped=True, note=why))

    # ------------------------------------------------------------------ fan-out
    async def fanout(self, target: str, nodes: int) -> None:
        spec = TARGETS[target]
        if spec.max_nodes is not None and nodes > spec.max_nodes:
            return self.skip(nodes, target, f"single node only (no bus between {target} nodes)")
        if target == "ours" and nodes > 1 and not ours_cluster_available():
            print("  cluster mode not available yet", flush=True)
            return self.skip(nodes, target, "cluster mode not available yet")
        redis = None
        if spec.needs_redis or (target == "ours" and nodes > 1):
            redis = self.start_redis(f"{target}-{nodes}")
            if redis is None:
                print(f"  {procs.REDIS_INSTALL_HINT}", flush=True)
                return self.skip(nodes, target, "redis-server not installed")
        pool: GeneratorPool | None = None
        driver: Driver | None = None
        servers: list[Child] = []
        try:
            try:
                servers = self.start_nodes(target, nodes, redis)
            except (RuntimeError, TimeoutError) as exc:
                if not (target == "ours" and nodes > 1):
                    raise
                # The code reads redis.url, but a node does not come up with it (yet).
                tail = exc.args[0] if exc.args else ""
                child = getattr(exc, "child", None)
                print(f"  cluster mode not available yet: {tail}", flush=True)
                return self.skip(nodes, target, "cluster mode not available yet: a node with "
                                 f"PRESENCE_REDIS__URL did not start ({_short(child.log_tail(1) if child else tail)})")
            urls = [s.base_url for s in servers]
            pool = self.new_pool(target, urls, self.args.watchers)
            t = time.monotonic()
            ok, failed, error, _ = await pool.connect()
            print(f"  {target} x{nodes}: {ok} watchers connected in {time.monotonic() - t:.1f}s"
                  + (f", {failed} failed ({error})" if failed else ""), flush=True)
            # The driver talks to node 0; watchers are spread round-robin over all nodes.
            driver = Driver(target, urls[0], token=self.driver_token() if target == "ours" else None)
            await driver.open()
            await self.quiet(pool)
            saturated = False
            for rate in self.args.rate_list:
                if saturated and not self.args.keep_going:
                    self.steps.append(StepResult(nodes, target, rate, self.args.watchers, skipped=True,
                                                 note="skipped: saturated at a lower rate"))
                    continue
                step = await self.step(target, nodes, rate, pool, driver, servers, redis, ok)
                attempts = 1
                while step.other_cpu > DISTURBED_OTHER_CPU and attempts <= self.args.retries:
                    print(f"    {rate:g}/s: disturbed (other processes used {step.other_cpu:.0f}% CPU), "
                          "repeating", flush=True)
                    step = await self.step(target, nodes, rate, pool, driver, servers, redis, ok)
                    attempts += 1
                if attempts > 1:
                    state = "still disturbed" if step.other_cpu > DISTURBED_OTHER_CPU else "this one was not"
                    step.note = "; ".join(filter(None, [
                        f"attempt {attempts}: earlier ones disturbed by other load, {state}", step.note]))
                self.steps.append(step)
                print(f"    {rate:g}/s: delivered {step.delivered_per_s:,.0f}/s, missing {step.missing:,}, "
                      f"p50 {step.p50:.1f} p99 {step.p99:.1f} max {step.max:.1f} ms, server CPU "
                      f"{step.server_cpu:.0f}%, gen CPU {step.gen_cpu:.0f}%"
                      + (f", {step.note}" if step.note else ""), flush=True)
                if not all(s.alive() for s in servers):
                    raise RuntimeError(f"{target} server died; logs in {self.log_dir}")
                saturated = step.p99 > SATURATED_P99_MS or step.missing > SATURATED_LOSS * step.expected
        finally:
            if driver is not None:
                await driver.close()
            self.stop(pool, *servers, redis)

    async def step(
        self, target: str, nodes: int, rate: float, pool: GeneratorPool, driver: Driver,
        servers: list[Child], redis: Child | None, watchers: int,
    ) -> StepResult:
        seconds = self.args.seconds
        server_pids = [s.pid for s in servers]
        gen_pids = [*pool.pids, os.getpid()]
        t0 = time.time()
        await pool.arm(t0)
        cpu0 = _cpu(server_pids), _cpu([redis.pid] if redis else []), _cpu(gen_pids)
        everyone0 = all_cpu_ticks()
        wall0 = time.monotonic()
        run = await driver.run(rate, seconds)
        expected = run.sent * watchers
        # Drain: until everything arrived, or nothing new for 1 s, or the cap.
        cap = time.monotonic() + max(5.0, 2 * seconds)
        last_n, last_change = -1, time.monotonic()
        while True:
            n, _, _ = await pool.count()
            now = time.monotonic()
            if n >= expected or now > cap:
                break
            if n != last_n:
                last_n, last_change = n, now
            elif now - last_change > 1.0:
                break
            await asyncio.sleep(0.05)
        wall = time.monotonic() - wall0
        unacked = run.sent - (driver.counts()[0] - driver.acks_at_start) if target == "ours" else 0
        cpu1 = _cpu(server_pids), _cpu([redis.pid] if redis else []), _cpu(gen_pids)
        ours = {*server_pids, *gen_pids, *([redis.pid] if redis else [])}
        other = other_cpu_seconds(everyone0, all_cpu_ticks(), ours)
        sample = await pool.collect()
        late = await self.quiet(pool)
        lat = sorted(sample.latencies_ms)
        res = StepResult(nodes, target, rate, watchers, sent=run.sent, received=len(lat), frames=sample.frames,
                         driver_lag_ms=run.max_lag_ms, refused=run.refused)
        if lat:
            res.p50, res.p95, res.p99 = (report.percentile(lat, q) for q in (50, 95, 99))
            res.max = lat[-1]
            # From the first change to the last delivery, plus the one interval the first change owns.
            span = (sample.last_recv or run.last_sent) - run.first_sent + 1.0 / rate
            res.delivered_per_s = len(lat) / span
        res.server_cpu = 100 * (cpu1[0] - cpu0[0]) / wall
        res.redis_cpu = 100 * (cpu1[1] - cpu0[1]) / wall if redis else None
        res.gen_cpu = 100 * (cpu1[2] - cpu0[2]) / wall
        res.other_cpu = 100 * other / wall
        notes = []
        if run.refused:
            notes.append(f"{run.refused} changes refused: {run.first_refusal}")
        if late:
            notes.append(f"{late:,} arrived after the drain")
        if unacked > 0:
            notes.append(f"{unacked} changes not acknowledged by the end of the drain")
        res.note = "; ".join(notes)
        return res

    async def quiet(self, pool: GeneratorPool, still: float = 0.5, cap: float = 60.0) -> int:
        """Wait until no frame has arrived for ``still`` seconds; return how many did meanwhile."""
        deadline = time.monotonic() + cap
        _, first, _ = await pool.count()
        last, since = first, time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            _, stale, _ = await pool.count()
            if stale != last:
                last, since = stale, time.monotonic()
            elif time.monotonic() - since >= still:
                break
        return last - first

    # ------------------------------------------------------------------ idle
    async def idle_test(self, target: str) -> None:
        n = self.args.idle
        redis = None
        if TARGETS[target].needs_redis:
            redis = self.start_redis(f"idle-{target}")
            if redis is None:
                print(f"  {procs.REDIS_INSTALL_HINT}", flush=True)
                self.idle.append(IdleResult(target, n, 0, 0, 0, 0, float("nan"), 0.0, "redis-server not installed"))
                return
        warm: GeneratorPool | None = None
        pool: GeneratorPool | None = None
        servers: list[Child] = []
        try:
            servers = self.start_nodes(target, 1, redis)
            server = servers[0]
            # A few connections first, so lazy imports and first-use caches are in the baseline.
            warm = self.new_pool(target, [server.base_url], 20)
            await warm.connect()
            pool = self.new_pool(target, [server.base_url], n)
            gen_before = await pool.prepare()  # tokens minted and imports done: not per-connection memory
            await asyncio.sleep(1.0)
            before = rss_kb(server.pid)
            t = time.monotonic()
            ok, failed, error, _ = await pool.connect()
            took = time.monotonic() - t
            await asyncio.sleep(2.0)  # let the server settle (session.ready, acks, GC)
            after = rss_kb(server.pid)
            gen_after, open_now = await pool.rss()
            note = f"first failure: {error}" if error else ""
            if open_now < ok:
                note += f" {ok - open_now} closed before the measurement"
            gen_kb = (gen_after - gen_before) / ok if ok else float("nan")
            r = IdleResult(target, n, ok, failed, before, after, gen_kb, took, note.strip())
            self.idle.append(r)
            print(f"  idle {target}: {ok:,} connections in {took:.1f}s, server RSS {before / 1024:.0f} -> "
                  f"{after / 1024:.0f} MiB = {r.kb_per_conn:.1f} KB/connection; generator "
                  f"{gen_kb:.1f} KB/connection", flush=True)
        finally:
            self.stop(pool)
            self.stop(warm, *servers, redis)

    # ------------------------------------------------------------------ run
    async def run(self) -> None:
        args = self.args
        for nodes in args.node_list:
            for target in args.target_list:
                print(f"== fan-out: {target}, {nodes} node(s), {args.watchers} watchers", flush=True)
                await self.fanout(target, nodes)
        if args.idle > 0:
            for target in args.idle_target_list:
                print(f"== idle: {target}, {args.idle} connections", flush=True)
                await self.idle_test(target)

    def stop_everything(self) -> None:
        for pool in list(self.pools):
            try:
                pool.stop()
            except Exception as exc:
                print(f"warning: generator pool did not stop cleanly: {exc}")
        self.pools.clear()
        self.children.stop_all()


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        print("uvloop is missing: .venv/bin/pip install uvloop (the project's `load` extra)", file=sys.stderr)
        return 2
    limit = raise_nofile_limit()
    need = max(args.watchers, args.idle) + 100
    if limit < need:
        print(f"warning: open-files limit {limit} < {need}; raise `ulimit -Hn`", file=sys.stderr)
    bench = Bench(args)
    if bench.gen_cpus:
        os.sched_setaffinity(0, set(bench.gen_cpus))  # the driver runs in this process
    started = time.monotonic()
    code = code_version()
    started_at = dt.datetime.now()
    interrupted = None

    def backstop(signum: int, frame: Any) -> None:
        # Only if cancellation itself hangs: stop the children by PID and leave at once.
        print("!! hard timeout backstop: stopping everything", file=sys.stderr, flush=True)
        bench.stop_everything()
        os._exit(3)

    signal.signal(signal.SIGALRM, backstop)
    signal.alarm(int(args.timeout) + 120)
    try:
        uvloop.run(asyncio.wait_for(bench.run(), args.timeout))
    except (KeyboardInterrupt, asyncio.TimeoutError, TimeoutError) as exc:
        interrupted = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else (
            f"stopped by the overall timeout ({args.timeout:g}s)")
        print(f"!! {interrupted}", file=sys.stderr)
    except Exception as exc:  # still stop everything and write what was measured
        import traceback

        traceback.print_exc()
        interrupted = f"failed: {type(exc).__name__}: {exc}"
    finally:
        bench.stop_everything()
        signal.alarm(0)
    if interrupted:
        bench.notes.append(f"Incomplete run: {interrupted}.")
    bench.notes.append(f"Run took {time.monotonic() - started:.0f}s; server logs: {bench.log_dir}")
    code_after = code_version()
    if code_after != code:
        code += f"; the code changed during the run, at the end: {code_after}"
    text = report.markdown(run_info(args, bench, code, started_at), bench.steps, bench.idle)
    print()
    print(text)
    out = args.out or RESULTS / f"fanout-{dt.datetime.now().strftime('%Y-%m-%d-%H%M')}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    print(f"\nwritten to {out}")
    return 1 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
