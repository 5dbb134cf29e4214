"""Every Kafka client the project builds reaches an SSL-only broker with the worker's own settings.

The broker sits behind a TLS terminator (`tests.integration.tls`): `topics apply`,
`samples publish`, the worker itself (with its readiness probe), `replay` with its
comparison, and the demo each run against it with nothing but `CLAIMS_SECURITY_PROTOCOL`
and `CLAIMS_SSL_CAFILE` set, as a deployment would set them.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import CLI, http_get, wait_for
from tests.integration.tls import TlsTerminator, self_signed
from worker.connection import KafkaConnection
from worker.dev.broker import FAST_JOIN, Broker, free_port, start_embedded
from worker.samples import sample_claims
from worker.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, Path]]:
    """An embedded broker reachable only through TLS; its bootstrap address and CA file."""
    certificate = self_signed(tmp_path_factory.mktemp("tls"))
    inner, outer = free_port(), free_port()
    terminator = TlsTerminator(outer, inner, certificate)
    terminator.start()
    broker = start_embedded(inner, advertised_port=outer)
    try:
        yield broker, certificate.cert
    finally:
        broker.stop()
        terminator.stop()


def secured(broker: Broker, cafile: Path, name: str) -> Settings:
    return Settings(
        bootstrap_servers=broker.bootstrap_servers,
        security_protocol="SSL",
        ssl_cafile=cafile,
        group_id=f"{name}-group",
        input_topic=f"{name}.submitted",
        adjudicated_topic=f"{name}.adjudicated",
        pended_topic=f"{name}.pended",
        dead_letter_topic=f"{name}.dead-letter",
        partitions=2,
        web_host="127.0.0.1",
    ).model_copy(update=FAST_JOIN)


def environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
    return {**env, **settings.environment()}


def cli(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=environment(settings), capture_output=True, text=True, timeout=timeout, check=False
    )


async def count_outputs(settings: Settings, expected: int, timeout: float) -> int:
    """Read the output topics over TLS until `expected` messages or the timeout."""
    consumer = KafkaConnection.from_settings(settings).consumer(
        settings.adjudicated_topic,
        settings.pended_topic,
        settings.dead_letter_topic,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen = 0
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while seen < expected and asyncio.get_running_loop().time() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                seen += len(messages)
    finally:
        await consumer.stop()
    return seen


def test_a_plaintext_client_cannot_reach_the_tls_broker(tls_broker: tuple[Broker, Path]) -> None:
    broker, cafile = tls_broker
    plain = secured(broker, cafile, f"p{uuid.uuid4().hex[:8]}").model_copy(update={"security_protocol": "PLAINTEXT"})
    done = cli(plain, "topics", "apply", timeout=60)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1, done.stderr


def test_every_command_reaches_the_tls_broker_with_the_workers_settings(
    tls_broker: tuple[Broker, Path], tmp_path: Path
) -> None:
    broker, cafile = tls_broker
    settings = secured(broker, cafile, f"s{uuid.uuid4().hex[:8]}")
    samples = len(sample_claims())

    applied = cli(settings, "topics", "apply")
    assert applied.returncode == 0, applied.stderr
    published = cli(settings, "samples", "publish")
    assert published.returncode == 0, published.stderr
    assert f"published {samples} sample claim events" in published.stderr

    port = free_port()
    worker_settings = settings.model_copy(update={"web_port": port, "audit_log": str(tmp_path / "audit.log")})
    with (tmp_path / "worker.stderr").open("wb") as stderr:
        worker = subprocess.Popen([CLI, "run"], env=environment(worker_settings), stderr=stderr)
    try:
        assert asyncio.run(count_outputs(settings, samples, 90)) == samples
        # Ready means the worker's own probe client reached the brokers through TLS too.
        wait_for(lambda: http_get(port, "/readyz")[0] == 200, 30, "the worker to be ready")
    finally:
        worker.terminate()
        worker.wait(timeout=40)
    # The audit log carries member ids with diagnosis codes: created for the worker's user only.
    assert stat.S_IMODE((tmp_path / "audit.log").stat().st_mode) == 0o600

    report = tmp_path / "replay"
    replayed = cli(
        settings,
        "replay",
        "--output-topic",
        f"{settings.input_topic}.replay",
        "--compare-with",
        settings.adjudicated_topic,
        "--compare-with",
        settings.pended_topic,
        "--report-dir",
        str(report),
        timeout=180,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert "- changed: 0" in replayed.stdout
    assert f"{samples} events read" in replayed.stderr


def test_the_demo_runs_against_a_tls_cluster(tls_broker: tuple[Broker, Path]) -> None:
    broker, cafile = tls_broker
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "CLAIMS_SECURITY_PROTOCOL": "SSL",
            "CLAIMS_SSL_CAFILE": str(cafile),
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "worker.dev.demo"], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "broker: external" in done.stderr
