"""Pydantic models from a sample: a JSON document, or a CSV file's header and first rows.

    iwb map infer ./project order.json --name Order [--module orders]

Objects become models (nested objects nested models, named after their key, list
elements in the singular: `items` → `Item`); the elements of a list are unified (a key
missing from some elements, or null in some, makes the field optional with a None
default); int and float unify to float; text that is always an ISO date or datetime
becomes `date`/`datetime`. JSON keys that are not Python names (`orderId`, `first-name`)
become snake_case fields with an alias. Scalar fields carry the first sample value as
`examples` (the mapper and the inject forms show it).

The models are written to `types/<module>.py`: a new file, or appended to an existing one
(a class name that is already there is an error).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.mapper.errors import InferError

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?\Z"
)
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")
MAX_CSV_ROWS = 200


@dataclass(slots=True)
class _Shape:
    """Everything seen at one place of the sample."""

    kinds: set[str] = field(default_factory=set)
    keys: dict[str, _Shape] = field(default_factory=dict)
    key_counts: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    item: _Shape | None = None
    example: Any = None

    def observe(self, value: Any) -> None:
        if value is None:
            self.kinds.add("null")
        elif isinstance(value, bool):
            self._scalar("bool", value)
        elif isinstance(value, int):
            self._scalar("int", value)
        elif isinstance(value, float):
            self._scalar("float", value)
        elif isinstance(value, str):
            kind = "datetime" if _DATETIME.match(value) else "date" if _DATE.match(value) \
                else "str"
            self._scalar(kind, value)
        elif isinstance(value, dict):
            self.kinds.add("object")
            self.objects += 1
            for key, sub in value.items():
                shape = self.keys.setdefault(str(key), _Shape())
                shape.observe(sub)
                self.key_counts[str(key)] = self.key_counts.get(str(key), 0) + 1
        elif isinstance(value, list):
            self.kinds.add("list")
            if self.item is None:
                self.item = _Shape()
            for sub in value:
                self.item.observe(sub)
        else:
            self._scalar("str", str(value))

    def _scalar(self, kind: str, value: Any) -> None:
        self.kinds.add(kind)
        if self.example is None:
            self.example = value[:40] if isinstance(value, str) else value


@dataclass(slots=True)
class FieldDef:
    """One field of an inferred model."""

    name: str
    key: str
    """The key in the sample (an alias when it differs from `name`)."""
    type: str
    optional: bool
    example: Any = None


@dataclass(slots=True)
class ModelDef:
    """An inferred model."""

    name: str
    fields: list[FieldDef]

    @property
    def aliased(self) -> bool:
        return any(f.key != f.name for f in self.fields)


def python_name(key: str) -> str:
    """A snake_case field name for a sample key."""
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key)
    text = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", text)
    text = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    text = re.sub(r"_+", "_", text)
    if not text:
        text = "field"
    if text[0].isdigit():
        text = f"f_{text}"
    if keyword.iskeyword(text) or text in ("model_config", "model_fields"):
        text += "_"
    return text


def class_name(key: str) -> str:
    """`line_items` → `LineItems`; `orderLine` → `OrderLine`."""
    parts = re.split(r"[^0-9a-zA-Z]+", re.sub(r"(?<=[a-z0-9])([A-Z])", r" \1", key))
    name = "".join(p[:1].upper() + p[1:] for p in parts if p)
    if not name:
        name = "Item"
    if name[0].isdigit():
        name = f"M{name}"
    return name


def singular(name: str) -> str:
    """A list key's element name: `items` → `item`, `categories` → `category`."""
    lower = name.lower()
    if lower.endswith("ies") and len(name) > 3:
        return name[:-3] + "y"
    if lower.endswith(("ses", "xes", "zes", "ches", "shes")):
        return name[:-2]
    if lower.endswith("s") and not lower.endswith("ss") and len(name) > 1:
        return name[:-1]
    return name


