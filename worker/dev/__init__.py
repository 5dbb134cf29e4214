"""Development tools, not shipped in the wheel: the demo, the embedded broker, the docs generator."""
