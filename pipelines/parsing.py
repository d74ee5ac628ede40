"""Parsing files in batches, optionally over worker processes.

Kept apart from `stages` so that worker processes import only the parser and polars, not
Great Expectations or Prefect (spawned workers import this module afresh).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

from pipelines.config import Settings
from pipelines.extract import FileOutcome, PlannedFile, read_and_parse
from transforms.tables import StagedPages, stage_pages


@dataclass
class BatchResult:
    """One parsed batch: staged rows, per-file outcome (sha, rejection) in file order."""

    staged: StagedPages
    outcomes: list[FileOutcome]


def parse_batch(files: list[PlannedFile], max_bytes: int) -> BatchResult:
    """Read, hash and parse a batch of files; stage the good pages (runs in a worker process)."""
    pages = []
    outcomes: list[FileOutcome] = []
    for planned in files:
        ref = planned.ref
        result = read_and_parse(planned, max_bytes)
        if result.page is not None:
            pages.append((ref.name, result.page))
        outcomes.append(FileOutcome(ref.name, result.sha256, result.rejection))
    return BatchResult(stage_pages(pages), outcomes)


def parse_files(refs: list[PlannedFile], settings: Settings) -> Iterator[BatchResult]:
    """Parse files in batches of `batch_files`, over `workers` processes when worth it."""
    size = max(settings.batch_files, 1)
    batches = [refs[i : i + size] for i in range(0, len(refs), size)]
    if settings.workers <= 1 or len(batches) <= 1:
        for batch in batches:
            yield parse_batch(batch, settings.max_file_bytes)
        return
    # spawn, not fork: the parent may run Prefect's threads and event loop.
    with ProcessPoolExecutor(settings.workers, mp_context=get_context("spawn")) as pool:
        try:
            yield from pool.map(parse_batch, batches, [settings.max_file_bytes] * len(batches))
        except BaseException:  # interrupted: don't wait for the queued batches
            pool.shutdown(wait=False, cancel_futures=True)
            raise
