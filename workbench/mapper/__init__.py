"""The data mapper: declarative mapping files compiled to plain Python functions.

Handlers call a mapping by name:

    from workbench.mapper import mapping

    to_invoice = mapping("order_to_invoice")        # mappings/order_to_invoice.toml

    @orders.on_record
    async def bill(order: Order) -> Invoice:
        return to_invoice(order)                     # an Invoice (validated)
        # to_invoice.raw(order) gives the dict before validation

`mapping(name)` is a proxy: every call goes through the running project's registry, so a
mapping edited on disk takes effect on the next call (hot reload), and a broken edit keeps
the last good version serving. Several sources are passed positionally or by name
(`to_x(order, customer)`), `[inputs]` may be overridden by keyword (`to_x(o, currency="USD")`).

Outside a running project (a script, a unit test of a handler), load a project's mappings
first: `workbench.mapper.load_mappings(Path("project"))`.

Modules: `spec` (the file format, parsed with line numbers), `edit` (write back keeping
comments and order, undoable edits), `expr` (expression checks, None-safety, positions),
`resolve` (types, `uses` and `[inputs]`), `check` (static check against the types),
`compiler` (to Python) and `compiled` (what the code calls at run time: errors that name
the field), `registry` (load, cache, keep last good, link sub-mappings), `evaluate` (a
field-by-field interpreter, for previews), `helpers` (functions expressions may call),
`typeinfo`, `infer` (types from a sample), `schema` (source/target trees, auto-map), `cli`
(`iwb map`).

This package imports no plugin, no runtime and no UI; only `cli` (the `iwb map` commands)
uses the project loader and the capture store. Importing this module is cheap: the
compiler and pydantic-heavy parts load on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.mapper.compiled import CompiledMapping
    from workbench.mapper.registry import MappingRegistry

__all__ = ["MappingRef", "load_mappings", "mapping", "set_current"]

_CURRENT: list[MappingRegistry] = []
"""The registry `mapping(name)` resolves through; kept here so a call costs two lookups
and no import."""


def set_current(registry: MappingRegistry | None) -> None:
    """Make `registry` the one `mapping(name)` resolves through (the runtime calls this when
    it loads a project; None when the project has no mappings)."""
    _CURRENT.clear()
    if registry is not None:
        _CURRENT.append(registry)


def _registry() -> MappingRegistry:
    from workbench.mapper import registry

    return registry.current()  # raises, naming what to do, when none is loaded


class MappingRef:
    """A mapping called by name, resolved at call time (see the module docstring)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *sources: Any, **inputs: Any) -> Any:
        """Map `sources` to the target model (validated)."""
        registry = _CURRENT[0] if _CURRENT else _registry()
        func = registry.funcs.get(self.name)
        if func is None:
            func = registry.function(self.name)  # raises: not found, or never loaded
        return func(*sources, **inputs)

    def raw(self, *sources: Any, **inputs: Any) -> Any:
        """Map `sources` to the target as a dict, without validation."""
        registry = _CURRENT[0] if _CURRENT else _registry()
        return registry.raw_function(self.name)(*sources, **inputs)

    @property
    def compiled(self) -> CompiledMapping:
        """The compiled mapping in service (its `source` is the generated code)."""
        return (_CURRENT[0] if _CURRENT else _registry()).get(self.name)

    def __repr__(self) -> str:
        return f"mapping({self.name!r})"


def mapping(name: str) -> MappingRef:
    """Refer to the mapping `mappings/<name>.toml` of the running project."""
    return MappingRef(name)


def load_mappings(root: Path, *, folder: str = "mappings") -> MappingRegistry:
    """Load a project's mappings in this process (outside a runtime) and make them the
    ones `mapping(name)` uses. The project's modules must be importable (as after the
    project loader ran); a module not loaded yet is imported.

    Returns:
        The registry; its `issues()` says what did not load.
    """
    from workbench.mapper import registry

    reg = registry.MappingRegistry(Path(root) / folder, Path(root))
    reg.load()
    set_current(reg)
    return reg
