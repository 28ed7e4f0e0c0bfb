"""The `iwb` command. Thin: every command calls the runtime or the project model.

Heavy modules (the runtime, plugins, Textual) are imported inside the commands so that
`iwb --help` starts fast. Errors go to stderr with a non-zero exit; results to stdout,
as text or, with `--json`, as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from workbench import __version__
from workbench.mapper.cli import map_group  # click only; the mapper loads inside commands

if TYPE_CHECKING:
    from workbench.events import Event, Outcome
    from workbench.runtime.runtime import Runtime

T = TypeVar("T")

project_arg = click.argument(
    "path", type=click.Path(file_okay=False, path_type=Path), default=Path(".")
)
profile_opt = click.option("--profile", "-p", metavar="NAME", help="Overlay Config.NAME.toml.")
json_opt = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
via_opt = click.option(
    "--via", type=click.Choice(["direct", "transport"]), default="direct", show_default=True,
    help="direct: call the handler in-process; transport: send through the real transport.",
)


def fail(message: str, title: str = "error") -> NoReturn:
    click.echo(f"iwb: {title}: {message}", err=True)
    sys.exit(1)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    from workbench.errors import ProjectLoadError, WorkbenchError

    try:
        return asyncio.run(coro)
    except ProjectLoadError as exc:
        click.echo(f"iwb: {exc.title}\n{exc.message}", err=True)
        sys.exit(1)
    except WorkbenchError as exc:
        fail(exc.message, exc.title)
    except TimeoutError as exc:
        fail(str(exc) or "timed out", "timeout")


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="iwb")
def main() -> None:
    """iwb — the integration workbench.

    Write services, listeners and automations in plain Python; run them with hot reload,
    capture every event, replay it against new code, inject test events.
    """


# ---------------------------------------------------------------------------- new


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", help="Project name (default: the directory name).")
def new(path: Path, name: str | None) -> None:
    """Create a working project at PATH (an HTTP service, a type, a saved event)."""
    from workbench.scaffold import create_project

    try:
        created = create_project(path, name=name)
    except FileExistsError as exc:
        fail(str(exc), "cannot create project")
    for file in created:
        click.echo(f"created {file}")
    click.echo(f"\nNext: iwb run {path}")


# ---------------------------------------------------------------------------- check


@main.command()
@project_arg
@profile_opt
@json_opt
def check(path: Path, profile: str | None, as_json: bool) -> None:
    """Load the project, list its artifacts, report every config and import error.

    Exits 1 if there is any error.
    """
    from workbench.errors import WorkbenchError
    from workbench.project.loader import describe_errors
    from workbench.runtime.runtime import Runtime

    runtime = Runtime(path, profile=profile)
    try:
        errors = runtime.load()
    except WorkbenchError as exc:
        errors = list(getattr(exc, "errors", [exc]))
    artifacts = [s.to_dict() for s in runtime.artifacts.values()]
    config = [
        {
            "table": d.module, "key": d.name, "type": d.type_name, "value": d.shown(),
            "origin": d.origin, "secret": d.secret, "required": d.required,
        }
        for d in runtime.declared_config()
    ]
    connections = {n: {"kind": c.kind, **c.describe()} for n, c in runtime.connections.items()}
    if as_json:
        _print_json({
            "project": str(runtime.root),
            "ok": not errors,
            "artifacts": artifacts,
            "config": config,
            "connections": connections,
            "errors": describe_errors(errors),
        })
    else:
        click.echo(f"project {runtime.root}")
        for art in artifacts:
            flag = "FAILED" if art["import_error"] else "ok"
            click.echo(
                f"  {art['name']:<24} {art['kind']:<11} {flag:<7} {art['address']}"
            )
        for item in config:
            click.echo(f"  config {item['table']}.{item['key']} = {item['value']!r} "
                       f"({item['origin']})")
        for cname, conn in connections.items():
            click.echo(f"  connection {cname} ({conn['kind']})")
        if errors:
            click.echo(f"\n{len(errors)} error(s):", err=True)
            for err in errors:
                click.echo(f"  - {err.message}", err=True)
    sys.exit(1 if errors else 0)


# ---------------------------------------------------------------------------- run


@main.command()
@project_arg
@profile_opt
@click.option("--admin-host", metavar="HOST", help="Admin listener host (default 127.0.0.1).")
@click.option("--admin-port", type=int, metavar="N", help="Admin listener port (default 9180).")
@click.option("--reload/--no-reload", default=False, show_default=True,
              help="Hot-reload changed modules.")
@click.option("--set", "overrides", multiple=True, metavar="KIND.KEY=VALUE",
              help="A plugin setting over iwb.toml's [plugins.KIND], e.g. http.server=hypercorn.")
@click.option("--log-events/--no-log-events", default=False, show_default=True,
              help="Log every event (errors are always logged).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def run(
    path: Path, profile: str | None, admin_host: str | None, admin_port: int | None,
    reload: bool, overrides: tuple[str, ...], log_events: bool, log_level: str,
) -> None:
    """Run the project headless: JSON logs, /healthz /readyz /metrics, graceful drain."""
    from workbench import headless

    plugin_settings = parse_overrides(overrides)
    headless.setup_logging(log_level)
    code = event_loop_runner()(
        headless.run(
            path, profile=profile, admin_host=admin_host, admin_port=admin_port,
            reload=reload, plugin_settings=plugin_settings, log_events=log_events,
        )
    )
    sys.exit(code)


def event_loop_runner() -> Any:
    """`uvloop.run` when uvloop is installed (it comes with the `http` extra), else
    `asyncio.run`; IWB_LOOP=asyncio forces the standard loop."""
    import os

    if os.environ.get("IWB_LOOP", "auto") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run
    return asyncio.run


def parse_overrides(items: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """`http.server=hypercorn` → {"http": {"server": "hypercorn"}}; values are read as
    TOML values when they parse (numbers, booleans, quoted strings), else as strings."""
    import tomllib

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        kind, dot, name = key.strip().partition(".")
        if not sep or not dot or not kind or not name:
            fail(f"--set {item!r}: use KIND.KEY=VALUE, e.g. http.server=hypercorn", "usage")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out.setdefault(kind, {})[name] = value
    return out


# ---------------------------------------------------------------------------- open


@main.command("open")
@project_arg
@profile_opt
@click.option("--reload/--no-reload", default=True, show_default=True,
              help="Hot-reload changed modules.")
def open_(path: Path, profile: str | None, reload: bool) -> None:
    """Open the workbench on PATH: artifact tree, live events, inject, replay.

    The runtime's log goes to PATH/.iwb/iwb.log while the workbench runs.
    """
    from workbench import tui

    if not path.is_dir():
        fail(f"the project directory {str(path)!r} does not exist", "cannot open project")
    sys.exit(tui.open_project(path, profile=profile, reload=reload))


# ---------------------------------------------------------------------------- captures


@main.command()
@project_arg
@click.option("--artifact", "-a", help="Only this artifact.")
@click.option("--kind", "-k", help="Only this trigger kind.")
@click.option("--status", "-s", type=click.Choice(["ok", "error", "rejected"]))
@click.option("--text", "-t", help="Free text, searched in summaries, payloads and errors.")
@click.option("--since", type=float, metavar="SECONDS", help="Only the last SECONDS.")
@click.option("--limit", "-n", type=int, default=20, show_default=True)
@click.option("--show", metavar="ID", help="Show one capture in full (event and outcome).")
@json_opt
def captures(
    path: Path, artifact: str | None, kind: str | None, status: str | None, text: str | None,
    since: float | None, limit: int, show: str | None, as_json: bool,
) -> None:
    """List captured events, newest first (from .iwb/captures.db)."""
    import time

    from workbench.errors import WorkbenchError
    from workbench.runtime.capture import CaptureStore

    try:
        store = CaptureStore.open_readonly(path / ".iwb" / "captures.db")
        if show:
            record = store.get(show)
            _print_json(record.to_dict(full=True))
            return
        records = store.query(
            artifact=artifact, kind=kind, status=status, text=text,
            since=time.time() - since if since else None, limit=limit,
        )
    except WorkbenchError as exc:
        fail(exc.message, exc.title)
    if as_json:
        _print_json([r.to_dict() for r in records])
        return
    for r in records:
        when = r.to_dict()["time"][11:23]
        err = f"  {r.error_type}" if r.error_type else ""
        click.echo(
            f"{r.id[:12]}  {when}  {r.artifact:<16} {r.status:<8} "
            f"{r.duration_ms:8.2f} ms  {r.summary[:60]}{err}"
        )
    if not records:
        click.echo("no captured events match", err=True)


# ---------------------------------------------------------------------------- replay


@main.command()
@project_arg
@click.argument("ids", nargs=-1)
@click.option("--last", type=int, metavar="N", help="Replay the last N captured events.")
@click.option("--artifact", "-a",
              help="With --last: only this artifact's events. With --reread: the artifact.")
@via_opt
@click.option("--reread", metavar="POSITION",
              help="Read messages again from the transport's log instead, from POSITION "
                   "(Kafka: [topic/]partition@offset), and diff each against its latest "
                   "capture.")
@click.option("--count", type=int, default=1, show_default=True, metavar="N",
              help="With --reread: how many messages.")
@click.option("--sandbox", is_flag=True, help="Record outbound calls instead of sending them.")
@profile_opt
@json_opt
def replay(
    path: Path, ids: tuple[str, ...], last: int | None, artifact: str | None, via: str,
    reread: str | None, count: int, sandbox: bool, profile: str | None, as_json: bool,
) -> None:
    """Replay captured events to the current code and diff the outcomes.

    With --reread, read messages again from the transport's own log (a Kafka partition
    from an offset) and hand them to the current code. Exits 1 when any replayed outcome
    differs from the recorded one.
    """
    if reread is not None:
        if ids or last is not None:
            fail("--reread reads from the transport's log; leave out IDS and --last",
                 "nothing to replay")
        if not artifact:
            fail("--reread needs the artifact: -a NAME", "nothing to replay")
    elif not ids and last is None:
        fail("name capture IDs or use --last N (or --reread POSITION)", "nothing to replay")

    async def go() -> list[Any]:
        if reread is not None:
            assert artifact is not None
            runtime = await _runtime_for(path, profile, "direct", None)
            try:
                return await runtime.replay_log(artifact, reread, count, sandboxed=sandbox)
            finally:
                await runtime.stop(5)
        runtime = await _runtime_for(path, profile, via, artifact if via == "transport" else None,
                                     need_all_transport=via == "transport" and artifact is None)
        try:
            return await runtime.replay(
                ids, last=last, artifact=artifact, via=via,  # type: ignore[arg-type]
                sandboxed=sandbox,
            )
        finally:
            await runtime.stop(5)

    results = _run(go())
    if as_json:
        _print_json([r.to_dict() for r in results])
    else:
        for r in results:
            mark = "same" if r.same else f"CHANGED ({', '.join(r.changed)})"
            if r.recorded is None:
                mark = "no earlier capture"
            before = "-" if r.recorded is None else r.recorded.status
            click.echo(
                f"{(r.capture_id or '-')[:12]:<12} → {r.new_event_id[:12]}  {r.artifact:<16} "
                f"{before} → {r.new.status}  {mark}"
            )
            if r.diff:
                click.echo(r.diff)
        changed = sum(1 for r in results if not r.same)
        click.echo(f"{len(results)} replayed, {changed} changed", err=True)
    sys.exit(1 if any(not r.same for r in results) else 0)


# ---------------------------------------------------------------------------- inject


@main.command()
@project_arg
@click.argument("artifact")
@click.argument("source", required=False, metavar="[-]")
@click.option("--sample", metavar="NAME", help="Use the plugin's sample NAME.")
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A saved event (CloudEvents JSON), e.g. events/order.json.")
@click.option("--list-samples", is_flag=True, help="List the artifact's samples and exit.")
@via_opt
@profile_opt
@json_opt
def inject(
    path: Path, artifact: str, source: str | None, sample: str | None, file_: Path | None,
    list_samples: bool, via: str, profile: str | None, as_json: bool,
) -> None:
    """Send a test event to ARTIFACT: a plugin sample, a saved event file, or stdin (-).

    Exits 1 when the outcome is an error.
    """

    chosen = sum(x is not None for x in (sample, file_, source))
    if chosen > 1:
        fail("use one of --sample, --file or - (stdin)", "ambiguous input")

    async def go() -> tuple[Event | None, Outcome | None, list[Any]]:
        runtime = await _runtime_for(path, profile, via, artifact)
        try:
            if list_samples:
                return None, None, runtime.samples(artifact)
            event = _event_from(runtime, artifact, sample, file_, source)
            outcome = await runtime.inject(artifact, event, via)  # type: ignore[arg-type]
            return event, outcome, []
        finally:
            await runtime.stop(5)

    event, outcome, samples = _run(go())
    if list_samples:
        if as_json:
            _print_json([{"name": s.name, "description": s.description,
                          "event": s.event.to_cloudevent()} for s in samples])
        else:
            for s in samples:
                click.echo(f"{s.name:<28} {s.description}")
        return
    assert event is not None and outcome is not None
    if as_json:
        _print_json({"event": event.to_dict(), "outcome": outcome.to_dict()})
    else:
        click.echo(f"event {event.id} → {outcome.status} in {outcome.duration_ms:.2f} ms "
                   f"({outcome.handler})")
        if outcome.error:
            click.echo(f"{outcome.error.type}: {outcome.error.message}")
            if outcome.error.where:
                click.echo(f"  at {outcome.error.where}")
        else:
            click.echo(json.dumps(outcome.result, indent=2, default=str))
    sys.exit(0 if outcome.ok else 1)


def _event_from(
    runtime: Runtime, artifact: str, sample: str | None, file_: Path | None, source: str | None
) -> Event:
    from workbench.errors import WorkbenchError
    from workbench.events import Event, new_id

    if file_ is not None or source == "-":
        try:
            text = file_.read_text("utf-8") if file_ is not None else sys.stdin.read()
            raw = json.loads(text)
            event = Event.from_cloudevent(raw, artifact=artifact)
            # a saved event is a template: each send is a new event, linked to its source
            event.extensions.setdefault("iwbfixture", event.id)
            event.id = new_id()
        except (ValueError, OSError) as exc:
            where = str(file_) if file_ else "stdin"
            raise WorkbenchError(
                f"{where} is not a CloudEvents JSON object: {exc}", title="Bad event file"
            ) from None
        return event
    if source is not None:
        raise WorkbenchError(f"unexpected argument {source!r}; use - for stdin", title="Usage")
    samples = runtime.samples(artifact)
    if not samples:
        raise WorkbenchError(
            f"{artifact!r} has no samples; give --file or - (stdin).", title="No sample"
        )
    if sample is None:
        return samples[0].event
    for s in samples:
        if s.name == sample:
            return s.event
    raise WorkbenchError(
        f"{artifact!r} has no sample {sample!r}. Samples: {', '.join(s.name for s in samples)}.",
        title="No such sample",
    )


async def _runtime_for(
    path: Path, profile: str | None, via: str, artifact: str | None,
    *, need_all_transport: bool = False,
) -> Runtime:
    """A runtime for one-shot commands: listeners started only where the transport is used."""
    from workbench.runtime.runtime import Runtime

    runtime = Runtime(path, profile=profile)
    if via == "transport":
        only = None if need_all_transport or artifact is None else [artifact]
        await runtime.start(only=only)
        await runtime.wait_ready(timeout=15)
    else:
        await runtime.start(listen=False)
    return runtime


# ---------------------------------------------------------------------------- connections


@main.group()
def connections() -> None:
    """Named connections from connections.toml."""


@connections.command("test")
@project_arg
@profile_opt
@json_opt
@click.option("--timeout", type=float, default=5.0, show_default=True)
def connections_test(path: Path, profile: str | None, as_json: bool, timeout: float) -> None:
    """Open every connection and run its health check. Exits 1 if any fails."""
    from workbench.project.connections import test_connections
    from workbench.runtime.runtime import Runtime

    runtime = Runtime(path, profile=profile)
    errors = runtime.load()
    conn_errors = [e for e in errors if type(e).__name__ == "ConnectionConfigError"]
    results = _run(test_connections(runtime.connections, timeout=timeout))
    if as_json:
        _print_json({"connections": results,
                     "errors": [e.message for e in conn_errors]})
    else:
        for r in results:
            mark = "ok  " if r["ok"] else "FAIL"
            click.echo(f"{mark} {r['name']:<20} {r['kind']:<8} {r['latency_ms']:8.1f} ms  "
                       f"{r['detail']}")
        for e in conn_errors:
            click.echo(f"FAIL {e.message}", err=True)
        if not results and not conn_errors:
            click.echo("connections.toml defines no connections", err=True)
    sys.exit(1 if conn_errors or any(not r["ok"] for r in results) else 0)


main.add_command(map_group, "map")


if __name__ == "__main__":  # pragma: no cover
    main()
