"""A user's ranking from the store: their ratings and ``like:`` papers → ``UserModel``.

``load_ranker`` trains the model again whenever what it learns from changed (cheap: a
linear model over at most ``BACKGROUND`` recent papers): a new rating, ``like:`` paper,
fit or newest paper; so a 👍 or a reset counts from the next digest, alert batch or
``recommend`` on. Another user's ratings never enter: the model is built
from this user's rows only.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from weakref import WeakKeyDictionary

from bot.relevance.corpus import loaded_vectorizer
from bot.relevance.model import UserModel, train
from bot.relevance.vectors import Vectorizer, stack
from bot.store.protocols import Feedback, Rating, Store, VectorizerInfo

# Recent papers the model is trained against (the "rest of the corpus").
BACKGROUND = 2000


@dataclass(frozen=True, slots=True)
class Ranked:
    """One paper's place for one user: its relevance in [0, 1] (the share of recent
    papers the user's model scores lower) and why."""

    key: str
    score: float
    nearest: str | None = None  # the liked paper it is closest to
    words: tuple[str, ...] = ()


class Ranker:
    """A trained model with the vectorizer its rows come from."""

    def __init__(
        self, store: Store, model: UserModel, vectorizer: Vectorizer, rated: frozenset[str]
    ) -> None:
        self.store, self.model, self.vectorizer, self.rated = store, model, vectorizer, rated

    async def rank(self, keys: Sequence[str]) -> list[Ranked]:
        """``keys`` most relevant first; a paper without a vector comes last, unscored."""
        found = await self.store.get_vectors(keys)
        scored = self.score(found)
        missing = [Ranked(k, 0.0) for k in dict.fromkeys(keys) if k not in found]
        return scored + missing

    def score(self, vectors: dict[str, bytes], limit: int | None = None) -> list[Ranked]:
        """The papers best first, at most ``limit``; only those shown are explained."""
        keys = list(vectors)
        rows = stack([vectors[k] for k in keys], self.vectorizer.dimension)
        raw = self.model.scores(rows)
        relevance = self.model.relevance(raw)
        order = sorted(range(len(keys)), key=lambda i: (-raw[i], keys[i]))[:limit]
        reasons = self.model.reasons(rows[order], self.vectorizer.feature_names())
        return [
            Ranked(keys[i], float(relevance[i]), why.nearest, why.words)
            for i, why in zip(order, reasons, strict=True)
        ]

    async def recommend(self, since: datetime, limit: int) -> list[Ranked]:
        """The best papers dated since ``since`` that the user has not rated."""
        recent = await self.store.recent_vectors(since=since)
        unrated = {k: v for k, v in recent.items() if k not in self.rated}
        return self.score(unrated, limit) if unrated else []


# The models trained last, per store: a reader's next message (often seconds later) reuses
# theirs while their ratings, ``like:`` papers, the fit and the newest paper are the same.
# Few: each holds a weight per vocabulary term.
MODELS_KEPT = 32
_Trained = tuple[UserModel, Vectorizer, frozenset[str]] | None
_MODELS: WeakKeyDictionary[Store, OrderedDict[Hashable, _Trained]] = WeakKeyDictionary()


async def load_ranker(
    store: Store,
    user_id: int,
    likes: Collection[str] = (),
    feedback: Sequence[Feedback] | None = None,
) -> Ranker | None:
    """The user's ranker, or None when there is nothing to learn from: no 👍 and no
    ``like:`` paper with a vector (``likes``: the papers of their ``like:`` atoms).

    Ordered for the dispatcher, which asks for every message: a user without a 👍 or a
    ``like:`` paper costs one small read (their ratings); the vectorizer is loaded once
    per fit (``loaded_vectorizer``) and a model trained once per change (``_MODELS``).
    ``feedback``: their ratings, when the caller read them already (for many users at
    once: ``Store.feedback_of``)."""
    if feedback is None:
        feedback = await store.list_feedback(user_id)
    liked = [f.paper_key for f in feedback if f.rating is Rating.LIKE]
    liked += [k for k in sorted(likes) if k not in liked]
    if not liked:
        return None  # 👎 alone is no direction to rank by
    info = await store.vectorizer_info()
    if info is None:
        return None
    newest = tuple(await store.recent_vectors(limit=1))
    ratings = tuple((f.paper_key, f.rating) for f in feedback)
    key = (user_id, ratings, tuple(liked), info, newest)
    kept = _MODELS.setdefault(store, OrderedDict())
    if key not in kept:
        kept[key] = await _trained(store, info, feedback, liked)
        while len(kept) > MODELS_KEPT:
            kept.popitem(last=False)
    kept.move_to_end(key)
    trained = kept[key]
    return None if trained is None else Ranker(store, *trained)


async def _trained(
    store: Store, info: VectorizerInfo, feedback: Sequence[Feedback], liked: list[str]
) -> _Trained:
    disliked = [f.paper_key for f in feedback if f.rating is Rating.DISLIKE]
    vectors = await store.get_vectors([*liked, *disliked])
    liked = [k for k in liked if k in vectors]
    vectorizer = await loaded_vectorizer(store, info) if liked else None
    if vectorizer is None:
        return None
    background = await store.recent_vectors(limit=BACKGROUND)
    rated = frozenset(f.paper_key for f in feedback)
    others = [v for k, v in background.items() if k not in rated and k not in liked]
    model = await asyncio.to_thread(_train, vectorizer, vectors, liked, disliked, others)
    return model, vectorizer, rated | frozenset(liked)


def _train(
    vectorizer: Vectorizer,
    vectors: dict[str, bytes],
    liked: list[str],
    disliked: list[str],
    others: list[bytes],
) -> UserModel:
    dim = vectorizer.dimension
    bad = [vectors[k] for k in disliked if k in vectors]
    return train(
        stack([vectors[k] for k in liked], dim), liked, stack(bad, dim), stack(others, dim)
    )
