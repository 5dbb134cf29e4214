"""Turn docs/benchmarks.json into docs/benchmarks.md and docs/benchmarks.png."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

TARGETS = [
    ("worker / Faust floor (its hops + the per-claim path)", "ratios.worker_vs_faust_floor", 0.9, ">="),
    ("per-claim path / pure core", "ratios.path_vs_core", 0.5, ">="),
    ("replay / aiokafka loop, same work", "ratios.replay_vs_aiokafka_same_work", 0.9, ">="),
    ("two workers / one", "ratios.two_workers_vs_one", 1.5, ">="),
    ("p99 latency at 1,000/s, ms", "latency.p99_ms", 50, "<="),
    ("worker / quix-streams, same work (beyond this issue)", "ratios.worker_vs_quix_same_work", 1.0, ">="),
    ("RSS at 1,000,000 / at 100,000 claims of history", "ratios.rss_1m_vs_100k", 1.10, "<="),
    ("restart-to-ready, 1,000,000 claims of history / none", "ratios.restart_1m_vs_empty", 1.5, "<="),
]


def pick(results: dict[str, Any], path: str) -> float:
    node: Any = results
    for part in path.split("."):
        node = node[part]
    return float(node)


def _pend_records(restart: dict[str, Any]) -> str:
    """The open pend records beside a size's member records (runs before they were kept apart have none)."""
    pends = restart.get("pend_records")
    return f" (+ {pends:,} of open pends)" if pends else ""


def _latency_curve(results: dict[str, Any]) -> list[str]:
    """Latency of (c) by offered load and input key, with the CPU over the load (older runs: fewer columns)."""
    claim_keyed = sorted([*results.get("latency_curve", []), results["latency"]], key=lambda run: run["offered_per_s"])
    if len(claim_keyed) < 2:
        return []
    member_keyed = results.get("latency_member_keyed", [])
    return [
        "Latency of (c) by offered load, on input keyed by claim id (so most claims take the member hop) and"
        " on input keyed by member id (decided where they are read). Machine busy: the share of all CPUs the"
        " load generator, the broker and the worker used together over the load.",
        "",
        "| input keyed by | offered, claims/s | p50 | p95 | p99 | max | worker CPU (cores) | CPU a claim"
        " | machine busy |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {run.get('keyed_by', 'claim')} id | {run['offered_per_s']:,} | {run['p50_ms']:.0f} ms"
            f" | {run['p95_ms']:.0f} ms | {run['p99_ms']:.0f} ms"
            f" | {run['max_ms']:.0f} ms | {_or_dash(run.get('worker_cpu_share'), '{:.2f}')}"
            f" | {_or_dash(run.get('worker_cpu_ms_per_claim'), '{:.2f} ms')}"
            f" | {_or_dash(run.get('machine_busy_share'), '{:.0%}')} |"
            for run in [*claim_keyed, *member_keyed]
        ),
        "",
    ]


PEER_NAMES = {
    "faust_trivial": "naive Faust agent, trivial work",
    "faust_same": "naive Faust agent, same work",
    "aiokafka_same": "aiokafka loop, same work",
}


def _latency_peers(results: dict[str, Any]) -> list[str]:
    """The worker's member-keyed latency beside the peers' under the same loads (older runs: none)."""
    peers = results.get("latency_peers", [])
    if not peers:
        return []
    runs = sorted(
        [*({**run, "pipeline": "worker"} for run in results.get("latency_member_keyed", [])), *peers],
        key=lambda run: (run["offered_per_s"], run["pipeline"] != "worker"),
    )
    return [
        "The same member-keyed loads on the peers, each with the worker's fetch wait (the embedded broker"
        " waits out a fetch): a naive Faust agent doing trivial work is what Faust itself costs here.",
        "",
        "| offered, claims/s | pipeline | p50 | p99 | max | its CPU (cores) | machine busy |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {run['offered_per_s']:,} | {PEER_NAMES.get(run['pipeline'], 'our worker')}"
            f" | {run['p50_ms']:.0f} ms | {run['p99_ms']:.0f} ms | {run['max_ms']:.0f} ms"
            f" | {run['worker_cpu_share']:.2f} | {run['machine_busy_share']:.0%} |"
            for run in runs
        ),
        "",
    ]


