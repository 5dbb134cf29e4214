"""`make bench`: every pipeline on the same data in one run, reported as ratios.

(a) plain aiokafka consume-transform-produce loop, (b) naive Faust agent, (c) our worker end to
end (audit log to a file), (d) replay, (e) the pure core in one process; plus latency of (c) at a
fixed offered load, scale-out to two worker processes, and restart-to-ready time and resident memory
of a worker holding 0, 100,000 and 1,000,000 claims of history (`bench/restart.py`).
Throughput of a streaming pipeline = outputs / (last output timestamp - first output timestamp),
so start-up and group joins are not counted; the median of --repeats runs is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.data import claims
from bench.peers import aiokafka_loop
from bench.restart import RestartBench
from worker.connection import end_offsets
from worker.dev.broker import FAST_JOIN, Broker, start_broker
from worker.settings import Settings
from worker.stream import topics

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PARTITIONS = 4


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def proc_status(pid: int, key: str) -> int:
    """A kB figure from /proc/<pid>/status (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat): the machine's load over a span."""
    fields = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def key_of(value: bytes, by: str) -> bytes | None:
    """The key an intake gives a claim event: its member id (`member`) or its claim id (`claim`)."""
    try:
        claim = orjson.loads(value)["claim"]
        return str(claim["member"]["member_id"] if by == "member" else claim["claim_id"]).encode()
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


