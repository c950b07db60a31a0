"""Configuration, read once at startup from the environment (``PAPERBELL_*``) and ``.env``.

Nothing here runs at import time: ``load_settings()`` builds a ``Settings`` and the caller
passes it down. Invalid values become one ``ConfigError`` line naming the setting.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from bot.models import SourceKind
from bot.text import redact_url

ENV_PREFIX = "PAPERBELL_"
MIN_SECRET_BYTES = 32  # HMAC-SHA256 keys shorter than its output weaken the signatures

DEFAULT_URLS: dict[SourceKind, str] = {
    SourceKind.HF_DAILY: "https://huggingface.co/api/daily_papers",
    SourceKind.ARXIV_API: "https://export.arxiv.org/api/query",
}

# Source names as the query language's `source:` field sees them.
KIND_NAMES: dict[SourceKind, str] = {
    SourceKind.HF_DAILY: "hf",
    SourceKind.ARXIV_RSS: "arxiv",
    SourceKind.ARXIV_API: "arxiv",
}


class SourceConfig(BaseModel):
    """One entry of ``PAPERBELL_SOURCES``."""

    # hide_input: an error must not quote the URL back, with any password in it
    model_config = {"extra": "forbid", "frozen": True, "hide_input_in_errors": True}

    kind: SourceKind
    url: str = ""
    name: str = ""
    query: str = ""  # arxiv_api: the search_query
    interval_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    days: int = Field(default=3, ge=1, le=14)  # hf_daily: today and the days before
    max_results: int = Field(default=200, ge=1, le=30000)  # arxiv_api: per cycle
    page_size: int = Field(default=100, ge=1, le=2000)  # arxiv_api: per request
    min_request_interval: float = Field(default=-1.0, le=600)  # <0: the kind's default

    @model_validator(mode="after")
    def _fill_defaults(self) -> SourceConfig:
        url = self.url or DEFAULT_URLS.get(self.kind, "")
        if not url:
            raise ValueError(f"a {self.kind} source needs a url")
        if urlsplit(url).scheme not in ("http", "https", "file"):
            raise ValueError(f"url {redact_url(url)!r} must start with http://, https:// or file:")
        if self.kind is SourceKind.ARXIV_API and not self.query:
            raise ValueError("an arxiv_api source needs a query (arXiv search_query)")
        fixed = KIND_NAMES.get(self.kind)
        # Merging trusts arXiv text by the name "arxiv", and queries say source:hf.
        if fixed and self.name and self.name != fixed:
            raise ValueError(f"a {self.kind} source is always named {fixed!r}; drop name")
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "name", self.name or _default_name(self.kind, url))
        return self

    @property
    def source_id(self) -> str:
        """Stable identity for per-source state: kind, url and query."""
        tail = f"?{self.query}" if self.query else ""
        return f"{self.kind}:{redact_url(self.url)}{tail}"

    @property
    def request_interval(self) -> float:
        """Seconds between two requests; arXiv's terms ask for at least 3."""
        if self.min_request_interval >= 0:
            return self.min_request_interval
        return 3.0 if self.kind in (SourceKind.ARXIV_API, SourceKind.ARXIV_RSS) else 0.0


def _default_name(kind: SourceKind, url: str) -> str:
    if kind in KIND_NAMES:
        return KIND_NAMES[kind]
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(parts.path).stem or "feed"
    host = parts.hostname or "feed"
    return host.removeprefix("www.")


class HttpSettings(BaseModel):
    model_config = {"extra": "forbid"}

    timeout: float = Field(default=30.0, gt=0, le=600, description="Seconds per request.")
    retries: int = Field(default=3, ge=0, le=10, description="Retries after 429, 5xx, timeout.")
    backoff: float = Field(
        default=2.0, ge=0, le=120, description="First retry delay in seconds, doubled after."
    )
    max_wait: float = Field(
        default=120.0, ge=0, le=3600, description="Longest Retry-After (seconds) we wait out."
    )
    contact: str = Field(default="", description="Contact added to the User-Agent (an email).")
    max_bytes: int = Field(
        default=20_000_000,
        ge=10_000,
        le=2_000_000_000,
        description="Largest response body accepted from a source (bytes, decompressed).",
    )


class SmtpSettings(BaseModel):
    model_config = {"extra": "forbid"}

    host: str = Field(
        default="", description="SMTP server; empty writes .eml files to DATA_DIR/outbox."
    )
    port: int = Field(default=587, ge=1, le=65535, description="SMTP port (587 starttls, 465 tls).")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls, tls (implicit) or none; never downgraded."
    )
    username: str = Field(default="", description="SMTP login; empty for none.")
    password: SecretStr = Field(default=SecretStr(""), description="SMTP password.")
    from_address: str = Field(
        default="paperbell@localhost", description="Sender address of every message."
    )
    from_name: str = Field(default="paperbell", description="Sender display name.")
    ehlo_name: str = Field(default="", description="EHLO/HELO name; empty uses the machine's FQDN.")
    connections: int = Field(default=2, ge=1, le=16, description="Reused SMTP connections.")
    timeout: float = Field(default=30.0, gt=0, le=600, description="Seconds per SMTP command.")


