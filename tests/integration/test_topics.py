"""`claims-worker topics apply` on a real broker: creates what is missing, checks what exists."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.conftest import CLI, PARTITIONS
from worker.devbroker import Broker

pytestmark = pytest.mark.integration


def apply(broker: Broker, group: str, input_topic: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": str(Path(CLI).parent),
        "CLAIMS_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "CLAIMS_GROUP_ID": group,
        "CLAIMS_INPUT_TOPIC": input_topic,
        "CLAIMS_ADJUDICATED_TOPIC": f"{group}.adjudicated",
        "CLAIMS_PENDED_TOPIC": f"{group}.pended",
        "CLAIMS_DEAD_LETTER_TOPIC": f"{group}.dead-letter",
        "CLAIMS_PARTITIONS": str(PARTITIONS),
    }
    return subprocess.run([CLI, "topics", "apply"], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_apply_creates_then_finds_every_declared_topic(broker: Broker) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"
    first = apply(broker, group, f"{group}.submitted")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("created") == 5
    second = apply(broker, group, f"{group}.submitted")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("exists") == 5
    assert f"{group}-claims-changelog" in second.stdout


def test_apply_refuses_a_topic_with_the_wrong_partition_count(broker: Broker) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"

    async def make_wrong() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(f"{group}.submitted", 1, 1)])
        finally:
            await admin.close()

    asyncio.run(make_wrong())
    done = apply(broker, group, f"{group}.submitted")
    assert done.returncode == 2
    assert f"{group}.submitted has 1 partitions, wants {PARTITIONS}" in done.stderr
    assert done.stderr.count("\n") == 1
