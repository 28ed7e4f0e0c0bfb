"""`iwb map`: list, check, run, export and infer data mappings.

    iwb map list   PATH [--json]
    iwb map check  PATH [NAME...] [--json]              exit 1 on any error
    iwb map run    PATH NAME (--input FILE | --capture ID) [--raw] [--explain] [--json]
    iwb map export PATH NAME                            the generated Python source
    iwb map infer  PATH SAMPLE --name Order [--module orders] [--dry-run]
    iwb map new    PATH NAME --source REF --target REF [--auto]

The commands load only what mappings need: Config.toml and the project's types and
functions (not its artifacts, so no listener and no plugin is touched). Importing this
module imports click only; each command imports the mapper when it runs, so `iwb --help`
stays fast.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from workbench.errors import WorkbenchError
    from workbench.mapper.registry import MappingRegistry
    from workbench.project.config import ConfigResolver
    from workbench.project.settings import ProjectSettings

_project = click.argument(
    "path", type=click.Path(file_okay=False, path_type=Path), default=Path(".")
)
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_profile = click.option("--profile", "-p", metavar="NAME", help="Overlay Config.NAME.toml.")


def _fail(message: str, title: str = "error") -> NoReturn:
    click.echo(f"iwb: {title}: {message}", err=True)
    sys.exit(1)


def _dump(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@dataclass
class _Loaded:
    root: Path
    settings: ProjectSettings
    resolver: ConfigResolver
    registry: MappingRegistry
    project_errors: list[WorkbenchError] = field(default_factory=list)


def _load(path: Path, profile: str | None = None, *, mappings: bool = True) -> _Loaded:
    """The project's types and functions, and (with `mappings`) its mappings."""
    from workbench.config import set_project_root
    from workbench.errors import WorkbenchError
    from workbench.mapper.registry import MappingRegistry, set_current
    from workbench.project.config import ConfigResolver
    from workbench.project.loader import ProjectLoader
    from workbench.project.settings import load_settings

    root = path.resolve()
    if not root.is_dir():
        _fail(f"the project directory {str(path)!r} does not exist", "cannot load project")
    try:
        settings = load_settings(root)
    except WorkbenchError as exc:
        _fail(exc.message, exc.title)
    set_project_root(root)
    resolver = ConfigResolver(root, profile)
    loader = ProjectLoader(root, settings)
    targets = [(f, p) for f, p in loader.all_python_files() if f != "artifacts"]
    result = loader.load(resolver, targets, kinds=())
    unique: list[WorkbenchError] = []
    for err in [*resolver.errors, *result.errors]:  # an import's config error is in both
        if all(err is not other for other in unique):
            unique.append(err)
    registry = MappingRegistry(settings.folder("mappings"), root)
    if mappings:
        registry.load(resolver)
        set_current(registry)
    return _Loaded(root, settings, resolver, registry, unique)


@click.group("map", context_settings={"help_option_names": ["-h", "--help"]})
def map_group() -> None:
    """Data mappings (mappings/*.toml): list, check, run, export, infer types."""


# ---------------------------------------------------------------------------- list


@map_group.command("list")
@_project
@_profile
@_json
def list_(path: Path, profile: str | None, as_json: bool) -> None:
    """List the project's mappings: sources, target, fields, and whether each loads."""
    loaded = _load(path, profile)
    rows = loaded.registry.describe()
    if as_json:
        _dump({"project": str(loaded.root), "mappings": rows,
               "project_errors": [e.message for e in loaded.project_errors]})
        return
    if not rows:
        click.echo(f"no mappings in {loaded.settings.folder('mappings')}", err=True)
    for row in rows:
        sources = ", ".join(f"{n}: {r}" for n, r in row["sources"].items())
        status = "ok" if row["ok"] else "FAILED"
        click.echo(f"{row['name']:<28} {status:<7} {row['fields']:>3} fields  "
                   f"{sources} -> {row['target']}")
        for err in row["errors"]:
            click.echo(f"    {err['text']}", err=True)
    for err in loaded.project_errors:
        click.echo(f"project: {err.message}", err=True)


# ---------------------------------------------------------------------------- check


