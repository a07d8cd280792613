"""The store's API alone: ``ModuleStore.set`` and ``get`` per second, and their latency, with 1 and 16 calls outstanding.

`bench/run.py --sections store` runs it on each backend; alone: `python bench/store_api.py URL [OPERATIONS]`
(URL as in ``[store] url``, absolute). No XMPP and no component: what a responder's
``await store.set(...)`` costs on that backend with the component's own backend classes, the
hop to the store's threads and back included, and for a set the commit and its sync. Keys and
values are the XMPP section's (``k<n mod loadgen.KEYS>``, a new value each time).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from loadgen import KEYS, STORED_VALUE
from twisted.internet import defer, task

from component.store import ModuleStore, Store, open_backend


async def timed(call: Callable[[int], defer.Deferred], operations: int, outstanding: int) -> dict:
    """``operations`` calls, ``outstanding`` at a time (each caller starts its next call when one returns).

    CPU is the whole process's (the reactor thread and the store's threads, SQLite's work included).
    """
    latencies: list[float] = []
    numbers = iter(range(operations))

    async def caller() -> None:
        for number in numbers:
            started = time.perf_counter()
            await call(number)
            latencies.append(time.perf_counter() - started)

    started, cpu_before = time.perf_counter(), time.process_time()
    await defer.gatherResults([defer.ensureDeferred(caller()) for _ in range(outstanding)])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    latencies.sort()
    return {
        "per_second": round(operations / seconds),
        "cpu_us_per_call": round(cpu / operations * 1e6, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[int(0.99 * len(latencies))] * 1000, 3),
    }


async def measure(reactor, url: str, operations: int) -> dict:
    store = Store(open_backend(url, reactor), reactor)
    keys: ModuleStore = store.for_module("bench")
    try:
        for number in range(KEYS):  # opens the database, creates the table, writes every key that get reads
            await keys.set(f"k{number}", STORED_VALUE % number)
        result: dict = {"backend": store.backend.description.split()[0], "operations": operations}
        for outstanding in (1, 16):
            result[f"set_{outstanding}_outstanding"] = await timed(
                lambda n: keys.set(f"k{n % KEYS}", STORED_VALUE % n), operations, outstanding
            )
            result[f"get_{outstanding}_outstanding"] = await timed(
                lambda n: keys.get(f"k{n % KEYS}"), operations, outstanding
            )
        return result
    finally:
        await store.close()


def main(reactor, url: str, operations: str = "5000") -> defer.Deferred:
    async def run() -> None:
        print(json.dumps(await measure(reactor, url, int(operations))))

    return defer.ensureDeferred(run())


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
