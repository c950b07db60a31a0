"""Matching: the query language, paper analysis, the presearcher index and explanations; the
match step; queries tried on stored papers (``trial``: hit rates).

Imports relevance (vectors, for ``like:``), the store and the foundation (models, errors,
settings, text); never delivery, accounts, daemon or cli.
"""
