"""The status bar: project, profile, the last reload, events per second, errors."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from workbench.runtime.reload import ReloadReport


class StatusBar(Static):
    """One line at the bottom of the main screen."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's keyword
        super().__init__(id=id)
        self.project = ""
        self.profile: str | None = None
        self.state = "starting"
        """`starting`, `running`, `stopping` or an error title."""
        self.reload: ReloadReport | None = None
        self.reload_at: datetime | None = None
        self.rate = 0.0
        self.events = 0
        self.errors = 0

    def show_reload(self, report: ReloadReport, at: datetime | None = None) -> None:
        """Record a finished reload (shown until the next one)."""
        self.reload = report
        self.reload_at = at or datetime.now()
        self.render_status()

    def show_counts(self, events: int, errors: int, rate: float) -> None:
        """Update the counters (cheap when nothing changed)."""
        if (events, errors, round(rate, 1)) == (self.events, self.errors, round(self.rate, 1)):
            return
        self.events, self.errors, self.rate = events, errors, rate
        self.render_status()

    def render_status(self) -> None:
        """Redraw the bar from its fields."""
        text = Text()
        text.append(f" {self.project or 'iwb'} ", style="bold reverse")
        text.append(f" profile {self.profile or 'default'}", style="dim")
        if self.state != "running":
            text.append(f" · {self.state}", style="yellow")
        text.append(" · ")
        report = self.reload
        if report is None:
            text.append("no reload yet", style="dim")
        else:
            when = self.reload_at.strftime("%H:%M:%S") if self.reload_at else ""
            if report.ok:
                text.append(f"reload {report.duration_ms:.1f} ms ", style="green")
                text.append(when, style="dim")
            else:
                first = report.errors[0].message.splitlines()[0]
                text.append(f"reload FAILED {when}: {first}", style="bold red")
        text.append(f" · {self.rate:.1f} ev/s · {self.events} events")
        text.append(" · ")
        text.append(f"{self.errors} errors", style="bold red" if self.errors else "dim")
        self.update(text, layout=False)  # one line, always: no need to lay out the screen
