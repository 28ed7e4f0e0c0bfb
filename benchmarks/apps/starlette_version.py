"""The reload benchmark's Starlette baseline: GET / answers the version of this file.

Served by `uvicorn --reload`; the benchmark rewrites the VERSION line.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

VERSION = "v0000"


async def version(request: Request) -> JSONResponse:
    return JSONResponse({"version": VERSION})


app = Starlette(routes=[Route("/", version)])
