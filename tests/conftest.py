"""Shared fixtures: temporary projects and runtimes over them."""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

SUPPORT = Path(__file__).parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_project"

ProjectFactory = Callable[[dict[str, str]], Path]


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")


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


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A private copy of sample_project/."""
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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


IWB = str(Path(sys.executable).parent / "iwb")
"""The installed `iwb` console script of this environment."""
