"""The live event stream: a table of handled events, newest at the bottom.

The table keeps a bounded window (the newest `window` rows). It follows new events by
default; any navigation by the user (cursor keys, paging, a click, scrolling up) pauses
following, and `follow()` resumes it. While paused, new events wait in a buffer of the
same bound and the border says how many arrived. Scrolling above the first row asks for
the previous page of history (`OlderRequested`); the screen loads it from the capture
store and hands it to `prepend`, which slides the window up (the newest rows then leave
the table, and following again reloads them: `TailRequested`).

The table is written for floods: rows are added in batches, every column has a fixed
width (the summary column takes what is left), and no cell is measured.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from workbench.tui.feed import StreamItem
from workbench.tui.filters import EventFilter

STATUS_STYLES = {"ok": "green", "error": "bold red", "rejected": "yellow"}

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("time", "  time", 14),
    ("artifact", "artifact", 12),
    ("kind", "kind", 8),
    ("summary", "summary", 30),
    ("status", "status", 8),
    ("duration", "duration", 9),
)
"""(key, label, width) of each column; `summary` grows to fill the table. The time
column starts with the mark of a marked row."""
COLUMN_KEYS = tuple(key for key, _label, _width in COLUMNS)

MARK = "●"


def status_text(status: str) -> Text:
    """A status, coloured."""
    return Text(status, style=STATUS_STYLES.get(status, ""))


def duration_text(ms: float) -> Text:
    """A duration for the table, right-aligned."""
    shown = f"{ms:.1f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"
    return Text(shown, justify="right")


class _Cell:
    """A cell whose text is made only when it is rendered: in a flood, most rows scroll
    out of the window without ever being on screen."""

    __slots__ = ("column", "item", "stream")

    def __init__(self, stream: EventStream, item: StreamItem, column: str) -> None:
        self.stream = stream
        self.item = item
        self.column = column

    def __rich__(self) -> Text:
        return self.stream.cell_text(self.item, self.column)


class EventStream(DataTable[Any]):
    """The event table of the main screen.

    Args:
        window: the most rows the table keeps.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "space", "toggle_mark", "Mark", id="toggle-mark",
            tooltip="Mark or unmark the event under the cursor (r replays the marked events)",
        ),
    ]

    DEFAULT_CSS = """
    EventStream {
        border: round $primary 40%;
        border-subtitle-align: right;
    }
    EventStream:focus {
        border: round $primary;
    }
    """

    following: reactive[bool] = reactive(True)
    """New events scroll into view and the cursor stays on the newest one."""

    class Highlighted(Message):
        """The cursor moved onto an event (or the table emptied: `item` is None)."""

        def __init__(self, stream: EventStream, item: StreamItem | None) -> None:
            super().__init__()
            self.stream = stream
            self.item = item

        @property
        def control(self) -> EventStream:
            return self.stream

    class OlderRequested(Message):
        """The user scrolled above the first row: load the page before `oldest`."""

        def __init__(self, stream: EventStream, oldest: StreamItem) -> None:
            super().__init__()
            self.stream = stream
            self.oldest = oldest

    class TailRequested(Message):
        """Following resumed after the window slid up: load the newest rows again."""

        def __init__(self, stream: EventStream) -> None:
            super().__init__()
            self.stream = stream

    class FollowChanged(Message):
        """Following was paused or resumed."""

        def __init__(self, stream: EventStream, following: bool) -> None:
            super().__init__()
            self.stream = stream
            self.following = following

    def __init__(
        self,
        window: int = 1000,
        *,
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - Textual's keyword
        classes: str | None = None,
    ) -> None:
        super().__init__(
            cursor_type="row", zebra_stripes=False, name=name, id=id, classes=classes,
        )
        self.window = window
        self.items: dict[str, StreamItem] = {}
        """The items in the table by id, in table order."""
        self.marked: set[str] = set()
        """Ids of the events marked with space."""
        self.filter: EventFilter | None = None
        self._waiting: deque[StreamItem] = deque(maxlen=window)
        self._waiting_overflowed = False
        self._new_while_paused = 0
        self._detached = False
        self._holding = False
        self._gap = False
        self.older_exhausted = False
        """The last page request found nothing older."""

    # ------------------------------------------------------------------ setup

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)
        self.border_title = "Events"
        self._show_follow_state()
        self._fit_summary()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_summary()

    def _fit_summary(self) -> None:
        column = self.columns.get(ColumnKey("summary"))
        if column is None:
            return
        fixed = sum(width for key, _label, width in COLUMNS if key != "summary")
        padding = 2 * self.cell_padding * len(COLUMNS)
        scrollbar = self.styles.scrollbar_size_vertical
        available = self.size.width - scrollbar
        column.width = max(8, available - fixed - padding)
        self._refresh_size()
        self.refresh()

    # ------------------------------------------------------------------ public API

    @property
    def selected(self) -> StreamItem | None:
        """The item under the cursor."""
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key
        except Exception:
            return None
        return self.items.get(str(key.value))

    @property
    def waiting(self) -> int:
        """Events that arrived while paused."""
        return self._new_while_paused

    @property
    def gap(self) -> bool:
        """Filtered live events may be missing from the table (they are in the store)."""
        return self._gap

    @property
    def detached(self) -> bool:
        """The newest rows left the table (the user paged up through history)."""
        return self._detached

    def marked_items(self) -> list[StreamItem]:
        """The marked events still in the table, in table order."""
        return [item for key, item in self.items.items() if key in self.marked]

    def add_live(self, items: Sequence[StreamItem], dropped: int = 0) -> None:
        """New events from the feed, oldest first.

        Args:
            items: the batch (already in the capture store or about to be).
            dropped: events the feed dropped before this batch (more arrived than the
                window holds): the table then holds only this batch's tail.
        """
        if self.filter is not None and not self.filter.empty:
            current = self.filter
            items = [
                item for item in items
                if current.matches(
                    artifact=item.artifact, kind=item.kind, status=item.status,
                    haystack=item.haystack() if current.text else "",
                )
            ]
            if dropped:
                dropped = 1  # some of the dropped ones may have matched
        if not items and not dropped:
            return
        filtered = self.filter is not None and not self.filter.empty
        if not self.following or self._detached or self._holding:
            self._new_while_paused += len(items)
            if dropped or len(self._waiting) + len(items) > self.window:
                self._waiting_overflowed = True
            self._waiting.extend(items)
            self._show_follow_state()
            return
        if dropped and not filtered:
            # the batch is the newest `window` events: exactly what the table must show
            self._rebuild(list(items)[-self.window:])
        else:
            # filtered: events that may have matched fell out of the feed before this
            # render; they are in the capture store, and `f` reloads the view from it
            self._gap = self._gap or bool(dropped)
            self._append(items)
        self._to_newest()

    def hold(self) -> None:
        """Buffer new events until the next `replace`: the screen is loading rows from
        the capture store, which already holds every event seen so far."""
        self._holding = True
        self._waiting.clear()
        self._waiting_overflowed = False
        self._new_while_paused = 0
        self._show_follow_state()

    def replace(self, items: Sequence[StreamItem], *, follow: bool = True) -> None:
        """Show exactly these items (oldest first; the newest `window` of them)."""
        # events dropped by the feed while loading may be in neither the rows loaded nor
        # the ones waiting
        self._gap = self._holding and self._waiting_overflowed
        self._holding = False
        self._waiting.clear()
        self._waiting_overflowed = False
        self._new_while_paused = 0
        self._detached = False
        self.older_exhausted = False
        self._rebuild(list(items)[-self.window:])
        if follow:
            self._set_following(True)
            self._to_newest()
        else:
            self._set_following(False)
            self.move_cursor(row=max(0, self.row_count - 1))
        self._show_follow_state()
        if not self.row_count:
            self.post_message(self.Highlighted(self, None))

    def prepend(self, older: Sequence[StreamItem]) -> None:
        """Put an older page above the first row (oldest first); the window slides up."""
        fresh = [item for item in older if item.id not in self.items]
        if not fresh:
            self.older_exhausted = True
            self.app.bell()
            return
        rows = [*fresh, *self.items.values()]
        if len(rows) > self.window:
            rows = rows[: self.window]
            self._detached = True
        self._set_following(False)
        self._rebuild(rows)
        self.move_cursor(row=len(fresh) - 1, scroll=True)
        self._show_follow_state()

    def follow(self) -> None:
        """Resume following: show what arrived while paused and jump to the newest (from
        the capture store when the table cannot hold it all in order)."""
        filtered = self.filter is not None and not self.filter.empty
        if self._detached or self._gap or (self._waiting_overflowed and filtered):
            self.post_message(self.TailRequested(self))
            return
        waiting = list(self._waiting)
        overflowed = self._waiting_overflowed
        self._waiting.clear()
        self._waiting_overflowed = False
        self._new_while_paused = 0
        self._set_following(True)
        if overflowed:
            self._rebuild(waiting)
        elif waiting:
            self._append(waiting)
        self._to_newest()
        self._show_follow_state()

    def pending_items(self) -> list[StreamItem]:
        """Events waiting while paused or detached (oldest first)."""
        return list(self._waiting)

    def pause(self) -> None:
        """Stop following (the user is looking at something)."""
        if self.following:
            self._set_following(False)
            self._show_follow_state()

    def item(self, key: str) -> StreamItem | None:
        """The item with this event id, if it is in the table."""
        return self.items.get(key)

    # ------------------------------------------------------------------ actions

    def action_toggle_mark(self) -> None:
        item = self.selected
        if item is None:
            return
        if item.id in self.marked:
            self.marked.discard(item.id)
        else:
            self.marked.add(item.id)
        self.update_cell(item.id, "time", _Cell(self, item, "time"))
        self._show_follow_state()

    def _upward(self, move: Callable[[], None]) -> None:
        """Moving up pauses following; at the first row it asks for older history."""
        self.pause()
        if self.row_count and self.cursor_row == 0:
            self._request_older()
        else:
            move()

    def action_cursor_up(self) -> None:
        self._upward(super().action_cursor_up)

    def action_cursor_down(self) -> None:
        self.pause()
        super().action_cursor_down()

    def action_page_up(self) -> None:
        self._upward(super().action_page_up)

    def action_page_down(self) -> None:
        self.pause()
        super().action_page_down()

    def action_scroll_top(self) -> None:
        self._upward(super().action_scroll_top)

    def action_scroll_bottom(self) -> None:
        self.pause()
        super().action_scroll_bottom()

    async def _on_click(self, event: events.Click) -> None:
        self.pause()
        await super()._on_click(event)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.pause()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.post_message(self.Highlighted(self, self.items.get(str(event.row_key.value))))

    # ------------------------------------------------------------------ internals

    def _request_older(self) -> None:
        oldest = next(iter(self.items.values()), None)
        if oldest is not None and not self.older_exhausted:
            self.post_message(self.OlderRequested(self, oldest))
        elif self.older_exhausted:
            self.app.bell()

    def _set_following(self, following: bool) -> None:
        if self.following != following:
            self.following = following
            self.post_message(self.FollowChanged(self, following))

    def _show_follow_state(self) -> None:
        if self._holding:
            state = "loading…"
        elif self.following and not self._detached:
            state = "following — f fills gaps from history" if self._gap else "following"
        elif self._new_while_paused:
            state = f"paused — f to follow, {self._new_while_paused} new"
        else:
            state = "paused — f to follow"
        marked = len(self.marked & self.items.keys())
        if marked:
            state = f"{marked} marked · {state}"
        self.border_subtitle = state

    def _to_newest(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)
        self._show_follow_state()

    def cell_text(self, item: StreamItem, column: str) -> Text:
        """The text of one cell (rendered only when the row is on screen)."""
        if column == "time":
            text = Text(f"{MARK} " if item.id in self.marked else "  ", style="bold magenta")
            text.append(item.time_text, style="dim")
            return text
        if column == "artifact":
            return Text(item.artifact)
        if column == "kind":
            return Text(item.kind, style="cyan")
        if column == "summary":
            return Text(item.summary, no_wrap=True, overflow="ellipsis")
        if column == "status":
            return status_text(item.status)
        return duration_text(item.duration_ms)

    def _append(self, items: Iterable[StreamItem]) -> None:
        fresh: list[StreamItem] = []
        for item in items:
            if item.id not in self.items:
                self.items[item.id] = item
                fresh.append(item)
        self._add_rows(fresh)
        excess = self.row_count - self.window
        if excess > 0:
            self._drop_oldest(excess)

    def _rebuild(self, items: Sequence[StreamItem]) -> None:
        self.clear()
        self.items = {}
        fresh: list[StreamItem] = []
        for item in items:
            if item.id not in self.items:
                self.items[item.id] = item
                fresh.append(item)
        self._add_rows(fresh)
        self.marked &= self.items.keys()

    def _add_rows(self, items: Sequence[StreamItem]) -> None:
        if not items:
            return
        was_empty = self.row_count == 0
        rows = [(item.id, [_Cell(self, item, key) for key in COLUMN_KEYS]) for item in items]
        if not _fast_add(self, rows):
            for key, cells in rows:
                self.add_row(*cells, key=key)
        if was_empty:
            self.post_message(self.Highlighted(self, self.selected))

    def _drop_oldest(self, count: int) -> None:
        keys: list[str] = []
        for key in self.items:
            if len(keys) == count:
                break
            keys.append(key)
        for key in keys:
            del self.items[key]
            self.marked.discard(key)
        if not _fast_trim(self, count):
            for key in keys:
                self.remove_row(key)
        self.older_exhausted = False

    def _refresh_size(self) -> None:
        width = sum(column.get_render_width(self) for column in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(width, self.row_count + header)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # Every column has a fixed width and every row is one line high, so DataTable's
        # measuring of each new cell (to size auto-width columns and rows) is wasted
        # work: at thousands of events per second it was most of the work of the UI.
        self._refresh_size()


_ADD_ATTRS = ("_row_locations", "_data", "_update_count", "_require_update_dimensions")


def _fast_add(table: DataTable[Any], rows: Sequence[tuple[str, list[Any]]]) -> bool:
    """Append rows with the bookkeeping of `DataTable.add_row` done once per batch.

    `add_row` re-validates the cursor and re-reads the column order for every row; for a
    batch of hundreds of rows per refresh that was the largest cost of the stream. Returns
    False (and does nothing) when this Textual's DataTable lacks the internals it relies on;
    the caller then falls back to `add_row`.
    """
    if not all(hasattr(table, attr) for attr in _ADD_ATTRS):
        return False
    from textual.widgets.data_table import Row

    columns = [column.key for column in table.ordered_columns]
    locations = table._row_locations
    data = table._data
    table_rows = table.rows
    index = len(table_rows)
    for key, cells in rows:
        row_key = RowKey(key)
        if row_key in table_rows:
            continue
        locations[row_key] = index
        data[row_key] = dict(zip(columns, cells, strict=True))
        table_rows[row_key] = Row(row_key, 1)
        index += 1
    table._update_count += 1
    table._require_update_dimensions = True
    table.cursor_coordinate = table.cursor_coordinate
    table.check_idle()
    table.refresh()
    return True


_TRIM_ATTRS = ("_row_locations", "_data", "_new_rows", "_updated_cells", "_update_count",
               "_clear_caches", "_require_update_dimensions")


def _fast_trim(table: DataTable[Any], count: int) -> bool:
    """Drop the first `count` rows in one pass over the row index.

    `DataTable.remove_row` rebuilds the whole row index for every row it removes, which
    makes trimming the head of a full window quadratic. This does the same bookkeeping once.
    Returns False (and does nothing) when this Textual's DataTable lacks the internals it
    relies on; the caller then falls back to `remove_row`.
    """
    if not all(hasattr(table, attr) for attr in _TRIM_ATTRS):
        return False
    from textual._two_way_dict import TwoWayDict

    locations = table._row_locations
    dropped = [locations.get_key(index) for index in range(count)]
    kept = {
        key: index - count
        for index in range(count, table.row_count)
        if (key := locations.get_key(index)) is not None
    }
    for key in dropped:
        if key is None:
            continue
        table.rows.pop(key, None)
        table._data.pop(key, None)
        table._new_rows.discard(key)
    gone = set(dropped)
    table._updated_cells = {cell for cell in table._updated_cells if cell.row_key not in gone}
    table._row_locations = TwoWayDict(kept)
    table._update_count += 1
    table._clear_caches()
    row, column = table.cursor_coordinate
    table.cursor_coordinate = Coordinate(max(0, row - count), column)
    table._require_update_dimensions = True
    table.check_idle()
    table.refresh()
    return True
