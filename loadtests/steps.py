"""The swarm's step mode: how many staff does one node hold?

The population grows town by town (``scenario.swarm_staff()`` is ordered
municipality by municipality, each town's staff on its three floors), so every
floor holds a realistic crowd and the number of floors grows with the
population; each connection keeps changing its status once per ``every``
seconds, so the change rate grows with it too. Per step:

1. connect the next people until the step's population is online (connect rate);
2. settle 3 s, then measure ``duration`` seconds: status→screen latency of
   every stamped diff that reached any connection, changes sent, server CPU;
3. memory: (RSS of the nodes − RSS after 20 warm-up connections) / connections.

A step whose p99 exceeds the limit (200 ms) while processes outside the run
used more than 25 % of a core is measured again, at most ``--retries`` (2)
more times: on this shared machine a burst of someone else's work can stall
everyone for a moment. Every attempt is listed in the report.
Stops after a step that stayed above the limit, when more than 1 % of a step's
connections fail, when a server dies, or at the last step. The answer is the
largest population whose step kept p99 under the limit.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procs import all_cpu_ticks, cpu_seconds, other_cpu_seconds
from stack import load_average
from report import percentile
from swarm import SwarmPool

if TYPE_CHECKING:
    from run import Run
    from scenario import Scenario

__all__ = ["run_steps", "WARM_UP"]

WARM_UP = 20
DISTURBED_OTHER_CPU = 25.0  # % of one core used by processes outside the run
_FD_RESERVE = 200  # descriptors a node needs besides its connections (listener, Redis, logs, ...)


async def run_steps(run: Run, scenario: Scenario, server_toml: Path) -> None:
    args = run.args
    assert run.stack is not None
    available = len(scenario.swarm_staff())
    # A node holds one file descriptor per connection; its limit is inherited from here.
    fd_cap = (resource.getrlimit(resource.RLIMIT_NOFILE)[1] - _FD_RESERVE) * run.args.nodes
    steps = [s for s in args.step_list if s <= min(available, fd_cap)] or [min(available, fd_cap)]
    if steps != args.step_list:
        run.notes.append(f"steps above {min(available, fd_cap):,} were dropped: the scenario has {available:,} staff "
                         f"for the swarm, and the open-files limit here lets a node hold at most "
                         f"{fd_cap // run.args.nodes:,} connections")
    every = args.swarm_every or run.preset.swarm_every or scenario.behaviour.swarm_status_every
    people = run.swarm_people(scenario, max(steps))
    run.pool = pool = SwarmPool(people, run.stack.urls, str(server_toml), run.swarm_procs(max(steps)),
                                cpus=run.gen_cpus)
    pool.start()
    await pool.prepare()
    await pool.connect_upto(WARM_UP)
    await asyncio.sleep(1.0)
    baseline = sum(run.node_rss())
    await pool.set_activity(every)
    online = WARM_UP
    results: list[dict[str, Any]] = []
    run.data.update(swarm_every=every, steps=results, baseline_rss_kb=baseline, p99_limit=args.p99_limit)
    print(f"   stepping {steps[0]:,} … {steps[-1]:,} staff, {args.duration:g}s per step, "
          f"one status change per connection every {every:g}s", flush=True)
    for target in steps:
        ok, failed, error, took = await pool.connect_upto(target)
        online += ok
        await asyncio.sleep(3.0)
        attempts: list[dict[str, Any]] = []
        while True:
            m = await _measure(run, args.duration)
            attempts.append(m)
            # Someone else's work on this shared machine can stall everyone for a moment: a step
            # above the limit while other processes used much CPU is measured again. A step above
            # the limit on a quiet machine is the server's own doing and stands.
            disturbed = m["other_cpu"] > DISTURBED_OTHER_CPU
            if m["p99"] <= args.p99_limit or not disturbed or len(attempts) > args.retries or not run.stack.alive():
                break
            print(f"   {online:>6,} online: p99 {m['p99']:.0f} ms (server CPU {m['server_cpu']:.0f}%, other processes "
                  f"{m['other_cpu']:.0f}%), measuring again", flush=True)
        rss = run.node_rss()
        _, open_now = await pool.rss()
        step = {
            **m, "population": online, "open": open_now, "new": ok, "failed": failed, "error": error,
            "connect_s": took, "connect_rate": ok / took if took > 0 else 0.0,
            "rss_kb": rss, "kb_per_conn": (sum(rss) - baseline) / max(1, online - WARM_UP),
            "attempts": len(attempts),
            "note": "; ".join(f"attempt {k + 1}: p99 {a['p99']:.0f} ms, other processes {a['other_cpu']:.0f}%"
                              for k, a in enumerate(attempts[:-1])),
        }
        results.append(step)
        print(f"   {online:>6,} online (+{ok:,} in {took:.1f}s = {step['connect_rate']:.0f}/s"
              + (f", {failed} failed" if failed else "") + f"): {step['changes_per_s']:.0f} changes/s, "
              f"{step['deliveries_per_s']:,.0f} deliveries/s, p50 {step['p50']:.1f} p99 {step['p99']:.1f} ms, "
              f"server CPU {step['server_cpu']:.0f}%, other {step['other_cpu']:.0f}%, RSS {sum(rss) / 1024:.0f} MiB "
              f"= {step['kb_per_conn']:.1f} KB/conn", flush=True)
        if failed > 0.01 * max(1, target - (online - ok)):
            run.notes.append(f"stopped at {online:,}: {failed} connections failed ({error})")
            break
        if not run.stack.alive():
            run.harness_errors.append("a server process died while stepping")
            break
        if not step["p99"] <= args.p99_limit:
            run.notes.append(f"stopped: p99 {step['p99']:.0f} ms > {args.p99_limit:g} ms at {online:,} online "
                             f"({len(attempts)} attempts)")
            break


async def _measure(run: Run, duration: float) -> dict[str, Any]:
    """``duration`` seconds of the current population: latency, change rate, CPU."""
    assert run.stack is not None
    node_pids = [n.pid for n in run.stack.nodes]
    redis_pid = run.stack.redis.pid if run.stack.redis is not None else None
    await run.collect_swarm()
    cpu0 = sum(cpu_seconds(p) for p in node_pids)
    redis0 = cpu_seconds(redis_pid) if redis_pid else 0.0
    everyone0 = all_cpu_ticks()
    sent0 = run.swarm_counts["sent"]
    t0 = time.time()
    while time.time() - t0 < duration:
        await asyncio.sleep(2.0)
        await run.collect_swarm()
    t1 = time.time()
    wall = t1 - t0
    ours = set(run.seen_pids) | {os.getpid()}
    lat = sorted(v for r, v in zip(run.swarm_recv, run.swarm_lat) if t0 <= r <= t1)
    return {
        "changes_per_s": (run.swarm_counts["sent"] - sent0) / wall, "samples": len(lat),
        "deliveries_per_s": len(lat) / wall,
        "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
        "max": lat[-1] if lat else float("nan"),
        "server_cpu": 100 * (sum(cpu_seconds(p) for p in node_pids) - cpu0) / wall,
        "redis_cpu": 100 * (cpu_seconds(redis_pid) - redis0) / wall if redis_pid else None,
        "other_cpu": 100 * other_cpu_seconds(everyone0, all_cpu_ticks(), ours) / wall,
        "load": load_average()[0],
        "t0": t0 - run.monitor.t0 if run.monitor else 0.0, "t1": t1 - run.monitor.t0 if run.monitor else 0.0,
    }
