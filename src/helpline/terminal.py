"""Showing a turn: redrawn live as Markdown on a terminal, plain text in a pipe, or JSON lines."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO, cast

from rich.console import Console

from helpline.events import (
    TurnDone,
    TurnError,
    TurnEvent,
    TurnRestart,
    TurnText,
    TurnToolCall,
    TurnToolProgress,
    TurnToolResult,
)

if TYPE_CHECKING:  # drawn on a terminal only: a pipe never loads them
    from rich.live import Live
    from rich.markdown import Markdown

_RESULT_PREVIEW = 160


class TurnPrinter:
    """Prints turn events as they arrive.

    Answer text goes straight to the stream (cheap per token); tool activity and errors
    go through rich, which colours them only on a terminal.
    """

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        show_tools: bool = True,
        activities: Mapping[str, str] | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.console = Console(file=self.out, highlight=False, soft_wrap=True)
        self.show_tools = show_tools
        self.activities = activities or {}
        """What each tool does, by name (``Tool.activity``), shown when it is called."""
        self._at_line_start = True

    def prefix(self) -> None:
        self.console.print("[bold cyan]Assistant:[/] ", end="")
        self._at_line_start = False

    def _newline(self) -> None:
        if not self._at_line_start:
            self.out.write("\n")
            self._at_line_start = True

    def _note(self, markup: str) -> None:
        self._newline()
        self.console.print(markup)

    def show(self, event: TurnEvent) -> None:
        if isinstance(event, TurnText):
            self.out.write(event.delta)
            self.out.flush()
            self._at_line_start = event.delta.endswith("\n")
        elif isinstance(event, TurnToolCall) and self.show_tools:
            name = event.call.function.name
            self._note(f"[dim]… {_escape(self.activities.get(name, f'Running {name}'))}[/]")
        elif isinstance(event, TurnToolProgress) and self.show_tools:
            self._note(f"[dim]  {event.text}[/]")
        elif isinstance(event, TurnToolResult) and self.show_tools:
            preview = event.content.replace("\n", " ")
            if len(preview) > _RESULT_PREVIEW:
                preview = preview[: _RESULT_PREVIEW - 1] + "…"
            style = "red" if event.is_error else "dim green"
            self._note(f"[{style}]  ✓ {event.call.function.name}: [/][dim]{_escape(preview)}[/]")
            self.prefix()
        elif isinstance(event, TurnRestart):
            self._note("[yellow](the connection dropped; the answer starts again)[/]")
            self.prefix()
        elif isinstance(event, TurnError):
            self._note(f"[bold red]{_escape(event.detail or event.message)}[/]")
        elif isinstance(event, TurnDone):
            self._newline()


class _MarkdownSoFar:
    """The answer so far, parsed as Markdown only when the screen is redrawn."""

    def __init__(self) -> None:
        self.text = ""

    def __rich__(self) -> Markdown:
        from rich.markdown import Markdown

        return Markdown(self.text)


class LiveTurnPrinter(TurnPrinter):
    """On a terminal: the answer is redrawn as Markdown while it streams (about 12 times a
    second, whatever the token rate), and a retried stream replaces its partial text."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        show_tools: bool = True,
        activities: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(show_tools=show_tools, activities=activities)
        # Rich must wrap the lines itself: redrawing moves the cursor up by the lines it drew.
        self.console = console or Console(highlight=False)
        self.out = cast(TextIO, self.console.file)
        self._answer = _MarkdownSoFar()
        self._live: Live | None = None

    def prefix(self) -> None:
        self.console.print("[bold cyan]Assistant:[/]")
        self._at_line_start = True

    def show(self, event: TurnEvent) -> None:
        if isinstance(event, TurnText):
            self._answer.text += event.delta
            if self._live is None:
                from rich.live import Live

                self._live = Live(
                    self._answer,
                    console=self.console,
                    refresh_per_second=12,
                    vertical_overflow="visible",
                )
                self._live.start()
            return
        if isinstance(event, TurnRestart) and self._live is not None:
            self._answer.text = ""  # the retried answer replaces what was shown
            self._live.refresh()
            return
        self._finish_answer()
        super().show(event)

    def _finish_answer(self) -> None:
        if self._live is not None:
            self._live.stop()  # draws the final text once more and leaves it on screen
            self._live = None
        self._answer = _MarkdownSoFar()
        self._at_line_start = True


class JsonLinesPrinter:
    """One JSON object per event, for scripts (``--json``)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def prefix(self) -> None:
        return None

    def show(self, event: TurnEvent) -> None:
        self.out.write(json.dumps({"event": event.name, **event.data()}) + "\n")
        self.out.flush()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
