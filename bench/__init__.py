"""Benchmarks: runnable scripts that print figures (and JSON with --json)."""
