"""A loopback fake of Discord (gateway websocket + REST) for the real discord.py client.

Usage::

    async with FakeDiscord() as fake:                      # SAMPLE_GUILD, bot, users
        client = QuickClient()                            # or any discord.Client
        tree = app_commands.CommandTree(client)
        ...                                               # add commands to the tree
        async with fake.connected(client):                # patched URLs, login, READY
            await tree.sync()
            handle = await fake.send_slash_command(
                "ping", {"word": "hi"}, user=CAROL, guild=SAMPLE_GUILD
            )
            assert (await handle.response()).content == "pong hi"

``connected`` points discord.py at the fake only while it is open (``Route.BASE`` and the
default gateway URL are class attributes, so one fake per process at a time). Scripting:
``fail_next``/``rate_limit_next`` inject errors; records: ``requests``, ``count``,
``messages``, ``commands``; waiting: ``wait_for`` and the handles' own waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import discord
from aiohttp import web

from tests import discord_fake_rest as rest
from tests import discord_fake_webhooks as webhooks
from tests.discord_fake_client import QuickClient, discord_pointed_at
from tests.discord_fake_gateway import INVALID_SESSION, RECONNECT, GatewayHub
from tests.discord_fake_interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    CommandUnavailableError,
    InteractionHandle,
    Invocation,
    OptionValue,
    build_component_interaction,
    build_interaction,
    default_channel,
)
from tests.discord_fake_models import BOT_USER, JSON, SAMPLE_GUILD, FakeGuild, FakeUser
from tests.discord_fake_state import (
    UNKNOWN_ROUTE,
    DiscordState,
    FakeTimeoutError,
    Fault,
    PostedMessage,
    RecordedRequest,
    parse_route_pattern,
)
from tests.discord_fake_wire import STATE

__all__ = [
    "CommandUnavailableError",
    "FakeDiscord",
    "FakeTimeoutError",
    "InteractionHandle",
    "QuickClient",
    "discord_pointed_at",
]


class FakeDiscord:
    def __init__(
        self,
        *,
        guilds: Sequence[FakeGuild] = (SAMPLE_GUILD,),
        users: Sequence[FakeUser] = (),  # users outside every guild (DM-only people)
        bot: FakeUser = BOT_USER,
        application_id: int | None = None,  # defaults to the bot's id, as for modern apps
        token: str = "fake-bot-token",
        heartbeat_interval: float = 0.5,
        allow_privileged_intents: bool = False,
        timeout: float = 5.0,  # default bound for every wait
    ) -> None:
        self.state = DiscordState(
            bot=bot,
            application_id=application_id or bot.id,
            guilds=tuple(guilds),
            users=tuple(users),
            token=token,
        )
        self.gateway = GatewayHub(
            self.state,
            heartbeat_interval=heartbeat_interval,
            allow_privileged_intents=allow_privileged_intents,
        )
        self.timeout = timeout
        self._runner: web.AppRunner | None = None
        self._base = ""

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[rest.middleware])
        app[STATE] = self.state
        app.router.add_get("/gateway", self.gateway.handle)
        rest.add_routes(app, rest.ROUTES + webhooks.ROUTES)
        rest.add_fallback(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._base = f"http://{host}:{port}"
        self.gateway.resume_url = self.gateway_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self.gateway.close_all()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be: ``http://127.0.0.1:PORT/api/v10``."""
        self._require_started()
        return self._base + rest.API_PREFIX

    @property
    def gateway_url(self) -> str:
        self._require_started()
        return self._base.replace("http://", "ws://") + "/gateway"

    @property
    def token(self) -> str:
        return self.state.token

    def _require_started(self) -> None:
        if not self._base:
            raise RuntimeError("FakeDiscord is not started: use 'async with FakeDiscord()'")

    # --- discord.py ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def connected(
        self, client: discord.Client, *, token: str | None = None
    ) -> AsyncIterator[discord.Client]:
        """Run ``client`` against the fake until it is ready; close it cleanly on exit.

        A failure to start (bad token → ``LoginFailure``, disallowed intents →
        ``PrivilegedIntentsRequired``) is raised here instead of hanging; a client that
        died while the block ran (say, a fatal gateway close) raises on exit.
        """
        with discord_pointed_at(self):
            async with client:
                runner = asyncio.create_task(client.start(token or self.token))
                try:
                    await self._until_ready(client, runner)
                    yield client
                finally:
                    await client.close()
                    ended = asyncio.gather(runner, return_exceptions=True)
                    [outcome] = await asyncio.wait_for(ended, self.timeout)
                if isinstance(outcome, Exception):
                    raise outcome

    async def _until_ready(self, client: discord.Client, runner: asyncio.Task[None]) -> None:
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait(
            {runner, ready}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
        )
        ready.cancel()
        if runner in done:
            runner.result()  # raises why the client stopped
            raise RuntimeError("discord.py client stopped before it was ready")
        if ready not in done:
            raise FakeTimeoutError(f"discord.py client not ready after {self.timeout}s")

    # --- records -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self.state.requests)

    @property
    def unknown_requests(self) -> list[RecordedRequest]:
        return [r for r in self.state.requests if r.route == UNKNOWN_ROUTE]

    def requests_to(self, pattern: str) -> list[RecordedRequest]:
        """Requests matching ``"[METHOD] /route/{template}"`` or a concrete path (``*`` ok)."""
        method, path = parse_route_pattern(pattern)
        probe = Fault(method, path, 0, None, {}, 0)
        return [r for r in self.state.requests if probe.matches(r.method, r.path, r.route)]

    def count(self, pattern: str) -> int:
        return len(self.requests_to(pattern))

    @property
    def messages(self) -> Mapping[int, list[PostedMessage]]:
        """Channel id → messages the bot posted there (guild channels and DMs)."""
        return self.state.messages

    def channel_messages(self, channel_id: int) -> list[PostedMessage]:
        return list(self.state.messages.get(channel_id, []))

    def dm_channel_id(self, user_id: int) -> int:
        """The user's DM channel id; stable, and the same one the bot gets when it opens it."""
        return self.state.dm_channel_id(user_id)

    def dm_messages(self, user_id: int) -> list[PostedMessage]:
        return self.channel_messages(self.dm_channel_id(user_id))

    @property
    def dm_channels(self) -> Mapping[int, int]:
        """User id → DM channel id, for each DM the bot opened (POST /users/@me/channels)."""
        return dict(self.state.opened_dms)

    def commands(self, guild_id: int | None = None) -> list[JSON]:
        """The synced commands of a scope (None = global) as the fake echoed them, with ids."""
        return list(self.state.commands.get(guild_id, []))

    def command_payload(self, guild_id: int | None = None) -> list[JSON] | None:
        """The body of the last bulk-overwrite PUT for a scope, exactly as sent."""
        return self.state.command_payloads.get(guild_id)

    # --- scripting -----------------------------------------------------------------------

    def fail_next(
        self,
        route_pattern: str,
        status: int,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with this status and body instead.

        ``route_pattern`` is ``"[METHOD] /path"``: a route template such as
        ``"POST /channels/{channel_id}/messages"`` or a concrete path, ``*`` wildcards allowed.
        Every answer still carries X-RateLimit-* headers; ``headers`` override them.
        """
        method, path = parse_route_pattern(route_pattern)
        body = json_body if json_body is not None else {"code": 0, "message": f"{status}: fake"}
        self.state.faults.append(Fault(method, path, status, body, dict(headers or {}), times))

    def rate_limit_next(
        self,
        route_pattern: str,
        retry_after: float = 0.01,
        *,
        is_global: bool = False,
        times: int = 1,
    ) -> None:
        """A 429 the way Discord sends it: ``retry_after`` in the body, ``Via`` and limit headers.

        discord.py sleeps ``retry_after`` and retries; without ``Via`` it would treat the 429
        as a Cloudflare ban and raise, so use ``fail_next(..., 429, ...)`` to test that path.
        """
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Scope": "global" if is_global else "user",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        self.fail_next(route_pattern, 429, {**body, "global": is_global}, headers, times)

    # --- gateway -------------------------------------------------------------------------

    async def dispatch(self, event: str, data: Any) -> None:
        """Send a gateway DISPATCH (op 0) with the next sequence number to the client."""
        await self.gateway.dispatch(event, data)

    async def wait_for_ready(self, sessions: int = 1) -> None:
        """Until READY and every GUILD_CREATE went out on ``sessions`` identifies."""
        what = f"{sessions} READY"
        await self.wait_for(lambda: self.gateway.ready_sent >= sessions, what=what)

    async def request_reconnect(self) -> None:
        """Send RECONNECT (op 7): the client drops the socket and RESUMEs on a new one."""
        await self.gateway.send_op(RECONNECT)

    async def invalidate_session(self) -> None:
        """Send INVALID_SESSION (op 9, not resumable): the client must IDENTIFY afresh."""
        await self.gateway.send_op(INVALID_SESSION, False)

    async def wait_for(
        self, predicate: Callable[[], bool], *, what: str = "a condition", within: float = 0
    ) -> None:
        """Until ``predicate()`` holds (re-checked after every request and gateway frame).

        Gives up after ``within`` seconds (default: the fake's ``timeout``) with a
        ``FakeTimeoutError`` naming ``what`` and listing the last requests.
        """
        await self.state.wait_for(predicate, within=within or self.timeout, what=what)

    # --- interactions --------------------------------------------------------------------

    async def send_slash_command(
        self,
        name: str,
        options: Mapping[str, OptionValue] | None = None,
        *,
        user: FakeUser | int,
        guild: FakeGuild | int | None,
        channel: int | None = None,
        subcommand: str | None = None,
        group: str | None = None,
        locale: str = "en-US",
        permissions: int | None = None,
        enforce_permissions: bool = True,
    ) -> InteractionHandle:
        """Dispatch INTERACTION_CREATE (type 2) for ``/name [group] [subcommand] options``.

        ``guild`` is required: ``None`` means the user's DM with the bot. ``channel``
        defaults to the guild's first text channel. ``permissions`` overrides the member's
        computed ones.
        Raises ``CommandUnavailableError`` where Discord would hide a synced command.
        """
        inv = self._invocation(
            name,
            options=options,
            user=user,
            guild=guild,
            channel=channel,
            subcommand=subcommand,
            group=group,
            locale=locale,
        )
        inv = dataclasses.replace(inv, permissions=permissions)
        return await self._send(inv, APPLICATION_COMMAND, enforce_permissions)

    async def send_autocomplete(
        self,
        name: str,
        options: Mapping[str, OptionValue],
        focused: str,
        *,
        user: FakeUser | int,
        guild: FakeGuild | int | None,
        channel: int | None = None,
        subcommand: str | None = None,
        group: str | None = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Dispatch an autocomplete interaction (type 4); ``await handle.choices()``."""
        if focused not in options:
            raise ValueError(f"focused option {focused!r} must be one of the options given")
        inv = self._invocation(
            name,
            options=options,
            user=user,
            guild=guild,
            channel=channel,
            subcommand=subcommand,
            group=group,
            locale=locale,
        )
        inv = dataclasses.replace(inv, focused=focused)
        return await self._send(inv, AUTOCOMPLETE, True)

    async def click(
        self,
        message: JSON,
        custom_id: str,
        values: Sequence[str] = (),
        *,
        user: FakeUser | int,
        guild: FakeGuild | int | None = None,
    ) -> InteractionHandle:
        """Dispatch INTERACTION_CREATE (type 3): ``user`` clicks a button or picks
        ``values`` in a select menu of ``message`` (a message the bot posted)."""
        channel = int(message["channel_id"])
        inv = self._invocation(
            "",
            options=None,
            user=user,
            guild=guild,
            channel=channel,
            subcommand=None,
            group=None,
            locale="en-US",
        )
        record, payload = build_component_interaction(
            self.state, inv, message, custom_id, list(values)
        )
        self.state.interactions[record.id] = record
        await self.dispatch("INTERACTION_CREATE", payload)
        return InteractionHandle(self.state, record, self.timeout)

    def _invocation(
        self,
        name: str,
        *,
        options: Mapping[str, OptionValue] | None,
        user: FakeUser | int,
        guild: FakeGuild | int | None,
        channel: int | None,
        subcommand: str | None,
        group: str | None,
        locale: str,
    ) -> Invocation:
        who = user if isinstance(user, FakeUser) else self.state.users.get(user)
        where = self.state.guilds.get(guild) if isinstance(guild, int) else guild
        if who is None or (guild is not None and where is None):
            raise ValueError(f"unknown user {user!r} or guild {guild!r}: script them first")
        channel_id = channel or default_channel(self.state, where, who)
        return Invocation(
            name, dict(options or {}), who, where, channel_id, subcommand, group, locale=locale
        )

    async def _send(self, inv: Invocation, kind: int, enforce: bool) -> InteractionHandle:
        record, payload = build_interaction(self.state, inv, kind=kind, enforce=enforce)
        self.state.interactions[record.id] = record
        await self.dispatch("INTERACTION_CREATE", payload)
        return InteractionHandle(self.state, record, self.timeout)
