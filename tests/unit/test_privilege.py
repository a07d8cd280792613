"""Privileged entity (XEP-0356, component/privilege.py): the advertised permissions and the helpers that use them."""

import textwrap
from pathlib import Path

import pytest
from twisted.words.xish import domish

from component import MissingPrivilege, RosterItem
from component.errors import IqError
from component.metrics import Metrics
from component.privilege import PrivilegeGrants, parse_advertisement
from component.testing import HandlerHarness, InMemoryComponent, make_settings, parse_stanzas
from component.tracker import random_id

P1, P2 = "urn:xmpp:privilege:1", "urn:xmpp:privilege:2"


@pytest.fixture
def harness():
    return HandlerHarness()


def results(deferred):
    outcome = []
    deferred.addBoth(outcome.append)
    return outcome


def element(xml):
    [parsed] = parse_stanzas(xml)
    return parsed


def test_ejabberds_advertisement_is_read():
    privilege = element(
        f"<privilege xmlns='{P1}'><perm access='message' type='outgoing'/><perm access='roster' type='both'/>"
        "<perm access='presence' type='none'/></privilege>"
    )
    privileges = parse_advertisement("localhost", "iq.localhost", privilege)
    assert (privileges.version, privileges.roster, privileges.message, privileges.presence, dict(privileges.iq)) == (
        P1,
        "both",
        "outgoing",
        "none",
        {},
    )


def test_prosodys_advertisement_is_read_with_its_nested_iq_namespaces():
    # Prosody 0.12's mod_privilege leaves each <namespace/> open, so the next one lands inside it.
    privilege = element(
        f"<privilege xmlns='{P2}'><perm access='roster' type='get'/><perm access='iq'>"
        "<namespace ns='jabber:iq:roster' type='get'><namespace ns='urn:xmpp:mam:2' type='both'/></namespace>"
        "</perm></privilege>"
    )
    privileges = parse_advertisement("localhost", "iq.localhost", privilege)
    assert dict(privileges.iq) == {"jabber:iq:roster": "get", "urn:xmpp:mam:2": "both"}
    assert privileges.may_query("urn:xmpp:mam:2", "set") and not privileges.may_query("jabber:iq:roster", "set")
    assert privileges.describe() == (
        "roster get, message none, presence none, iq jabber:iq:roster (get), urn:xmpp:mam:2 (both)"
    )


def test_the_advertisement_is_logged_and_exposed(harness, caplog_twisted):
    harness.grant(roster="both", message="outgoing", iq={"jabber:iq:roster": "get"})
    granted = harness.component.privileged.granted()
    assert (granted.server, granted.jid, granted.roster, granted.message) == (
        "localhost",
        "iq.localhost",
        "both",
        "outgoing",
    )
    assert harness.component.facade.privileged.granted() == granted
    assert (
        f"localhost grants iq.localhost privileges ({P2}): roster both, message outgoing, presence none, "
        "iq jabber:iq:roster (get)" in caplog_twisted.text()
    )


def test_an_advertisement_from_anyone_but_the_server_is_ignored_and_warned_about_once(harness, caplog_twisted):
    for _ in range(3):
        harness.memory.receive(
            f"<message from='mallory@localhost/x' to='iq.localhost'><privilege xmlns='{P2}'>"
            "<perm access='roster' type='both'/></privilege></message>"
        )
    assert harness.component.privileged.granted().roster == "none"
    warnings = [
        event for event in caplog_twisted if "Ignored a privilege advertisement" in caplog_twisted.format(event)
    ]
    assert [event["log_level"].name for event in warnings] == ["warn", "debug", "debug"]


def test_the_permissions_are_exported_as_metrics():
    metrics = Metrics(lambda namespace: False)
    grants = PrivilegeGrants(["localhost"], metrics)
    privilege = element(f"<privilege xmlns='{P2}'><perm access='roster' type='get'/></privilege>")
    grants.advertised("localhost", "iq.localhost", privilege)
    privilege = element(
        f"<privilege xmlns='{P2}'><perm access='roster' type='both'/><perm access='iq'>"
        "<namespace ns='urn:example' type='set'/></perm></privilege>"
    )
    grants.advertised("localhost", "iq.localhost", privilege)  # a new advertisement replaces the old one
    samples = {
        (sample.labels["access"], sample.labels["type"]): sample.value
        for metric in metrics.privileges.collect()
        for sample in metric.samples
    }
    assert samples == {
        ("roster", "both"): 1.0,
        ("message", "none"): 1.0,
        ("presence", "none"): 1.0,
        ("iq:urn:example", "set"): 1.0,
    }


