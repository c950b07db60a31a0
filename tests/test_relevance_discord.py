"""Learned relevance on Discord: /recommend, end to end on the loopback fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.models import DeliveryMode
from bot.store.protocols import Rating
from tests.discord_fake import CommandUnavailableError
from tests.discord_fake_interactions import InteractionHandle
from tests.discord_fake_models import ALICE, CAROL, JSON, FakeUser
from tests.support_discord import World, discord_world, dm_recipient, embed_titles
from tests.support_email import alert_message, corpus
from tests.test_discord_commands import EPHEMERAL, run


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with discord_world(tmp_path) as made:
        yield made


async def test_recommend_without_ratings_says_what_to_do(world: World) -> None:
    reply = await run(world, "recommend")
    assert reply.ephemeral and "nothing to learn from yet" in reply.content.lower()
    assert not reply.embeds


async def test_recommend_ranks_by_the_callers_ratings_only(world: World) -> None:
    hits = (await world.service.test_query("language models", days=30)).keys
    carol = await world.user(CAROL)
    await world.service.rate(carol.id, like=list(hits[:3]))
    reply = await run(world, "recommend", {"limit": 4})
    assert reply.content.startswith("Recommended for you from the last 7 days")
    expected = await world.service.recommend(carol.id, limit=4)
    assert embed_titles(reply.embeds) == [r.paper.title for r in expected]
    why = [f["value"] for e in reply.embeds for f in e.get("fields", []) if f["name"] == "Why"]
    assert len(why) == 4
    assert not set(hits[:3]) & {r.paper.key for r in expected}  # rated ones left out
    alice = await world.user(ALICE)
    assert await world.store.list_feedback(alice.id) == []
    other = await run(world, "recommend", user=ALICE)  # Carol's 👍 teach Alice nothing
    assert "nothing to learn from yet" in other.content.lower()
    await world.store.rate(alice.id, {hits[5]: Rating.DISLIKE}, world.service.clock())
    assert embed_titles((await run(world, "recommend", {"limit": 4})).embeds) == [
        r.paper.title for r in expected
    ]


async def _alert_for(world: World, user: FakeUser, count: int = 4) -> JSON:
    """A rated alert of the first ``count`` stored papers, sent to ``user``'s DM; its
    message as Discord holds it."""
    papers = corpus()[:count]
    owner = await world.user(user)
    to = dm_recipient(user, owner_id=owner.id)
    message = replace(alert_message(papers, to=to), rate=True)
    await world.client.notifier().send_alerts(message)
    [posted] = world.fake.dm_messages(user.id)
    return posted.message


def _menu(message: JSON, custom_id: str) -> JSON:
    found = [c for row in message["components"] for c in row["components"]]
    [menu] = [c for c in found if c.get("custom_id") == custom_id]
    return menu


async def _reply(handle: InteractionHandle) -> str:
    callback = await handle.response()
    message = await handle.edited_original() if callback.type == 5 else callback.data
    assert int(message.get("flags") or 0) & EPHEMERAL  # only the clicker sees it
    return str(message.get("content") or "")


async def test_alert_menus_rate_for_the_clicker(world: World) -> None:
    message = await _alert_for(world, CAROL)
    like = _menu(message, "paperbell:like")
    values = [o["value"] for o in like["options"]]
    assert len(values) == 4 and like["max_values"] == 4
    buttons = [c for row in message["components"] for c in row["components"] if c["type"] == 2]
    assert [b["label"] for b in buttons] == ["#1 PDF", "#2 PDF", "#3 PDF", "#4 PDF"]
    text = await _reply(await world.fake.click(message, "paperbell:like", values[:2], user=CAROL))
    assert text.startswith("👍 Noted for")
    carol = await world.user(CAROL)
    rated = {f.paper_key: (f.rating, f.sub_id) for f in await world.store.list_feedback(carol.id)}
    keys = [p.key for p in corpus()[:4]]
    assert rated == {keys[0]: (Rating.LIKE, 1), keys[1]: (Rating.LIKE, 1)}
    text = await _reply(
        await world.fake.click(message, "paperbell:dislike", values[2:], user=CAROL)
    )
    assert text.startswith("👎 Noted")
    assert len(await world.store.list_feedback(carol.id)) == 4
    alice = await world.user(ALICE)
    assert await world.store.list_feedback(alice.id) == []  # nobody else's ratings moved


async def test_more_like_this_subscribes_in_one_click(world: World) -> None:
    message = await _alert_for(world, CAROL)
    first = _menu(message, "paperbell:more")["options"][0]["value"]
    key = first.split("|")[0]
    text = await _reply(await world.fake.click(message, "paperbell:more", [first], user=CAROL))
    assert text.startswith("🔔 Subscribed") and key in text
    carol = await world.user(CAROL)
    [sub] = [v.subscription for v in await world.service.subscriptions(carol.owner)]
    assert sub.normalized == f"like:{key}" and sub.deliver == {DeliveryMode.DISCORD}
    again = await _reply(await world.fake.click(message, "paperbell:more", [first], user=CAROL))
    assert "already" in again.lower()  # the same subscription twice is refused clearly


async def test_forged_clicks_are_refused_by_discord(world: World) -> None:
    message = await _alert_for(world, CAROL)
    with pytest.raises(CommandUnavailableError):
        await world.fake.click(message, "paperbell:like", ["2499.99999|1"], user=CAROL)
    with pytest.raises(CommandUnavailableError):
        await world.fake.click(message, "paperbell:nope", [], user=CAROL)


def _buttons(message: JSON) -> dict[str, str]:
    """Label → custom id of the message's rating buttons (its link buttons have no id)."""
    found = [c for row in message["components"] for c in row["components"]]
    return {c["label"]: c["custom_id"] for c in found if c["type"] == 2 and "custom_id" in c}


async def test_a_one_paper_alert_has_buttons_that_rate_it(world: World) -> None:
    message = await _alert_for(world, CAROL, count=1)
    buttons = _buttons(message)
    assert list(buttons) == ["Like", "Not for me", "More like this", "Follow"]
    text = await _reply(await world.fake.click(message, buttons["Like"], user=CAROL))
    assert text.startswith("👍 Noted for")
    carol = await world.user(CAROL)
    key = corpus()[0].key
    assert [(f.paper_key, f.rating) for f in await world.store.list_feedback(carol.id)] == [
        (key, Rating.LIKE)
    ]
    text = await _reply(await world.fake.click(message, buttons["Not for me"], user=CAROL))
    assert text.startswith("👎 Noted")  # the latest rating wins
    [feedback] = await world.store.list_feedback(carol.id)
    assert feedback.rating is Rating.DISLIKE and feedback.sub_id == 1


async def test_three_papers_get_a_row_of_buttons_each(world: World) -> None:
    message = await _alert_for(world, CAROL, count=3)
    buttons = _buttons(message)
    assert len(buttons) == 12 and "#2 Not for me" in buttons and "#3 More like this" in buttons
    assert not [c for row in message["components"] for c in row["components"] if c["type"] == 3]
    await _reply(await world.fake.click(message, buttons["#2 Not for me"], user=CAROL))
    text = await _reply(await world.fake.click(message, buttons["#3 More like this"], user=CAROL))
    key = corpus()[2].key
    assert text.startswith("🔔 Subscribed") and key in text
    carol = await world.user(CAROL)
    rated = {f.paper_key: f.rating for f in await world.store.list_feedback(carol.id)}
    assert rated == {corpus()[1].key: Rating.DISLIKE}
    [sub] = [v.subscription for v in await world.service.subscriptions(carol.owner)]
    assert sub.normalized == f"like:{key}"