async def produce(servers: str, topic: str, values: list[bytes], *, by: str = "member") -> None:
    """Produce the input keyed by member id (or claim id), placed by aiokafka's (the Java) partitioner."""
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key_of(value, by)) for value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def collect(
    servers: str, topic_names: list[str], expected: int, timeout: float, alive: Any = None, *, arrival: bool = False
) -> list[Any]:
    """Read output records (value, timestamp ms) until `expected` arrived (or the producers died).

    `arrival`: stamp each record with the time it was read instead of its record timestamp (for a
    pipeline that copies the input's timestamp onto its output, as quix-streams does).
    """
    consumer = AIOKafkaConsumer(
        *topic_names,
        bootstrap_servers=servers,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_bytes=32 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            if alive is not None and not alive():
                raise RuntimeError("the process under test exited; see its stderr in the bench work directory")
            for messages in (await consumer.getmany(timeout_ms=100 if arrival else 500, max_records=10_000)).values():
                now = int(time.time() * 1000)
                out.extend((m.value, now if arrival else m.timestamp) for m in messages)
    finally:
        await consumer.stop()
    return out


async def records_in(servers: str, topic: str) -> int:
    """How many records a topic holds (end offsets less beginning offsets, over its partitions)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]  # as the bench creates every topic
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await end_offsets(consumer, tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await consumer.stop()


def rate_of(records: list[Any]) -> float:
    stamps = [stamp for _, stamp in records]
    span = (max(stamps) - min(stamps)) / 1000
    return len(records) / span if span > 0 else float("nan")


WARM_UP_SECONDS = 2
"""Seconds of the offered load before latency is measured."""

LATENCY_PEERS = ("faust_trivial", "faust_same", "aiokafka_same")
"""The pipelines measured under the worker's member-keyed latency loads (`Run.latency`)."""


class Run:
    """One benchmark run against one broker."""

    def __init__(self, broker: Broker, data: list[bytes], repeats: int, workdir: Path) -> None:
        self.broker = broker
        self.servers = broker.bootstrap_servers
        self.data = data
        self.repeats = repeats
        self.workdir = workdir
        self.input = f"bench-{uuid.uuid4().hex[:6]}.in"
        self.input_by_claim = f"{self.input}.by-claim"
        asyncio.run(self.create(self.input, self.input_by_claim))
        asyncio.run(produce(self.servers, self.input, data, by="member"))
        asyncio.run(produce(self.servers, self.input_by_claim, data, by="claim"))

    def output(self, name: str) -> str:
        """A new output topic of this run (created)."""
        topic = f"{self.input}.{name}-{uuid.uuid4().hex[:4]}"
        asyncio.run(self.create(topic))
        return topic

    async def create(self, *names: str, partitions: int = PARTITIONS) -> None:
        await topics.ensure(
            Settings(bootstrap_servers=self.servers),
            [topics.TopicSpec(name, partitions, 1, {}) for name in names],
        )

    # (b) and (c) -----------------------------------------------------------------------------
    def settings(self, group: str, output: str) -> Settings:
        """A worker group reading the bench input and writing every output to one topic."""
        return Settings(
            bootstrap_servers=self.servers,
            group_id=group,
            input_topic=self.input,
            adjudicated_topic=output,
            pended_topic=output,
            dead_letter_topic=output,
            partitions=PARTITIONS,
        )

    def worker_env(self, group: str, output: str, *, audit: Path) -> dict[str, str]:
        settings = self.settings(group, output).model_copy(
            update={
                "web_host": "127.0.0.1",
                **FAST_JOIN,
                "audit_log": str(audit),
            }
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
        env.update(settings.environment())
        return env

    def run_processes(
        self, commands: list[tuple[list[str], dict[str, str]]], output: str, *, arrival: bool = False
    ) -> dict[str, Any]:
        broker_pid = self.broker.process.pid if self.broker.process else None
        cpu_before = cpu_seconds(broker_pid) if broker_pid else 0.0
        wall_before = time.monotonic()
        processes = [
            subprocess.Popen(
                cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(self.workdir / "worker.stderr").open("ab")
            )
            for cmd, env in commands
        ]
        try:
            records = asyncio.run(
                collect(
                    self.servers,
                    [output],
                    len(self.data),
                    600,
                    alive=lambda: all(p.poll() is None for p in processes),
                    arrival=arrival,
                )
            )
            peaks = [proc_status(p.pid, "VmHWM") for p in processes]
            worker_cpu = sum(cpu_seconds(p.pid) for p in processes)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
        wall = time.monotonic() - wall_before
        if len(records) < len(self.data):
            raise RuntimeError(f"only {len(records)} of {len(self.data)} outputs arrived")
        return {
            "rate": rate_of(records),
            "outputs": len(records),
            "peak_kib": max(peaks),
            "broker_cpu_share": ((cpu_seconds(broker_pid) - cpu_before) / wall / (os.cpu_count() or 1))
            if broker_pid
            else None,
            "worker_cpu_s": worker_cpu,
        }

    def faust(self, *, work: str, batch: int, transport: str = "kafka") -> dict[str, Any]:
        """A Faust agent as a user writes it: `work` trivial or same, one at a time (batch 0) or in batches.

        `transport`: `kafka` (aiokafka) or `confluent` (Faust's librdkafka driver).
        """
        output = f"{self.input}.faust-{uuid.uuid4().hex[:4]}"
        asyncio.run(self.create(output))
        env = dict(
            os.environ,
            BENCH_APP_ID=f"faust-{uuid.uuid4().hex[:6]}",
            BENCH_BROKER=self.servers,
            BENCH_IN=self.input,
            BENCH_OUT=output,
            BENCH_WORK=work,
            BENCH_BATCH=str(batch),
            BENCH_TRANSPORT=transport,
        )
        cmd = [sys.executable, "-m", "bench.naive_faust", "worker", "--without-web", "-l", "warn"]
        return self.run_processes([(cmd, env)], output)

    def quix(self) -> dict[str, Any] | None:
        """The quix-streams application, same work, in its own environment (None when it is not built)."""
        python = ROOT / ".venv-bench-quix" / "bin" / "python"
        if not python.exists():
            return None
        output = f"{self.input}.quix-{uuid.uuid4().hex[:4]}"
        asyncio.run(self.create(output))
        cmd = [str(python), "-m", "bench.quix_app", self.servers, f"quix-{uuid.uuid4().hex[:6]}", self.input, output]
        return self.run_processes([(cmd, dict(os.environ))], output, arrival=True)

    def worker(self, processes: int = 1, *, by_claim: bool = False) -> dict[str, Any]:
        """The worker; on the input keyed by member id, or (`by_claim`) by claim id."""
        group = f"worker-{uuid.uuid4().hex[:6]}"
        output = f"{self.input}.{group}"
        settings = self.settings(group, output)
        if by_claim:
            settings = settings.model_copy(update={"input_topic": self.input_by_claim})
        asyncio.run(topics.ensure(settings))
        commands = []
        for n in range(processes):
            env = self.worker_env(group, output, audit=self.workdir / f"audit-{group}-{n}.log")
            env["CLAIMS_WEB_PORT"] = str(20000 + (uuid.uuid4().int % 20000))
            env["CLAIMS_INPUT_TOPIC"] = settings.input_topic
            commands.append(([str(BIN / "claims-worker"), "run"], env))
        result = self.run_processes(commands, output)
        # Broker hops a claim took: one, plus the forward of each claim not read on its member's partition.
        forwarded = asyncio.run(records_in(self.servers, topics.repartition_topic(settings)))
        result["hops_per_claim"] = 1 + forwarded / len(self.data)
        return result

    # (d) -------------------------------------------------------------------------------------
    def replay(self) -> dict[str, Any]:
        output = f"{self.input}.replay-{uuid.uuid4().hex[:4]}"
        asyncio.run(self.create(output))
        done = subprocess.run(
            [sys.executable, "-m", "bench.replay_once", self.servers, self.input, output],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        # Measured like the streaming pipelines (first to last output timestamp), so start-up
        # (metadata, end offsets) counts for none of them; the wall-clock rate is kept too.
        records = asyncio.run(collect(self.servers, [output], len(self.data), 120))
        return {**figures, "wall_rate": figures["rate"], "rate": rate_of(records), "outputs": len(records)}

    def latency(self, rate: int, seconds: int, *, keyed_by: str = "claim", pipeline: str = "worker") -> dict[str, Any]:
        """Latency at `rate` claims/s offered, the input keyed by claim id or member id (`keyed_by`).

        `pipeline`: `worker`, or a peer under the same load with the worker's fetch wait:
        `faust_trivial` (a naive Faust agent with trivial work: Faust's own latency here),
        `faust_same` (the naive Faust agent, same work) or `aiokafka_same` (the plain loop, same work).
        """
        group = f"latency-{uuid.uuid4().hex[:6]}"
        source, output = f"{group}.in", f"{group}.out"
        fetch_wait = str(Settings.model_fields["fetch_max_wait_ms"].default)
        env: dict[str, str]
        if pipeline == "worker":
            settings = Settings(
                bootstrap_servers=self.servers,
                group_id=group,
                input_topic=source,
                adjudicated_topic=output,
                pended_topic=output,
                dead_letter_topic=output,
                partitions=PARTITIONS,
            )
            asyncio.run(topics.ensure(settings))
            env = self.worker_env(group, output, audit=self.workdir / f"audit-{group}.log")
            env.update(
                {
                    "CLAIMS_INPUT_TOPIC": source,
                    "CLAIMS_WEB_PORT": str(20000 + (uuid.uuid4().int % 20000)),
                    "CLAIMS_PRODUCER_LINGER_MS": "1",
                }
            )
            cmd = [str(BIN / "claims-worker"), "run"]
        else:
            asyncio.run(self.create(source, output))
            env = dict(os.environ)
            if pipeline == "aiokafka_same":
                cmd = [sys.executable, "-m", "bench.peers", self.servers, source, output, fetch_wait]
            else:
                env.update(
                    BENCH_APP_ID=group,
                    BENCH_BROKER=self.servers,
                    BENCH_IN=source,
                    BENCH_OUT=output,
                    BENCH_WORK={"faust_trivial": "trivial", "faust_same": "same"}[pipeline],
                    BENCH_BATCH="0",
                    BENCH_FETCH_MAX_WAIT_MS=fetch_wait,
                )
                cmd = [sys.executable, "-m", "bench.naive_faust", "worker", "--without-web", "-l", "warn"]
        process = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            figures = asyncio.run(self._paced(source, output, rate, seconds, process.pid, keyed_by))
            return {**figures, "pipeline": pipeline}
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)

    async def _paced(
        self, source: str, output: str, rate: int, seconds: int, worker_pid: int, keyed_by: str
    ) -> dict[str, Any]:
        pool = [orjson.loads(raw) for raw in claims(2000, seed=77) if raw.startswith(b'{"schema_version":1,"event_id"')]
        producer = AIOKafkaProducer(bootstrap_servers=self.servers, linger_ms=0)
        await producer.start()
        sent: dict[str, int] = {}

        async def send(n: int) -> None:
            event = dict(pool[n % len(pool)])
            event["event_id"] = str(uuid.uuid4())
            event["claim"] = {**event["claim"], "claim_id": f"LAT-{n:07d}"}
            stamp = int(time.time() * 1000)
            sent[event["event_id"]] = stamp
            value = orjson.dumps(event)
            await producer.send(source, value, key=key_of(value, keyed_by), timestamp_ms=stamp)

        warm_up = rate * WARM_UP_SECONDS
        total = rate * seconds
        try:
            for n in range(50):  # the group joins and the first batches run
                await send(n)
            await collect(self.servers, [output], 50, 120)
            sent.clear()
            # Then the offered load starts after that idle pause. Its first seconds are a warm-up,
            # not measured: the first claims after an idle pause wait longer (reported apart).
            start = time.perf_counter()
            for n in range(warm_up + total):
                if n == warm_up:
                    cpu_before, wall_before = cpu_seconds(worker_pid), time.perf_counter()
                    busy_before = machine_busy()
                delay = start + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await send(50 + n)
            # The worker's CPU over the measured load (it keeps up, or the share shows it cannot).
            cpu_share = (cpu_seconds(worker_pid) - cpu_before) / (time.perf_counter() - wall_before)
            busy_after = machine_busy()  # the load generator, the broker and the worker together
            busy = (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1)
            await producer.flush()
        finally:
            await producer.stop()
        records = await collect(self.servers, [output], 50 + warm_up + total, 120)
        # A decision names its input (`source_event_id`); the trivial peer's output is its input, changed.
        by_input = {}
        for value, stamp in records:
            output_value = orjson.loads(value)
            by_input[output_value.get("source_event_id") or output_value.get("event_id")] = stamp
        ordered = list(sent.items())  # in send order
        after_idle = [by_input[event] - stamp for event, stamp in ordered[:warm_up] if event in by_input]
        latencies = sorted(by_input[event] - stamp for event, stamp in ordered[warm_up:] if event in by_input)
        q = statistics.quantiles(latencies, n=100)
        return {
            "offered_per_s": rate,
            "seconds": seconds,
            "warm_up_seconds": WARM_UP_SECONDS,
            "samples": len(latencies),
            "p50_ms": q[49],
            "p95_ms": q[94],
            "p99_ms": q[98],
            "max_ms": latencies[-1],
            "first_second_after_idle_max_ms": max(after_idle[:rate]),
            "worker_cpu_share": cpu_share,
            "worker_cpu_ms_per_claim": cpu_share * 1000 / rate,
            "keyed_by": keyed_by,
            "machine_busy_share": busy,
        }


def core(data: list[bytes], repeats: int) -> dict[str, Any]:
    """(e) the pure core, and the whole per-claim path, in one process."""
    from claims_contracts import ClaimEvent, SourcePosition
    from worker.adjudication import adjudicate
    from worker.policy_files import load_policy_book
    from worker.processor import DeadLettered, Decided, Processor
    from worker.translate import claim_from_event

    book = load_policy_book()
    parsed = []
    for raw in data:
        try:
            parsed.append(claim_from_event(ClaimEvent.model_validate_json(raw)))
        except ValueError:
            continue
    core_rates, path_rates = [], []
    position = SourcePosition(file_line=1)
    for _ in range(repeats):
        started = time.perf_counter()
        for claim in parsed:
            adjudicate(claim, book)
        core_rates.append(len(parsed) / (time.perf_counter() - started))
        processor = Processor(book)
        started = time.perf_counter()
        for raw in data:
            result = processor.process(raw, position)
            if isinstance(result, Decided):
                result.payload  # noqa: B018 (built by `process`: the bytes the stream publishes)
            elif isinstance(result, DeadLettered):
                result.record.model_dump_json()
        path_rates.append(len(data) / (time.perf_counter() - started))
    return {"core_rate": statistics.median(core_rates), "path_rate": statistics.median(path_rates)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latency-rate", type=int, default=1000)
    parser.add_argument("--latency-seconds", type=int, default=15)
    parser.add_argument(
        "--latency-curve",
        default="250,500",
        help="lower offered loads (claims/s, comma-separated) whose latency is reported beside --latency-rate's",
    )
    parser.add_argument(
        "--history-claims",
        default="0,100000,1000000",
        help="sizes of history (claims) to restart a worker on, comma-separated",
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.json"))
    args = parser.parse_args(argv)

    workdir = Path(os.environ.get("BENCH_WORKDIR") or tempfile.mkdtemp(prefix="bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    data = claims(args.claims)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "claims": args.claims,
        "repeats": args.repeats,
        "partitions": PARTITIONS,
    }
    log("(e) pure core")
    results["core"] = core(data, args.repeats)
    broker = start_broker()
    results["broker"] = broker.kind
    try:
        run = Run(broker, data, args.repeats, workdir)
        names = (
            "plain", "aiokafka_same", "faust_floor", "faust_same", "quix_same",
            "worker", "worker_claim_keyed", "replay", "worker_x2",
        )  # fmt: skip
        series: dict[str, list[Any]] = {name: [] for name in names}
        for repeat in range(args.repeats):
            log(f"repeat {repeat + 1}/{args.repeats}: plain aiokafka loop (trivial work)")
            series["plain"].append(
                asyncio.run(aiokafka_loop(run.servers, run.input, run.output("plain"), len(data), same_work=False))
            )
            log("aiokafka loop, same work")
            series["aiokafka_same"].append(
                asyncio.run(aiokafka_loop(run.servers, run.input, run.output("loop"), len(data), same_work=True))
            )
            log("batched Faust agent, trivial work (the floor)")
            series["faust_floor"].append(run.faust(work="trivial", batch=500))
            log("naive Faust agent, same work")
            series["faust_same"].append(run.faust(work="same", batch=0))
            log("quix-streams application, same work")
            quix = run.quix()
            if quix is not None:
                series["quix_same"].append(quix)
            log("our worker (input keyed by member id)")
            series["worker"].append(run.worker(1))
            log("our worker (input keyed by claim id: every claim re-keyed)")
            series["worker_claim_keyed"].append(run.worker(1, by_claim=True))
            log("replay")
            series["replay"].append(run.replay())
            log("scale-out: two worker processes")
            series["worker_x2"].append(run.worker(2))
        results["raw"] = series
        median = statistics.median

        def rate(name: str) -> float | None:
            values = [r if isinstance(r, float) else r["rate"] for r in series[name]]
            return median(values) if values else None

        results["throughput"] = {name: rate(name) for name in names}
        results["throughput"]["replay_wall"] = median(r["wall_rate"] for r in series["replay"])
        t = results["throughput"]
        floor_time = 1 / t["faust_floor"]
        path_time = 1 / results["core"]["path_rate"]
        hops = median(r["hops_per_claim"] for r in series["worker"])
        results["faust_hops_per_claim"] = hops
        results["faust_hops_per_claim_claim_keyed"] = median(r["hops_per_claim"] for r in series["worker_claim_keyed"])
        results["ratios"] = {
            "worker_vs_faust_floor": t["worker"] * (hops * floor_time + path_time),
            "worker_vs_faust_same_work": t["worker"] / t["faust_same"],
            "worker_vs_quix_same_work": t["worker"] / t["quix_same"] if t["quix_same"] else None,
            "worker_vs_aiokafka_same_work": t["worker"] / t["aiokafka_same"],
            "replay_vs_aiokafka_same_work": t["replay"] / t["aiokafka_same"],
            "path_vs_core": results["core"]["path_rate"] / results["core"]["core_rate"],
            "two_workers_vs_one": t["worker_x2"] / t["worker"],
            "claim_keyed_vs_member_keyed": t["worker_claim_keyed"] / t["worker"],
        }
        results["peak_kib"] = {
            name: median(r["peak_kib"] for r in series[name])
            for name in ("worker", "replay", "faust_same", "faust_floor")
        }
        results["broker_cpu_share"] = {
            "worker": median(r["broker_cpu_share"] or 0 for r in series["worker"]),
            "worker_x2": median(r["broker_cpu_share"] or 0 for r in series["worker_x2"]),
        }
        log(f"latency at {args.latency_rate}/s for {args.latency_seconds}s")
        results["latency"] = run.latency(args.latency_rate, args.latency_seconds)
        curve = [int(r) for r in args.latency_curve.split(",") if r]
        results["latency_curve"] = []
        for rate in curve:
            log(f"latency at {rate}/s for {args.latency_seconds}s")
            results["latency_curve"].append(run.latency(rate, args.latency_seconds))
        # The same loads keyed by member id, as a well-configured intake keys them (decided in place).
        results["latency_member_keyed"] = []
        for rate in sorted({args.latency_rate, *curve}):
            log(f"latency at {rate}/s for {args.latency_seconds}s, keyed by member id")
            results["latency_member_keyed"].append(run.latency(rate, args.latency_seconds, keyed_by="member"))
        # The peers under the same member-keyed loads: whether a load is within reach of the stack here.
        results["latency_peers"] = []
        for rate in sorted({args.latency_rate, *curve}):
            for pipeline in LATENCY_PEERS:
                log(f"latency at {rate}/s for {args.latency_seconds}s, keyed by member id: {pipeline}")
                results["latency_peers"].append(
                    run.latency(rate, args.latency_seconds, keyed_by="member", pipeline=pipeline)
                )
        worker_p99 = {run["offered_per_s"]: run["p99_ms"] for run in results["latency_member_keyed"]}
        floor_p99 = {
            run["offered_per_s"]: run["p99_ms"]
            for run in results["latency_peers"]
            if run["pipeline"] == "faust_trivial"
        }
        results["ratios"]["p99_worker_vs_faust_trivial"] = worker_p99[args.latency_rate] / floor_p99[args.latency_rate]
        sizes = [int(n) for n in args.history_claims.split(",")]
        results["restart"] = {str(n): RestartBench(run, n).measure() for n in sizes}
        restart = results["restart"]
        if "0" in restart and "1000000" in restart:
            results["ratios"]["restart_1m_vs_empty"] = (
                restart["1000000"]["restart_ready_s"] / restart["0"]["restart_ready_s"]
            )
        if "100000" in restart and "1000000" in restart:
            results["ratios"]["rss_1m_vs_100k"] = restart["1000000"]["rss_kib"] / restart["100000"]["rss_kib"]
    finally:
        broker.stop()
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {args.out}")
    print(json.dumps({k: results[k] for k in ("throughput", "ratios", "core", "latency")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
