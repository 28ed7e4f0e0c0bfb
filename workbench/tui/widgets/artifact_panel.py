"""The artifact panel: the selected artifact at a glance, with its rate sparkline."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from workbench.tui.widgets.artifact_tree import status_style


class ArtifactPanel(Vertical):
    """Name, status, address and counts of one artifact, and its events per second over
    the last minute (a sparkline)."""

    DEFAULT_CSS = """
    ArtifactPanel {
        height: 7;
        border: round $primary 40%;
        padding: 0 1;
    }
    ArtifactPanel > Static {
        height: 3;
    }
    ArtifactPanel > Sparkline {
        height: 2;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's keyword
        super().__init__(id=id)
        self.border_title = "Rate"
        self.subject: str | None = None
        """The artifact shown, or None for the whole project."""
        self._info = Static(Text("all artifacts", style="dim"))
        self._spark = Sparkline([0.0], summary_function=max)

    def compose(self) -> Iterable[Widget]:
        yield self._info
        yield self._spark

    def show(
        self,
        name: str | None,
        status: str,
        address: str,
        events: int,
        errors: int,
        rate: float,
        series: Sequence[float],
    ) -> None:
        """Show one artifact (or, with `name` None, the whole project)."""
        self.subject = name
        text = Text()
        if name is None:
            text.append("all artifacts", style="bold")
        else:
            text.append(name, style="bold")
            text.append(f"  {status}", style=status_style(status))
            if address:
                text.append(f"\n{address}", style="dim")
        text.append(f"\n{events} events · {errors} errors · {rate:.1f}/s")
        self._info.update(text, layout=False)  # fixed height: no layout needed
        self.border_title = f"Rate, last {len(series)} s (peak {max(series, default=0):.0f}/s)"
        self._spark.data = list(series)
