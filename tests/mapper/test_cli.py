"""`iwb map` as a user types it (subprocesses of the installed console script)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from workbench.events import Event, Outcome
from workbench.runtime.capture import CaptureSettings, CaptureStore

from .conftest import BASE_FILES, HEAD, IWB, write_files

GOOD = HEAD + """
    uses = ["project.functions.pricing:order_total"]

    [fields]
    number = "'INV-' + src.id"
    customer = "src.customer.upper()"
    total = "order_total(src)"
    [fields.lines]
    each = "src.items"
    [fields.lines.fields]
    sku = "item.sku"
    amount = "item.quantity * item.unit_price"
"""

BAD = HEAD + """
    [fields]
    number = "src.idd"
    count = "src.amount_text"
"""

TWO = """
    [mapping]
    target = "project.types.billing:Invoice"
    [mapping.sources]
    order = "project.types.orders:Order"
    who = "project.types.orders:Customer"
    [fields]
    number = "order.id"
    customer = "who.name"
"""

ORDER = {"id": "9", "customer": "ada", "items": [{"sku": "t", "quantity": 2, "unit_price": 1.5}]}


def iwb(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([IWB, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ})
    if check and proc.returncode != 0:
        raise AssertionError(f"iwb {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def make(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "proj"
    root.mkdir(parents=True)
    write_files(root, {**BASE_FILES, **files})
    return root


def test_list_and_check(tmp_path: Path) -> None:
    root = make(tmp_path, {"mappings/good.toml": GOOD, "mappings/bad.toml": BAD})
    listed = json.loads(iwb("map", "list", str(root), "--json", check=True).stdout)
    rows = {r["name"]: r for r in listed["mappings"]}
    assert rows["good"]["ok"] and rows["good"]["target"] == "project.types.billing:Invoice"
    assert not rows["bad"]["ok"]
    text = iwb("map", "list", str(root), check=True).stdout
    assert "good" in text and "FAILED" in text
    proc = iwb("map", "check", str(root))
    assert proc.returncode == 1
    assert ("mappings/bad.toml:6: error: field 'number': unknown source path 'src.idd'"
            in proc.stdout)
    assert ("mappings/bad.toml:7: warning: field 'count': the value is a str, the field is an "
            "int" in proc.stdout)
    assert "mappings/bad.toml:5: error: field 'customer': required field 'customer'" in proc.stdout
    assert "2 mapping(s): 2 error(s), 1 warning(s)" in proc.stderr
    report = json.loads(iwb("map", "check", str(root), "--json").stdout)
    assert report["ok"] is False and report["errors"] == 2 and report["warnings"] == 1
    assert iwb("map", "check", str(root), "good").returncode == 0
    missing = iwb("map", "check", str(root), "nope")
    assert missing.returncode == 1 and "no mapping 'nope'" in missing.stderr


def test_run_with_an_input_file(tmp_path: Path) -> None:
    root = make(tmp_path, {"mappings/good.toml": GOOD, "mappings/two.toml": TWO})
    order = tmp_path / "order.json"
    order.write_text(json.dumps(ORDER))
    out = json.loads(iwb("map", "run", str(root), "good", "--input", str(order),
                         check=True).stdout)
    assert out["number"] == "INV-9" and out["total"] == 3.0 and out["lines"][0]["amount"] == 3.0
    framed = json.loads(iwb("map", "run", str(root), "good", "-i", str(order), "--json",
                            check=True).stdout)
    assert framed["ok"] is True and framed["result"]["customer"] == "ADA"
    raw = json.loads(iwb("map", "run", str(root), "good", "-i", str(order), "--raw",
                         check=True).stdout)
    assert set(raw) == {"number", "customer", "total", "lines"}
    both = tmp_path / "both.json"
    both.write_text(json.dumps({"order": ORDER, "who": {"name": "Bo"}}))
    assert json.loads(iwb("map", "run", str(root), "two", "-i", str(both),
                          check=True).stdout)["customer"] == "Bo"
    wrong = iwb("map", "run", str(root), "two", "-i", str(order))
    assert wrong.returncode == 1 and "sources order, who" in wrong.stderr


def test_run_failures_name_the_field(tmp_path: Path) -> None:
    root = make(tmp_path, {"mappings/good.toml": GOOD})
    order = tmp_path / "order.json"
    order.write_text(json.dumps({**ORDER, "items": [{"sku": "t", "quantity": 2,
                                                     "unit_price": None}]}))
    proc = iwb("map", "run", str(root), "good", "-i", str(order))
    assert proc.returncode == 1 and "unit_price" in proc.stderr  # the source is not an Order
    bad_items = {**ORDER, "items": [{"sku": "t", "quantity": 2, "unit_price": 1.0}],
                 "customer": ""}
    order.write_text(json.dumps(bad_items))
    assert iwb("map", "run", str(root), "good", "-i", str(order)).returncode == 0
    broken = make(tmp_path / "b", {"mappings/good.toml": GOOD.replace(
        '"item.quantity * item.unit_price"', '"item.quantity / (item.unit_price - 1)"')})
    proc = iwb("map", "run", str(broken), "good", "-i", str(order), "--json")
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert error["field"] == "lines[].amount" and error["file"] == "mappings/good.toml"
    assert error["line"] == 15 and "ZeroDivisionError" in error["message"]
    explained = iwb("map", "run", str(broken), "good", "-i", str(order), "--explain")
    assert explained.returncode == 1
    assert "mappings/good.toml:8    number" in explained.stdout
    assert "ERROR ZeroDivisionError" in explained.stdout


def test_run_a_captured_event(tmp_path: Path) -> None:
    root = make(tmp_path, {"mappings/good.toml": GOOD})
    event = Event(artifact="orders", kind="http", type="iwb.http.request", source="/orders",
                  data=json.dumps(ORDER).encode(), datacontenttype="application/json")

    async def capture() -> None:
        async with CaptureStore(CaptureSettings(path=root / ".iwb" / "captures.db")) as store:
            store.append(event, Outcome(event_id=event.id))
            await store.flush()

    asyncio.run(capture())
    out = iwb("map", "run", str(root), "good", "--capture", event.id[:10], check=True)
    assert json.loads(out.stdout)["number"] == "INV-9"
    missing = iwb("map", "run", str(root), "good", "--capture", "nothing-like-it")
    assert missing.returncode == 1 and "No capture has an id" in missing.stderr
    neither = iwb("map", "run", str(root), "good")
    assert neither.returncode == 1 and "--input FILE or --capture ID" in neither.stderr


def test_export_prints_the_generated_source(tmp_path: Path) -> None:
    root = make(tmp_path, {"mappings/good.toml": GOOD, "mappings/bad.toml": BAD})
    source = iwb("map", "export", str(root), "good", check=True).stdout
    assert source.startswith('"""Mapping \'good\'') and "def good(src):" in source
    compile(source, "good.py", "exec")
    failed = iwb("map", "export", str(root), "bad")
    assert failed.returncode == 1 and "mapping 'bad' has not loaded" in failed.stderr


