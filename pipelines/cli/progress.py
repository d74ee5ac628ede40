"""The CLI's progress bar over files: rich, on a terminal only, after the run takes a moment."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

SHOW_AFTER_SECONDS = 1.0


@contextmanager
def file_progress(console: Console) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback taking the files just parsed, or None when `console` is no terminal.

    The bar appears only once a run has been going for SHOW_AFTER_SECONDS, so quick runs print
    nothing extra. Its total grows as batches come in (the flow does not announce a total).
    """
    if not console.is_terminal:
        yield None
        return
    started = time.monotonic()
    progress = Progress(
        TextColumn("parsing files"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task("parse", total=None)
    shown = False

    def advance(files: int) -> None:
        nonlocal shown
        if not shown and time.monotonic() - started >= SHOW_AFTER_SECONDS:
            progress.start()
            shown = True
        progress.advance(task, files)

    try:
        yield advance
    finally:
        if shown:
            progress.stop()
