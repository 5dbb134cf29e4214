"""Offset continuity: skipped input offsets are found, and never committed past unconfirmed."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from intervaltree import IntervalTree

from worker.stream.faust_quirks import guard_consumer
from worker.stream.offsets import Gap, OffsetTracker


def test_contiguous_offsets_have_no_gap() -> None:
    tracker = OffsetTracker(lambda partition: 10)
    assert tracker.observe_all([(0, 10), (0, 11), (1, 10), (0, 12)]) == []


def test_a_jump_is_a_gap_from_the_next_expected_offset() -> None:
    tracker = OffsetTracker(lambda partition: 10)
    assert tracker.observe_all([(0, 10), (0, 11), (0, 15), (0, 16)]) == [Gap(0, 12, 15)]


def test_the_first_offset_after_an_assignment_is_checked_against_the_committed_one() -> None:
    committed = {0: 100, 1: None}
    tracker = OffsetTracker(committed.get)
    assert tracker.observe_all([(0, 101), (1, 7)]) == [Gap(0, 100, 101)]
    tracker.forget()
    committed[0] = 300
    assert tracker.observe(0, 300) is None


def test_a_redelivery_is_not_a_gap_and_does_not_move_the_expected_offset() -> None:
    tracker = OffsetTracker(lambda partition: 0)
    assert tracker.observe_all([(0, 0), (0, 1), (0, 2), (0, 1), (0, 2), (0, 3)]) == []
    assert tracker.observe(0, 5) == Gap(0, 4, 5)


class FakeConsumer:
    """The parts of Faust's consumer that its commit rule reads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._committed_offset: dict[Any, int | None] = defaultdict(lambda: None)
        self._acked: dict[Any, list[int]] = defaultdict(list)
        self._gap: dict[Any, IntervalTree] = defaultdict(IntervalTree)

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        self._gap[tp].addi(offset_from, offset_to + 1)

    def _new_offset(self, tp: Any) -> int | None:
        # Faust's rule, simplified: gaps count as acknowledged; commit after the first
        # consecutive run when the run starts at most one past the committed offset.
        acked = self._acked[tp]
        for interval in self._gap[tp]:
            acked.extend(range(interval.begin, interval.end))
        acked.sort()
        committed = self._committed_offset[tp]
        if not acked or (committed and min(acked) - committed > 1):
            return None
        end = acked[0]
        while end + 1 in acked:
            end += 1
        return end + 1


def guarded() -> Any:
    app = SimpleNamespace(transport=SimpleNamespace(Consumer=FakeConsumer))
    guard_consumer(app, "claims.submitted")
    return app.transport.Consumer()


INPUT = TP("claims.submitted", 0)
OTHER = TP("group-claims-changelog", 0)


def test_one_missing_offset_after_the_committed_one_is_not_committed_past() -> None:
    consumer = guarded()
    consumer._committed_offset[INPUT] = 407
    consumer._acked[INPUT] = [408, 409]
    assert consumer._new_offset(INPUT) is None
    consumer._acked[INPUT] = [407, 408, 409]
    assert consumer._new_offset(INPUT) == 410


def test_a_jump_seen_by_faust_is_not_acknowledged_until_confirmed() -> None:
    consumer = guarded()
    consumer._committed_offset[INPUT] = 237
    asyncio.run(consumer._add_gap(INPUT, 237, 278))
    consumer._acked[INPUT] = [279]
    assert consumer._new_offset(INPUT) is None
    asyncio.run(consumer.confirm_gap(INPUT, 237, 279))
    assert consumer._new_offset(INPUT) == 280


def test_other_topics_keep_faust_gap_handling() -> None:
    consumer = guarded()
    consumer._committed_offset[OTHER] = 10
    asyncio.run(consumer._add_gap(OTHER, 10, 12))
    assert consumer._new_offset(OTHER) == 13
