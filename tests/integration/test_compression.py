"""Batches compressed by a third-party producer (librdkafka) are read by the worker and by replay."""

from __future__ import annotations

import json
import subprocess

import pytest
from confluent_kafka import Consumer, Producer

from tests.builders import many_claims
from tests.integration.conftest import CLI, Deployment, decode, outputs_by_source

pytestmark = pytest.mark.integration

CODECS = ("gzip", "snappy", "lz4", "zstd")
PER_CODEC = 50


def produce_with_librdkafka(servers: str, topic: str, codec: str, values: list[bytes]) -> None:
    """Produce through librdkafka, one compressed batch stream per codec."""
    producer = Producer({"bootstrap.servers": servers, "compression.type": codec, "linger.ms": 20})
    for value in values:
        producer.produce(topic, value=value, key=json.loads(value)["claim"]["claim_id"].encode())
    assert producer.flush(30) == 0


def test_every_codec_is_decided_and_replayed(deployment: Deployment) -> None:
    servers = deployment.broker.bootstrap_servers
    batches = {codec: many_claims(PER_CODEC, f"Z{codec.upper()}") for codec in CODECS}
    for codec, values in batches.items():
        produce_with_librdkafka(servers, deployment.settings.input_topic, codec, values)
    expected = {json.loads(v)["event_id"] for values in batches.values() for v in values}

    deployment.extra_env["CLAIMS_COMPRESSION_TYPE"] = "zstd"  # and the worker writes zstd
    worker, _, _ = deployment.start_worker()
    grouped = outputs_by_source(deployment, len(expected))
    assert set(grouped) == expected
    assert worker.poll() is None, "the worker must not crash on compressed input"

    # A librdkafka consumer reads the worker's zstd batches too.
    consumer = Consumer(
        {"bootstrap.servers": servers, "group.id": f"{deployment.name}-reader", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([deployment.settings.adjudicated_topic, deployment.settings.pended_topic])
    read = 0
    try:
        for _ in range(60):
            read += sum(1 for message in consumer.consume(500, timeout=1) if message.error() is None)
            if read >= len(expected):
                break
    finally:
        consumer.close()
    assert read == len(expected)

    output = deployment.tmp / "replayed.jsonl"
    env = deployment.env(0)
    env.pop("CLAIMS_WEB_PORT")
    done = subprocess.run(
        [CLI, "replay", "--output-file", str(output), "--report-dir", str(deployment.tmp / "replay")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    replayed = decode([("file", None, line) for line in output.read_bytes().splitlines()])
    assert {event["source_event_id"] for event in replayed} == expected
