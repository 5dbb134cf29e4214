"""One Kafka client configuration: every client the project builds gets the brokers and the security."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import faust
import pytest

from worker.connection import ConnectionSettingsError, KafkaConnection
from worker.settings import Settings
from worker.stream.app import build_app, faust_credentials

WORKER = Path(__file__).resolve().parents[2] / "worker"
CLIENT_CLASSES = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "AIOKafkaClient"}


def sasl_ssl() -> Settings:
    return Settings(
        bootstrap_servers="a:9093, b:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password="s3cret",  # type: ignore[arg-type]
    )


def constructions(names: set[str]) -> list[str]:
    """Every call of one of `names` in the worker package, as 'file:line name'."""
    found = []
    for path in sorted(WORKER.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if name in names:
                    found.append(f"{path.relative_to(WORKER.parent)}:{node.lineno} {name}")
    return found


def test_every_aiokafka_client_is_built_by_the_connection() -> None:
    # The only place that constructs aiokafka clients; everything else asks it (replay, its
    # comparison, the read-back consumer, the probe, the admin client, samples, the demo).
    assert {entry.split(":")[0] for entry in constructions(CLIENT_CLASSES)} == {"worker/connection.py"}


async def test_the_faust_app_is_built_once_with_the_connections_credentials() -> None:
    assert [entry.split(" ")[0].split(":")[0] for entry in constructions({"App"})] == ["worker/stream/app.py"]
    app, _ = build_app(sasl_ssl())
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password, credentials.mechanism.value) == (
        "svc",
        "s3cret",
        "SCRAM-SHA-512",
    )
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert [str(url) for url in app.conf.broker] == ["kafka://a:9093", "kafka://b:9093"]


@pytest.mark.parametrize(
    ("build", "client_type"),
    [
        (lambda c: c.consumer("topic", group_id=None), "AIOKafkaConsumer"),
        (lambda c: c.producer(linger_ms=5), "AIOKafkaProducer"),
        (lambda c: c.admin(request_timeout_ms=1000), "AIOKafkaAdminClient"),
        (lambda c: c.client(), "AIOKafkaClient"),
    ],
)
async def test_each_kind_of_client_carries_the_security_settings(build: object, client_type: str) -> None:
    connection = KafkaConnection.from_settings(sasl_ssl())
    client = build(connection)  # type: ignore[operator]
    try:
        assert type(client).__name__ == client_type
        inner = next((getattr(client, name) for name in ("_client", "client") if hasattr(client, name)), client)
        assert inner._bootstrap_servers == ["a:9093", "b:9093"]
        assert inner._security_protocol == "SASL_SSL"
        assert inner._sasl_mechanism == "SCRAM-SHA-512"
        assert inner._sasl_plain_username == "svc"
        assert inner._sasl_plain_password == "s3cret"
        assert inner._ssl_context is connection.ssl_context
    finally:
        closing = getattr(client, "stop", None) or client.close
        await closing()


def test_plaintext_passes_no_security_options() -> None:
    assert KafkaConnection.from_settings(Settings(bootstrap_servers="x:1")).options() == {"bootstrap_servers": ["x:1"]}
    assert faust_credentials(KafkaConnection.plaintext("x:1")) is None


def test_ssl_without_sasl_gives_faust_ssl_credentials() -> None:
    connection = KafkaConnection.from_settings(Settings(security_protocol="SSL"))
    assert isinstance(faust_credentials(connection), faust.SSLCredentials)
    assert "sasl_mechanism" not in connection.options()


def test_a_missing_ca_file_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(ConnectionSettingsError, match="cannot read the SSL CA file"):
        KafkaConnection.from_settings(Settings(security_protocol="SSL", ssl_cafile=missing))
