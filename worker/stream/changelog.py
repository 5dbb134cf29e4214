"""The history table's changelog writes, queued as the store takes them and sent a batch at a time.

Faust sends a table's changelog itself: each write becomes a message in its producer buffer, a
task of its own sends them, and each acknowledgement writes the partition's persisted offset
into RocksDB. For a worker that writes about one record a claim, that was about a sixth of its
CPU (docs/benchmarks-notes.md, sixth round). Under at-least-once, the table's view
(`worker.stream.faust_quirks.TableView`) queues its writes here instead, in the order the store
took them, and the stream handler (`worker.stream.batch`) sends them once a batch's outputs are
acknowledged and before the batch's inputs are: a batch's offsets are committed only once its
table writes are in the changelog too. The store's persisted offset is written once a
partition a batch, with the last write acknowledged.

The store takes the queued writes when they are taken to be sent (`on_take`), one RocksDB write
batch a partition: a put of its own for each record cost a write-ahead-log write call a claim.
Until then the view reads its own queued writes (`TableView`), so a claim decided after another
of its member's, in the same batch, sees what the first one wrote.

Under exactly-once, Faust's transactions must carry the writes: the view leaves them to Faust.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TableWrite:
    """One write of the table, as its changelog carries it."""

    partition: int
    key: bytes
    value: bytes | None
    """The record's JSON; None for a deletion (a tombstone, what compaction drops the key for)."""


class Changelog:
    """A table's writes not yet sent to its changelog topic, in the order the store took them."""

    def __init__(self, topic: str, on_sent: Callable[[int, int], None] | None = None) -> None:
        self.topic = topic
        """The changelog topic (the table's `<app>-<table>-changelog`)."""
        self.on_sent = on_sent
        """Called with a partition and the offset of its last write acknowledged (the store's persisted offset)."""
        self.on_take: Callable[[list[TableWrite]], None] | None = None
        """Called with the writes `take` hands out, before it returns them: the store takes them then."""
        self._queued: list[TableWrite] = []

    def add(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Queue one write (the store takes it with the others, on `take`)."""
        self._queued.append(TableWrite(partition, key, value))

    def take(self) -> list[TableWrite]:
        """The writes queued so far, in order, once the store has them (`on_take`); the queue starts again empty."""
        queued, self._queued = self._queued, []
        if self.on_take is not None and queued:
            self.on_take(queued)
        return queued

    def sent(self, offsets: Mapping[int, int]) -> None:
        """Record, per partition, the offset of the last write the broker acknowledged."""
        if self.on_sent is not None:
            for partition, offset in offsets.items():
                self.on_sent(partition, offset)

    def __len__(self) -> int:
        return len(self._queued)
