"""Progress of a long command: a bar on a terminal, plain lines when the output is not one (a log, CI).

On a terminal rich draws the bar (a pulsing one while the total is unknown, as for a scan, whose pages Shopify does
not count ahead) and prints `line`s above it; elsewhere each step is one plain line, and lines are printed as given.
The bar is redrawn at each step, not by a timer: nothing writes between two steps.
"""

from __future__ import annotations

from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class CommandProgress:
    """`with CommandProgress(stream, "Reading orders", unit="orders") as progress: progress.advance(250)`.

    Plain lines: "{what}: {done} {unit}" (and " of {total}" when known) after each step, and at the end
    "{what}: done, {done} {unit}" ("{what}: stopped, …" when the block raised)."""

    def __init__(self, stream: TextIO, what: str, *, unit: str, total: int | None = None, steps_shown: bool = True):
        """`steps_shown` False: in plain mode the steps print nothing (the command prints a line per step itself)."""
        self.stream = stream
        self.what = what
        self.unit = unit
        self.total = total
        self.steps_shown = steps_shown
        self.done = 0
        self.on_terminal = stream.isatty()
        self._bar: Progress | None = None
        self._task = None

    def __enter__(self) -> CommandProgress:
        if self.on_terminal:
            console = Console(file=self.stream, force_terminal=True)
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn() if self.total is not None else TextColumn("{task.completed} " + self.unit),
                TimeElapsedColumn(),
                console=console,
                auto_refresh=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total)
            self._bar.refresh()
        return self

    def advance(self, by: int = 1) -> None:
        self.done += by
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            self._bar.refresh()
        elif self.steps_shown:
            of = f" of {self.total}" if self.total is not None else ""
            self._plain(f"{self.what}: {self.done}{of} {self.unit}")

    def line(self, text: str) -> None:
        """A line of the command's own output: above the bar on a terminal."""
        if self._bar is not None:
            self._bar.console.print(text, highlight=False, markup=False)
            self._bar.refresh()
        else:
            self._plain(text)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.steps_shown:
            self._plain(f"{self.what}: {'done' if kind is None else 'stopped'}, {self.done} {self.unit}")

    def _plain(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
