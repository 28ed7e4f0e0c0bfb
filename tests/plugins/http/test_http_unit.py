"""The HTTP plugin's pieces without sockets: routes, config, binding, replies, the OpenAPI
document and samples."""

from __future__ import annotations

import enum
import inspect
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

import pytest
from http_support import make_context
from pydantic import BaseModel, Field, TypeAdapter

import iwb_http as http
from iwb_http.responses import render_outcome, render_value
from iwb_http.routing import RouteTable, parse_template
from workbench.errors import TriggerConfigError
from workbench.events import ErrorInfo, Event, Outcome
from workbench.plugin import BindingError, HandlerSpec
from workbench.samples import example_from_schema


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    zip: str = Field(pattern=r"^\d{5}$", examples=["12345"])


class Line(BaseModel):
    sku: str = Field(min_length=3, max_length=12)
    quantity: int = Field(ge=1, le=10)
    price: float = Field(gt=0)


class Order(BaseModel):
    id: UUID
    customer: str = Field(examples=["ada@example.com"])
    colour: Colour
    kind: Literal["retail", "wholesale"]
    lines: list[Line] = Field(min_length=1)
    ship_to: Address
    note: str | None = None
    placed: datetime
    gift: bool = False
    tags: dict[str, str] = {}


class Receipt(BaseModel):
    order_id: UUID
    total: float


def make_service() -> http.Service:
    api = http.Service(name="shop", port=8080, base_path="/shop", title="Shop")

    @api.post("/orders", status=201, summary="Place an order")
    async def place(order: Order, request: http.Request) -> Receipt:
        """Place an order.

        Longer text."""
        return Receipt(order_id=order.id, total=1.0)

    @api.get("/orders/{order_id}")
    async def read(
        order_id: int,
        colour: Colour = Colour.RED,
        tags: list[int] | None = None,
        page: Annotated[int, http.Query("p")] = 1,
        trace: Annotated[str | None, http.Header()] = None,
        tenant: Annotated[str, http.Header("X-Tenant")] = "public",
        event: Event | None = None,
    ) -> Order | None:
        return None

    @api.get("/search")
    async def search(q: str, limit: int, key: Annotated[str, http.Header("X-Key")]) -> list[Line]:
        return []

    @api.put("/files/{rest:path}")
    async def upload(rest: str, body: str) -> str:
        return rest

    return api


def spec(api: http.Service, key: str) -> HandlerSpec:
    return api.handlers[key]


def extractor(api: http.Service, key: str, name: str) -> Any:
    handler = spec(api, key)
    param = inspect.signature(handler.func).parameters[name]
    return http.HttpTrigger.param_extractor(param, param.annotation, handler)


def http_event(**transport: Any) -> Event:
    return Event(artifact="shop", kind="http", type="iwb.http.request", source="t",
                 transport=transport)


# ------------------------------------------------------------------ routes and config


def test_templates_parse_and_match() -> None:
    t = parse_template("/orders/{order_id}/lines/{line}/")
    assert t.path == "/orders/{order_id}/lines/{line}"
    assert t.names == ("order_id", "line")
    assert t.quart_rule == "/orders/<order_id>/lines/<line>"
    assert t.regex is not None and t.regex.match("/orders/1/lines/2")
    assert not t.regex.match("/orders/1/lines/2/3")
    assert parse_template("/f/{rest:path}").quart_rule == "/f/<path:rest>"
    assert parse_template("x").path == "/x" and parse_template("/").regex is None
    for bad in ("/{x:uuid}", "/{a}/{a}", "/{bad-name}", "/{open"):
        with pytest.raises(TriggerConfigError):
            parse_template(bad)


def test_route_table_prefers_static_paths_and_ignores_trailing_slashes() -> None:
    api = http.Service(name="t", port=1)

    @api.get("/items/{item_id}")
    async def one(item_id: int) -> None: ...

    @api.get("/items/special")
    async def special() -> None: ...

    @api.post("/items")
    async def add() -> None: ...

    table = RouteTable.from_meta(api.handlers)
    routes, params = table.match("/items/special") or ({}, {})
    assert routes["GET"].key == "GET /items/special" and params == {}
    routes, params = table.match("/items/42") or ({}, {})
    assert routes["GET"].key == "GET /items/{item_id}" and params == {"item_id": "42"}
    assert table.match("/items") is not None and table.match("/nothing") is None


