"""Replay on a real broker: by offset and by time, into a topic and a file, compared with the live outputs."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.builders import many_claims
from tests.integration.conftest import CLI, Deployment, consume, decode
from worker.connection import KafkaConnection
from worker.policy_files import bundled_policy_dir

pytestmark = pytest.mark.integration

TOTAL = 3000
T0 = 1_756_684_800_000  # 2025-09-01T00:00:00Z
T1 = 1_756_771_200_000  # 2025-09-02T00:00:00Z


async def produce_with_times(servers: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaConnection.plaintext(servers).producer(linger_ms=5)
    await producer.start()
    try:
        half = len(values) // 2
        futures = []
        for n, value in enumerate(values):
            stamp = (T0 if n < half else T1) + n
            key = json.loads(value)["claim"]["claim_id"].encode()
            futures.append(await producer.send(topic, value, key=key, timestamp_ms=stamp))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def compared_with_live(deployment: Deployment, report_dir: Path) -> list[str]:
    """The arguments that compare a replay with the live outputs and write the report."""
    s = deployment.settings
    return ["--compare-with", s.adjudicated_topic, "--compare-with", s.pended_topic, "--report-dir", str(report_dir)]


def replay(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    env = deployment.env(0)
    env.pop("CLAIMS_WEB_PORT")
    return subprocess.run([CLI, "replay", *args], env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def recorded(deployment: Deployment) -> Deployment:
    """A claims topic of TOTAL events over two days, decided by the live worker."""
    asyncio.run(
        produce_with_times(
            deployment.broker.bootstrap_servers, deployment.settings.input_topic, many_claims(TOTAL, "REPLAY")
        )
    )
    deployment.start_worker()
    assert len(deployment.consume(expected=TOTAL, timeout=180)) == TOTAL
    deployment.stop_all()
    return deployment


def test_replay_reproduces_the_live_decisions_and_reports_what_if_changes(recorded: Deployment, tmp_path: Path) -> None:
    s = recorded.settings
    servers = recorded.broker.bootstrap_servers

    # 1. By offset (the whole topic), into a topic, pinned version, compared with the live outputs.
    done = replay(
        recorded,
        "--topic",
        s.input_topic,
        "--policy-version",
        "2025.08.21",
        "--output-topic",
        f"{recorded.name}.replay",
        *compared_with_live(recorded, tmp_path / "r1"),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert (report["compared"], report["changed"]) == (TOTAL, 0)
    assert report["identical_event_ids"] == report["identical_bodies_apart_from_decided_at"] == TOTAL
    assert "- changed: 0" in (tmp_path / "r1" / "report.md").read_text()
    replayed = decode(asyncio.run(consume(servers, [f"{recorded.name}.replay"], TOTAL, 60)))
    assert len(replayed) == TOTAL

    # 2. By time (the second day only), into a file.
    out = tmp_path / "day2.jsonl"
    done = replay(
        recorded,
        "--topic",
        s.input_topic,
        "--start-time",
        "2025-09-02T00:00:00Z",
        "--output-file",
        str(out),
        "--report-dir",
        str(tmp_path / "r2"),
    )
    assert done.returncode == 0, done.stderr
    day2 = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(o["claim_id"] for o in day2) == [f"REPLAY-{n:05d}" for n in range(TOTAL // 2, TOTAL)]
    method = "scan" if recorded.broker.kind == "embedded" else "broker"
    assert f"seek: {method}" in done.stderr

    # 3. A time window that ends on the first day, from an export file of the same events? No: by time on
    #    the topic, end inclusive.
    out1 = tmp_path / "day1.jsonl"
    done = replay(
        recorded,
        "--topic",
        s.input_topic,
        "--end-time",
        "2025-09-01T23:59:59Z",
        "--output-file",
        str(out1),
        "--report-dir",
        str(tmp_path / "r3"),
    )
    assert done.returncode == 0, done.stderr
    assert len(out1.read_text().splitlines()) == TOTAL // 2

    # 4. What-if: a policy that pends mental-health lines instead of denying them.
    policy_dir = tmp_path / "policies"
    shutil.copytree(bundled_policy_dir(), policy_dir, ignore=shutil.ignore_patterns("__pycache__"))
    policy = policy_dir / "MB2300" / "2025.08.21.yaml"
    text = policy.read_text()
    text = text[: text.index("  - id: criteria.mental_health")] + text[text.index("  - id: criteria.substance_use") :]
    text = text.replace("[criteria.mental_health, criteria.substance_use]", "[criteria.substance_use]")
    text = text.replace(
        "[criteria.chronic_pain, criteria.mental_health, criteria.substance_use,",
        "[criteria.chronic_pain, criteria.substance_use,",
    )
    policy.write_text(text)
    done = replay(
        recorded,
        "--topic",
        s.input_topic,
        "--policy-dir",
        str(policy_dir),
        "--output-file",
        str(tmp_path / "whatif.jsonl"),
        *compared_with_live(recorded, tmp_path / "r4"),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r4" / "report.json").read_text())
    mental_health = TOTAL // 4  # every fourth claim has F32.9
    assert report["changed"] == mental_health
    assert report["identical_event_ids"] == TOTAL  # same input, same version name: same id; the body shows the change
    assert report["line_changes"][0]["from"] == "denied:criteria.mental_health"
    assert report["line_changes"][0]["to"] == "pended:criteria.indication_unclear"
    assert report["line_changes"][0]["count"] == mental_health


def test_a_partition_the_topic_does_not_have_is_one_clear_error(deployment: Deployment) -> None:
    done = replay(deployment, "--partitions", "1,7", "--output-file", str(deployment.tmp / "out.jsonl"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"claims-worker: error: replay: topic {deployment.settings.input_topic} has no partition(s) [7]"
    ]
