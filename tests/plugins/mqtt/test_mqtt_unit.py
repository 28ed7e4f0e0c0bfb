"""The MQTT plugin without a broker: topics, configuration, events, properties, the
acknowledgement order."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import iwb_mqtt as mqtt
from iwb_mqtt.connection import encode_payload
from iwb_mqtt.message import (
    event_from_message,
    properties_from_transport,
    properties_to_paho,
    sniff_content_type,
)
from iwb_mqtt.session import Inbound
from iwb_mqtt.topics import check_filter, check_topic, example_topic, matches, shared_filter
from workbench.errors import TriggerConfigError

# --------------------------------------------------------------------------- topics


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("sensors/+/temp", "sensors/s1/temp", True),
        ("sensors/+/temp", "sensors/s1/humidity", False),
        ("sensors/+/temp", "sensors/a/b/temp", False),
        ("sensors/+/temp", "sensors//temp", True),          # an empty level is a level
        ("alerts/#", "alerts", True),                       # '#' includes the parent
        ("alerts/#", "alerts/fire/floor/2", True),
        ("alerts/#", "alert", False),
        ("#", "anything/at/all", True),
        ("#", "$SYS/broker/uptime", False),                 # wildcards skip $ topics
        ("+/broker/uptime", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("a/b", "a/b", True),
        ("a/b", "a/b/c", False),
        ("+", "a", True),
        ("+", "a/b", False),
        ("$share/g/sensors/+", "sensors/x", True),
    ],
)
def test_topic_matching(topic_filter: str, topic: str, expected: bool) -> None:
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "a+/b", "$share/g/a", "a\x00b"])
def test_bad_filters_are_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        check_filter(bad)
    assert repr(bad) in str(info.value) or "empty" in str(info.value)


def test_topic_names_examples_and_shared_filters() -> None:
    assert check_topic("a/b") == "a/b"
    for bad in ("a/+", "a/#", ""):
        with pytest.raises(ValueError):
            check_topic(bad)
    assert example_topic("sensors/+/temp") == "sensors/example/temp"
    assert example_topic("alerts/#") == "alerts/example"
    assert example_topic("#") == "example"
    assert shared_filter("a/+", "workers") == "$share/workers/a/+"
    assert shared_filter("a/+", None) == "a/+"


# --------------------------------------------------------------------------- configuration


def test_listener_configuration_is_checked_at_declaration() -> None:
    listener = mqtt.Listener(connection="main", topics=["a/+", "b/#"], qos=2,
                             client_id="iwb-1", clean_session=False, shared_group="g")
    assert listener.config.qos == 2 and listener.config.shared_group == "g"
    assert listener.address() == "mqtt a/+, b/# (shared group g)"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"topics": []}, "topics"),
        ({"topics": ["a/#/b"]}, "'#' must be a whole level and the last one"),
        ({"topics": ["$share/g/a"]}, "set shared_group= instead"),
        ({"topics": ["a", "a"]}, "listed twice"),
        ({"topics": ["a"], "qos": 3}, "qos"),
        ({"topics": ["a"], "clean_session": False}, "needs a stable client_id"),
        ({"topics": ["a"], "shared_group": "x/y"}, "must not contain /"),
        ({"topics": ["a/#"], "dead_letter_topic": "a/dead"}, "would come back to it"),
        ({"topics": ["a/+"], "dead_letter_topic": "dead/{topic}/x+"}, "wildcard"),
        ({"topics": ["a"], "bogus": 1}, "bogus"),
    ]
    for kwargs, message in cases:
        with pytest.raises(TriggerConfigError) as info:
            mqtt.Listener(connection="main", **kwargs)
        assert message in str(info.value), (kwargs, str(info.value))
    ok = mqtt.Listener(connection="main", topics=["a/+"], dead_letter_topic="dead/{topic}")
    assert ok.config.dead_letter_topic == "dead/{topic}"


def test_connection_config_accepts_protocol_spellings_and_masks_the_password() -> None:
    for spelling, protocol in (("5", "5"), (5, "5"), ("v5", "5"), ("3.1.1", "3.1.1"),
                               (4, "3.1.1"), ("311", "3.1.1")):
        assert mqtt.MqttConnectionConfig.model_validate({"protocol": spelling}).protocol \
            == protocol
    with pytest.raises(ValueError, match="not supported"):
        mqtt.MqttConnectionConfig.model_validate({"protocol": "6"})
    cfg = mqtt.MqttConnectionConfig(host="b", port=8883, password="s3cret", ca_certs="ca.pem")
    assert cfg.url == "mqtts://b:8883" and cfg.uses_tls
    described = mqtt.MqttConnection("main", cfg).describe()
    assert described["password"] == "****" and described["host"] == "b"


def test_payloads_encode_as_bytes_text_or_json() -> None:
    from pydantic import BaseModel

    class Model(BaseModel):
        a: int

    assert encode_payload(b"\x00raw") == (b"\x00raw", False)
    assert encode_payload("texté") == ("texté".encode(), False)
    assert encode_payload(None) == (b"", False)
    assert encode_payload({"a": [1, 2]}) == (b'{"a":[1,2]}', True)
    assert encode_payload(Model(a=1)) == (b'{"a":1}', True)
    with pytest.raises(mqtt.MqttPublishError, match="JSON-serialisable"):
        encode_payload({"a": object()})


# --------------------------------------------------------------------------- events


def paho_message(topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                 mid: int = 7, dup: bool = False, properties: Properties | None = None
                 ) -> MQTTMessage:
    message = MQTTMessage(mid=mid, topic=topic.encode())
    message.payload = payload
    message.qos = qos
    message.retain = retain
    message.dup = dup
    message.properties = properties
    return message


def test_a_mqtt311_message_becomes_an_event_with_a_sniffed_content_type() -> None:
    event = event_from_message(paho_message("s/1", b' {"a": 1}', dup=True, retain=True),
                               artifact="a", source="mqtt://h:1", handler="message")
    assert event.kind == "mqtt" and event.type == "iwb.mqtt.message"
    assert event.subject == "s/1" and event.source == "mqtt://h:1"
    assert event.datacontenttype == "application/json"
    assert event.transport == {"topic": "s/1", "qos": 1, "retain": True, "mid": 7,
                               "dup": True}
    assert sniff_content_type(b"[1]") == "application/json"
    assert sniff_content_type(b"42") is None and sniff_content_type(b"") is None
    assert sniff_content_type(b"{broken") == "application/json"  # binding says malformed
    view = mqtt.Message.from_event(event)
    assert view.topic == "s/1" and view.dup and view.retain and view.qos == 1
    assert view.json() == {"a": 1} and view.matches("s/+") and not view.matches("t/#")
    assert view.properties == {} and view.user_properties == []


def test_v5_properties_become_transport_fields_and_the_inject_mark_an_extension() -> None:
    props: Any = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = [("k", "v1"), ("iwb-inject", "mark-1"), ("k", "v2")]
    props.ContentType = "text/csv"
    props.ResponseTopic = "replies/1"
    props.CorrelationData = b"\xffid"
    props.MessageExpiryInterval = 60
    props.PayloadFormatIndicator = 1
    props.SubscriptionIdentifier = 4
    event = event_from_message(paho_message("s/1", b"a,b", properties=props),
                               artifact="a", source="mqtt://h:1", handler="message")
    assert event.datacontenttype == "text/csv"
    assert event.extensions == {"iwbinject": "mark-1"}
    fields = event.transport["properties"]
    assert fields == {
        "user_properties": [["k", "v1"], ["k", "v2"]],
        "content_type": "text/csv",
        "response_topic": "replies/1",
        "correlation_data": base64.b64encode(b"\xffid").decode(),
        "message_expiry_interval": 60,
        "payload_format_indicator": 1,
        "subscription_identifiers": [4],
    }
    mqtt.MqttTransport.model_validate(event.transport)  # the schema describes it
    json.dumps(event.to_dict())
    view = mqtt.Message.from_event(event)
    assert view.correlation_data == b"\xffid" and view.user_property("k") == "v1"
    assert view.subscription_identifiers == [4]
    publish = properties_from_transport(fields)
    assert "subscription_identifiers" not in publish  # the broker's to set
    assert publish["correlation_data"] == b"\xffid"
    paho: Any = properties_to_paho(publish)
    assert paho is not None
    assert paho.UserProperty == [("k", "v1"), ("k", "v2")]
    assert paho.CorrelationData == b"\xffid" and paho.ContentType == "text/csv"
    assert properties_to_paho(view.properties) is not None
    assert properties_to_paho({}) is None
    with pytest.raises(ValueError, match="unknown MQTT property 'colour'"):
        properties_to_paho({"colour": "red"})
    with pytest.raises(ValueError, match="payload_format_indicator"):
        properties_to_paho({"payload_format_indicator": 7})
    mapping: Any = properties_to_paho({"user_properties": {"a": "1"}})
    assert mapping.UserProperty == [("a", "1")]


# --------------------------------------------------------------------------- acknowledgements


async def test_acknowledgements_leave_in_arrival_order_or_as_settled() -> None:
    for in_order, expected in ((True, [1, 2, 3, 4]), (False, [3, 1, 4, 2])):
        client = aiomqtt.Client("127.0.0.1", 1)  # never connected
        inbound = Inbound(client, high_water=100, in_order=in_order)
        sent: list[tuple[int, int]] = []

        def recorder(qos: int, sent: list[tuple[int, int]] = sent) -> Any:
            def send(packet_id: int) -> int:
                sent.append((qos, packet_id))
                return 0
            return send

        inbound._send = {1: recorder(1), 2: recorder(2)}
        paho: Any = client._client
        for mid in (1, 2, 3, 4):
            paho.on_message(paho, None, paho_message("t", b"", mid=mid, qos=1 + mid % 2))
        paho.on_message(paho, None, paho_message("t", b"", mid=0, qos=0))
        deliveries = [(await inbound.get())[1] for _ in range(5)]
        assert deliveries[4] is None  # QoS 0: nothing to acknowledge
        assert inbound.unacked == 4
        for index in (2, 0, 3, 1):
            inbound.settle(deliveries[index])
            inbound.settle(deliveries[index])  # settling twice acknowledges once
        inbound.settle(None)
        assert [mid for _, mid in sent] == expected
        assert dict((mid, qos) for qos, mid in sent) == {1: 2, 2: 1, 3: 2, 4: 1}
        assert inbound.unacked == 0 and inbound.acked == 4
        if in_order:
            # in order: nothing leaves until the first message is settled
            assert sent[0] == (2, 1)
