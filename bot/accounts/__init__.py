"""Accounts: users' addresses, confirmation and unsubscribe links, signed tokens.

Imports the store and the foundation only.
"""
