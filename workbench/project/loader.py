"""Discovery and import of a project's Python modules, and the artifacts they declare.

Project modules are imported under one package, `project`, whose path is the project root,
so they import each other as `project.<folder>.<module>`:

    from project.types.orders import Order
    from project.functions.pricing import total

(A top-level `types` package would shadow the standard library's, hence the prefix.)

Each module is executed as a fresh module object; it replaces the running one only if the
import succeeded. A module that fails to import (syntax error, exception at import time,
missing configurable) keeps its last good version in service and is reported with the
file:line of the error.

This module owns no listener and imports no plugin: an artifact's kind is checked against
the installed entry points only by name.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import traceback
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config import Declared
from workbench.errors import (
    ModuleImportError,
    TriggerConfigError,
    WorkbenchError,
)
from workbench.plugin import Artifact, installed_plugins
from workbench.project.config import ConfigResolver
from workbench.project.settings import ProjectSettings

PACKAGE = "project"
"""The package name project modules are imported under."""

PY_FOLDERS = ("artifacts", "functions", "types", "mappings")
"""Folders whose Python modules are imported, in this order."""


@dataclass(slots=True)
class LoadedModule:
    """One imported project module."""

    name: str
    """Dotted name, e.g. `project.artifacts.orders`."""
    path: Path
    folder: str
    """Which project folder it lives in (`artifacts`, `functions`, ...)."""
    module: types.ModuleType
    code_version: str
    """Short hash of the module's source."""
    artifacts: list[Artifact[Any]] = field(default_factory=list)
    declared: list[Declared] = field(default_factory=list)


