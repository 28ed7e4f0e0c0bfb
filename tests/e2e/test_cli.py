"""The `iwb` command as a user types it (subprocesses of the installed console script)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from testkit import IWB, free_port

from workbench import __version__


def iwb(*args: str, stdin: str | None = None, check: bool = False,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    proc = subprocess.run(
        [IWB, *args], capture_output=True, text=True, input=stdin, timeout=60,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"iwb {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def test_version() -> None:
    assert iwb("--version", check=True).stdout.strip() == f"iwb, version {__version__}"


def test_new_project_checks_and_answers(tmp_path: Path) -> None:
    project = tmp_path / "hello"
    out = iwb("new", str(project), check=True).stdout
    assert "artifacts/hello.py" in out
    report = json.loads(iwb("check", str(project), "--json", check=True).stdout)
    assert report["ok"] is True and report["errors"] == []
    assert [(a["name"], a["kind"]) for a in report["artifacts"]] == [("api", "http")]
    outcome = json.loads(
        iwb("inject", str(project), "api", "--file", str(project / "events/hello-ada.json"),
            "--json", check=True).stdout
    )["outcome"]
    assert outcome["status"] == "ok" and outcome["result"] == {"message": "Hello, Ada!"}
    again = iwb("new", str(project))
    assert again.returncode == 1 and "not empty" in again.stderr


def test_check_lists_artifacts_config_and_masks_secrets(sample_copy: Path) -> None:
    report = json.loads(
        iwb("check", str(sample_copy), "--json", env={"IWB_ORDERS_API__CURRENCY": "USD"},
            check=True).stdout
    )
    kinds = {a["name"]: a["kind"] for a in report["artifacts"]}
    assert kinds == {"orders": "http", "inventory": "http", "inbox": "files",
                     "restock": "automation", "payments": "kafka", "shipments": "rabbitmq",
                     "temperatures": "mqtt"}
    assert {a["name"]: a["status"] for a in report["artifacts"]}["payments"] == "loaded"
    config = {(c["table"], c["key"]): c for c in report["config"]}
    assert config[("orders_api", "currency")]["value"] == "USD"
    assert config[("orders_api", "currency")]["origin"] == "env:IWB_ORDERS_API__CURRENCY"
    assert report["connections"]["shop"]["kind"] == "http"


def test_check_reports_every_error_and_exits_1(make_project) -> None:
    root = make_project({
        "Config.toml": "[svc]\nretries = 'three'\n",
        "artifacts/svc.py": """
            from workbench.config import configurable
            RETRIES = configurable("retries", int)
            PASSWORD = configurable("password", str, secret=True)
        """,
        "artifacts/bad.py": "import iwb_solace\n",
    })
    proc = iwb("check", str(root), "--json")
    assert proc.returncode == 1
    errors = json.loads(proc.stdout)["errors"]
    messages = " | ".join(e["message"] for e in errors)
    assert "'three'" in messages and "[svc] retries" in messages
    assert "IWB_SVC__PASSWORD" in messages
    assert "no installed plugin provides the artifact kind 'solace'" in messages
    assert any(e["file"] == "Config.toml" and e["line"] == 2 for e in errors)
    text = iwb("check", str(root))
    assert text.returncode == 1 and "3 error(s)" in text.stderr


def test_inject_captures_replay_round_trip(sample_copy: Path) -> None:
    project = str(sample_copy)
    fixture = str(sample_copy / "events/new-order.json")
    result = json.loads(iwb("inject", project, "orders", "--file", fixture, "--json",
                            check=True).stdout)
    assert result["outcome"]["status"] == "ok"
    assert result["outcome"]["result"]["total"] == 21.0

    # from stdin, with a wrong type: exit 1, validation error, still captured
    bad = json.loads(Path(fixture).read_text())
    bad["data"]["items"][0]["quantity"] = "two"
    proc = iwb("inject", project, "orders", "-", "--json", stdin=json.dumps(bad))
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["outcome"]["error"]["type"] == "ValidationError"

    listed = json.loads(iwb("captures", project, "--json", check=True).stdout)
    assert [c["status"] for c in listed] == ["error", "ok"]
    assert listed[1]["artifact"] == "orders" and listed[1]["handler"].endswith("create_order")
    errors = json.loads(iwb("captures", project, "--status", "error", "--json").stdout)
    assert len(errors) == 1 and errors[0]["error_type"] == "ValidationError"
    found = json.loads(iwb("captures", project, "--text", "ada@example", "--json").stdout)
    assert len(found) == 2
    full = json.loads(iwb("captures", project, "--show", listed[1]["id"][:10]).stdout)
    assert full["outcome"]["result"]["total"] == 21.0

    # the validation error replays identically: exit 0
    same = json.loads(iwb("replay", project, listed[0]["id"], "--json", check=True).stdout)
    assert same[0]["same"] is True and same[0]["new"]["status"] == "error"
    # a new order gets a new id, so that outcome differs in its result: exit 1
    proc = iwb("replay", project, listed[1]["id"], "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)[0]["changed"] == ["result"]
    # --last N takes the newest captures, replays included
    proc = iwb("replay", project, "--last", "2", "--artifact", "orders", "--json")
    assert [r["recorded"]["status"] for r in json.loads(proc.stdout)] == ["error", "ok"]

    pricing = sample_copy / "functions/pricing.py"
    pricing.write_text(pricing.read_text().replace("round(sum(", "round(1.1 * sum("))
    proc = iwb("replay", project, listed[1]["id"])
    assert proc.returncode == 1
    assert "CHANGED (result)" in proc.stdout
    assert '-    "total": 21.0' in proc.stdout and '+    "total": 23.1' in proc.stdout


def test_reread_needs_a_transport_with_a_log(sample_copy: Path) -> None:
    project = str(sample_copy)
    proc = iwb("replay", project, "--reread", "0@0")
    assert proc.returncode != 0 and "-a NAME" in proc.stderr
    proc = iwb("replay", project, "--reread", "0@0", "-a", "orders", "--last", "1")
    assert proc.returncode != 0 and "leave out IDS and --last" in proc.stderr
    proc = iwb("replay", project, "--reread", "0@0", "-a", "orders")
    assert proc.returncode != 0
    assert "keeps no log to re-read" in proc.stderr, proc.stderr
    # a Kafka listener (disabled here) can re-read, but not from a cluster that is not there
    proc = iwb("replay", project, "--reread", "payments/0@0", "-a", "payments",
               env={"IWB_PAYMENTS__KAFKA": f"127.0.0.1:{free_port()}"})
    assert proc.returncode != 0
    assert "cannot reach Kafka" in proc.stderr, proc.stderr


def test_inject_samples_and_automation_run(sample_copy: Path) -> None:
    project = str(sample_copy)
    samples = json.loads(iwb("inject", project, "orders", "--list-samples", "--json",
                             check=True).stdout)
    names = [s["name"] for s in samples]
    assert len(names) == 3
    post = next(s for s in samples if s["event"]["iwbtransport"]["method"] == "POST")
    outcome = json.loads(iwb("inject", project, "orders", "--sample", post["name"], "--json",
                             check=True).stdout)["outcome"]
    assert outcome["status"] == "ok"
    run = json.loads(iwb("inject", project, "restock", "--json", check=True).stdout)
    assert run["outcome"]["status"] == "ok"
    assert set(run["outcome"]["result"]) == {"trigger", "reorder", "ordered"}
    missing = iwb("inject", project, "orders", "--sample", "nope")
    assert missing.returncode == 1 and "has no sample 'nope'" in missing.stderr
    unknown = iwb("inject", project, "nobody")
    assert unknown.returncode == 1 and "no artifact 'nobody'" in unknown.stderr


def test_inject_via_transport_uses_a_real_request(sample_copy: Path) -> None:
    port = str(free_port())
    proc = iwb("inject", str(sample_copy), "orders", "--file",
               str(sample_copy / "events/new-order.json"), "--via", "transport", "--json",
               env={"IWB_ORDERS_API__PORT": port}, check=True)
    result = json.loads(proc.stdout)
    assert result["outcome"]["status"] == "ok"
    captured = json.loads(iwb("captures", str(sample_copy), "--json", check=True).stdout)
    transport = json.loads(iwb("captures", str(sample_copy), "--show", captured[0]["id"],
                               check=True).stdout)["event"]["transport"]
    assert transport["port"] == int(port) and transport["method"] == "POST"


@pytest.mark.parametrize("live", [True, False])
def test_connections_test(make_project, live: bool) -> None:
    import http.server
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    if live:
        thread.start()
    else:
        server.server_close()
    root = make_project({
        "Config.toml": f"[crm]\nurl = 'http://127.0.0.1:{port}'\n",
        "connections.toml": """
            [crm]
            kind = "http"
            base_url = "${crm.url}"
            auth_token = "s3cret"
        """,
    })
    try:
        proc = iwb("connections", "test", str(root), "--json", "--timeout", "2")
    finally:
        if live:
            server.shutdown()
            server.server_close()
    report = json.loads(proc.stdout)["connections"][0]
    assert report["name"] == "crm" and report["ok"] is live
    assert report["config"]["auth_token"] == "****"
    assert proc.returncode == (0 if live else 1)
    assert "s3cret" not in proc.stdout + proc.stderr
