"""Learned relevance: paper vectors, per-user feedback models, similarity for ``like:``.

- ``vectors``: the ``Vectorizer`` interface and its TF-IDF implementation (scikit-learn),
  and the compact byte form a vector is stored in;
- ``corpus``: gives every stored paper its vector, refitting the vocabulary as the corpus
  grows;
- ``model``: one linear model per user from their 👍 / 👎 and ``like:`` papers, the
  ranking it gives and why (``because``);
- ``feedback``: recording, listing and resetting ratings.

Imports the store and the foundation only; matching (``like:``), delivery and the service
import it.
"""
