"""`claims-worker topics apply` on a real broker: creates what is missing, checks what exists."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import NewTopic

from tests.integration.conftest import CLI, PARTITIONS
from worker.connection import KafkaConnection
from worker.dev.broker import Broker
from worker.settings import Settings

pytestmark = pytest.mark.integration


def apply(broker: Broker, group: str, input_topic: str) -> subprocess.CompletedProcess[str]:
    settings = Settings(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=group,
        input_topic=input_topic,
        adjudicated_topic=f"{group}.adjudicated",
        pended_topic=f"{group}.pended",
        dead_letter_topic=f"{group}.dead-letter",
        partitions=PARTITIONS,
    )
    env = {"PATH": str(Path(CLI).parent), **settings.environment()}
    return subprocess.run([CLI, "topics", "apply"], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_apply_creates_then_finds_every_declared_topic(broker: Broker) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"
    first = apply(broker, group, f"{group}.submitted")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("created") == 7
    second = apply(broker, group, f"{group}.submitted")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("exists") == 7
    assert f"{group}-members-changelog" in second.stdout
    assert f"{group}-claims-by-member-repartition" in second.stdout


def test_apply_refuses_a_topic_with_the_wrong_partition_count(broker: Broker) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"

    async def make_wrong() -> None:
        admin = KafkaConnection.plaintext(broker.bootstrap_servers).admin()
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
