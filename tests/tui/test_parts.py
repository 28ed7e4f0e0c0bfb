"""The TUI's plain parts: the filter syntax, keymap files, the live feed and its rate meters,
the group table, payload views and handler locations."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from workbench.events import Event, Outcome
from workbench.tui.feed import RATE_SECONDS, LiveFeed, RateMeter, StreamItem
from workbench.tui.filters import EventFilter, FilterSyntaxError
from workbench.tui.groups import AI, API, AUTOMATION, EVENTS, FILES, group_of
from workbench.tui.keymap import load_keymap, read_keymap_file, user_keymap_path
from workbench.tui.source import handler_location
from workbench.tui.widgets.event_detail import hex_dump, payload_view


def text_of(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=100, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


# ---------------------------------------------------------------------------- filters


def test_filter_parses_fields_and_free_text() -> None:
    parsed = EventFilter.parse('artifact:orders s:ERROR kind:http "out of stock" now')
    assert parsed == EventFilter(artifact="orders", kind="http", status="error",
                                 text="out of stock now")
    assert parsed.query_kwargs() == {"artifact": "orders", "kind": "http", "status": "error",
                                     "text": "out of stock now"}
    assert parsed.describe() == "artifact:orders kind:http status:error 'out of stock now'"
    assert EventFilter.parse("").empty
    assert EventFilter.parse("a:x").artifact == "x"
    assert EventFilter.parse("url:http://x").text == "url:http://x"  # not a field


@pytest.mark.parametrize("expression, message", [
    ("status:maybe", "Unknown status 'maybe'"),
    ('"unclosed', "Close the quotes"),
    ("artifact:a artifact:b", "gives artifact twice"),
])
def test_bad_filters_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(FilterSyntaxError, match=message):
        EventFilter.parse(expression)


def test_filter_matches_live_events() -> None:
    wanted = EventFilter.parse("artifact:orders status:error Stock")
    assert wanted.matches(artifact="orders", kind="http", status="error",
                          haystack="… out of stock …")
    assert not wanted.matches(artifact="orders", kind="http", status="ok",
                              haystack="out of stock")
    assert not wanted.matches(artifact="billing", kind="http", status="error",
                              haystack="out of stock")
    assert not wanted.matches(artifact="orders", kind="http", status="error", haystack="fine")


# ---------------------------------------------------------------------------- keymap


def test_keymap_files_merge_and_report_problems(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text('[keymap]\nfilter = "ctrl+f"\nfollow = "F , end"\n', "utf-8")
    root = tmp_path / "project"
    (root / ".iwb").mkdir(parents=True)
    (root / ".iwb" / "keymap.toml").write_text(
        '[keymap]\nfilter = "f3"\nquit = 3\nbogus = "x"\n', "utf-8"
    )
    keymap = load_keymap(root, ["filter", "follow", "quit"], user_path=user)
    assert keymap.bindings == {"filter": "f3", "follow": "F,end"}
    assert keymap.sources == [user, root / ".iwb" / "keymap.toml"]
    assert any("quit = 3 is not a key" in p for p in keymap.problems)
    assert any("no binding has the id 'bogus'" in p for p in keymap.problems)


def test_a_broken_keymap_file_is_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text("[keymap\nfilter = ", "utf-8")
    keymap = read_keymap_file(path)
    assert keymap.bindings == {} and "cannot read the keymap" in keymap.problems[0]
    path.write_text('filter = "x"\n', "utf-8")
    assert "no [keymap] table" in read_keymap_file(path).problems[0]
    assert read_keymap_file(tmp_path / "missing.toml").bindings == {}


def test_user_keymap_path_follows_xdg() -> None:
    assert user_keymap_path({"XDG_CONFIG_HOME": "/cfg"}) == Path("/cfg/iwb/keymap.toml")
    assert user_keymap_path({}).parts[-3:] == (".config", "iwb", "keymap.toml")


# ---------------------------------------------------------------------------- feed


def test_rate_meter_counts_per_second_and_forgets_old_seconds() -> None:
    meter = RateMeter()
    for second in range(100, 106):
        meter.add(second + 0.5, count=second - 99)  # 1, 2, ... 6 events
    series = meter.series(105.9)
    assert len(series) == RATE_SECONDS
    assert series[-6:] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert meter.rate(105.9) == (1 + 2 + 3 + 4 + 5) / 5
    assert meter.series(105.9 + RATE_SECONDS) == [0.0] * RATE_SECONDS
    meter.add(100 + RATE_SECONDS + 0.1)  # reuses the slot of second 100
    assert meter.series(100 + RATE_SECONDS + 0.2)[-1] == 1.0


def test_live_feed_is_bounded_and_counts_what_it_dropped() -> None:
    now = [1000.0]
    feed = LiveFeed(window=3, clock=lambda: now[0])
    events = [Event(artifact="a", kind="k", type="t", source="s", data=str(i).encode())
              for i in range(5)]
    for event in events:
        feed.add(event, Outcome(event.id, status="error" if event.data == b"4" else "ok"))
    assert feed.pending == 3
    items, dropped = feed.drain()
    assert [i.id for i in items] == [e.id for e in events[2:]]
    assert dropped == 2
    assert feed.total == 5 and feed.errors == 1
    assert feed.drain() == ([], 0)
    now[0] = 1001.5
    assert feed.rate("a") == 1.0 and feed.rate() == 1.0 and feed.rate("nope") == 0.0


def test_stream_item_from_a_live_event() -> None:
    event = Event(artifact="orders", kind="http", type="iwb.http.request", source="s",
                  subject="/orders/", data=b'{"sku": "TEA"}', transport={"h": "x-trace"})
    outcome = Outcome(event.id, status="ok", duration_ms=1.5)
    item = StreamItem.live(event, outcome, 0.0)
    assert item.summary == '/orders/ {"sku": "TEA"}'
    assert item.event is event and item.outcome is outcome and item.replay_of is None
    assert "x-trace" in item.haystack() and "TEA" in item.haystack()


# ---------------------------------------------------------------------------- groups, views


def test_every_kind_has_a_group() -> None:
    assert group_of("automation") == AUTOMATION
    assert group_of("mcp") == AI
    assert group_of("http") == API and group_of("websub") == API
    assert group_of("kafka") == EVENTS and group_of("imap") == EVENTS
    assert group_of("sftp") == FILES
    assert group_of("something-new") == EVENTS


def test_payload_views() -> None:
    assert '"sku": "TEA"' in text_of(payload_view(b'{"sku":"TEA"}', "application/json"))
    assert "plain words" in text_of(payload_view(b"plain words", "text/plain"))
    binary = bytes(range(40))
    dump = hex_dump(binary)
    assert dump.splitlines()[0].startswith("00000000  00 01 02 03")
    assert dump.splitlines()[2].startswith("00000020  20 21")
    assert "|" in text_of(payload_view(binary, None))
    assert "(empty)" in text_of(payload_view(b"", None))
    assert "… 10 more bytes" in hex_dump(bytes(30), limit=20)


def decorated(func: Callable[[], None]) -> Callable[[], None]:
    return func


@decorated
@decorated
def handler() -> None:
    pass


def test_handler_location_is_the_def_line() -> None:
    location = handler_location(handler)
    assert location is not None
    file, line = location
    assert file == __file__
    assert Path(file).read_text("utf-8").splitlines()[line - 1] == "def handler() -> None:"
    assert handler_location(len) is None


def test_iwb_open_refuses_a_missing_project(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    result = CliRunner().invoke(main, ["open", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_the_log_goes_to_a_file_only(tmp_path: Path) -> None:
    import json
    import logging

    from workbench.tui import route_logging

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        handler = route_logging(tmp_path / ".iwb" / "iwb.log")
        assert root.handlers == [handler]
        logging.getLogger("iwb.runtime").warning("listener down", extra={"fields": {"a": 1}})
        handler.close()
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    line = json.loads((tmp_path / ".iwb" / "iwb.log").read_text("utf-8").splitlines()[-1])
    assert line["msg"] == "listener down" and line["level"] == "warning" and line["a"] == 1
