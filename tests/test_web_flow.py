"""The whole self-service path over real HTTP and real SMTP (in-process aiosmtpd):
subscribe on the front page → the confirmation mail → confirm → the manage page → edit →
pause → unsubscribe; and the manage link in every mail (confirmation, alert, digest)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.daemon.resources import build_service
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.planning import plan_matches
from bot.matching.step import match_cycle
from bot.messages import Channel
from bot.service import Paperbell
from bot.settings import EmailSettings, load_settings
from bot.store.protocols import Store
from handlers.email.smtp import SmtpNotifier
from handlers.web import build_web_app, serve_web
from tests.smtp_server import SmtpTestServer
from tests.support_email import bodies
from tests.support_outbox import FrozenClock, add_papers_of, paper
from tests.support_web import get_text, links_in, post_form

NOW = FrozenClock().now


@pytest.fixture
async def world(
    tmp_path: Path, store: Store
) -> AsyncIterator[tuple[str, aiohttp.ClientSession, Paperbell, SmtpTestServer, FrozenClock]]:
    clock = FrozenClock(NOW)
    service = await build_service(load_settings(data_dir=tmp_path), store, clock)
    await add_papers_of(store, [paper("2611.00001", title="Diffusion for robots")], now=NOW)
    async with (
        SmtpTestServer() as smtp,
        serve_web(build_web_app(service), "127.0.0.1", 0) as (host, port),
        aiohttp.ClientSession() as http,
    ):
        yield f"http://{host}:{port}", http, service, smtp, clock


async def send_mail(service: Paperbell, smtp: SmtpTestServer, clock: FrozenClock) -> list[str]:
    """Run the dispatcher once over real SMTP; the text bodies of what arrived."""
    before = len(smtp.received)
    notifier = SmtpNotifier(smtp.settings(), EmailSettings())
    try:
        dispatcher = Dispatcher(
            service.store, {Channel.EMAIL: notifier}, service.links, clock, random.Random(1)
        )
        await dispatcher.run_once()
    finally:
        await notifier.close()
    return [bodies(r.message)[0] for r in smtp.received[before:]]


async def test_subscribe_confirm_manage_edit_pause_unsubscribe(
    world: tuple[str, aiohttp.ClientSession, Paperbell, SmtpTestServer, FrozenClock],
) -> None:
    base, http, service, smtp, clock = world
    form = {"email": "ada@example.org", "query": "diffusion", "deliver": "instant"}
    assert (await post_form(http, base, "/", "/subscribe", form)).status == 200
    [mail] = await send_mail(service, smtp, clock)
    [confirm] = links_in(mail, "confirm")
    assert links_in(mail, "manage"), "the confirmation carries the manage link"

    status, page = await get_text(http, base + confirm)
    assert status == 200 and "Confirm" in page
    landed = await post_form(http, base, confirm, confirm)
    assert landed.status == 303
    manage = landed.headers["Location"].split("?")[0]
    status, page = await get_text(http, base + landed.headers["Location"])
    assert status == 200 and "Your address is confirmed" in page and "diffusion" in page

    [sub] = await service.store.list_subscriptions()
    edit = await post_form(
        http, base, manage, f"{manage}/edit", {"sub": str(sub.id), "query": "robots"}
    )
    assert edit.status == 303
    assert (
        await post_form(http, base, manage, f"{manage}/pause", {"sub": str(sub.id)})
    ).status == 303
    changed = await service.store.get_subscription(sub.id)
    assert changed is not None and changed.normalized == "robots" and changed.paused

    # Paused: a new paper about robots matches nothing.
    await add_papers_of(service.store, [paper("2611.00002", title="Robots at work")], now=NOW)
    await match_cycle(service.index, service.store, NOW, plan_matches)
    assert await service.store.recent_matches(changed.owner, 10) == []
    assert (
        await post_form(http, base, manage, f"{manage}/resume", {"sub": str(sub.id)})
    ).status == 303

    bye = await post_form(http, base, manage, f"{manage}/unsubscribe-all")
    assert bye.status == 303
    user = await service.store.find_user(email="ada@example.org")
    assert user is not None and user.email_suppressed
    assert await service.store.list_subscriptions(user.owner) == []
    status, page = await get_text(http, base + bye.headers["Location"])
    assert status == 200 and "unsubscribed from everything" in page


async def test_alerts_and_digests_carry_a_working_manage_link(
    world: tuple[str, aiohttp.ClientSession, Paperbell, SmtpTestServer, FrozenClock],
) -> None:
    base, http, service, smtp, clock = world
    for deliver, address in (("instant", "ada@example.org"), ("digest", "bob@example.org")):
        form = {"email": address, "query": "diffusion", "deliver": deliver, "hour": "10"}
        assert (await post_form(http, base, "/", "/subscribe", form)).status == 200
    for mail in await send_mail(service, smtp, clock):
        [confirm] = links_in(mail, "confirm")
        assert (await post_form(http, base, confirm, confirm)).status == 303
    await match_cycle(service.index, service.store, NOW, plan_matches)
    clock.advance(timedelta(days=1))
    assert await service.digests.tick(clock())  # Bob's digest hour has come
    mails = await send_mail(service, smtp, clock)
    assert len(mails) == 2 and all("Manage your subscriptions: " in m for m in mails)
    for mail in mails:
        [manage] = links_in(mail, "manage")
        status, page = await get_text(http, base + manage)
        assert status == 200 and "Your paperbell page" in page
