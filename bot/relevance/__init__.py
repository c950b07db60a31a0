"""Learned relevance: paper vectors, per-user feedback models, similarity for ``like:``.

- ``vectors``: the ``Vectorizer`` interface and its TF-IDF transform (NumPy, what
  scikit-learn fitted), and the compact byte form a vector is stored in;
- ``fitting``: the scikit-learn fit, run as a process of its own (never imported by the
  daemon);
- ``corpus``: gives every stored paper its vector, refitting the vocabulary as the corpus
  grows; keeps the fitted vectorizer loaded once per fit;
- ``model``: one linear model per user from their 👍 / 👎 and ``like:`` papers, the
  ranking it gives and why (nearest liked paper, or the words that weighed);
- ``ranking``: a user's ranker from the store (one small read when they have nothing to
  learn from);
- ``similar``: which papers are like a stored one (``like:``).

Imports the store and the foundation only; matching (``like:``), delivery and the service
import it.
"""
