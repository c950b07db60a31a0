"""Text analysis: LaTeX and accent folding, tokens, index terms, one paper's keys."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.matching.analysis import (
    AUTHOR_NS,
    CAT_NS,
    CAT_PREFIX_NS,
    HAY_ABSTRACT,
    HAY_ANY,
    HAY_AUTHOR,
    HAY_TITLE,
    SOURCE_NS,
    TITLE_NS,
    analyze_paper,
    fold,
    fold_name,
    key_frequencies,
    latex_fold,
    surface_forms,
    term_key,
    text_tokens,
    tokenize,
)
from bot.models import Paper
from tests.reference_eval import load_corpus


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("$\\alpha$-divergence", ["alpha", "divergence"]),
        ("$\\varepsilon$-greedy", ["epsilon", "greedy"]),
        ("\\textbf{Deep} Learning", ["deep", "learning"]),
        ("\\mathbb{Z}_2 symmetry", ["z", "2", "symmetry"]),
        ('G\\"odel, G\\"{o}del and Gödel', ["godel", "godel", "and", "godel"]),
        ("Przemys{\\l}aw Bj\\o rn Gro\\ss e", ["przemyslaw", "bjorn", "grosse"]),
        ("St\\'ephan \\v{S}tefan \\c{c}a", ["stephan", "stefan", "ca"]),
        ("\\emph{in-context} 50\\% faster", ["in", "context", "50", "faster"]),
        ("as shown \\cite{smith2020} at \\url{http://x.org}", ["as", "shown", "at"]),
        ("$O(n^2)$", ["o", "n", "2"]),
        ("2times2", ["2times2"]),  # HF strips the backslash; nothing to recover
    ],
)
def test_latex_is_folded_to_its_words(text: str, tokens: list[str]) -> None:
    assert text_tokens(text) == tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Naïve CAFÉ", ["naive", "cafe"]),
        ("Ærø Łódź ħ", ["aero", "lodz", "h"]),
        ("ﬁne-tuning", ["fine", "tuning"]),
        ("β-VAE and Σ-Mem", ["beta", "vae", "and", "sigma", "mem"]),
        (
            "encoder/decoder in-context snake_case",
            ["encoder", "decoder", "in", "context", "snake", "case"],
        ),
        ("x\u0301y", ["xy"]),  # a decomposed accent never splits a word
        ("Straße", ["strasse"]),
        ("中文 模型", ["中文", "模型"]),
    ],
)
def test_fold_and_tokenize(text: str, tokens: list[str]) -> None:
    assert text_tokens(text) == tokens


def test_latex_fold_keeps_plain_text_untouched() -> None:
    text = "Plain text, with (parentheses) and 3.5% numbers."
    assert latex_fold(text) is text


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("transformers", "transformer"),
        ("learned", "learning"),
        ("llms", "llm"),
        ("gpus", "gpu"),
        ("cnns", "cnn"),
        ("gans", "gan"),
        ("vlms", "vlm"),
        ("1990s", "1990"),
    ],
)
def test_same_index_term(a: str, b: str) -> None:
    assert term_key(a) == term_key(b)


@pytest.mark.parametrize(("a", "b"), [("news", "new"), ("class", "clas"), ("loss", "los")])
def test_different_index_terms(a: str, b: str) -> None:
    assert term_key(a) != term_key(b)


def test_acronym_rule_ignores_the_original_case() -> None:
    """``LLMs`` in a paper and ``llms`` typed by a user meet at the same term."""
    assert {term_key(t) for t in text_tokens("LLMs llms LLM")} == {"llm"}


@given(st.text(max_size=60))
def test_fold_is_idempotent(text: str) -> None:
    once = fold(text)
    assert fold(once) == once


@given(st.text(max_size=60))
def test_ascii_fast_path_tokenizes_like_the_regex(text: str) -> None:
    folded = fold(text.encode("ascii", "replace").decode())
    assert tokenize(folded) == re.findall(r"[^\W_]+", folded)


@given(st.text(max_size=60))
def test_tokens_survive_a_second_pass(text: str) -> None:
    """What the normalized form writes back re-tokenizes to the same words."""
    tokens = text_tokens(text)
    assert tokenize(fold(" ".join(tokens))) == tokens


def _paper(**fields: object) -> Paper:
    base: dict[str, object] = {"key": "2401.00001", "title": "", "abstract": ""}
    base.update(fields)
    return Paper(**base)  # type: ignore[arg-type]


def test_analyze_paper_keys_by_namespace() -> None:
    terms = analyze_paper(
        _paper(
            title="Transformers for LLMs",
            abstract="We study in-context learning.",
            authors=("Jürgen Schmidhuber",),
            categories=("cs.LG", "stat.ML"),
            sources=("hf", "Lab Blog"),
            upvotes=12,
        )
    )
    expected = {
        "transform",
        "llm",
        "learn",
        TITLE_NS + "transform",
        TITLE_NS + "llm",
        ("in", "context"),
        ("for", "llms"),
        AUTHOR_NS + "jurgen",
        CAT_NS + "cs.lg",
        CAT_PREFIX_NS + "cs.",
        CAT_PREFIX_NS + "s",
        SOURCE_NS + "lab blog",
        SOURCE_NS + "hf",
    }
    assert expected <= terms.keys
    assert TITLE_NS + "learn" not in terms.keys
    assert ("llms", "we") not in terms.keys  # a pair never spans title and abstract
    assert terms.words == {
        "transformers",
        "for",
        "llms",
        "we",
        "study",
        "in",
        "context",
        "learning",
    }
    assert terms.author_words == {"jurgen", "schmidhuber"}
    assert terms.abstract_terms == {"we", "studi", "in", "context", "learn"}
    assert terms.upvotes == 12


def test_haystacks_keep_parts_apart() -> None:
    terms = analyze_paper(
        _paper(title="Deep Nets", abstract="Nets learn.", authors=("Ann Lee", "Bo Chen"))
    )
    assert terms.hays[HAY_TITLE] == " deep nets "
    assert terms.hays[HAY_ABSTRACT] == " nets learn "
    assert terms.hays[HAY_ANY] == " deep nets | nets learn "
    assert terms.hays[HAY_AUTHOR] == " ann lee | bo chen "


def test_fold_name_collapses_spaces() -> None:
    assert fold_name("  Lab   BLOG ") == "lab blog"


def test_surface_forms_map_folded_tokens_to_written_words() -> None:
    forms = surface_forms("LLMs and Gödel's β-VAE, llms")
    assert forms["llms"] == {"LLMs", "llms"}
    assert forms["godel"] == {"Gödel"}
    assert forms["beta"] == {"β"}


def test_key_frequencies_over_the_corpus() -> None:
    freqs = key_frequencies(analyze_paper(p) for p in load_corpus())
    assert freqs["the"] > 0.9
    assert 0 < freqs["llm"] < 0.9
    assert all(0 < f <= 1 for f in freqs.values())
    assert key_frequencies([]) == {}
