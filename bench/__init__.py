"""Benchmarks: runnable scripts that print figures (and JSON with --json).

Run them by path (``python bench/match.py``): they import each other by bare name, as
bench/ is then first on sys.path, so no bench module may share a name with an importable
one (tests/test_bench_standalone.py checks). The tests import ``bench._corpus`` and
``bench._messages``, the sample data both use; bench/ imports nothing from tests/.
"""
