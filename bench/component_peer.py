#!/usr/bin/env python3
"""Start iqresponder as users start it (twistd and a configuration file) for a benchmark run.

Takes the command line of ../shared/bench's peers (``--port``, ``--secret``,
``--jid``, ``--extra-handlers N``), writes a configuration in a temporary
directory with the bundled handlers, the benchmark's echo handler and N extra
responders in other namespaces, and replaces itself with twistd, so that the
process the load generator measures is the component itself.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TWISTD = Path(sys.executable).parent / "twistd"


def extra_handlers_module(count: int) -> str:
    """A handler module with ``count`` responders in namespaces urn:example:ns{i}."""
    lines = ["from component import responder", ""]
    for index in range(count):
        lines += [f"@responder('urn:example:ns{index}', 'get')", f"def extra_{index}(request):", "    return None", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", default="secret")
    parser.add_argument("--jid", default="iq.localhost")
    parser.add_argument("--extra-handlers", type=int, default=0)
    args = parser.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("--host must be a loopback address")

    work = Path(tempfile.mkdtemp(prefix="iqresponder-bench-"))
    (work / "secret.txt").write_text(args.secret)
    directories = [ROOT / "handlers", ROOT / "bench" / "handlers"]
    if args.extra_handlers:
        (work / "extra").mkdir()
        (work / "extra" / "extra_responders.py").write_text(extra_handlers_module(args.extra_handlers))
        directories.append(work / "extra")
    listed = ", ".join(f'"{directory}"' for directory in directories)
    config = work / "iqresponder.toml"
    config.write_text(
        f"""[component]
jid = "{args.jid}"
secret_file = "secret.txt"
server = "tcp:host={args.host}:port={args.port}"

[handlers]
directories = [{listed}]
"""
    )
    os.execv(
        str(TWISTD),
        [str(TWISTD), "--nodaemon", "--pidfile=", "--logfile=-", "iqresponder", "--config", str(config)],
    )


if __name__ == "__main__":
    main()
