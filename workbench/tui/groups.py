"""How the artifact tree groups artifacts: one table, kind → group.

A new trigger plugin is a one-line change here. A kind that is not listed goes to
"Event integration" (most plugins are event sources).
"""

from __future__ import annotations

AUTOMATION = "Automation"
AI = "AI integrations"
API = "Integration as API"
EVENTS = "Event integration"
FILES = "File integration"
OTHER = "Other"

GROUPS: dict[str, tuple[str, ...]] = {
    AUTOMATION: ("automation",),
    AI: ("mcp", "ai", "chat", "agent"),
    API: ("http", "graphql", "grpc", "websocket", "tcp", "websub"),
    EVENTS: (
        "kafka", "rabbitmq", "mqtt", "asb", "salesforce", "github", "solace", "cdc",
        "twilio", "mail", "pop3", "imap",
    ),
    FILES: ("files", "ftp", "sftp"),
}
"""Artifact groups in the order the tree shows them, with the kinds each one holds."""

GROUP_ORDER: tuple[str, ...] = (AUTOMATION, AI, API, EVENTS, FILES, OTHER)
"""Every top-level node of the tree, in order (Other holds the non-artifact parts)."""

OTHER_ENTRIES: tuple[str, ...] = (
    "Functions", "Types", "Data mappings", "Connections", "Configurations",
)
"""The sections under Other: project parts that are not artifacts."""

DEFAULT_GROUP = EVENTS
"""Where a kind that no group lists goes."""

_BY_KIND = {kind: group for group, kinds in GROUPS.items() for kind in kinds}


def group_of(kind: str) -> str:
    """The tree group of an artifact kind.

    Args:
        kind: the trigger kind, e.g. `http`.

    Returns:
        The group's title; `DEFAULT_GROUP` for a kind no group lists.
    """
    return _BY_KIND.get(kind, DEFAULT_GROUP)