def test_infer_then_new_then_check(tmp_path: Path) -> None:
    root = make(tmp_path, {})
    sample = tmp_path / "shipment.json"
    sample.write_text(json.dumps({"shipmentId": "S1", "weightKg": 2.5,
                                  "parcels": [{"code": "P1", "items": 3}],
                                  "note": None}))
    out = iwb("map", "infer", str(root), str(sample), "--name", "Shipment", check=True)
    assert "wrote Parcel, Shipment to types/shipment.py" in out.stdout
    assert '"project.types.shipment:Shipment"' in out.stderr
    assert "class Shipment(BaseModel)" in (root / "types/shipment.py").read_text()
    again = iwb("map", "infer", str(root), str(sample), "--name", "Shipment")
    assert again.returncode == 1 and "already exists" in again.stderr
    dry = iwb("map", "infer", str(root), str(sample), "-n", "Other", "-m", "other",
              "--dry-run", check=True)
    assert "class Other(BaseModel)" in dry.stdout and not (root / "types/other.py").exists()
    (root / "types/out.py").write_text(
        "from pydantic import BaseModel\n\nclass Out(BaseModel):\n"
        "    shipment_id: str\n    weight_kg: float\n    extra: str = ''\n"
    )
    created = iwb("map", "new", str(root), "ship_out", "--source",
                  "project.types.shipment:Shipment", "--target", "project.types.out:Out",
                  check=True)
    assert "created mappings/ship_out.toml (2 field(s) mapped)" in created.stdout
    assert iwb("map", "check", str(root), check=True).returncode == 0
    payload = tmp_path / "s.json"
    payload.write_text(sample.read_text())
    result = json.loads(iwb("map", "run", str(root), "ship_out", "-i", str(payload),
                            check=True).stdout)
    assert result == {"shipment_id": "S1", "weight_kg": 2.5, "extra": ""}


def test_the_map_group_keeps_iwb_help_light() -> None:
    script = (
        "from click.testing import CliRunner\n"
        "from workbench.cli import main\n"
        "for args in (['--help'], ['map', '--help'], ['map', 'run', '--help']):\n"
        "    r = CliRunner().invoke(main, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "import sys\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    assert "pydantic" not in out and "tomlkit" not in out
    assert "workbench.mapper.registry" not in out and "workbench.mapper.compiler" not in out
