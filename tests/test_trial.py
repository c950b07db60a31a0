"""Trying queries on stored papers (``test-query``, the web preview, the manage page)."""

from __future__ import annotations

import asyncio

from bot.matching.query import parse_query
from bot.matching.trial import SLICE, try_queries
from bot.store.protocols import Store
from tests.support_papers import arxiv_paper


async def test_a_long_trial_lets_the_daemons_other_work_run_between_slices(
    store: Store,
) -> None:
    # The daemon serves the preview on its event loop: an unsubscribe or a send that
    # arrives meanwhile runs after one slice of papers, not after the whole window.
    papers = [
        arxiv_paper(f"2611.{i:05d}", title=f"Diffusion {i}" if i % 2 else f"Graphs {i}")
        for i in range(3 * SLICE + 7)
    ]
    events: list[str] = []

    async def other_request() -> None:
        events.append("other request")

    waiting = asyncio.create_task(other_request())  # runs at the trial's first yield
    found = await try_queries(store, {7: parse_query("diffusion")}, papers)
    events.append("trial done")
    await waiting
    assert events == ["other request", "trial done"]
    assert [p.key for p, _ in found] == [p.key for i, p in enumerate(papers) if i % 2]
    assert {m.sub_id for _, m in found} == {7}
    assert all(m.matched_words == ("Diffusion",) for _, m in found)
