"""Where a replay's outputs go: a topic of its own, or a JSON-lines file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from worker.connection import KafkaConnection
from worker.files import open_private
from worker.headers import Headers

Output = tuple[bytes | None, bytes, Headers]
"""One output: its key, its value and its headers."""


class Sink(Protocol):
    """Where replay outputs go."""

    async def write(self, items: list[Output]) -> None:
        """Write (key, value) pairs; return when they are durable."""
        ...

    async def close(self) -> None:
        """Flush and release."""
        ...


class TopicSink:
    """Writes outputs to a topic of the replay's own."""

    def __init__(self, connection: KafkaConnection, topic: str) -> None:
        self.topic = topic
        self.producer = connection.producer(linger_ms=20, max_batch_size=1024 * 1024, max_request_size=3 * 1024 * 1024)

    async def start(self) -> None:
        """Connect the producer."""
        await self.producer.start()

    async def write(self, items: list[Output]) -> None:
        """Send and wait for every acknowledgement."""
        futures = [
            await self.producer.send(self.topic, value, key=key, headers=headers) for key, value, headers in items
        ]
        await asyncio.gather(*futures)

    async def close(self) -> None:
        """Flush and stop the producer."""
        await self.producer.stop()


class FileSink:
    """Appends outputs as JSON lines to a file."""

    def __init__(self, path: Path, *, group: str | None = None) -> None:
        self.handle = open_private(path, "ab", group=group)

    async def write(self, items: list[Output]) -> None:
        """Append and flush."""
        self.handle.write(b"".join(value + b"\n" for _, value, _ in items))
        self.handle.flush()

    async def close(self) -> None:
        """Close the file."""
        self.handle.close()
