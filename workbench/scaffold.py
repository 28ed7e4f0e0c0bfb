"""`iwb new`: write a small, working project to start from."""

from __future__ import annotations

import re
from pathlib import Path

FILES: dict[str, str] = {
    "iwb.toml": '''\
name = "{name}"
version = "0.1.0"
''',
    "Config.toml": '''\
# One table per module (the module's file name); override any key with the environment
# variable IWB_<TABLE>__<KEY>, e.g. IWB_HELLO__GREETING="Hi".
[hello]
port = 8080
greeting = "Hello"
''',
    "connections.toml": '''\
# Named connections, used from code with workbench.config.connection("name").
# [billing]
# kind = "http"
# base_url = "https://billing.example.com"
''',
    "types/greeting.py": '''\
"""Types shared by handlers, mappings and the inject console."""

from pydantic import BaseModel, Field


class GreetingRequest(BaseModel):
    name: str = Field(min_length=1, examples=["Ada"])


class Greeting(BaseModel):
    message: str
''',
    "artifacts/hello.py": '''\
"""An HTTP service: POST /hello with {{"name": "Ada"}}."""

import iwb_http as http
from workbench.config import configurable

from project.types.greeting import Greeting, GreetingRequest

PORT = configurable("port", int, default=8080)
GREETING = configurable("greeting", str, default="Hello")

api = http.Service(port=PORT, base_path="/hello")


@api.post("/")
async def greet(req: GreetingRequest) -> Greeting:
    return Greeting(message=f"{{GREETING}}, {{req.name}}!")
''',
    "events/hello-ada.json": '''\
{{
  "specversion": "1.0",
  "id": "hello-ada",
  "source": "iwb://fixtures",
  "type": "iwb.http.request",
  "datacontenttype": "application/json",
  "iwbartifact": "api",
  "iwbhandler": "POST /",
  "iwbtransport": {{
    "method": "POST",
    "path": "/hello/",
    "query_string": "",
    "headers": [["content-type", "application/json"]]
  }},
  "data": {{"name": "Ada"}}
}}
''',
    ".gitignore": ".iwb/\n__pycache__/\n",
}


def create_project(path: Path, *, name: str | None = None) -> list[Path]:
    """Write the project files under `path` (which must not exist or be empty)."""
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(f"{str(path)!r} exists and is not empty; choose a new directory.")
    project_name = name or re.sub(r"[^A-Za-z0-9_-]+", "-", path.resolve().name) or "project"
    created: list[Path] = []
    for rel, template in FILES.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(template.format(name=project_name), "utf-8")
        created.append(target)
    for folder in ("functions", "mappings"):
        (path / folder).mkdir(parents=True, exist_ok=True)
    return created