class _Builder:
    def __init__(self, taken: set[str]) -> None:
        self.models: list[ModelDef] = []
        self.taken = set(taken)

    def unique(self, wanted: str, parent: str) -> str:
        name = wanted
        if name in self.taken:
            name = f"{parent}{wanted}"
        n = 2
        base = name
        while name in self.taken:
            name = f"{base}{n}"
            n += 1
        self.taken.add(name)
        return name

    def model(self, shape: _Shape, name: str) -> str:
        fields: list[FieldDef] = []
        used: set[str] = set()
        for key, sub in shape.keys.items():
            fname = python_name(key)
            base, n = fname, 2
            while fname in used:
                fname = f"{base}_{n}"
                n += 1
            used.add(fname)
            optional = "null" in sub.kinds or shape.key_counts.get(key, 0) < shape.objects
            tp = self.type_of(sub, key, name, element=False)
            example = sub.example if tp in ("str", "int", "float", "bool", "date", "datetime") \
                else None
            fields.append(FieldDef(fname, key, tp, optional, example))
        self.models.append(ModelDef(name, fields))
        return name

    def type_of(self, shape: _Shape, key: str, parent: str, *, element: bool) -> str:
        kinds = shape.kinds - {"null"}
        if not kinds:
            return "Any"
        if kinds == {"object"}:
            wanted = class_name(singular(key) if element else key)
            return self.model(shape, self.unique(wanted, parent))
        if kinds == {"list"}:
            if shape.item is None or not (shape.item.kinds - {"null"}):
                return "list[Any]"
            inner = self.type_of(shape.item, key, parent, element=True)
            if "null" in shape.item.kinds and inner != "Any":
                inner = f"{inner} | None"
            return f"list[{inner}]"
        if "object" in kinds or "list" in kinds:
            return "Any"
        if kinds <= {"int", "float"}:
            return "float" if "float" in kinds else "int"
        if kinds <= {"date", "datetime"}:
            return "datetime" if "datetime" in kinds else "date"
        if kinds == {"bool"}:
            return "bool"
        if kinds <= {"str", "date", "datetime"}:
            return "str"
        order = ["bool", "int", "float", "str"]
        simple = {"date": "str", "datetime": "str"}
        names = sorted({simple.get(k, k) for k in kinds}, key=order.index)
        return " | ".join(names)


def infer_models(sample: Any, name: str, *, taken: set[str] | None = None) -> list[ModelDef]:
    """Models for a sample (an object, or a list of objects), nested models first.

    Raises:
        InferError: the sample holds no object.
    """
    if not name.isidentifier() or not name[:1].isupper():
        raise InferError(f"{name!r} is not a class name; use CamelCase, e.g. Order")
    shape = _Shape()
    if isinstance(sample, list):
        objects = [x for x in sample if isinstance(x, dict)]
        if not objects:
            raise InferError("the sample is a list without objects; a model needs an object "
                             "(or a list of objects)")
        for obj in objects:
            shape.observe(obj)
    elif isinstance(sample, dict):
        shape.observe(sample)
    else:
        raise InferError(f"the sample is a {type(sample).__name__}; a model needs a JSON "
                         "object (or a list of objects)")
    builder = _Builder(taken or set())
    if name in builder.taken:
        raise InferError(
            f"a class {name!r} already exists in that module; choose another --name or --module"
        )
    builder.taken.add(name)
    builder.model(shape, name)
    return builder.models


def csv_rows(text: str, max_rows: int = MAX_CSV_ROWS) -> list[dict[str, Any]]:
    """A CSV's first rows as dicts, with values typed (int, float, bool, ISO dates stay
    text for the shape to see, empty cells are None)."""
    dialect: type[csv.Dialect] = csv.excel
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        pass  # one column, or too little text to tell: plain commas
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if not reader.fieldnames:
        raise InferError("the CSV file has no header row")
    rows: list[dict[str, Any]] = []
    for i, row in enumerate(reader):
        if i >= max_rows:
            break
        rows.append({k: _cell(v) for k, v in row.items() if k is not None})
    if not rows:
        rows.append({k: None for k in reader.fieldnames})
    return rows


def _cell(value: str | None) -> Any:
    if value is None:
        return None
    text = value.strip()
    if text == "":
        return None
    digits = text.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        return text  # a code with leading zeros (007, 0150), not a number
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def load_sample(path: Path) -> Any:
    """A sample file's data: `.csv`/`.tsv` as rows, anything else as JSON.

    Raises:
        InferError: the file cannot be read or parsed.
    """
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InferError(f"cannot read the sample {str(path)!r}: {exc}") from None
    if path.suffix.lower() in (".csv", ".tsv"):
        return csv_rows(text)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InferError(
            f"{str(path)!r} is not JSON ({exc}); give a .json file, or a .csv with a header"
        ) from None


# ---------------------------------------------------------------------------- source


