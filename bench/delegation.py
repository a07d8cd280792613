"""The ``delegation`` section: what a delegated request (XEP-0355) costs over the same request sent directly.

Both run in one process on the in-memory component (component.testing), so the
figures are the component's own work per request, without sockets: the echo
responder asked for directly by a client, and the same Iq forwarded by the server
in ``<delegation><forwarded>`` and answered wrapped. Batches of each alternate;
the result is CPU per request of each and their ratio, medians over ``reps``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from component.testing import InMemoryComponent

HANDLERS = Path(__file__).parent / "delegation_handlers"
ECHO = "<echo xmlns='urn:example:echo'>payload-0123456789abcdef</echo>"
USER = "user@localhost/r"


def _direct(n: int) -> str:
    return f"<iq type='get' id='b{n}' from='{USER}' to='iq.localhost'>{ECHO}</iq>"


def _delegated(n: int, version: str) -> str:
    return (
        f"<iq type='set' id='w{n}' from='localhost' to='iq.localhost'><delegation xmlns='{version}'>"
        f"<forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='get' id='b{n}' from='{USER}' "
        f"to='localhost'>{ECHO}</iq></forwarded></delegation></iq>"
    )


def _batch_cpu(memory: InMemoryComponent, requests: list[bytes]) -> float:
    """CPU seconds per request to take in ``requests`` and write every reply."""
    start = time.process_time()
    for data in requests:
        memory.stream.dataReceived(data)
    spent = time.process_time() - start
    written = memory.transport.value()
    memory.transport.clear()
    replies = written.count(b"<iq type='result'")  # a delegated reply's inner Iq starts with its xmlns
    if replies != len(requests):
        raise RuntimeError(f"{len(requests)} requests got {replies} results")
    return spent / len(requests)


def section(requests: int = 20_000, reps: int = 5) -> dict:
    # A rate limit no benchmark reaches: one user sends every request.
    from dataclasses import replace

    from component.testing import make_settings

    settings = make_settings()
    settings = replace(settings, limits=replace(settings.limits, sender_rate=1e12, sender_burst=10**12))
    memory = InMemoryComponent([HANDLERS], settings=settings)
    kinds = {
        "direct": [_direct(n).encode() for n in range(requests)],
        "delegated:1": [_delegated(n, "urn:xmpp:delegation:1").encode() for n in range(requests)],
        "delegated:2": [_delegated(n, "urn:xmpp:delegation:2").encode() for n in range(requests)],
    }
    _batch_cpu(memory, kinds["direct"][:1000])  # warm up
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(reps):
        for kind, batch in kinds.items():
            seconds[kind].append(_batch_cpu(memory, batch))
    medians = {kind: statistics.median(values) for kind, values in seconds.items()}
    return {
        "requests_per_batch": requests,
        "reps": reps,
        "cpu_us_per_request": {kind: round(value * 1e6, 2) for kind, value in medians.items()},
        "ratio_to_direct": {
            kind: round(value / medians["direct"], 3) for kind, value in medians.items() if kind != "direct"
        },
    }


if __name__ == "__main__":
    import json

    print(json.dumps(section(), indent=1))
