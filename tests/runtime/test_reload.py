"""Hot reload: swap in place, restart only what changed, keep the last good code."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from memq import BROKER, QueueTrigger

from workbench.events import Event
from workbench.runtime.bus import ReloadFinished
from workbench.runtime.runtime import Runtime

PLUGINS = {"memq": QueueTrigger}

TWO = {
    "Config.toml": """
        [orders]
        queue = "orders"
        factor = 2
    """,
    "connections.toml": """
        [main]
        kind = "memq"
        url = "memq://one"
    """,
    "artifacts/orders.py": """
        from memq import Queue
        from workbench.config import configurable

        FACTOR = configurable("factor", int, default=2)
        orders = Queue(queue=configurable("queue", str), connection="main")

        @orders.on_message
        async def handle(payload: dict) -> int:
            return payload["n"] * FACTOR
    """,
    "artifacts/audit.py": """
        from memq import Queue
        audit = Queue(queue="audit")

        @audit.on_message
        async def handle(payload: dict) -> str:
            return "v1"
    """,
}


def ev(data: bytes = b'{"n": 1}') -> Event:
    return Event(
        artifact="", kind="memq", type="t", source="t", data=data,
        datacontenttype="application/json", handler="message",
    )


async def start(root: Path, started: list[Any], **kwargs: Any) -> Runtime:
    rt = Runtime(root, plugins=PLUGINS, **kwargs)
    started.append(rt)
    await rt.start()
    await rt.wait_ready(5)
    return rt


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


async def test_code_change_swaps_handlers_without_restarting_listeners(
    make_project, started
) -> None:
    root = make_project(TWO)
    rt = await start(root, started)
    assert (await rt.inject("audit", ev(), via="transport")).result == "v1"
    old_version = rt.artifacts["audit"].code_version
    trigger = rt.artifacts["audit"].trigger

    edit(root / "artifacts/audit.py", '"v1"', '"v2"')
    report = await rt.reload([root / "artifacts/audit.py"])

    assert report.ok, report.errors
    assert report.swapped == ["audit"] and report.restarted == []
    assert report.modules == ["project.artifacts.audit"]  # only the changed module
    assert rt.artifacts["audit"].trigger is trigger  # same listener object, never stopped
    assert BROKER.starts == {"orders": 1, "audit": 1}
    outcome = await rt.inject("audit", ev(), via="transport")
    assert outcome.result == "v2"
    assert outcome.code_version != old_version
    assert report.duration_ms < 1000


async def test_listener_config_change_restarts_only_that_listener(
    make_project, started
) -> None:
    root = make_project(TWO)
    rt = await start(root, started)
    edit(root / "Config.toml", 'queue = "orders"', 'queue = "orders-v2"')
    report = await rt.reload([root / "Config.toml"])
    assert report.ok, report.errors
    assert report.restarted == ["orders"]
    assert report.swapped == ["audit"]
    await rt.wait_ready(5)
    assert BROKER.starts == {"orders": 1, "audit": 1, "orders-v2": 1}
    assert "orders" not in BROKER.serving and "orders-v2" in BROKER.serving
    assert rt.artifacts["orders"].address == "memq:orders-v2"


async def test_configurable_value_change_reaches_handlers_without_restart(
    make_project, started
) -> None:
    root = make_project(TWO)
    rt = await start(root, started)
    assert (await rt.inject("orders", ev(b'{"n": 5}'))).result == 10
    edit(root / "Config.toml", "factor = 2", "factor = 7")
    report = await rt.reload([root / "Config.toml"])
    assert report.restarted == [] and "orders" in report.swapped
    assert (await rt.inject("orders", ev(b'{"n": 5}'))).result == 35


async def test_connection_change_restarts_its_users_only(make_project, started) -> None:
    root = make_project(TWO)
    rt = await start(root, started)
    old_conn = rt.connections["main"]
    edit(root / "connections.toml", "memq://one", "memq://two")
    report = await rt.reload([root / "connections.toml"])
    assert report.ok, report.errors
    assert report.restarted == ["orders"] and report.swapped == ["audit"]
    assert rt.connections["main"] is not old_conn
    assert rt.connections["main"].config.url == "memq://two"  # type: ignore[attr-defined]


async def test_syntax_error_keeps_last_good_code_and_reports_file_line(
    make_project, started
) -> None:
    root = make_project(TWO)
    rt = await start(root, started)
    path = root / "artifacts/audit.py"
    good = path.read_text()
    path.write_text(good.replace('return "v1"', 'return "v2" +'))
    report = await rt.reload([path])
    assert not report.ok
    message = report.errors[0].message
    assert "artifacts/audit.py:6" in message and "syntax" in message
    assert "FAILED, last good code keeps serving" in report.summary()
    state = rt.artifacts["audit"]
    assert state.import_error is not None and state.status == "listening"
    assert (await rt.inject("audit", ev(), via="transport")).result == "v1"

    path.write_text(good.replace('"v1"', '"v3"'))
    fixed = await rt.reload([path])
    assert fixed.ok and rt.artifacts["audit"].import_error is None
    assert (await rt.inject("audit", ev(), via="transport")).result == "v3"


async def test_exception_at_import_keeps_last_good_code(make_project, started) -> None:
    root = make_project(TWO)
    rt = await start(root, started)
    path = root / "artifacts/audit.py"
    path.write_text(path.read_text() + "\nraise RuntimeError('boom at import')\n")
    report = await rt.reload([path])
    assert not report.ok
    assert "RuntimeError: boom at import" in report.errors[0].message
    assert "artifacts/audit.py:8" in report.errors[0].message
    assert (await rt.inject("audit", ev())).result == "v1"


async def test_shared_type_change_reloads_every_importer(make_project, started) -> None:
    root = make_project({
        "types/shapes.py": """
            from pydantic import BaseModel
            class Box(BaseModel):
                w: int
        """,
        "artifacts/boxes.py": """
            from memq import Queue
            from project.types.shapes import Box
            boxes = Queue(queue="boxes")

            @boxes.on_message
            async def area(box: Box) -> dict:
                return box.model_dump()
        """,
    })
    rt = await start(root, started)
    assert (await rt.inject("boxes", ev(b'{"w": 2, "h": 3}'))).result == {"w": 2}
    edit(root / "types/shapes.py", "w: int", "w: int\n    h: int = 1")
    report = await rt.reload([root / "types/shapes.py"])
    assert report.ok and report.swapped == ["boxes"]
    assert (await rt.inject("boxes", ev(b'{"w": 2, "h": 3}'))).result == {"w": 2, "h": 3}


async def test_artifacts_added_and_removed(make_project, started) -> None:
    root = make_project(TWO)
    rt = await start(root, started)
    new = root / "artifacts/extra.py"
    new.write_text(
        "from memq import Queue\nextra = Queue(queue='extra')\n\n"
        "@extra.on_message\nasync def h(payload: dict) -> str:\n    return 'extra'\n"
    )
    report = await rt.reload([new])
    assert report.added == ["extra"]
    await rt.wait_ready(5)
    assert (await rt.inject("extra", ev(), via="transport")).result == "extra"
    (root / "artifacts/audit.py").unlink()
    report = await rt.reload([root / "artifacts/audit.py"])
    assert report.removed == ["audit"]
    assert "audit" not in rt.artifacts and "audit" not in BROKER.serving


async def test_calls_in_flight_finish_on_the_old_code(make_project, started) -> None:
    root = make_project({
        "artifacts/slow.py": """
            import asyncio
            from memq import Queue
            slow = Queue(queue="slow")

            @slow.on_message
            async def h(payload: dict) -> str:
                await asyncio.sleep(payload.get("wait", 0))
                return "old"
        """,
    })
    rt = await start(root, started)
    running = asyncio.create_task(rt.inject("slow", ev(b'{"wait": 0.3}')))
    await asyncio.sleep(0.05)
    edit(root / "artifacts/slow.py", '"old"', '"new"')
    await rt.reload([root / "artifacts/slow.py"])
    assert (await rt.inject("slow", ev(b"{}"))).result == "new"
    assert (await running).result == "old"


async def test_no_event_fails_while_reloading_under_load(make_project, started) -> None:
    root = make_project(TWO)
    rt = await start(root, started)
    path = root / "artifacts/audit.py"
    stop = asyncio.Event()
    results: list[str] = []

    async def load() -> None:
        while not stop.is_set():
            outcome = await rt.inject("audit", ev(), via="transport", timeout=2)
            assert outcome.ok, outcome.error
            results.append(outcome.result)

    loaders = [asyncio.create_task(load()) for _ in range(4)]
    for i in range(2, 12):
        edit(path, f'"v{i - 1}"', f'"v{i}"')
        report = await rt.reload([path])
        assert report.ok and report.swapped == ["audit"]
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.gather(*loaders)
    assert len(results) > 20
    assert results[-1] == "v11"
    assert BROKER.starts["audit"] == 1


async def test_watcher_reloads_on_save(make_project, started) -> None:
    root = make_project(TWO)
    rt = await start(root, started, reload=True)
    finished: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on(msg: object) -> None:
        if isinstance(msg, ReloadFinished) and not finished.done():
            finished.set_result(msg.report)

    rt.bus.subscribe(on)
    await asyncio.sleep(0.2)  # let the watcher settle on the directory
    edit(root / "artifacts/audit.py", '"v1"', '"saved"')
    report = await asyncio.wait_for(finished, 10)
    assert report.ok and report.swapped == ["audit"]
    assert (await rt.inject("audit", ev())).result == "saved"
    # files that are not project code don't trigger reloads
    assert not rt.is_watched(root / ".iwb" / "captures.db")
    assert not rt.is_watched(root / "inbox" / "x.py")
    assert rt.is_watched(root / "Config.prod.toml")


async def test_same_size_saves_within_one_second_all_take_effect(
    make_project, started, monkeypatch
) -> None:
    """Python's bytecode cache matches a source by mtime in whole seconds and size; a
    reload must run what is on disk even when both are unchanged."""
    monkeypatch.setattr("sys.dont_write_bytecode", False)
    root = make_project(TWO)
    rt = await start(root, started)
    path = root / "artifacts/audit.py"
    for i in range(2, 8):  # "v1" → "v2" → ... keeps the file's size
        edit(path, f'"v{i - 1}"', f'"v{i}"')
        report = await rt.reload([path])
        assert report.ok
        assert (await rt.inject("audit", ev())).result == f"v{i}"


async def test_a_disabled_artifact_loads_but_does_not_listen(make_project, started) -> None:
    root = make_project({
        "Config.toml": "[switch]\nenabled = false\n",
        "artifacts/switch.py": """
            from memq import Queue
            from workbench.config import configurable

            q = Queue(queue="sw", enabled=configurable("enabled", bool, default=True))

            @q.on_message
            async def h(payload: dict) -> str:
                return "on"
        """,
    })
    rt = await start(root, started)  # ready although q does not listen
    assert rt.artifacts["q"].status == "disabled" and "sw" not in BROKER.serving
    assert (await rt.inject("q", ev())).result == "on"  # direct inject still works
    edit(root / "Config.toml", "false", "true")
    report = await rt.reload([root / "Config.toml"])
    assert report.ok
    await rt.wait_ready(5)
    assert rt.artifacts["q"].status == "listening" and "sw" in BROKER.serving
    edit(root / "Config.toml", "true", "false")
    await rt.reload([root / "Config.toml"])
    assert rt.artifacts["q"].status == "disabled" and "sw" not in BROKER.serving
