"""`iwb open` end to end in a real terminal (tmux): the tree appears, a request shows in the
stream, the filter, following and the help screen answer keys, `e` runs $EDITOR at the
handler's line, and `q` exits 0 and gives the terminal back to the shell."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from testkit import IWB, free_port

TMUX = shutil.which("tmux")

pytestmark = pytest.mark.skipif(
    TMUX is None,
    reason="tmux is not installed (scripts/setup installs it: apt-get install -y tmux)",
)

WIDTH, HEIGHT = 120, 36


class Terminal:
    """One tmux session on a private server."""

    def __init__(self, socket: Path) -> None:
        assert TMUX is not None
        self.base = [TMUX, "-S", str(socket)]
        self.session = f"iwb-{uuid.uuid4().hex[:8]}"

    def start(self, command: str) -> None:
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", self.session, "-x", str(WIDTH),
             "-y", str(HEIGHT), command],
            check=True,
        )

    def keys(self, *keys: str, literal: bool = False) -> None:
        args = [*self.base, "send-keys", "-t", self.session]
        if literal:
            args.append("-l")
        subprocess.run([*args, *keys], check=True)

    def text(self) -> str:
        done = subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", self.session],
            check=True, capture_output=True, text=True,
        )
        return done.stdout

    def wait_for(self, condition: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        ends = time.monotonic() + timeout
        while True:
            screen = self.text()
            if condition(screen):
                return screen
            if time.monotonic() > ends:
                raise AssertionError(f"the terminal never showed {what}:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], check=False, capture_output=True)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path / "tmux.sock")
    try:
        yield term
    finally:
        term.close()


def test_iwb_open_in_a_real_terminal(terminal: Terminal, sample_copy: Path,
                                     tmp_path: Path) -> None:
    port = free_port()
    exit_file = tmp_path / "exit-code"
    editor_log = tmp_path / "editor-args"
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(editor_log))}\n',
                      "utf-8")
    editor.chmod(0o755)
    config_home = tmp_path / "config"
    config_home.mkdir()
    env = {
        "IWB_ORDERS_API__PORT": str(port), "XDG_CONFIG_HOME": str(config_home),
        "EDITOR": str(editor), "TERM": "xterm-256color", "PS1": "shell$ ",
        # the sample's restock runs every five minutes: not in the middle of this test,
        # where the newest event must stay the request it sends
        "IWB_RESTOCK__SCHEDULE": "0 0 1 1 *",
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    terminal.start(f"env {exports} bash --norc --noprofile")
    terminal.wait_for(lambda s: "shell$" in s, "the shell prompt")
    terminal.keys(
        f"{shlex.quote(IWB)} open {shlex.quote(str(sample_copy))}; "
        f"echo $? > {shlex.quote(str(exit_file))}; echo BACK-IN-SHELL-$((40 + 2))",
        literal=True,
    )
    terminal.keys("Enter")
    terminal.wait_for(lambda s: "Integration as API" in s and "orders listening" in s,
                      "the artifact tree with orders listening")

    body = b'{"customer": "ada@example.com", "items": [{"sku": "TEA-01", "quantity": 2, ' \
           b'"unit_price": 4.5}]}'
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/orders/", data=body, method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    terminal.wait_for(lambda s: "/orders/" in s and "following" in s, "the request in the stream")

    terminal.keys("/")
    terminal.wait_for(lambda s: "artifact:NAME kind:KIND" in s, "the filter bar")
    terminal.keys("status:error", literal=True)
    terminal.keys("Enter")
    terminal.wait_for(lambda s: "filter: status:error (0 match)" in s, "the filtered stream")
    terminal.keys("Escape")
    terminal.wait_for(lambda s: "filter:" not in s and "/orders/" in s and "following" in s,
                      "the filter cleared and the newest events loaded")

    terminal.keys("Up")
    terminal.wait_for(lambda s: "paused — f to follow" in s, "following paused")
    terminal.keys("f")
    terminal.wait_for(lambda s: "following" in s and "paused" not in s, "following again")

    terminal.keys("e")  # the selected event's handler, in $EDITOR
    deadline = time.monotonic() + 20
    while not editor_log.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    args = editor_log.read_text("utf-8").split()
    source = (sample_copy / "artifacts" / "orders_api.py").read_text("utf-8").splitlines()
    line = int(args[0].lstrip("+"))
    assert args[1] == str(sample_copy / "artifacts" / "orders_api.py")
    assert source[line - 1].startswith("async def create_order")
    terminal.wait_for(lambda s: "Integration as API" in s, "the app back after the editor")

    terminal.keys("?")
    terminal.wait_for(lambda s: "Keys — Escape closes" in s and "save-fixture" in s,
                      "the help screen")
    terminal.keys("Escape")
    terminal.wait_for(lambda s: "Keys — Escape closes" not in s, "the help screen closed")

    terminal.keys("q")
    screen = terminal.wait_for(lambda s: "BACK-IN-SHELL-42" in s, "the shell after quitting")
    assert exit_file.read_text("utf-8").strip() == "0"
    # the alternate screen is gone: the shell's own screen is back, with the prompt
    assert "Integration as API" not in screen
    assert screen.rstrip().splitlines()[-1].startswith("shell$")
    assert os.path.exists(sample_copy / ".iwb" / "iwb.log")
