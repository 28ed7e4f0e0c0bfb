"""HTTP services end to end: a project on disk, the real Runtime, real sockets and capture."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import free_port

from iwb_http.server import _servers
from workbench.events import Event, Outcome
from workbench.runtime import Runtime

TYPES = """
    from pydantic import BaseModel, Field

    class Item(BaseModel):
        sku: str = Field(min_length=3, examples=["TEA-01"])
        quantity: int = Field(ge=1)
        unit_price: float = Field(gt=0)

    class Order(BaseModel):
        customer: str
        items: list[Item] = Field(min_length=1)

    class Receipt(BaseModel):
        order_id: int
        total: float
        client: str
"""

ORDERS = """
    from __future__ import annotations

    import asyncio
    from typing import Annotated

    import iwb_http as http
    from project.types.orders import Order, Receipt

    api = http.Service(
        port={port}, base_path="/orders", max_body=512, timeout=0.5, title="Orders API",
        cors=http.Cors(allow_origins=["https://shop.example"]),
    )


    @api.post("/", status=201)
    async def create_order(order: Order, request: http.Request) -> Receipt:
        total = sum(i.quantity * i.unit_price for i in order.items)
        return Receipt(order_id=7, total=total, client=request.headers.get("x-client", ""))


    @api.get("/{{order_id}}")
    async def get_order(
        order_id: int,
        verbose: bool = False,
        tags: list[str] | None = None,
        request_id: Annotated[str | None, http.Header("X-Request-Id")] = None,
    ) -> dict:
        if order_id == 404:
            raise http.HTTPError(404, f"order {{order_id}} not found")
        if order_id == 500:
            raise RuntimeError("the order store is on fire")
        if order_id == 504:
            await asyncio.Event().wait()
        return {{"order_id": order_id, "verbose": verbose, "tags": tags,
                 "request_id": request_id}}


    @api.get("/search/by-customer")
    def by_customer(customer: str, limit: int = 10) -> list:
        return [{{"customer": customer, "limit": limit}}]
"""

STOCK = """
    from __future__ import annotations

    import iwb_http as http

    stock = http.Service(port={port}, base_path="/stock")
    HITS: list[str] = []


    @stock.get("/health")
    async def health() -> dict:
        return {{"ok": True}}


    @stock.get("/broken")
    async def broken() -> http.Response:
        return http.Response({{"ok": False}}, status=503)


    @stock.get("/{{sku}}")
    async def level(sku: str) -> dict:
        HITS.append(sku)
        return {{"sku": sku, "level": 3, "hits": len(HITS)}}
"""

CLIENT = """
    from __future__ import annotations

    import iwb_http as http
    from workbench.config import connection

    remote = connection("remote")
    proxy = http.Service(port={port}, base_path="/proxy")


    @proxy.get("/{{sku}}")
    async def via_remote(sku: str) -> dict:
        response = await remote.get(f"/stock/{{sku}}")
        return {{"status": response.status_code, "body": response.json(),
                 "sandbox": response.headers.get("x-iwb-sandbox")}}
"""

CONNECTIONS = """
    [remote]
    kind = "http"
    base_url = "http://127.0.0.1:{port}"
    health_path = "/stock/health"
    auth_token = "s3cret"

    [broken]
    kind = "http"
    base_url = "http://127.0.0.1:{port}"
    health_path = "/stock/broken"

    [down]
    kind = "http"
    base_url = "http://127.0.0.1:{closed}"
    timeout = 2
