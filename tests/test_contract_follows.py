"""What every store must do with followed papers and their changes.

The ``FollowStore`` role, written against the protocol only; runs over every implementation
(the ``store`` fixture in tests/conftest.py).
"""

from __future__ import annotations

from bot.messages import Channel
from bot.models import AlertRule, AnnounceType, Links, Owner, SourceState
from bot.store.protocols import ChangeKind, Store
from tests.support_papers import LATER, NOW, arxiv_paper, hf_paper, ingest, sightings

ALICE = Owner.user(1)
ROOM = Owner.channel("42")


async def _update(store: Store, *papers: object, threshold: int = 0) -> None:
    found = sightings(*papers, announce=AnnounceType.REPLACE)  # type: ignore[arg-type]
    await store.ingest(found, SourceState("src"), LATER, AlertRule(follow_upvotes=threshold))


class TestFollowContract:
    async def test_follow_unfollow_and_list(self, store: Store) -> None:
        assert await store.follow(ALICE, "2403.00001", Channel.EMAIL, NOW)
        assert not await store.follow(ALICE, "2403.00001", Channel.DISCORD, LATER)
        assert await store.follow(ALICE, "2403.00002", Channel.EMAIL, LATER)
        follows = await store.list_follows(ALICE)
        assert [f.paper_key for f in follows] == ["2403.00002", "2403.00001"]
        assert follows[1].channel is Channel.DISCORD and follows[1].created_at == NOW
        assert await store.list_follows(ROOM) == []
        assert await store.unfollow(ALICE, "2403.00001")
        assert not await store.unfollow(ALICE, "2403.00001")
        assert [f.paper_key for f in await store.list_follows(ALICE)] == ["2403.00002"]

    async def test_new_version_of_a_followed_paper_is_recorded_with_before_and_after(
        self, store: Store
    ) -> None:
        await ingest(store, sightings(arxiv_paper("2403.00001"), arxiv_paper("2403.00002")))
        await store.follow(ALICE, "2403.00001", Channel.EMAIL, NOW)
        v2 = arxiv_paper("2403.00001", version=2, title="A better title")
        result = await store.ingest(
            sightings(v2, arxiv_paper("2403.00002", version=2), announce=AnnounceType.REPLACE),
            SourceState("src"),
            LATER,
        )
        assert result.new == ()  # a new version is never news
        log = await store.paper_change_log(["2403.00001", "2403.00002"])
        assert list(log) == ["2403.00001"]  # nobody follows the other: nothing kept
        (change,) = log["2403.00001"]
        assert change.kind is ChangeKind.VERSION and change.changed_at == LATER
        assert change.before["title"] == "Paper 2403.00001" and change.before["version"] == 1
        assert change.after["title"] == "A better title" and change.after["version"] == 2
        assert change.after["authors"] == ["Ada Lovelace"]

    async def test_code_and_upvote_threshold(self, store: Store) -> None:
        await ingest(store, sightings(hf_paper("2403.00001", upvotes=10)))
        await store.follow(ALICE, "2403.00001", Channel.EMAIL, NOW)
        await _update(store, hf_paper("2403.00001", upvotes=30), threshold=50)
        assert await store.paper_change_log(["2403.00001"]) == {}
        code = Links(hf="https://huggingface.co/papers/2403.00001", code="https://github.com/a/b")
        await _update(store, hf_paper("2403.00001", upvotes=60, links=code), threshold=50)
        await _update(store, hf_paper("2403.00001", upvotes=90, links=code), threshold=50)
        log = (await store.paper_change_log(["2403.00001"]))["2403.00001"]
        assert [c.kind for c in log] == [ChangeKind.CODE, ChangeKind.UPVOTES]
        assert log[0].after == {"code": "https://github.com/a/b"}
        assert log[1].before == {"upvotes": 30} and log[1].after == {"upvotes": 60}

    async def test_upvotes_off_at_zero(self, store: Store) -> None:
        await ingest(store, sightings(hf_paper("2403.00001", upvotes=10)))
        await store.follow(ALICE, "2403.00001", Channel.EMAIL, NOW)
        await _update(store, hf_paper("2403.00001", upvotes=500), threshold=0)
        assert await store.paper_change_log(["2403.00001"]) == {}

    async def test_notes_queued_once_per_follower_on_their_channel(self, store: Store) -> None:
        await ingest(store, sightings(arxiv_paper("2403.00001")))
        await store.follow(ALICE, "2403.00001", Channel.EMAIL, NOW)
        await store.follow(ROOM, "2403.00001", Channel.DISCORD, NOW)
        await _update(store, arxiv_paper("2403.00001", version=2))
        notes = await store.queue_follow_notes(LATER)
        assert {(n.owner, n.channel) for n in notes} == {
            (ALICE, Channel.EMAIL),
            (ROOM, Channel.DISCORD),
        }
        assert await store.queue_follow_notes(LATER) == []  # noted once
        rows = await store.list_deliveries(ALICE)
        assert len(rows) == 1 and rows[0].payload["purpose"] == "follow"
        assert rows[0].payload["change"] == notes[0].change.id

    async def test_change_of_an_unfollowed_paper_queues_nothing(self, store: Store) -> None:
        await ingest(store, sightings(arxiv_paper("2403.00001")))
        await store.follow(ALICE, "2403.00001", Channel.EMAIL, NOW)
        await _update(store, arxiv_paper("2403.00001", version=2))
        await store.unfollow(ALICE, "2403.00001")
        assert await store.queue_follow_notes(LATER) == []
        assert await store.queue_follow_notes(LATER) == []
        assert await store.list_deliveries(ALICE) == []

    async def test_arxiv_comment_and_journal_kept_and_in_the_version_change(
        self, store: Store
    ) -> None:
        first = arxiv_paper("2403.00001", arxiv_comment="9 pages")
        await ingest(store, sightings(first))
        stored = await store.get_paper("2403.00001")
        assert stored is not None and (stored.arxiv_comment, stored.journal_ref) == ("9 pages", "")
        await store.follow(ALICE, "2403.00001", Channel.EMAIL, NOW)
        second = arxiv_paper("2403.00001", version=2, arxiv_comment="12", journal_ref="J. 1")
        await _update(store, second)
        stored = await store.get_paper("2403.00001")
        assert stored is not None and (stored.arxiv_comment, stored.journal_ref) == ("12", "J. 1")
        (change,) = (await store.paper_change_log(["2403.00001"]))["2403.00001"]
        assert (change.before["comment"], change.before["journal_ref"]) == ("9 pages", "")
        assert (change.after["comment"], change.after["journal_ref"]) == ("12", "J. 1")
