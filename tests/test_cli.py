"""The command line as a user meets it: exit codes, output, JSON, errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import main
from tests.conftest import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "papers.xml"
FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "sources"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m bot`` in a child process, as a user would run it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBELL_")}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(PROJECT_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )


def test_bad_configuration_exits_78_with_one_line() -> None:
    result = run_cli("papers", env={"PAPERBELL_SOURCES": '[{"kind": "gopher"}]'})
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "PAPERBELL_SOURCES[0].kind" in lines[0]
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2() -> None:
    assert run_cli("frobnicate").returncode == 2
    bad = run_cli("ingest", "--source", "gopher:file:x.xml")
    assert bad.returncode == 2
    assert "start with a kind" in bad.stderr and "Traceback" not in bad.stderr
    assert run_cli("papers", "--since", "yesterday").returncode == 2


def test_ingest_file_feed_then_list_and_search(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--source", f"feed:file:{EXAMPLE}"]) == 0
    out = capsys.readouterr().out
    assert "papers" in out and "6 new paper(s)" in out
    assert main(["papers", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 6
    needed = {"id", "version", "title", "abstract", "authors", "categories", "published"}
    needed |= {"url", "pdf_url", "sources", "upvotes"}
    assert all(needed <= row.keys() for row in rows)
    assert all(isinstance(r["authors"], list) and r["sources"] == ["papers"] for r in rows)
    assert main(["search", "circuit", "analyses"]) == 0
    assert "LLM Circuit Analyses" in capsys.readouterr().out.splitlines()[0]
    assert Path("data/paperbell.db").exists()  # the default data dir, created on first use


def test_ingest_twice_reports_nothing_new(capsys: pytest.CaptureFixture[str]) -> None:
    main(["ingest", "--source", f"feed:file:{EXAMPLE}"])
    capsys.readouterr()
    assert main(["ingest", "--source", f"feed:file:{EXAMPLE}"]) == 0
    assert "0 new paper(s), 0 updated" in capsys.readouterr().out


def test_failing_source_exits_1_and_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "ingest",
            "--source",
            f"feed:file:{EXAMPLE}",
            "--source",
            f"arxiv_rss:file:{FIXTURES / 'arxiv_rss_error.xml'}",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "feed error: Invalid category" in out
    assert "6 new paper(s)" in out  # the good source still stored its papers


def test_papers_since_filters(capsys: pytest.CaptureFixture[str]) -> None:
    main(["ingest", "--source", f"feed:file:{EXAMPLE}"])
    capsys.readouterr()
    assert main(["papers", "--since", "2026-11-20T03:00:00+00:00", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(r["published"] >= "2026-11-20T03:00:00" for r in rows)
    assert len(rows) < 6


def test_search_with_only_punctuation_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["search", '"*"']) == 2  # a bad query is a usage error
    err = capsys.readouterr().err
    assert "nothing to look for in the phrase at column 1" in err and "Traceback" not in err


def test_configured_sources_are_used(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = [{"kind": "feed", "url": f"file:{EXAMPLE}", "name": "rg"}]
    monkeypatch.setenv("PAPERBELL_SOURCES", json.dumps(sources))
    assert main(["ingest"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("rg")


def test_database_from_a_newer_paperbell_exits_78(tmp_path: Path) -> None:
    import sqlite3

    data = tmp_path / "data"
    main_db = data / "paperbell.db"
    data.mkdir()
    with sqlite3.connect(main_db) as db:
        db.execute("PRAGMA user_version = 999")
    data.chmod(0o700)  # as paperbell makes them: else a line says it tightened them
    main_db.chmod(0o600)
    result = run_cli("papers", env={"PAPERBELL_DATA_DIR": str(data)})
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "newer than this paperbell knows" in lines[0]
