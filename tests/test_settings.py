"""Settings: defaults, env parsing, one-line errors, and .env.example kept in step."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.cli.main import main
from bot.errors import ConfigError
from bot.models import SourceKind
from bot.settings import SourceConfig, load_settings
from bot.settings_doc import iter_settings, render_env_example
from tests.conftest import PROJECT_ROOT


def test_defaults_need_nothing_configured() -> None:
    settings = load_settings()
    assert settings.data_dir == Path("data")
    assert settings.database_path == Path("data/paperbell.db")
    assert [s.kind for s in settings.sources] == [SourceKind.HF_DAILY]
    assert settings.sources[0].url == "https://huggingface.co/api/daily_papers"
    assert settings.sources[0].name == "hf"


def test_env_prefix_nested_delimiter_and_json_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBELL_DATA_DIR", "/srv/paperbell")
    monkeypatch.setenv("PAPERBELL_HTTP__TIMEOUT", "7.5")
    monkeypatch.setenv(
        "PAPERBELL_SOURCES",
        '[{"kind": "arxiv_api", "query": "cat:cs.LG"},'
        ' {"kind": "feed", "url": "https://blog.example.org/feed.xml"},'
        ' {"kind": "feed", "url": "file:tests/x.xml", "name": "mine"}]',
    )
    settings = load_settings()
    assert settings.database_path == Path("/srv/paperbell/paperbell.db")
    assert settings.http.timeout == 7.5
    api, feed, rss = settings.sources
    assert api.url == "https://export.arxiv.org/api/query" and api.name == "arxiv"
    assert api.request_interval == 3.0  # arXiv's terms of use
    assert feed.name == "blog.example.org" and feed.request_interval == 0.0
    assert rss.name == "mine"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    Path(".env").write_text("PAPERBELL_LOG_LEVEL=DEBUG\n")
    assert load_settings().log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PAPERBELL_SOURCES", '[{"kind": "gopher"}]', "PAPERBELL_SOURCES[0].kind: Input should be"),
        ("PAPERBELL_SOURCES", '[{"kind": "arxiv_api"}]', "needs a query"),
        ("PAPERBELL_SOURCES", '[{"kind": "feed"}]', "a feed source needs a url"),
        ("PAPERBELL_SOURCES", '[{"kind": "feed", "url": "ftp://x"}]', "must start with http"),
        ("PAPERBELL_SOURCES", "[{", "PAPERBELL_SOURCES: not valid JSON"),
        ("PAPERBELL_SOURCES", '[{"kind": "hf_daily", "name": "x"}]', "always named 'hf'"),
        ("PAPERBELL_SOURCES", "[]", "PAPERBELL_SOURCES: give at least one source"),
        ("PAPERBELL_SOURCES", '[{"kind":"hf_daily"},{"kind":"hf_daily"}]', "listed twice"),
        ("PAPERBELL_SOURCES", '[{"kind":"hf_daily","colour":"red"}]', "colour: Extra inputs"),
        ("PAPERBELL_HTTP__TIMEOUT", "soon", "PAPERBELL_HTTP__TIMEOUT: Input should be a valid"),
        ("PAPERBELL_LOG_FORMAT", "xml", "PAPERBELL_LOG_FORMAT: Input should be"),
        ("PAPERBELL_PUBLIC_URL", "bell.example.org", "PAPERBELL_PUBLIC_URL: 'bell.example.org'"),
        ("PAPERBELL_PUBLIC_URL", "https://", "needs a scheme and a host"),
        ("PAPERBELL_SECRET_KEY", "x" * 31, "PAPERBELL_SECRET_KEY: 31 bytes is too short"),
    ],
)
def test_invalid_configuration_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert "Traceback" not in message


def test_source_id_distinguishes_queries() -> None:
    a = SourceConfig(kind=SourceKind.ARXIV_API, query="cat:cs.LG")
    b = SourceConfig(kind=SourceKind.ARXIV_API, query="cat:cs.CL")
    assert a.source_id != b.source_id


def test_env_example_is_in_step_with_settings() -> None:
    on_disk = (PROJECT_ROOT / ".env.example").read_text()
    assert on_disk == render_env_example(), (
        ".env.example is stale: run `python -m bot.settings_doc > .env.example`"
    )


def test_every_setting_is_documented() -> None:
    docs = iter_settings()
    assert {d.env for d in docs} >= {"PAPERBELL_DATA_DIR", "PAPERBELL_SOURCES"}
    missing = [d.env for d in docs if not d.description]
    assert not missing, f"settings without a description: {missing}"


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBELL_SMTP__PASSWORD", "hunter2")
    monkeypatch.setenv("PAPERBELL_SECRET_KEY", "s3cr3t-key-of-at-least-32-bytes!!")
    settings = load_settings()
    assert isinstance(settings.smtp.password, SecretStr)
    assert settings.smtp.password.get_secret_value() == "hunter2"
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "hunter2" not in text and "s3cr3t-key-of-at-least-32-bytes!!" not in text
    secret_envs = {d.env for d in iter_settings() if d.secret}
    assert {"PAPERBELL_SMTP__PASSWORD", "PAPERBELL_SECRET_KEY"} <= secret_envs


def test_readme_settings_table_is_in_step() -> None:
    from bot.settings_doc import render_settings_table

    readme = (PROJECT_ROOT / "README.md").read_text()
    assert render_settings_table() in readme, (
        "the README's configuration table is stale: run `python -m bot.settings_doc --readme`"
    )


def test_plain_http_public_url_needs_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBELL_WEB__HOST", "0.0.0.0")
    monkeypatch.setenv("PAPERBELL_PUBLIC_URL", "http://bell.example.org")
    with pytest.raises(ConfigError, match=r"^PAPERBELL_PUBLIC_URL: .* plain http .* https://"):
        load_settings()
    # A local trial stays possible: the endpoint or the link target is on loopback.
    assert load_settings(public_url="https://bell.example.org").web.host == "0.0.0.0"
    assert load_settings(public_url="http://localhost:8080").public_url
    monkeypatch.setenv("PAPERBELL_WEB__HOST", "127.0.0.1")
    assert load_settings().public_url == "http://bell.example.org"


def test_bad_link_settings_exit_78_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAPERBELL_SECRET_KEY", "too-short")
    assert main(["status"]) == 78
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PAPERBELL_SECRET_KEY" in err and "32" in err
    assert not Path("data").exists()


@pytest.mark.parametrize(
    ("value", "domains"),
    [
        ("uni.example.edu", ("uni.example.edu",)),
        (" Uni.Example.edu , @lab.example.org ", ("uni.example.edu", "lab.example.org")),
        ('["uni.example.edu", "lab.example.org"]', ("uni.example.edu", "lab.example.org")),
    ],
)
def test_signup_domains_are_read_as_a_list(
    monkeypatch: pytest.MonkeyPatch, value: str, domains: tuple[str, ...]
) -> None:
    monkeypatch.setenv("PAPERBELL_WEB__SIGNUP", "domains")
    monkeypatch.setenv("PAPERBELL_WEB__SIGNUP_DOMAINS", value)
    assert load_settings().web.domains == domains


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PAPERBELL_WEB__SIGNUP": "domains"}, "needs the domains allowed in"),
        ({"PAPERBELL_WEB__SIGNUP": "invite"}, "PAPERBELL_WEB__SIGNUP"),
        ({"PAPERBELL_WEB__SIGNUP_DOMAINS": "not a domain"}, "is not a mail domain"),
    ],
)
def test_bad_signup_settings_are_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()
