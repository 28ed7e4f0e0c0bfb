"""The mapping file format: one TOML file per mapping in `mappings/`, named after it.

    # mappings/order_to_invoice.toml
    [mapping]
    source = "project.types.orders:Order"        # the input, called `src` in expressions
    target = "project.types.billing:Invoice"     # a pydantic model (or "dict")
    uses = ["project.functions.pricing:order_total"]   # functions/classes to call
    mappings = ["address_to_billing"]            # other mappings called in expressions

    [inputs]                                     # constants and configurable values
    currency = { config = "orders_api.currency", default = "EUR" }   # Config.toml [orders_api]
    vat_rate = 0.2

    [fields]                                     # one entry per target field
    customer = "src.customer.lower()"            # a Python expression
    total = "order_total(src)"
    currency = "currency"
    status = { const = "open" }
    note = { expr = "src.note.strip()", default = "" }     # None-safe, then the default
    issued = { expr = "src.date", convert = "date", format = "%d/%m/%Y" }
    count = { each = "src.items", reduce = "count" }
    first_sku = { each = "src.items", expr = "item.sku", pick = "first" }
    billing = { mapping = "address_to_billing", expr = "src.address" }

    [fields.shipping]                            # a nested model: a table of its fields
    street = "src.address.street"

    [fields.lines]                               # a list: for each element of a source list
    each = "src.items"
    as = "item"                                  # the element's name (default: item)
    where = "item.quantity > 0"
    sort = "item.sku"                            # desc = true for descending
    limit = 100
    [fields.lines.fields]                        # element fields (or expr = "..." per element)
    sku = "item.sku"
    amount = "item.quantity * item.unit_price"

Several sources: `[mapping.sources]` with `name = "module:Class"`; expressions then use
those names instead of `src`.

A table is a rule when it has `expr`, `each`, `const` or `mapping`; otherwise its keys are
the fields of a nested model. (A nested model with a field called `expr` is written as a
rule with `expr` and `fields`: `{ expr = "src.x", as = "x", fields = { expr = "..." } }`.)

Reading uses `tomllib` and records the line of every key, so every problem and every
traceback names `file:line`; writing back (see `workbench.mapper.edit`) uses tomlkit and
keeps comments and order.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from workbench.mapper.errors import Issue
from workbench.project.tomlpos import key_lines, syntax_error_position

KeyPath = tuple[str, ...]

RULE_MARKERS = ("expr", "each", "const", "mapping")
"""Keys that make a field table a rule rather than a nested model's fields."""
RULE_OPTIONS = (
    "expr", "const", "each", "as", "where", "sort", "desc", "limit", "pick", "reduce",
    "sep", "default", "convert", "format", "mapping", "fields",
)
EACH_OPTIONS = ("where", "sort", "desc", "limit", "pick", "reduce", "sep")
CONVERSIONS = ("int", "float", "decimal", "str", "bool", "date", "datetime", "time", "enum")
REDUCERS = ("sum", "count", "min", "max", "avg", "join")
PICKS = ("first", "last")
MAPPING_KEYS = ("source", "sources", "target", "uses", "mappings", "description")
INPUT_KEYS = ("value", "config", "type", "default", "description")
DICT_REF = "dict"
"""A source or target written as "dict": plain dicts, no model."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_INDEX = re.compile(r"\[\d*\]")


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()
"""An option that is not given (distinct from None, which TOML cannot write anyway)."""


@dataclass(frozen=True, slots=True)
class Expr:
    """An expression as written in the file."""

    text: str
    line: int
    """The line of its key."""
    key: KeyPath
    """Its TOML key path, e.g. `("fields", "total", "expr")`."""


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How one target field gets its value."""

    name: str
    """The target field name."""
    path: str
    """The target field path: `customer`, `billing.street`, `lines[].sku`."""
    line: int
    """The line of the field's key (or table header)."""
    key: KeyPath
    kind: str
    """`expr`, `const`, `each`, `value` (expr/mapping with options) or `object` (a
    nested model's fields)."""
    expr: Expr | None = None
    const: Any = UNSET
    each: Expr | None = None
    as_: str | None = None
    where: Expr | None = None
    sort: Expr | None = None
    desc: bool = False
    limit: int | None = None
    pick: str | int | None = None
    reduce: str | None = None
    sep: str = ", "
    default: Any = UNSET
    convert: str | None = None
    format: str | None = None
    mapping: str | None = None
    fields: tuple[FieldRule, ...] | None = None
    option_lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def var(self) -> str:
        """The name an `each` element (or an `expr` + `fields` value) is bound to."""
        return self.as_ or "item"

    @property
    def binds(self) -> bool:
        """Whether the rule binds `var` for its sub-fields or element expression."""
        return self.kind == "each" or (self.kind == "value" and self.fields is not None)

    def line_of(self, option: str) -> int:
        return self.option_lines.get(option, self.line)

    def expressions(self) -> Iterator[tuple[str, Expr]]:
        """(option, expression) pairs of this rule (not of its sub-fields)."""
        for option in ("each", "where", "sort", "expr"):
            value = getattr(self, option)
            if value is not None:
                yield option, value

    def walk(self) -> Iterator[FieldRule]:
        yield self
        for sub in self.fields or ():
            yield from sub.walk()


