"""Matching: the query language, paper analysis, the presearcher index and explanations; the
match step.

Imports the store and the foundation (models, errors, settings, text); never delivery,
accounts, daemon or cli.
"""