def test_a_roster_get_goes_to_the_users_bare_jid_and_comes_back_as_items(harness):
    harness.grant(roster="get")
    outcome = results(harness.component.privileged.roster("Juliet@localhost/balcony"))
    [query] = harness.queries()
    assert query == (
        "<iq type='get' id='q1' to='juliet@localhost' from='iq.localhost'><query xmlns='jabber:iq:roster'/></iq>"
    )
    harness.answer(
        query,
        "<query xmlns='jabber:iq:roster'><item jid='romeo@montague.example' name='Romeo' subscription='both'>"
        "<group>Lovers</group><group>Montagues</group></item><item jid='nurse@localhost' ask='subscribe'/></query>",
    )
    assert outcome == [
        [
            RosterItem("romeo@montague.example", "Romeo", "both", None, ("Lovers", "Montagues")),
            RosterItem("nurse@localhost", None, "none", "subscribe", ()),
        ]
    ]


def test_without_any_advertisement_every_helper_fails_at_once_and_says_so(harness):
    privileged = harness.component.privileged
    message = domish.Element((None, "message"))
    message["from"], message["to"] = "localhost", "juliet@localhost"
    failures = [
        results(privileged.roster("juliet@localhost"))[0].value,
        results(privileged.set_roster("juliet@localhost", []))[0].value,
        results(privileged.query("juliet@localhost", domish.Element(("urn:example", "q"))))[0].value,
        results(privileged.send_message(message))[0].value,
    ]
    for failure in failures:
        assert isinstance(failure, MissingPrivilege)
        assert "localhost advertised no privileges to iq.localhost" in str(failure)
    assert harness.queries() == [] and harness.sent_messages() == []


@pytest.mark.parametrize(
    ("granted", "call", "needed"),
    [
        ("set", lambda p: p.roster("juliet@localhost"), "roster get"),
        ("get", lambda p: p.set_roster("juliet@localhost", [RosterItem("romeo@localhost")]), "roster set"),
    ],
)
def test_a_missing_roster_permission_is_named(harness, granted, call, needed):
    harness.grant(roster=granted)
    [failure] = results(call(harness.component.privileged))
    assert isinstance(failure.value, MissingPrivilege)
    assert f"needs the privilege {needed}, but localhost granted iq.localhost roster {granted}" in str(failure.value)
    assert harness.queries() == []


def test_a_roster_set_sends_the_items_and_a_removal(harness):
    harness.grant(roster="both")
    outcome = results(
        harness.component.privileged.set_roster(
            "juliet@localhost",
            [
                RosterItem("romeo@localhost", "Romeo", groups=("Lovers",)),
                RosterItem("tybalt@localhost", subscription="remove"),
            ],
        )
    )
    [query] = harness.queries()
    assert query == (
        "<iq type='set' id='q1' to='juliet@localhost' from='iq.localhost'><query xmlns='jabber:iq:roster'>"
        "<item jid='romeo@localhost' name='Romeo'><group>Lovers</group></item>"
        "<item jid='tybalt@localhost' subscription='remove'/></query></iq>"
    )
    harness.answer(query)
    assert outcome == [None]


def test_a_privileged_iq_the_server_failed_to_send_fails_with_the_servers_error(harness):
    # Prosody's mod_privilege answers the component's own Iq with an error when the one it wrapped failed.
    harness.grant(iq={"urn:example": "get"})
    outcome = results(harness.component.privileged.query("juliet@localhost", domish.Element(("urn:example", "q"))))
    [query] = harness.queries()
    harness.answer(
        query,
        "<error type='cancel'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
        type="error",
    )
    assert isinstance(outcome[0].value, IqError) and outcome[0].value.condition == "internal-server-error"


def test_a_server_refusing_a_roster_set_fails_it_with_the_servers_error(harness):
    harness.grant(roster="both", version=P1)
    outcome = results(harness.component.privileged.set_roster("juliet@localhost", [RosterItem("romeo@localhost")]))
    for query in harness.queries():
        harness.answer(
            query,
            "<error type='cancel'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
            type="error",
        )
    assert isinstance(outcome[0].value, IqError) and outcome[0].value.condition == "internal-server-error"