class EmailSettings(BaseModel):
    model_config = {"extra": "forbid"}

    digest_max_papers: int = Field(
        default=50, ge=1, le=500, description="Papers per digest before 'and N more'."
    )
    alert_full_papers: int = Field(
        default=10,
        ge=1,
        le=500,
        description="Papers an instant alert shows in full; the rest of it are listed by title.",
    )
    digest_full_papers: int = Field(
        default=10,
        ge=1,
        le=500,
        description="Papers a digest shows in full (its best); the rest of it are listed by title.",
    )
    all_quiet: bool = Field(
        default=False, description="Send an 'all quiet' digest on days with no papers."
    )
    list_id: str = Field(default="paperbell.localhost", description="List-Id header domain part.")
    processes: int = Field(
        default=1,
        ge=1,
        le=8,
        description="Processes sending email in `paperbell run`; 2 or more starts helpers, "
        "so a big day's mail uses more than one core.",
    )


class DiscordSettings(BaseModel):
    model_config = {"extra": "forbid"}

    token: SecretStr | None = Field(
        default=None, description="Bot token; unset runs paperbell without Discord."
    )
    guild_id: str | None = Field(
        default=None,
        pattern=r"^(\d{1,20})?$",  # empty means unset
        description="Sync slash commands to this guild only (instant, for development).",
    )
    application_id: str | None = Field(
        default=None,
        pattern=r"^(\d{1,20})?$",  # empty means unset
        description="Application id; unset, Discord tells the bot at login.",
    )


class WebSettings(BaseModel):
    model_config = {"extra": "forbid"}

    host: str = Field(default="127.0.0.1", description="Address the web endpoint listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port of the web endpoint.")
    enabled: bool = Field(
        default=True, description="Serve the web pages: sign-up, manage, feeds, unsubscribe."
    )
    signup: Literal["open", "domains", "closed"] = Field(
        default="open",
        description="Who may sign up on the web: open (anyone), domains (addresses in "
        "SIGNUP_DOMAINS) or closed (manage pages still work).",
    )
    signup_domains: str = Field(
        default="",
        description="Comma-separated mail domains allowed when SIGNUP=domains "
        "(e.g. uni.example.edu); a subdomain of one is allowed too.",
    )

    trust_forwarded_for: bool = Field(
        default=False,
        description="Rate limits count the client from X-Forwarded-For (its last entry) "
        "instead of the connecting peer; set only behind a reverse proxy that sets it.",
    )

    @field_validator("signup_domains")
    @classmethod
    def _check_domains(cls, value: str) -> str:
        for domain in _split_domains(value):
            if not _DOMAIN.match(domain):
                raise ValueError(f"{domain!r} is not a mail domain like uni.example.edu")
        return value

    @model_validator(mode="after")
    def _domains_given(self) -> WebSettings:
        if self.signup == "domains" and not self.domains:
            raise ValueError(
                "SIGNUP=domains needs the domains allowed in PAPERBELL_WEB__SIGNUP_DOMAINS, "
                "e.g. uni.example.edu"
            )
        return self

    @property
    def domains(self) -> tuple[str, ...]:
        return _split_domains(self.signup_domains)


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _split_domains(text: str) -> tuple[str, ...]:
    """``uni.example.edu,lab.example.org``; a JSON list of them is read too."""
    parts: list[object] = list(text.split(","))
    if text.strip().startswith("["):
        try:
            loaded = json.loads(text)
        except ValueError:
            loaded = None
        parts = loaded if isinstance(loaded, list) else parts
    return tuple(str(d).strip().lower().lstrip("@") for d in parts if str(d).strip())


