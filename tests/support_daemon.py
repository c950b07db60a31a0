"""``paperbell`` as a child process, for the daemon tests.

* ``Child`` starts ``python -m bot ...`` with a clean ``PAPERBELL_*`` environment, its
  output in files (no pipe can fill up and block it) and a network guard installed first
  (``child_main``): every connection it tries is written to a log, and any outside
  127.0.0.0/8 or ::1 is refused, as ``tests/conftest.py`` does in-process.
* ``prepare_users`` fills the database before the daemon starts, the way a person would
  have: an address, confirmed through its link, and a subscription.
* ``GatedSmtpServer`` holds each message at DATA until the test lets it through, so a test
  knows exactly which message is in flight when it sends a signal.
* ``write_slot_zone`` makes a digest fall due at an instant the test picks: a user's slot
  is a whole local hour, so a zone whose UTC offset has the right minutes and seconds puts
  that hour exactly there. The daemon runs on the real clock; nothing is faked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import os
import runpy
import signal
import socket
import struct
import sys
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from xml.sax.saxutils import escape

from bot.accounts.addresses import LinkBuilder, confirm_email
from bot.daemon.resources import build_service
from bot.models import DeliveryMode, User
from bot.settings import Settings
from bot.store.sqlite.store import open_sqlite_store
from tests.smtp_server import SmtpTestServer, _FaultySMTP

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NETLOG = "PBTEST_NETLOG"  # where the child's network guard writes (not a setting)
BOOT = "from tests.support_daemon import child_main; child_main()"
_numbers = itertools.count(1)
WAIT = 20.0  # seconds: the bound of every wait for the child; it only ever fails a test


# --- the child's side ---------------------------------------------------------------------


def child_main() -> None:
    """Entry point of the child: guard the network, then run ``python -m bot`` as is."""
    _guard_network(Path(os.environ[NETLOG]))
    runpy.run_module("bot", run_name="__main__", alter_sys=True)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _guard_network(log: Path) -> None:
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def note(line: str) -> None:
        with log.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            ok = _loopback(str(address[0]))
            note(f"connect {address[0]} {address[1]}" + ("" if ok else " REFUSED"))
            if not ok:
                raise ConnectionRefusedError(f"tests must not reach the network: {address!r}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _loopback(str(host)):
            note(f"resolve {host} REFUSED")
            raise socket.gaierror(socket.EAI_NONAME, f"tests must not resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo


# --- the test's side ----------------------------------------------------------------------


def child_env(
    data_dir: Path, netlog: Path, zones: Path, settings: Mapping[str, str]
) -> dict[str, str]:
    """This process's environment without ``PAPERBELL_*``, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBELL_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    # Zones written by write_slot_zone first, then the system's.
    env["PYTHONTZPATH"] = os.pathsep.join(dict.fromkeys([str(zones), *zoneinfo.TZPATH]))
    env[NETLOG] = str(netlog)
    env["PAPERBELL_DATA_DIR"] = str(data_dir)
    return env | dict(settings)


async def eventually(check: Callable[[], bool], what: str, limit: float = WAIT) -> None:
    """Wait (bounded) until ``check()`` holds; the bound only turns a hang into a failure."""
    deadline = asyncio.get_running_loop().time() + limit
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


