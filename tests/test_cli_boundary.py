"""The command line at its edges: no arguments, a bad data directory, read-only commands on
no or an old database, a closed pipe, misspelled settings, ``--source`` mistakes."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot import __version__
from bot.cli.main import main
from bot.cli.papers import parse_source_option
from bot.errors import UsageError
from bot.exitcodes import ExitCode
from bot.models import SourceKind
from bot.settings import DEFAULT_URLS
from bot.store.sqlite.schema import load_migrations
from tests.conftest import PROJECT_ROOT
from tests.test_cli import EXAMPLE, FIXTURES, run_cli

READ_ONLY = ("status", "papers", "search", "outbox", "check")


def test_exit_codes_live_in_one_enum() -> None:
    assert [int(c) for c in ExitCode][:4] == [0, 1, 2, 78]
    import bot.cli.main

    assert not hasattr(bot.cli.main, "EX_OK")


def test_no_arguments_prints_help_and_version_answers() -> None:
    bare = run_cli()
    assert bare.returncode == ExitCode.USAGE
    assert "usage: paperbell" in bare.stderr and "subscribe" in bare.stderr
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"paperbell {__version__}"


# --- the data directory -------------------------------------------------------------------


@contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` as a directory left owned by root is to its user. root ignores modes, so as
    root the immutable flag does it (root may not write there either)."""
    if os.geteuid() != 0:
        path.chmod(0o500)
        try:
            yield
        finally:
            path.chmod(0o700)
        return
    if shutil.which("chattr") is None:
        pytest.skip(
            "running as root without chattr (Debian package e2fsprogs): "
            "cannot make a directory unwritable"
        )
    if subprocess.run(["chattr", "+i", str(path)], check=False).returncode != 0:
        pytest.skip("chattr +i is not supported on this filesystem")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize("command", [("papers",), ("run",), ("ingest",), ("status",)])
