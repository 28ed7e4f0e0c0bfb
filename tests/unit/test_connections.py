"""connections.toml: parsing, `${...}` substitution, validation into connection kinds, and
the health test against real local sockets."""

from __future__ import annotations

import asyncio
import socket
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from workbench.errors import ConnectionConfigError, ProjectError, WorkbenchError
from workbench.plugin import ConnectionKind, Health
from workbench.project import connections as conns_mod
from workbench.project.config import ConfigResolver
from workbench.project.connections import (
    ConnectionSpec,
    build_connections,
    load_connection_specs,
    spec_fingerprint,
)

# --------------------------------------------------------------------------- a test kind


class TcpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int
    token: str = ""
    labels: list[str] = []


class TcpKind(ConnectionKind[tuple[str, int]]):
    """Health = a TCP connect to host:port."""

    kind = "tcp"
    config_model = TcpConfig

    @property
    def cfg(self) -> TcpConfig:
        assert isinstance(self.config, TcpConfig)
        return self.config

    async def open(self) -> tuple[str, int]:
        return (self.cfg.host, self.cfg.port)

    async def health(self) -> Health:
        started = time.perf_counter()
        host, port = self.client
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            return Health(False, f"cannot connect to {host}:{port}: {exc.strerror or exc}")
        writer.close()
        await writer.wait_closed()
        return Health(True, f"connected to {host}:{port}", (time.perf_counter() - started) * 1000)


class HangingKind(TcpKind):
    """A health check that never answers."""

    kind = "hanging"

    async def health(self) -> Health:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class FailingOpenKind(TcpKind):
    kind = "failing"

    async def open(self) -> tuple[str, int]:
        raise ConnectionError("credentials rejected")


class LaxConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    url: str


class LaxKind(ConnectionKind[str]):
    """A kind whose model accepts fields it does not declare."""

    kind = "lax"
    config_model = LaxConfig

    async def open(self) -> str:
        return "client"

    async def health(self) -> Health:
        return Health(True, "fine")


KINDS: dict[str, type[ConnectionKind[Any]]] = {"tcp": TcpKind, "lax": LaxKind}


def project(tmp_path: Path, connections: str, config: str = "") -> Path:
    (tmp_path / "connections.toml").write_text(textwrap.dedent(connections).lstrip(), "utf-8")
    if config:
        (tmp_path / "Config.toml").write_text(textwrap.dedent(config).lstrip(), "utf-8")
    return tmp_path


def load(
    root: Path, env: dict[str, str] | None = None
) -> tuple[dict[str, ConnectionSpec], list[ProjectError]]:
    specs, errors = load_connection_specs(root, ConfigResolver(root, env=env or {}))
    return specs, located(errors)


def located(errors: list[WorkbenchError]) -> list[ProjectError]:
    """The errors, checked to carry a location (file, line, key)."""
    assert all(isinstance(e, ProjectError) for e in errors), errors
    return [e for e in errors if isinstance(e, ProjectError)]


# --------------------------------------------------------------------------- parsing


def test_no_connections_file(tmp_path: Path) -> None:
    assert load(tmp_path) == ({}, [])


