"""The live stream: the only wing that imports Faust.

`app` is the composition root; `agent` the adjudication agent; `batch` the batch
step, free of Faust; `offsets` the offset continuity; `health` readiness and the
broker probe; `metrics` the Prometheus metrics; `topics` the topics declared and
created; `faust_quirks` every Faust private and workaround the worker relies on.
"""