@dataclass(frozen=True, slots=True)
class SourceSpec:
    name: str
    ref: str
    line: int


@dataclass(frozen=True, slots=True)
class UseSpec:
    """An import for expressions: `module:attr`, `module:attr as name`, or `module`."""

    ref: str
    name: str
    line: int


@dataclass(frozen=True, slots=True)
class InputSpec:
    """An `[inputs]` entry: a constant, or a configurable value from Config.toml."""

    name: str
    line: int
    value: Any = UNSET
    config: str | None = None
    """`table.key` in Config.toml (a bare `key` means the table named after the mapping)."""
    type: str | None = None
    default: Any = UNSET
    description: str = ""


@dataclass(frozen=True, slots=True)
class MappingSpec:
    """A parsed mapping file."""

    name: str
    path: Path
    file: str
    """The file as messages name it (relative to the project root when possible)."""
    text: str
    sources: tuple[SourceSpec, ...]
    target: str
    target_line: int
    fields: tuple[FieldRule, ...]
    uses: tuple[UseSpec, ...] = ()
    mappings: tuple[tuple[str, int], ...] = ()
    inputs: tuple[InputSpec, ...] = ()
    description: str = ""
    mapping_line: int = 1
    fields_line: int = 1
    lines: Mapping[KeyPath, int] = field(default_factory=dict)

    def walk(self) -> Iterator[FieldRule]:
        """Every rule, depth first, in file order."""
        for rule in self.fields:
            yield from rule.walk()

    def rule(self, path: str) -> FieldRule | None:
        """The rule of a target path (`lines[2].sku` and `lines[].sku` both work)."""
        wanted = normalize_path(path)
        for rule in self.walk():
            if rule.path == wanted:
                return rule
        return None

    def nearest_rule(self, path: str) -> FieldRule | None:
        """The rule of `path` or of its closest enclosing field."""
        wanted = normalize_path(path)
        while wanted:
            found = self.rule(wanted)
            if found is not None:
                return found
            wanted = parent_path(wanted)
        return None

    def called_mappings(self) -> dict[str, int]:
        """Mapping names this mapping calls (declared or in `mapping = ...`), with a line."""
        out = {name: line for name, line in self.mappings}
        for rule in self.walk():
            if rule.mapping:
                out.setdefault(rule.mapping, rule.line_of("mapping"))
        return out

    def source_names(self) -> list[str]:
        return [s.name for s in self.sources]


def normalize_path(path: str) -> str:
    """`lines[3].sku` → `lines[].sku`."""
    return _INDEX.sub("[]", path)


def parent_path(path: str) -> str:
    """`lines[].sku` → `lines`; `billing.street` → `billing`; `x` → ``."""
    cut = path.rfind(".")
    head = path[:cut] if cut >= 0 else ""
    return head[:-2] if head.endswith("[]") else head


