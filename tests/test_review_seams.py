"""Seams between processes and parts: what one part changes, the other must see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.accounts import addresses as accounts
from bot.daemon.resources import build_service
from bot.delivery.planning import plan_matches
from bot.matching.step import match_cycle
from bot.models import DeliveryMode, Links, Paper, Sighting, SourceState
from bot.service import Paperbell
from bot.settings import load_settings
from bot.store.protocols import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DM = frozenset({DeliveryMode.DISCORD})
DIGEST = frozenset({DeliveryMode.EMAIL_DIGEST})


def paper(key: str, title: str) -> Paper:
    return Paper(
        key=key,
        title=title,
        abstract="",
        published=NOW - timedelta(days=1),
        sources=("arxiv",),
        categories=("cs.LG",),
        links=Links(abs=f"https://arxiv.org/abs/{key}"),
    )


async def a_service(store: Store, tmp_path: Path) -> Paperbell:
    return await build_service(load_settings(data_dir=tmp_path), store, clock=lambda: NOW)


async def test_daemon_matches_a_subscription_added_by_another_process(
    store: Store, tmp_path: Path
) -> None:
    daemon = await a_service(store, tmp_path)  # `paperbell run`, started first
    cli = await a_service(store, tmp_path)  # `paperbell subscribe` while it runs
    ada = await cli.user_for_discord("111")
    await cli.subscribe(ada.owner, "diffusion", DM)
    await store.ingest([Sighting(paper("2611.00001", "Diffusion models"))], SourceState("t"), NOW)
    assert (await match_cycle(daemon.index, store, NOW, plan_matches)).matched == 1


async def test_index_forgets_a_subscription_removed_by_an_unsubscribe_link(
    store: Store, tmp_path: Path
) -> None:
    service = await a_service(store, tmp_path)
    ada = await service.user_for_discord("111")
    done = await service.subscribe(ada.owner, "diffusion", DIGEST)
    ada = await store.set_email(ada.id, "ada@example.org", NOW)
    token = service.signer.sign(
        accounts.UNSUBSCRIBE, {"email": "ada@example.org", "sub": done.subscription.id}
    )
    await service.unsubscribe_link(token)
    assert await store.get_subscription(done.subscription.id) is None
    await match_cycle(service.index, store, NOW, plan_matches)
    assert service.index.get(done.subscription.id) is None
    assert len(service.index) == 0


async def test_subscriptions_marker_changes_on_every_add_and_remove(
    store: Store, tmp_path: Path
) -> None:
    service = await a_service(store, tmp_path)
    ada = await service.user_for_discord("111")
    seen = [await store.subscriptions_marker()]
    first = await service.subscribe(ada.owner, "diffusion", DM)
    seen.append(await store.subscriptions_marker())
    await service.unsubscribe(ada.owner, first.subscription.id)
    seen.append(await store.subscriptions_marker())
    await service.subscribe(ada.owner, "agents", DM)  # same count as after the first add
    seen.append(await store.subscriptions_marker())
    assert len(set(seen)) == len(seen)
