"""The worker's settings: one frozen object, read once from the environment.

Every variable has the prefix `CLAIMS_` (e.g. `CLAIMS_INPUT_TOPIC`); the broker
list also answers to the conventional `KAFKA_BOOTSTRAP_SERVERS`. An unknown
`CLAIMS_*` variable is an error, so a typo cannot silently keep a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from claims_contracts import topics

ENV_PREFIX = "CLAIMS_"


class Settings(BaseSettings):
    """Everything the stream worker can be told; see docs/operations.md for the reference."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid", populate_by_name=True)

    bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=AliasChoices("CLAIMS_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS", "bootstrap_servers"),
        description="Comma-separated Kafka brokers, host:port.",
    )
    group_id: str = Field(default="claims-adjudication", description="Consumer group and Faust app id.")
    input_topic: str = Field(default=topics.CLAIMS_SUBMITTED, description="Topic of claim events v1.")
    adjudicated_topic: str = Field(default=topics.CLAIMS_ADJUDICATED, description="Topic of adjudication events.")
    pended_topic: str = Field(default=topics.CLAIMS_PENDED, description="Topic of pend-for-review events.")
    dead_letter_topic: str = Field(default=topics.CLAIMS_DEAD_LETTER, description="Topic of dead-letter records.")
    reviews_topic: str = Field(
        default=topics.CLAIMS_REVIEWS, description="Topic of review decisions on pended claims (they close pends)."
    )
    partitions: int = Field(
        default=6,
        ge=1,
        le=1024,
        description="Partitions of the input topic, of the member repartition topic and of the history table.",
    )
    replication_factor: int = Field(default=1, ge=1, le=7, description="Replication of topics this worker creates.")

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How to reach the brokers."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism, with SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_username: str | None = Field(default=None, description="SASL user (from a secret).")
    sasl_password: SecretStr | None = Field(default=None, description="SASL password (from a secret; never printed).")
    ssl_cafile: Path | None = Field(default=None, description="CA bundle for SSL and SASL_SSL.")

    compression_type: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        default="none",
        description="Codec of the batches this worker and its tools produce (any codec is read).",
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        default="at_least_once",
        description="exactly_once needs a broker with transactions (real Kafka), not the embedded one.",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="Event loop of `run`: uvloop (about 8% less CPU a claim, measured) or the standard one.",
    )
    batch_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Most inputs decided per batch (the fetches queued while the batch before was decided).",
    )
    max_input_bytes: int = Field(default=1_048_576, ge=1024, description="Larger inputs are dead-lettered unread.")
    history_window_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description=(
            "Duplicate look-back: a claim is remembered while its service dates are within this many days"
            " of the member's newest."
        ),
    )
    store: Literal["rocksdb", "memory"] = Field(
        default="rocksdb",
        description=(
            "Where the member history is kept: RocksDB on local disk (a restart reads only the changelog's tail)"
            " or memory (a restart reads the whole changelog)."
        ),
    )
    state_dir: Path | None = Field(
        default=None,
        description=(
            "Directory of the RocksDB store; one per worker process (a volume that survives restarts in k8s)."
            " By default a folder under the system's temporary directory named for the group and web port."
        ),
    )
    recovery_consistency_check: bool = Field(
        default=True,
        description=(
            "Stop when a stored history partition claims a changelog offset past the topic's end (Faust's check)."
            " Off only for a broker whose ListOffsets answers a wrong end offset (the embedded one)."
        ),
    )
    standby_replicas: int = Field(
        default=1, ge=0, le=5, description="Warm copies of each history partition kept by other workers."
    )
    policy_dir: Path | None = Field(default=None, description="Policy directory; the bundled policies by default.")
    review_verify_keys: Path | None = Field(
        default=None,
        description=(
            "Public keys (a PEM file, or a folder of *.pub.pem) a review decision must be signed by; without any,"
            " every review is refused (dead letter review_unauthenticated)."
        ),
    )
    review_signing_key: Path | None = Field(
        default=None,
        description="Private key (PEM, mode 0600) the workbench and `review publish` sign review decisions with.",
    )

    web_host: str = Field(default="0.0.0.0", description="Address of the health and metrics server.")  # noqa: S104
    web_port: int = Field(
        default=6066, ge=0, le=65535, description="Port of the health and metrics server (0: any free port)."
    )
    audit_log: str = Field(default="-", description="Audit log file, or - for stdout.")
    file_group: str | None = Field(
        default=None,
        description="Group allowed to read the files the worker writes (0640); they are 0600 without one.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Lowest level written.")

    session_timeout_seconds: float = Field(default=10.0, gt=0, description="Consumer group session timeout.")
    heartbeat_interval_seconds: float = Field(default=3.0, gt=0, description="Consumer group heartbeat.")
    rebalance_timeout_seconds: float = Field(default=10.0, gt=0, description="Consumer group rebalance timeout.")
    commit_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description=(
            "How often acknowledged input offsets are committed: what a killed worker's successor decides again"
            " (identically) is about this many seconds of input."
        ),
    )
    ready_probe_seconds: float = Field(default=2.0, gt=0, description="How often the brokers are probed for readiness.")
    ready_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="A broker probe slower than this, or a delivery slower than twice this, reports not ready.",
    )
    shutdown_grace_seconds: float = Field(default=20.0, gt=0, description="Longest wait for a clean stop.")
    fetch_max_wait_ms: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description=(
            "Longest a fetch waits on the broker for new input. Kafka answers as soon as data arrives;"
            " a broker that waits it out (the embedded one) adds it to every claim's latency."
        ),
    )
    producer_linger_ms: int = Field(default=5, ge=0, le=1000, description="Producer batching delay.")
    producer_batch_bytes: int = Field(
        default=524_288,
        ge=16_384,
        le=1_048_576,
        description=(
            "Largest batch of records the producer sends to one partition in a request (capped at the"
            " smallest max.message.bytes of the topics written). One request is in flight per broker,"
            " so small batches make a batch of outputs wait several round trips."
        ),
    )

    @model_validator(mode="after")
    def _security_complete(self) -> Settings:
        if self.security_protocol.startswith("SASL_") and not (
            self.sasl_mechanism and self.sasl_username and self.sasl_password
        ):
            raise ValueError("SASL needs sasl_mechanism, sasl_username and sasl_password")
        return self

    def environment(self) -> dict[str, str]:
        """These settings as `CLAIMS_*` variables, for a worker started as another process.

        Only values that differ from the defaults are given, so the child reads the rest as
        it would anyway; the SASL password is written out in clear, for the child alone.
        """
        env: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if value == info.default:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"{ENV_PREFIX}{name.upper()}"] = "" if value is None else str(value)
        return env


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """Names of `CLAIMS_*` environment variables that are not settings (likely typos)."""
    env = os.environ if environ is None else environ
    known = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    return sorted(name for name in env if name.upper().startswith(ENV_PREFIX) and name.upper() not in known)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (and overrides), refusing unknown variables.

    Raises:
        ValueError: a `CLAIMS_*` variable is not a setting.
        pydantic.ValidationError: a value is invalid.
    """
    unknown = unknown_variables()
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    return Settings(**overrides)


def _type_name(annotation: Any) -> str:
    """A setting's type in words, the same on every Python version."""
    args = get_args(annotation)
    if get_origin(annotation) is Literal:
        return " or ".join(f"`{value}`" for value in args)
    if get_origin(annotation) in (Union, UnionType):
        return " or ".join(_type_name(arg) for arg in args)
    if annotation is type(None):
        return "none"
    return str(getattr(annotation, "__name__", annotation))


def reference_table() -> str:
    """The settings reference as a Markdown table, generated from the model (docs/operations.md)."""
    rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for name, info in Settings.model_fields.items():
        variable = f"`{ENV_PREFIX}{name.upper()}`"
        if name == "bootstrap_servers":
            variable += " or `KAFKA_BOOTSTRAP_SERVERS`"
        kind = _type_name(info.annotation)
        default = "" if info.default is None else f"`{info.default}`"
        rows.append(f"| {variable} | {kind} | {default} | {info.description or ''} |")
    return "\n".join(rows) + "\n"
