"""The CLI and the runtime never pull in Textual or heavy trigger libraries on their own."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    script = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_run_help_does_not_import_textual_or_plugins() -> None:
    mods = _modules_after(
        "from click.testing import CliRunner\n"
        "from workbench.cli import main\n"
        "r = CliRunner().invoke(main, ['run', '--help'])\n"
        "assert r.exit_code == 0, r.output\n"
    )
    for heavy in ("textual", "quart", "hypercorn", "uvicorn", "aiocron", "iwb_http"):
        assert heavy not in mods, heavy


def test_runtime_import_does_not_import_textual() -> None:
    mods = _modules_after("import workbench.runtime.runtime, workbench.headless")
    assert "textual" not in mods
    assert not any(m.startswith("workbench.tui") for m in mods)
