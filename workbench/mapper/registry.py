"""The mappings of a project: read, checked, compiled, linked, and kept in service.

`MappingRegistry.load()` reads every `mappings/*.toml`, resolves its types against the
project modules in service, checks it and compiles it. A mapping that fails (bad TOML, an
unknown type, a bad expression, a cycle, types that changed under it) keeps its last good
compiled version in service and is reported with file, line and field path. Compiled code
is cached by the file's content hash and the identities of the objects it binds, so a
reload recompiles only what changed (a types module reload makes new classes, so every
mapping over them is checked and compiled again).

The runtime installs its registry with `set_current()`; `workbench.mapper.mapping(name)`
resolves through it on every call, so a reloaded mapping takes effect at once.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import workbench.mapper as mapper_package
from workbench.config import ConfigSource
from workbench.errors import WorkbenchError
from workbench.mapper.check import SubInfo, check_mapping
from workbench.mapper.compiled import CompiledMapping, unlinked
from workbench.mapper.compiler import compile_mapping
from workbench.mapper.errors import Issue, MappingError, MappingNotFoundError
from workbench.mapper.resolve import Bound, bind
from workbench.mapper.spec import MappingSpec, parse_text, relative_name
from workbench.mapper.typeinfo import UNKNOWN, qualified

_current = mapper_package._CURRENT
set_current = mapper_package.set_current


def current() -> MappingRegistry:
    """The registry of the running project.

    Raises:
        MappingNotFoundError: no project is loaded in this process.
    """
    if not _current:
        raise MappingNotFoundError(
            "No mappings are loaded in this process: mappings are available inside a running "
            "project (iwb run / iwb open), or after workbench.mapper.load_mappings(root)."
        )
    return _current[0]


@dataclass(slots=True)
class MappingEntry:
    """One mapping file and its state."""

    name: str
    path: Path
    digest: str = ""
    text: str = ""
    spec: MappingSpec | None = None
    parse_issues: list[Issue] = field(default_factory=list)
    bound: Bound | None = None
    issues: list[Issue] = field(default_factory=list)
    """Problems found by the latest load (errors and warnings)."""
    compiled: CompiledMapping | None = None
    """The compiled version in service: the last one that loaded without error."""
    key: tuple[Any, ...] = ()
    """What the latest check and compile depended on."""
    checked: list[Issue] = field(default_factory=list)
    """What the check found for `key`."""

    @property
    def ok(self) -> bool:
        """The latest load had no error."""
        return not any(i.level == "error" for i in self.issues)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    def describe(self) -> dict[str, Any]:
        spec = self.spec or (self.compiled.spec if self.compiled else None)
        return {
            "name": self.name,
            "file": spec.file if spec else str(self.path),
            "sources": {s.name: s.ref for s in spec.sources} if spec else {},
            "target": spec.target if spec else None,
            "fields": sum(1 for _ in spec.walk()) if spec else 0,
            "description": spec.description if spec else "",
            "ok": self.ok,
            "serving": self.compiled is not None,
            "stale": self.compiled is not None and not self.ok,
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.issues if i.level == "warning"],
        }


class MappingRegistry:
    """The mappings of one project folder.

    Args:
        folder: the mappings folder (`<project>/mappings`).
        root: the project root, for relative file names in messages.
    """

    def __init__(self, folder: Path, root: Path | None = None) -> None:
        self.folder = Path(folder)
        self.root = Path(root) if root is not None else self.folder.parent
        self.entries: dict[str, MappingEntry] = {}
        self.funcs: dict[str, Callable[..., Any]] = {}
        """Name → validated function of the compiled mapping in service."""
        self.raws: dict[str, Callable[..., Any]] = {}
        """Name → raw (dict) function of the compiled mapping in service."""
        self.recompiled: list[str] = []
        """Mappings compiled anew by the latest load."""

    # ------------------------------------------------------------------ files

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(
            p for p in self.folder.glob("*.toml") if p.is_file() and not p.name.startswith(".")
        )

    def owns(self, path: Path) -> bool:
        """Whether `path` is (or was) a mapping file of this registry."""
        try:
            return path.suffix == ".toml" and path.resolve().parent == self.folder.resolve()
        except OSError:
            return False

    # ------------------------------------------------------------------ loading

    def load(self, config: ConfigSource | None = None) -> list[MappingError]:
        """Read, check and compile every mapping; keep the last good version of any that
        fails. Returns the errors of this load (each names file, line and field)."""
        self.recompiled = []
        paths = self.files()
        seen = {p.stem for p in paths}
        for name in [n for n in self.entries if n not in seen]:
            del self.entries[name]
            self.funcs.pop(name, None)
            self.raws.pop(name, None)
        for path in paths:
            self._read(path)
        for entry in self.entries.values():
            entry.bound = None
            if entry.spec is not None:
                try:
                    bound, issues = bind(entry.spec, config)
                except Exception as exc:  # an import with side effects may raise anything
                    entry.issues = [*entry.parse_issues, _internal(entry.spec, "resolve", exc)]
                    continue
                entry.bound = bound
                entry.issues = [*entry.parse_issues, *issues]
            else:
                entry.issues = list(entry.parse_issues)
        cycles = self._cycles()
        subs = self._sub_infos()
        for entry in self.entries.values():
            entry.issues.extend(cycles.get(entry.name, []))
            self._compile(entry, subs)
        self._link()
        return [i.to_error() for e in self.entries.values() for i in e.errors]

    def _read(self, path: Path) -> None:
        name = path.stem
        entry = self.entries.get(name)
        if entry is None:
            entry = self.entries[name] = MappingEntry(name, path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            entry.spec, entry.digest = None, ""
            entry.parse_issues = [Issue("error", f"cannot read the mapping file: {exc}",
                                        relative_name(path, self.root), None, None, name)]
            return
        digest = hashlib.sha256(data).hexdigest()[:16]
        if digest == entry.digest and (entry.spec is not None or entry.parse_issues):
            return
        entry.digest = digest
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            entry.spec, entry.text = None, ""
            entry.parse_issues = [Issue("error", f"the file is not UTF-8 text: {exc}",
                                        relative_name(path, self.root), None, None, name)]
            return
        entry.text = text
        entry.spec, entry.parse_issues = parse_text(text, path, root=self.root)

    def _cycles(self) -> dict[str, list[Issue]]:
        graph = {
            name: {k: v for k, v in e.spec.called_mappings().items() if k != name}
            for name, e in self.entries.items() if e.spec is not None
        }
        found: dict[str, list[Issue]] = {}
        reported: set[frozenset[str]] = set()

        def visit(node: str, stack: list[str]) -> None:
            for nxt in graph.get(node, {}):
                if nxt in stack:
                    cycle = [*stack[stack.index(nxt):], nxt]
                    key = frozenset(cycle)
                    if key in reported:
                        continue
                    reported.add(key)
                    text = " → ".join(cycle)
                    for a, b in itertools.pairwise(cycle):
                        spec = self.entries[a].spec
                        assert spec is not None
                        found.setdefault(a, []).append(Issue(
                            "error", f"mappings call each other in a cycle: {text}; a mapping "
                            "cannot call itself, directly or through others", spec.file,
                            graph[a][b], None, a,
                        ))
                elif len(stack) < 64:
                    visit(nxt, [*stack, nxt])

        for name in graph:
            visit(name, [name])
        return found

    def _sub_infos(self) -> dict[str, SubInfo]:
        infos: dict[str, SubInfo] = {}
        for name, entry in self.entries.items():
            bound = entry.bound
            if bound is not None and entry.spec is not None and len(bound.sources) == len(
                entry.spec.sources
            ):
                infos[name] = SubInfo(name, tuple(bound.sources.items()), bound.target)
            elif entry.compiled is not None:
                infos[name] = SubInfo(name, tuple(entry.compiled.sources.items()),
                                      entry.compiled.target)
            elif entry.spec is not None:
                infos[name] = SubInfo(
                    name, tuple((s.name, UNKNOWN) for s in entry.spec.sources), UNKNOWN
                )
        return infos

    def _compile(self, entry: MappingEntry, subs: dict[str, SubInfo]) -> None:
        if entry.bound is None or entry.spec is None or not entry.ok:
            return
        called = entry.spec.called_mappings()
        key = (
            entry.digest,
            entry.bound.identity(),
            tuple(sorted(
                (n, len(s.sources), id(s.target)) for n, s in subs.items() if n in called
            )),
        )
        if key == entry.key:
            # same text, same types and sub-mappings: the same check, the same code
            entry.issues.extend(entry.checked)
            return
        try:
            entry.checked = check_mapping(entry.bound, subs)
        except Exception as exc:  # a gap in the checker must not take the runtime down
            entry.checked = [_internal(entry.spec, "check", exc)]
        entry.issues.extend(entry.checked)
        entry.key = key
        if not entry.ok:
            return
        try:
            compiled = compile_mapping(entry.bound, subs)
        except Exception as exc:  # a compiler gap must not take the runtime down
            entry.issues.append(_internal(entry.spec, "compile", exc))
            return
        compiled.digest = entry.digest
        entry.compiled = compiled
        self.recompiled.append(entry.name)

    def _link(self) -> None:
        self.funcs = {n: e.compiled.func for n, e in self.entries.items() if e.compiled}
        self.raws = {n: e.compiled.raw for n, e in self.entries.items() if e.compiled}
        for entry in self.entries.values():
            if entry.compiled is None:
                continue
            namespace = entry.compiled.namespace
            for global_name, sub in entry.compiled.calls.items():
                table = self.raws if global_name.startswith("_raw_") else self.funcs
                namespace[global_name] = table.get(sub) or unlinked(sub)

    # ------------------------------------------------------------------ use

    def names(self) -> list[str]:
        return sorted(self.entries)

    def function(self, name: str) -> Callable[..., Any]:
        """The validated function of mapping `name` (what `mapping(name)(...)` calls)."""
        try:
            return self.funcs[name]
        except KeyError:
            raise self.missing(name) from None

    def raw_function(self, name: str) -> Callable[..., Any]:
        try:
            return self.raws[name]
        except KeyError:
            raise self.missing(name) from None

    def get(self, name: str) -> CompiledMapping:
        """The compiled mapping in service.

        Raises:
            MappingNotFoundError: no such mapping file.
            MappingError: the mapping never loaded without errors.
        """
        entry = self.entries.get(name)
        if entry is None or entry.compiled is None:
            raise self.missing(name)
        return entry.compiled

    def missing(self, name: str) -> WorkbenchError:
        entry = self.entries.get(name)
        if entry is not None:
            first = entry.errors[0].text() if entry.errors else "it did not compile"
            return MappingError(
                f"mapping {name!r} has not loaded: {first}", file=entry.spec.file
                if entry.spec else str(entry.path), mapping=name,
            )
        known = ", ".join(self.names()) or "(none)"
        return MappingNotFoundError(
            f"No mapping {name!r} in {relative_name(self.folder, self.root)}/. "
            f"Mappings: {known}."
        )

    def issues(self, names: Iterable[str] | None = None) -> list[Issue]:
        wanted = set(names) if names is not None else None
        return [
            i for n, e in sorted(self.entries.items()) if wanted is None or n in wanted
            for i in e.issues
        ]

    def describe(self) -> list[dict[str, Any]]:
        return [self.entries[n].describe() for n in self.names()]

    def preview(self, name: str, text: str, config: ConfigSource | None = None) -> tuple[
        CompiledMapping | None, list[Issue]
    ]:
        """Check and compile unsaved text of mapping `name` (for a live preview); nothing in
        service changes."""
        path = self.folder / f"{name}.toml"
        spec, issues = parse_text(text, path, root=self.root)
        if spec is None:
            return None, issues
        bound, bind_issues = bind(spec, config)
        issues = [*issues, *bind_issues]
        subs = self._sub_infos()
        issues.extend(check_mapping(bound, subs))
        if any(i.level == "error" for i in issues):
            return None, issues
        compiled = compile_mapping(bound, subs)
        for global_name, sub in compiled.calls.items():
            table = self.raws if global_name.startswith("_raw_") else self.funcs
            compiled.namespace[global_name] = table.get(sub) or unlinked(sub)
        return compiled, issues

    def check_text(self, name: str, text: str, config: ConfigSource | None = None) -> tuple[
        Bound | None, list[Issue]
    ]:
        """Parse, resolve and check unsaved text of mapping `name` without compiling it
        (for an editor: every problem with its field, and a `Bound` to evaluate field by
        field); nothing in service changes.

        Returns:
            The resolved mapping (None when the text does not parse or resolving raised)
            and every problem found. The fields are checked only when the mapping's
            references all resolved.
        """
        path = self.folder / f"{name}.toml"
        spec, issues = parse_text(text, path, root=self.root)
        if spec is None:
            return None, issues
        try:
            bound, bind_issues = bind(spec, config)
        except Exception as exc:  # an import with side effects may raise anything
            return None, [*issues, _internal(spec, "resolve", exc)]
        issues = [*issues, *bind_issues]
        if any(i.level == "error" for i in issues):
            return bound, issues  # unknown types: a field-by-field check would only echo it
        try:
            issues.extend(check_mapping(bound, self._sub_infos()))
        except Exception as exc:  # a gap in the checker must not take the editor down
            issues.append(_internal(spec, "check", exc))
        return bound, issues

    def signature(self, name: str) -> str:
        compiled = self.get(name)
        sources = ", ".join(f"{n}: {qualified(t)}" for n, t in compiled.sources.items())
        return f"{name}({sources}) -> {qualified(compiled.target)}"


def _internal(spec: MappingSpec, step: str, exc: BaseException) -> Issue:
    return Issue(
        "error", f"cannot {step} the mapping: {type(exc).__name__}: {exc}", spec.file,
        spec.mapping_line, None, spec.name,
    )
