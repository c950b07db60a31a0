"""The fake gateway: Discord's websocket, enough of it for discord.py's real client.

Protocol, as discord.py 2.7 drives it: connect to ``?v=10&encoding=json&compress=zlib-stream``;
the server sends HELLO (op 10); the client heartbeats (op 1, answered by op 11) and sends
IDENTIFY (op 2), answered by READY and one GUILD_CREATE per guild; later dispatches (op 0)
carry increasing sequence numbers. RECONNECT (op 7) makes the client RESUME (op 6) on
``resume_gateway_url``; the fake replays what it missed, then sends RESUMED. With
``compress=zlib-stream`` every server frame is one binary message from a single zlib stream
per connection, flushed with Z_SYNC_FLUSH, which is what the client's decompressor expects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.discord_fake_models import JSON, PRIVILEGED_INTENTS, Intent
from tests.discord_fake_state import DiscordState

_log = logging.getLogger(__name__)

HELLO, HEARTBEAT, IDENTIFY, PRESENCE, RESUME = 10, 1, 2, 3, 6
RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HEARTBEAT_ACK, DISPATCH = 7, 8, 9, 11, 0


class _Connection:
    def __init__(self, ws: web.WebSocketResponse, *, compress: bool) -> None:
        self.ws = ws
        # One compressor for the whole connection: the client keeps one inflater.
        self._zlib = zlib.compressobj() if compress else None
        self.compressed = compress
        self.frames_sent = 0
        self.session: _Session | None = None
        # Frames must reach the socket in the order their bytes entered the zlib stream.
        self._lock = asyncio.Lock()

    async def send(self, frame: JSON) -> None:
        raw = json.dumps(frame, separators=(",", ":"))
        async with self._lock:
            self.frames_sent += 1
            if self._zlib is None:
                await self.ws.send_str(raw)
                return
            data = self._zlib.compress(raw.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(data)

    async def close(self, code: int, reason: str) -> None:
        _log.info("fake gateway closes with %s: %s", code, reason)
        await self.ws.close(code=code, message=reason.encode())


@dataclass(slots=True)
class _Session:
    id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    sent: list[JSON] = field(default_factory=list)  # dispatches, for RESUME replays
    connection: _Connection | None = None

    async def dispatch(self, event: str, data: Any) -> None:
        self.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.sent.append(frame)
        if self.connection is not None:
            await self.connection.send(frame)


class GatewayHub:
    def __init__(
        self, state: DiscordState, *, heartbeat_interval: float, allow_privileged_intents: bool
    ) -> None:
        self.state = state
        self.heartbeat_interval = heartbeat_interval
        self.allow_privileged_intents = allow_privileged_intents
        self.resume_url = ""  # set once the server has a port
        self.sessions: dict[str, _Session] = {}
        self.connections: set[_Connection] = set()  # open now
        self.history: list[_Connection] = []  # every connection, in order
        self.connection_queries: list[dict[str, str]] = []  # ?v=&encoding=&compress=
        self.identify_payloads: list[JSON] = []
        self.heartbeats = 0
        self.resumes = 0
        self.ready_sent = 0
        self.close_codes: list[int] = []  # codes the fake closed connections with

    # --- the websocket handler -----------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.connection_queries.append(dict(request.query))
        conn = _Connection(ws, compress=request.query.get("compress") == "zlib-stream")
        self.connections.add(conn)
        self.history.append(conn)
        try:
            problem = _query_problem(request.query)
            if problem:
                await self._close(conn, 4012, problem)
                return ws
            interval_ms = int(self.heartbeat_interval * 1000)
            await conn.send({"op": HELLO, "d": {"heartbeat_interval": interval_ms}})
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_frame(conn, json.loads(message.data))
        finally:
            self.connections.discard(conn)
            if conn.session is not None and conn.session.connection is conn:
                conn.session.connection = None
        return ws

    async def _on_frame(self, conn: _Connection, frame: JSON) -> None:
        op, raw = frame.get("op"), frame.get("d")
        data: JSON = raw if isinstance(raw, dict) else {}
        if op == HEARTBEAT:
            self.heartbeats += 1
            await conn.send({"op": HEARTBEAT_ACK, "t": None, "s": None, "d": None})
        elif op == IDENTIFY:
            await self._identify(conn, data)
        elif op == RESUME:
            await self._resume(conn, data)
        elif op == REQUEST_MEMBERS:
            await self._request_members(conn, data)
        elif op != PRESENCE:
            await self._close(conn, 4001, f"Unknown opcode {op!r}.")
        await self.state.changed()

    async def _close(self, conn: _Connection, code: int, reason: str) -> None:
        self.close_codes.append(code)
        await conn.close(code, reason)

    async def _identify(self, conn: _Connection, data: JSON) -> None:
        self.identify_payloads.append(data)
        intents = data.get("intents")
        if data.get("token") != self.state.token:
            await self._close(conn, 4004, "Authentication failed.")
        elif conn.session is not None:
            await self._close(conn, 4005, "Already authenticated.")
        elif not isinstance(intents, int):
            await self._close(conn, 4013, "Invalid intent(s).")
        elif intents & PRIVILEGED_INTENTS and not self.allow_privileged_intents:
            await self._close(conn, 4014, "Disallowed intent(s).")
        else:
            session = _Session(secrets.token_hex(16), intents, data.get("shard"))
            self.sessions[session.id] = session
            session.connection = conn
            conn.session = session
            await self._send_ready(session)

    async def _send_ready(self, session: _Session) -> None:
        await session.dispatch("READY", self._ready_event(session))
        with_members = bool(session.intents & Intent.GUILD_MEMBERS)
        for guild in self.state.guilds.values():
            event = guild.create_event(self.state.bot, with_members=with_members)
            await session.dispatch("GUILD_CREATE", event)
        self.ready_sent += 1

    def _ready_event(self, session: _Session) -> JSON:
        user = {**self.state.bot.to_json(), "verified": True, "mfa_enabled": False, "flags": 0}
        ready: JSON = {
            "v": 10,
            "user": user,
            "guilds": [{"id": str(gid), "unavailable": True} for gid in self.state.guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_url,
            "application": {"id": str(self.state.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": [],
            "_trace": ['["fake-discord-gateway",{"micros":0}]'],
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        return ready

    async def _resume(self, conn: _Connection, data: JSON) -> None:
        session = self.sessions.get(str(data.get("session_id")))
        if data.get("token") != self.state.token:
            await self._close(conn, 4004, "Authentication failed.")
            return
        if session is None:
            await conn.send({"op": INVALID_SESSION, "t": None, "s": None, "d": False})
            return
        self.resumes += 1
        session.connection = conn
        conn.session = session
        seen = int(data.get("seq") or 0)
        for frame in session.sent:
            if frame["s"] > seen:
                await conn.send(frame)
        await session.dispatch("RESUMED", {"_trace": ["fake-discord-gateway"]})

    async def _request_members(self, conn: _Connection, data: JSON) -> None:
        guild = self.state.guilds.get(int(data["guild_id"]))
        if guild is None or conn.session is None:
            return
        wanted = {int(uid) for uid in data.get("user_ids") or ()}
        members = [m for m in guild.members if not wanted or m.user.id in wanted]
        chunk: JSON = {
            "guild_id": str(guild.id),
            "members": [member.to_json() for member in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await conn.session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    # --- what tests drive ----------------------------------------------------------------

    def live_sessions(self) -> list[_Session]:
        return [s for s in self.sessions.values() if s.connection is not None]

    async def dispatch(self, event: str, data: Any) -> None:
        sessions = self.live_sessions()
        if not sessions:
            raise RuntimeError(
                f"fake Discord: cannot dispatch {event}: no client is connected to the gateway"
            )
        for session in sessions:
            await session.dispatch(event, data)
        await self.state.changed()

    async def send_op(self, op: int, data: Any = None) -> None:
        """Send a non-dispatch opcode (RECONNECT, INVALID_SESSION) to every connection."""
        for conn in list(self.connections):
            await conn.send({"op": op, "t": None, "s": None, "d": data})

    async def close_all(self) -> None:
        for conn in list(self.connections):
            await conn.close(1001, "fake Discord is stopping")


def _query_problem(query: Any) -> str:
    if query.get("v") not in ("9", "10"):
        return f"Invalid API version {query.get('v')!r}: the fake speaks v10."
    if query.get("encoding", "json") != "json":
        return f"fake Discord only speaks encoding=json, not {query.get('encoding')!r}."
    if query.get("compress") not in (None, "zlib-stream"):
        return (
            f"fake Discord only supports compress=zlib-stream, not {query.get('compress')!r} "
            "(discord.py asks for zstd-stream when the zstandard package is installed)."
        )
    return ""