def test_specs_and_substitution(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        [inventory]
        kind = "tcp"
        host = "${inventory.host}"
        port = "${inventory.port}"
        token = "${env:INVENTORY_TOKEN}"
        labels = ["${env:REGION}-a", "plain", "cost: $${not.a.ref}"]

        [crm]
        kind = "lax"
        url = "http://${crm.host}:${crm.port}/api?token=${env:CRM_TOKEN}"
        nested = { base = "${crm.host}" }
        """,
        config="""
        [inventory]
        host = "10.0.0.1"
        port = 8080

        [crm]
        host = "crm.local"
        port = 8443
        """,
    )
    env = {"INVENTORY_TOKEN": "t0k", "REGION": "eu", "CRM_TOKEN": "c", "IWB_CRM__HOST": "envhost"}
    specs, errors = load(root, env)
    assert errors == []
    inventory = specs["inventory"]
    assert (inventory.name, inventory.kind, inventory.line, inventory.broken) == (
        "inventory",
        "tcp",
        1,
        False,
    )
    assert inventory.raw == {
        "host": "10.0.0.1",
        "port": 8080,  # a whole-value reference keeps the type
        "token": "t0k",
        "labels": ["eu-a", "plain", "cost: ${not.a.ref}"],
    }
    assert specs["crm"].line == 8
    assert specs["crm"].raw == {
        "url": "http://envhost:8443/api?token=c",  # embedded references make a string
        "nested": {"base": "envhost"},
    }


def test_missing_reference_is_an_error_at_its_line(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        [inventory]
        kind = "tcp"
        host = "${inventory.host}"
        port = 1
        token = "${env:NO_SUCH_VAR}"
        """,
    )
    specs, errors = load(root)
    assert [e.key for e in errors] == ["inventory.host", "inventory.token"]
    assert all(isinstance(e, ConnectionConfigError) for e in errors)
    assert [(e.file, e.line) for e in errors] == [("connections.toml", 3), ("connections.toml", 5)]
    assert "Connection 'inventory', field 'host'" in errors[0].message
    assert "'inventory.host' is not set" in errors[0].message
    assert "IWB_INVENTORY__HOST" in errors[0].message
    assert "NO_SUCH_VAR is not set" in errors[1].message
    # the name stays known (no second "unknown connection" error), but it is not built
    assert specs["inventory"].broken
    built, build_errors = build_connections(specs, KINDS)
    assert built == {} and build_errors == []


def test_missing_kind_and_non_table(tmp_path: Path) -> None:
    root = project(tmp_path, "timeout = 5\n\n[inventory]\nport = 1\n\n[crm]\nkind = 3\n")
    specs, errors = load(root)
    assert [(e.key, e.line) for e in errors] == [
        ("timeout", 1),
        ("inventory.kind", 3),
        ("crm.kind", 7),
    ]
    assert "is not a table" in errors[0].message
    assert "Connection 'inventory' has no kind" in errors[1].message
    assert "kind = 3" in errors[2].message
    assert set(specs) == {"inventory", "crm"}
    assert specs["inventory"].broken and specs["crm"].broken


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    root = project(tmp_path, '[inventory]\nkind = "tcp"\nport = = 1\n')
    specs, errors = load(root)
    assert specs == {}
    [err] = errors
    assert isinstance(err, ConnectionConfigError)
    assert (err.file, err.line) == ("connections.toml", 3)


def test_loaded_names_feed_the_unknown_connection_check(tmp_path: Path) -> None:
    root = project(tmp_path, '[inventory]\nkind = "tcp"\nport = 1\n[broken]\nport = 2\n')
    resolver = ConfigResolver(root, env={})
    specs, _ = load_connection_specs(root, resolver)
    resolver.connection_names = set(specs)
    resolver.check_connection("broken", str(root / "artifacts" / "a.py"), 3)
    resolver.check_connection("inventory", str(root / "artifacts" / "a.py"), 4)
    assert resolver.errors == []
    resolver.check_connection("crm", str(root / "artifacts" / "a.py"), 5)
    [err] = resolver.errors
    assert "Unknown connection 'crm' (artifacts/a.py:5)" in err.message
    assert "broken, inventory" in err.message


# --------------------------------------------------------------------------- building


def test_build_validates_and_instantiates(tmp_path: Path) -> None:
    root = project(tmp_path, '[inventory]\nkind = "tcp"\nport = "5432"\ntoken = "abc"\n')
    specs, _ = load(root)
    built, errors = build_connections(specs, KINDS)
    assert errors == []
    conn = built["inventory"]
    assert isinstance(conn, TcpKind)
    assert conn.name == "inventory"
    assert conn.cfg.port == 5432
    assert conn.describe() == {"host": "127.0.0.1", "port": 5432, "token": "****", "labels": []}


def test_unknown_kind_lists_available_kinds(tmp_path: Path) -> None:
    root = project(tmp_path, '[queue]\n\nkind = "kafka"\nbootstrap = "x"\n')
    specs, _ = load(root)
    built, errors = build_connections(specs, KINDS)
    assert built == {}
    [err] = located(errors)
    assert isinstance(err, ConnectionConfigError)
    assert (err.file, err.line, err.key) == ("connections.toml", 3, "queue.kind")
    assert "'kafka'" in err.message
    assert "Available connection kinds: lax, tcp." in err.message