def test_data_dir_that_is_a_file_exits_78_naming_it(tmp_path: Path, command: tuple[str]) -> None:
    (tmp_path / "data").write_text("not a directory")
    result = run_cli(*command, env={"PAPERBELL_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == ExitCode.CONFIG
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{tmp_path / 'data'} is a file, not a directory" in lines[0]


def test_unwritable_data_dir_exits_78_with_the_fix(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"PAPERBELL_DATA_DIR": str(data)}
    assert run_cli("ingest", "--source", f"feed:file:{EXAMPLE}", env=env).returncode == 0
    with unwritable(data):
        for command in (("run",), ("ingest",), ("papers",)):
            result = run_cli(*command, env=env)
            assert result.returncode == ExitCode.CONFIG, result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in result.stderr
            assert f"PAPERBELL_DATA_DIR {data} is not writable" in lines[0]
            assert "chown -R" in lines[0] and str(data) in lines[0]


def test_data_dir_that_cannot_be_created_exits_78(tmp_path: Path) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    with unwritable(parent):
        result = run_cli("ingest", env={"PAPERBELL_DATA_DIR": str(parent / "data")})
    assert result.returncode == ExitCode.CONFIG
    assert "cannot be created" in result.stderr and len(result.stderr.splitlines()) == 1


# --- read-only commands -------------------------------------------------------------------


@pytest.mark.parametrize("command", READ_ONLY)
def test_read_only_commands_without_a_database(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [command, "llm"] if command == "search" else [command]
    code = main(args)
    captured = capsys.readouterr()
    note = "no database yet at data/paperbell.db — run `paperbell run` or `paperbell ingest`"
    assert note in captured.out + captured.err
    assert code == (ExitCode.FAILURE if command == "check" else ExitCode.OK)
    assert not Path("data").exists()  # nothing created where none existed


def _old_database(path: Path) -> int:
    """A database one migration behind this paperbell, as an older release left it."""
    migrations = load_migrations()
    path.parent.mkdir()
    with sqlite3.connect(path) as db:
        for migration in migrations[:-1]:
            for statement in migration.statements():
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {len(migrations) - 1}")
    return len(migrations) - 1


def test_migrate_says_what_it_did(capsys: pytest.CaptureFixture[str]) -> None:
    db = Path("data/paperbell.db")
    old = _old_database(db)
    assert main(["migrate"]) == ExitCode.OK
    said = f"{db}: migrated from schema version {old} to {old + 1}"
    assert capsys.readouterr().out.strip() == said
    assert main(["migrate"]) == ExitCode.OK
    assert capsys.readouterr().out.strip() == f"{db} is up to date"
    shutil.rmtree("data")
    assert main(["migrate"]) == ExitCode.OK
    assert capsys.readouterr().out.strip() == f"{db}: created"


@pytest.mark.parametrize("command", READ_ONLY)
def test_read_only_commands_never_migrate(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    db = Path("data/paperbell.db")
    old = _old_database(db)
    args = [command, "llm"] if command == "search" else [command]
    code = main(args)
    out = capsys.readouterr()
    assert code == ExitCode.CONFIG  # the operator's step, as for a database too new
    assert f"schema version {old}, older than this paperbell's" in out.err + out.out
    assert "paperbell migrate" in out.err + out.out
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == old
    assert main(["migrate"]) == ExitCode.OK
    assert main(["papers"]) == ExitCode.OK


def test_read_only_commands_leave_the_data_dir_as_it_was(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ingest", "--source", f"feed:file:{EXAMPLE}"]) == 0
    (Path("data") / "secret_key").unlink()  # read-only commands need no key either
    before = sorted(p.name for p in Path("data").iterdir())
    for command in READ_ONLY:
        main([command, "llm"] if command == "search" else [command])
    capsys.readouterr()
    after = sorted(p.name for p in Path("data").iterdir())
    assert set(after) <= set(before) | {"paperbell.db-wal", "paperbell.db-shm"}
    assert "secret_key" not in after


# --- pipes, settings, --source ------------------------------------------------------------


def test_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    env = {"PAPERBELL_DATA_DIR": str(tmp_path / "data")}
    assert run_cli("ingest", "--source", f"feed:file:{EXAMPLE}", env=env).returncode == 0
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBELL_")}
    full_env.update(env, PYTHONPATH=str(PROJECT_ROOT))
    child = subprocess.Popen(
        [sys.executable, "-m", "bot", "papers"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # `| head -1` gone before paperbell writes anything
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == ExitCode.BROKEN_PIPE
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_misspelled_settings_are_named_once(tmp_path: Path) -> None:
    Path(".env").write_text("PAPERBELL_DATADIR=elsewhere\n# PAPERBELL_COMMENTED=1\n")
    result = run_cli("papers", env={"PAPERBELL_SMTP_HOST": "mail.example.org"})
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "paperbell: warning: PAPERBELL_SMTP_HOST (environment) is not a setting, ignored; "
        "did you mean PAPERBELL_SMTP__HOST?",
        "paperbell: warning: PAPERBELL_DATADIR (.env) is not a setting, ignored; "
        "did you mean PAPERBELL_DATA_DIR?",
    ]
    Path(".env").write_text("paperbell_data_dir=data\n")  # names are case-insensitive
    quiet = run_cli("papers", env={"PAPERBELL_SMTP__HOST": "", "PAPERBELL_SMTP": "{}"})
    assert "warning" not in quiet.stderr


def test_source_option_takes_an_arxiv_query() -> None:
    config = parse_source_option("arxiv_api:cat:cs.LG AND abs:diffusion")
    assert config.kind is SourceKind.ARXIV_API
    assert config.query == "cat:cs.LG AND abs:diffusion"
    assert config.url == DEFAULT_URLS[SourceKind.ARXIV_API]
    assert parse_source_option("hf_daily").kind is SourceKind.HF_DAILY
    assert parse_source_option("feed:file:examples/papers.xml").url == "file:examples/papers.xml"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("feed:gopher://example.org/rss", "url 'gopher://example.org/rss' must start with"),
        ("arxiv_api", "give an arXiv query after arxiv_api:"),
        ("feed", "give a URL after feed:"),
        ("gopher:x", "start with a kind"),
    ],
)
def test_source_option_errors_say_why(text: str, reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_source_option(text)
    assert reason in str(caught.value) and "pydantic" not in str(caught.value)


def test_source_option_error_on_the_command_line() -> None:
    result = run_cli("ingest", "--source", "rss_feed:x")
    assert result.returncode == ExitCode.USAGE
    bad_url = run_cli("ingest", "--source", "arxiv_rss:ftp://example.org/x")
    assert bad_url.returncode == ExitCode.USAGE
    assert "must start with http://" in bad_url.stderr
    assert "errors.pydantic.dev" not in bad_url.stderr


@pytest.mark.parametrize("name", ["paperbell.db", "outbox"])
def test_unwritable_file_inside_the_data_dir_is_named(tmp_path: Path, name: str) -> None:
    data = tmp_path / "data"
    env = {"PAPERBELL_DATA_DIR": str(data)}
    assert run_cli("ingest", "--source", f"feed:file:{EXAMPLE}", env=env).returncode == 0
    (data / "outbox").mkdir(exist_ok=True)
    with unwritable(data / name):
        result = run_cli("run", env=env)
    assert result.returncode == ExitCode.CONFIG
    assert f"PAPERBELL_DATA_DIR {data}: {name} is not writable" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_once_does_one_cycle_and_says_if_a_source_failed(tmp_path: Path) -> None:
    env = {"PAPERBELL_DATA_DIR": str(tmp_path / "data")}
    good = [{"kind": "feed", "url": f"file:{EXAMPLE}"}]
    bad = [*good, {"kind": "arxiv_rss", "url": f"file:{FIXTURES / 'arxiv_rss_error.xml'}"}]
    once = run_cli("run", "--once", env={**env, "PAPERBELL_SOURCES": json.dumps(good)})
    assert once.returncode == ExitCode.OK, once.stderr
    assert "cycle papers: fetched 6, new 6" in once.stderr
    failing = run_cli("run", "--once", env={**env, "PAPERBELL_SOURCES": json.dumps(bad)})
    assert failing.returncode == ExitCode.FAILURE
    assert "Invalid category" in failing.stderr and "Traceback" not in failing.stderr
