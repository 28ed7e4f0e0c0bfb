"""User keymaps: remap any key binding of `iwb open` by its id.

Every binding of the workbench has a kebab-case id (the help screen, `?`, lists them with
their keys). A keymap file maps ids to keys, in TOML:

    # ~/.config/iwb/keymap.toml (all projects) or <project>/.iwb/keymap.toml (one project)
    [keymap]
    filter = "ctrl+f"              # one key
    follow = "f,end"               # several keys, comma-separated
    start-artifact = "ctrl+r"
    quit = "ctrl+q"

Keys use Textual's names: letters (`a`, `A` for shift+a), `ctrl+x`, `shift+tab`, `f1`,
`escape`, `enter`, `space`, `question_mark`, `slash`, ... (the single characters `?`, `/`
work too). Both files are read; the project's file wins for an id that both set, and
`$XDG_CONFIG_HOME` replaces `~/.config` when it is set. A file that cannot be read, a value
that is not a string, or an id that no binding has is reported (as a notification) and
skipped; the rest of the file still applies.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_KEYMAP = Path(".iwb") / "keymap.toml"
"""The per-project keymap, relative to the project root."""


def user_keymap_path(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/iwb/keymap.toml`, or `~/.config/iwb/keymap.toml`."""
    environ = os.environ if env is None else env
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "iwb" / "keymap.toml"


@dataclass(slots=True)
class Keymap:
    """A keymap read from files: what applies, and what was wrong."""

    bindings: dict[str, str] = field(default_factory=dict)
    """Binding id → key(s), ready for `App.set_keymap`."""
    sources: list[Path] = field(default_factory=list)
    """The files that were read."""
    problems: list[str] = field(default_factory=list)
    """One sentence per skipped file or entry."""


def read_keymap_file(path: Path, known_ids: Iterable[str] | None = None) -> Keymap:
    """Read one keymap file (a missing file is an empty keymap).

    Args:
        path: the TOML file.
        known_ids: every binding id there is; entries for other ids are reported and
            skipped. None accepts any id.
    """
    result = Keymap()
    if not path.is_file():
        return result
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        result.problems.append(f"{path}: cannot read the keymap ({exc}); it is ignored.")
        return result
    result.sources.append(path)
    table = data.get("keymap")
    if table is None:
        result.problems.append(
            f"{path}: no [keymap] table; write bindings as `[keymap]` then `id = \"key\"`."
        )
        return result
    if not isinstance(table, dict):
        result.problems.append(f"{path}: `keymap` must be a table, like `[keymap]`.")
        return result
    known = set(known_ids) if known_ids is not None else None
    for binding_id, keys in table.items():
        if not isinstance(keys, str) or not keys.strip():
            result.problems.append(
                f"{path}: [keymap] {binding_id} = {keys!r} is not a key; write a string "
                'such as "ctrl+f".'
            )
            continue
        if known is not None and binding_id not in known:
            result.problems.append(
                f"{path}: no binding has the id {binding_id!r}; known ids: "
                f"{', '.join(sorted(known))}."
            )
            continue
        result.bindings[binding_id] = ",".join(k.strip() for k in keys.split(","))
    return result


def load_keymap(
    project_root: Path | None,
    known_ids: Iterable[str] | None = None,
    *,
    user_path: Path | None = None,
) -> Keymap:
    """The user's keymap overlaid by the project's.

    Args:
        project_root: the project directory (its `.iwb/keymap.toml` is read), or None.
        known_ids: every binding id there is (see `read_keymap_file`).
        user_path: the user-wide file (default: `user_keymap_path()`).
    """
    ids = list(known_ids) if known_ids is not None else None
    merged = Keymap()
    paths = [user_path if user_path is not None else user_keymap_path()]
    if project_root is not None:
        paths.append(project_root / PROJECT_KEYMAP)
    for path in paths:
        part = read_keymap_file(path, ids)
        merged.bindings.update(part.bindings)
        merged.sources.extend(part.sources)
        merged.problems.extend(part.problems)
    return merged
