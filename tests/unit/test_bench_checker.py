"""The benchmark's reply checker finds wrong replies, so that a passing smoke run means something."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))

import loadgen

GOOD = {
    "ping": "<iq type='result' id='b0' to='alice@localhost/bench' from='iq.localhost'/>",
    "custom": "<iq type='result' id='b0' to='alice@localhost/bench' from='iq.localhost'>"
    "<echo xmlns='urn:example:echo'>payload-0123456789abcdef</echo></iq>",
    "unknown": "<iq type='error' id='b0' to='alice@localhost/bench' from='iq.localhost'><error type='cancel'>"
    "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
}
BAD = {
    "ping": "<iq type='error' id='b0' to='alice@localhost/bench' from='iq.localhost'/>",
    "custom": "<iq type='result' id='b0' to='alice@localhost/bench' from='iq.localhost'><echo xmlns='urn:x'/></iq>",
    "unknown": "<iq type='result' id='b0' to='alice@localhost/bench' from='iq.localhost'/>",
}


def check(kind: str, xml: str) -> list[str]:
    report = loadgen.Report(kind)
    checker = loadgen.ReplyChecker(loadgen.KINDS[kind], "iq.localhost", report)
    assert checker.feed(xml[:20].encode()) == []  # a reply split across reads completes later
    assert checker.feed(xml[20:].encode()) == ["0"]
    return report.failures


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_right_replies_pass(kind):
    assert check(kind, GOOD[kind]) == []


@pytest.mark.parametrize("kind", sorted(BAD))
def test_wrong_replies_are_reported(kind):
    assert len(check(kind, BAD[kind])) == 1


def test_unswapped_addresses_are_reported():
    wrong = "<iq type='result' id='b0' to='iq.localhost' from='alice@localhost/bench'/>"
    assert "swapped" in check("ping", wrong)[0]


def test_a_start_tag_cut_by_a_read_is_kept_for_the_next():
    assert loadgen._split_partial_tag(b"<iq type='result' id='b1'/><iq type='res") == (
        b"<iq type='result' id='b1'/>",
        b"<iq type='res",
    )
    assert loadgen._split_partial_tag(b"<iq id='b1'/>") == (b"<iq id='b1'/>", b"")
