"""Namespace delegation (XEP-0355, component/delegation.py): what the server forwards, as the component answers it.

The harness plays the server: ``ask_delegated`` wraps a user's Iq as Prosody
(``urn:xmpp:delegation:2``) or ejabberd (``:1``) does and unwraps the answer;
the raw exchanges are checked against the wrapping the servers accept.
"""

import textwrap
from pathlib import Path

import pytest

from component.testing import HandlerHarness, make_settings

DISCO = Path(__file__).parents[2] / "handlers" / "disco.py"
USER = "juliet@localhost/balcony"
NS = "urn:example:delegated"
V1, V2 = "urn:xmpp:delegation:1", "urn:xmpp:delegation:2"

MODULE = f"""
from twisted.words.xish import domish
from component import StanzaError, responder

@responder("{NS}", delegated=True)
def who(request):
    if request.payload.getAttribute("fail"):
        raise StanzaError("not-allowed", text="no")
    answer = domish.Element(("{NS}", "who"))
    answer["sender"] = request.sender.full()
    answer["recipient"] = request.recipient.full() if request.recipient else "none"
    delegation = request.delegation
    if delegation is None:
        answer["delegated"] = "no"
    else:
        answer["server"], answer["to"] = delegation.server, delegation.to.full()
        answer["bare"], answer["version"] = str(delegation.bare), delegation.version
    return answer

@responder("urn:example:direct")
def direct(request):
    return None
"""


@pytest.fixture
def harness(tmp_path):
    (tmp_path / "who.py").write_text(textwrap.dedent(MODULE))
    return HandlerHarness(DISCO, tmp_path / "who.py")


def wrapped(id, inner, version=V2, sender="localhost"):
    return (
        f"<iq type='set' id='{id}' from='{sender}' to='iq.localhost'><delegation xmlns='{version}'>"
        f"<forwarded xmlns='urn:xmpp:forward:0'>{inner}</forwarded></delegation></iq>"
    )


def test_a_users_iq_to_its_server_reaches_the_responder_as_sent_by_the_user(harness):
    reply = harness.ask_delegated(f"<iq type='get' id='a1' to='localhost'><who xmlns='{NS}'/></iq>", sender=USER)
    assert reply == (
        f"<iq type='result' id='a1' to='{USER}' from='localhost'><who xmlns='{NS}' sender='{USER}' "
        f"recipient='localhost' server='localhost' to='localhost' bare='False' version='{V2}'/></iq>"
    )


def test_the_reply_is_wrapped_as_the_result_of_the_servers_iq_in_the_version_it_came_in(harness):
    for version in (V1, V2):
        inner = (
            f"<iq xmlns='jabber:client' type='get' id='in' from='{USER}' to='juliet@localhost'><who xmlns='{NS}'/></iq>"
        )
        [outer] = harness.memory.receive(wrapped("w1", inner, version))
        assert (outer["type"], outer["id"], outer["to"], outer["from"]) == ("result", "w1", "localhost", "iq.localhost")
        [delegation] = list(outer.elements())
        assert (delegation.uri, delegation.name) == (version, "delegation")
        [forwarded] = list(delegation.elements())
        assert (forwarded.uri, forwarded.name) == ("urn:xmpp:forward:0", "forwarded")
        [iq] = list(forwarded.elements())
        assert (iq.uri, iq["type"], iq["id"], iq["to"], iq["from"]) == (
            "jabber:client",
            "result",
            "in",
            USER,
            "juliet@localhost",
        )
        [who] = list(iq.elements())
        assert (who.uri, who["bare"], who["version"]) == (NS, "True", version)


def test_an_iq_to_the_users_own_account_without_a_to_says_it_was_for_the_users_bare_jid(harness):
    # Prosody forwards an Iq to the user's own account with no to, whether it named the bare JID or nothing.
    reply = harness.ask_delegated(f"<iq type='get' id='a2'><who xmlns='{NS}'/></iq>", sender=USER, version=V2)
    assert "to='juliet@localhost'" in reply and "bare='True'" in reply and "recipient='none'" in reply
    assert "from=" not in reply.split(">")[0]  # answered from the user's own account, as the user addressed it


