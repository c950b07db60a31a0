"""Accounts: users' addresses, confirmation, unsubscribe and manage links, signed tokens,
and the exports of a person's data.

Imports the store and the foundation only.
"""
