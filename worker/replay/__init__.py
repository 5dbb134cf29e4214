"""Replay: re-deciding a range of history, apart from the live worker. Never imports Faust.

`run` holds the plan and the run; `seeking` finds where a range starts and ends;
`sinks` writes the outputs; `comparison` compares them with recorded decisions;
`progress` reports on long runs.
"""
