"""The benchmark's smoke run: a few hundred requests of every kind, every reply checked.

The store's kinds (bench/store.py) run on a SQLite store there; every get reads a value a set wrote. So do whole
ad-hoc command sessions (bench/commands.py): two-stage and one-stage, every step's reply checked before the next.

Figures are not asserted here (speed lives in `make bench`); correctness is.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]


def test_every_reply_of_every_benchmark_kind_is_right():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "300"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reports = json.loads(result.stdout)
    assert [report["kind"] for report in reports] == [
        *("disco-info", "ping", "version", "custom", "unknown"),
        *("build-raw", "build-typed"),
        *("store-set", "store-get", "store-count"),
        *("command-two-stage", "command-one-stage"),
    ]
    for report in reports[:-2]:
        assert (report["requests"], report["replies"], report["failures"]) == (300, 300, [])
    two_stage, one_stage = reports[-2:]
    assert (two_stage["sessions"], two_stage["completed"], two_stage["steps"], two_stage["failures"]) == (
        300,
        300,
        900,
        [],
    )
    assert (one_stage["sessions"], one_stage["completed"], one_stage["steps"], one_stage["failures"]) == (
        300,
        300,
        300,
        [],
    )
