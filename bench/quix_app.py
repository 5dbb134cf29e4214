"""A quix-streams application doing the worker's work (`bench.peers.SameWork`), as a user would write it.

Run in its own environment (quix-streams pins an older pydantic: `make bench` builds it) as
`python -m bench.quix_app SERVERS GROUP INPUT OUTPUT`; it runs until stopped (SIGTERM).
"""

from __future__ import annotations

import sys
import tempfile

from quixstreams import Application

from bench.peers import SameWork


def main(servers: str, group: str, source: str, target: str) -> None:
    """Consume `source`, decide each claim, produce each output to `target`."""
    app = Application(
        broker_address=servers,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(prefix="quix-state-"),  # stateless here; keep its directory out of the tree
    )
    inputs = app.topic(source, key_deserializer="bytes", value_deserializer="bytes")
    outputs = app.topic(target, key_serializer="bytes", value_serializer="bytes")
    work = SameWork()
    app.dataframe(inputs).apply(work.output).to_topic(outputs)
    app.run()


if __name__ == "__main__":
    main(*sys.argv[1:5])
