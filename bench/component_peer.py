#!/usr/bin/env python3
"""iqresponder as a peer of ../shared/bench: takes that harness's command line and becomes twistd.

    run.py --peer "iqresponder=/path/to/.venv/bin/python bench/component_peer.py
                   --port {port} --secret {secret} --jid {jid} --extra-handlers {extra}"

It replaces itself with twistd, so the process the harness measures is the component.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import tempfile
from pathlib import Path

import launch


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
    config = launch.write_config(work, args.port, args.secret, args.jid, args.extra_handlers)
    command = launch.twistd_command(config)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