def test_a_responders_error_goes_to_the_user_inside_the_wrapper(harness):
    inner = (
        f"<iq xmlns='jabber:client' type='get' id='e1' from='{USER}' to='localhost'><who xmlns='{NS}' fail='1'/></iq>"
    )
    [outer] = harness.memory.receive(wrapped("w2", inner))
    assert outer["type"] == "result"
    iq = next(next(next(outer.elements()).elements()).elements())
    assert iq["type"] == "error" and iq["to"] == USER
    error = next(child for child in iq.elements() if child.name == "error")
    assert next(child.name for child in error.elements()) == "not-allowed"
    assert error.uri == "jabber:client"  # the error element is in the forwarded Iq's namespace, not forward:0


def test_a_request_sent_to_the_component_itself_is_not_delegated(harness):
    assert "delegated='no'" in harness.ask(f"<iq type='get'><who xmlns='{NS}'/></iq>")


@pytest.mark.parametrize("sender", ["juliet@localhost/balcony", "juliet@localhost", "evil.example", "iq.localhost"])
def test_only_the_trusted_server_may_forward_and_a_forged_wrapper_reaches_no_responder(harness, sender):
    inner = (
        f"<iq xmlns='jabber:client' type='get' id='f1' from='admin@localhost/x' to='localhost'><who xmlns='{NS}'/></iq>"
    )
    [reply] = harness.memory.receive(wrapped("w3", inner, sender=sender))
    assert (reply["type"], reply["id"], reply["to"]) == ("error", "w3", sender)
    assert "forbidden" in reply.toXml() and "admin@localhost" not in reply.toXml()


def test_the_trusted_servers_come_from_the_configuration(tmp_path):
    (tmp_path / "who.py").write_text(textwrap.dedent(MODULE))
    harness = HandlerHarness(tmp_path / "who.py", settings=make_settings(trusted_servers=("capulet.example",)))
    inner = f"<iq xmlns='jabber:client' type='get' id='t1' from='nurse@capulet.example/r'><who xmlns='{NS}'/></iq>"
    [refused] = harness.memory.receive(wrapped("w4", inner, sender="localhost"))
    assert refused["type"] == "error"
    [accepted] = harness.memory.receive(wrapped("w5", inner, sender="capulet.example"))
    assert accepted["type"] == "result" and "server='capulet.example'" in accepted.toXml()


@pytest.mark.parametrize(
    "inner",
    [
        "",
        "<forwarded xmlns='urn:xmpp:forward:0'/>",
        (
            "<forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='get' id='1' from='a@localhost/r'>"
            f"<who xmlns='{NS}'/></iq><iq xmlns='jabber:client' type='get' id='2' from='a@localhost/r'/></forwarded>"
        ),
        (
            "<forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='result' id='1' from='a@localhost/r'/>"
            "</forwarded>"
        ),
        (
            "<forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='get' id='1'>"
            f"<who xmlns='{NS}'/></iq></forwarded>"
        ),
        (
            "<forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='get' from='a@localhost/r'>"
            f"<who xmlns='{NS}'/></iq></forwarded>"
        ),
        (
            "<forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='get' id='1' from='a@localhost/r' "
            f"to='romeo@montague.example'><who xmlns='{NS}'/></iq></forwarded>"
        ),
        (
            "<forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='get' id='1' from='a@localhost/r' "
            f"to='romeo@localhost/phone'><who xmlns='{NS}'/></iq></forwarded>"
        ),
        (
            "<forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='get' id='1' from='@@bad'>"
            f"<who xmlns='{NS}'/></iq></forwarded>"
        ),
        "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='a@localhost/r'/></forwarded>",
        (
            f"<forwarded xmlns='urn:example:other'><iq xmlns='jabber:client' type='get' id='1' from='a@localhost/r'>"
            f"<who xmlns='{NS}'/></iq></forwarded>"
        ),
    ],
)
def test_a_malformed_delegation_is_answered_bad_request_and_the_stream_stays(harness, inner):
    [reply] = harness.memory.receive(
        f"<iq type='set' id='m1' from='localhost' to='iq.localhost'><delegation xmlns='{V2}'>{inner}</delegation></iq>"
    )
    assert (reply["type"], reply["id"], reply["to"]) == ("error", "m1", "localhost")
    assert "bad-request" in reply.toXml()
    assert "result" in harness.ask("<iq type='get'><direct xmlns='urn:example:direct'/></iq>")


