"""A store read beside a busy event loop, at Python's switch interval and at paperbell's.

    python bench/store_threads.py [--rows 2600] [--repeat 3] [--cap 20] [--json]

aiosqlite runs each connection's statements on a thread of its own; sqlite3 lets go of
the GIL around every row and takes it back after. The dispatcher reads its next claim
(some 2,600 match rows at 50,000 subscriptions) while the event loop renders the messages
of the current one, so each take-back competes with the loop's Python. This bench reads
``--rows`` rows through ``bot.store.sqlite.schema.connect`` three ways, in one run:

* alone, the loop idle: the floor;
* beside a loop that renders (2 ms of Python, then a yield, over and over) at Python's
  default switch interval of 5 ms; a read still running after ``--cap`` seconds is cut
  and reported as that cap;
* the same at ``GIL_SWITCH_SECONDS``, the interval opening a store sets.

Each figure is the median of ``--repeat`` reads, the two intervals interleaved. Target:
beside the busy loop, at paperbell's interval, within 0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite

from bot.store.sqlite.schema import GIL_SWITCH_SECONDS, connect

PYTHON_DEFAULT = 0.005
TARGET_S = 0.5
RENDER_S = 0.002  # about one alert's rendering (bench/email_send.py)


async def _render_forever(stop: asyncio.Event) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        while time.perf_counter() - start < RENDER_S:
            sum(range(200))
        await asyncio.sleep(0)


async def _read(db: aiosqlite.Connection, *, busy: bool, cap: float) -> float:
    """Seconds to read every row, ``cap`` if it was cut."""
    stop = asyncio.Event()
    loop_work = asyncio.create_task(_render_forever(stop)) if busy else None
    await asyncio.sleep(0)
    start = time.perf_counter()
    try:
        await asyncio.wait_for(db.execute_fetchall("SELECT * FROM m"), cap)
        seconds = time.perf_counter() - start
    except TimeoutError:
        seconds = cap
    stop.set()
    if loop_work is not None:
        await loop_work
    # A cut read still runs on the connection's thread: let it end with the loop idle, so
    # the next read (perhaps at the other interval) does not wait behind it.
    await db.execute_fetchall("SELECT 1")
    return seconds


async def _fill(db: aiosqlite.Connection, rows: int) -> None:
    await db.execute("CREATE TABLE m (owner TEXT, paper_key TEXT, words TEXT, score REAL)")
    values = [(f"user:{i % 32}", f"2411.{i:05d}", '["graph","neural"]', 0.5) for i in range(rows)]
    await db.executemany("INSERT INTO m VALUES (?, ?, ?, ?)", values)


async def measure(rows: int, repeat: int, cap: float) -> dict[str, Any]:
    before = sys.getswitchinterval()
    with tempfile.TemporaryDirectory() as tmp:
        db = await connect(Path(tmp) / "threads.db")
        try:
            await _fill(db, rows)
            alone = [await _read(db, busy=False, cap=cap) for _ in range(repeat)]
            beside: dict[float, list[float]] = {PYTHON_DEFAULT: [], GIL_SWITCH_SECONDS: []}
            for _ in range(repeat):
                for interval, times in beside.items():
                    sys.setswitchinterval(interval)
                    times.append(await _read(db, busy=True, cap=cap))
        finally:
            sys.setswitchinterval(before)
            await db.close()
    return {
        "rows": rows,
        "alone_s": statistics.median(alone),
        "busy_default_s": statistics.median(beside[PYTHON_DEFAULT]),
        "busy_default_runs_s": beside[PYTHON_DEFAULT],
        "busy_paperbell_s": statistics.median(beside[GIL_SWITCH_SECONDS]),
        "busy_paperbell_runs_s": beside[GIL_SWITCH_SECONDS],
        "cap_s": cap,
    }


def targets(fig: dict[str, Any]) -> dict[str, dict[str, Any]]:
    value = round(fig["busy_paperbell_s"], 3)
    return {
        "read_beside_busy_loop_s": {
            "value": value,
            "target": f"≤ {TARGET_S} s",
            "met": value <= TARGET_S,
        }
    }


def render(fig: dict[str, Any]) -> str:
    capped = " (cut at the cap)" if fig["busy_default_s"] >= fig["cap_s"] else ""
    return "\n".join(
        [
            f"read of {fig['rows']:,} rows, median seconds",
            f"  loop idle:                          {fig['alone_s']:.3f}",
            f"  loop busy, Python's {PYTHON_DEFAULT * 1000:g} ms interval:  "
            f"{fig['busy_default_s']:.3f}{capped}",
            f"  loop busy, paperbell's {GIL_SWITCH_SECONDS * 1000:g} ms:      "
            f"{fig['busy_paperbell_s']:.3f}",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cap", type=float, default=20.0, help="seconds before a read is cut")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    fig = asyncio.run(measure(args.rows, args.repeat, args.cap))
    met = targets(fig)
    print(json.dumps({**fig, "targets": met}, indent=2) if args.json else render(fig))
    return 0 if all(t["met"] for t in met.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