class Settings(BaseSettings):
    """Every setting paperbell reads. Field docs feed ``.env.example`` and the README."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Field(
        default=Path("./data"), description="Directory for the database (paperbell.db)."
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:password@host:port/dbname to keep everything in "
        "PostgreSQL (several processes may share it); unset: SQLite in DATA_DIR.",
    )
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SourceConfig(kind=SourceKind.HF_DAILY)],
        description="JSON list of sources, each {kind, url, ...}; kind is hf_daily, "
        "arxiv_rss, arxiv_api (needs query) or feed.",
        json_schema_extra={"example": '[{"kind":"hf_daily"}]'},
    )
    http: HttpSettings = Field(default_factory=HttpSettings, description="HTTP client.")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="SMTP.")
    email: EmailSettings = Field(default_factory=EmailSettings, description="Email.")
    web: WebSettings = Field(default_factory=WebSettings, description="Web endpoint.")
    public_url: str = Field(
        default="http://localhost:8080",
        description="Base URL of the web endpoint for links in mail; must be https:// "
        "unless the web endpoint or this URL is on loopback.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs confirm/unsubscribe links (32 bytes or more); generated into "
        "DATA_DIR when unset.",
    )
    shutdown_grace: float = Field(
        default=20.0, ge=0, le=600, description="Seconds to finish work in flight on SIGTERM."
    )
    dispatch_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="How often the outbox is sent (seconds)."
    )
    digest_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="How often due digests are looked for."
    )
    delivery_lease: float = Field(
        default=300.0,
        ge=5,
        le=3600,
        description="Seconds a process holds the outbox rows it claimed; if it dies, another "
        "sends them once this has passed.",
    )
    leader_lease: float = Field(
        default=30.0,
        ge=3,
        le=600,
        description="With PostgreSQL: seconds one process leads (polls, matches, digests) "
        "before another may take over if it stops renewing; renewed every third of it.",
    )
    alert_max_age_days: int = Field(
        default=3,
        ge=0,
        le=3650,
        description="Papers published longer ago than this when first seen are stored, "
        "never alerted (a new feed's backlog).",
    )
    follow_upvotes: int = Field(
        default=50,
        ge=0,
        le=1_000_000,
        description="A followed paper whose Hugging Face upvotes reach this count gets one "
        "note to its followers; 0 turns the note off.",
    )
    max_subscriptions: int = Field(
        default=50, ge=1, le=10_000, description="Subscriptions per user or channel."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe log level written to stderr."
    )
    log_format: Literal["plain", "json"] = Field(
        default="plain", description="Log lines as plain text or one JSON object each."
    )
    discord: DiscordSettings = Field(default_factory=DiscordSettings, description="Discord.")

    @model_validator(mode="after")
    def _check_sources(self) -> Settings:
        if not self.sources:
            raise ValueError("sources: give at least one source")
        seen: set[str] = set()
        for src in self.sources:
            if src.source_id in seen:
                raise ValueError(f"sources: {src.source_id} is listed twice")
            seen.add(src.source_id)
        return self

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        size = len(value.get_secret_value().encode()) if value is not None else 0
        if 0 < size < MIN_SECRET_BYTES:
            raise ValueError(
                f"{size} bytes is too short to sign links; use {MIN_SECRET_BYTES} or more, "
                "e.g. the output of: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("postgresql", "postgres"):
            # Never the URL itself: it may hold the password.
            raise ValueError(
                "must start with postgresql:// (e.g. postgresql://paperbell:PASSWORD@db/paperbell)"
                "; unset it to keep using SQLite in DATA_DIR"
            )
        try:
            parts.port  # noqa: B018 - parsing it is the check
        except ValueError as exc:
            raise ValueError(f"{exc} (the number after the host's ':')") from None
        return value

    @model_validator(mode="after")
    def _check_public_url(self) -> Settings:
        parts = urlsplit(self.public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"public_url: {self.public_url!r} needs a scheme and a host, "
                "like https://papers.example.org"
            )
        # Plain http is harmless only where nobody else can listen: the links carry tokens.
        if parts.scheme == "http" and not (_loopback(self.web.host) or _loopback(parts.hostname)):
            raise ValueError(
                f"public_url: {self.public_url!r} is plain http while the web endpoint "
                f"listens on {self.web.host}; use an https:// URL (a TLS reverse proxy) "
                "or bind PAPERBELL_WEB__HOST to 127.0.0.1"
            )
        return self

    @property
    def database_path(self) -> Path:
        return self.data_dir / "paperbell.db"


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is this machine: links to it open nowhere else."""
    return _loopback(urlsplit(url).hostname or "")


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; raise ``ConfigError`` with one clear line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except ValueError as exc:  # pydantic-settings raises this for undecodable JSON
        match = re.search(r'field "(\w+)"', str(exc))
        name = ENV_PREFIX + (match.group(1).upper() if match else "?")
        raise ConfigError(f"{name}: not valid JSON ({exc.__cause__ or exc})") from None


def _describe(exc: ValidationError) -> str:
    """The first problem as ``PAPERBELL_SOURCES[1].kind: ...`` or ``PAPERBELL_HTTP__TIMEOUT``."""
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]]
    name, in_list = ENV_PREFIX + (loc[0].upper() if loc else ""), False
    for part in loc[1:]:
        if part.isdigit():
            name, in_list = f"{name}[{part}]", True
        else:
            name += f".{part}" if in_list else f"__{part.upper()}"
    msg = first["msg"].removeprefix("Value error, ")
    if not loc and ":" in msg:  # model-level check: "sources: ..." names the setting itself
        field_name, _, msg = msg.partition(": ")
        name = ENV_PREFIX + field_name.upper()
    more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
    return f"{name}: {msg}{more}"