def test_a_message_as_the_server_is_wrapped_and_sent_to_the_server(harness):
    harness.grant(message="outgoing", version=P1)
    message = domish.Element((None, "message"))
    message["from"], message["to"], message["type"] = "localhost", "juliet@localhost", "headline"
    body = message.addElement("body", content="The feast is tonight")
    assert results(harness.component.privileged.send_message(message)) == [None]
    assert body.parent is message  # the caller's message is left as it was
    [sent] = harness.sent_messages()
    assert sent.startswith("<message from='iq.localhost' to='localhost' id='")
    assert sent.replace(sent[sent.index(" id='") : sent.index("'>") + 1], "") == (
        f"<message from='iq.localhost' to='localhost'><privilege xmlns='{P1}'>"
        "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='localhost' to='juliet@localhost' "
        "type='headline'><body>The feast is tonight</body></message></forwarded></privilege></message>"
    )


@pytest.mark.parametrize("sender", [None, "juliet@localhost/balcony", "bad jid@localhost"])
def test_a_message_as_the_server_needs_the_server_or_a_bare_jid_as_its_sender(harness, sender):
    harness.grant(message="outgoing")
    message = domish.Element((None, "message"))
    message["to"] = "juliet@localhost"
    if sender is not None:
        message["from"] = sender
    [failure] = results(harness.component.privileged.send_message(message))
    assert isinstance(failure.value, ValueError) and "needs a from" in str(failure.value)
    assert harness.sent_messages() == []


def test_a_message_without_the_message_permission_is_not_sent(harness):
    harness.grant(roster="both")
    message = domish.Element((None, "message"))
    message["from"], message["to"] = "romeo@localhost", "juliet@localhost"
    [failure] = results(harness.component.privileged.send_message(message))
    assert "needs the privilege message outgoing, but localhost granted iq.localhost message none" in str(failure.value)
    assert harness.sent_messages() == []


def test_a_privileged_iq_is_sent_as_the_user_and_its_answer_unwrapped(harness):
    harness.grant(iq={"jabber:iq:roster": "get"})
    outcome = results(
        harness.component.privileged.query("juliet@localhost", domish.Element(("jabber:iq:roster", "query")))
    )
    [query] = harness.queries()
    [sent] = parse_stanzas(query)
    inner = next(next(sent.elements(P2, "privileged_iq")).elements("jabber:client", "iq"))
    assert (sent["to"], sent["from"], sent["type"]) == ("juliet@localhost", "iq.localhost", "get")
    assert (inner["from"], inner["type"], inner.hasAttribute("to")) == ("juliet@localhost", "get", False)
    harness.answer(
        query,
        f"<privilege xmlns='{P2}'><forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='result' "
        f"id='{inner['id']}' to='juliet@localhost'><query xmlns='jabber:iq:roster'><item jid='romeo@localhost'/>"
        "</query></iq></forwarded></privilege>",
    )
    [answer] = outcome
    assert answer["type"] == "result" and next(answer.elements()).uri == "jabber:iq:roster"


def test_a_privileged_iq_answered_with_an_error_fails_with_it(harness):
    harness.grant(iq={"urn:example": "both"})
    outcome = results(
        harness.component.privileged.query(
            "juliet@localhost", domish.Element(("urn:example", "q")), "set", to="localhost"
        )
    )
    [query] = harness.queries()
    assert "to='localhost'" in query.split("privileged_iq")[1]
    harness.answer(
        query,
        f"<privilege xmlns='{P2}'><forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='error'>"
        "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        "</forwarded></privilege>",
    )
    assert isinstance(outcome[0].value, IqError) and outcome[0].value.condition == "item-not-found"


def test_a_privileged_iq_needs_its_namespace_and_type_and_privilege_2(harness):
    harness.grant(iq={"urn:example": "get"})
    [failure] = results(
        harness.component.privileged.query("juliet@localhost", domish.Element(("urn:example", "q")), "set")
    )
    assert "needs the privilege iq urn:example set, but localhost granted iq.localhost iq urn:example get" in str(
        failure.value
    )
    harness.grant(roster="both", version=P1)
    [failure] = results(harness.component.privileged.query("juliet@localhost", domish.Element(("urn:example", "q"))))
    assert isinstance(failure.value, MissingPrivilege) and "no privileged Iqs" in str(failure.value)
    assert harness.queries() == []


def test_a_helper_given_no_users_jid_fails_with_value_error(harness):
    harness.grant(roster="both")
    for user in ("localhost", "not a jid@@"):
        [failure] = results(harness.component.privileged.roster(user))
        assert isinstance(failure.value, ValueError)


