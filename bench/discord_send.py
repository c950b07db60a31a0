"""Requests per alert delivered by Discord: 1,000 alerts to 100 users, over loopback.

    python bench/discord_send.py [--users 100] [--per-user 10] [--json]

Each user gets one ``AlertMessage`` of ``--per-user`` papers (real titles and abstracts from
tests/data/papers.jsonl) through ``DiscordNotifier`` and the real discord.py client,
against a loopback REST sink (bench/_discord_sink.py) that counts every request. Two rounds:

* cold: no DM channel remembered yet, so each user costs one ``POST /users/@me/channels``
  before their messages (the notifier reports the channel so the core stores it);
* warm: the same users again with ``Recipient.dm_channel_id`` filled in, as after the
  first alert — only the messages themselves.

Ten papers fit one message (10 embeds within 6,000 characters), so the warm figure is
about 0.1 request per alert and the cold one about 0.2. Target: <= 0.15 in the steady
(warm) state; the cold round is paid once per user, ever. Times are wall-clock over
loopback and say little about Discord itself, whose rate limits discord.py waits out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass

from _corpus import corpus
from _discord_sink import DiscordSink, logged_in_client
from _messages import alert_message
from bot.delivery.notifier import AlertMessage, Channel, Recipient, RecipientKind
from handlers.discord.notifier import DiscordNotifier

TARGET = 0.15
FIRST_USER_ID = 1_300_000_000_000_100_000


@dataclass(frozen=True)
class Round:
    name: str
    alerts: int
    requests: int
    dm_opens: int
    messages: int
    seconds: float

    @property
    def per_alert(self) -> float:
        return self.requests / self.alerts if self.alerts else 0.0


def messages_for(users: list[int], per_user: int, dm: dict[int, str]) -> list[AlertMessage]:
    papers = corpus()
    made = []
    for index, user in enumerate(users):
        start = (index * per_user) % (len(papers) - per_user)
        to = Recipient(
            kind=RecipientKind.USER,
            owner_id=index + 1,
            channel=Channel.DISCORD,
            address=str(user),
            dm_channel_id=dm.get(user),
        )
        made.append(alert_message(papers[start : start + per_user], key=f"bench:{index}", to=to))
    return made


async def run_round(
    name: str, sink: DiscordSink, notifier: DiscordNotifier, messages: list[AlertMessage]
) -> Round:
    before = len(sink.requests)
    started = time.perf_counter()
    for message in messages:
        await notifier.send_alerts(message)
    seconds = time.perf_counter() - started
    made = sink.requests[before:]
    return Round(
        name=name,
        alerts=sum(len(m.items) for m in messages),
        requests=len(made),
        dm_opens=sum(r.route == "/users/@me/channels" for r in made),
        messages=sum(r.route == "/channels/{channel_id}/messages" for r in made),
        seconds=seconds,
    )


async def bench(user_count: int, per_user: int) -> list[Round]:
    users = [FIRST_USER_ID + i for i in range(user_count)]
    async with DiscordSink() as sink, logged_in_client(sink) as client:
        remembered: dict[int, str] = {}

        async def remember(to: Recipient, channel_id: str) -> None:
            remembered[int(to.address)] = channel_id

        cold_notifier = DiscordNotifier(client, on_dm_channel=remember)
        cold = await run_round("cold", sink, cold_notifier, messages_for(users, per_user, {}))
        warm_notifier = DiscordNotifier(client)  # a fresh process: only the stored ids
        warm = await run_round(
            "warm", sink, warm_notifier, messages_for(users, per_user, remembered)
        )
    return [cold, warm]


def table(rounds: list[Round]) -> str:
    lines = [f"{'round':<6} {'alerts':>7} {'requests':>9} {'DM opens':>9} {'messages':>9} "
             f"{'req/alert':>10} {'alerts/s':>9}"]  # fmt: skip
    for r in rounds:
        rate = r.alerts / r.seconds if r.seconds else float("inf")
        lines.append(
            f"{r.name:<6} {r.alerts:>7} {r.requests:>9} {r.dm_opens:>9} {r.messages:>9} "
            f"{r.per_alert:>10.3f} {rate:>9.0f}"
        )
    warm = rounds[-1].per_alert
    verdict = "meets" if warm <= TARGET else "MISSES"
    lines.append(f"steady state (warm): {warm:.3f} requests/alert — {verdict} target <= {TARGET}")
    return "\n".join(lines)


def as_json(rounds: list[Round], args: argparse.Namespace) -> str:
    data = {
        "users": args.users,
        "per_user": args.per_user,
        "target_requests_per_alert": TARGET,
        "meets_target": rounds[-1].per_alert <= TARGET,
        "rounds": [asdict(r) | {"requests_per_alert": round(r.per_alert, 4)} for r in rounds],
    }
    return json.dumps(data, indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100, help="recipients (default 100)")
    parser.add_argument("--per-user", type=int, default=10, help="papers per user (default 10)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.users < 1 or not 1 <= args.per_user <= 100:
        parser.error("--users must be >= 1 and --per-user between 1 and 100")
    rounds = asyncio.run(bench(args.users, args.per_user))
    print(as_json(rounds, args) if args.json else table(rounds))
    return 0 if rounds[-1].per_alert <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
