"""A private RabbitMQ node for tests and benchmarks: its own ports, directories and epmd.

    node = RabbitNode(tmp_dir)
    node.start()              # ~8 s; node.url is amqp://guest:guest@127.0.0.1:PORT/
    node.restart()            # rabbitmqctl stop, then start on the same mnesia directory
    node.stop()

The Debian package `rabbitmq-server` provides the broker; `ensure_installed()` installs it
with apt-get when it is missing and the process runs as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from procs import Server, free_port, port_open  # noqa: E402
from tls import make_certificates  # noqa: E402


def ensure_installed() -> str | None:
    """None when the broker is installed (installing it if possible), else the reason."""
    if SERVER.exists() and CTL.exists():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "rabbitmq-server is not installed (apt-get install -y rabbitmq-server)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
    done = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "rabbitmq-server"], env=env, capture_output=True,
        text=True, check=False,
    )
    if done.returncode != 0 or not SERVER.exists():
        return f"apt-get install rabbitmq-server failed: {done.stderr[-500:]}"
    return None


class RabbitNode:
    """One broker node in `base`, on loopback ports of its own."""

    def __init__(self, base: Path, name: str = "iwbtest", *, tls: bool = False) -> None:
        self.base = base
        self.name = name
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.server: Server | None = None
        self.tls_port: int | None = None
        """The AMQPS port, when the node was made with `tls=True` and openssl is present."""
        self.ca: Path | None = None
        """The CA certificate that signed the node's TLS certificate."""
        base.mkdir(parents=True, exist_ok=True)
        conf = (
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "loopback_users = none\n"
            "log.console = false\n"
        )
        if tls and shutil.which("openssl"):
            files = make_certificates(base / "tls")
            assert files is not None
            self.ca, cert, key = files.ca, files.cert, files.key
            self.tls_port = free_port()
            conf += (
                f"listeners.ssl.default = 127.0.0.1:{self.tls_port}\n"
                f"ssl_options.cacertfile = {self.ca}\n"
                f"ssl_options.certfile = {cert}\n"
                f"ssl_options.keyfile = {key}\n"
                "ssl_options.verify = verify_none\n"
                "ssl_options.fail_if_no_peer_cert = false\n"
            )
        (base / "rabbitmq.conf").write_text(conf, "utf-8")
        (base / "enabled_plugins").write_text("[].\n", "utf-8")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def env(self) -> dict[str, str]:
        base = str(self.base)
        return {
            "HOME": base,
            "RABBITMQ_NODENAME": f"{self.name}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": f"{base}/mnesia",
            "RABBITMQ_LOG_BASE": f"{base}/log",
            "RABBITMQ_CONFIG_FILE": f"{base}/rabbitmq.conf",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{base}/enabled_plugins",
        }

    def start(self, timeout: float = 90) -> None:
        """Start the node and wait until it accepts AMQP connections."""
        runs = len(list(self.base.glob("server-*.log")))
        self.server = Server(
            "rabbitmq-server", [str(SERVER)], env=self.env, cwd=self.base,
            log=self.base / f"server-{runs}.log",
        )
        self.server.wait_port("127.0.0.1", self.port, timeout)
        if self.tls_port is not None:
            self.server.wait_port("127.0.0.1", self.tls_port, timeout)

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CTL), *args], env={**os.environ, **self.env}, capture_output=True, text=True,
            timeout=timeout, check=False,
        )

    def stop(self) -> None:
        """Stop the node (rabbitmqctl stop; its process group if that fails) and its epmd."""
        if self.server is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.ctl("stop")
            self.server.stop(timeout=20)
            self.server = None
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                ["epmd", "-port", str(self.epmd_port), "-kill"], capture_output=True,
                timeout=10, check=False, env={**os.environ, **self.env},
            )
        deadline = time.monotonic() + 20
        while port_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        """Stop and start again on the same data (durable queues and persistent messages
        survive)."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.server is not None and port_open("127.0.0.1", self.port)


def amqp_port_of(url: str) -> tuple[str, int]:
    """(host, port) of an amqp:// URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5672


def reachable(url: str) -> bool:
    host, port = amqp_port_of(url)
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False
