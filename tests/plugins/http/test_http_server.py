"""The HTTP trigger on real sockets with a recording dispatch: routing, replies, shared ports,
body limits, CORS, inject — on both servers and both engines."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from http_support import Recorder, free_port, make_context, serving
from pydantic import BaseModel

import iwb_http as http
from iwb_http.server import HttpServerError, _servers
from workbench.errors import TriggerConfigError
from workbench.events import Event

ENGINES = ["asgi", "quart"]
SERVERS = ["uvicorn", "hypercorn"]


class Order(BaseModel):
    customer: str
    quantity: int


def orders_service(port: int = 0, **config: Any) -> http.Service:
    api = http.Service(name="orders", port=port, base_path="/orders", **config)

    @api.post("/", status=201)
    async def create(order: Order, request: http.Request) -> dict[str, Any]:
        return {"customer": order.customer, "total": order.quantity * 2,
                "ct": request.headers.get("Content-Type")}

    @api.get("/{order_id}")
    async def read(
        order_id: int,
        verbose: bool = False,
        request_id: Annotated[str | None, http.Header("X-Request-Id")] = None,
    ) -> Any:
        if order_id == 404:
            raise http.HTTPError(404, f"order {order_id} not found", headers={"x-why": "gone"})
        if order_id == 500:
            raise RuntimeError("the database is on fire")
        return {"order_id": order_id, "verbose": verbose, "request_id": request_id}

    @api.get("/{order_id}/label")
    def label(order_id: str) -> str:
        return f"order {order_id}"

    @api.delete("/{order_id}")
    async def remove(order_id: int) -> None:
        return None

    @api.get("/{order_id}/raw")
    async def raw(order_id: int) -> http.Response:
        return http.Response(b"\x00\x01", status=202, headers={"x-raw": "1"},
                             media_type="application/x-thing")

    @api.get("/{order_id}/tuple")
    async def as_tuple(order_id: int) -> Any:
        return {"id": order_id}, 203, {"x-tuple": "yes"}

    return api


def stock_service(port: int) -> http.Service:
    api = http.Service(name="stock", port=port, base_path="/stock")

    @api.get("/{sku}")
    async def level(sku: str) -> dict[str, Any]:
        return {"sku": sku, "level": 3}

    return api


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("engine", ENGINES)
async def test_requests_become_events_and_outcomes_become_replies(
    tmp_path: Path, engine: str, server: str
) -> None:
    service = orders_service()
    addresses: list[str] = []
    ctx = make_context(tmp_path, "orders", addresses,
                       {"engine": engine, "server": server})
    trigger = http.HttpTrigger(service, ctx)
    recorder = Recorder(service)
    async with serving(trigger, recorder):
        port = trigger.bound_port
        assert port and addresses == [f"http://127.0.0.1:{port}/orders"]
        base = f"http://127.0.0.1:{port}/orders"
        async with httpx.AsyncClient() as client:
            created = await client.post(f"{base}/?a=1&a=2", json={"customer": "ada", "quantity": 3},
                                        headers={"X-Trace": "t1"})
            assert created.status_code == 201
            assert created.json() == {"customer": "ada", "total": 6, "ct": "application/json"}
            event = recorder.events[-1]
            assert event.kind == "http" and event.type == "iwb.http.request"
            assert event.handler == "POST /" and event.subject == "/orders/"
            assert event.source == f"http://127.0.0.1:{port}/orders"
            assert event.datacontenttype == "application/json"
            assert event.data == b'{"customer":"ada","quantity":3}'
            t = event.transport
            assert t["method"] == "POST" and t["path"] == "/orders/" and t["route"] == "/"
            assert t["query"] == {"a": ["1", "2"]} and t["query_string"] == "a=1&a=2"
            assert ["x-trace", "t1"] in t["headers"]
            assert t["port"] == port and t["base_path"] == "/orders"
            assert t["client"][0] == "127.0.0.1"
            sent = recorder.outcomes[-1].sent
            assert sent == [{"kind": "http.response", "status": 201,
                             "headers": [["content-type", "application/json"]],
                             "body": created.text}]

            read = await client.get(f"{base}/7", params={"verbose": "yes"},
                                    headers={"X-Request-Id": "r-1"})
            assert read.status_code == 200
            assert read.json() == {"order_id": 7, "verbose": True, "request_id": "r-1"}
            assert recorder.events[-1].transport["path_params"] == {"order_id": "7"}

            label = await client.get(f"{base}/A-1/label")
            assert (label.status_code, label.text) == (200, "order A-1")
            assert label.headers["content-type"] == "text/plain; charset=utf-8"

            removed = await client.delete(f"{base}/7")
            assert (removed.status_code, removed.content) == (204, b"")

            raw = await client.get(f"{base}/7/raw")
            assert (raw.status_code, raw.content) == (202, b"\x00\x01")
            assert raw.headers["content-type"] == "application/x-thing"
            assert raw.headers["x-raw"] == "1"

            tup = await client.get(f"{base}/7/tuple")
            assert (tup.status_code, tup.json(), tup.headers["x-tuple"]) == (203, {"id": 7}, "yes")

            missing = await client.get(f"{base}/404")
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"
            assert missing.headers["x-why"] == "gone"
            problem = missing.json()
            assert problem["detail"] == "order 404 not found"
            assert problem["instance"] == "/orders/404"
            assert problem["event_id"] == recorder.events[-1].id

            failed = await client.get(f"{base}/500")
            assert failed.status_code == 500
            body = failed.json()
            assert body["event_id"] == recorder.events[-1].id
            assert "fire" not in failed.text and "Traceback" not in failed.text

            bad_path = await client.get(f"{base}/seven")
            assert bad_path.status_code == 422
            assert bad_path.json()["errors"][0]["loc"] == ["path", "order_id"]

            dispatched = len(recorder.events)
            nowhere = await client.get(f"{base}/7/nowhere/else")
            assert nowhere.status_code == 404
            assert nowhere.headers["content-type"] == "application/problem+json"
            outside = await client.get(f"http://127.0.0.1:{port}/elsewhere")
            assert outside.status_code == 404
            wrong = await client.put(f"{base}/7")
            assert wrong.status_code == 405
            assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "DELETE"}
            assert wrong.json()["status"] == 405
            assert len(recorder.events) == dispatched, "404/405 must not be dispatched"

            head = await client.head(f"{base}/7")
            assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize("engine", ENGINES)
async def test_two_services_share_a_port_and_leave_without_restarting_it(
    tmp_path: Path, engine: str
) -> None:
    port = free_port()
    settings = {"engine": engine}
    orders = orders_service(port)
    stock = stock_service(port)
    root = http.Service(name="root", port=port)

    @root.get("/")
    async def home() -> dict[str, str]:
        return {"service": "root"}

    t_orders = http.HttpTrigger(orders, make_context(tmp_path, "orders", settings=settings))
    t_stock = http.HttpTrigger(stock, make_context(tmp_path, "stock", settings=settings))
    t_root = http.HttpTrigger(root, make_context(tmp_path, "root", settings=settings))
    r_orders, r_stock, r_root = Recorder(orders), Recorder(stock), Recorder(root)
    base = f"http://127.0.0.1:{port}"
    async with serving(t_stock, r_stock), serving(t_root, r_root):
        port_server = next(s for s in _servers.values() if s.port == port)
        async with httpx.AsyncClient() as client:
            async with serving(t_orders, r_orders):
                assert sorted(port_server.mounted()) == ["", "/orders", "/stock"]
                assert (await client.get(f"{base}/orders/3")).json()["order_id"] == 3
                assert (await client.get(f"{base}/stock/TEA")).json() == {"sku": "TEA", "level": 3}
                assert (await client.get(f"{base}/")).json() == {"service": "root"}
                # The longest base path wins; the root service gets the rest.
                assert (await client.get(f"{base}/orders/x/y/z")).status_code == 404
                assert (await client.get(f"{base}/ordersX")).status_code == 404
                assert len(r_root.events) == 1
            # `orders` left; the same server keeps serving the others, same connection.
            assert next(s for s in _servers.values() if s.port == port) is port_server
            assert sorted(port_server.mounted()) == ["", "/stock"]
            assert (await client.get(f"{base}/stock/TEA")).status_code == 200
            gone = await client.get(f"{base}/orders/3")
            assert gone.status_code == 404 and len(r_root.events) == 1
            # It comes back (a reload that restarted it) on the same running server.
            async with serving(t_orders, r_orders):
                assert (await client.get(f"{base}/orders/4")).json()["order_id"] == 4
                assert next(s for s in _servers.values() if s.port == port) is port_server
    # The last service left: the port is free again.
    assert not any(s.port == port for s in _servers.values())
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


async def test_same_base_path_twice_on_a_port_is_an_error(tmp_path: Path) -> None:
    port = free_port()
    first, second = stock_service(port), stock_service(port)
    t1 = http.HttpTrigger(first, make_context(tmp_path, "first"))
    t2 = http.HttpTrigger(second, make_context(tmp_path, "second"))
    async with serving(t1, Recorder(first)):
        with pytest.raises(TriggerConfigError, match=r"'first' and 'second' both use base path"):
            await t2.serve(Recorder(second), ready=lambda: None)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/stock/A")).status_code == 200


async def test_a_port_taken_by_another_process_is_reported(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        service = stock_service(port)
        trigger = http.HttpTrigger(service, make_context(tmp_path, "stock"))
        with pytest.raises(HttpServerError, match=rf"http://127.0.0.1:{port}.*choose another port"):
            await trigger.serve(Recorder(service), ready=lambda: None)
    assert not any(s.port == port for s in _servers.values())


async def test_uvicorn_leaves_the_signal_handlers_alone(tmp_path: Path) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    service = stock_service(0)
    trigger = http.HttpTrigger(service, make_context(tmp_path, "stock"))
    async with serving(trigger, Recorder(service)):
        assert {sig: signal.getsignal(sig) for sig in before} == before
    assert {sig: signal.getsignal(sig) for sig in before} == before


@pytest.mark.parametrize("engine", ENGINES)
async def test_bodies_over_max_body_get_413_and_are_recorded_not_dispatched(
    tmp_path: Path, engine: str
) -> None:
    service = orders_service(max_body=64)
    trigger = http.HttpTrigger(service, make_context(tmp_path, "orders",
                                                     settings={"engine": engine}))
    recorder = Recorder(service)
    async with serving(trigger, recorder):
        url = f"http://127.0.0.1:{trigger.bound_port}/orders/"
        async with httpx.AsyncClient() as client:
            ok = await client.post(url, json={"customer": "a", "quantity": 1})
            assert ok.status_code == 201
            big = await client.post(url, content=b"x" * 65,
                                    headers={"content-type": "application/json"})
            assert big.status_code == 413
            assert big.headers["content-type"] == "application/problem+json"

            async def chunks() -> Any:
                for _ in range(10):
                    yield b"y" * 20

            streamed = await client.post(url, content=chunks(),
                                         headers={"content-type": "application/json"})
            assert streamed.status_code == 413
    assert len(recorder.events) == 1
    assert len(recorder.rejected) == 2
    event, outcome = recorder.rejected[0]
    assert outcome.status == "rejected" and outcome.error is not None
    assert outcome.error.type == "PayloadTooLarge"
    assert "max_body of 64 bytes" in outcome.error.message
    assert event.handler == "POST /" and event.transport["method"] == "POST"
    assert big.json()["event_id"] == event.id
    assert outcome.sent[0]["status"] == 413


@pytest.mark.parametrize("engine", ENGINES)
async def test_cors_preflight_is_answered_and_replies_carry_cors_headers(
    tmp_path: Path, engine: str
) -> None:
    cors = http.Cors(allow_origins=["https://shop.example"], allow_credentials=True,
                     allow_headers=["content-type", "x-request-id"], max_age=60)
    service = orders_service(cors=cors)
    trigger = http.HttpTrigger(service, make_context(tmp_path, "orders",
                                                     settings={"engine": engine}))
    recorder = Recorder(service)
    async with serving(trigger, recorder):
        base = f"http://127.0.0.1:{trigger.bound_port}/orders"
        async with httpx.AsyncClient() as client:
            pre = await client.options(f"{base}/7", headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "DELETE",
                "Access-Control-Request-Headers": "x-request-id",
            })
            assert pre.status_code == 204
            assert pre.headers["access-control-allow-origin"] == "https://shop.example"
            assert pre.headers["access-control-allow-credentials"] == "true"
            assert set(pre.headers["access-control-allow-methods"].split(", ")) == {"GET", "DELETE"}
            assert pre.headers["access-control-allow-headers"] == "content-type, x-request-id"
            assert pre.headers["access-control-max-age"] == "60"

            denied = await client.options(f"{base}/7", headers={
                "Origin": "https://evil.example", "Access-Control-Request-Method": "GET",
            })
            assert denied.status_code == 403
            assert "access-control-allow-origin" not in denied.headers

            plain = await client.get(f"{base}/7", headers={"Origin": "https://shop.example"})
            assert plain.status_code == 200
            assert plain.headers["access-control-allow-origin"] == "https://shop.example"
            assert plain.headers["vary"] == "Origin"
            other = await client.get(f"{base}/7", headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in other.headers
            error = await client.get(f"{base}/404", headers={"Origin": "https://shop.example"})
            assert error.headers["access-control-allow-origin"] == "https://shop.example"
    assert len(recorder.events) == 3, "preflights are not dispatched"


async def test_wildcard_origin_without_credentials_answers_star(tmp_path: Path) -> None:
    service = orders_service(cors=http.Cors())
    trigger = http.HttpTrigger(service, make_context(tmp_path, "orders"))
    async with serving(trigger, Recorder(service)):
        url = f"http://127.0.0.1:{trigger.bound_port}/orders/1"
        async with httpx.AsyncClient() as client:
            reply = await client.get(url, headers={"Origin": "https://any.example"})
            assert reply.headers["access-control-allow-origin"] == "*"
            pre = await client.options(url, headers={
                "Origin": "https://any.example", "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-anything",
            })
            assert pre.status_code == 204
            assert pre.headers["access-control-allow-headers"] == "x-anything"


@pytest.mark.parametrize("engine", ENGINES)
async def test_openapi_document_is_served_without_dispatch(tmp_path: Path, engine: str) -> None:
    service = orders_service(title="Orders API", version="2.0")
    trigger = http.HttpTrigger(service, make_context(tmp_path, "orders",
                                                     settings={"engine": engine}))
    recorder = Recorder(service)
    async with serving(trigger, recorder):
        url = f"http://127.0.0.1:{trigger.bound_port}/orders/openapi.json"
        async with httpx.AsyncClient() as client:
            doc = (await client.get(url)).json()
    assert recorder.events == []
    assert doc["openapi"] == "3.1.0"
    assert doc["info"] == {"title": "Orders API", "version": "2.0"}
    assert set(doc["paths"]) >= {"/orders", "/orders/{order_id}", "/orders/{order_id}/label"}


@pytest.mark.parametrize("server", SERVERS)
async def test_inject_sends_a_real_request_carrying_the_mark(tmp_path: Path, server: str) -> None:
    service = orders_service()
    trigger = http.HttpTrigger(service, make_context(tmp_path, "orders",
                                                     settings={"server": server}))
    recorder = Recorder(service)
    async with serving(trigger, recorder):
        url = f"http://127.0.0.1:{trigger.bound_port}/orders/?x=1&x=2"
        async with httpx.AsyncClient() as client:
            await client.post(url, json={"customer": "ada", "quantity": 2},
                              headers={"X-Trace": "abc"})
        original = recorder.events[-1]
        replay = original.copy()
        replay.extensions["iwbinject"] = "mark-1"
        await trigger.inject(replay)
        received = recorder.events[-1]
        assert received is not original
        assert received.extensions["iwbinject"] == "mark-1"
        assert received.data == original.data
        assert received.handler == "POST /"
        assert received.transport["query_string"] == "x=1&x=2"
        assert ["x-trace", "abc"] in received.transport["headers"]
        assert ["x-iwb-inject", "mark-1"] in received.transport["headers"]
        assert recorder.outcomes[-1].value["total"] == 4

        # A hand-written event: handler key and path parameters only.
        bare = Event(artifact="orders", kind="http", type="iwb.http.request", source="test",
                     handler="GET /{order_id}", transport={"path_params": {"order_id": "9"},
                                                           "query": {"verbose": ["1"]}},
                     extensions={"iwbinject": "mark-2"})
        await trigger.inject(bare)
        assert recorder.events[-1].extensions["iwbinject"] == "mark-2"
        assert recorder.outcomes[-1].value == {"order_id": 9, "verbose": True, "request_id": None}


async def test_drain_refuses_new_requests(tmp_path: Path) -> None:
    service = stock_service(0)
    trigger = http.HttpTrigger(service, make_context(tmp_path, "stock"))
    recorder = Recorder(service)
    async with serving(trigger, recorder):
        url = f"http://127.0.0.1:{trigger.bound_port}/stock/A"
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).status_code == 200
            await trigger.drain()
            try:
                late = await client.get(url)
            except httpx.ConnectError:
                pass  # the listener is closed: just as good
            else:
                assert late.status_code == 503
    assert len(recorder.events) == 1


async def test_cancelling_a_service_mid_start_leaves_no_server(tmp_path: Path) -> None:
    service = stock_service(free_port())
    trigger = http.HttpTrigger(service, make_context(tmp_path, "stock"))
    task = asyncio.create_task(trigger.serve(Recorder(service), ready=lambda: None))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(s.port == service.config.port for s in _servers.values())
