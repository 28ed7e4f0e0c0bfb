"""bench-mapper-screen: the data mapper opens on a 200-field type in under 300 ms.

A generated project has a source type and a target type of 200 fields each (199 values of
five kinds, from `str` to `str | None`, and a list of models) and a mapping between them
that maps every field. A headless app (120x36) runs over a real runtime on it (listeners
off); each run pushes `MapperScreen` on that mapping and measures from `push_screen` to
the screen's `Ready` message, which it posts after the first render that shows both trees,
the editor and the preview over the type's example. Between runs the screen is closed.

Reported: every run, the first (cold: the mapper's modules are imported then), the median
(the target: < 300 ms), and the time from Enter on an edited expression to the preview
of the whole output over the change.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from benchmarks.common import BenchError, Report, median, run, say, workdir

FIELDS = 200
TARGET_MS = 300.0
TIMEOUT = 30.0
KINDS = ("str", "int", "float", "bool", "str | None")
EXAMPLES = {"str": '"text"', "int": "3", "float": "2.5", "bool": "True",
            "str | None": '"maybe"'}
EXPRESSIONS = {"str": "src.{f}.upper()", "int": "src.{f} * 2", "float": "round(src.{f}, 1)",
               "bool": "not src.{f}", "str | None": "src.{f}"}


def write_project(root: Path, fields: int = FIELDS) -> str:
    """A project with `WideSource` and `WideTarget` of `fields` fields each and the
    mapping `wide` between them; returns the mapping's name."""
    (root / "types").mkdir(parents=True)
    (root / "mappings").mkdir()
    (root / "iwb.toml").write_text('name = "wide"\n', "utf-8")
    source = [
        "from __future__ import annotations", "", "from pydantic import BaseModel, Field", "",
        "", "class Line(BaseModel):", '    sku: str = Field(examples=["A-1"])',
        "    qty: int = Field(examples=[2])", "", "", "class OutLine(BaseModel):",
        "    sku: str", "    qty: int", "", "", "class WideSource(BaseModel):",
    ]
    target = ["", "", "class WideTarget(BaseModel):"]
    rules = []
    for i in range(fields - 1):
        kind = KINDS[i % len(KINDS)]
        name = f"field_{i:03d}"
        source.append(f"    {name}: {kind} = Field(examples=[{EXAMPLES[kind]}])")
        target.append(f"    {name}: {kind}")
        rules.append(f'{name} = "{EXPRESSIONS[kind].format(f=name)}"')
    source.append("    lines: list[Line] = Field(default_factory=list)")
    target.append("    lines: list[OutLine]")
    (root / "types" / "wide.py").write_text("\n".join(source + target) + "\n", "utf-8")
    (root / "mappings" / "wide.toml").write_text(
        "# every field of WideSource into WideTarget\n"
        "[mapping]\n"
        'source = "project.types.wide:WideSource"\n'
        'target = "project.types.wide:WideTarget"\n\n'
        "[fields]\n" + "\n".join(rules) + "\n\n"
        '[fields.lines]\neach = "src.lines"\n'
        '[fields.lines.fields]\nsku = "item.sku"\nqty = "item.qty"\n',
        "utf-8",
    )
    return "wide"


async def measure(root: Path, mapping: str, runs: int) -> Report:
    from textual.app import App

    from workbench.runtime.runtime import Runtime
    from workbench.tui.screens.mapper import MapperScreen

    class Bench(App[None]):
        def __init__(self) -> None:
            super().__init__()
            self.ready = asyncio.Event()
            self.ready_at = 0.0

        def on_mapper_screen_ready(self, message: MapperScreen.Ready) -> None:
            self.ready_at = time.perf_counter()
            self.ready.set()

    runtime = Runtime(root, reload=False, capture=False)
    await runtime.start(strict=False, listen=False)
    if runtime.load_errors:
        raise BenchError(f"the generated project does not load: {runtime.load_errors[0]}")
    report = Report("mapper_screen")
    times: list[float] = []
    edit_ms: float | None = None
    app = Bench()
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            for _ in range(runs):
                app.ready.clear()
                screen = MapperScreen(runtime, mapping=mapping)
                started = time.perf_counter()
                app.push_screen(screen)
                try:
                    await asyncio.wait_for(app.ready.wait(), TIMEOUT)
                except TimeoutError:
                    raise BenchError(f"the mapper did not open within {TIMEOUT:g} s") from None
                times.append((app.ready_at - started) * 1000.0)
                check_complete(screen)
                await pilot.pause()
                if len(times) == runs:
                    edit_ms = await edit(pilot, screen)
                await app.pop_screen()
                await pilot.pause()
    finally:
        await runtime.stop(1)
    say(f"  opened {runs} times: " + ", ".join(f"{t:.0f}" for t in times) + " ms")
    report.figures.update({
        "fields": FIELDS, "runs": runs, "open_ms": [round(t, 1) for t in times],
        "open_first_ms": round(times[0], 1), "open_median_ms": round(median(times), 1),
        "open_max_ms": round(max(times), 1),
        "edit_to_preview_ms": round(edit_ms, 1) if edit_ms is not None else None,
    })
    report.check("open_median_ms", median(times), "<", TARGET_MS, " ms")
    return report


def check_complete(screen: Any) -> None:
    """The screen shows the whole mapping: every field in both trees, the preview of all."""
    analysis = screen.analysis
    if analysis is None or not screen.ready:
        raise BenchError("Ready came before the mapping was shown")
    fields = sum(1 for root in analysis.targets for _ in root.walk())
    if fields != FIELDS + 2 or len(screen.target_tree._by_path) != fields:
        raise BenchError(f"the target tree shows {fields} fields, not {FIELDS + 2}")
    if not isinstance(analysis.output, dict) or len(analysis.output) != FIELDS:
        raise BenchError(f"the preview is not complete: {str(analysis.output)[:200]}")
    if analysis.error_count:
        raise BenchError(f"the mapping has errors: {analysis.general or analysis.issues}")


async def edit(pilot: Any, screen: Any) -> float:
    """Milliseconds from Enter on an edited expression to the preview over it."""
    screen.target_tree.focus()
    await pilot.press("home", "enter")
    await pilot.press(*list(' + "!"'))
    before = screen.revision
    started = time.perf_counter()
    await pilot.press("enter")
    ends = started + TIMEOUT
    while not (screen.revision > before and screen.settled):
        if time.perf_counter() > ends:
            raise BenchError("the preview did not follow the edit")
        await asyncio.sleep(0.001)
    took = (time.perf_counter() - started) * 1000.0
    view = screen.analysis.fields["field_000"]
    if screen.analysis.output.get("field_000") != "TEXT!":
        raise BenchError(f"the edit did not reach the preview: field_000 = {view.raw!r}, "
                         f"errors {view.errors}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench-mapper-screen",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="times the screen is opened "
                        "(default 7)")
    args = parser.parse_args()
    if args.runs < 1:
        raise BenchError(f"--runs {args.runs} must be at least 1")
    with workdir() as tmp:
        root = tmp / "wide"
        mapping = write_project(root)
        report = asyncio.run(measure(root, mapping, args.runs))
    return report.finish()


if __name__ == "__main__":
    run("mapper_screen", main)
