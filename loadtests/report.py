"""Figures of a fan-out run and their Markdown tables. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Iterable, Sequence

__all__ = ["StepResult", "IdleResult", "percentile", "markdown", "sustained", "LATENCY_TARGET_MS"]

LATENCY_TARGET_MS: Final = 100.0
TARGET_RATE: Final = 50.0  # changes per second at 1,000 watchers, one node
IDLE_TARGET_KB: Final = 25.0
LABELS: Final = {
    "ours": "ours (presence server)",
    "socketio": "ref 1: python-socketio + AsyncRedisManager",
    "bare": "ref 2: bare aiohttp broadcaster",
}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), -(-len(sorted_values) * q // 100)))
    return float(sorted_values[int(rank) - 1])


@dataclass(slots=True)
class StepResult:
    nodes: int
    target: str
    rate: float
    watchers: int
    sent: int = 0
    received: int = 0
    frames: int = 0
    delivered_per_s: float = 0.0
    p50: float = float("nan")
    p95: float = float("nan")
    p99: float = float("nan")
    max: float = float("nan")
    server_cpu: float = 0.0  # percent of one core, summed over the nodes
    redis_cpu: float | None = None
    gen_cpu: float = 0.0  # percent of one core, workers + driver
    other_cpu: float = 0.0  # percent of one core, every process outside the benchmark
    driver_lag_ms: float = 0.0
    refused: int = 0
    note: str = ""
    skipped: bool = False

    @property
    def expected(self) -> int:
        return self.sent * self.watchers

    @property
    def missing(self) -> int:
        return self.expected - self.received

    @property
    def ok(self) -> bool:
        return not self.skipped and self.missing == 0 and self.p99 <= LATENCY_TARGET_MS


@dataclass(slots=True)
class IdleResult:
    target: str
    requested: int
    connected: int
    failed: int
    server_rss_before_kb: int
    server_rss_after_kb: int
    gen_kb_per_conn: float
    connect_seconds: float
    note: str = ""

    @property
    def kb_per_conn(self) -> float:
        return (self.server_rss_after_kb - self.server_rss_before_kb) / self.connected if self.connected else float("nan")


@dataclass(slots=True)
class RunInfo:
    command: str
    started: str
    machine: str
    software: str
    code: str
    placement: str
    gen_cores: int
    notes: list[str] = field(default_factory=list)


def sustained(steps: Iterable[StepResult]) -> StepResult | None:
    """The highest-rate step that met p99 <= 100 ms with nothing missing."""
    good = [s for s in steps if s.ok]
    return max(good, key=lambda s: s.rate) if good else None


def _ms(v: float) -> str:
    if v != v:  # nan
        return "–"
    return f"{v:.1f}" if v < 1000 else f"{v:,.0f}"


def _n(v: float) -> str:
    return f"{v:,.0f}"


def markdown(info: RunInfo, steps: list[StepResult], idle: list[IdleResult]) -> str:
    out: list[str] = [f"# Fan-out benchmark, {info.started}", ""]
    out += [
        f"* Command: `{info.command}`",
        f"* Machine: {info.machine}",
        f"* Software: {info.software}",
        f"* Code: {info.code}",
        f"* Placement: {info.placement}",
        "* CPU columns are percent of one core (100 = one core busy), measured from "
        "/proc/PID/stat over the step (driver start to end of drain). *gen* is the load "
        f"generator's workers plus the driver; it can use at most {info.gen_cores * 100} %: "
        "near that, the generator, not the server, may have set the limit. Loopback TCP work "
        "is charged to the process that makes the system call (the server's sends, the "
        "generator's receives). *other* is every process outside the benchmark (kernel threads "
        "included): well above a few %, something else on the machine disturbed that step.",
        "",
    ]
    if info.notes:
        out += [*(f"> {n}" for n in info.notes), ""]

    out += ["## Fan-out: one floor, every change to every watcher", ""]
    out += [
        "| nodes | target | changes/s | sent | expected | received | missing | delivered/s | diffs/frame "
        "| p50 ms | p95 ms | p99 ms | max ms | p99 ≤ 100 | server CPU | redis CPU | gen CPU | other CPU "
        "| driver lag ms | note |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in steps:
        if s.skipped:
            out.append(f"| {s.nodes} | {s.target} | {s.rate:g} | | | | | | | | | | | – | | | | | | {s.note} |")
            continue
        per_frame = s.received / s.frames if s.frames else float("nan")
        redis = "" if s.redis_cpu is None else f"{s.redis_cpu:.0f} %"
        out.append(
            f"| {s.nodes} | {s.target} | {s.rate:g} | {s.sent:,} | {s.expected:,} | {s.received:,} | {s.missing:,} "
            f"| {_n(s.delivered_per_s)} | {per_frame:.2f} | {_ms(s.p50)} | {_ms(s.p95)} | {_ms(s.p99)} | {_ms(s.max)} "
            f"| {'yes' if s.ok else 'no'} | {s.server_cpu:.0f} % | {redis} | {s.gen_cpu:.0f} % | {s.other_cpu:.0f} % | {s.driver_lag_ms:.1f} "
            f"| {s.note} |"
        )
    out.append("")

    out += ["## Max sustained rate (p99 ≤ 100 ms, nothing missing)", ""]
    out += [
        "| nodes | target | max sustained changes/s | delivered/s there | peak delivered/s (any step) | vs bare (sustained) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    verdicts: list[str] = []
    for nodes in sorted({s.nodes for s in steps}):
        at = [s for s in steps if s.nodes == nodes]
        rates_tried = sorted({s.rate for s in at})
        top = rates_tried[-1] if rates_tried else 0
        best: dict[str, StepResult | None] = {}
        for target in dict.fromkeys(s.target for s in at):
            best[target] = sustained(s for s in at if s.target == target)
        bare_best = best.get("bare")
        for target, b in best.items():
            runs = [s for s in at if s.target == target and not s.skipped]
            if not runs:
                out.append(f"| {nodes} | {target} | – | – | – | – |")
                continue
            peak = max(s.delivered_per_s for s in runs)
            rate = "none" if b is None else (f"≥ {b.rate:g}" if b.rate == top else f"{b.rate:g}")
            there = "–" if b is None else _n(b.delivered_per_s)
            ratio = "–"
            if bare_best is not None and target != "bare":
                mine = 0.0 if b is None else b.delivered_per_s
                mine_capped = b is not None and b.rate == top  # its real ceiling is higher
                bare_capped = bare_best.rate == top
                value = mine / bare_best.delivered_per_s
                if mine_capped and bare_capped:
                    ratio = f"? (both held {top:g}/s)"
                else:
                    ratio = ("≥ " if mine_capped else "≤ " if bare_capped else "") + f"{value:.2f}"
            out.append(f"| {nodes} | {target} | {rate} | {there} | {_n(peak)} | {ratio} |")
        ours = best.get("ours")
        watchers = at[0].watchers if at else 0
        if nodes == 1 and any(s.target == "ours" and not s.skipped for s in at):
            hit = ours is not None and ours.rate >= TARGET_RATE
            untested = top < TARGET_RATE and (ours is None or ours.rate == top)
            verdicts.append(
                f"* Target, {watchers:,} watchers on one node, p99 ≤ 100 ms at ≥ {TARGET_RATE:g} changes/s: "
                f"**{'not tested' if untested else 'met' if hit else 'not met'}** (sustained: "
                + ("none" if ours is None else ("≥ " if ours.rate == top else "") + f"{ours.rate:g}/s") + ")"
                + ("" if watchers >= 1000 else " — fewer watchers than the target's 1,000")
            )
            if bare_best is not None:
                mine = 0.0 if ours is None else ours.delivered_per_s
                half = mine >= 0.5 * bare_best.delivered_per_s
                caveat = ""
                if bare_best.rate == top and not half:
                    caveat = "; bare held the highest rate tried, so its ceiling is higher still"
                elif ours is not None and ours.rate == top and half:
                    caveat = "; ours held the highest rate tried"
                verdicts.append(
                    f"* Target, at least half of the bare broadcaster's sustained deliveries/s: "
                    f"**{'met' if half else 'not met'}** ({_n(mine)} vs {_n(bare_best.delivered_per_s)}/s{caveat})"
                )
    out.append("")
    out += verdicts + ([""] if verdicts else [])
    out += [
        "*vs bare*: delivered/s at the target's max sustained rate over the bare broadcaster's at "
        "its own. `≥` when the target held even the highest rate tried (its ceiling is higher), "
        "`≤` when bare did; a target that never met p99 ≤ 100 ms counts as 0.",
        "",
    ]

    if idle:
        out += ["## Idle connections: memory per connection", ""]
        out += [
            "| target | connections | failed | connect time s | server RSS before MiB | after MiB | KB/connection "
            "| ≤ 25 KB | generator KB/connection | note |",
            "|---|---:|---:|---:|---:|---:|---:|:---:|---:|---|",
        ]
        for r in idle:
            kb = r.kb_per_conn
            verdict = "–" if kb != kb else ("yes" if kb <= IDLE_TARGET_KB else "no")
            out.append(
                f"| {r.target} | {r.connected:,} | {r.failed:,} | {r.connect_seconds:.1f} "
                f"| {r.server_rss_before_kb / 1024:.1f} | {r.server_rss_after_kb / 1024:.1f} | {kb:.1f} | {verdict} "
                f"| {r.gen_kb_per_conn:.1f} | {r.note} |"
            )
        out += [
            "",
            "KB/connection = (server VmRSS after − before) / connections, KiB; for ours each "
            "connection is authenticated and watches `projekt`.",
            "",
        ]
    return "\n".join(out)
