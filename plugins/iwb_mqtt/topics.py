"""MQTT topic names and topic filters: validation, matching, examples, shared subscriptions.

A topic name (what a message is published to) has levels separated by `/` and no wildcards.
A topic filter (what a subscription asks for) may use `+` for exactly one level and `#`, as
the last level, for any number of levels (zero included: `alerts/#` matches `alerts`).
Filters starting with a wildcard never match topics starting with `$` (`$SYS/...`), as the
MQTT specification requires (section 4.7.2).
"""

from __future__ import annotations

__all__ = [
    "EXAMPLE_LEVEL",
    "check_filter",
    "check_group",
    "check_topic",
    "example_topic",
    "matches",
    "shared_filter",
]

EXAMPLE_LEVEL = "example"
"""What `example_topic` puts where a filter has a wildcard."""

SHARE_PREFIX = "$share/"
MAX_TOPIC_BYTES = 65535


def check_topic(topic: str) -> str:
    """Return `topic` if it is a valid topic name to publish to; raise ValueError saying why
    it is not."""
    if not topic:
        raise ValueError("a topic name must not be empty")
    if "+" in topic or "#" in topic:
        raise ValueError(
            f"topic {topic!r} contains a wildcard (+ or #); a message is published to one "
            "concrete topic"
        )
    _check_text(topic)
    return topic


def check_filter(topic_filter: str) -> str:
    """Return `topic_filter` if it is a valid subscription filter; raise ValueError saying
    why it is not."""
    if not topic_filter:
        raise ValueError("a topic filter must not be empty")
    if topic_filter.startswith(SHARE_PREFIX):
        raise ValueError(
            f"topic filter {topic_filter!r} names a shared subscription; give the plain "
            "filter and set shared_group= instead"
        )
    _check_text(topic_filter)
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(
                f"topic filter {topic_filter!r}: '#' must be a whole level and the last one "
                "(e.g. 'alerts/#')"
            )
        if "+" in level and level != "+":
            raise ValueError(
                f"topic filter {topic_filter!r}: '+' must be a whole level "
                "(e.g. 'sensors/+/temp')"
            )
    return topic_filter


def check_group(group: str) -> str:
    """Return `group` if it is a valid shared-subscription group name."""
    if not group:
        raise ValueError("a shared subscription group name must not be empty")
    bad = [c for c in ("/", "+", "#") if c in group]
    if bad:
        raise ValueError(
            f"shared subscription group {group!r} must not contain {' or '.join(bad)}"
        )
    _check_text(group)
    return group


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ValueError(f"{text!r} contains a NUL character")
    if len(text.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise ValueError(f"{text[:40]!r}... is longer than {MAX_TOPIC_BYTES} bytes")


def matches(topic_filter: str, topic: str) -> bool:
    """Whether a message published to `topic` matches the subscription `topic_filter`."""
    if topic_filter.startswith(SHARE_PREFIX):
        parts = topic_filter.split("/", 2)
        topic_filter = parts[2] if len(parts) == 3 else ""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    want = topic_filter.split("/")
    have = topic.split("/")
    for index, level in enumerate(want):
        if level == "#":
            return True
        if index >= len(have):
            return False
        if level != "+" and level != have[index]:
            return False
    return len(want) == len(have)


def example_topic(topic_filter: str) -> str:
    """A topic the filter matches: each wildcard becomes `example`
    (`sensors/+/temp` → `sensors/example/temp`, `alerts/#` → `alerts/example`)."""
    return "/".join(EXAMPLE_LEVEL if level in ("+", "#") else level
                    for level in topic_filter.split("/"))


def shared_filter(topic_filter: str, group: str | None) -> str:
    """The filter to subscribe with: `$share/<group>/<filter>` for a shared subscription."""
    return f"{SHARE_PREFIX}{group}/{topic_filter}" if group else topic_filter