"""

CONFIGS = [("asgi", "uvicorn"), ("quart", "hypercorn")]


@pytest.fixture
async def project(
    make_project: Callable[[dict[str, str]], Path], request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Runtime, str]]:
    engine, server = getattr(request, "param", CONFIGS[0])
    port = free_port()
    root = make_project({
        "types/orders.py": TYPES,
        "artifacts/orders.py": ORDERS.format(port=port),
        "artifacts/stock.py": STOCK.format(port=port),
        "artifacts/client.py": CLIENT.format(port=port),
        "connections.toml": CONNECTIONS.format(port=port, closed=free_port()),
    })
    rt = Runtime(root, settings={"http": {"engine": engine, "server": server}})
    await rt.start()
    try:
        await rt.wait_ready(10)
        yield rt, f"http://127.0.0.1:{port}"
    finally:
        await rt.stop(1)


async def captured(rt: Runtime, artifact: str) -> list[Any]:
    assert rt.capture is not None
    await rt.capture.flush()
    return rt.capture.query(artifact=artifact)


def source_line(rt: Runtime, rel: str, needle: str) -> int:
    lines = (rt.root / rel).read_text("utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


@pytest.mark.parametrize("project", CONFIGS, indirect=True, ids=["asgi-uvicorn", "quart-hypercorn"])
async def test_json_post_binds_the_model_and_is_captured(project: tuple[Runtime, str]) -> None:
    rt, base = project
    assert rt.artifacts["api"].address == f"{base}/orders"
    order = {"customer": "ada", "items": [{"sku": "TEA-01", "quantity": 2, "unit_price": 4.5}]}
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"{base}/orders/", json=order, headers={"X-Client": "cli"})
    assert reply.status_code == 201
    assert reply.json() == {"order_id": 7, "total": 9.0, "client": "cli"}
    [record] = await captured(rt, "api")
    assert record.status == "ok" and record.handler.endswith("orders:create_order")
    event, outcome = record.event, record.outcome
    assert event.type == "iwb.http.request" and event.handler == "POST /"
    assert event.transport["method"] == "POST" and event.transport["path"] == "/orders/"
    assert outcome.result == {"order_id": 7, "total": 9.0, "client": "cli"}
    assert outcome.sent == [{"kind": "http.response", "status": 201,
                             "headers": [["content-type", "application/json"]],
                             "body": reply.text}]


@pytest.mark.parametrize("project", CONFIGS, indirect=True, ids=["asgi-uvicorn", "quart-hypercorn"])
async def test_path_query_and_header_parameters_bind(project: tuple[Runtime, str]) -> None:
    _, base = project
    async with httpx.AsyncClient() as client:
        reply = await client.get(f"{base}/orders/12?verbose=true&tags=a&tags=b",
                                 headers={"X-Request-Id": "req-1"})
        assert reply.status_code == 200
        assert reply.json() == {"order_id": 12, "verbose": True, "tags": ["a", "b"],
                                "request_id": "req-1"}
        plain = await client.get(f"{base}/orders/12")
        assert plain.json() == {"order_id": 12, "verbose": False, "tags": None,
                                "request_id": None}
        sync = await client.get(f"{base}/orders/search/by-customer?customer=ada")
        assert sync.json() == [{"customer": "ada", "limit": 10}]
        missing = await client.get(f"{base}/orders/search/by-customer")
        assert missing.status_code == 422
        assert missing.json()["errors"] == [
            {"loc": ["query", "customer"], "msg": "Field required", "type": "missing"}
        ]
        bad = await client.get(f"{base}/orders/12?verbose=perhaps")
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["loc"] == ["query", "verbose"]


@pytest.mark.parametrize("project", CONFIGS, indirect=True, ids=["asgi-uvicorn", "quart-hypercorn"])
async def test_bad_requests_and_failures_are_problem_details(
    project: tuple[Runtime, str],
) -> None:
    rt, base = project
    url = f"{base}/orders/"
    json_ct = {"content-type": "application/json"}
    async with httpx.AsyncClient() as client:
        malformed = await client.post(url, content=b'{"customer": ', headers=json_ct)
        wrong = await client.post(url, json={"customer": "ada", "items": [
            {"sku": "TEA-01", "quantity": "two", "unit_price": 1}]})
        text = await client.post(url, content=b"customer=ada",
                                 headers={"content-type": "text/plain"})
        large = await client.post(url, content=b"{" + b" " * 600 + b"}", headers=json_ct)
        unknown = await client.get(f"{base}/orders/1/2/3")
        crash = await client.get(f"{base}/orders/500")
        slow = await client.get(f"{base}/orders/504")
        gone = await client.get(f"{base}/orders/404")

    for reply in (malformed, wrong, text, large, unknown, crash, slow, gone):
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.json()["type"] == "about:blank"
    assert (malformed.status_code, wrong.status_code, text.status_code) == (400, 422, 415)
    assert (large.status_code, unknown.status_code, crash.status_code) == (413, 404, 500)
    assert (slow.status_code, gone.status_code) == (504, 404)
    assert wrong.json()["errors"] == [{
        "loc": ["body", "items", 0, "quantity"],
        "msg": "Input should be a valid integer, unable to parse string as an integer",
        "type": "int_parsing",
    }]
    assert gone.json()["detail"] == "order 404 not found"
    assert "fire" not in crash.text and "Traceback" not in crash.text

    records = {r.id: r for r in await captured(rt, "api")}
    crash_record = records[crash.json()["event_id"]]
    assert crash_record.status == "error" and crash_record.error_type == "RuntimeError"
    error = crash_record.outcome.error
    assert error is not None and "Traceback" in error.traceback
    line = source_line(rt, "artifacts/orders.py", 'raise RuntimeError("the order store')
    assert error.where.endswith(f"artifacts/orders.py:{line}")
    assert crash_record.outcome.sent[0]["status"] == 500

    large_record = records[large.json()["event_id"]]
    assert large_record.status == "rejected" and large_record.error_type == "PayloadTooLarge"
    assert records[slow.json()["event_id"]].error_type == "HandlerTimeout"
    assert records[gone.json()["event_id"]].outcome.error.details == [{"status": 404}]
    assert records[wrong.json()["event_id"]].error_type == "ValidationError"
    assert "event_id" not in unknown.json(), "an unknown route is not dispatched"
    assert rt.artifacts["api"].status == "listening"


async def test_services_share_a_port_and_restart_alone(project: tuple[Runtime, str]) -> None:
    rt, base = project
    port = int(base.rsplit(":", 1)[1])
    [server] = [s for s in _servers.values() if s.port == port]
    assert sorted(server.mounted()) == ["/orders", "/proxy", "/stock"]
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{base}/stock/A")).json()["sku"] == "A"
        await rt.restart_artifact("stock")
        await rt.wait_ready(5)
        # The orders API kept its socket; the restarted stock service is back on it.
        assert [s for s in _servers.values() if s.port == port] == [server]
        assert (await client.get(f"{base}/orders/3")).status_code == 200
        assert (await client.get(f"{base}/stock/B")).json()["sku"] == "B"
        await rt.stop_artifact("stock")
        assert (await client.get(f"{base}/stock/B")).status_code == 404
        assert (await client.get(f"{base}/orders/3")).status_code == 200


async def test_openapi_and_cors_preflight(project: tuple[Runtime, str]) -> None:
    rt, base = project
    async with httpx.AsyncClient() as client:
        doc = (await client.get(f"{base}/orders/openapi.json")).json()
        pre = await client.options(f"{base}/orders/", headers={
            "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        })
    assert doc["info"]["title"] == "Orders API"
    post = doc["paths"]["/orders"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Order"}
    assert "201" in post["responses"]
    assert {"Order", "Item", "Receipt"} <= set(doc["components"]["schemas"])
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert await captured(rt, "api") == []


async def test_inject_via_transport_returns_the_outcome(project: tuple[Runtime, str]) -> None:
    rt, _ = project
    event = Event(artifact="api", kind="http", type="iwb.http.request", source="test",
                  handler="GET /{order_id}",
                  transport={"method": "GET", "path": "/orders/21", "query_string": "verbose=1",
                             "headers": [["x-request-id", "inj"]]})
    outcome = await rt.inject("api", event, via="transport")
    assert outcome.status == "ok"
    assert outcome.result == {"order_id": 21, "verbose": True, "tags": None,
                              "request_id": "inj"}
    assert outcome.sent[0]["kind"] == "http.response" and outcome.sent[0]["status"] == 200


async def test_samples_are_valid_for_their_routes(project: tuple[Runtime, str]) -> None:
    rt, _ = project
    samples = rt.samples("api")
    assert {s.name for s in samples} == {"create_order", "get_order", "by_customer"}
    for sample in samples:
        outcome = await rt.inject("api", sample.event, via="direct")
        assert outcome.status == "ok", (sample.name, outcome.error)
    by_transport = await rt.inject(
        "api", next(s for s in samples if s.name == "create_order").event, via="transport")
    assert by_transport.status == "ok" and by_transport.sent[0]["status"] == 201


async def test_http_connection_health_records_and_sandbox(project: tuple[Runtime, str]) -> None:
    rt, base = project
    remote, broken, down = (rt.connections[n] for n in ("remote", "broken", "down"))
    health = await remote.health()
    assert health.ok and "answered 200" in health.detail and "/stock/health" in health.detail
    unhealthy = await broken.health()
    assert not unhealthy.ok and "503" in unhealthy.detail
    unreachable = await down.health()
    assert not unreachable.ok and "ConnectError" in unreachable.detail
    assert remote.describe()["auth_token"] == "****"

    async with httpx.AsyncClient() as client:
        reply = await client.get(f"{base}/proxy/TEA")
        assert reply.status_code == 200
        assert reply.json()["body"]["sku"] == "TEA" and reply.json()["sandbox"] is None
        hits = reply.json()["body"]["hits"]
        [record] = [r for r in await captured(rt, "proxy")]
        calls = [s for s in record.outcome.sent if s["kind"] == "http.request"]
        assert len(calls) == 1
        assert calls[0]["method"] == "GET" and calls[0]["status"] == 200
        assert calls[0]["url"] == f"{base}/stock/TEA" and calls[0]["duration_ms"] >= 0
        stock_event = next(r for r in await captured(rt, "stock") if r.subject == "/stock/TEA")
        sent_headers = dict(stock_event.event.transport["headers"])
        assert "authorization" in sent_headers
        assert "s3cret" not in sent_headers["authorization"], "capture redacts the token"

        sample = Event(artifact="proxy", kind="http", type="iwb.http.request", source="t",
                       handler="GET /{sku}", transport={"path_params": {"sku": "TEA"}})
        sandboxed: Outcome = await rt.inject("proxy", sample, via="direct", sandboxed=True)
        assert sandboxed.status == "ok"
        assert sandboxed.result == {"status": 200, "body": {}, "sandbox": "1"}
        [call] = [s for s in sandboxed.sent if s["kind"] == "http.request"]
        assert call["sandboxed"] is True and call["url"] == f"{base}/stock/TEA"
        after = await client.get(f"{base}/stock/TEA")
        assert after.json()["hits"] == hits + 1, "the sandboxed call must not reach the API"

        # through the transport: the handler runs in the server's request task, and still
        # in sandbox mode
        path_sample = sample.copy(transport={"method": "GET", "path": "/proxy/TEA",
                                             "path_params": {"sku": "TEA"}})
        via_http = await rt.inject("proxy", path_sample, via="transport", sandboxed=True)
        assert via_http.result == {"status": 200, "body": {}, "sandbox": "1"}
        final = await client.get(f"{base}/stock/TEA")
        assert final.json()["hits"] == hits + 2, "only the two direct GETs reached the API"


async def test_port_zero_reports_the_bound_address(make_project: Any) -> None:
    root = make_project({"artifacts/tiny.py": """
        import iwb_http as http

        tiny = http.Service(port=0)

        @tiny.get("/")
        async def home() -> str:
            return "hi"
    """})
    rt = Runtime(root)
    await rt.start()
    try:
        await rt.wait_ready(10)
        address = rt.artifacts["tiny"].address
        assert not address.endswith(":0")
        async with httpx.AsyncClient() as client:
            assert (await client.get(address + "/")).text == "hi"
    finally:
        await rt.stop(1)
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(address + "/")
