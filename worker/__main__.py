"""`python -m worker`: the same as the `claims-worker` command."""

from worker.cli import main

raise SystemExit(main())