def relative_name(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


# ---------------------------------------------------------------------------- parsing


class _Reader:
    def __init__(self, name: str, file: str, lines: Mapping[KeyPath, int]) -> None:
        self.name = name
        self.file = file
        self.lines = lines
        self.issues: list[Issue] = []

    def line(self, key: KeyPath) -> int:
        keys = key
        while keys:
            if keys in self.lines:
                return self.lines[keys]
            keys = keys[:-1]
        return 1

    def error(self, message: str, key: KeyPath, fieldpath: str | None = None) -> None:
        self.issues.append(
            Issue("error", message, self.file, self.line(key), fieldpath, self.name)
        )


def parse_text(
    text: str, path: Path, *, root: Path | None = None
) -> tuple[MappingSpec | None, list[Issue]]:
    """Parse a mapping file's text.

    Returns:
        The spec (None when the file cannot be used at all) and every problem found.
    """
    name = path.stem
    file = relative_name(path, root)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason, line, column = syntax_error_position(exc, text)
        col = f", column {column}" if column else ""
        return None, [
            Issue("error", f"not valid TOML: {reason}{col}. Fix the syntax there.", file,
                  line, None, name)
        ]
    reader = _Reader(name, file, key_lines(text))
    if not _NAME.match(name):
        reader.error(
            f"the mapping name {name!r} (the file name) must be a Python identifier: letters, "
            "digits and _, starting with a letter. Rename the file.", (),
        )
    for key in data:
        if key not in ("mapping", "inputs", "fields"):
            reader.error(
                f"unknown table [{key}]; a mapping file has [mapping], [inputs] and [fields]",
                (key,),
            )
    head = data.get("mapping")
    if not isinstance(head, dict):
        reader.error(
            "the file has no [mapping] table; it names the source and the target: "
            '[mapping] source = "project.types.orders:Order", target = "..."', (),
        )
        return None, reader.issues
    sources = _sources(reader, head)
    target = head.get("target")
    if not isinstance(target, str) or not target.strip():
        reader.error(
            'no target: add target = "project.types.<module>:<Class>" (or "dict") to '
            "[mapping]", ("mapping",),
        )
        target = ""
    for key in head:
        if key not in MAPPING_KEYS:
            reader.error(
                f"unknown key {key!r} in [mapping]; known: {', '.join(MAPPING_KEYS)}",
                ("mapping", key),
            )
    uses = _uses(reader, head.get("uses", []))
    mappings = _names_list(reader, head.get("mappings", []), ("mapping", "mappings"))
    description = head.get("description", "")
    if not isinstance(description, str):
        reader.error("description must be a string", ("mapping", "description"))
        description = ""
    inputs = _inputs(reader, data.get("inputs", {}))
    raw_fields = data.get("fields", {})
    if not isinstance(raw_fields, dict):
        reader.error("[fields] must be a table of target fields", ("fields",))
        raw_fields = {}
    fields = _fields(reader, raw_fields, ("fields",), "", ())
    if not sources or not target:
        return None, reader.issues
    spec = MappingSpec(
        name=name, path=path, file=file, text=text, sources=tuple(sources),
        target=target.strip(), target_line=reader.line(("mapping", "target")),
        fields=fields, uses=tuple(uses), mappings=tuple(mappings), inputs=tuple(inputs),
        description=description, mapping_line=reader.line(("mapping",)),
        fields_line=reader.line(("fields",)) if "fields" in data else reader.line(("mapping",)),
        lines=reader.lines,
    )
    return spec, reader.issues


def parse_file(path: Path, *, root: Path | None = None) -> tuple[MappingSpec | None, list[Issue]]:
    """Read and parse a mapping file (see `parse_text`)."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [
            Issue("error", f"cannot read the mapping file: {exc}", relative_name(path, root),
                  None, None, path.stem)
        ]
    return parse_text(text, path, root=root)


def _sources(reader: _Reader, head: dict[str, Any]) -> list[SourceSpec]:
    single, many = head.get("source"), head.get("sources")
    if single is not None and many is not None:
        reader.error("give either source = \"...\" or [mapping.sources], not both",
                     ("mapping", "sources"))
    if single is not None:
        if not isinstance(single, str) or not single.strip():
            reader.error('source must be a type reference: "project.types.<module>:<Class>"',
                         ("mapping", "source"))
            return []
        return [SourceSpec("src", single.strip(), reader.line(("mapping", "source")))]
    if many is None:
        reader.error(
            'no source: add source = "project.types.<module>:<Class>" (or a '
            "[mapping.sources] table of named inputs) to [mapping]", ("mapping",),
        )
        return []
    if not isinstance(many, dict) or not many:
        reader.error("[mapping.sources] must be a table: name = \"module:Class\"",
                     ("mapping", "sources"))
        return []
    out: list[SourceSpec] = []
    for name, ref in many.items():
        key = ("mapping", "sources", name)
        if not _NAME.match(name):
            reader.error(f"source name {name!r} must be an identifier starting with a letter",
                         key)
            continue
        if not isinstance(ref, str) or not ref.strip():
            reader.error(f"source {name!r} must name a type: \"module:Class\"", key)
            continue
        out.append(SourceSpec(name, ref.strip(), reader.line(key)))
    return out


def _uses(reader: _Reader, raw: Any) -> list[UseSpec]:
    if not isinstance(raw, list):
        reader.error('uses must be a list: uses = ["project.functions.pricing:order_total"]',
                     ("mapping", "uses"))
        return []
    out: list[UseSpec] = []
    for i, item in enumerate(raw):
        key = ("mapping", "uses", str(i))
        if not isinstance(item, str) or not item.strip():
            reader.error(f"uses[{i}] must be a string \"module:name\"", key)
            continue
        ref, _, alias = item.partition(" as ")
        ref = ref.strip()
        if alias.strip():
            name = alias.strip()
        elif ":" in ref:
            name = ref.rsplit(":", 1)[1].rsplit(".", 1)[-1]
        else:
            name = ref.rsplit(".", 1)[-1]
        if not _NAME.match(name):
            reader.error(f"uses[{i}] {item!r} binds {name!r}, which is not a usable name", key)
            continue
        out.append(UseSpec(ref, name, reader.line(key)))
    return out


def _names_list(reader: _Reader, raw: Any, key: KeyPath) -> list[tuple[str, int]]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        reader.error(f"{key[-1]} must be a list of mapping names", key)
        return []
    return [(x, reader.line((*key, str(i)))) for i, x in enumerate(raw)]


def _inputs(reader: _Reader, raw: Any) -> list[InputSpec]:
    if not isinstance(raw, dict):
        reader.error("[inputs] must be a table", ("inputs",))
        return []
    out: list[InputSpec] = []
    for name, value in raw.items():
        key = ("inputs", name)
        line = reader.line(key)
        if not _NAME.match(name):
            reader.error(f"input name {name!r} must be an identifier starting with a letter", key)
            continue
        if not isinstance(value, dict):
            out.append(InputSpec(name, line, value=value))
            continue
        for option in value:
            if option not in INPUT_KEYS:
                reader.error(
                    f"unknown option {option!r} of input {name!r}; known: "
                    f"{', '.join(INPUT_KEYS)}", (*key, option),
                )
        has_value, config = "value" in value, value.get("config")
        if has_value == (config is not None):
            reader.error(
                f"input {name!r} needs exactly one of value = ... (a constant) or "
                'config = "table.key" (a Config.toml value)', key,
            )
            continue
        if config is not None and (not isinstance(config, str) or not config.strip()):
            reader.error(f'input {name!r}: config must be "table.key"', (*key, "config"))
            continue
        type_name = value.get("type")
        if type_name is not None and not isinstance(type_name, str):
            reader.error(f"input {name!r}: type must be a string such as \"int\"", (*key, "type"))
            type_name = None
        out.append(
            InputSpec(
                name, line, value=value.get("value", UNSET), config=config, type=type_name,
                default=value.get("default", UNSET),
                description=str(value.get("description", "")),
            )
        )
    return out


def _fields(
    reader: _Reader, table: dict[str, Any], key: KeyPath, prefix: str, bound: tuple[str, ...]
) -> tuple[FieldRule, ...]:
    out: list[FieldRule] = []
    for name, value in table.items():
        fkey = (*key, name)
        path = f"{prefix}.{name}" if prefix else name
        line = reader.line(fkey)
        if not name.isidentifier():
            reader.error(f"{name!r} is not a field name (fields are Python identifiers)", fkey,
                         path)
            continue
        if isinstance(value, str):
            out.append(FieldRule(name, path, line, fkey, "expr", expr=Expr(value, line, fkey)))
        elif isinstance(value, dict):
            rule = _rule(reader, name, value, fkey, path, bound)
            if rule is not None:
                out.append(rule)
        elif isinstance(value, bool | int | float | date | datetime | time | list):
            out.append(FieldRule(name, path, line, fkey, "const", const=value))
        else:
            reader.error(f"unsupported value {value!r}", fkey, path)
    return tuple(out)


def _rule(
    reader: _Reader, name: str, table: dict[str, Any], key: KeyPath, path: str,
    bound: tuple[str, ...],
) -> FieldRule | None:
    line = reader.line(key)
    markers = [m for m in RULE_MARKERS if m in table]
    if not markers:
        fields = _fields(reader, table, key, path, bound)
        return FieldRule(name, path, line, key, "object", fields=fields)
    lines = {opt: reader.line((*key, opt)) for opt in table}
    ok = True

    def bad(message: str, option: str | None = None) -> None:
        nonlocal ok
        ok = False
        reader.error(message, (*key, option) if option else key, path)

    for option in table:
        if option not in RULE_OPTIONS:
            bad(f"unknown option {option!r}; a rule takes: {', '.join(RULE_OPTIONS)} (a table "
                "without expr/each/const/mapping lists a nested model's fields)", option)

    def text(option: str) -> Expr | None:
        value = table.get(option)
        if value is None:
            return None
        if not isinstance(value, str):
            bad(f"{option} must be an expression string, not {value!r}", option)
            return None
        return Expr(value, lines[option], (*key, option))

    if "const" in table and ({"expr", "each", "mapping"} & set(table)):
        bad("const is a fixed value; it does not combine with expr, each or mapping", "const")
    each = text("each")
    kind = "const" if "const" in table else "each" if each is not None else "value"
    if kind != "each":
        for option in EACH_OPTIONS:
            if option in table:
                bad(f"{option} applies to lists: it needs each = \"<a source list>\"", option)
    as_ = table.get("as")
    if as_ is not None:
        if not isinstance(as_, str) or not _NAME.match(as_):
            bad(f"as must be a name (letters, digits, _), not {as_!r}", "as")
            as_ = None
        elif as_ in bound:
            bad(f"as = {as_!r} is already bound by an enclosing rule; choose another name", "as")
    limit = table.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        bad(f"limit must be a whole number >= 0, not {limit!r}", "limit")
        limit = None
    pick = table.get("pick")
    if pick is not None and not (
        pick in PICKS or (isinstance(pick, int) and not isinstance(pick, bool))
    ):
        bad(f"pick must be \"first\", \"last\" or an index, not {pick!r}", "pick")
        pick = None
    reduce = table.get("reduce")
    if reduce is not None and reduce not in REDUCERS:
        bad(f"reduce must be one of {', '.join(REDUCERS)}, not {reduce!r}", "reduce")
        reduce = None
    if pick is not None and reduce is not None:
        bad("pick and reduce both turn a list into one value; give one of them", "reduce")
    sep = table.get("sep", ", ")
    if not isinstance(sep, str):
        bad("sep must be a string", "sep")
        sep = ", "
    if "sep" in table and reduce != "join":
        bad('sep is the separator of reduce = "join"', "sep")
    desc = table.get("desc", False)
    if not isinstance(desc, bool):
        bad("desc must be true or false", "desc")
        desc = False
    if "desc" in table and "sort" not in table:
        bad("desc reverses sort; add sort = \"<key expression>\"", "desc")
    convert = table.get("convert")
    if convert is not None and convert not in CONVERSIONS:
        bad(f"convert must be one of {', '.join(CONVERSIONS)}, not {convert!r}", "convert")
        convert = None
    fmt = table.get("format")
    if fmt is not None and (not isinstance(fmt, str) or convert is None):
        bad('format goes with convert (e.g. convert = "date", format = "%d/%m/%Y")', "format")
        fmt = None
    mapping = table.get("mapping")
    if mapping is not None and (not isinstance(mapping, str) or not _NAME.match(mapping)):
        bad(f"mapping must name another mapping (its file name), not {mapping!r}", "mapping")
        mapping = None
    expr = text("expr")
    where, sort = text("where"), text("sort")
    sub_fields: tuple[FieldRule, ...] | None = None
    raw_fields = table.get("fields")
    if raw_fields is not None:
        if not isinstance(raw_fields, dict):
            bad("fields must be a table of the element's (or value's) fields", "fields")
        elif kind == "const":
            bad("const does not take fields", "fields")
        elif mapping is not None:
            bad("a rule either calls a mapping or lists fields, not both", "fields")
        elif kind == "each" and expr is not None:
            bad("an each rule gives its elements either by expr or by fields, not both",
                "fields")
        else:
            var = as_ or "item"
            if kind == "value" and expr is None:
                bad("fields under a rule need expr = \"...\" (the value they are read from)",
                    "fields")
            inner_prefix = f"{path}[]" if kind == "each" else path
            sub_fields = _fields(reader, raw_fields, (*key, "fields"), inner_prefix,
                                 (*bound, var))
    if as_ is not None and kind == "value" and sub_fields is None:
        bad("as names the value for its fields; add fields = {...} or drop as", "as")
    if kind == "value" and expr is None and mapping is None:
        bad("the rule needs expr = \"...\"", None)
    if not ok and kind == "value" and expr is None and mapping is None:
        return None
    return FieldRule(
        name, path, line, key, kind, expr=expr, const=table.get("const", UNSET), each=each,
        as_=as_, where=where, sort=sort, desc=desc, limit=limit, pick=pick, reduce=reduce,
        sep=sep, default=table.get("default", UNSET), convert=convert, format=fmt,
        mapping=mapping, fields=sub_fields, option_lines=lines,
    )
