"""The daemon: resources opened in order, channel loading, scheduling, health and the cycle
report.

Imports everything below it; only the cli imports it.
"""
