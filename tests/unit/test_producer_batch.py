"""The producer's batch: large enough for a batch of outputs, never larger than a topic takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.settings import Settings
from worker.stream.app import build_app
from worker.stream.topics import BROKER_DEFAULT_MESSAGE_BYTES, declared, smallest_message_bytes

BUNDLED = Path(__file__).parents[2] / "worker" / "stream" / "topics.yaml"


def _declarations(tmp_path: Path, *, dead_letter_limit: str | None) -> Path:
    """The bundled declarations with the dead-letter topic's limit changed (None: removed)."""
    text = BUNDLED.read_text()
    declared_limit = 'cleanup.policy: delete, max.message.bytes: "2097152"}\n  - role: changelog'
    assert declared_limit in text
    replacement = (
        "cleanup.policy: delete}\n  - role: changelog"
        if dead_letter_limit is None
        else f'cleanup.policy: delete, max.message.bytes: "{dead_letter_limit}"}}\n  - role: changelog'
    )
    path = tmp_path / "topics.yaml"
    path.write_text(text.replace(declared_limit, replacement))
    declared(path)  # still a valid declaration
    return path


def test_the_smallest_limit_of_the_topics_written_bounds_a_batch(tmp_path: Path) -> None:
    assert smallest_message_bytes() == 2_097_152  # the repartition and dead-letter topics
    assert smallest_message_bytes(_declarations(tmp_path, dead_letter_limit="65536")) == 65_536


def test_a_topic_declared_without_a_limit_counts_as_the_brokers_default(tmp_path: Path) -> None:
    assert smallest_message_bytes(_declarations(tmp_path, dead_letter_limit=None)) == BROKER_DEFAULT_MESSAGE_BYTES


def test_the_input_topics_limits_do_not_count(tmp_path: Path) -> None:
    text = BUNDLED.read_text().replace(
        'config: {retention.ms: "604800000", cleanup.policy: delete}          # 7 days: replays read it',
        'config: {retention.ms: "604800000", cleanup.policy: delete, max.message.bytes: "1024"}',
    )
    assert '"1024"' in text
    path = tmp_path / "topics.yaml"
    path.write_text(text)
    assert smallest_message_bytes(path) == 2_097_152  # the worker never writes its input


@pytest.mark.parametrize(("setting", "expected"), [(None, 524_288), (16_384, 16_384), (1_048_576, 1_048_576)])
def test_the_app_batches_what_the_setting_says_below_the_topics_limit(setting: int | None, expected: int) -> None:
    settings = Settings() if setting is None else Settings(producer_batch_bytes=setting)
    app, _ = build_app(settings)
    assert app.conf.producer_max_batch_size == expected
    assert app.conf.producer_max_batch_size <= smallest_message_bytes()


@pytest.mark.parametrize("value", [1024, 2_000_000])
def test_a_batch_size_out_of_range_is_refused(value: int) -> None:
    with pytest.raises(ValueError, match="producer_batch_bytes"):
        Settings(producer_batch_bytes=value)
