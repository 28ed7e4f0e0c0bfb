"""The data mapper's auto-map proposals: one line per target field that a source field
matches by name and type, to accept or reject one by one.

    lines ← { each = "src.items", fields = {...} }   name match: src.items, each element…
    total ← src.total                                  name match: src.total (float)

`y` or Enter accepts the highlighted proposal, `n` rejects it, `A` accepts every one left,
Escape closes the list (what was not accepted is dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import OptionList

from workbench.tui.mapper_session import brief

if TYPE_CHECKING:
    from workbench.mapper.schema import Proposal


def proposal_label(proposal: Proposal) -> Text:
    text = Text()
    text.append(proposal.path, style="bold")
    text.append(" ← ", style="dim")
    text.append(brief(proposal.rule, 60), style="green")
    text.append(f"   {proposal.reason}", style="dim")
    return text


class ProposalList(OptionList):
    """Auto-map proposals, each accepted or rejected with one key."""

    DEFAULT_CSS = """
    ProposalList {
        height: auto;
        max-height: 12;
        border: round $accent;
        border-title-color: $text;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "accept", "Accept", id="mapper-accept-proposal",
                tooltip="Map the field as proposed (Enter does too)"),
        Binding("n", "reject", "Reject", id="mapper-reject-proposal",
                tooltip="Drop this proposal"),
        Binding("A", "accept_all", "Accept all", id="mapper-accept-all",
                tooltip="Map every field left in the list as proposed (one undo step)"),
        Binding("escape", "close", "Close", id="mapper-close-proposals",
                tooltip="Close the proposals; those not accepted are dropped"),
    ]

    class Accepted(Message):
        """Proposals to apply (one, or all that were left)."""

        def __init__(self, proposals: list[Proposal]) -> None:
            super().__init__()
            self.proposals = proposals

    class Closed(Message):
        """The list was closed or emptied."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.border_title = "Auto-map — y accept · n reject · A accept all · Esc close"
        self.proposals: list[Proposal] = []

    def show(self, proposals: Sequence[Proposal]) -> None:
        """List `proposals`, the first highlighted."""
        self.proposals = list(proposals)
        self.set_options([proposal_label(p) for p in self.proposals])
        if self.proposals:
            self.highlighted = 0

    def _take(self, index: int) -> Proposal:
        proposal = self.proposals.pop(index)
        self.remove_option_at_index(index)
        if self.proposals:
            self.highlighted = min(index, len(self.proposals) - 1)
        return proposal

    def action_accept(self) -> None:
        index = self.highlighted
        if index is None or not self.proposals:
            return
        self.post_message(self.Accepted([self._take(index)]))
        if not self.proposals:
            self.post_message(self.Closed())

    def action_reject(self) -> None:
        index = self.highlighted
        if index is None or not self.proposals:
            return
        self._take(index)
        if not self.proposals:
            self.post_message(self.Closed())

    def action_accept_all(self) -> None:
        if self.proposals:
            accepted, self.proposals = self.proposals, []
            self.clear_options()
            self.post_message(self.Accepted(accepted))
        self.post_message(self.Closed())

    def action_close(self) -> None:
        self.proposals = []
        self.clear_options()
        self.post_message(self.Closed())

    @on(OptionList.OptionSelected)
    def _selected(self, message: OptionList.OptionSelected) -> None:
        # Enter (or a click) accepts, like y
        message.stop()
        self.action_accept()
