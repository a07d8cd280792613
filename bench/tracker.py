"""The outbound tracker alone: memory per pending query, and CPU per query sent and per response resolved.

`make bench` runs it (`bench/run.py --sections tracker`); alone: `python bench/tracker.py`.
It drives the component's own ``Tracker`` as ``component.query`` does, with the
reactor's clock and the default timeout, and a ``send`` that serializes each
query as the stream does but writes it nowhere (the socket write is not the
tracker's cost). Responses are built as the stream's parser builds them, before
the clock starts. Each figure comes once with every query to the same address
and once with every query to a new one, which must cost no more.
"""

from __future__ import annotations

import gc
import itertools
import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twisted.internet import reactor
from twisted.words.xish import domish

from component.serializer import to_xml
from component.stream import NS_COMPONENT_ACCEPT
from component.tracker import Tracker

PENDING = 100_000


def serialize_only(iq: domish.Element) -> bool:
    to_xml(iq, within=NS_COMPONENT_ACCEPT)
    return True


def targets(count: int, distinct: bool) -> list[str]:
    return [f"user{k}@localhost/r{k}" if distinct else "user1@localhost/r1" for k in range(count)]


def tracker_with_counted_ids() -> Tracker:
    counter = itertools.count()
    return Tracker(serialize_only, reactor, "iq.localhost", "localhost", new_id=lambda: f"q{next(counter)}")


def responses(addresses: list[str]) -> list[domish.Element]:
    built = []
    for number, address in enumerate(addresses):
        iq = domish.Element((NS_COMPONENT_ACCEPT, "iq"))
        iq.attributes = {"type": "result", "id": f"q{number}", "from": address, "to": "iq.localhost"}
        built.append(iq)
    return built


def cpu(count: int, distinct: bool) -> dict:
    """Microseconds of CPU per query sent and per response resolved."""
    tracker = tracker_with_counted_ids()
    addresses = targets(count, distinct)
    answers = responses(addresses)
    gc.collect()
    started = time.process_time()
    deferreds = [tracker.query(address, "urn:xmpp:ping") for address in addresses]
    sent = time.process_time() - started
    answered: list[domish.Element] = []
    for deferred in deferreds:
        deferred.addCallback(answered.append)
    started = time.process_time()
    for answer in answers:
        tracker.receive(answer)
    resolved = time.process_time() - started
    assert len(answered) == count and len(tracker) == 0
    return {
        "us_per_query_sent": round(sent / count * 1e6, 2),
        "us_per_response_resolved": round(resolved / count * 1e6, 2),
    }


def memory(count: int) -> dict:
    """Bytes per pending query (its Deferred included), with ``count`` pending to new addresses."""
    tracker = tracker_with_counted_ids()
    addresses = targets(count, True)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    deferreds = [tracker.query(address, "urn:xmpp:ping") for address in addresses]
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before - sys.getsizeof(deferreds)
    tracemalloc.stop()
    tracker.fail_all("benchmark over")
    for deferred in deferreds:
        deferred.addErrback(lambda failure: None)
    return {"pending": count, "bytes_per_pending_query": round(held / count)}


def main() -> None:
    result = memory(PENDING)
    for distinct in (False, True, False, True):  # interleaved; the last of each is kept
        result["new_address_each_time" if distinct else "same_address"] = cpu(PENDING, distinct)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
