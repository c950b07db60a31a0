"""A throwaway PostgreSQL for benchmarks: Debian's ``postgresql`` binaries, a temp data
directory, a loopback port, run as ``nobody`` when we are root (initdb refuses root).

Durability stays at PostgreSQL's defaults (fsync and synchronous commit on): figures are
what a real server on this disk would give.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

USER = "paperbell"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit(
            "needs Debian package postgresql (initdb, pg_ctl under /usr/lib/postgresql)"
        )
    return Path(found[-1]).parent


def _prefix(root: Path) -> tuple[str, ...]:
    if os.geteuid() != 0:
        return ()
    nobody = pwd.getpwnam("nobody")
    os.chown(root, nobody.pw_uid, nobody.pw_gid)
    return ("setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
            "--clear-groups", "--")  # fmt: skip


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A running server for the block; yields ``postgresql://paperbell@127.0.0.1:PORT/``."""
    bin_dir, root, port = _bin_dir(), Path(tempfile.mkdtemp(prefix="bench-pg-")), _port()
    prefix = _prefix(root)

    def run(tool: str, *args: str) -> None:
        subprocess.run([*prefix, str(bin_dir / tool), *args], check=True, capture_output=True)

    data = root / "data"
    run("initdb", "-D", str(data), "-U", USER, "--auth=trust", "--encoding=UTF8", "--no-sync")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=200"
    run("pg_ctl", "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start")
    try:
        yield f"postgresql://{USER}@127.0.0.1:{port}/"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)
