"""Fakes of what leaves the process, shared by the test tiers ("mock anything that leaves the process")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError


@dataclass(frozen=True)
class Acked:
    """What a send's future completes with (the fields the worker reads of aiokafka's RecordMetadata)."""

    topic: str
    partition: int | None
    offset: int


class FakePublisher:
    """Acknowledges sends, or fails the first `failures` rounds of them."""

    def __init__(self, failures: int = 0, *, max_bytes: int | None = None) -> None:
        self.failures = failures
        self.max_bytes = max_bytes
        """Refuse messages larger than this as Kafka does (MessageSizeTooLargeError), every time."""
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.headers: list[list[tuple[str, bytes]]] = []
        """The headers of each message in `sent`, in the same order."""
        self.partitions: list[int | None] = []
        """The partition asked for, per attempt (None: the key's)."""
        self.attempts = 0
        self.refuse: Callable[[str, bytes | None], BaseException | None] | None = None
        """Decides per message (topic, key) whether it fails, and how (None: as the counts above say)."""
        self._offsets: dict[tuple[str, int | None], int] = {}

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> Awaitable[Any]:
        self.attempts += 1
        self.partitions.append(partition)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        refusal = self.refuse(topic, key) if self.refuse is not None else None
        if refusal is not None:
            future.set_exception(refusal)
        elif self.max_bytes is not None and len(value or b"") + len(key or b"") > self.max_bytes:
            future.set_exception(MessageSizeTooLargeError())
        elif self.failures > 0:
            future.set_exception(ConnectionError("broker unreachable"))
        else:
            self.sent.append((topic, key, value))
            self.headers.append(list(headers or ()))
            # As the broker's acknowledgement: where the message was written.
            offset = self._offsets[(topic, partition)] = self._offsets.get((topic, partition), -1) + 1
            future.set_result(Acked(topic, partition, offset))
        return future

    def round_done(self) -> None:
        self.failures = max(self.failures - 1, 0)