def test_a_delegation_sent_as_a_get_is_refused(harness):
    inner = f"<iq xmlns='jabber:client' type='get' id='1' from='{USER}'><who xmlns='{NS}'/></iq>"
    [reply] = harness.memory.receive(wrapped("g1", inner).replace("type='set'", "type='get'", 1))
    assert reply["type"] == "error" and "bad-request" in reply.toXml()


def test_a_delegation_nested_in_a_delegated_iq_is_not_unwrapped_twice(harness):
    nested = wrapped(
        "x", f"<iq xmlns='jabber:client' type='get' id='n' from='admin@localhost/r'><who xmlns='{NS}'/></iq>"
    )
    nested = nested.replace("<iq type='set' id='x' from='localhost' to='iq.localhost'>", "").removesuffix("</iq>")
    reply = harness.ask_delegated(f"<iq type='set' id='n1' to='localhost'>{nested}</iq>", sender=USER)
    assert "type='error'" in reply and f"to='{USER}'" in reply and "admin@localhost" not in reply


def test_a_namespace_forwarded_but_never_asked_for_is_answered_service_unavailable_and_said_once(
    harness, caplog_twisted
):
    for _ in range(3):
        reply = harness.ask_delegated(
            "<iq type='get' to='localhost'><q xmlns='urn:example:unasked'/></iq>", sender=USER
        )
        assert "service-unavailable" in reply and f"to='{USER}'" in reply
    said = [line for line in caplog_twisted.text().splitlines() if "urn:example:unasked" in line]
    assert len(said) == 1 and "delegated=True" in said[0]


def test_delegated_requests_are_rate_limited_per_user_not_per_server(tmp_path):
    (tmp_path / "who.py").write_text(textwrap.dedent(MODULE))
    settings = make_settings()
    settings = type(settings)(**{**settings.__dict__, "limits": type(settings.limits)(sender_rate=1.0, sender_burst=2)})
    harness = HandlerHarness(tmp_path / "who.py", settings=settings)
    for n in range(10):  # ten users, one request each: more than one sender's burst, all from the one server
        assert "result" in harness.ask_delegated(f"<iq type='get'><who xmlns='{NS}'/></iq>", sender=f"u{n}@localhost/r")
    replies = [harness.ask_delegated(f"<iq type='get'><who xmlns='{NS}'/></iq>", sender=USER) for _ in range(3)]
    assert ["resource-constraint" in reply for reply in replies] == [False, False, True]
    assert f"to='{USER}'" in replies[2]  # inside the wrapper, to the user: the server's own Iq was answered


@pytest.mark.parametrize("version", [V1, V2])
@pytest.mark.parametrize("separator", ["::", ":bare:"])
def test_the_delegation_nodes_are_answered_with_the_namespace_as_a_feature(harness, version, separator):
    node = f"{version}{separator}{NS}"
    reply = harness.ask(
        f"<iq type='get'><query xmlns='http://jabber.org/protocol/disco#info' node='{node}'/></iq>", sender="localhost"
    )
    assert reply == (
        f"<iq type='result' id='1' to='localhost' from='iq.localhost'>"
        f"<query xmlns='http://jabber.org/protocol/disco#info' node='{node}'><feature var='{NS}'/></query></iq>"
    )


def test_a_delegation_node_of_a_namespace_not_asked_for_is_not_found(harness):
    reply = harness.ask(
        f"<iq type='get'><query xmlns='http://jabber.org/protocol/disco#info' node='{V1}::urn:example:direct'/></iq>",
        sender="localhost",
    )
    assert "item-not-found" in reply


def test_the_configuration_asks_for_namespaces_too(tmp_path):
    (tmp_path / "who.py").write_text(textwrap.dedent(MODULE))
    harness = HandlerHarness(
        DISCO, tmp_path / "who.py", settings=make_settings(delegated_namespaces=("urn:example:direct",))
    )
    asked = harness.component.delegations.asked
    assert list(asked) == [NS, "urn:example:direct"]
    assert asked[NS].endswith("who.py") and asked["urn:example:direct"] == "in-memory.toml [delegation] namespaces"
    node = f"{V2}::urn:example:direct"
    reply = harness.ask(f"<iq type='get'><query xmlns='http://jabber.org/protocol/disco#info' node='{node}'/></iq>")
    assert "feature var='urn:example:direct'" in reply
    assert "result" in harness.ask_delegated("<iq type='get' to='localhost'><d xmlns='urn:example:direct'/></iq>")