def _field_line(f: FieldDef) -> str:
    tp = f.type if not f.optional or f.type == "Any" else f"{f.type} | None"
    args: list[str] = []
    if f.optional:
        args.append("default=None")
    if f.key != f.name:
        args.append(f"alias={f.key!r}")
    if f.example is not None and f.example == f.example:  # (NaN is not an example)
        args.append(f"examples=[{f.example!r}]")
    if not args:
        return f"    {f.name}: {tp}"
    if args == ["default=None"]:
        return f"    {f.name}: {tp} = None"
    return f"    {f.name}: {tp} = Field({', '.join(args)})"


def render_classes(models: list[ModelDef]) -> str:
    """The class definitions, nested models first."""
    blocks: list[str] = []
    for model in models:
        lines = [f"class {model.name}(BaseModel):"]
        if model.aliased:
            lines.append("    model_config = ConfigDict(populate_by_name=True)")
            lines.append("")
        lines.extend(_field_line(f) for f in model.fields)
        if not model.fields:
            lines.append("    pass")
        blocks.append("\n".join(lines))
    return "\n\n\n".join(blocks) + "\n"


def needed_imports(models: list[ModelDef]) -> dict[str, set[str]]:
    """module → names the classes use."""
    text = render_classes(models)
    out: dict[str, set[str]] = {"pydantic": {"BaseModel"}}
    if "Field(" in text:
        out["pydantic"].add("Field")
    if "ConfigDict(" in text:
        out["pydantic"].add("ConfigDict")
    dates = {n for n in ("date", "datetime") if re.search(rf"\b{n}\b", text.replace(
        "from datetime", ""))}
    if dates:
        out["datetime"] = dates
    if re.search(r"\bAny\b", text):
        out["typing"] = {"Any"}
    return out


def _import_lines(imports: dict[str, set[str]]) -> list[str]:
    order = ["datetime", "typing", "pydantic"]
    lines = []
    for module in sorted(imports, key=lambda m: order.index(m) if m in order else 99):
        lines.append(f"from {module} import {', '.join(sorted(imports[module]))}")
    return lines


def render_module(models: list[ModelDef], source: str) -> str:
    """A new types module holding the models."""
    imports = needed_imports(models)
    std = [line for line in _import_lines(imports) if not line.startswith("from pydantic")]
    third = [line for line in _import_lines(imports) if line.startswith("from pydantic")]
    root = models[-1].name if models else "Model"
    parts = [f'"""{root}, inferred from {source} by `iwb map infer`."""', "",
             "from __future__ import annotations", ""]
    if std:
        parts.extend([*std, ""])
    parts.extend([*third, "", "", ""])
    return "\n".join(parts) + render_classes(models)


def existing_classes(text: str) -> set[str]:
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise InferError(f"the module does not parse (line {exc.lineno}: {exc.msg}); fix it "
                         "first") from None
    return {n.name for n in tree.body if isinstance(n, ast.ClassDef)}


def append_to_module(text: str, models: list[ModelDef]) -> str:
    """`text` (an existing module) with the models appended and their imports added."""
    tree = ast.parse(text)
    have: dict[str, set[str]] = {}
    last_import = 0
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            have.setdefault(node.module, set()).update(a.asname or a.name for a in node.names)
            last_import = node.end_lineno or node.lineno
        elif isinstance(node, ast.Import):
            last_import = node.end_lineno or node.lineno
    missing: dict[str, set[str]] = {}
    for module, names in needed_imports(models).items():
        lacking = names - have.get(module, set())
        if lacking:
            missing[module] = lacking
    lines = text.splitlines()
    if missing:
        lines[last_import:last_import] = _import_lines(missing)
    body = "\n".join(lines).rstrip("\n")
    return body + "\n\n\n" + render_classes(models)


def write_models(
    types_dir: Path, module: str, sample: Any, name: str, *, source: str, dry_run: bool = False
) -> tuple[Path, str, list[ModelDef]]:
    """Infer models from `sample` and write them to `types_dir/<module>.py`.

    Returns:
        The file, its new text, and the models.

    Raises:
        InferError: a bad module name, a name clash, or a sample without objects.
    """
    if not module.isidentifier() or keyword.iskeyword(module):
        raise InferError(f"{module!r} is not a module name; use letters, digits and _")
    path = types_dir / f"{module}.py"
    existing = path.read_text("utf-8") if path.is_file() else None
    taken = existing_classes(existing) if existing is not None else set()
    models = infer_models(sample, name, taken=taken)
    text = render_module(models, source) if existing is None else append_to_module(
        existing, models
    )
    if not dry_run:
        types_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return path, text, models
