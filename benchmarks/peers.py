"""Install the optional peers of the benchmarks: wrk (apt-get) and Node-RED (npm, into .bench/).

    python -m benchmarks.peers

Peers that are already there are left alone. Exits 1 when one could not be installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from benchmarks.common import PEERS, say, tool


def apt_install(*packages: str) -> bool:
    """`apt-get install -y`, after `apt-get update` when the first try fails."""
    if shutil.which("apt-get") is None:
        say(f"peers: no apt-get here to install {', '.join(packages)}")
        return False
    argv = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    if subprocess.run(argv, check=False).returncode == 0:
        return True
    subprocess.run(["apt-get", "update"], check=False)
    return subprocess.run(argv, check=False).returncode == 0


def main() -> int:
    ok = True
    if tool("wrk") is None:
        say("peers: installing wrk with apt-get")
        ok = apt_install("wrk") and ok
    if tool("node-red") is None:
        if shutil.which("npm") is None:
            say("peers: installing Node.js and npm with apt-get")
            ok = apt_install("nodejs", "npm") and ok
        if shutil.which("npm") is not None:
            say(f"peers: installing Node-RED with npm into {PEERS}")
            PEERS.mkdir(exist_ok=True)
            done = subprocess.run(
                ["npm", "install", "--prefix", str(PEERS), "--no-audit", "--no-fund",
                 "node-red"],
                check=False,
            )
            ok = done.returncode == 0 and ok
    for name in ("wrk", "node-red"):
        say(f"peers: {name}: {tool(name) or 'MISSING'}")
    return 0 if ok and tool("wrk") and tool("node-red") else 1


if __name__ == "__main__":
    sys.exit(main())