@dataclass(slots=True)
class LoadResult:
    """What one load or reload produced."""

    modules: dict[str, LoadedModule] = field(default_factory=dict)
    """Modules imported successfully in this pass, by dotted name."""
    errors: list[WorkbenchError] = field(default_factory=list)
    """Import, configuration and artifact errors of this pass."""
    failed_modules: dict[str, WorkbenchError] = field(default_factory=dict)
    """Dotted name → the error that kept it from loading."""


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles a project module from its source on every import.

    The standard loader trusts `__pycache__` when the source's mtime (in whole seconds) and
    size match; a save of the same size within the same second as the last import would
    then run the old bytecode. Project modules are small: compiling them costs less than
    a millisecond, and a reload must always run what is on disk.
    """

    def get_code(self, fullname: str) -> types.CodeType:
        source = self.get_data(self.path)
        return compile(source, self.path, "exec", dont_inherit=True)


class _FolderLoader(importlib.abc.Loader):
    """A project folder without `__init__.py` is a package with nothing in it."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class _ProjectFinder(importlib.abc.MetaPathFinder):
    """Finds `project.<folder>.<module>` under the current project root, with loaders
    that never use cached bytecode."""

    root: Path | None = None

    def find_spec(
        self, fullname: str, path: Any = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if self.root is None or not fullname.startswith(PACKAGE + "."):
            return None
        base = self.root.joinpath(*fullname.split(".")[1:])
        init = base / "__init__.py"
        if init.is_file():
            return importlib.util.spec_from_file_location(
                fullname, init, loader=_SourceLoader(fullname, str(init)),
                submodule_search_locations=[str(base)],
            )
        source = base.with_suffix(".py")
        if source.is_file():
            return importlib.util.spec_from_file_location(
                fullname, source, loader=_SourceLoader(fullname, str(source))
            )
        if base.is_dir():
            spec = importlib.machinery.ModuleSpec(fullname, _FolderLoader(), is_package=True)
            spec.submodule_search_locations = [str(base)]
            return spec
        return None


_FINDER = _ProjectFinder()


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def module_name_for(root: Path, path: Path) -> str:
    rel = path.resolve().relative_to(root.resolve()).with_suffix("")
    return ".".join((PACKAGE, *rel.parts))


class ProjectLoader:
    """Imports a project's modules and finds its artifacts.

    Args:
        root: the project directory.
        settings: the project's iwb.toml settings.
    """

    def __init__(self, root: Path, settings: ProjectSettings) -> None:
        self.root = root.resolve()
        self.settings = settings
        self.modules: dict[str, LoadedModule] = {}
        """The modules in service (last good versions), by dotted name."""
        self._install_package()

    # ------------------------------------------------------------------ discovery

    def _install_package(self) -> None:
        _FINDER.root = self.root
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)
        pkg = sys.modules.get(PACKAGE)
        if pkg is not None and list(getattr(pkg, "__path__", [])) == [str(self.root)]:
            return
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        pkg = types.ModuleType(PACKAGE, f"The iwb project at {self.root}")
        pkg.__path__ = [str(self.root)]
        pkg.__file__ = None
        sys.modules[PACKAGE] = pkg
        importlib.invalidate_caches()

    def python_files(self, folder: str) -> list[Path]:
        base = self.settings.folder(folder)
        if not base.is_dir():
            return []
        return sorted(
            p for p in base.rglob("*.py")
            if "__pycache__" not in p.parts and not any(part.startswith(".") for part in p.parts)
        )

    def all_python_files(self) -> list[tuple[str, Path]]:
        return [(folder, path) for folder in PY_FOLDERS for path in self.python_files(folder)]

    def folder_of(self, path: Path) -> str | None:
        resolved = path.resolve()
        for folder in PY_FOLDERS:
            base = self.settings.folder(folder).resolve()
            if resolved.is_relative_to(base):
                return folder
        return None

    # ------------------------------------------------------------------ importing

    def load(
        self,
        resolver: ConfigResolver,
        paths: Iterable[tuple[str, Path]] | None = None,
        *,
        fresh_all: bool = True,
        kinds: Iterable[str] | None = None,
    ) -> LoadResult:
        """Import modules (all of the project's by default) as fresh module objects.

        With `fresh_all`, every project module is dropped from `sys.modules` first so that
        changes to shared modules (types, functions) reach every importer; a module that
        fails keeps its previous version in `self.modules` (and in `sys.modules`).
        """
        targets = list(paths) if paths is not None else self.all_python_files()
        previous = {
            name: mod for name, mod in sys.modules.items() if name.startswith(PACKAGE + ".")
        }
        if fresh_all:
            for name in previous:
                del sys.modules[name]
        else:
            for _folder, path in targets:
                sys.modules.pop(module_name_for(self.root, path), None)
        importlib.invalidate_caches()

        result = LoadResult()
        plugin_kinds = set(kinds) if kinds is not None else set(installed_plugins())
        with resolver.active():
            for folder, path in targets:
                name = module_name_for(self.root, path)
                errors_before = len(resolver.errors)
                declared_before = len(resolver.declared)
                try:
                    if name in sys.modules and not fresh_all:
                        del sys.modules[name]
                    module = importlib.import_module(name)
                except (Exception, SystemExit) as exc:  # user code may raise anything
                    err = self._import_error(name, path, exc)
                    result.errors.append(err)
                    result.failed_modules[name] = err
                    sys.modules.pop(name, None)
                    continue
                config_errors = resolver.errors[errors_before:]
                if config_errors:
                    # A configuration problem in this module: its values are not usable.
                    result.errors.extend(config_errors)
                    result.failed_modules[name] = config_errors[0]
                    sys.modules.pop(name, None)
                    continue
                loaded = LoadedModule(
                    name=name, path=path, folder=folder, module=module,
                    code_version=source_hash(path),
                    declared=list(resolver.declared[declared_before:]),
                )
                if folder == "artifacts":
                    loaded.artifacts, art_errors = self._artifacts_of(module, path, plugin_kinds)
                    if art_errors:
                        result.errors.extend(art_errors)
                        result.failed_modules[name] = art_errors[0]
                        sys.modules.pop(name, None)
                        continue
                result.modules[name] = loaded
        # Failed modules keep serving their last good version.
        for name in result.failed_modules:
            if name in self.modules:
                sys.modules[name] = self.modules[name].module
            elif name in previous:
                sys.modules[name] = previous[name]
        # Modules the pass dropped but did not re-import stay as they were (a partial pass).
        for name, mod in previous.items():
            sys.modules.setdefault(name, mod)
        self.modules.update(result.modules)
        # Forget modules whose file is gone.
        for name in [n for n, m in self.modules.items() if not m.path.exists()]:
            del self.modules[name]
            sys.modules.pop(name, None)
        return result

    def _import_error(self, name: str, path: Path, exc: BaseException) -> ModuleImportError:
        tb_text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        file, line = str(path), None
        if isinstance(exc, SyntaxError) and exc.filename:
            file, line = exc.filename, exc.lineno
        else:
            for frame in reversed(traceback.extract_tb(exc.__traceback__)):
                if frame.filename.startswith(str(self.root)):
                    file, line = frame.filename, frame.lineno
                    break
        rel = _rel(self.root, file)
        if Path(file).resolve() != path.resolve():
            rel = f"{_rel(self.root, path)}: while importing {rel}"
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith("iwb_"):
            kind = (exc.name or "").removeprefix("iwb_").split(".")[0]
            kinds = ", ".join(sorted(installed_plugins())) or "(none)"
            message = (
                f"{rel}:{line}: imports {exc.name!r}, but no installed plugin provides the "
                f"artifact kind {kind!r}. Installed kinds: {kinds}. "
                f"Install the plugin that provides it (e.g. `pip install iwb[{kind}]`)."
            )
        elif isinstance(exc, WorkbenchError):
            message = f"{rel}:{line}: {exc.message}"
        elif isinstance(exc, SyntaxError):
            message = f"{rel}:{line}: syntax error: {exc.msg}"
        else:
            message = f"{rel}:{line}: {type(exc).__name__}: {exc}"
        return ModuleImportError(message, file=rel, line=line, traceback=tb_text, module=name)

    def _artifacts_of(
        self, module: types.ModuleType, path: Path, plugin_kinds: set[str]
    ) -> tuple[list[Artifact[Any]], list[WorkbenchError]]:
        found: list[Artifact[Any]] = []
        errors: list[WorkbenchError] = []
        seen: set[int] = set()
        for var, value in vars(module).items():
            if not isinstance(value, Artifact) or id(value) in seen:
                continue
            if Path(value.declared_at[0]).resolve() != path.resolve():
                continue  # imported from another module; declared there
            seen.add(id(value))
            if value.name is None:
                value.name = var
            if value.kind not in plugin_kinds:
                rel = _rel(self.root, value.declared_at[0])
                err = TriggerConfigError(
                    f"{rel}:{value.declared_at[1]}: artifact {value.name!r} has kind "
                    f"{value.kind!r}, but no installed plugin provides it. Installed kinds: "
                    f"{', '.join(sorted(plugin_kinds)) or '(none)'}.",
                    title="Unknown artifact kind",
                )
                errors.append(err)
                continue
            found.append(value)
        return found, errors

    # ------------------------------------------------------------------ views

    def artifacts(self) -> dict[str, tuple[Artifact[Any], LoadedModule]]:
        """Every artifact in service, by name."""
        out: dict[str, tuple[Artifact[Any], LoadedModule]] = {}
        for loaded in self.modules.values():
            for art in loaded.artifacts:
                assert art.name is not None
                out[art.name] = (art, loaded)
        return out

    def duplicate_names(self) -> list[WorkbenchError]:
        where: dict[str, list[str]] = {}
        for loaded in self.modules.values():
            for art in loaded.artifacts:
                where.setdefault(str(art.name), []).append(
                    f"{_rel(self.root, art.declared_at[0])}:{art.declared_at[1]}"
                )
        return [
            TriggerConfigError(
                f"Artifact name {name!r} is declared more than once ({', '.join(places)}); "
                "give one of them another variable name or `name=`.",
                title="Duplicate artifact",
            )
            for name, places in where.items()
            if len(places) > 1
        ]

    def declared(self) -> list[Declared]:
        return [d for m in self.modules.values() for d in m.declared]

    def inventory(self) -> dict[str, list[dict[str, Any]]]:
        """The project's non-artifact parts, for lists: functions, types, mappings, events."""
        functions: list[dict[str, Any]] = []
        type_list: list[dict[str, Any]] = []
        for loaded in self.modules.values():
            for attr, value in vars(loaded.module).items():
                if attr.startswith("_") or getattr(value, "__module__", None) != loaded.name:
                    continue
                entry = {"name": attr, "module": loaded.name, "file": _rel(self.root, loaded.path)}
                if loaded.folder == "functions" and callable(value) and not isinstance(value, type):
                    functions.append(entry)
                elif loaded.folder == "types" and isinstance(value, type):
                    type_list.append(entry)
        mappings = [
            {"name": p.stem, "file": _rel(self.root, p)}
            for p in sorted(self.settings.folder("mappings").glob("*"))
            if p.is_file() and p.suffix in (".toml", ".py") and not p.name.startswith("_")
        ] if self.settings.folder("mappings").is_dir() else []
        events = [
            {"name": p.stem, "file": _rel(self.root, p)}
            for p in sorted(self.settings.folder("events").rglob("*.json"))
        ] if self.settings.folder("events").is_dir() else []
        return {"functions": functions, "types": type_list, "mappings": mappings, "events": events}


def _rel(root: Path, file: str | Path) -> str:
    try:
        return str(Path(file).resolve().relative_to(root))
    except ValueError:
        return str(file)


def describe_errors(errors: Iterable[WorkbenchError]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for err in errors:
        if hasattr(err, "to_dict"):
            out.append(err.to_dict())
        else:
            out.append({"type": type(err).__name__, "message": err.message})
    return out


def plugin_settings(settings: ProjectSettings, kind: str) -> Mapping[str, Any]:
    """The `[plugins.<kind>]` table of iwb.toml, passed to that plugin's triggers."""
    return dict(settings.plugins.get(kind, {}))
