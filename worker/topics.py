"""The topics this worker reads and writes, declared once, and their creation.

`plan` turns the settings into topic specifications; `ensure` creates what is
missing with the admin client and checks what exists (partition counts must
match: Faust refuses a table whose changelog and source partitions differ).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from worker.settings import Settings

TABLES = ("seen", "claims", "lines")
"""The worker's Faust tables; each has a compacted changelog topic."""

DAY_MS = 24 * 3600 * 1000


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


def plan(settings: Settings) -> list[TopicSpec]:
    """Every topic the worker needs, with partitions and retention."""
    n, r = settings.partitions, settings.replication_factor
    week = str(7 * DAY_MS)
    return [
        TopicSpec(settings.input_topic, n, r, {"retention.ms": week}),
        TopicSpec(settings.adjudicated_topic, n, r, {"retention.ms": week}),
        TopicSpec(settings.pended_topic, n, r, {"retention.ms": week}),
        # Dead letters wait for a person: kept four weeks, and room for a 1 MiB original in base64.
        TopicSpec(settings.dead_letter_topic, n, r, {"retention.ms": str(28 * DAY_MS), "max.message.bytes": "2097152"}),
        *(TopicSpec(changelog_topic(settings, t), n, r, {"cleanup.policy": "compact"}) for t in TABLES),
    ]


def _admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=settings.broker_list, request_timeout_ms=15000)


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
