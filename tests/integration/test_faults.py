"""Faults on the real broker: crashes, a frozen broker, a corpus of bad input through the live worker.

`make test` runs short versions; `make soak` (CLAIMS_SOAK=1) runs the sizes the reliability
promise is stated in: three SIGKILLs over 20,000 claims, a 30-second broker freeze over
20,000 claims, 10,000 bad inputs. Each test records its figures (tests/conftest.py prints
them; docs/reliability.md quotes them).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import Counter

import pytest

from tests.builders import many_claims
from tests.corpus import PHI, corpus
from tests.integration.conftest import (
    FIGURES,
    SOAK,
    Deployment,
    assert_exactly_once,
    consume,
    decode,
    http_get,
    outputs_by_source,
    rss_kib,
    wait_for,
    wait_until_decided,
)

pytestmark = pytest.mark.integration


def produce_claims(deployment: Deployment, total: int, prefix: str) -> set[str]:
    inputs = many_claims(total, prefix)
    deployment.produce(inputs, [json.loads(v)["claim"]["claim_id"].encode() for v in inputs])
    return {json.loads(v)["event_id"] for v in inputs}


def output_count(deployment: Deployment, at_least: int, timeout: float) -> int:
    return len(asyncio.run(consume(deployment.broker.bootstrap_servers, deployment.output_topics, at_least, timeout)))


def test_three_sigkills_at_random_points_lose_nothing_and_repeat_identically(deployment: Deployment) -> None:
    total = 20_000 if SOAK else 6_000
    seed = int(os.environ.get("CLAIMS_FAULT_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    # Kill points: after this many outputs have appeared downstream, spread over the run.
    points = sorted(rng.sample(range(total // 10, total * 8 // 10), 3))
    expected = produce_claims(deployment, total, "KILL")
    worker, _, _ = deployment.start_worker(audit_name="audit-0.log")
    seen_at_kill = []
    for n, point in enumerate(points, start=1):
        seen = output_count(deployment, point, 180)
        assert seen >= point, f"seed {seed}: only {seen} outputs before kill {n}"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        seen_at_kill.append(seen)
        worker, _, _ = deployment.start_worker(audit_name=f"audit-{n}.log")

    wait_until_decided(deployment, expected, 300)
    grouped = outputs_by_source(deployment, total)
    figures = assert_exactly_once(grouped, expected)
    assert worker.poll() is None, "the last worker is still running"
    FIGURES["sigkill"] = {**figures, "kills": 3, "outputs_at_kills": seen_at_kill, "seed": seed}


def test_a_frozen_broker_makes_the_worker_not_ready_and_it_catches_up(deployment: Deployment) -> None:
    process = deployment.broker.process
    if process is None:
        pytest.skip("only a broker this test started as a process can be frozen (here: the embedded one)")
    total = 40_000 if SOAK else 16_000  # enough that the freeze falls mid-stream
    freeze = 30.0
    deployment.extra_env.update({"CLAIMS_READY_PROBE_SECONDS": "1", "CLAIMS_READY_TIMEOUT_SECONDS": "2"})
    expected = produce_claims(deployment, total, "FREEZE")
    worker, port, audit = deployment.start_worker()
    wait_for(lambda: http_get(port, "/readyz")[0] == 200, 60, "readiness")
    before = output_count(deployment, total // 10, 120)
    assert before < total, "the freeze must fall mid-stream"

    statuses: list[tuple[int, list[str]]] = []
    process.send_signal(signal.SIGSTOP)
    try:
        until = time.monotonic() + freeze
        while time.monotonic() < until:
            status, body = http_get(port, "/readyz")
            statuses.append((status, json.loads(body).get("reasons", [])))
            assert worker.poll() is None, "the worker died while the broker was frozen"
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGCONT)
    not_ready = [reasons for status, reasons in statuses if status == 503]
    assert not_ready, "the worker never reported itself not ready while cut off"
    assert any("brokers not answering" in reasons for reasons in not_ready)

    wait_for(lambda: http_get(port, "/readyz")[0] == 200, 120, "readiness after the thaw")
    wait_until_decided(deployment, expected, 300)
    grouped = outputs_by_source(deployment, total)
    figures = assert_exactly_once(grouped, expected)
    assert worker.poll() is None, "the worker survived the outage without a restart"
    first_503 = next(i for i, (status, _) in enumerate(statuses) if status == 503) * 0.5
    events = Counter(json.loads(line)["event"] for line in audit.read_text().splitlines())
    FIGURES["broker_freeze"] = {
        **figures,
        "freeze_s": freeze,
        "outputs_before_freeze": before,
        "not_ready_after_s": first_503,
        "not_ready_polls": len(not_ready),
        "polls": len(statuses),
        "send_failed_lines": events["worker.send_failed"],
        "worker_restarts": 0,
    }


def test_a_bad_input_corpus_through_the_live_worker_gets_one_output_each_in_bounded_memory(
    deployment: Deployment,
) -> None:
    total = 10_000 if SOAK else 2_000
    inputs = corpus(total, seed=23, max_large=40 if SOAK else 15)
    # The member history is in RocksDB (the default store): memory is bounded by its caches.
    deployment.produce(inputs)
    worker, port, audit = deployment.start_worker()
    half = output_count(deployment, total // 2, 180)
    rss_half = rss_kib(worker.pid)
    outputs = decode(
        asyncio.run(consume(deployment.broker.bootstrap_servers, deployment.output_topics, total, 300, settle=3))
    )
    rss_end = rss_kib(worker.pid)
    assert worker.poll() is None, "the worker kept going"

    assert len(outputs) == total, f"{len(outputs)} outputs for {total} inputs"
    dead = [o for o in outputs if o["event_type"] == "claim.dead_lettered"]
    decided = [o for o in outputs if o["event_type"] != "claim.dead_lettered"]
    assert len(decided) + len(dead) == total
    # One decision per claim (revision 3): a claim the corpus sends again unchanged under a new event
    # id is published again with the decision it had, so outputs sharing an id are the same body.
    by_id: dict[str, set[str]] = {}
    for output in decided:
        body = json.dumps({k: v for k, v in output.items() if k != "decided_at"}, sort_keys=True)
        by_id.setdefault(output["event_id"], set()).add(body)
    assert all(len(bodies) == 1 for bodies in by_id.values())
    assert len({(o["source"]["partition"], o["source"]["offset"]) for o in dead}) == len(dead)
    for record in dead:
        assert record["reason"], record["kind"]
        assert record["errors"], record["kind"]
        for value in PHI:
            assert value not in record["reason"]
            assert all(value not in error["message"] for error in record["errors"])
    status, metrics = http_get(port, "/metrics")
    assert status == 200
    log = audit.read_text()
    for value in PHI:
        assert value not in log
        assert value.encode() not in metrics
    # Memory levels off once the bounded history is full: the second half adds little.
    assert rss_end <= rss_half * 1.15, f"RSS grew from {rss_half} KiB to {rss_end} KiB"
    kinds = Counter(o["kind"] for o in dead)
    FIGURES["bad_input_live"] = {
        "inputs": total,
        "outputs": len(outputs),
        "decided": len(decided),
        "dead_letters": dict(kinds),
        "rss_half_mib": round(rss_half / 1024, 1),
        "rss_end_mib": round(rss_end / 1024, 1),
        "worker_crashes": 0,
        "half_outputs_seen": half,
    }
