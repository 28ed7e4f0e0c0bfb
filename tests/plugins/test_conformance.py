"""Every installed `iwb.plugins` entry point honours the plugin contract."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
from pydantic import BaseModel

from workbench.plugin import (
    Artifact,
    ConnectionKind,
    Trigger,
    installed_plugins,
    load_plugin,
)

PLUGINS = sorted(installed_plugins())
HEAVY = ("quart", "hypercorn", "uvicorn", "aiocron", "textual", "httpx")


def test_first_party_plugins_are_found_through_entry_points() -> None:
    assert {"http", "automation", "files"} <= set(PLUGINS)


@pytest.mark.parametrize("kind", PLUGINS)
def test_plugin_contract(kind: str) -> None:
    trigger = load_plugin(kind)
    assert issubclass(trigger, Trigger)
    assert trigger.kind == kind
    assert not inspect.isabstract(trigger), "serve() must be implemented"
    assert inspect.iscoroutinefunction(trigger.serve)
    assert inspect.iscoroutinefunction(trigger.inject)
    art = trigger.artifact_class
    assert issubclass(art, Artifact) and art.kind == kind
    assert issubclass(art.config_model, BaseModel)
    assert art.config_model.model_config.get("extra") == "forbid", (
        f"{kind}: a typo in an artifact's config must be an error"
    )
    schema = trigger.transport_schema()
    assert schema.get("type") == "object" and isinstance(schema.get("properties", {}), dict)
    json.dumps(schema)
    for conn in trigger.connection_kinds:
        assert issubclass(conn, ConnectionKind)
        assert conn.kind and issubclass(conn.config_model, BaseModel)
        assert not inspect.isabstract(conn)


@pytest.mark.parametrize("kind", PLUGINS)
def test_plugin_import_is_light(kind: str) -> None:
    """Importing a plugin (what the runtime does to find it) loads no heavy library."""
    ep = installed_plugins()[kind]
    code = (
        "import sys, importlib.metadata as m\n"
        f"ep = [e for e in m.entry_points(group='iwb.plugins') if e.name == {kind!r}][0]\n"
        "ep.load()\n"
        f"print([h for h in {HEAVY!r} if h in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]", f"{ep.value} imports {out} at import time"
