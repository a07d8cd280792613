"""The store's section of `make bench` (`bench/run.py --sections store`).

The component runs as deployed (twistd, a configuration file) with the store-backed example
(examples/handlers/custom_xep.py) and a ``[store] url``: a SQLite file, then a database of a
private PostgreSQL cluster with fsync on (private_servers/postgresql.py), for durability is what
a store's write costs. The load generator of the other sections plays the server side and sends
the example's set, get and compare-and-set counter requests, each on one of ``loadgen.KEYS``
keys; in the same component it sends the store-less echo and ping, so that the store's cost reads
as a ratio to its neighbours. Each measurement has a fresh component and a fresh database.

Closed loop at the section's window (throughput, CPU per reply, and latency with a window of
requests queued) and at window 1 (latency with nothing queued), ``--reps`` interleaved
repetitions, medians; then the store's API alone (bench/store_api.py: ``ModuleStore.set`` and
``get`` with 1 and 16 calls outstanding, no XMPP), once per backend.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import loadgen

from private_servers.postgresql import PostgreSQLCluster

HERE = Path(__file__).resolve().parent
STORE_KINDS = ("store-set", "store-get", "store-count")
NEIGHBOURS = ("custom", "ping")
"""Kinds that use no store, measured in the same configuration as the store's kinds."""
BACKENDS = ("sqlite", "postgresql")
LATENCY_REQUESTS = 2_000
"""Requests of each window-1 run."""
WARM_UP = 2_000


def _url(backend: str, work: Path, cluster: PostgreSQLCluster) -> str:
    if backend == "sqlite":
        work.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{work / 'store.sqlite3'}"
    return cluster.new_database()


def _durability(cluster: PostgreSQLCluster) -> dict[str, str]:
    """The cluster's own word (SHOW) on what a commit waits for, rather than what it was asked to do."""
    import psycopg

    with psycopg.connect(cluster.url(), connect_timeout=10) as connection:
        names = ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
        return {name: connection.execute(f"SHOW {name}").fetchone()[0] for name in names}


async def measure(
    with_component: Callable[..., Awaitable], work: Path, url: str, kind: str, requests: int, window: int
):
    """One fresh component on ``url``: every key written (for store-get), a warm-up, then ``requests`` timed."""

    async def body(link, sampler):
        if kind == "store-get":
            await loadgen.run(link, "store-set", loadgen.KEYS, window)
        await loadgen.run(link, kind, min(WARM_UP, requests), window)
        return (await loadgen.run(link, kind, requests, window, sampler=sampler)).as_dict()

    return await with_component(work, body, store_url=url)


def _ratios(medians: dict[str, dict]) -> dict[str, dict]:
    """Each store kind against the custom echo of the same configuration: throughput and CPU per reply."""
    echo = medians["custom"]
    return {
        kind: {
            "rps_vs_custom": round(medians[kind]["rps"] / echo["rps"], 3),
            "cpu_per_reply_vs_custom": round(medians[kind]["cpu_us_per_request"] / echo["cpu_us_per_request"], 2),
        }
        for kind in STORE_KINDS
    }


async def direct_api(url: str, operations: int) -> dict:
    """bench/store_api.py on ``url``, in a process of its own (it runs Twisted's reactor)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "store_api.py"), url, str(operations), stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await process.communicate()
    if process.returncode != 0:
        return {"error": f"bench/store_api.py exited with {process.returncode}"}
    return json.loads(stdout)


async def section(
    args: Any, work: Callable[[], Path], with_component: Callable[..., Awaitable], median: Callable[[list], dict]
) -> dict:
    """The section's JSON: per backend, the medians of ``args.reps`` interleaved repetitions, and ratios."""
    cluster = PostgreSQLCluster(fsync=True)
    cluster.start()
    try:
        windows = (args.window, 1)
        kinds = (*NEIGHBOURS, *STORE_KINDS)
        runs = {(b, w, k): [] for b in BACKENDS for w in windows for k in kinds}
        for _ in range(args.reps):
            for (backend, window, kind), reports in runs.items():
                if window == 1:
                    requests = LATENCY_REQUESTS
                else:
                    requests = args.requests if kind in NEIGHBOURS else args.store_requests
                place = work()
                url = _url(backend, place, cluster)
                report = await measure(with_component, place, url, kind, requests, window)
                reports.append(report)
                print(
                    f"  {backend} {kind} window {window}: {report['rps']} rps, p99 {report['p99_ms']} ms",
                    file=sys.stderr,
                )
        out: dict[str, Any] = {
            "window": args.window,
            "keys": loadgen.KEYS,
            "requests": args.store_requests,
            "requests_at_window_1": LATENCY_REQUESTS,
            "postgresql_settings": _durability(cluster),
        }
        for backend in BACKENDS:
            medians = {w: {k: median(runs[backend, w, k]) for k in kinds} for w in windows}
            out[backend] = {
                "ratios": _ratios(medians[args.window]),
                **{f"window_{w}": medians[w] for w in windows},
                "direct_api": await direct_api(_url(backend, work(), cluster), args.store_requests // 4),
            }
        return out
    finally:
        cluster.remove()
