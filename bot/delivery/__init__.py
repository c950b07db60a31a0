"""Delivery: the notifier interface, the outbox dispatcher, messages, digests and the one
delivery policy.

Imports accounts, matching, store and the foundation; never daemon or cli.
"""