def _or_dash(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = results["throughput"]
    shown = [
        ("aiokafka loop\nsame work", t["aiokafka_same"]),
        ("Faust floor\n(trivial)", t["faust_floor"]),
        ("naive Faust\nsame work", t["faust_same"]),
        ("quix-streams\nsame work", t["quix_same"] or 0),
        ("our worker", t["worker"]),
        ("worker,\nclaim-keyed", t["worker_claim_keyed"]),
        ("two workers", t["worker_x2"]),
        ("replay", t["replay"]),
        ("per-claim\npath alone", results["core"]["path_rate"]),
    ]
    names = [name for name, _ in shown]
    values = [value for _, value in shown]
    latency = results["latency"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 1]})
    colors = ["#888", "#888", "#888", "#888", "#1f77b4", "#1f77b4", "#1f77b4", "#2ca02c", "#9467bd"]
    bars = left.bar(names, values, color=colors)
    left.tick_params(axis="x", labelsize=7)
    left.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8)
    left.set_ylabel("claims per second (median)")
    left.set_title(f"Throughput, {results['claims']:,} claims, {results['broker']} broker")
    quantiles = ["p50_ms", "p95_ms", "p99_ms"]
    right.bar(["p50", "p95", "p99"], [latency[q] for q in quantiles], color="#ff7f0e")
    right.axhline(50, color="red", linestyle="--", linewidth=1, label="target p99")
    right.set_ylabel("ms")
    right.set_title(f"Worker latency at {latency['offered_per_s']:,}/s")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def markdown(results: dict[str, Any]) -> str:
    restart = results["restart"]
    sizes = sorted(restart, key=int)
    t, machine = results["throughput"], results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Regenerated by `make bench` (this page, `benchmarks.json` and `benchmarks.png`). Numbers are",
        "from one run on the machine below; compare ratios, which are measured in the same run on the",
        "same data, not absolute rates.",
        "",
        "## Method",
        "",
        f"- Data: {results['claims']:,} synthetic claim events (`bench/data.py`, seeded): every rule represented,",
        "  1 to 6 lines per claim, realistic codes, one malformed event in 500, one exact repeat in 250.",
        f"- Broker: {results['broker']}; every topic has {results['partitions']} partitions;",
        "  the input is produced once, keyed by member id with aiokafka's (the Java client's) partitioner, as a",
        "  well-configured intake keys it, and once more keyed by claim id; each pipeline reads it with its own",
        "  group (or none).",
        "- Streaming throughput = outputs / (last output timestamp - first output timestamp): group joins and",
        f"  start-up are not counted. Median of {results['repeats']} runs.",
        "- Same work (`bench/peers.py`, `SameWork`): the worker's `Processor` with a claim history, one output per",
        "  input, called by each peer: a plain aiokafka loop (batches, send, await, commit), a naive Faust agent",
        "  (one event at a time, awaited send) and a quix-streams application (`StreamingDataFrame.apply`, in its",
        "  own environment; rate on arrival times, as it copies the input's timestamps onto its outputs).",
        "- Faust floor: a batched Faust agent (`take_events(500)`) with trivial work (parse, add a field).",
        f"  `worker_vs_faust_floor` = the worker over 1 / ({results['faust_hops_per_claim']:.2f} hops x the floor's"
        " time per event + the per-claim path's time per claim); the hops a claim took are counted on the broker:",
        "  one, plus one for each claim forwarded through the repartition topic (claim-keyed input:"
        f" {results.get('faust_hops_per_claim_claim_keyed', 2):.2f}).",
        "- Our worker: `claims-worker run` in its own process, audit log to a file, full adjudication, the",
        "  re-keying hop for claims not read on their member's partition (member-keyed input is decided in",
        "  place), the member table and its changelog, outputs acknowledged before commit; on the",
        "  member-keyed input, and on the claim-keyed one.",
        "- (d) replay: `Replayer` in its own process, whole topic into a new topic; its rate is measured on its",
        "  output timestamps like (b) and (c) (the wall-clock rate, start-up included, is in `benchmarks.json`).",
        "- (e) the pure core (`adjudicate` on parsed claims) and the whole per-claim path (bytes in, JSON out)",
        "  in one process, no broker.",
        f"- Latency of (c): {results['latency']['offered_per_s']:,} claims/s offered for"
        f" {results['latency']['seconds']} s, measured after the group joins and"
        f" {results['latency']['warm_up_seconds']} s of the same load;",
        "  latency = output record timestamp - input record timestamp (same clock, ms).",
        "- Restart and memory (`bench/restart.py`): for each size, that many seeded claims are decided through",
        "  the worker's `Processor` and `ClaimHistory`, and the member records they leave are written to the",
        "  group's changelog on their members' partitions. A worker with an empty state directory recovers it",
        "  into RocksDB and decides a probe claim (cold start); then it is stopped (SIGTERM) and started again",
        f"  on the same directory to decide {restart[sizes[0]]['load_after_restart']:,} more claims of the stream,",
        "  which reach members with history",
        "  (restart). Ready = process start to its first output's timestamp; RSS is read after the last output.",
        "",
        "## Machine",
        "",
        f"{machine['cpus']} CPUs, Python {machine['python']}, {machine['platform']}. The broker shares the CPUs.",
        "",
        "## Results",
        "",
        "| pipeline | claims/s | peak RSS |",
        "|---|---|---|",
        f"| plain aiokafka loop, trivial work | {t['plain']:,.0f} | |",
        f"| aiokafka loop, same work | {t['aiokafka_same']:,.0f} | |",
        f"| batched Faust agent, trivial work (the floor) | {t['faust_floor']:,.0f}"
        f" | {results['peak_kib']['faust_floor'] / 1024:,.0f} MiB |",
        f"| naive Faust agent, same work | {t['faust_same']:,.0f}"
        f" | {results['peak_kib']['faust_same'] / 1024:,.0f} MiB |",
        f"| quix-streams application, same work | {t['quix_same'] or 0:,.0f} | |",
        f"| (c) our worker, input keyed by member id | {t['worker']:,.0f}"
        f" | {results['peak_kib']['worker'] / 1024:,.0f} MiB |",
        f"| (c) our worker, input keyed by claim id | {t['worker_claim_keyed']:,.0f} | |",
        f"| (c) two worker processes, one group | {t['worker_x2']:,.0f} | |",
        f"| (d) replay | {t['replay']:,.0f} | {results['peak_kib']['replay'] / 1024:,.0f} MiB |",
        f"| (d) replay, wall clock with start-up | {t['replay_wall']:,.0f} | |",
        f"| (e) pure core (`adjudicate`) | {results['core']['core_rate']:,.0f} | |",
        f"| (e) whole per-claim path, one process | {results['core']['path_rate']:,.0f} | |",
        "",
        f"Broker CPU share during (c): {results['broker_cpu_share']['worker']:.0%} of the machine; during two workers:"
        f" {results['broker_cpu_share']['worker_x2']:.0%}.",
        "",
        "Latency of (c): "
        + ", ".join(f"{q} {results['latency'][q + '_ms']:.0f} ms" for q in ("p50", "p95", "p99"))
        + f" ({results['latency']['samples']:,} samples, max {results['latency']['max_ms']:.0f} ms). In the first"
        f" second after an idle pause the slowest claim took {results['latency']['first_second_after_idle_max_ms']:.0f}"
        " ms.",
        "",
        *_latency_curve(results),
        *_latency_peers(results),
        "Restart and memory of one worker (RocksDB store) by the history it holds:",
        "",
        "| claims of history | member records | changelog | store on disk | cold start, ready after"
        " | restart, ready after | RSS after restart and load |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {int(n):,} | {r['member_records']:,}{_pend_records(r)} | {r['changelog_mib']:,.0f} MiB"
            f" | {r['store_mib']:,.0f} MiB"
            f" | {r['cold_start_ready_s']:.1f} s | {r['restart_ready_s']:.1f} s | {r['rss_kib'] / 1024:,.0f} MiB |"
            for n in sizes
            for r in [restart[n]]
        ),
        "",
        "## Ratios (`benchmarks.json`, `ratios`)",
        "",
        *(f"- `{name}`: {value:.2f}" for name, value in results["ratios"].items() if value is not None),
        "",
        "## Targets",
        "",
        "| target | wanted | reached | met |",
        "|---|---|---|---|",
    ]
    for name, path, wanted, sense in TARGETS:
        try:
            got = pick(results, path)
        except (KeyError, TypeError):
            lines.append(f"| {name} | {sense} {wanted:,} | not measured | no |")
            continue
        met = got >= wanted if sense == ">=" else got <= wanted
        lines.append(f"| {name} | {sense} {wanted:,} | {got:,.2f} | {'yes' if met else 'no'} |")
    floor = [
        run
        for run in results.get("latency_peers", [])
        if run["pipeline"] == "faust_trivial" and run["offered_per_s"] == results["latency"]["offered_per_s"]
    ]
    if floor:
        lines += [
            "",
            f"Under the same {floor[0]['offered_per_s']:,}/s, member-keyed, a Faust agent doing trivial work had p99"
            f" {floor[0]['p99_ms']:,.0f} ms in this run: the latency target's floor on this machine with Faust.",
        ]
    lines += ["", "![throughput and latency](benchmarks.png)", ""]
    notes = DOCS / "benchmarks-notes.md"
    if notes.exists():
        lines += [notes.read_text()]
    return "\n".join(lines)


def main() -> int:
    results = json.loads((DOCS / "benchmarks.json").read_text())
    chart(results, DOCS / "benchmarks.png")
    (DOCS / "benchmarks.md").write_text(markdown(results))
    print(f"wrote {DOCS / 'benchmarks.md'} and {DOCS / 'benchmarks.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
