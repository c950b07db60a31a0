"""The subscription query language: what users type to say which papers they want.

- ``word``: the word in the title or abstract, ignoring case and accents, also matching
  words with the same stem (``transformers`` ↔ ``transformer``) and acronym plurals
  (``LLMs`` ↔ ``LLM``). A hyphenated or slashed word is the phrase of its parts
  (``in-context`` = ``"in context"``).
- ``"exact phrase"``: these words in this order, ignoring case and accents, not stemmed.
  Curly quotes work too. One quoted word is that exact word, unstemmed.
- ``prefix*``: any word starting with the prefix (at least 3 letters).
- ``a b`` or ``a AND b``: both. ``a OR b``: either. ``-a`` or ``NOT a``: not a. Parentheses
  group. Operators are recognised in capitals only; a lone lower-case ``and``/``or``/``not``
  is an error (write it in capitals, or quote it to search for the word) rather than
  a silent change of meaning. OR binds tighter than AND, as in Google Scholar:
  ``llm agents OR robots`` is ``llm AND (agents OR robots)``.
- Fields: ``title:``, ``abstract:``, ``author:`` (a word or ``"phrase"`` of one author's
  name, not stemmed), ``cat:cs.LG`` or ``cat:cs.*``, ``source:hf`` (``hf``, ``arxiv`` or a
  configured feed's name), ``upvotes:>=N`` (also ``>N``). ``title:(a OR "b c")`` applies a
  text field to a group. ``like:2406.11779`` (repeatable; a feed paper's ``feed:`` key
  works too): papers whose TF-IDF vectors are close to that stored paper's (cosine at
  least ``bot.relevance.similar.LIKE_THRESHOLD``). Short forms: ``ti:``, ``abs:``, ``au:``,
  ``category:``, ``src:``.
- Limits: 512 characters, 32 terms, 8 levels of parentheses; every query needs something
  to look for (``-survey`` alone is refused), and so does each side of an OR.

``parse_query`` returns a canonical ``Query`` (see ``bot.matching.query.ast``); ``render`` gives its
normalized text, e.g. ``transformer AND (diffusion OR "video generation") AND NOT survey``,
to show users how their query was understood. Re-parse a stored normalized text with
``limits=STORED_LIMITS``: written out it may be longer than what was typed.
"""

from bot.errors import QueryError
from bot.matching.query.ast import (
    And,
    Cat,
    Field,
    Leaf,
    Like,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    Source,
    Term,
    Upvotes,
    is_positive,
    leaves,
    like_keys,
    make_and,
    make_not,
    make_or,
    render,
)
from bot.matching.query.parser import (
    STORED_LIMITS,
    USER_LIMITS,
    Limits,
    normalize_query,
    paper_key,
    parse_query,
)

__all__ = [
    "STORED_LIMITS",
    "USER_LIMITS",
    "And",
    "Cat",
    "Field",
    "Leaf",
    "Like",
    "Limits",
    "Not",
    "Or",
    "Phrase",
    "Prefix",
    "Query",
    "QueryError",
    "Source",
    "Term",
    "Upvotes",
    "is_positive",
    "leaves",
    "like_keys",
    "make_and",
    "make_not",
    "make_or",
    "normalize_query",
    "paper_key",
    "parse_query",
    "render",
]