class Child:
    """One ``python -m bot ARGS`` child; ``async with`` kills it if it is still running."""

    def __init__(self, directory: Path, env: Mapping[str, str], *args: str) -> None:
        self.args, self.env = args, dict(env)
        name = f"{args[0]}-{next(_numbers)}"
        self.out, self.err = directory / f"{name}.out", directory / f"{name}.err"
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Self:
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", BOOT, *self.args,
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err, env=self.env,
            )  # fmt: skip
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        proc = self.proc
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    @property
    def proc(self) -> asyncio.subprocess.Process:
        assert self._proc is not None, "use 'async with'"
        return self._proc

    @property
    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    @property
    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    async def logged(self, text: str) -> None:
        """Wait until ``text`` appears on stderr; fail at once if the child exits first."""

        def seen() -> bool:
            if text in self.stderr:
                return True
            if self.proc.returncode is not None:
                raise AssertionError(f"paperbell exited ({self.proc.returncode}):\n{self.stderr}")
            return False

        await eventually(seen, f"{text!r} in the log")

    def send(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    async def exit_code(self, within: float) -> int:
        """The exit code; ``TimeoutError`` if the child is still running after ``within`` s."""
        return await asyncio.wait_for(self.proc.wait(), within)


async def run_paperbell(directory: Path, env: Mapping[str, str], *args: str) -> Child:
    """Run a short command to its end (bounded); read ``stdout``/``stderr`` afterwards."""
    async with Child(directory, env, *args) as child:
        await child.exit_code(within=60)
    return child


def netlog_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


# --- what the daemon reads ----------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    title: str
    abstract: str
    slug: str


def rss(items: Sequence[Item], published: datetime) -> bytes:
    """A small RSS 2.0 feed of ``items``, each published at ``published``."""
    entries = "".join(
        f"<item><title>{escape(item.title)}</title>"
        f"<link>https://papers.example.org/{item.slug}</link>"
        f'<guid isPermaLink="false">{item.slug}</guid>'
        f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
        f"<description>{escape(item.abstract)}</description></item>"
        for item in items
    )
    head = "<title>Test papers</title><link>https://papers.example.org/</link>"
    channel = f"<channel>{head}{entries}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


async def prepare_users(
    settings: Settings, addresses: Sequence[str], query: str, deliver: frozenset[DeliveryMode]
) -> list[User]:
    """Accounts with confirmed addresses, each subscribed to ``query``; digests far off."""
    store = await open_sqlite_store(settings.database_path)
    try:
        service = await build_service(settings, store)
        links = LinkBuilder.from_settings(settings, service.signer)
        users = []
        for address in addresses:
            user = await service.user_for_email(address)
            now = datetime.now(UTC)
            token = links.confirm_url(user.id, address, now).rsplit("/", 1)[1]
            await confirm_email(store, service.signer, token, now)
            # Twelve hours away: no digest slot falls inside a test unless it moves it.
            far = (now.hour + 12) % 24
            users.append(await store.update_user(user.id, now, digest_hour=far))
            await service.subscribe(user.owner, query, deliver)
        return users
    finally:
        await store.close()


def _tzif(offset: int) -> bytes:
    """A TZif v2 file: one fixed UTC offset (seconds east), no transitions.

    With no transitions the v1 block and the v2 block are the same bytes; the footer's
    POSIX TZ string (read by zoneinfo for times after the last transition) says it again.
    """
    abbr = b"PBT\0"
    header = b"TZif2" + bytes(15) + struct.pack(">6l", 0, 0, 0, 0, 1, len(abbr))
    data = struct.pack(">lBB", offset, 0, 0) + abbr
    west = -offset  # POSIX TZ strings count hours west of Greenwich
    sign, west = ("-", -west) if west < 0 else ("", west)
    footer = f"\n<PBT>{sign}{west // 3600}:{west % 3600 // 60:02d}:{west % 60:02d}\n"
    return header + data + header + data + footer.encode()


def write_slot_zone(zones: Path, at: datetime) -> tuple[str, int]:
    """A zone (written under ``zones``) and digest hour whose daily slot is exactly ``at``.

    ``at`` is a whole second; its local time becomes ``at.hour``:00:00 on its own date.
    """
    at = at.astimezone(UTC)
    assert at.microsecond == 0, "slots are whole seconds"
    key = f"Paperbell/Slot{at:%H%M%S}"
    (zones / "Paperbell").mkdir(parents=True, exist_ok=True)
    (zones / key).write_bytes(_tzif(-(at.minute * 60 + at.second)))
    zoneinfo.ZoneInfo.clear_cache(only_keys=[key])  # a file of the same name may be cached
    return key, at.hour


# --- a server that lets messages through one at a time -----------------------------------


class Gate:
    """Messages wait here until ``allow`` (or ``open``) lets them through."""

    def __init__(self) -> None:
        self.waiting = 0
        self._permits = asyncio.Semaphore(0)
        self._open = False

    def allow(self, count: int = 1) -> None:
        for _ in range(count):
            self._permits.release()

    def open(self) -> None:
        """Let every message through from now on, those waiting included."""
        self._open = True
        self.allow(self.waiting)

    async def through(self) -> None:
        if self._open:
            return
        self.waiting += 1
        try:
            await self._permits.acquire()
        finally:
            self.waiting -= 1


class _GatedSMTP(_FaultySMTP):
    async def smtp_DATA(self, arg: str) -> None:
        owner = self.owner
        assert isinstance(owner, GatedSmtpServer)
        await owner.gate.through()  # cancelled with the session when the client hangs up
        await super().smtp_DATA(arg)


class GatedSmtpServer(SmtpTestServer):
    """``SmtpTestServer`` whose DATA commands wait at ``gate``."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = Gate()

    async def __aenter__(self) -> GatedSmtpServer:
        await super().__aenter__()
        return self

    def _protocol(self) -> _FaultySMTP:
        return _GatedSMTP(self, hostname="smtp.test", loop=asyncio.get_running_loop())


def process_running(pid: int) -> bool:
    """Running, not gone and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
