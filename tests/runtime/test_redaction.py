"""Redaction of secret headers, transport keys and JSON fields before capture."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from workbench.events import Event, Outcome
from workbench.runtime.capture import CaptureSettings
from workbench.runtime.redaction import REDACTED, Redactor, compact_json


def http_event(headers: Any, data: bytes = b"", **transport: Any) -> Event:
    return Event(
        artifact="orders",
        kind="http",
        type="iwb.http.request",
        source="http://127.0.0.1/orders",
        data=data,
        datacontenttype="application/json",
        transport={"method": "POST", "path": "/orders", "headers": headers, **transport},
    )


SECRET_HEADERS = [
    ["Authorization", "Bearer abc"],
    ["proxy-authorization", "Basic eHl6"],
    ["Cookie", "session=1"],
    ["set-cookie", "id=2"],
    ["X-API-Key", "k-123"],
    ["x-hub-signature", "sha1=00"],
    ["X-Hub-Signature-256", "sha256=11"],
    ["x-twilio-signature", "tw=="],
    ["X-Shopify-Hmac-Signature", "custom suffix"],
    ["x-auth-token", "contains token"],
    ["X-CSRFToken", "contains token, any case"],
]
PLAIN_HEADERS = [
    ["content-type", "application/json"],
    ["user-agent", "curl/8"],
    ["x-request-id", "r-1"],
    ["signature-version", "not a -signature suffix"],
]


def test_headers_as_pairs_are_redacted_by_name_and_order_is_kept() -> None:
    headers = [*SECRET_HEADERS, *PLAIN_HEADERS]
    event = http_event(headers)
    red = Redactor().redact_event(event)
    out = red.transport["headers"]
    assert [name for name, _ in out] == [name for name, _ in headers]
    for name, value in out[: len(SECRET_HEADERS)]:
        assert value == REDACTED, name
    assert out[len(SECRET_HEADERS) :] == PLAIN_HEADERS
    # The input event is untouched, and the copy keeps its identity.
    assert event.transport["headers"][0] == ["Authorization", "Bearer abc"]
    assert (red.id, red.time, red.artifact) == (event.id, event.time, event.artifact)


def test_repeated_header_pairs_are_all_redacted() -> None:
    red = Redactor().redact_event(http_event([["cookie", "a=1"], ["cookie", "b=2"]]))
    assert red.transport["headers"] == [["cookie", REDACTED], ["cookie", REDACTED]]


def test_headers_as_a_dict_are_redacted() -> None:
    headers = {name: value for name, value in [*SECRET_HEADERS, *PLAIN_HEADERS]}
    event = http_event(headers)
    out = Redactor().redact_event(event).transport["headers"]
    for name, _ in SECRET_HEADERS:
        assert out[name] == REDACTED, name
    for name, value in PLAIN_HEADERS:
        assert out[name] == value
    assert event.transport["headers"]["Authorization"] == "Bearer abc"


def test_headers_under_other_transport_keys_and_nested_dicts() -> None:
    event = http_event(
        [],
        response_headers={"Set-Cookie": "x"},
        kafka={"headers": [["authorization", "t"], ["trace", "1"]]},
    )
    transport = Redactor().redact_event(event).transport
    assert transport["response_headers"] == {"Set-Cookie": REDACTED}
    assert transport["kafka"]["headers"] == [["authorization", REDACTED], ["trace", "1"]]


def test_transport_keys_matching_field_patterns_are_redacted() -> None:
    event = http_event(
        [],
        query={"api_key": "k", "page": "2"},
        password="hunter2",
        client_secret="s",
        mail={"credentials": {"user": "u"}, "subject": "hi"},
    )
    transport = Redactor().redact_event(event).transport
    assert transport["query"] == {"api_key": REDACTED, "page": "2"}
    assert transport["password"] == REDACTED
    assert transport["client_secret"] == REDACTED
    assert transport["mail"] == {"credentials": REDACTED, "subject": "hi"}
    assert transport["method"] == "POST"


def test_nested_json_fields_are_redacted_and_the_payload_is_compact() -> None:
    body = {
        "user": {"name": "ann", "Password": "p", "profile": {"API-Key": "k", "age": 3}},
        "items": [{"sku": "a", "secret_note": "s"}, [{"access_token": "t"}]],
        "private_key": {"pem": "-----BEGIN"},
        "apikey": None,
        "total": 3.5,
    }
    event = http_event([], data=json.dumps(body, indent=2).encode())
    red = Redactor().redact_event(event)
    assert red.data == compact_json(
        {
            "user": {
                "name": "ann",
                "Password": REDACTED,
                "profile": {"API-Key": REDACTED, "age": 3},
            },
            "items": [{"sku": "a", "secret_note": REDACTED}, [{"access_token": REDACTED}]],
            "private_key": REDACTED,
            "apikey": REDACTED,
            "total": 3.5,
        }
    ).encode()
    assert b"\n" not in red.data
    assert json.loads(event.data) == body  # the original payload is kept as it was


def test_escaped_and_non_ascii_keys_are_still_found() -> None:
    data = '{"\\u0070assword": "p", "名前": "ann", "Secret": "s"}'.encode()
    red = Redactor().redact_payload(data)
    assert json.loads(red) == {"password": REDACTED, "名前": "ann", "Secret": REDACTED}


def test_payloads_without_secrets_or_not_json_are_left_alone() -> None:
    redactor = Redactor()
    clean = b'{"order": 1, "items": [{"sku": "a"}]}'
    assert redactor.redact_payload(clean) is clean
    for data in (
        b"password=hunter2&user=ann",  # form data is not JSON
        b'{"password": "unterminated',
        b'"password"',  # a JSON scalar has no keys
        b"\xff\xfe binary",
        b"",
    ):
        assert redactor.redact_payload(data) is data
    event = http_event([], data=b"password=hunter2")
    assert Redactor().redact_event(event).data == b"password=hunter2"


def test_outcome_result_and_sent_entries_are_redacted() -> None:
    outcome = Outcome(event_id="e1", result={"token": "t", "ok": True, "nested": [{"secret": 1}]})
    outcome.record_sent(
        "http.request",
        url="https://api.example.com",
        headers=[["Authorization", "Bearer x"], ["accept", "*/*"]],
        body='{"password": "p", "n": 1}',
    )
    outcome.record_sent("http.response", status=200, headers={"set-cookie": "a", "x": "y"})
    red = Redactor().redact_outcome(outcome)
    assert red.result == {"token": REDACTED, "ok": True, "nested": [{"secret": REDACTED}]}
    assert red.sent[0]["headers"] == [["Authorization", REDACTED], ["accept", "*/*"]]
    assert json.loads(red.sent[0]["body"]) == {"password": REDACTED, "n": 1}
    assert red.sent[1]["headers"] == {"set-cookie": REDACTED, "x": "y"}
    assert outcome.result["token"] == "t"
    assert outcome.sent[0]["headers"][0] == ["Authorization", "Bearer x"]


def test_custom_rules_regex_fields_and_header_globs() -> None:
    redactor = Redactor(headers=["x-tenant-?d"], fields=[r"^pin$", "ssn"])
    event = http_event(
        [["X-Tenant-Id", "t1"], ["authorization", "kept: not in these rules"]],
        data=b'{"pin": "1234", "pins": [1], "user_ssn": "x", "password": "kept"}',
    )
    red = redactor.redact_event(event)
    assert red.transport["headers"] == [
        ["X-Tenant-Id", REDACTED],
        ["authorization", "kept: not in these rules"],
    ]
    assert json.loads(red.data) == {
        "pin": REDACTED,
        "pins": [1],
        "user_ssn": REDACTED,
        "password": "kept",
    }


def test_bad_patterns_are_rejected() -> None:
    with pytest.raises(ValueError, match="not a regular expression"):
        Redactor(fields=["(unclosed"])
    with pytest.raises(ValidationError, match="not a regular expression"):
        CaptureSettings.model_validate({"path": "x.db", "extra_redact_fields": ["[a-"]})
    with pytest.raises(ValidationError, match="must not be empty"):
        CaptureSettings.model_validate({"path": "x.db", "redact_headers": [""]})
    with pytest.raises(ValidationError, match="Extra inputs"):
        CaptureSettings.model_validate({"path": "x.db", "max_size": 1})


def test_settings_combine_default_and_extra_rules() -> None:
    settings = CaptureSettings.model_validate(
        {"path": "x.db", "extra_redact_headers": ["x-tenant"], "extra_redact_fields": ["pin"]}
    )
    redactor = settings.redactor()
    assert redactor.is_secret_header("X-Tenant")
    assert redactor.is_secret_header("authorization")
    assert redactor.is_secret_field("PIN")
    assert redactor.is_secret_field("password")
    assert not redactor.is_secret_field("name")


def test_headers_nested_in_transport_lists_follow_the_header_rule() -> None:
    """A batch event's records carry their own headers: they are redacted like any."""
    redactor = Redactor()
    transport = {
        "topic": "t",
        "records": [
            {"offset": 1, "headers": [["traceparent", "00-ab"], ["Authorization", "Bearer x"]]},
            {"offset": 2, "headers": [["X-Hub-Signature-256", "sha256=1"]]},
            {"offset": 3, "headers": []},
        ],
    }
    red = redactor.redact_transport(transport)
    assert red["records"][0]["headers"] == [["traceparent", "00-ab"], ["Authorization", REDACTED]]
    assert red["records"][1]["headers"] == [["X-Hub-Signature-256", REDACTED]]
    assert red["records"][2] is transport["records"][2]  # unchanged parts are shared
    assert transport["records"][0]["headers"][1][1] == "Bearer x"  # the input is untouched


def test_a_transport_without_any_pattern_word_is_returned_as_is() -> None:
    redactor = Redactor()
    transport = {"topic": "t", "records": [{"offset": i, "headers": []} for i in range(50)]}
    assert redactor.redact_transport(transport) is transport
    # a word in a value is enough to walk it; nothing is redacted there (it is no key)
    worded = {"topic": "token-rotation", "headers": [["x", "y"]]}
    assert redactor.redact_transport(worded) == worded
