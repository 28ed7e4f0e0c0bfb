"""Mappings in a real Runtime: handlers call them by name, edits hot-reload, broken edits
keep the last good version serving and are reported with file:line."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memq import QueueTrigger

from workbench.events import Event
from workbench.mapper.errors import MappingError
from workbench.runtime.bus import ReloadFinished
from workbench.runtime.runtime import Runtime

from .conftest import BASE_FILES, HEAD

ProjectFactory = Callable[[dict[str, str]], Path]

PLUGINS = {"memq": QueueTrigger}

MAPPING = HEAD + """
    [fields]
    number = "'INV-' + src.id"
    customer = "src.customer"
    total = { each = "src.items", expr = "item.quantity * item.unit_price", reduce = "sum" }
"""

FILES = {
    **BASE_FILES,
    "mappings/to_invoice.toml": MAPPING,
    "artifacts/billing.py": """
        from memq import Queue
        from workbench.mapper import mapping

        from project.types.orders import Order

        to_invoice = mapping("to_invoice")
        billing = Queue(queue="orders")

        @billing.on_message
        async def bill(order: Order) -> dict:
            return to_invoice(order).model_dump(mode="json")
    """,
}

ORDER = {"id": "7", "customer": "Ada", "items": [{"sku": "a", "quantity": 2, "unit_price": 3}]}


def event(payload: dict[str, Any] = ORDER) -> Event:
    return Event(artifact="", kind="memq", type="t", source="t", data=json.dumps(payload).encode(),
                 datacontenttype="application/json", handler="message")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


async def start(root: Path, started: list[Any], **kwargs: Any) -> Runtime:
    rt = Runtime(root, plugins=PLUGINS, **kwargs)
    started.append(rt)
    await rt.start()
    await rt.wait_ready(5)
    return rt


async def result(rt: Runtime) -> Any:
    outcome = await rt.inject("billing", event())
    assert outcome.ok, outcome.error
    return outcome.result


async def test_a_handler_sees_the_edited_mapping_after_reload(
    make_project: ProjectFactory, started: list[Any]
) -> None:
    root = make_project(FILES)
    rt = await start(root, started)
    assert (await result(rt))["number"] == "INV-7"
    mapping_file = root / "mappings/to_invoice.toml"
    edit(mapping_file, "'INV-' + src.id", "'N' + src.id.zfill(3)")
    report = await rt.reload([mapping_file])
    assert report.ok and report.mappings == ["to_invoice"]
    assert report.modules == [] and report.swapped == []  # no module was re-imported
    assert (await result(rt))["number"] == "N007"
    assert "mappings to_invoice" in report.summary()


async def test_a_broken_edit_keeps_the_last_good_mapping_and_reports_file_line(
    make_project: ProjectFactory, started: list[Any]
) -> None:
    root = make_project(FILES)
    rt = await start(root, started)
    mapping_file = root / "mappings/to_invoice.toml"
    edit(mapping_file, "customer = \"src.customer\"", "customer = \"src.custmer.lower(\"")
    report = await rt.reload([mapping_file])
    assert not report.ok
    (err,) = report.errors
    assert isinstance(err, MappingError)
    assert err.file == "mappings/to_invoice.toml" and err.line == 7
    assert err.field == "customer" and "syntax error" in err.message
    assert "mappings/to_invoice.toml:7" in report.summary()
    assert (await result(rt))["customer"] == "Ada"  # the last good version serves
    # an unknown source path is caught too, with the path
    edit(mapping_file, "src.custmer.lower(\"", "src.custmer\"")
    report = await rt.reload([mapping_file])
    assert "unknown source path 'src.custmer'" in report.errors[0].message
    assert (await result(rt))["customer"] == "Ada"
    edit(mapping_file, "src.custmer", "src.customer.upper()")
    report = await rt.reload([mapping_file])
    assert report.ok and (await result(rt))["customer"] == "ADA"


async def test_types_changed_under_a_mapping_are_reported_and_the_last_good_serves(
    make_project: ProjectFactory, started: list[Any]
) -> None:
    root = make_project(FILES)
    rt = await start(root, started)
    billing = root / "types/billing.py"
    edit(billing, "    customer: str\n", "    client: str\n")
    report = await rt.reload([billing])
    messages = [e.message for e in report.errors]
    assert any("mappings/to_invoice.toml:7: field 'customer': Invoice has no field "
               "'customer'" in m for m in messages), messages
    assert any("required field 'client'" in m for m in messages), messages
    assert (await result(rt))["customer"] == "Ada"
    # mapping the renamed field makes it load again, over the new class
    edit(root / "mappings/to_invoice.toml", "customer = ", "client = ")
    report = await rt.reload([root / "mappings/to_invoice.toml"])
    assert report.ok, [e.message for e in report.errors]
    assert (await result(rt))["client"] == "Ada"


async def test_a_new_function_module_reaches_mappings_that_use_it(
    make_project: ProjectFactory, started: list[Any]
) -> None:
    files = dict(FILES)
    files["mappings/to_invoice.toml"] = MAPPING.replace(
        'target = "project.types.billing:Invoice"',
        'target = "project.types.billing:Invoice"\n    uses = ["project.functions.pricing:shout"]',
    ).replace('"src.customer"', '"shout(src.customer)"')
    root = make_project(files)
    rt = await start(root, started)
    assert (await result(rt))["customer"] == "ADA!"
    pricing = root / "functions/pricing.py"
    edit(pricing, 'text.upper() + "!"', 'text.upper() + "?"')
    report = await rt.reload([pricing])
    assert report.ok and "to_invoice" in report.mappings
    assert (await result(rt))["customer"] == "ADA?"


async def test_load_reports_mapping_errors_with_the_others(make_project: ProjectFactory) -> None:
    files = dict(FILES)
    files["mappings/broken.toml"] = """
        [mapping]
        source = "project.types.orders:Nope"
        target = "project.types.billing:Invoice"
    """
    rt = Runtime(make_project(files), plugins=PLUGINS)
    errors = rt.load()
    (err,) = errors
    assert isinstance(err, MappingError) and err.file == "mappings/broken.toml"
    assert err.line == 2 and "has no 'Nope'" in err.message
    assert rt.mappings is not None and rt.mappings.get("to_invoice") is not None


async def test_the_watcher_reloads_a_saved_mapping(
    make_project: ProjectFactory, started: list[Any]
) -> None:
    root = make_project(FILES)
    rt = await start(root, started, reload=True)
    assert rt.is_watched(root / "mappings/to_invoice.toml")
    assert not rt.is_watched(root / "mappings/README.md")
    assert not rt.is_watched(root / "types/notes.toml")
    finished: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on(msg: object) -> None:
        if isinstance(msg, ReloadFinished) and msg.report.mappings and not finished.done():
            finished.set_result(msg.report)

    rt.bus.subscribe(on)
    await asyncio.sleep(0.2)  # let the watcher settle on the directory
    edit(root / "mappings/to_invoice.toml", "'INV-' + src.id", "'W-' + src.id")
    report = await asyncio.wait_for(finished, 10)
    assert report.ok and report.mappings == ["to_invoice"]
    assert (await result(rt))["number"] == "W-7"


async def test_a_first_mapping_added_while_running_is_loaded(
    make_project: ProjectFactory, started: list[Any]
) -> None:
    files = {k: v for k, v in FILES.items() if not k.startswith("mappings/")}
    root = make_project(files)
    rt = await start(root, started)
    assert rt.mappings is None  # a project without mappings does not load the mapper
    outcome = await rt.inject("billing", event())
    assert outcome.error is not None
    assert outcome.error.type == "MappingNotFoundError"
    assert "No mappings are loaded in this process" in outcome.error.message
    path = root / "mappings/to_invoice.toml"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(MAPPING).lstrip())
    assert rt.is_watched(path)
    report = await rt.reload([path])
    assert report.ok and report.mappings == ["to_invoice"]
    assert (await result(rt))["number"] == "INV-7"
