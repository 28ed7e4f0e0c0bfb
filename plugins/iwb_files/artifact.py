"""The `Directory` authoring class, its configuration and the after-process actions.

    inbox = files.Directory(path="inbox", pattern="*.csv", on_success=files.MoveTo("done"))

    @inbox.on_create
    async def import_orders(file: files.File) -> dict: ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workbench.errors import TriggerConfigError
from workbench.plugin import NOT_BOUND, Artifact, HandlerFunc, Policy

F = TypeVar("F", bound=HandlerFunc)

CREATED: Final = "created"
MODIFIED: Final = "modified"
DELETED: Final = "deleted"
Change = Literal["created", "modified", "deleted"]
"""The handler keys of a directory: what happened to the file."""
CHANGES: tuple[Change, ...] = (CREATED, MODIFIED, DELETED)

DEFAULT_IGNORE = (".*", "*~")
"""Names skipped unless `ignore` says otherwise: hidden files (editor swap files, partial
downloads such as `.name.part`, the workbench's own temporary files) and backups."""


class MoveTo(BaseModel):
    """Move the file into `folder` once handled (relative to the watched directory, or
    absolute; created if missing). Sub-folders of a recursive watch are kept; a file whose
    name is taken there gets a numbered suffix (`orders-1.csv`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["move"] = "move"
    folder: str

    def __init__(self, folder: str | Path | None = None, /, **data: Any) -> None:
        if folder is not None:
            data["folder"] = str(folder)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = "; ".join(str(err["msg"]) for err in exc.errors())
            raise TriggerConfigError(
                f"Invalid MoveTo({folder!r}): {problems}", title="Invalid artifact configuration"
            ) from None

    @field_validator("folder")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip() or Path(value) == Path("."):
            raise ValueError(
                f"MoveTo folder {value!r} is the watched directory itself; "
                "name a sub-folder such as 'processed' or another directory"
            )
        return value


class Delete(BaseModel):
    """Delete the file once handled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["delete"] = "delete"


Action = MoveTo | Delete
"""What to do with a file after its handler ran."""


class DirectoryConfig(BaseModel):
    """Configuration of a `Directory`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    """The watched directory; a relative path is read from the project root."""
    pattern: str = "*"
    """Glob matched (fnmatch) on the path relative to the directory, or on the file name."""
    recursive: bool = False
    """Also watch sub-folders."""
    stable_for: float = Field(default=0.5, ge=0)
    """Seconds size and mtime must stay unchanged before a file is handed over, so a file
    still being written or copied is never read half-way."""
    poll_interval: float = Field(default=0.1, gt=0)
    """Seconds between checks while waiting for a file to be stable; also the polling
    period with `force_polling`."""
    force_polling: bool = False
    """Poll instead of using OS notifications (network shares, some containers)."""
    on_success: Action | None = Field(default=None, discriminator="action")
    """After a successful handler: `MoveTo(folder)`, `Delete()` or None (leave it)."""
    on_error: Action | None = Field(default=None, discriminator="action")
    """After a failed or rejected event: `MoveTo(folder)`, `Delete()` or None (leave it)."""
    process_existing: bool = True
    """Hand over files present at start (not yet handled in this version) as created."""
    max_size: int = Field(default=10 * 1024 * 1024, ge=0)
    """Largest file, in bytes, whose content is put in the event; a larger one arrives
    with empty data and `transport["truncated"] = True` (`File.read()` reads it)."""
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    """Globs on the file name that are never handed over."""

    @field_validator("pattern")
    @classmethod
    def _pattern_set(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("pattern is empty; use '*' for every file or e.g. '*.csv'")
        return value


class Directory(Artifact[DirectoryConfig]):
    """A local directory watched for files.

    A file is handed to the handler once it is complete (stable for `stable_for` seconds),
    then moved, deleted or left according to `on_success`/`on_error`. A file version that
    was handled is never handed over again, even after a restart, unless it changes; if
    the move or delete fails, that version is put in quarantine (a warning is logged)
    instead of being retried in a loop.

    Events: kind `files`, type `iwb.files.created|modified|deleted`, payload = the file's
    bytes. The default policy allows 300 s per file: imports of large files are batch work.
    """

    kind: ClassVar[str] = "files"
    config_model: ClassVar[type[BaseModel]] = DirectoryConfig
    default_policy: ClassVar[Policy] = Policy(timeout=300.0)

    def __init__(
        self,
        *,
        path: str | Path,
        pattern: str = "*",
        recursive: bool = False,
        stable_for: float = 0.5,
        poll_interval: float = 0.1,
        force_polling: bool = False,
        on_success: Action | None = None,
        on_error: Action | None = None,
        process_existing: bool = True,
        max_size: int = 10 * 1024 * 1024,
        ignore: tuple[str, ...] | list[str] = DEFAULT_IGNORE,
        name: str | None = None,
        policy: Policy | None = None,
        timeout: float | None = NOT_BOUND,
        retries: int | None = None,
        concurrency: int | None = None,
    ) -> None:
        """Declare a watched directory.

        Args:
            path: the directory; relative to the project root unless absolute. Created
                when the listener starts if it is missing.
            pattern: glob on the relative path or the name, e.g. `"*.csv"`.
            recursive: watch sub-folders too.
            stable_for: seconds a file must stay unchanged before it is handed over.
            poll_interval: seconds between stability checks (and polls, when forced).
            force_polling: poll the directory instead of using OS notifications.
            on_success: `MoveTo(folder)`, `Delete()` or None after a successful handler.
            on_error: the same after a failed one.
            process_existing: hand over files already there at start.
            max_size: largest file whose bytes are put in the event.
            ignore: globs on file names that are never handed over.
            name: artifact name; the loader uses the variable name when omitted.
            policy: a complete `Policy`; `timeout`, `retries`, `concurrency` override parts.
            timeout: seconds a handler may take per file.
            retries: how many times a failed handler is retried before `on_error`.
            concurrency: how many files are handled at once.

        Raises:
            TriggerConfigError: a value does not validate.
        """
        super().__init__(
            name=name,
            policy=policy,
            timeout=timeout,
            retries=retries,
            concurrency=concurrency,
            path=path,
            pattern=pattern,
            recursive=recursive,
            stable_for=stable_for,
            poll_interval=poll_interval,
            force_polling=force_polling,
            on_success=on_success,
            on_error=on_error,
            process_existing=process_existing,
            max_size=max_size,
            ignore=tuple(ignore),
        )

    def on_create(self, func: F) -> F:
        """Handle files that appear (decorator)."""
        self.add_handler(CREATED, func)
        return func

    def on_modify(self, func: F) -> F:
        """Handle files whose content changes (decorator)."""
        self.add_handler(MODIFIED, func)
        return func

    def on_delete(self, func: F) -> F:
        """Handle files that disappear (decorator); the event has no data."""
        self.add_handler(DELETED, func)
        return func

    def address(self) -> str:
        return str(self.config.path)
