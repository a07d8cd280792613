"""The baseline section of `make bench` (`bench/run.py --sections baseline`): this tree beside an earlier commit.

It answers "did the paths that use no store get slower?" by running the ``kinds`` and
``dispatch`` sections of both trees back to back, on the same machine, in the same minutes.
The earlier commit (``--baseline-commit``, by default the last one before the store) is checked
out in a temporary git worktree, removed afterwards; the working tree is not touched. Each tree
runs its own ``bench/run.py --sections kinds,dispatch --reps 1`` with this virtualenv, and
``PYTHONPATH`` puts that tree first, so its twistd imports that tree's ``component`` (the editable
install points at the working tree; the JSON records where ``component`` was imported from).
The two trees alternate ``--reps`` times, the first in turn, and the medians are compared:
ratios are this tree over the earlier commit (rps above 1 and CPU below 1 are better).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "c01d0ca"
"""payload: drop fields_of, which nothing used; the commit before the store."""
SECTIONS = "kinds,dispatch"


def _git(*arguments: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *arguments], capture_output=True, text=True, check=True
    ).stdout.strip()


def _environment(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def component_imported_from(tree: Path) -> str:
    """Where twistd, started for ``tree``, imports ``component`` from (run from / as twistd is: no cwd on the path)."""
    return subprocess.run(
        [sys.executable, "-c", "import component; print(component.__file__)"],
        env=_environment(tree),
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


async def run_tree(tree: Path, args: Any) -> dict:
    """One ``kinds,dispatch`` run of ``tree``'s own bench/run.py; its JSON."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(tree / "bench" / "run.py"),
        *("--sections", SECTIONS, "--reps", "1", "--requests", str(args.requests), "--window", str(args.window)),
        stdout=asyncio.subprocess.PIPE,
        env=_environment(tree),
    )
    stdout, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{tree}/bench/run.py exited with {process.returncode}")
    return json.loads(stdout)


def _compare(this: list[float], base: list[float]) -> dict:
    median_this, median_base = statistics.median(this), statistics.median(base)
    return {"this": round(median_this, 2), "base": round(median_base, 2), "ratio": round(median_this / median_base, 3)}


def compare(runs: dict[str, list[dict]]) -> dict:
    """Medians of each tree and their ratios, per kind (rps, CPU per reply) and for dispatch."""
    kinds = runs["this"][0]["kinds"]
    out: dict[str, Any] = {
        "kinds": {
            kind: {
                figure: _compare(*([run["kinds"][kind][figure] for run in runs[tree]] for tree in ("this", "base")))
                for figure in ("rps", "cpu_us_per_request", "p99_ms")
            }
            for kind in kinds
        }
    }
    figures = ("rps_with_0", "rps_with_1000", "us_per_request_with_0", "us_per_request_with_1000")
    out["dispatch"] = {
        figure: _compare(*([run["dispatch"][figure] for run in runs[tree]] for tree in ("this", "base")))
        for figure in figures
    }
    return out


async def section(args: Any) -> dict:
    commit = _git("rev-parse", "--verify", f"{args.baseline_commit}^{{commit}}")
    worktree = Path(tempfile.mkdtemp(prefix=f"iqresponder-base-{commit[:7]}-"))
    _git("worktree", "add", "--detach", str(worktree), commit)
    try:
        trees = {"this": ROOT, "base": worktree}
        runs: dict[str, list[dict]] = {"this": [], "base": []}
        for repetition in range(args.reps):
            order = ("base", "this") if repetition % 2 == 0 else ("this", "base")
            for name in order:
                runs[name].append(await run_tree(trees[name], args))
                print(f"  baseline: {name} run {len(runs[name])} done", file=sys.stderr)
        return {
            "base_commit": commit,
            "this_tree": _git("describe", "--always", "--dirty"),
            "component_from": {name: component_imported_from(tree) for name, tree in trees.items()},
            "reps": args.reps,
            "requests": args.requests,
            "window": args.window,
            **compare(runs),
        }
    finally:
        _git("worktree", "remove", "--force", str(worktree))
