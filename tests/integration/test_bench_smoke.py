"""The benchmark's smoke run: a few hundred requests of every kind, every reply checked.

The store's kinds (bench/store.py) run on a SQLite store there; every get reads a value a set wrote.

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
    ]
    for report in reports:
        assert (report["requests"], report["replies"], report["failures"]) == (300, 300, [])
