"""The SQLite implementation of the store protocols (aiosqlite, WAL, one writer).

Imports the store protocols and the foundation only.
"""