def test_service_config_is_validated() -> None:
    api = http.Service(name="x", port=0, base_path="/v1/")
    assert api.config.base_path == "/v1" and api.config.host == "127.0.0.1"
    assert api.config.max_body == 1_048_576
    assert http.Service(port=1, base_path="/").config.base_path == ""
    with pytest.raises(TriggerConfigError, match="prot"):
        http.Service(prot=80)
    with pytest.raises(TriggerConfigError, match="base_path"):
        http.Service(port=1, base_path="v1")
    with pytest.raises(TriggerConfigError, match="port"):
        http.Service(port=70000)
    with pytest.raises(TriggerConfigError, match="allow_origin"):
        http.Service(port=1, cors={"allow_origin": ["*"]})
    with pytest.raises(TriggerConfigError, match="FETCH"):
        api.route("FETCH", "/")
    with pytest.raises(TriggerConfigError, match="status"):
        api.get("/", status=999)

    @api.get("/a")
    async def first() -> None: ...

    with pytest.raises(TriggerConfigError, match="already has a handler for 'GET /a'"):
        api.get("/a/")(first)
    assert api.handlers["GET /a"].meta == {
        "method": "GET", "path": "/a", "status": None, "summary": None,
    }
    assert api.address() == "http://127.0.0.1:0/v1"


def test_trigger_describes_its_transport() -> None:
    schema = http.HttpTrigger.transport_schema()
    assert {"method", "path", "query", "query_string", "headers", "path_params"} <= set(
        schema["properties"]
    )
    assert http.HttpTrigger.connection_kinds == (http.HttpConnection,)
    assert http.HttpTrigger.artifact_class is http.Service