@map_group.command("check")
@_project
@click.argument("names", nargs=-1)
@_profile
@_json
def check(path: Path, names: tuple[str, ...], profile: str | None, as_json: bool) -> None:
    """Check every mapping (or NAMES) against its types.

    Reports unmapped required fields, fields the target lacks, unknown source paths, bad
    expressions, type mismatches, unknown or cyclic sub-mappings — each with file:line and
    the field path. Exits 1 on any error (warnings alone exit 0).
    """
    loaded = _load(path, profile)
    registry = loaded.registry
    unknown = [n for n in names if n not in registry.entries]
    if unknown:
        _fail(f"no mapping {', '.join(map(repr, unknown))}; mappings: "
              f"{', '.join(registry.names()) or '(none)'}", "no such mapping")
    issues = registry.issues(names or None)
    errors = [i for i in issues if i.level == "error"]
    warnings = [i for i in issues if i.level == "warning"]
    project = [e.message for e in loaded.project_errors]
    ok = not errors and not project
    if as_json:
        _dump({
            "ok": ok,
            "mappings": [
                {"name": e.name, "file": e.describe()["file"], "ok": e.ok,
                 "issues": [i.to_dict() for i in e.issues]}
                for n, e in sorted(registry.entries.items()) if not names or n in names
            ],
            "errors": len(errors),
            "warnings": len(warnings),
            "project_errors": project,
        })
    else:
        for issue in issues:
            field_part = f"field {issue.field!r}: " if issue.field else ""
            click.echo(f"{issue.where()}: {issue.level}: {field_part}{issue.message}")
        for message in project:
            click.echo(f"project: error: {message}")
        count = len(registry.entries) if not names else len(names)
        click.echo(f"{count} mapping(s): {len(errors) + len(project)} error(s), "
                   f"{len(warnings)} warning(s)", err=True)
    sys.exit(0 if ok else 1)


# ---------------------------------------------------------------------------- run


@map_group.command("run")
@_project
@click.argument("name")
@click.option("--input", "-i", "input_", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="A JSON file: the source (an object keyed by source "
              "name when the mapping has several).")
@click.option("--capture", "-c", metavar="ID", help="A captured event's payload (id or "
              "prefix, see `iwb captures`).")
@click.option("--raw", is_flag=True, help="Print the dict before target validation.")
@click.option("--explain", is_flag=True, help="Evaluate field by field: each value or error.")
@_profile
@_json
def run(
    path: Path, name: str, input_: Path | None, capture: str | None, raw: bool, explain: bool,
    profile: str | None, as_json: bool,
) -> None:
    """Run mapping NAME over an input and print the target as JSON. Exits 1 on failure."""
    from workbench.errors import WorkbenchError

    if (input_ is None) == (capture is None):
        _fail("give one of --input FILE or --capture ID", "no input")
    loaded = _load(path, profile)
    registry = loaded.registry
    try:
        compiled = registry.get(name)
    except WorkbenchError as exc:
        _fail(exc.message, exc.title)
    payload = _payload(loaded, input_, capture)
    names = list(compiled.sources)
    if len(names) == 1:
        args = [payload]
    elif isinstance(payload, dict) and all(n in payload for n in names):
        args = [payload[n] for n in names]
    else:
        _fail(f"mapping {name!r} has sources {', '.join(names)}: the input must be an object "
              f"with those keys", "bad input")
    if explain:
        _explain(loaded, name, dict(zip(names, args, strict=True)), as_json)
        return
    func = compiled.raw if raw else compiled.func
    started = time.perf_counter()
    try:
        result = func(*args)
    except WorkbenchError as exc:
        duration = (time.perf_counter() - started) * 1000
        if as_json:
            _dump({"mapping": name, "ok": False, "result": None, "duration_ms": duration,
                   "error": exc.to_dict() if hasattr(exc, "to_dict") else exc.message})
            sys.exit(1)
        _fail(exc.message, exc.title)
    duration = (time.perf_counter() - started) * 1000
    data = _jsonable(result)
    if as_json:
        _dump({"mapping": name, "ok": True, "result": data, "duration_ms": duration,
               "error": None})
    else:
        _dump(data)


def _jsonable(value: Any) -> Any:
    from pydantic import BaseModel
    from pydantic_core import to_jsonable_python

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return to_jsonable_python(value)


