"""Reading the links of a mail's papers: 👍 / 👎 (a rating) and "follow" (new versions).

``LinkBuilder.feedback_links`` signs them; they never expire (a paper may be rated weeks
later), and each only ever does the one thing it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.accounts.addresses import FEEDBACK, FOLLOW
from bot.accounts.tokens import Signer
from bot.errors import InvalidTokenError
from bot.store.protocols import Rating


@dataclass(frozen=True, slots=True)
class FeedbackRequest:
    """What a signed feedback link asks: a rating of one paper by one user."""

    user_id: int
    paper_key: str
    rating: Rating
    sub_id: int | None


def read_feedback_link(signer: Signer, token: str, now: datetime) -> FeedbackRequest:
    """The request a feedback link carries; ``InvalidTokenError`` for a forged one."""
    data = signer.verify(FEEDBACK, token, now)
    user, paper, rating, sub = data.get("user"), data.get("paper"), data.get("r"), data.get("sub")
    if not isinstance(user, int) or not isinstance(paper, str) or rating not in set(Rating):
        raise InvalidTokenError("this link is not valid")
    if not (sub is None or isinstance(sub, int)):
        raise InvalidTokenError("this link is not valid")
    return FeedbackRequest(user, paper, Rating(str(rating)), sub)


@dataclass(frozen=True, slots=True)
class FollowRequest:
    """What a signed follow link asks: one user following one paper they were sent."""

    user_id: int
    paper_key: str


def read_follow_link(signer: Signer, token: str, now: datetime) -> FollowRequest:
    """The request a follow link carries; ``InvalidTokenError`` for a forged one."""
    data = signer.verify(FOLLOW, token, now)
    user, paper = data.get("user"), data.get("paper")
    if not isinstance(user, int) or not isinstance(paper, str):
        raise InvalidTokenError("this link is not valid")
    return FollowRequest(user, paper)
