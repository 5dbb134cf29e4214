"""Benchmarks of the claims worker (run with `make bench`)."""