def _payload(loaded: _Loaded, input_: Path | None, capture: str | None) -> Any:
    from workbench.errors import WorkbenchError

    if input_ is not None:
        try:
            return json.loads(input_.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            _fail(f"{str(input_)!r} is not a JSON file: {exc}", "bad input")
    from workbench.runtime.capture import CaptureStore

    assert capture is not None
    try:
        store = CaptureStore.open_readonly(loaded.settings.state_dir / "captures.db")
        try:
            event = store.get(capture).event
        finally:
            store.close_readonly()
    except WorkbenchError as exc:
        _fail(exc.message, exc.title)
    try:
        return event.json()
    except ValueError:
        kind = event.datacontenttype or "no content type"
        _fail(f"the payload of capture {capture!r} is not JSON ({kind}): "
              f"{event.summary(60)!r}", "bad input")


def _explain(loaded: _Loaded, name: str, sources: dict[str, Any], as_json: bool) -> None:
    from workbench.errors import WorkbenchError
    from workbench.mapper.evaluate import evaluate

    entry = loaded.registry.entries[name]
    assert entry.bound is not None
    try:
        result = evaluate(entry.bound, sources, mappings=loaded.registry.funcs,
                          raw_mappings=loaded.registry.raws)
    except WorkbenchError as exc:
        _fail(exc.message, exc.title)
    rows = [f.to_dict() for f in result.fields] + [
        {**f.to_dict(), "value": None} for f in result.validation
    ]
    if as_json:
        _dump({"mapping": name, "ok": result.ok, "fields": rows,
               "result": _jsonable(result.result) if result.result is not None else None})
    else:
        file = entry.spec.file if entry.spec else name
        for row in rows:
            shown = f"ERROR {row['error']}" if row["error"] else row["value"]
            click.echo(f"{file}:{row['line']:<4} {row['path']:<28} {shown}")
    sys.exit(0 if result.ok else 1)


# ---------------------------------------------------------------------------- export


@map_group.command("export")
@_project
@click.argument("name")
@_profile
def export(path: Path, name: str, profile: str | None) -> None:
    """Print the Python source mapping NAME compiles to."""
    from workbench.errors import WorkbenchError

    loaded = _load(path, profile)
    try:
        compiled = loaded.registry.get(name)
    except WorkbenchError as exc:
        _fail(exc.message, exc.title)
    click.echo(compiled.source, nl=False)


# ---------------------------------------------------------------------------- infer


@map_group.command("infer")
@_project
@click.argument("sample", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", "-n", required=True, help="The model's class name, e.g. Order.")
@click.option("--module", "-m", help="types/<module>.py (default: the name in snake_case).")
@click.option("--dry-run", is_flag=True, help="Print the module instead of writing it.")
def infer(path: Path, sample: Path, name: str, module: str | None, dry_run: bool) -> None:
    """Write a pydantic model inferred from SAMPLE (JSON, or CSV with a header) into
    types/<module>.py: nested models for nested objects, optional fields for nulls and
    missing keys."""
    from workbench.errors import WorkbenchError
    from workbench.mapper import infer as inference
    from workbench.project.settings import load_settings

    root = path.resolve()
    if not root.is_dir():
        _fail(f"the project directory {str(path)!r} does not exist", "cannot load project")
    try:
        settings = load_settings(root)
        data = inference.load_sample(sample)
        target, text, models = inference.write_models(
            settings.folder("types"), module or inference.python_name(name), data, name,
            source=sample.name, dry_run=dry_run,
        )
    except WorkbenchError as exc:
        _fail(exc.message, exc.title)
    if dry_run:
        click.echo(text, nl=False)
        return
    rel = target.relative_to(root) if target.is_relative_to(root) else target
    module_name = ".".join(("project", *rel.with_suffix("").parts))
    click.echo(f"wrote {', '.join(m.name for m in models)} to {rel}")
    click.echo(f'use it as "{module_name}:{name}"', err=True)


# ---------------------------------------------------------------------------- new


@map_group.command("new")
@_project
@click.argument("name")
@click.option("--source", "-s", "source", required=True, metavar="REF",
              help='The source type, e.g. "project.types.orders:Order".')
@click.option("--target", "-t", "target", required=True, metavar="REF",
              help='The target type, e.g. "project.types.billing:Invoice".')
@click.option("--auto/--no-auto", default=True, show_default=True,
              help="Map fields whose names and types match.")
@_profile
def new(path: Path, name: str, source: str, target: str, auto: bool,
        profile: str | None) -> None:
    """Create mappings/NAME.toml from SOURCE to TARGET (auto-mapped by name and type)."""
    from workbench.mapper.edit import new_mapping_text, write_mapping
    from workbench.mapper.resolve import resolve_ref
    from workbench.mapper.schema import apply_proposals, automap, unmapped_required
    from workbench.mapper.spec import parse_text

    loaded = _load(path, profile, mappings=False)
    file = loaded.settings.folder("mappings") / f"{name}.toml"
    if file.exists():
        _fail(f"{file} exists; edit it, or choose another name", "mapping exists")
    if not name.isidentifier():
        _fail(f"{name!r} is not a mapping name (letters, digits and _)", "bad name")
    try:
        source_t, target_t = resolve_ref(source), resolve_ref(target)
    except LookupError as exc:
        _fail(str(exc), "unknown type")
    text = new_mapping_text(source, target, description=f"{name}: {source} -> {target}")
    proposals = automap({"src": source_t}, target_t) if auto else []
    text = apply_proposals(text, proposals)
    write_mapping(file, text)
    spec, _ = parse_text(text, file, root=loaded.root)
    click.echo(f"created {file.relative_to(loaded.root)} ({len(proposals)} field(s) mapped)")
    if spec is not None:
        for node in unmapped_required(target_t, spec):
            click.echo(f"  unmapped required field: {node.path} ({node.type})", err=True)