def test_import_is_light() -> None:
    code = (
        "import sys, iwb_http\n"
        "print([m for m in ('quart', 'hypercorn', 'uvicorn', 'httpx', 'werkzeug')"
        " if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


# ------------------------------------------------------------------ binding


def test_path_parameters_convert_to_their_annotation() -> None:
    api = make_service()
    extract = extractor(api, "GET /orders/{order_id}", "order_id")
    assert extract(http_event(path_params={"order_id": "42"})) == 42
    with pytest.raises(BindingError) as info:
        extract(http_event(path_params={"order_id": "forty"}))
    assert info.value.kind == "validation"
    assert info.value.details[0]["loc"] == ["path", "order_id"]
    assert info.value.details[0]["type"] == "int_parsing"
    rest = extractor(api, "PUT /files/{rest:path}", "rest")
    assert rest(http_event(path_params={"rest": "a/b.txt"})) == "a/b.txt"


def test_query_parameters_bind_by_name_with_defaults() -> None:
    api = make_service()
    key = "GET /orders/{order_id}"
    colour = extractor(api, key, "colour")
    assert colour(http_event(query={"colour": ["blue"]})) is Colour.BLUE
    assert colour(http_event(query={})) is Colour.RED
    with pytest.raises(BindingError) as info:
        colour(http_event(query={"colour": ["green"]}))
    assert info.value.details[0]["loc"] == ["query", "colour"]
    tags = extractor(api, key, "tags")
    assert tags(http_event(query={"tags": ["1", "2"]})) == [1, 2]
    assert tags(http_event(query={})) is None
    page = extractor(api, key, "page")
    assert page(http_event(query={"p": ["3"], "page": ["9"]})) == 3
    # A fixture with only the raw query string still binds.
    assert page(http_event(query_string="p=5")) == 5
    limit = extractor(api, "GET /search", "limit")
    with pytest.raises(BindingError) as missing:
        limit(http_event(query={}))
    assert missing.value.kind == "missing"
    assert missing.value.details == [
        {"loc": ["query", "limit"], "msg": "Field required", "type": "missing"}
    ]


def test_headers_bind_case_insensitively() -> None:
    api = make_service()
    key = "GET /orders/{order_id}"
    trace = extractor(api, key, "trace")
    tenant = extractor(api, key, "tenant")
    event = http_event(headers=[["Trace", "t-1"], ["x-tenant", "acme"]])
    assert trace(event) == "t-1" and tenant(event) == "acme"
    assert trace(http_event(headers=[])) is None and tenant(http_event()) == "public"
    required = extractor(api, "GET /search", "key")
    with pytest.raises(BindingError) as info:
        required(http_event(headers=[]))
    assert info.value.details[0]["loc"] == ["header", "x-key"]


def test_bodies_and_transport_types_are_left_to_the_runtime() -> None:
    api = make_service()
    assert extractor(api, "POST /orders", "order") is None
    assert extractor(api, "POST /orders", "request") is None
    assert extractor(api, "GET /orders/{order_id}", "event") is None
    # `body: str` is the request text (the runtime's payload name), not a query parameter.
    assert extractor(api, "PUT /files/{rest:path}", "body") is None


def test_request_view_reads_the_transport() -> None:
    event = http_event(method="POST", path="/shop/orders", route="/orders",
                       query={"a": ["1", "2"]}, headers=[["X-A", "1"], ["x-a", "2"]],
                       client=["10.0.0.1", 5000], path_params={})
    event.data = b'{"k": 1}'
    event.datacontenttype = "application/json"
    request = http.Request.from_event(event)
    assert (request.method, request.path, request.route) == ("POST", "/shop/orders", "/orders")
    assert request.query.get("a") == "1" and request.query.getlist("a") == ["1", "2"]
    assert request.query["a"] == ["1", "2"] and request.query.get("zz", "d") == "d"
    assert request.headers["X-a"] == "1, 2" and request.headers.getlist("X-A") == ["1", "2"]
    assert "x-A" in request.headers and request.client == ("10.0.0.1", 5000)
    assert request.json() == {"k": 1} and request.content_type == "application/json"


# ------------------------------------------------------------------ replies


def test_return_values_render_as_documented() -> None:
    assert render_value(None, None) == (204, [], b"")
    assert render_value(None, 202) == (202, [], b"")
    assert render_value({"a": 1}, 201) == (201, [("content-type", "application/json")],
                                           b'{"a":1}')
    status, _, body = render_value(Receipt(order_id=UUID(int=1), total=2), None)
    assert status == 200 and json.loads(body)["total"] == 2.0
    assert render_value("hi", None)[1] == [("content-type", "text/plain; charset=utf-8")]
    assert render_value(b"\x00", None)[1] == [("content-type", "application/octet-stream")]
    assert render_value(([1], 202), None) == (202, [("content-type", "application/json")],
                                              b"[1]")
    assert render_value(("x", 418, {"X-Y": "z"}), None)[1][-1] == ("X-Y", "z")
    resp = http.Response({"a": 1}, status=202, headers={"Content-Type": "application/vnd+json"})
    assert render_value(resp, None) == (202, [("Content-Type", "application/vnd+json")],
                                        b'{"a":1}')


def problem_of(outcome: Outcome) -> tuple[int, dict[str, Any]]:
    status, headers, body = render_outcome(outcome, None, "/x")
    assert ("content-type", "application/problem+json") in headers
    return status, json.loads(body)


def test_errors_render_as_problem_details() -> None:
    cases = {
        "MalformedPayload": 400, "UnsupportedMediaType": 415, "ValidationError": 422,
        "HandlerTimeout": 504, "KeyError": 500,
    }
    for error_type, expected in cases.items():
        outcome = Outcome("ev1", status="error", error=ErrorInfo(
            error_type, "secret detail", traceback="Traceback ...",
            details=[{"loc": ["body", "a"], "msg": "bad", "type": "t", "input": "x" * 9}],
        ))
        status, doc = problem_of(outcome)
        assert status == expected, error_type
        assert doc["status"] == expected and doc["event_id"] == "ev1"
        assert doc["type"] == "about:blank" and doc["instance"] == "/x"
        assert "Traceback" not in json.dumps(doc)
        if expected == 422:
            assert doc["errors"] == [{"loc": ["body", "a"], "msg": "bad", "type": "t"}]
        else:
            assert "errors" not in doc
        if expected == 500:
            assert "secret" not in doc["detail"]
    live = Outcome("ev2", status="error", error=ErrorInfo("HTTPError", "nope", details=[
        {"status": 409}]))
    live.exception = http.HTTPError(409, "nope", headers={"Retry-After": "3"})
    status, headers, _ = render_outcome(live, None, "/x")
    assert status == 409 and ("Retry-After", "3") in headers
    stored = Outcome("ev3", status="error", error=ErrorInfo("HTTPError", "gone", details=[
        {"status": 410}]))
    assert problem_of(stored) == (410, {"type": "about:blank", "title": "Gone", "status": 410,
                                        "detail": "gone", "instance": "/x", "event_id": "ev3"})
    assert http.HTTPError(404).details == [{"status": 404}]


# ------------------------------------------------------------------ OpenAPI and samples


def test_openapi_document_describes_routes() -> None:
    api = make_service()
    trigger = http.HttpTrigger(api, make_context(Path("/tmp"), "shop"))
    doc = trigger.openapi()
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "Shop"
    place = doc["paths"]["/shop/orders"]["post"]
    assert place["summary"] == "Place an order" and place["operationId"] == "place"
    body_schema = place["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/Order"}
    assert set(place["responses"]) >= {"201", "400", "415", "422", "500"}
    assert place["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Receipt"}
    assert place["responses"]["422"]["content"]["application/problem+json"]
    components = doc["components"]["schemas"]
    assert {"Order", "Line", "Address", "Colour", "Receipt", "Problem"} <= set(components)
    assert "$defs" not in json.dumps(doc)
    read = doc["paths"]["/shop/orders/{order_id}"]["get"]
    params = {(p["in"], p["name"]): p for p in read["parameters"]}
    assert set(params) == {("path", "order_id"), ("query", "colour"), ("query", "tags"),
                           ("query", "p"), ("header", "trace"), ("header", "x-tenant")}
    assert params[("path", "order_id")]["required"] is True
    assert params[("path", "order_id")]["schema"]["type"] == "integer"
    assert params[("query", "p")]["schema"]["default"] == 1
    assert params[("header", "x-tenant")]["required"] is False
    assert "requestBody" not in read
    assert "/shop/files/{rest}" in doc["paths"]
    upload = doc["paths"]["/shop/files/{rest}"]["put"]
    assert "text/plain" in upload["requestBody"]["content"]
    json.dumps(doc)


def test_example_values_follow_the_schema() -> None:
    schema = TypeAdapter(Order).json_schema()
    example = example_from_schema(schema)
    order = Order.model_validate(example)  # validates: formats, bounds, enums, nesting
    assert order.customer == "ada@example.com" and order.ship_to.zip == "12345"
    assert order.colour is Colour.RED and order.kind == "retail"
    assert example_from_schema({"type": "integer", "exclusiveMinimum": 5}) == 6
    assert example_from_schema({"type": "string", "minLength": 10}) == "stringxxxx"
    assert example_from_schema({"type": "array", "items": {"type": "boolean"},
                                "minItems": 2}) == [True, True]


def test_samples_are_valid_requests_for_their_routes() -> None:
    api = make_service()
    trigger = http.HttpTrigger(api, make_context(Path("/tmp"), "shop"))
    samples = {s.name: s for s in trigger.samples()}
    assert set(samples) == {"place", "read", "search", "upload"}
    place = samples["place"].event
    assert place.handler == "POST /orders" and place.transport["path"] == "/shop/orders"
    assert place.datacontenttype == "application/json"
    assert ["content-type", "application/json"] in place.transport["headers"]
    Order.model_validate_json(place.data)
    assert samples["place"].description == "POST /shop/orders — Place an order"
    read = samples["read"].event
    assert read.transport["path"] == "/shop/orders/1"
    assert extractor(api, "GET /orders/{order_id}", "order_id")(read) == 1
    search = samples["search"].event
    assert search.transport["query_string"] == "q=string&limit=1"
    assert ["x-key", "string"] in search.transport["headers"]
    for name in ("q", "limit", "key"):
        assert extractor(api, "GET /search", name)(search) is not None
    assert samples["upload"].event.transport["path"] == "/shop/files/string"
