"""The report of one ``loadtests.run``: ``summary.md``, charts, ``run.json``.

Inputs: what :class:`run.Run` recorded (the swarm's samples with their arrival
times, the monitor's CPU/RSS/session series, notes and harness errors) and
locust's own CSV files (``locust_stats.csv``: the steady phase, after the
statistics were reset once every user had spawned; ``locust_stats_history.csv``:
one row per second and name, percentiles over locust's 10 s window).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import office_charts
from report import percentile
from runinfo import machine, software

if TYPE_CHECKING:
    from run import Run

__all__ = ["write_report", "read_locust"]

#: What each latency row of the report means.
MEANING = {
    "walk→screen": "presence.move sent → the moved/joined diff on another watcher's screen (locust users)",
    "status→screen": "presence.status sent → the status diff on another watcher's screen",
    "knock→door": "knock.send sent → knock.incoming at the people inside",
    "knock→answer": "knock.send sent → knock.outcome at the knocker (includes the answerer's pause, behaviour.answer_delay)",
    "ring→callee": "call.ring sent → call.ring at the callee",
    "ring→answered": "call.ring sent → call.ring_outcome at the caller (includes the callee's pause, behaviour.answer_delay)",
    "signal→peer": "call.signal sent → call.signal at the other member",
    "gevent loop lag": "how late a locust worker's loop wakes a 0.5 s sleeper (the generator, not the server)",
}
_BIN = 5.0  # seconds per point of the swarm's time series


def read_locust(prefix: Path) -> dict[str, Any]:
    def rows(suffix: str) -> list[dict[str, str]]:
        path = prefix.parent / f"{prefix.name}_{suffix}.csv"
        if not path.exists():
            return []
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    return {"stats": rows("stats"), "history": rows("stats_history"), "failures": rows("failures"),
            "exceptions": rows("exceptions")}


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _ms(v: float) -> str:
    return "–" if v != v else (f"{v:.1f}" if v < 100 else f"{v:,.0f}")


def _bins(recv: Sequence[float], lat: Sequence[float], t0: float) -> dict[str, tuple[list[float], list[float]]]:
    """Swarm samples -> per-bin p50, p99 and deliveries/s."""
    buckets: dict[int, list[float]] = {}
    for r, v in zip(recv, lat):
        buckets.setdefault(int((r - t0) // _BIN), []).append(v)
    t, p50, p99, rate = [], [], [], []
    for b in sorted(buckets):
        vals = sorted(buckets[b])
        t.append((b + 0.5) * _BIN)
        p50.append(percentile(vals, 50))
        p99.append(percentile(vals, 99))
        rate.append(len(vals) / _BIN)
    return {"p50": (t, p50), "p99": (t, p99), "rate": (t, rate)}


def _history(locust: dict[str, Any], t0: float, name: str, column: str) -> tuple[list[float], list[float]]:
    t, v = [], []
    for row in locust["history"]:
        if row["Name"] == name and row[column] not in ("N/A", ""):
            t.append(_f(row["Timestamp"]) - t0)
            v.append(_f(row[column]))
    return t, v


def _sio_rate(locust: dict[str, Any], t0: float) -> tuple[list[float], list[float]]:
    """Client actions per second over time: the sio rows, connects excluded."""
    per_t: dict[float, float] = {}
    for row in locust["history"]:
        if row["Type"] == "sio" and not row["Name"].startswith(("connect", "reconnect")):
            ts = _f(row["Timestamp"]) - t0
            per_t[ts] = per_t.get(ts, 0.0) + _f(row["Requests/s"])
    keys = sorted(per_t)
    return keys, [per_t[k] for k in keys]


def write_report(run: Run, *, started: dt.datetime, code: str, argv: Sequence[str]) -> str:
    out, data, args = run.out, run.data, run.args
    t0 = run.monitor.t0 if run.monitor else started.timestamp()
    locust = read_locust(out / "locust")
    stats = [r for r in locust["stats"] if r["Name"] != "Aggregated"]
    spawned, ended = data.get("locust_spawned"), data.get("locust_ended")
    win0 = spawned or data.get("locust_started") or t0
    # The steady phase ends when locust's run time is up: the 200 users leaving at once is no steady state.
    win1 = ended or (t0 + data.get("seconds", 0))
    if data.get("locust_started"):
        win1 = min(win1, data["locust_started"] + args.duration)
    steady = [(r, v) for r, v in zip(run.swarm_recv, run.swarm_lat) if win0 <= r <= win1]
    swarm_lat = sorted(v for _, v in steady)
    swarm_changes = sum(n for t, n in run.swarm_sent_t if win0 <= t <= win1 + 2.0) / max(1e-9, win1 - win0)

    # ---------------------------------------------------------------- figures
    sessions = [sum(x or 0 for x in s) for _, s in (run.monitor.sessions if run.monitor else [])]
    held = max(sessions, default=0)
    walk = next((r for r in stats if r["Name"] == "walk→screen"), None)
    walk_p99 = _f(walk["99%"]) if walk else float("nan")
    failures = sum(int(r["Failure Count"]) for r in stats)
    # Rates over the steady window (locust's own Requests/s runs until its shutdown ended).
    span = max(1e-9, win1 - win0)
    sio_rate = sum(int(r["Request Count"]) for r in stats
                   if r["Type"] == "sio" and not r["Name"].startswith(("connect", "reconnect"))) / span
    errors = failures + run.swarm_counts["refused"] + data.get("swarm_failed", 0) + run.swarm_counts["closed"]
    server_problems = _server_log_problems(run.logs)
    errors += len(server_problems)
    data.update(sessions_held=held, locust_failures=failures, walk_p99=walk_p99, actions_per_s=sio_rate + swarm_changes,
                swarm_p99=percentile(swarm_lat, 99), harness_errors=run.harness_errors, errors=errors,
                locust_requests=sum(int(r["Request Count"]) for r in stats))

    # ---------------------------------------------------------------- charts
    charts: list[str] = []
    title = f"{args.preset}, {args.nodes} node(s)"
    if data.get("steps"):
        name = office_charts.steps_chart(out / "steps.png", data["steps"], limit=data.get("p99_limit", 200.0))
        charts += [name] if name else []
    bins = _bins(run.swarm_recv, run.swarm_lat, t0)
    lat_lines = {f"walk→screen {q} (locust)": _history(locust, t0, "walk→screen", q) for q in ("50%", "99%")}
    lat_lines.update({f"status→screen {q} (swarm)": bins[q] for q in ("p50", "p99")})
    sp = spawned - t0 if spawned else None
    for fn, kwargs in (
        (office_charts.latency_chart, dict(lines=lat_lines, limit=200.0, spawned=sp,
                                           title=f"Latency to other screens over time ({title}; locust: 10 s window, swarm: 5 s bins)")),
        (office_charts.throughput_chart, dict(lines={
            "client actions/s (locust sio requests)": _sio_rate(locust, t0),
            "walk→screen deliveries/s (locust)": _history(locust, t0, "walk→screen", "Requests/s"),
            "status→screen deliveries/s (swarm)": bins["rate"]},
            users=_history(locust, t0, "Aggregated", "User Count"), title=f"Throughput over time ({title})")),
        (office_charts.server_chart, dict(series=run.monitor.series if run.monitor else {},
                                          probe=run.monitor.probe if run.monitor else [],
                                          load=run.monitor.load if run.monitor else [],
                                          title=f"CPU and memory per process group, node responsiveness ({title})")),
    ):
        name = fn(out / f"{fn.__name__.replace('_chart', '')}.png", **kwargs)  # type: ignore[operator]
        charts += [name] if name else []

    # ---------------------------------------------------------------- markdown
    cmd = " ".join(shlex.quote(a) for a in ["python", "-m", "loadtests.run", *argv])
    load = [v for _, v in (run.monitor.load if run.monitor else [])]
    md: list[str] = [f"# Load test `{args.preset}`, {args.nodes} node(s){' over Redis' if args.nodes > 1 or args.redis else ''}"
                     f" — {started:%Y-%m-%d %H:%M}", ""]
    if data.get("steps"):
        md += _steps_section(data)
    else:
        target = walk_p99 < 200 and errors == 0 and not run.harness_errors
        md += [
            "| | |", "|---|---|",
            f"| staff online | {data.get('users', 0) + data.get('swarm_connected', 0):,} "
            f"({data.get('users', 0):,} locust users + {data.get('swarm_connected', 0):,} swarm connections) |",
            f"| sessions held (all nodes, peak of `vo_sessions`) | {held:,} |",
            f"| actions/s (steady phase) | {sio_rate + swarm_changes:,.1f} ({sio_rate:,.1f} locust requests/s + "
            f"{swarm_changes:,.1f} swarm status changes/s) |",
            f"| walk→screen p50 / p95 / p99 | {_ms(_f(walk['50%'])) if walk else '–'} / {_ms(_f(walk['95%'])) if walk else '–'}"
            f" / **{_ms(walk_p99)} ms** ({walk['Request Count'] if walk else 0} samples) |",
            f"| status→screen at the swarm p50 / p95 / p99 | {_ms(percentile(swarm_lat, 50))} / {_ms(percentile(swarm_lat, 95))}"
            f" / {_ms(percentile(swarm_lat, 99))} ms ({len(swarm_lat):,} samples) |",
            f"| errors | **{errors}** (locust failures {failures}, swarm refusals {run.swarm_counts['refused']}, "
            f"swarm connections failed {data.get('swarm_failed', 0)} / lost {run.swarm_counts['closed']}, "
            f"server log problems {len(server_problems)}) |",
            f"| target: no errors, p99 walk→screen < 200 ms | **{'met' if target else 'not met'}** |", ""]
    if run.harness_errors:
        md += ["**Harness errors:** " + "; ".join(run.harness_errors), ""]
    md += [
        "## Setup", "",
        f"* Command: `{cmd}`",
        f"* Scenario `{data.get('scenario')}`: {data.get('municipalities')} municipalities, {data.get('floors')} floors, "
        f"{data.get('staff', 0):,} staff in the scenario",
        f"* Machine: {machine()}; load average 1 min before {data.get('load_before', ('?',))[0]}, "
        f"during {(sum(load) / len(load)) if load else float('nan'):.2f} (max {max(load, default=float('nan')):.2f}), "
        f"after {data.get('load_after', ('?',))[0]} — the machine is shared: other work inflates these figures",
        f"* Software: {software()}; code {code}",
        f"* Placement: " + (f"servers and Redis on CPU {run.server_cpus}, load generators on CPU {run.gen_cpus}"
                            if run.server_cpus else "not pinned"),
        f"* Run took {data.get('seconds', 0):.0f} s; logs in `{run.logs}` (not committed)",
    ]
    if not data.get("steps"):
        md += [
            f"* Population: {data.get('users', 0):,} **locust users** (python-socketio sync clients under gevent, "
            f"{args.processes or 1} locust process(es), spawned at {args.spawn_rate:g}/s, run time {args.duration:g} s) "
            f"do every task of the working day; {data.get('swarm', 0):,} **swarm connections** (raw WebSocket, "
            f"uvloop) are the rest of the staff: online, on their home floor, watching it, one stamped status change "
            f"each every {data.get('swarm_every', 0):g} s. Locust figures are the steady phase (statistics reset once "
            f"all users had spawned); swarm figures cover the same window.",
        ]
    md += [*(f"* Note: {n}" for n in run.notes), ""]
    if stats:
        md += ["## Latency per action (locust, steady phase)", "",
               "Percentiles as locust reports them (its buckets round above 100 ms to 10 ms).", "",
               "| type | name | count | per s | failures | p50 ms | p95 ms | p99 ms | max ms | what |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        order = {"presence": 0, "sio": 1, "refused": 2, "generator": 3}
        for r in sorted(stats, key=lambda r: (order.get(r["Type"], 3), r["Name"])):
            md.append(f"| {r['Type']} | {r['Name']} | {int(r['Request Count']):,} | {int(r['Request Count']) / span:.1f} "
                      f"| {r['Failure Count']} | {_ms(_f(r['50%']))} | {_ms(_f(r['95%']))} | {_ms(_f(r['99%']))} "
                      f"| {_ms(_f(r['Max Response Time']))} | {MEANING.get(r['Name'], '')} |")
        md += ["", "`sio`: acknowledged requests (round trip); `refused`: refusals that are office life "
               "(a colleague answered the knock first, a ring to someone in do-not-disturb, ...), not failures; "
               "`presence`: the time until another person sees it.", ""]
    md += _servers_section(run, win0 - t0, win1 - t0, held)
    md += _errors_section(run, locust, server_problems)
    md += ["## Charts", "", *(f"![{c}]({c})" for c in charts), ""]
    text = "\n".join(md)
    (out / "summary.md").write_text(text + "\n", encoding="utf-8")
    (out / "run.json").write_text(json.dumps(_jsonable(data), indent=1) + "\n", encoding="utf-8")
    return "\n".join(md[: md.index("## Setup") if "## Setup" in md else 12])


def _steps_section(data: dict[str, Any]) -> list[str]:
    steps, limit = data["steps"], data.get("p99_limit", 200.0)
    good = [s for s in steps if s["p99"] <= limit and not s["failed"]]
    best = max(good, key=lambda s: s["population"]) if good else None
    kb = [s["kb_per_conn"] for s in steps if s["population"] >= 1000]
    bullets = [f"* Largest population with status→screen p99 < {limit:g} ms: "
           f"**{best['population']:,} staff online**" if best else f"* No step kept p99 under {limit:g} ms",
           f"* Server memory per connection: **{kb[-1]:.1f} KB** at {steps[-1]['population']:,} connections "
           f"(authenticated, on a floor, watching it)" if kb else "",
           f"* Each connection changes its status every {data.get('swarm_every', 0):g} s; staff fill the towns one by "
           "one (three floors of ~167 people each), so the change rate and the number of floors grow with the population.",
           "* A step whose p99 was above the limit while processes outside the run used more than 25 % of a core "
           "was measured again (at most `--retries` times); the row shows the last attempt, the note the earlier "
           "ones. *other CPU*: every process outside the run (other people's work on this machine), % of one core."]
    out = [b for b in bullets if b] + [
           "", "| staff online | new | connect/s | changes/s | deliveries/s | p50 ms | p95 ms | p99 ms | max ms "
           "| server CPU | Redis CPU | other CPU | load avg | server RSS MiB | KB/conn | failed | note |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for s in steps:
        redis = "" if s["redis_cpu"] is None else f"{s['redis_cpu']:.0f} %"
        out.append(f"| {s['population']:,} | {s['new']:,} | {s['connect_rate']:,.0f} | {s['changes_per_s']:.1f} "
                   f"| {s['deliveries_per_s']:,.0f} | {_ms(s['p50'])} | {_ms(s['p95'])} | {_ms(s['p99'])} | {_ms(s['max'])} "
                   f"| {s['server_cpu']:.0f} % | {redis} | {s['other_cpu']:.0f} % | {s['load']:.2f} "
                   f"| {sum(s['rss_kb']) / 1024:,.0f} | {s['kb_per_conn']:.1f} | {s['failed']} | {s.get('note', '')} |")
    return out + [""]


def _servers_section(run: Run, w0: float, w1: float, held: int) -> list[str]:
    if run.monitor is None:
        return []
    out = ["## Servers and load generators", "",
           f"CPU in % of one core, averaged over the steady phase ({w0:.0f}–{w1:.0f} s) and its peak second; "
           "RSS at the start of the run, at its end and the peak.", "",
           "| process | CPU avg | CPU max | RSS first MiB | RSS last MiB | RSS max MiB | sessions (last sample) |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    last_sessions = run.monitor.sessions[-1][1] if run.monitor.sessions else []
    for name, s in run.monitor.series.items():
        cpu = [c for t, c in zip(s.t, s.cpu) if w0 <= t <= w1] or s.cpu
        sess = ""
        m = re.fullmatch(r"node (\d+)", name)
        if m and int(m.group(1)) < len(last_sessions) and last_sessions[int(m.group(1))] is not None:
            sess = f"{last_sessions[int(m.group(1))]:,}"
        rss = [r for r in s.rss_mib if r > 0] or [0.0]  # a group that had not started yet, or had already stopped
        out.append(f"| {name} | {sum(cpu) / max(1, len(cpu)):.0f} % | {max(cpu, default=0):.0f} % "
                   f"| {rss[0]:.0f} | {rss[-1]:.0f} | {max(rss):.0f} | {sess} |")
    out += ["", f"Peak sessions held by all nodes together: {held:,}.", ""]
    for k in range(len(run.monitor.node_urls)):
        rtt = sorted(v[k] for t, v in run.monitor.probe if w0 <= t <= w1 and k < len(v) and v[k] is not None)
        if rtt:
            out.append(f"* node {k}: `GET /healthz` once a second from the runner, round trip p50 {_ms(percentile(rtt, 50))}, "
                       f"p99 {_ms(percentile(rtt, 99))}, max {_ms(rtt[-1])} ms (a stalled node answers late)")
    lag = [r for r in read_locust(run.out / "locust")["stats"] if r["Name"] == "gevent loop lag"]
    if lag:
        out.append(f"* locust workers: gevent loop lag p50 {_ms(_f(lag[0]['50%']))}, p99 {_ms(_f(lag[0]['99%']))}, "
                   f"max {_ms(_f(lag[0]['Max Response Time']))} ms (a late loop makes every figure it measures late)")
    return out + [""]


def _errors_section(run: Run, locust: dict[str, Any], server_problems: list[str]) -> list[str]:
    out = ["## Errors", ""]
    if locust["failures"]:
        out += ["| request | error | occurrences |", "|---|---|---:|"]
        out += [f"| {r['Method']} {r['Name']} | {r['Error'][:200].replace('|', '/')} | {r['Occurrences']} |"
                for r in locust["failures"]]
        out.append("")
    for r in locust["exceptions"][:10]:
        out.append(f"* locust exception ({r['Count']}×): {r['Message'][:200]}")
    if run.swarm_counts["refused"]:
        out.append(f"* swarm: {run.swarm_counts['refused']} status changes refused, first: `{run.swarm_first_refusal}`")
    if run.swarm_counts["closed"]:
        out.append(f"* swarm: {run.swarm_counts['closed']} connections closed by the server")
    out += [f"* server log: `{p}`" for p in server_problems[:10]]
    if len(out) == 2:
        out.append("None: no failed request, no refused or lost swarm connection, nothing in the server logs.")
    gaps = sum(int(r["Request Count"]) for r in locust["stats"] if r["Name"] == "floor.diffs gap (resync)")
    if gaps:
        out.append(f"\nNot counted as errors: the locust users' floor views saw {gaps} sequence gaps (a missing diff) "
                   "and took a fresh snapshot, as the protocol provides (docs/protocol.md §5). "
                   "`OFFICE_GAP_LOG=<file>` logs each one.")
    return out + [""]


def _server_log_problems(logs: Path) -> list[str]:
    """Warning-level server logs should stay empty; anything there is listed."""
    found = []
    for path in sorted(logs.glob("node*.log")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if re.search(r"error|exception|traceback|critical", line, re.IGNORECASE):
                found.append(f"{path.name}: {line.strip()[:200]}")
    return found


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and v != v:
        return None
    return v
