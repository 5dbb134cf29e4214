"""How every Kafka client of the project reaches the brokers: one translation of the settings.

The worker's Faust app, the admin client of `topics apply`, replay and its comparison,
the offset read-back consumer, the readiness probe, `samples publish` and the demo all
build their clients here, so a SASL or SSL cluster is reached the same way by each of
them. Faust takes the same values as credentials (`worker.stream.app`). `end_offsets` is the
one reading of a partition's end that replay, its comparison and the stream's fence share.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient

from worker.settings import Settings


class ConnectionSettingsError(ValueError):
    """The connection settings cannot be used (a CA file that cannot be read, say)."""


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """The brokers and the security every client uses to reach them."""

    servers: tuple[str, ...]
    security_protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = None
    """Set for SSL and SASL_SSL."""
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    compression_type: str | None = None
    """Codec of the batches the producers write (None: uncompressed); every codec is read."""

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaConnection:
        """Read the broker list and security settings once.

        Raises:
            ConnectionSettingsError: the CA file is missing or not a certificate bundle.
        """
        servers = tuple(server.strip() for server in settings.bootstrap_servers.split(",") if server.strip())
        protocol = settings.security_protocol
        context = None
        if protocol in ("SSL", "SASL_SSL"):
            cafile = str(settings.ssl_cafile) if settings.ssl_cafile else None
            try:
                context = ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as error:
                raise ConnectionSettingsError(f"cannot read the SSL CA file {cafile}: {error}") from None
        sasl = protocol.startswith("SASL_")
        return cls(
            servers=servers,
            security_protocol=protocol,
            ssl_context=context,
            sasl_mechanism=settings.sasl_mechanism if sasl else None,
            sasl_username=settings.sasl_username if sasl else None,
            sasl_password=settings.sasl_password.get_secret_value() if sasl and settings.sasl_password else None,
            compression_type=None if settings.compression_type == "none" else settings.compression_type,
        )

    @classmethod
    def plaintext(cls, bootstrap_servers: str) -> KafkaConnection:
        """An unsecured connection to a comma-separated broker list (tests, the embedded broker)."""
        return cls(tuple(server.strip() for server in bootstrap_servers.split(",") if server.strip()))

    @property
    def bootstrap_servers(self) -> str:
        """The broker list, comma-separated."""
        return ",".join(self.servers)

    def options(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client takes: the brokers and the security."""
        options: dict[str, Any] = {"bootstrap_servers": list(self.servers)}
        if self.security_protocol == "PLAINTEXT":
            return options
        options["security_protocol"] = self.security_protocol
        if self.ssl_context is not None:
            options["ssl_context"] = self.ssl_context
        if self.sasl_mechanism is not None:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options

    def consumer(self, *topics: str, **options: Any) -> AIOKafkaConsumer:
        """A consumer (not started) with these brokers and security."""
        return AIOKafkaConsumer(*topics, **self.options(), **options)

    def producer(self, **options: Any) -> AIOKafkaProducer:
        """A producer (not started) with these brokers, security and compression."""
        return AIOKafkaProducer(**self.options(), **{"compression_type": self.compression_type, **options})

    def admin(self, **options: Any) -> AIOKafkaAdminClient:
        """An admin client (not started) with these brokers and security."""
        return AIOKafkaAdminClient(**self.options(), **options)

    def client(self, **options: Any) -> AIOKafkaClient:
        """A bare protocol client (the readiness probe) with these brokers and security."""
        return AIOKafkaClient(**self.options(), **options)


async def end_offsets(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The end offset (exclusive) of each partition, checked against the fetch high watermark.

    Kafka answers ListOffsets(latest) with the high watermark; the embedded broker
    answers it wrongly (1 for a partition of 1,000 records), while its fetch responses
    carry the right high watermark. Taking the larger of the two is right for both.
    Moves the consumer's positions: seek afterwards.
    """
    listed = await consumer.end_offsets(tps)
    begin = await consumer.beginning_offsets(tps)
    nonempty = [tp for tp in tps if listed[tp] > begin[tp]]
    for tp in nonempty:
        consumer.seek(tp, max(listed[tp] - 1, begin[tp]))
    for _ in range(5):
        if all(consumer.highwater(tp) is not None for tp in nonempty):
            break
        await consumer.getmany(*nonempty, timeout_ms=500, max_records=1)
    return {tp: max(listed[tp], consumer.highwater(tp) or 0) for tp in tps}
