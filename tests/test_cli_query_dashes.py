"""A query that starts with dashes is a query, not an option, with or without '--'."""

from __future__ import annotations

import pytest

from bot.cli.main import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["test-query", "--", "-survey"],
        ["test-query", "--days", "3", "--", "-survey"],
        ["subscribe", "--email", "a@b.c", "--", "-survey"],
        ["test-query", "-survey"],
        ["test-query", "-survey", "--days", "3"],
        ["subscribe", "--email", "a@b.c", "-survey"],
    ],
)
def test_a_query_with_a_leading_dash_is_the_query(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).query == "-survey"


def test_many_dashes_are_a_query_too() -> None:
    args = build_parser().parse_args(["subscribe", "--email", "a@b.c", "---a"])
    assert args.query == "---a" and args.email == "a@b.c"


def test_search_takes_dashed_words() -> None:
    assert build_parser().parse_args(["search", "llm", "-survey"]).text == ["llm", "-survey"]


def test_real_options_still_parse_and_abbreviate() -> None:
    args = build_parser().parse_args(["test-query", "--da", "3", "q"])
    assert (args.days, args.query) == (3, "q")


def test_other_usage_errors_are_left_as_they_were(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["test-query", "--days", "x", "q"])
    assert "argument --days" in capsys.readouterr().err
