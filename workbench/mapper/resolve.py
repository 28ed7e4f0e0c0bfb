"""Turn a parsed mapping's references into objects: source and target types, `uses`
imports and `[inputs]` values.

Type references are `module:Qualname` (`project.types.orders:Order`); project modules are
the ones the project loader imported (`project.<folder>.<module>`), so a mapping binds to
the classes currently in service. A module that is not loaded yet is imported.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from workbench.config import REQUIRED, ConfigSource, env_var_name
from workbench.mapper.errors import Issue
from workbench.mapper.spec import DICT_REF, UNSET, MappingSpec
from workbench.mapper.typeinfo import INPUT_TYPES, is_model

DictType = dict
"""A source or target given as "dict"."""


@dataclass(slots=True)
class Bound:
    """A mapping spec with its references resolved."""

    spec: MappingSpec
    sources: dict[str, Any] = field(default_factory=dict)
    """Source name → model class (or `dict`)."""
    target: Any = dict
    """The target model class (or `dict`)."""
    uses: dict[str, Any] = field(default_factory=dict)
    """Name → imported object."""
    inputs: dict[str, Any] = field(default_factory=dict)
    """Input name → value."""
    input_types: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> tuple[Any, ...]:
        """What the compiled code depends on besides the file text: the objects' identities
        and the input values (a types module reload makes new classes)."""
        return (
            tuple((n, id(t)) for n, t in self.sources.items()),
            id(self.target),
            tuple((n, id(o)) for n, o in self.uses.items()),
            tuple((n, repr(v)) for n, v in self.inputs.items()),
        )


def resolve_ref(ref: str) -> Any:
    """The object `module:attr.attr` (or the module, without a colon).

    Raises:
        LookupError: the module is missing or failed, or has no such attribute; the
            message says which.
    """
    module_name, _, attr = ref.partition(":")
    module_name = module_name.strip()
    if not module_name:
        raise LookupError(f"{ref!r} names no module; write \"module.path:Name\"")
    module = sys.modules.get(module_name)
    if module is None:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or module_name
            hint = (
                " (project modules are project.<folder>.<file>, e.g. project.types.orders)"
                if not module_name.startswith("project.") else ""
            )
            raise LookupError(f"module {missing!r} not found{hint}") from None
        except Exception as exc:  # the module itself is broken
            raise LookupError(
                f"module {module_name!r} failed to import: {type(exc).__name__}: {exc}"
            ) from None
    obj: Any = module
    for part in [p for p in attr.strip().split(".") if p] if attr else []:
        if part.startswith("__") or not hasattr(obj, part):
            names = sorted(n for n in vars(module) if not n.startswith("_"))[:20]
            raise LookupError(
                f"{module_name} has no {attr.strip()!r} (it defines: {', '.join(names)})"
            )
        obj = getattr(obj, part)
    return obj


def bind(spec: MappingSpec, config: ConfigSource | None) -> tuple[Bound, list[Issue]]:
    """Resolve a spec's types, imports and inputs.

    Args:
        spec: the parsed mapping.
        config: where configurable inputs come from (the runtime's ConfigResolver); None
            reads only the environment and the defaults.
    """
    issues: list[Issue] = []
    bound = Bound(spec)

    def error(message: str, line: int | None) -> None:
        issues.append(Issue("error", message, spec.file, line, None, spec.name))

    for source in spec.sources:
        tp = _type_ref(source.ref, f"source {source.name!r}", source.line, error)
        if tp is not None:
            bound.sources[source.name] = tp
    target = _type_ref(spec.target, "target", spec.target_line, error)
    if target is not None:
        bound.target = target
    for use in spec.uses:
        try:
            bound.uses[use.name] = resolve_ref(use.ref)
        except LookupError as exc:
            error(f"uses {use.ref!r}: {exc}", use.line)
    for inp in spec.inputs:
        _input(spec, inp, config, bound, issues)
    taken: dict[str, str] = {}
    for kind, names in (
        ("source", list(bound.sources)), ("input", [i.name for i in spec.inputs]),
        ("uses", list(bound.uses)),
    ):
        for name in names:
            if name in taken:
                error(f"the name {name!r} is both a {taken[name]} and a {kind}; rename one",
                      spec.mapping_line)
            taken[name] = kind
    return bound, issues


def _type_ref(ref: str, what: str, line: int, error: Any) -> Any:
    if ref == DICT_REF:
        return dict
    if ":" not in ref:
        error(f"{what} {ref!r} is not a type reference; write \"project.types.<module>:<Class>\""
              " (or \"dict\")", line)
        return None
    try:
        obj = resolve_ref(ref)
    except LookupError as exc:
        error(f"{what} type {ref!r}: {exc}", line)
        return None
    if not is_model(obj):
        error(f"{what} {ref!r} is a {type(obj).__name__}, not a pydantic model (a class "
              "deriving from pydantic.BaseModel)", line)
        return None
    return obj


def _input(
    spec: MappingSpec, inp: Any, config: ConfigSource | None, bound: Bound, issues: list[Issue]
) -> None:
    tp: Any = Any
    if inp.type is not None:
        if inp.type not in INPUT_TYPES:
            issues.append(Issue(
                "error", f"input {inp.name!r}: unknown type {inp.type!r}; use one of "
                f"{', '.join(INPUT_TYPES)}", spec.file, inp.line, None, spec.name,
            ))
            return
        tp = INPUT_TYPES[inp.type]
    if inp.config is None:
        value = inp.value
        if tp is not Any:
            try:
                value = TypeAdapter(tp).validate_python(value)
            except ValidationError as exc:
                issues.append(Issue(
                    "error", f"input {inp.name!r} = {inp.value!r} is not a valid {inp.type}: "
                    f"{exc.errors()[0]['msg']}", spec.file, inp.line, None, spec.name,
                ))
                return
        bound.inputs[inp.name] = value
        bound.input_types[inp.name] = tp if tp is not Any else type(value)
        return
    table, _, key = inp.config.strip().rpartition(".")
    table = table or spec.name
    default = REQUIRED if inp.default is UNSET else inp.default
    if config is not None:
        errors: list[Any] | None = getattr(config, "errors", None)
        before = len(errors) if errors is not None else 0
        value = config.resolve(
            table, key, tp, default, secret=False, description=inp.description,
            file=str(spec.path), line=inp.line,
        )
        new = errors[before:] if errors is not None else []
        if new and errors is not None:
            del errors[before:]  # reported here, as this mapping's problems
            for err in new:
                issues.append(Issue(
                    "error", f"input {inp.name!r}: {getattr(err, 'message', err)}", spec.file,
                    inp.line, None, spec.name,
                ))
            return
    else:
        var = env_var_name(table, key)
        if var in os.environ:
            try:
                value = TypeAdapter(tp).validate_strings(os.environ[var])
            except ValidationError as exc:
                issues.append(Issue(
                    "error", f"input {inp.name!r}: {var}: {exc.errors()[0]['msg']}", spec.file,
                    inp.line, None, spec.name,
                ))
                return
        elif default is REQUIRED:
            issues.append(Issue(
                "error", f"input {inp.name!r} reads [{table}] {key}, which has no value: set it "
                f"in Config.toml or as {var}, or give the input a default", spec.file, inp.line,
                None, spec.name,
            ))
            return
        else:
            value = default
    bound.inputs[inp.name] = value
    bound.input_types[inp.name] = tp if tp is not Any else type(value)