def advertise(harness, version, *namespaces, sender="localhost"):
    delegated = "".join(f"<delegated namespace='{ns}'><attribute name='node'/></delegated>" for ns in namespaces)
    return harness.memory.receive(
        f"<message from='{sender}' to='iq.localhost'><delegation xmlns='{version}'>{delegated}</delegation></message>"
    )


def test_advertisements_are_read_and_logged_once_per_namespace(harness, caplog_twisted):
    assert advertise(harness, V1, NS) == []  # nothing is answered to a message
    advertise(harness, V1, NS)  # ejabberd sends one per namespace and kind (server, bare JIDs)
    advertise(harness, V1, "urn:example:unasked")
    assert harness.component.delegations.granted == {"localhost": {NS: V1, "urn:example:unasked": V1}}
    said = [line for line in caplog_twisted.text().splitlines() if "delegates to iq.localhost" in line]
    assert said == [
        f"localhost delegates to iq.localhost ({V1}): {NS}",
        f"localhost delegates to iq.localhost ({V1}): urn:example:unasked (asked for by no responder)",
    ]


def test_an_advertisement_from_an_untrusted_sender_is_ignored_and_warned_about_once(harness, caplog_twisted):
    for _ in range(3):
        advertise(harness, V2, NS, sender="evil.example")
    assert harness.component.delegations.granted == {}
    said = [event for event in caplog_twisted if "Ignored a delegation advertisement" in caplog_twisted.format(event)]
    assert [event["log_level"].name for event in said] == ["warn", "debug", "debug"]


def test_ejabberds_to_is_answered_as_it_was_written(harness):
    inner = f"<iq xmlns='jabber:client' type='get' id='c1' from='{USER}' to='Juliet@LocalHost'><who xmlns='{NS}'/></iq>"
    [outer] = harness.memory.receive(wrapped("w9", inner, V1))
    iq = next(next(next(outer.elements()).elements()).elements())
    assert (iq["type"], iq["from"], iq["to"]) == ("result", "Juliet@LocalHost", USER)  # ejabberd checks from == to


def test_a_connection_lost_before_the_grant_check_cancels_it(harness, caplog_twisted):
    harness.memory.connect()
    harness.advance(3)
    harness.memory.disconnect()
    harness.advance(60)
    assert "did not grant" not in caplog_twisted.text()


def test_a_namespace_not_granted_in_time_is_said_once_with_what_to_configure(harness, caplog_twisted):
    harness.memory.connect()  # a connection: the servers advertise now
    harness.advance(9)
    assert "did not grant" not in caplog_twisted.text()
    harness.advance(1)
    [warning] = [line for line in caplog_twisted.text().splitlines() if "did not grant" in line]
    assert NS in warning and "who.py" in warning
    assert "delegations under the VirtualHost" in warning and "mod_delegation" in warning and "iq.localhost" in warning
    harness.memory.disconnect()
    harness.memory.connect()
    harness.advance(10)
    assert caplog_twisted.text().count("did not grant") == 1  # once per process, not per connection
    advertise(harness, V2, NS)
    assert f"Delegation of {NS} is granted now" in caplog_twisted.text()


def test_a_namespace_granted_in_time_is_not_warned_about(harness, caplog_twisted):
    harness.memory.connect()
    advertise(harness, V2, NS)
    harness.advance(60)
    assert "did not grant" not in caplog_twisted.text()


def test_a_forwarded_request_shows_the_grant_to_an_instance_that_missed_the_advertisement(harness, caplog_twisted):
    harness.memory.connect()
    harness.advance(10)
    assert "did not grant" in caplog_twisted.text()
    harness.ask_delegated(f"<iq type='get'><who xmlns='{NS}'/></iq>", sender=USER)
    assert harness.component.delegations.granted == {"localhost": {NS: V2}}
    assert "its delegation is granted" in caplog_twisted.text()
