"""The reload benchmark's service: GET / answers the version of this file.

The benchmark rewrites the VERSION line and waits for the new value to be served.
"""

from __future__ import annotations

import iwb_http as http
from workbench.config import configurable

VERSION = "v0000"

PORT = configurable("port", int, default=8080)

api = http.Service(port=PORT)


@api.get("/")
async def version() -> dict[str, str]:
    return {"version": VERSION}
