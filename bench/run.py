"""iqresponder's benchmark: `make bench` (or `python bench/run.py --help`).

Every run starts the component as users do (twistd and a configuration file)
and plays the server side of XEP-0114 against it (bench/loadgen.py), or goes
end to end through the private Prosody (or ejabberd, with one and with three
component processes under the same name) with several client connections.
The store's section (bench/store.py) does the same with a ``[store]`` on
SQLite and on a private PostgreSQL, and so does the commands section
(bench/commands.py) with whole ad-hoc command sessions; the baseline section (bench/baseline.py)
runs the kinds and dispatch sections of this tree and of an earlier commit.
Nothing here is a timed test: `make test` only runs `--smoke`, which checks
every reply of a few hundred requests.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # private_servers

import baseline
import c2s
import commands
import delegation
import launch
import loadgen
import store
from procstat import ProcessSampler

SECRET = "bench-secret"
KINDS = ["disco-info", "ping", "version", "custom", "unknown"]


async def with_component(
    work: Path, body, extra_handlers: int = 0, advertised: bool = False, store_url: str | None = None, **more: Any
):
    """Start a component against a fresh load generator, run ``body(link, sampler)``, stop it.

    With a ``store_url``, the component also loads the examples (the store-backed handler keeps its values
    there); ``more`` are further keywords of ``launch.write_config`` (``extra_directories``, ``extra_toml``).
    """
    server, port, connected = await loadgen.listen(SECRET, "iq.localhost")
    config = launch.write_config(
        work, port, SECRET, extra_handlers=extra_handlers, advertised=advertised, store_url=store_url, **more
    )
    process = launch.start(config, work / "component.log")
    try:
        link = await asyncio.wait_for(connected, 30)
        return await body(link, ProcessSampler(process.pid))
    finally:
        if connected.done() and not connected.exception():
            connected.result().close_stream()
        server.close()
        launch.stop(process)


async def closed_loop(
    work: Path,
    kind: str,
    requests: int,
    window: int,
    extra_handlers: int = 0,
    advertised: bool = False,
    senders: int = 1,
):
    async def body(link, sampler):
        await loadgen.run(link, kind, 2000, window, senders=senders)  # warm-up
        return await loadgen.run(link, kind, requests, window, sampler=sampler, senders=senders)

    return await with_component(work, body, extra_handlers, advertised)


async def smoke(work: Path, requests: int) -> list[dict]:
    """Check every reply of ``requests`` requests of each kind; the suite runs this.

    The store's kinds run on a SQLite store (the store-set run writes every key the store-get run reads), and so
    do ``requests`` whole sessions of each ad-hoc command (bench/commands.py), every step's reply checked.
    """

    async def body(link, sampler):
        kinds = [*KINDS, "build-raw", "build-typed", *store.STORE_KINDS]
        reports = [(await loadgen.run(link, kind, requests, window=16, check=True)).as_dict() for kind in kinds]
        return reports + await commands.smoke(link, requests)

    return await with_component(work, body, store_url=f"sqlite:///{work / 'store.sqlite3'}", **commands.CONFIGURATION)


async def latency(work: Path, kind: str, rate: float, seconds: float) -> dict:
    async def body(link, sampler):
        await loadgen.run(link, kind, 2000, 64)
        report = await loadgen.run(link, kind, int(rate * seconds), rate=rate, sampler=sampler)
        result = report.as_dict()
        result["target_rate"] = round(rate)
        result["over_50_ms"] = sum(1 for value in report.latencies if value > 0.050)
        return result

    return await with_component(work, body)


async def leak(work: Path, kind: str, total: int, first: int, window: int, senders: int = 1) -> dict:
    async def body(link, sampler):
        report = await loadgen.run(link, kind, total, window, sampler=sampler, rss_at=(first, total), senders=senders)
        return report.as_dict()

    return await with_component(work, body)


def private_server(work: Path, kind: str):
    """A private Prosody or ejabberd on free loopback ports (not started)."""
    from private_servers.base import free_port
    from private_servers.ejabberd import PrivateEjabberd
    from private_servers.prosody import PrivateProsody

    if kind == "prosody":
        return PrivateProsody(work / "prosody", c2s_port=free_port(), component_port=free_port(), secret=SECRET)
    return PrivateEjabberd(work / "ejabberd", c2s_port=free_port(), component_port=free_port(), secret=SECRET)


async def end_to_end(
    work: Path, kind: str, clients: int, requests: int, window: int, server_kind: str = "prosody", instances: int = 1
) -> dict:
    """Through a private server: ``clients`` logged-in clients share the window; ``instances``
    component processes share the name (ejabberd spreads the requests across them)."""
    server = private_server(work, server_kind)
    server.start()
    processes = []
    try:
        for index in range(clients):
            server.register(f"bench{index}", "localhost", "bench")
        config = launch.write_config(work, server.component_port, SECRET)
        processes = [launch.start(config, work / f"component-{index}.log") for index in range(instances)]
        links = [await _login(server.c2s_port, f"bench{index}") for index in range(clients)]
        share = max(1, window // clients)
        await asyncio.gather(*(loadgen.run(link, kind, 500, share) for link in links))  # warm-up
        samplers = [ProcessSampler(process.pid) for process in processes]
        server_sampler = ProcessSampler(server.pid)
        cpu_before = [sampler.cpu_seconds() for sampler in samplers]
        server_cpu_before, start = server_sampler.cpu_seconds(), time.perf_counter()
        reports = await asyncio.gather(*(loadgen.run(link, kind, requests // clients, share) for link in links))
        seconds = time.perf_counter() - start
        cpu = [sampler.cpu_seconds() - before for sampler, before in zip(samplers, cpu_before, strict=True)]
        server_cpu = server_sampler.cpu_seconds() - server_cpu_before
        for link in links:
            link.close_stream()
        latencies = sorted(value for report in reports for value in report.latencies)
        replies = sum(report.replies for report in reports)
        return {
            "kind": kind,
            "server": server_kind,
            "instances": instances,
            "clients": clients,
            "replies": replies,
            "errors": sum(report.errors for report in reports),
            "rps": round(replies / seconds),
            "component_cpu_us_per_request": round(sum(cpu) / replies * 1e6, 2),
            "component_cpu_percent_each": [round(100 * value / seconds) for value in cpu],
            "server_cpu_percent": round(100 * server_cpu / seconds),
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
            "failures": [failure for report in reports for failure in report.failures][:5],
        }
    finally:
        for process in processes:
            launch.stop(process)
        server.stop()


async def _login(port: int, user: str) -> c2s.ClientLink:
    """Log in once the component is connected (until then the server bounces the Iqs)."""
    link = await c2s.connect(port, user, "bench")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        report = await loadgen.run(link, "ping", 1, 1, stall_seconds=5)
        if report.errors == 0 and report.replies == 1:
            return link
        await asyncio.sleep(0.05)
    raise RuntimeError("the component did not answer through the server within 20 s")


def median_report(reports: list[dict]) -> dict:
    keys = ["rps", "cpu_us_per_request", "p50_ms", "p99_ms", "peak_rss_mib"]
    median = dict(reports[0])
    for key in keys:
        median[key] = statistics.median(report[key] for report in reports)
    median["rps_spread"] = round((max(r["rps"] for r in reports) - min(r["rps"] for r in reports)) / median["rps"], 3)
    return median


async def main(args: argparse.Namespace) -> int:
    work_root = Path(tempfile.mkdtemp(prefix="iqresponder-bench-"))
    counter = iter(range(10**6))

    def work() -> Path:
        return work_root / f"run{next(counter)}"

    if args.smoke:
        results = await smoke(work(), args.smoke)
        print(json.dumps(results, indent=1))
        bad = [r for r in results if r["failures"] or r.get("replies", r.get("completed")) != args.smoke]
        return 1 if bad else 0

    out: dict[str, object] = {"started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if "kinds" in args.sections:
        runs: dict[str, list[dict]] = {kind: [] for kind in KINDS}
        for _ in range(args.reps):  # interleaved repetitions, a fresh component each
            for kind in KINDS:
                report = (await closed_loop(work(), kind, args.requests, args.window)).as_dict()
                runs[kind].append(report)
                print(f"  {kind}: {report['rps']} rps, {report['cpu_us_per_request']} us/req", file=sys.stderr)
        out["kinds"] = {kind: median_report(reports) for kind, reports in runs.items()}
    if "dispatch" in args.sections:
        scan: dict[int, list[dict]] = {0: [], 1000: []}
        for _ in range(args.reps):
            for extra, reports in scan.items():
                report = await closed_loop(work(), "disco-info", args.requests, args.window, extra_handlers=extra)
                reports.append(report.as_dict())
        medians = {extra: median_report(reports) for extra, reports in scan.items()}
        advertised = await closed_loop(work(), "disco-info", args.requests // 10, args.window, 1000, advertised=True)
        out["dispatch"] = {
            "rps_with_0": medians[0]["rps"],
            "rps_with_1000": medians[1000]["rps"],
            "ratio": round(medians[1000]["rps"] / medians[0]["rps"], 3),
            "us_per_request_with_0": medians[0]["cpu_us_per_request"],
            "us_per_request_with_1000": medians[1000]["cpu_us_per_request"],
            "rps_with_1000_advertised": round(advertised.rps),
            "us_per_request_with_1000_advertised": round(advertised.cpu_us_per_request, 1),
        }
    if "population" in args.sections:
        # Every request from someone new (user<k>@localhost/r<k>, k = n mod 100,000), against one
        # sender, interleaved, a fresh component each.
        population: dict[str, dict[int, list[dict]]] = {kind: {1: [], args.senders: []} for kind in KINDS}
        for _ in range(args.reps):
            for kind in KINDS:
                for senders, reports in population[kind].items():
                    report = await closed_loop(work(), kind, args.requests, args.window, senders=senders)
                    reports.append(report.as_dict())
        out["population"] = {
            kind: {
                "senders": args.senders,
                "us_per_request_one_sender": median_report(runs[1])["cpu_us_per_request"],
                "us_per_request_population": median_report(runs[args.senders])["cpu_us_per_request"],
                "ratio": round(
                    median_report(runs[args.senders])["cpu_us_per_request"]
                    / median_report(runs[1])["cpu_us_per_request"],
                    3,
                ),
            }
            for kind, runs in population.items()
        }
        out["population_leak"] = await leak(
            work(), "custom", args.leak_requests, args.leak_requests // 10, args.window, senders=args.senders
        )
    if "payload" in args.sections:
        # One custom responder written with raw domish and with payload classes (bench/handlers/build.py).
        builds: dict[str, list[dict]] = {"build-raw": [], "build-typed": []}
        for _ in range(args.reps):
            for kind, reports in builds.items():
                reports.append((await closed_loop(work(), kind, args.requests, args.window)).as_dict())
        raw, typed = (median_report(builds[kind]) for kind in ("build-raw", "build-typed"))
        out["payload"] = {
            "us_per_request_raw": raw["cpu_us_per_request"],
            "us_per_request_typed": typed["cpu_us_per_request"],
            "ratio": round(typed["cpu_us_per_request"] / raw["cpu_us_per_request"], 3),
        }
    if "tracker" in args.sections:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / "tracker.py"), stdout=asyncio.subprocess.PIPE
        )
        stdout, _ = await process.communicate()
        out["tracker"] = json.loads(stdout)
    if "latency" in args.sections:
        peak = (await closed_loop(work(), "disco-info", args.requests, args.window)).rps
        out["latency"] = await latency(work(), "disco-info", 0.8 * peak, args.latency_seconds)
        out["latency"]["max_rate_measured"] = round(peak)
    if "leak" in args.sections:
        out["leak"] = await leak(work(), "disco-info", args.leak_requests, args.leak_requests // 10, args.window)
    if "store" in args.sections:
        out["store"] = await store.section(args, work, with_component, median_report)
    if "commands" in args.sections:
        out["commands"] = await commands.section(args, work, with_component, median_report)
    if "delegation" in args.sections:
        out["delegation"] = delegation.section()
    if "baseline" in args.sections:
        out["baseline"] = await baseline.section(args)
    if "e2e" in args.sections:
        out["e2e"] = [await end_to_end(work(), kind, args.clients, args.e2e_requests, args.window) for kind in KINDS]
    if "scaleout" in args.sections:
        # One component process and then three under the same name, behind ejabberd.
        out["scaleout"] = [
            await end_to_end(work(), kind, args.clients, args.e2e_requests, args.window, "ejabberd", instances)
            for kind in ("ping", "custom")
            for instances in (1, 3)
        ]
    print(json.dumps(out, indent=1))
    if args.output:
        Path(args.output).write_text(json.dumps(out, indent=1) + "\n")
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="iqresponder's benchmark")
    parser.add_argument(
        "--sections",
        default="kinds,dispatch,latency,leak,population,payload,tracker,store,commands,delegation,baseline,e2e,scaleout",
        type=lambda text: set(text.split(",")),
        help="which parts to run: kinds, dispatch, latency, leak, population, payload, tracker, store, commands, "
        "delegation, baseline, e2e, scaleout (default: all)",
    )
    parser.add_argument("--senders", type=int, default=100_000, help="distinct senders in the population section")
    parser.add_argument("--requests", type=int, default=150_000, help="measured requests per closed-loop run")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--latency-seconds", type=float, default=60.0)
    parser.add_argument("--leak-requests", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--e2e-requests", type=int, default=40_000)
    parser.add_argument("--store-requests", type=int, default=10_000, help="measured requests per store-backed run")
    parser.add_argument(
        "--command-sessions", type=int, default=3_000, help="measured ad-hoc command sessions per run (commands)"
    )
    parser.add_argument(
        "--baseline-commit",
        default=baseline.COMMIT,
        help=f"the commit the baseline section compares this tree with (default: {baseline.COMMIT}, before the store)",
    )
    parser.add_argument(
        "--smoke", type=int, default=0, metavar="N", help="only check every reply of N requests per kind"
    )
    parser.add_argument("--output", help="also write the JSON results here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
