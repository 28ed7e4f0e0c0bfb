"""Helpers shared by the test modules (import as `from testkit import ...`).

They live here rather than in a conftest.py: several test folders have a conftest of their
own, and `from conftest import ...` would find whichever was imported first.
"""

from __future__ import annotations

import socket
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_project"
IWB = str(Path(sys.executable).parent / "iwb")
"""The installed `iwb` console script of this environment."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_files(root: Path, files: dict[str, str]) -> None:
    """Write {relative path: source} under `root` (sources are dedented)."""
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")
