"""What ``subscribe`` says about the confirmation mail, and the operator's ``confirm`` and
``settings`` commands. Real SQLite, a real SMTP server in the test's loop."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import pytest

from bot.accounts.addresses import LinkBuilder
from bot.cli.accounts import send_confirmation
from bot.cli.main import main
from bot.daemon.resources import open_resources
from bot.settings import Settings, load_settings
from bot.sources.ingest import utc_now
from tests.smtp_server import SmtpTestServer

ADA = "ada@example.org"


def smtp_settings(tmp_path: Path, server: SmtpTestServer) -> Settings:
    return load_settings(data_dir=tmp_path / "data", smtp=server.settings())


def links_in(server: SmtpTestServer) -> list[str]:
    bodies = [r.data.decode().replace("=\r\n", "") for r in server.received]
    return [re.findall(r"/confirm/([\w.=-]+)", body)[0] for body in bodies]


# --- subscribe says what happened ------------------------------------------------------------


def test_second_subscription_while_pending_sends_nothing_new(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["subscribe", "--email", ADA, "llm"]) == 0
    first = capsys.readouterr().out
    assert f"a confirmation for {ADA} was written to data/outbox (no SMTP server is set)" in first
    assert main(["subscribe", "--email", ADA, "gan"]) == 0
    second = capsys.readouterr().out
    assert f"no new confirmation was sent: the one sent to {ADA} at " in second
    assert "is valid until" in second
    assert len(list(Path("data/outbox").glob("*.eml"))) == 1


async def test_smtp_down_says_queued_not_sent(
    tmp_path: Path,
) -> None:
    async with SmtpTestServer() as server:
        await server.close()  # now refuses connections
        settings = smtp_settings(tmp_path, server)
        async with open_resources(settings) as res:
            line = await send_confirmation(res, await res.service.account_for_email(ADA))
            assert line.startswith(f"a confirmation for {ADA} is queued but not sent yet (")
            assert line.endswith("the daemon (paperbell run) keeps trying")
            assert "was sent" not in line
            again = await send_confirmation(res, await res.service.account_for_email(ADA))
            assert again.startswith(f"the confirmation already pending for {ADA} is queued")


async def test_expired_confirmation_is_resent_with_a_new_link(tmp_path: Path) -> None:
    async with SmtpTestServer() as server:
        settings = smtp_settings(tmp_path, server)
        now = utc_now()
        async with open_resources(settings, clock=lambda: now - timedelta(hours=25)) as res:
            old = await res.service.account_for_email(ADA)  # never sent: the daemon was off
        async with open_resources(settings) as res:
            request = await res.service.account_for_email(ADA)
            line = await send_confirmation(res, request)
        assert line.startswith(
            f"a new confirmation (the last one expired) was sent to {ADA}; "
            "nothing else is sent until it is confirmed"
        )
        assert "opens only on this machine" in line  # the default public URL is localhost
        [token] = links_in(server)
        assert old.delivery is not None and request.delivery is not None
        assert old.delivery.key != request.delivery.key and token


async def test_refused_confirmations_are_resent_up_to_the_cap(tmp_path: Path) -> None:
    async with SmtpTestServer() as server:
        server.faults.rcpt = {"*": "550 5.1.1 No such user"}
        async with open_resources(smtp_settings(tmp_path, server)) as res:
            first = await send_confirmation(res, await res.service.account_for_email(ADA))
            assert first.startswith(f"a confirmation to {ADA} was not sent: ")
            assert "550" in first
            for _ in range(2):
                line = await send_confirmation(res, await res.service.account_for_email(ADA))
                assert line.startswith("a new confirmation (the last one was not delivered: ")
            capped = await send_confirmation(res, await res.service.account_for_email(ADA))
        assert capped.startswith(
            f"no confirmation was sent to {ADA}: 3 confirmation mails went to this address"
        )
        assert server.connections >= 3 and not server.received


# --- confirm and settings ----------------------------------------------------------------------


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_operator_confirms_an_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribe", "--email", ADA, "llm"]) == 0
    capsys.readouterr()
    assert main(["confirm", "--email", "ada@EXAMPLE.org"]) == 0
    assert capsys.readouterr().out == f"{ADA} is confirmed; paperbell now sends it its mail\n"
    assert main(["confirm", "--email", ADA]) == 0
    assert capsys.readouterr().out == f"{ADA} was confirmed already; nothing changed\n"
    assert main(["subscribe", "--email", ADA, "gan"]) == 0
    assert "confirmation" not in capsys.readouterr().out  # confirmed: nothing to send
    assert len(list(Path("data/outbox").glob("*.eml"))) == 1


def test_confirm_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["confirm", "--email", "bob@example.org"]) == 1
    err = one_line(capsys.readouterr().err)
    assert "no account has the address bob@example.org; add it with paperbell subscribe" in err
    assert main(["confirm", "--email", "not-an-address"]) == 2
    assert "--email: 'not-an-address' is not an email address" in one_line(capsys.readouterr().err)


def test_settings_show_and_change(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribe", "--email", ADA, "llm"]) == 0
    capsys.readouterr()
    assert main(["settings", "--email", ADA]) == 0
    assert capsys.readouterr().out == (
        f"{ADA} (not confirmed yet): timezone UTC, digest daily at 08:00 local time, alerts on\n"
    )
    change = ["--timezone", "Europe/Berlin", "--hour", "7", "--frequency", "weekly"]
    assert main(["settings", "--email", ADA, *change, "--weekday", "fri"]) == 0
    assert capsys.readouterr().out == (
        f"settings saved: {ADA} (not confirmed yet): timezone Europe/Berlin, "
        "digest weekly on Fridays at 07:00 local time, alerts on\n"
    )
    assert main(["settings", "--email", ADA]) == 0
    assert "timezone Europe/Berlin, digest weekly on Fridays at 07:00" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--timezone", "Mars/Olympus", "--timezone: 'Mars/Olympus' is not a time zone I know; try"),
        ("--hour", "24", "--hour: '24' is not an hour; give a whole number 0-23"),
        ("--hour", "eight", "--hour: 'eight' is not an hour"),
        ("--frequency", "hourly", "--frequency: 'hourly' is not a frequency; use one of daily,"),
        ("--weekday", "someday", "--weekday: 'someday' is not a day; use a name like monday"),
    ],
)
def test_settings_bad_values_are_usage_errors(
    capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    assert main(["settings", "--email", ADA, option, value]) == 2
    assert message in one_line(capsys.readouterr().err)
    assert not Path("data").exists()  # refused before anything was opened


def test_settings_unknown_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribe", "--email", ADA, "llm"]) == 0
    capsys.readouterr()
    assert main(["settings", "--email", "bob@example.org", "--hour", "9"]) == 1
    assert "no account has the address bob@example.org" in one_line(capsys.readouterr().err)


async def unsubscribe_everything(address: str) -> None:
    """What the one-click link in a mail does."""
    async with open_resources(load_settings()) as res:
        links = LinkBuilder.from_settings(res.settings, res.service.signer)
        token = (links.message_links(address).unsubscribe_all or "").rpartition("/")[2]
        await res.service.unsubscribe_link(token)


def test_operator_confirm_never_overrides_an_unsubscribe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["subscribe", "--email", ADA, "llm"]) == 0
    assert main(["confirm", "--email", ADA]) == 0
    asyncio.run(unsubscribe_everything(ADA))
    capsys.readouterr()
    assert main(["confirm", "--email", ADA]) == 0
    assert capsys.readouterr().out == (
        f"{ADA} is confirmed, but paperbell sends it nothing (you unsubscribed); "
        f"paperbell subscribe --email {ADA} QUERY mails its owner a new confirmation\n"
    )
    assert main(["subscribe", "--email", ADA, "gan"]) == 0
    out = capsys.readouterr().out
    assert "a new confirmation (mail to it was stopped: you unsubscribed) for" in out
