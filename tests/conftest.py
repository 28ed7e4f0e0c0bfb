"""Shared fixtures: temporary projects and runtimes over them."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

SUPPORT = Path(__file__).parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))

from testkit import IWB, SAMPLE, free_port, write_files  # noqa: E402

__all__ = ["IWB", "free_port", "write_files"]

ProjectFactory = Callable[[dict[str, str]], Path]


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """Write a project from {relative path: source} (sources are dedented)."""
    counter = [0]

    def make(files: dict[str, str]) -> Path:
        counter[0] += 1
        root = tmp_path / f"project{counter[0]}"
        root.mkdir()
        write_files(root, files)
        return root

    return make


SAMPLE_BROKERS_OFF = {
    "IWB_PAYMENTS__ENABLED": "false",
    "IWB_PAYMENTS__DEV_BROKER": "false",
    "IWB_SHIPPING__ENABLED": "false",
    "IWB_SENSORS__ENABLED": "false",
}
"""The sample's Kafka, RabbitMQ and MQTT listeners off: most tests exercise the rest."""


@pytest.fixture
def sample_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of sample_project/, its broker listeners switched off (through the
    environment, so `iwb` subprocesses see it too)."""
    for name, value in SAMPLE_BROKERS_OFF.items():
        monkeypatch.setenv(name, value)
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE, target, ignore=shutil.ignore_patterns(".iwb", "__pycache__"))
    return target


@pytest.fixture(autouse=True)
def _reset_memq() -> None:
    from memq import BROKER

    BROKER.reset()


@pytest.fixture
async def started() -> AsyncIterator[list[object]]:
    """Collects runtimes to stop at the end of a test."""
    runtimes: list[object] = []
    yield runtimes
    for rt in runtimes:
        await rt.stop(1)  # type: ignore[attr-defined]