def test_field_errors_name_connection_field_and_line(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        [ok]
        kind = "tcp"
        port = 1

        [inventory]
        kind = "tcp"
        host = "db"
        port = "eighty"
        token = 12345

        [noport]
        kind = "tcp"
        host = "x"

        [typo]
        kind = "tcp"
        port = "x"
        hots = "x"
        """,
    )
    specs, _ = load(root)
    built, errors = build_connections(specs, KINDS)
    assert set(built) == {"ok"}
    by_key = {e.key: e for e in located(errors)}
    assert set(by_key) == {
        "inventory.port",
        "inventory.token",
        "noport.port",
        "typo.hots",
        "typo.port",
    }
    port = by_key["inventory.port"]
    assert (port.file, port.line) == ("connections.toml", 8)
    assert "Connection 'inventory' (tcp) field 'port' = 'eighty'" in port.message
    assert "valid integer" in port.message
    token = by_key["inventory.token"]
    assert token.line == 9
    assert "12345" not in token.message and "the value" in token.message
    missing = by_key["noport.port"]
    assert missing.line == 11  # the table: the field is not there
    assert "missing the required field 'port'" in missing.message
    typo = by_key["typo.hots"]
    assert typo.line == 18
    assert "unknown field 'hots'" in typo.message
    assert "host, port, token, labels" in typo.message
    assert by_key["typo.port"].line == 17  # reported together with the unknown field


def test_kind_that_allows_extra_fields(tmp_path: Path) -> None:
    root = project(tmp_path, '[crm]\nkind = "lax"\nurl = "http://x"\nanything = 1\n')
    specs, _ = load(root)
    built, errors = build_connections(specs, KINDS)
    assert errors == []
    assert built["crm"].config.model_dump() == {"url": "http://x", "anything": 1}


def test_spec_fingerprint() -> None:
    a = ConnectionSpec("inv", "tcp", {"port": 1, "labels": ["x"]}, 1)
    same = ConnectionSpec("inv", "tcp", {"labels": ["x"], "port": 1}, 7)
    assert spec_fingerprint(a) == spec_fingerprint(same)
    assert spec_fingerprint(a) != spec_fingerprint(ConnectionSpec("inv", "tcp", {"port": 2}, 1))
    assert spec_fingerprint(a) != spec_fingerprint(
        ConnectionSpec("inv", "lax", {"port": 1, "labels": ["x"]}, 1)
    )


# --------------------------------------------------------------------------- health test


@pytest.fixture
async def live_port() -> AsyncIterator[int]:
    accepted = asyncio.Event()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
        await asyncio.wait_for(accepted.wait(), 5)  # the health check really connected
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def tcp(name: str, port: int, kind: type[TcpKind] = TcpKind, token: str = "") -> TcpKind:
    return kind(name, TcpConfig(port=port, token=token))


async def test_connections_live_and_dead(live_port: int, dead_port: int) -> None:
    conns = {
        "live": tcp("live", live_port, token="s3cr3t"),
        "dead": tcp("dead", dead_port),
    }
    results = await conns_mod.test_connections(conns, timeout=5)
    assert [r["name"] for r in results] == ["live", "dead"]
    live, dead = results
    assert live["ok"] is True
    assert live["kind"] == "tcp"
    assert live["detail"] == f"connected to 127.0.0.1:{live_port}"
    assert live["latency_ms"] > 0
    assert live["config"]["token"] == "****"
    assert dead["ok"] is False
    assert f"cannot connect to 127.0.0.1:{dead_port}" in dead["detail"]
    assert dead["config"]["port"] == dead_port


async def test_connections_timeout_and_open_failure(dead_port: int) -> None:
    conns = {
        "slow": tcp("slow", dead_port, HangingKind),
        "broken": tcp("broken", dead_port, FailingOpenKind),
    }
    started = time.perf_counter()
    slow, broken = await conns_mod.test_connections(conns, timeout=0.2)
    assert time.perf_counter() - started < 5
    assert slow["ok"] is False
    assert slow["detail"] == "health check did not finish within 0.2s"
    assert slow["latency_ms"] >= 200  # how long the health check ran before it was given up
    assert broken["latency_ms"] < 5000
    assert broken["ok"] is False
    assert broken["detail"] == "open failed: ConnectionError: credentials rejected"


def test_test_connections_is_not_collected_as_a_test() -> None:
    assert conns_mod.test_connections.__test__ is False  # type: ignore[attr-defined]
