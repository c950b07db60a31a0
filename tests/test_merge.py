"""bot.store.merge: how a sighting combines with a stored paper, and a batch with the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models import AnnounceType, Links, Outcome, Paper, Sighting
from bot.store.merge import merge, merge_batch, normalise

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)
KEY = "2603.01234"


def arxiv(**fields: object) -> Paper:
    base = Paper(
        key=KEY,
        title="Sparse Attention at Scale",
        abstract="We study sparse attention.",
        version=1,
        authors=("Ada Lovelace", "Jürgen Müller"),
        categories=("cs.LG", "cs.AI"),
        published=datetime(2026, 3, 1, 18, 0, tzinfo=UTC),
        updated=datetime(2026, 3, 1, 18, 0, tzinfo=UTC),
        links=Links(abs=f"https://arxiv.org/abs/{KEY}", pdf=f"https://arxiv.org/pdf/{KEY}"),
        sources=("arxiv",),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def hf(**fields: object) -> Paper:
    base = Paper(
        key=KEY,
        title="Sparse Attention at Scale",
        abstract="We study sparse attention (HF copy).",
        authors=("Ada Lovelace", "Jurgen Muller"),
        published=datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        links=Links(hf=f"https://huggingface.co/papers/{KEY}", code="https://github.com/x/y"),
        upvotes=3,
        comments=1,
        github_stars=10,
        sources=("hf",),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def blog(**fields: object) -> Paper:
    base = Paper(
        key=KEY,
        title="Sparse attention at scale — a summary",
        links=Links(abs="https://blog.example/sparse"),
        sources=("ml-blog",),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def stored(paper: Paper, when: datetime = NOW) -> Paper:
    return merge(None, Sighting(paper), when)[0]


# --- unknown papers ---------------------------------------------------------------------------


def test_unknown_paper_is_new_and_first_seen_now() -> None:
    paper, outcome = merge(None, Sighting(arxiv(first_seen=LATER)), NOW)
    assert outcome is Outcome.NEW
    assert paper.first_seen == NOW
    assert paper.title == "Sparse Attention at Scale"


@pytest.mark.parametrize("announce", [AnnounceType.REPLACE, AnnounceType.REPLACE_CROSS])
def test_replacement_of_unknown_paper_is_stored_but_skipped(announce: AnnounceType) -> None:
    paper, outcome = merge(None, Sighting(arxiv(version=3), announce), NOW)
    assert outcome is Outcome.SKIPPED
    assert (paper.version, paper.first_seen) == (3, NOW)


def test_cross_list_of_unknown_paper_is_new() -> None:
    _, outcome = merge(None, Sighting(arxiv(), AnnounceType.CROSS), NOW)
    assert outcome is Outcome.NEW


def test_new_paper_drops_repeated_categories_and_sources() -> None:
    paper, _ = merge(None, Sighting(arxiv(categories=("cs.LG", "cs.LG"), sources=("a", "a"))), NOW)
    assert (paper.categories, paper.sources) == (("cs.LG",), ("a",))


def test_datetimes_become_utc() -> None:
    plus5 = timezone(timedelta(hours=5))
    paper, _ = merge(None, Sighting(arxiv(published=datetime(2026, 3, 1, 5, tzinfo=plus5))), NOW)
    assert paper.published is not None
    assert paper.published.tzinfo is UTC
    assert paper.published.hour == 0


# --- known papers -----------------------------------------------------------------------------


def test_replacement_of_known_paper_bumps_version_and_text() -> None:
    old = stored(arxiv())
    v2 = arxiv(version=2, title="Sparse Attention at Scale (revised)", updated=LATER)
    paper, outcome = merge(old, Sighting(v2, AnnounceType.REPLACE), LATER)
    assert outcome is Outcome.UPDATED
    assert (paper.version, paper.title, paper.updated) == (2, v2.title, LATER)
    assert paper.first_seen == NOW


def test_same_replacement_again_is_unchanged() -> None:
    v2 = Sighting(arxiv(version=2), AnnounceType.REPLACE)
    once, _ = merge(stored(arxiv()), v2, NOW)
    again, outcome = merge(once, v2, LATER)
    assert outcome is Outcome.UNCHANGED
    assert again == once


def test_lower_version_never_replaces_text_or_version() -> None:
    current = stored(arxiv(version=3, title="Third"))
    paper, outcome = merge(current, Sighting(arxiv(version=1, title="First")), LATER)
    assert (paper.version, paper.title, outcome) == (3, "Third", Outcome.UNCHANGED)


def test_hf_text_does_not_replace_arxiv_text() -> None:
    paper, _ = merge(stored(arxiv()), Sighting(hf()), LATER)
    assert paper.abstract == "We study sparse attention."
    assert paper.authors == ("Ada Lovelace", "Jürgen Müller")


def test_arxiv_text_replaces_hf_text() -> None:
    paper, outcome = merge(stored(hf()), Sighting(arxiv()), LATER)
    assert outcome is Outcome.UPDATED
    assert paper.abstract == "We study sparse attention."
    assert paper.authors == ("Ada Lovelace", "Jürgen Müller")


def test_arxiv_text_wins_a_version_tie_whichever_came_first() -> None:
    from_blog = blog(version=2, abstract="blog text")
    from_arxiv = arxiv(version=2, abstract="arxiv text")
    first_blog, _ = merge(stored(from_blog), Sighting(from_arxiv), LATER)
    first_arxiv, _ = merge(stored(from_arxiv), Sighting(from_blog), LATER)
    assert first_blog.abstract == first_arxiv.abstract == "arxiv text"


def test_tie_between_two_non_arxiv_sources_keeps_stored_text() -> None:
    # Otherwise two feeds that disagree would flip the record (and report UPDATED) forever.
    paper, outcome = merge(stored(hf()), Sighting(blog(abstract="other")), LATER)
    assert paper.title == hf().title
    assert paper.abstract == hf().abstract
    assert outcome is Outcome.UPDATED  # only the blog's name joined the sources


def test_empty_value_never_replaces_non_empty() -> None:
    old = stored(arxiv())
    v2 = arxiv(version=2, title="New title", abstract="", authors=())
    paper, _ = merge(old, Sighting(v2), LATER)
    assert paper.title == "New title"
    assert paper.abstract == old.abstract
    assert paper.authors == old.authors


def test_missing_text_is_filled_from_a_lower_ranked_source() -> None:
    paper, outcome = merge(stored(blog()), Sighting(hf()), LATER)
    assert outcome is Outcome.UPDATED
    assert paper.title == blog().title  # tie: stored title kept
    assert paper.abstract == hf().abstract  # the blog had none


def test_categories_union_with_arxiv_primary_first() -> None:
    tagged = stored(blog(categories=("ml", "cs.AI")))
    paper, _ = merge(tagged, Sighting(arxiv(categories=("cs.LG", "cs.AI"))), LATER)
    assert paper.categories == ("cs.LG", "cs.AI", "ml")


def test_non_arxiv_categories_are_appended() -> None:
    paper, _ = merge(stored(arxiv()), Sighting(blog(categories=("ml", "cs.LG"))), LATER)
    assert paper.categories == ("cs.LG", "cs.AI", "ml")


def test_counters_take_latest_value_and_none_keeps_old() -> None:
    with_votes = stored(hf(upvotes=3))
    bumped, outcome = merge(with_votes, Sighting(hf(upvotes=7, github_stars=None)), LATER)
    assert outcome is Outcome.UPDATED
    assert (bumped.upvotes, bumped.comments, bumped.github_stars) == (7, 1, 10)
    kept, outcome = merge(bumped, Sighting(arxiv()), LATER)
    assert (kept.upvotes, kept.github_stars) == (7, 10)


def test_counter_may_go_down() -> None:
    paper, outcome = merge(stored(hf(upvotes=5)), Sighting(hf(upvotes=4)), LATER)
    assert (paper.upvotes, outcome) == (4, Outcome.UPDATED)


def test_links_fill_missing_and_arxiv_abs_pdf_win() -> None:
    paper, _ = merge(stored(blog()), Sighting(arxiv()), LATER)
    assert paper.links.abs == f"https://arxiv.org/abs/{KEY}"
    paper, _ = merge(paper, Sighting(hf()), LATER)
    assert paper.links == Links(
        abs=f"https://arxiv.org/abs/{KEY}",
        pdf=f"https://arxiv.org/pdf/{KEY}",
        hf=f"https://huggingface.co/papers/{KEY}",
        code="https://github.com/x/y",
    )
    paper, _ = merge(paper, Sighting(blog()), LATER)
    assert paper.links.abs == f"https://arxiv.org/abs/{KEY}"


def test_published_earliest_updated_latest() -> None:
    early, late = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC)
    paper, _ = merge(stored(arxiv()), Sighting(hf(published=early, updated=late)), LATER)
    assert (paper.published, paper.updated) == (early, late)
    paper, _ = merge(paper, Sighting(arxiv(published=None, updated=None)), LATER)
    assert (paper.published, paper.updated) == (early, late)


def test_sources_union_in_first_seen_order_and_first_seen_kept() -> None:
    paper, _ = merge(stored(hf()), Sighting(arxiv()), LATER)
    paper, _ = merge(paper, Sighting(blog(sources=("ml-blog", "hf"))), LATER)
    assert paper.sources == ("hf", "arxiv", "ml-blog")
    assert paper.first_seen == NOW


def test_identical_sighting_is_unchanged() -> None:
    paper, outcome = merge(stored(arxiv()), Sighting(arxiv()), LATER)
    assert outcome is Outcome.UNCHANGED
    assert paper.first_seen == NOW


def test_other_key_is_refused() -> None:
    with pytest.raises(ValueError, match=r"cannot merge paper '2603\.99999'"):
        merge(stored(arxiv()), Sighting(arxiv(key="2603.99999")), NOW)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        merge(None, Sighting(arxiv()), datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive datetime"):
        merge(None, Sighting(arxiv(published=datetime(2026, 1, 1))), NOW)


# --- batches ----------------------------------------------------------------------------------


def test_batch_counts_each_key_once() -> None:
    other = arxiv(key="2603.00002")
    plan = merge_batch({}, [Sighting(arxiv()), Sighting(hf()), Sighting(other)], NOW)
    assert [p.key for p in plan.inserts] == [KEY, "2603.00002"]
    assert plan.updates == ()
    assert [p.key for p in plan.result.new] == [KEY, "2603.00002"]
    merged = plan.inserts[0]
    assert (merged.sources, merged.upvotes) == (("arxiv", "hf"), 3)


def test_batch_unknown_key_is_new_if_any_sighting_is_not_a_replacement() -> None:
    replaced = Sighting(arxiv(version=2), AnnounceType.REPLACE)
    plan = merge_batch({}, [replaced, Sighting(hf())], NOW)
    assert (len(plan.result.new), plan.result.skipped) == (1, 0)
    plan = merge_batch({}, [replaced], NOW)
    assert (plan.result.new, plan.result.skipped, len(plan.inserts)) == ((), 1, 1)


def test_batch_change_then_revert_is_unchanged() -> None:
    known = stored(hf(upvotes=5))
    plan = merge_batch({KEY: known}, [Sighting(hf(upvotes=6)), Sighting(hf(upvotes=5))], LATER)
    assert (plan.updates, plan.result.unchanged) == ((), 1)


def test_batch_known_key_changed_is_updated() -> None:
    known = stored(hf())
    plan = merge_batch({KEY: known}, [Sighting(arxiv(version=2), AnnounceType.REPLACE)], LATER)
    assert plan.inserts == ()
    assert [p.version for p in plan.result.updated] == [2]
    assert plan.result.new == ()


# --- properties -------------------------------------------------------------------------------

_texts = st.sampled_from(["", "Attention", "Attention!", "Σ-Mem", "β-OPSD"])
_when = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2030, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]),
)
_names = st.sampled_from(["arxiv", "hf", "blog", "news"])
_urls = st.none() | st.sampled_from(["https://a.example/1", "https://b.example/2"])
_counts = st.none() | st.integers(min_value=0, max_value=5)

papers = st.builds(
    Paper,
    key=st.just(KEY),
    title=_texts,
    abstract=_texts,
    version=st.none() | st.integers(min_value=1, max_value=4),
    authors=st.lists(st.sampled_from(["A", "B", "Ü"]), max_size=3).map(tuple),
    categories=st.lists(st.sampled_from(["cs.LG", "cs.AI", "ml"]), max_size=3).map(tuple),
    published=st.none() | _when,
    updated=st.none() | _when,
    links=st.builds(Links, abs=_urls, pdf=_urls, hf=_urls, code=_urls),
    upvotes=_counts,
    comments=_counts,
    github_stars=_counts,
    sources=st.lists(_names, min_size=1, max_size=3).map(tuple),
)
sightings = st.builds(Sighting, paper=papers, announce=st.sampled_from(list(AnnounceType)))
stored_papers = papers.map(lambda p: stored(p, NOW))
fast = settings(max_examples=80, deadline=None)


@fast
@given(sighting=sightings)
def test_property_new_then_same_again_is_unchanged(sighting: Sighting) -> None:
    first, outcome = merge(None, sighting, NOW)
    assert outcome in (Outcome.NEW, Outcome.SKIPPED)
    again, outcome = merge(first, sighting, LATER)
    assert (again, outcome) == (first, Outcome.UNCHANGED)


@fast
@given(existing=stored_papers, sighting=sightings)
def test_property_merge_is_idempotent(existing: Paper, sighting: Sighting) -> None:
    once, _ = merge(existing, sighting, LATER)
    twice, outcome = merge(once, sighting, LATER)
    assert twice == once
    assert outcome is Outcome.UNCHANGED


@fast
@given(existing=stored_papers, sighting=sightings)
def test_property_unions_and_kept_fields(existing: Paper, sighting: Sighting) -> None:
    merged, outcome = merge(existing, sighting, LATER)
    incoming = sighting.paper
    assert merged.sources[: len(existing.sources)] == existing.sources
    assert set(merged.sources) == set(existing.sources) | set(incoming.sources)
    assert set(merged.categories) == set(existing.categories) | set(incoming.categories)
    assert merged.first_seen == existing.first_seen
    versions = [v for v in (existing.version, incoming.version) if v is not None]
    assert merged.version == (max(versions) if versions else None)
    assert bool(merged.title) == bool(existing.title or incoming.title)
    assert (outcome is Outcome.UNCHANGED) == (merged == existing)


@fast
@given(existing=stored_papers, sighting=sightings)
def test_property_known_paper_is_never_new(existing: Paper, sighting: Sighting) -> None:
    _, outcome = merge(existing, sighting, LATER)
    assert outcome in (Outcome.UPDATED, Outcome.UNCHANGED)


@fast
@given(existing=stored_papers, sighting=sightings)
def test_property_result_is_normalised(existing: Paper, sighting: Sighting) -> None:
    merged, _ = merge(existing, sighting, LATER)
    assert normalise(merged) == merged
    for when in (merged.published, merged.updated, merged.first_seen):
        assert when is None or when.tzinfo is UTC
