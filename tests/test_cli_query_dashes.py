"""A query that starts with '-': it works after '--', and without it the error says so."""

from __future__ import annotations

import pytest

from bot.cli import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["test-query", "--", "-survey"],
        ["test-query", "--days", "3", "--", "-survey"],
        ["subscribe", "--email", "a@b.c", "--", "-survey"],
    ],
)
def test_a_query_with_a_leading_dash_goes_after_double_dash(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).query == "-survey"


@pytest.mark.parametrize(
    "argv",
    [["test-query", "-survey"], ["subscribe", "--email", "a@b.c", "---a"]],
)
def test_without_double_dash_one_line_says_to_use_it(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"paperbell {argv[0]}: error: ")
    assert "goes after '--'" in line and "-- '-survey'" in line


def test_other_usage_errors_are_left_as_they_were(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["test-query", "--days", "x", "q"])
    assert "'--'" not in capsys.readouterr().err
