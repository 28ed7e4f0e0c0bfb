"""The runtime over the in-memory queue trigger: dispatch, binding, policies, listeners,
inject and replay. (Reload has its own module.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from memq import BROKER, QueueTrigger, publish

from workbench.errors import ArtifactNotFoundError, ProjectLoadError
from workbench.events import Event, Outcome
from workbench.runtime import runtime as runtime_module
from workbench.runtime.bus import ArtifactChanged, EventHandled
from workbench.runtime.runtime import Runtime

PLUGINS = {"memq": QueueTrigger}

TYPES = {
    "types/orders.py": """
        from pydantic import BaseModel

        class Order(BaseModel):
            id: int
            qty: int
    """,
}


async def start(root: Path, started: list[Any], **kwargs: Any) -> Runtime:
    rt = Runtime(root, plugins=PLUGINS, **kwargs)
    started.append(rt)
    await rt.start()
    await rt.wait_ready(5)
    return rt


async def next_outcome(rt: Runtime, artifact: str, timeout: float = 5) -> Outcome:
    fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    def on(msg: object) -> None:
        if isinstance(msg, EventHandled) and msg.event.artifact == artifact and not fut.done():
            fut.set_result(msg.outcome)

    unsubscribe = rt.bus.subscribe(on)
    try:
        return await asyncio.wait_for(fut, timeout)
    finally:
        unsubscribe()


async def test_event_is_bound_handled_acked_and_captured(make_project, started) -> None:
    root = make_project({
        **TYPES,
        "artifacts/billing.py": """
            from memq import Queue, Message
            from workbench.events import Event
            from project.types.orders import Order

            orders = Queue(queue="orders")

            @orders.on_message
            async def bill(order: Order, msg: Message, event: Event) -> dict:
                return {"id": order.id, "amount": order.qty * 3, "queue": msg.queue,
                        "type": event.type}
        """,
    })
    rt = await start(root, started)
    waiting = asyncio.create_task(next_outcome(rt, "orders"))
    await asyncio.sleep(0)
    sent = await publish("orders", b'{"id": 7, "qty": 2}')
    outcome = await waiting
    assert outcome.ok, outcome.error
    assert outcome.result == {"id": 7, "amount": 6, "queue": "orders", "type": "test.message"}
    assert outcome.handler.endswith(":bill")
    assert len(outcome.code_version) == 12
    assert BROKER.acked == [sent.id]
    assert rt.capture is not None
    await rt.capture.flush()
    record = rt.capture.get(sent.id)
    assert record.artifact == "orders" and record.status == "ok"
    assert record.event.data == b'{"id": 7, "qty": 2}'
    assert rt.artifacts["orders"].events == 1


async def test_bad_payloads_are_outcomes_not_crashes(make_project, started) -> None:
    root = make_project({
        **TYPES,
        "artifacts/billing.py": """
            from memq import Queue
            from project.types.orders import Order

            orders = Queue(queue="orders")

            @orders.on_message
            async def bill(order: Order) -> int:
                return order.qty
        """,
    })
    rt = await start(root, started)
    malformed = await rt.inject("orders", _event(b'{"id": 1, "qty":'))
    assert malformed.status == "error" and malformed.error is not None
    assert malformed.error.type == "MalformedPayload"
    assert malformed.disposition == "reject"

    wrong = await rt.inject("orders", _event(b'{"id": "x", "qty": 2}'))
    assert wrong.error is not None and wrong.error.type == "ValidationError"
    assert wrong.error.details[0]["loc"] == ["body", "id"]

    not_json = await rt.inject("orders", _event(b"id=1", ct="text/plain"))
    assert not_json.error is not None and not_json.error.type == "UnsupportedMediaType"

    empty = await rt.inject("orders", _event(b""))
    assert empty.error is not None and empty.error.type == "ValidationError"

    good = await rt.inject("orders", _event(b'{"id": 1, "qty": 4}'))
    assert good.ok and good.result == 4
    assert rt.artifacts["orders"].status == "listening"


async def test_handler_error_records_traceback_with_project_file_line(
    make_project, started
) -> None:
    root = make_project({
        "artifacts/crash.py": """
            from memq import Queue

            jobs = Queue(queue="jobs")

            @jobs.on_message
            async def work(payload: dict) -> None:
                raise ValueError(f"cannot handle {payload['n']}")
        """,
    })
    rt = await start(root, started)
    outcome = await rt.inject("jobs", _event(b'{"n": 3}'))
    assert outcome.status == "error" and outcome.error is not None
    assert outcome.error.type == "ValueError"
    assert outcome.error.message == "cannot handle 3"
    assert outcome.error.where.endswith("artifacts/crash.py:7")
    assert "workbench/runtime" not in outcome.error.where
    assert "Traceback" in outcome.error.traceback
    # the listener keeps serving
    await publish("jobs", b'{"n": 4}')
    second = await next_outcome(rt, "jobs")
    assert second.error is not None and second.error.message == "cannot handle 4"
    assert rt.artifacts["jobs"].status == "listening"


async def test_timeout_retries_and_backoff(make_project, started) -> None:
    root = make_project({
        "artifacts/flaky.py": """
            import asyncio
            from memq import Queue

            calls = []
            slow = Queue(queue="slow", timeout=0.05)
            flaky = Queue(queue="flaky", retries=2, policy=None)

            @slow.on_message
            async def sleepy(payload: dict) -> None:
                await asyncio.sleep(5)

            @flaky.on_message
            async def sometimes(payload: dict) -> int:
                calls.append(1)
                if len(calls) < 3:
                    raise ConnectionError("downstream busy")
                return len(calls)
        """,
    })
    rt = await start(root, started)
    t0 = time.perf_counter()
    timed_out = await rt.inject("slow", _event(b"{}"))
    assert time.perf_counter() - t0 < 2
    assert timed_out.error is not None and timed_out.error.type == "HandlerTimeout"
    assert "0.05 s" in timed_out.error.message

    retried = await rt.inject("flaky", _event(b"{}"))
    assert retried.ok and retried.result == 3 and retried.attempts == 3

    again = await rt.inject("flaky", _event(b"{}"))
    assert again.ok and again.attempts == 1


async def test_a_handler_that_hides_its_timeout_still_times_out(make_project, started) -> None:
    """Handlers that catch the cancellation and raise or return instead: the outcome says
    timeout (or keeps the value), and the task is not left half-cancelled."""
    root = make_project({
        "artifacts/stubborn.py": """
            import asyncio
            from memq import Queue

            masks = Queue(queue="masks", timeout=0.05)
            swallows = Queue(queue="swallows", timeout=0.05)

            @masks.on_message
            async def masking(payload: dict) -> None:
                try:
                    await asyncio.sleep(5)
                except asyncio.CancelledError:
                    raise RuntimeError("interrupted") from None

            @swallows.on_message
            async def swallowing(payload: dict) -> str:
                try:
                    await asyncio.sleep(5)
                except asyncio.CancelledError:
                    pass
                return "finished anyway"
        """,
    })
    rt = await start(root, started)
    masked = await rt.inject("masks", _event(b"{}"))
    assert masked.error is not None and masked.error.type == "HandlerTimeout"
    swallowed = await rt.inject("swallows", _event(b"{}"))
    assert swallowed.ok and swallowed.result == "finished anyway"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)  # no cancellation left pending for this task


async def test_retries_exhausted_is_an_error_with_reject_disposition(
    make_project, started
) -> None:
    root = make_project({
        "artifacts/broken.py": """
            from memq import Queue
            q = Queue(queue="b", retries=1)

            @q.on_message
            async def never(payload: dict) -> None:
                raise RuntimeError("always")
        """,
    })
    rt = await start(root, started)
    sent = await publish("b", b"{}")
    outcome = await next_outcome(rt, "q")
    assert outcome.status == "error" and outcome.attempts == 2
    assert outcome.disposition == "reject"
    await asyncio.sleep(0)
    assert BROKER.rejected == [sent.id] and BROKER.acked == []


async def test_concurrency_limit_and_sync_handlers_off_the_loop(make_project, started) -> None:
    root = make_project({
        "artifacts/limits.py": """
            import asyncio, threading, time
            from memq import Queue

            state = {"now": 0, "max": 0}
            one = Queue(queue="one", concurrency=1)
            blocking = Queue(queue="blocking")

            @one.on_message
            async def serial(payload: dict) -> None:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
                await asyncio.sleep(0.01)
                state["now"] -= 1

            @blocking.on_message
            def sync_work(payload: dict) -> str:
                time.sleep(0.2)
                return threading.current_thread().name
        """,
    })
    rt = await start(root, started)
    await asyncio.gather(*(rt.inject("one", _event(b"{}")) for _ in range(8)))
    import sys

    module = sys.modules["project.artifacts.limits"]
    assert module.state["max"] == 1

    # a blocking sync handler runs in a worker thread: the loop keeps ticking meanwhile
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    outcome = await rt.inject("blocking", _event(b"{}"))
    task.cancel()
    assert outcome.ok and outcome.result != "MainThread"
    assert ticks >= 5


async def test_failing_listener_retries_with_backoff_and_fails_alone(
    make_project, started, monkeypatch
) -> None:
    monkeypatch.setattr(runtime_module, "BACKOFF_START", 0.02)
    root = make_project({
        "artifacts/two.py": """
            from memq import Queue
            steady = Queue(queue="steady")
            shaky = Queue(queue="shaky", fail_starts=3)

            @steady.on_message
            async def a(payload: dict) -> str:
                return "steady"

            @shaky.on_message
            async def b(payload: dict) -> str:
                return "shaky"
        """,
    })
    rt = Runtime(root, plugins=PLUGINS)
    started.append(rt)
    statuses: list[str] = []
    rt.bus.subscribe(
        lambda m: statuses.append(m.status)
        if isinstance(m, ArtifactChanged) and m.name == "shaky" else None
    )
    await rt.start()
    await asyncio.wait_for(rt.artifacts["steady"].listening.wait(), 5)
    assert (await rt.inject("steady", _event(b"{}"))).result == "steady"
    await rt.wait_ready(5)
    assert BROKER.starts["shaky"] == 4
    assert statuses.count("disconnected-retrying") == 3
    assert statuses[-1] == "listening"
    assert rt.artifacts["shaky"].restarts == 3
    assert rt.artifacts["shaky"].error is None


async def test_inject_via_transport_and_samples(make_project, started) -> None:
    root = make_project({
        "artifacts/echo.py": """
            from memq import Queue
            echo = Queue(queue="echo")

            @echo.on_message
            async def back(payload: dict) -> dict:
                return {"got": payload}
        """,
    })
    rt = await start(root, started)
    samples = rt.samples("echo")
    assert [s.name for s in samples] == ["hello"]
    outcome = await rt.inject("echo", samples[0].event, via="transport")
    assert outcome.result == {"got": {"n": 1}}
    # it went through the queue: the broker acked it
    assert len(BROKER.acked) == 1
    with pytest.raises(ArtifactNotFoundError, match="Artifacts: echo"):
        await rt.inject("nope", _event(b"{}"))


async def test_unknown_handler_key_is_an_error_outcome(make_project, started) -> None:
    root = make_project({
        "artifacts/one.py": """
            from memq import Queue
            q = Queue(queue="q")

            @q.on_message
            async def h(payload: dict) -> None: ...
        """,
    })
    rt = await start(root, started)
    outcome = await rt.inject("q", _event(b"{}", handler="other"))
    assert outcome.error is not None and outcome.error.type == "NoHandler"
    assert "Its handlers: message" in outcome.error.message


async def test_replay_diffs_against_the_new_code(make_project, started) -> None:
    root = make_project({
        "artifacts/calc.py": """
            from memq import Queue
            calc = Queue(queue="calc")

            @calc.on_message
            async def double(payload: dict) -> int:
                return payload["n"] * 2
        """,
    })
    rt = await start(root, started)
    first = await rt.inject("calc", _event(b'{"n": 2}'))
    second = await rt.inject("calc", _event(b'{"n": 5}'))
    assert (first.result, second.result) == (4, 10)

    same = await rt.replay(last=2, artifact="calc")
    assert [r.same for r in same] == [True, True]

    (root / "artifacts/calc.py").write_text(
        (root / "artifacts/calc.py").read_text().replace("* 2", "* 3")
    )
    report = await rt.reload([root / "artifacts/calc.py"])
    assert report.ok and report.swapped == ["calc"]
    results = await rt.replay([first.event_id, second.event_id])
    assert [r.new.result for r in results] == [6, 15]
    assert all(r.changed == ["result"] for r in results)
    assert "-  \"result\": 4" in results[0].diff and "+  \"result\": 6" in results[0].diff
    assert results[0].new.code_version != results[0].recorded.code_version
    await rt.capture.flush()  # type: ignore[union-attr]
    replayed = rt.capture.get(results[0].new_event_id)  # type: ignore[union-attr]
    assert replayed.replay_of == first.event_id

    via_transport = await rt.replay([first.event_id], via="transport")
    assert via_transport[0].new.result == 6


async def test_all_load_errors_are_reported_together(make_project) -> None:
    root = make_project({
        "Config.toml": """
            [svc]
            port = "not a number"
        """,
        "connections.toml": """
            [billing]
            kind = "http"
            base_url = "http://127.0.0.1:9"
        """,
        "artifacts/svc.py": """
            from workbench.config import configurable, connection
            from memq import Queue

            PORT = configurable("port", int)
            TOKEN = configurable("token", str, secret=True)
            crm = connection("crm")
            q = Queue(queue="q")
        """,
        "artifacts/broken.py": """
            def oops(:
                pass
        """,
        "artifacts/solace_thing.py": """
            import iwb_solace
        """,
        "artifacts/custom.py": """
            from workbench.plugin import Artifact
            from memq import QueueConfig

            class Stream(Artifact[QueueConfig]):
                kind = "kinesis"
                config_model = QueueConfig

            stream = Stream(queue="x")
        """,
    })
    rt = Runtime(root, plugins=PLUGINS)
    with pytest.raises(ProjectLoadError) as info:
        await rt.start()
    text = str(info.value)
    assert "Config.toml:2" in text and "[svc] port" in text  # ill-typed value: file, line, key
    assert "[svc] token" in text and "IWB_SVC__TOKEN" in text  # missing required
    assert "crm" in text and "billing" in text  # unknown connection, and what exists
    assert "artifacts/broken.py:1" in text  # syntax error with file:line
    assert "'solace'" in text and "Installed kinds:" in text and "memq" in text
    assert "'kinesis'" in text
    assert len(info.value.errors) >= 6


def _event(data: bytes, *, ct: str = "application/json", handler: str = "message") -> Event:
    return Event(
        artifact="", kind="memq", type="test.message", source="test", data=data,
        datacontenttype=ct, handler=handler, transport={"queue": "?"},
    )


async def test_a_handler_policy_overrides_the_artifacts(make_project, started) -> None:
    root = make_project({
        "artifacts/mixed.py": """
            import asyncio
            from memq import Queue
            from workbench.plugin import Artifact

            q = Queue(queue="q", timeout=0.05)

            async def slow(payload: dict) -> str:
                await asyncio.sleep(0.2)
                return "finished"

            q.add_handler("message", slow, timeout=2)
            q.add_handler("other", slow)
        """,
    })
    rt = await start(root, started)
    assert (await rt.inject("q", _event(b"{}"))).result == "finished"
    timed_out = await rt.inject("q", _event(b"{}", handler="other"))
    assert timed_out.error is not None and timed_out.error.type == "HandlerTimeout"
    # a per-handler policy is not listener configuration: same fingerprint
    spec = rt.artifacts["q"].artifact.handlers["message"]
    assert spec.policy is not None and spec.policy.timeout == 2
