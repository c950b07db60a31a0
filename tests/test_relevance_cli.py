"""The CLI of learned relevance: feedback (rate, list, reset), recommend, like: queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli.main import main
from tests.support_relevance import by_title, seed_database

DIFFUSION = by_title("diffusion")
REASONING = by_title("reasoning")
ADA = "ada@example.org"


@pytest.fixture(autouse=True)
def _seeded(capsys: pytest.CaptureFixture[str]) -> None:
    seed_database(Path("data") / "paperbell.db")
    assert main(["subscribe", "--email", ADA, "diffusion"]) == 0
    capsys.readouterr()


def test_feedback_like_dislike_list_and_reset(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["feedback", "--email", ADA, "--like", *DIFFUSION[:2], "--dislike", REASONING[0]]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{ADA}: liked {DIFFUSION[0]}",
        f"{ADA}: liked {DIFFUSION[1]}",
        f"{ADA}: disliked {REASONING[0]}",
    ]
    assert main(["feedback", "--email", ADA, "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert sorted(listed) == ["dislike", "like", "like"]
    assert main(["feedback", "--email", ADA, "--reset"]) == 0
    assert "forgot 3 rating(s)" in capsys.readouterr().out
    assert main(["feedback", "--email", ADA, "--list"]) == 0
    assert "rated no paper yet" in capsys.readouterr().out


def test_feedback_names_each_bad_input_on_its_own_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["feedback", "--email", ADA, "--like", "2411.99999", "not-an-id", DIFFUSION[0]])
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("paperbell: ") for line in err)
    assert "'not-an-id' is not a paper id" in err[0] and "2411.99999" in err[1]
    assert main(["feedback", "--email", ADA, "--list"]) == 0
    assert "rated no paper yet" in capsys.readouterr().out  # nothing half-recorded
    assert main(["feedback", "--email", ADA, "--like", "2411.99999"]) == 1
    assert capsys.readouterr().err.count("no stored paper 2411.99999") == 1
    assert main(["feedback", "--email", "nobody@example.org", "--like", DIFFUSION[0]]) == 1
    err = capsys.readouterr().err
    assert "no account has the address 'nobody@example.org'" in err and "Traceback" not in err
    assert main(["feedback", "--email", ADA, "--list", "--reset"]) == 2
    assert main(["feedback", "--email", ADA]) == 2


def test_recommend_json_in_rank_order(capsys: pytest.CaptureFixture[str]) -> None:
    main(["feedback", "--email", ADA, "--like", *DIFFUSION[:3], "--dislike", *REASONING[:3]])
    capsys.readouterr()
    assert main(["recommend", "--email", ADA, "--limit", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ["papers"] and len(result["papers"]) == 4
    assert all(set(p) == {"id", "title", "score", "because"} for p in result["papers"])
    scores = [p["score"] for p in result["papers"]]
    assert scores == sorted(scores, reverse=True)
    ids = [p["id"] for p in result["papers"]]
    assert not set(ids) & set(DIFFUSION[:3] + REASONING[:3])  # rated ones are excluded
    assert set(ids) & set(DIFFUSION[3:])
    assert main(["papers", "--json", "--limit", "300"]) == 0
    known = {json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()}
    assert set(ids) <= known  # the same ids `paperbell papers --json` shows
    assert main(["recommend", "--email", ADA, "--limit", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(" 1. ") and "because: " in text


def test_recommend_without_feedback_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "--email", ADA, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"papers": []}
    assert "nothing to learn from yet" in captured.err
    assert f"paperbell feedback --email {ADA} --like ID" in captured.err


def test_like_query_in_test_query_and_subscribe(capsys: pytest.CaptureFixture[str]) -> None:
    target = DIFFUSION[0]
    assert main(["test-query", f"like:arXiv:{target}v2 -survey", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["normalized"] == f"like:{target} AND NOT survey"
    assert target in result["matches"] and 0 < result["share"] < 0.2
    assert main(["test-query", "like:2411.99999"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "like:2411.99999: no stored paper" in err
    assert main(["subscribe", "--email", ADA, f"like:{target} OR like:{DIFFUSION[1]}"]) == 0
    assert "subscription #2" in capsys.readouterr().out
    # like: papers teach the model too: recommend works without a single rating.
    assert main(["recommend", "--email", ADA, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["papers"]
