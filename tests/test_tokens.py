"""Signed tokens: round trip, tampering, purpose binding, expiry, key persistence."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.accounts.tokens import Signer, expiry, load_secret_key
from bot.errors import InvalidTokenError
from bot.settings import load_settings

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SIGNER = Signer(b"k" * 32)


def test_round_trip_and_expiry() -> None:
    token = SIGNER.sign("unsubscribe", {"email": "a@example.org"}, expiry(NOW))
    assert SIGNER.verify("unsubscribe", token, NOW)["email"] == "a@example.org"
    with pytest.raises(InvalidTokenError, match="expired"):
        SIGNER.verify("unsubscribe", token, NOW + timedelta(hours=24, seconds=1))


def test_purpose_is_signed() -> None:
    token = SIGNER.sign("unsubscribe", {"user": 1})
    with pytest.raises(InvalidTokenError, match="not valid"):
        SIGNER.verify("confirm", token, NOW)


def test_other_key_rejects() -> None:
    token = SIGNER.sign("confirm", {"user": 1})
    with pytest.raises(InvalidTokenError):
        Signer(b"other").verify("confirm", token, NOW)


@given(st.text(max_size=200))
def test_garbage_never_crashes(junk: str) -> None:
    with pytest.raises(InvalidTokenError):
        SIGNER.verify("confirm", junk, NOW)


def test_tampered_payload_rejected() -> None:
    token = SIGNER.sign("confirm", {"user": 1})
    body, mac = token.split(".")
    forged = SIGNER.sign("confirm", {"user": 2}).split(".")[0]
    with pytest.raises(InvalidTokenError):
        SIGNER.verify("confirm", f"{forged}.{mac}", NOW)
    assert body != forged


def test_codes_are_six_digits_and_bound_to_subject() -> None:
    code = SIGNER.code("email", "a@example.org", NOW)
    assert len(code) == 6 and code.isdigit()
    assert SIGNER.check_code("email", "a@example.org", NOW, f" {code} ")
    assert not SIGNER.check_code("email", "b@example.org", NOW, code)


def test_key_generated_once_with_private_mode(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    first = load_secret_key(settings)
    assert first == load_secret_key(settings)
    mode = (tmp_path / "data" / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_configured_key_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBELL_SECRET_KEY", "configured-" + "k" * 32)
    assert load_secret_key(load_settings(data_dir=tmp_path)) == b"configured-" + b"k" * 32
    assert not (tmp_path / "secret_key").exists()


def test_cached_unsubscribe_links_are_the_signed_ones() -> None:
    from bot.accounts.addresses import UNSUBSCRIBE, LinkBuilder

    links = LinkBuilder(SIGNER, "https://bell.example.org")
    first = links.stop_subscription_url("a@example.org", 7)
    assert links.stop_subscription_url("a@example.org", 7) is first  # cached
    token = first.rsplit("/", 1)[1]
    assert token == SIGNER.sign(UNSUBSCRIBE, {"email": "a@example.org", "sub": 7})
    assert SIGNER.verify(UNSUBSCRIBE, token, NOW) == {"email": "a@example.org", "sub": 7}
    everything = links.message_links("a@example.org").unsubscribe_all
    assert everything == links.message_links("a@example.org").unsubscribe_all
    assert everything is not None
    assert SIGNER.verify(UNSUBSCRIBE, everything.rsplit("/", 1)[1], NOW) == {
        "email": "a@example.org"
    }
    # Another key or site never gets a link cached for this one.
    other = LinkBuilder(Signer(b"o" * 32), "https://bell.example.org")
    assert other.stop_subscription_url("a@example.org", 7) != first
    moved = LinkBuilder(SIGNER, "https://other.example.org")
    assert moved.stop_subscription_url("a@example.org", 7).startswith("https://other.")