def test_with_an_instance_name_only_what_that_name_was_granted_counts(tmp_path):
    # A query under the shared name may be answered to another instance: the instance's own grant is needed.
    memory = InMemoryComponent(settings=make_settings(instance_jid="iq-1.localhost"))
    privileged = memory.component.privileged
    memory.receive(
        f"<message from='localhost' to='iq.localhost'><privilege xmlns='{P2}'><perm access='roster' type='get'/>"
        "</privilege></message>"
    )
    [failure] = results(privileged.roster("juliet@localhost"))
    assert "advertised no privileges to iq-1.localhost" in str(failure.value)
    assert memory.sent() == [] and memory.sent(instance=True) == []
    memory.receive(
        f"<message from='localhost' to='iq-1.localhost'><privilege xmlns='{P2}'><perm access='roster' type='get'/>"
        "</privilege></message>",
        instance=True,
    )
    privileged.roster("juliet@localhost")
    [query] = memory.sent(instance=True)
    assert query["from"] == "iq-1.localhost"


def test_the_grants_of_a_lost_stream_are_forgotten_and_leave_the_metrics(tmp_path):
    from prometheus_client import generate_latest

    memory = InMemoryComponent(settings=make_settings(metrics_endpoint="tcp:port=0:interface=127.0.0.1"))
    memory.receive(
        f"<message from='localhost' to='iq.localhost'><privilege xmlns='{P2}'><perm access='roster' type='get'/>"
        "</privilege></message>"
    )
    assert "iqresponder_privilege{" in generate_latest(memory.component.metrics.registry).decode()
    memory.disconnect()
    assert memory.component.privileged.granted().version is None
    assert "iqresponder_privilege{" not in generate_latest(memory.component.metrics.registry).decode()


def test_a_missing_privilege_escaping_a_responder_answers_service_unavailable(tmp_path):
    (tmp_path / "roster.py").write_text(
        textwrap.dedent(
            """
            from component import responder

            @responder("urn:example:contacts")
            async def contacts(request):
                await request.component.privileged.roster(request.sender.userhost())
            """
        )
    )
    harness = HandlerHarness(tmp_path / "roster.py")
    reply = harness.ask("<iq type='get'><q xmlns='urn:example:contacts'/></iq>")
    assert "service-unavailable" in reply and "permission" in reply


def test_a_trusted_servers_error_message_is_logged(harness, caplog_twisted):
    harness.memory.receive(
        "<message type='error' from='localhost' to='iq.localhost'><error type='auth'>"
        "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    )
    harness.memory.receive(
        "<message type='error' from='mallory@localhost/x' to='iq.localhost'><error type='auth'>"
        "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    )
    said = [line for line in caplog_twisted.text().splitlines() if "refused a message" in line]
    assert said == ["localhost refused a message the component sent as it: forbidden"]


def test_no_query_or_keepalive_id_starts_with_keepalive():
    # ejabberd 24.10 and later crash mod_privilege on component Iqs whose ids start with "keepalive:" (issue 4609).
    assert not any(random_id().startswith("keepalive:") or ":" in random_id() for _ in range(10000))
    memory = InMemoryComponent(keepalive=True)
    memory.clock.advance(memory.settings.keepalive_interval)
    [ping] = memory.sent()
    assert ping.firstChildElement().uri == "urn:xmpp:ping" and not ping["id"].startswith("keepalive")


def test_the_running_components_metrics_show_the_grants_and_delegations():
    from prometheus_client import generate_latest

    memory = InMemoryComponent(settings=make_settings(metrics_endpoint="tcp:port=0:interface=127.0.0.1"))
    memory.receive(
        f"<message from='localhost' to='iq.localhost'><privilege xmlns='{P2}'><perm access='roster' type='get'/>"
        "</privilege></message><message from='localhost' to='iq.localhost'>"
        "<delegation xmlns='urn:xmpp:delegation:2'><delegated namespace='jabber:iq:private'/></delegation></message>"
    )
    text = generate_latest(memory.component.metrics.registry).decode()
    assert 'iqresponder_privilege{access="roster",jid="iq.localhost",server="localhost",type="get"} 1.0' in text
    assert 'iqresponder_delegated{namespace="jabber:iq:private",server="localhost"} 1.0' in text


def test_stray_text_prosody_writes_after_refusing_a_privileged_iq_costs_nothing():
    # Prosody 0.12's mod_privilege sends the byte count of its error as text between stanzas.
    harness = HandlerHarness(Path(__file__).parents[2] / "handlers" / "ping.py")
    harness.memory.receive(
        "<iq type='error' id='e2' from='alice@localhost' to='iq.localhost'><error type='auth'>"
        "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>294"
    )
    assert harness.ask("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>") == (
        "<iq type='result' id='1' to='tester@localhost/test' from='iq.localhost'/>"
    )
