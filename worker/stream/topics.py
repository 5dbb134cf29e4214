"""The topics this worker reads and writes, declared once, and their creation.

`plan` turns the settings into topic specifications; `ensure` creates what is
missing with the admin client and checks what exists (partition counts must
match: Faust refuses a table whose changelog and source partitions differ).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict

from worker.connection import KafkaConnection
from worker.settings import Settings

TABLES = ("members",)
"""The worker's Faust tables; each has a compacted changelog topic. `members` holds the
claim history, one record per member (`worker.history`)."""

REPARTITION_NAME = "claims-by-member"
"""The internal topic's name within the group's namespace (as Kafka Streams names its own)."""


class _TopicEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["input", "reviews", "repartition", "adjudicated", "pended", "dead_letter", "changelog"]
    setting: (
        Literal["input_topic", "reviews_topic", "adjudicated_topic", "pended_topic", "dead_letter_topic"] | None
    ) = None
    tables: tuple[str, ...] = ()
    config: dict[str, str] = {}


class _TopicFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    topics: tuple[_TopicEntry, ...]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: name, partitions, replication and configuration."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


def changelog_topic(settings: Settings, table: str) -> str:
    """The name Faust gives a table's changelog topic."""
    return f"{settings.group_id}-{table}-changelog"


def repartition_topic(settings: Settings) -> str:
    """The internal topic the input is re-keyed through by member id: `<group>-claims-by-member-repartition`."""
    return f"{settings.group_id}-{REPARTITION_NAME}-repartition"


def declared(path: Path | None = None) -> tuple[_TopicEntry, ...]:
    """The topic declarations (`worker/stream/topics.yaml` by default), validated."""
    bundled = resources.files("worker.stream").joinpath("topics.yaml")
    text = path.read_text() if path is not None else bundled.read_text()
    entries = _TopicFile.model_validate(yaml.safe_load(text)).topics
    missing = {"input", "reviews", "repartition", "adjudicated", "pended", "dead_letter", "changelog"} - {
        entry.role for entry in entries
    }
    if missing:
        raise ValueError(f"topic declarations lack roles: {sorted(missing)}")
    return entries


def plan(settings: Settings, path: Path | None = None) -> list[TopicSpec]:
    """Every topic the worker needs, with partitions, replication and configuration."""
    n, r = settings.partitions, settings.replication_factor
    specs = []
    for entry in declared(path):
        if entry.role == "changelog":
            specs += [TopicSpec(changelog_topic(settings, t), n, r, dict(entry.config)) for t in entry.tables or TABLES]
        elif entry.role == "repartition":
            specs.append(TopicSpec(repartition_topic(settings), n, r, dict(entry.config)))
        else:
            assert entry.setting is not None  # noqa: S101 - every non-changelog role names its setting
            specs.append(TopicSpec(str(getattr(settings, entry.setting)), n, r, dict(entry.config)))
    return specs


def max_message_bytes(role: str, path: Path | None = None) -> int | None:
    """The `max.message.bytes` the declarations give the topic of a role (None: the broker's default)."""
    for entry in declared(path):
        if entry.role == role and "max.message.bytes" in entry.config:
            return int(entry.config["max.message.bytes"])
    return None


WRITTEN_ROLES = ("repartition", "adjudicated", "pended", "dead_letter", "changelog")
"""The roles of the topics the worker writes."""

BROKER_DEFAULT_MESSAGE_BYTES = 1_048_588
"""Kafka's default `message.max.bytes`: what a topic declared without its own limit takes."""


def largest_message_bytes(path: Path | None = None) -> int:
    """The largest `max.message.bytes` declared for a topic the worker writes (its producer's cap)."""
    limits = [max_message_bytes(role, path) for role in WRITTEN_ROLES]
    return max(limit for limit in limits if limit is not None)


def smallest_message_bytes(path: Path | None = None) -> int:
    """The smallest `max.message.bytes` of a topic the worker writes (the broker's default where none is declared).

    The limit applies to a whole record batch, not one record: a producer batch larger than a
    topic's limit would be refused as too large, and its outputs dead-lettered for a size they
    do not have.
    """
    limits = [max_message_bytes(role, path) for role in WRITTEN_ROLES]
    return min(BROKER_DEFAULT_MESSAGE_BYTES if limit is None else limit for limit in limits)


async def check_brokers(settings: Settings, timeout: float = 15.0) -> None:
    """Connect to the brokers once, so an unreachable cluster is one clear error at start-up.

    Raises:
        ConnectionError: no broker answered within the timeout.
    """
    admin = _admin(settings)
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (TimeoutError, OSError, KafkaError) as error:
        raise ConnectionError(
            f"cannot reach the brokers at {settings.bootstrap_servers} ({type(error).__name__})"
        ) from None
    finally:
        await admin.close()


def _admin(settings: Settings) -> AIOKafkaAdminClient:
    return KafkaConnection.from_settings(settings).admin(request_timeout_ms=15000)


async def ensure(settings: Settings, specs: list[TopicSpec] | None = None) -> dict[str, str]:
    """Create missing topics and check existing ones.

    Returns:
        For each topic: "created" or "exists".

    Raises:
        RuntimeError: an existing topic has another partition count.
    """
    wanted = specs if specs is not None else plan(settings)
    admin = _admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in wanted if spec.name not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(s.name, s.partitions, s.replication, topic_configs=s.config) for s in missing]
            )
        present = [spec for spec in wanted if spec.name in existing]
        if present:
            described = await admin.describe_topics([spec.name for spec in present])
            counts = {d["topic"]: len(d["partitions"]) for d in described}
            wrong = [
                f"{s.name} has {counts.get(s.name)} partitions, wants {s.partitions}"
                for s in present
                if counts.get(s.name) != s.partitions
            ]
            if wrong:
                raise RuntimeError("; ".join(wrong))
        return {spec.name: ("created" if spec in missing else "exists") for spec in wanted}
    finally:
        await admin.close()
