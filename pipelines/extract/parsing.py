"""Parsing files in batches, optionally over worker processes; each batch goes to disk.

Kept apart from `stages` so that worker processes import only the parser and polars, not
Great Expectations or Prefect (spawned workers import this module afresh).

A batch writes its per-page rows to three small Parquet files in the run's staging folder and
returns only the per-file outcomes (name, hash, rejection; as columns): rows never travel back
through the parent process, a Prefect task result or a Dask worker's memory. Those files are
the input of the DuckDB build (`authorgraph.pipelines.transform.build`), and, merged with the
reused rows, the next run's cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import polars as pl

from authorgraph.pipelines.config import Settings
from authorgraph.pipelines.extract.seeds import PlannedFile, Rejection, read_and_parse
from authorgraph.transforms.tables import stage_pages

#: The three kinds of staged rows, each one Parquet file per batch: `<number>.<kind>.parquet`.
BATCH_KINDS = ("page_authors", "page_links", "variants")
#: Rows per Parquet row group of paper texts (a batch's, and the cache's parts).
TEXT_ROW_GROUP = 2_000


#: A batch's outcomes, one row a file in file order: its hash (null if never read) and its
#: rejection (null columns if it loaded). Columns, not an object a file: 2M outcomes arriving
#: in a run's parent as Python objects held about 0.3 KB each there through the build.
OUTCOME_SCHEMA: dict[str, pl.DataType] = {
    "file_name": pl.String(),
    "sha256": pl.String(),
    "reason_code": pl.String(),
    "line": pl.Int64(),
    "message": pl.String(),
}


@dataclass
class BatchResult:
    """One parsed batch: its number and each file's outcome (`OUTCOME_SCHEMA`)."""

    number: int
    outcomes: pl.DataFrame


def batch_path(batch_dir: Path, number: int, kind: str) -> Path:
    """Where batch `number` writes its rows of `kind`."""
    return batch_dir / f"{number:06d}.{kind}.parquet"


def parse_batch(
    files: list[PlannedFile], max_bytes: int, batch_dir: Path, number: int
) -> BatchResult:
    """Read, hash and parse a batch of files; write its rows to `batch_dir` (runs in a worker
    process, a Prefect task or on a Dask worker that shares the staging folder)."""
    pages = []
    names: list[str] = []
    hashes: list[str | None] = []
    rejections: list[Rejection | None] = []
    for planned in files:
        ref = planned.ref
        result = read_and_parse(planned, max_bytes)
        if result.page is not None:
            pages.append((ref.name, result.page))
        names.append(ref.name)
        hashes.append(result.sha256)
        rejections.append(result.rejection)
    staged = stage_pages(pages)
    outcomes = pl.DataFrame(
        {"file_name": names, "sha256": hashes, **Rejection.columns_of(rejections)},
        schema=OUTCOME_SCHEMA,
    )
    sha = outcomes.select("file_name", "sha256")
    batch_dir.mkdir(parents=True, exist_ok=True)
    frames = {
        "page_authors": staged.page_authors.join(sha, on="file_name", how="left"),
        "page_links": staged.page_links.join(sha, on="file_name", how="left"),
        # In paper id order, in small row groups: the build reads one id range at a time
        # and DuckDB skips the row groups outside it (their min/max statistics).
        "variants": staged.variants.sort("paper_id"),
    }
    for kind, frame in frames.items():
        # Written under a temporary name and renamed: a batch retried after a crash never
        # leaves a torn file where the build would read it.
        path = batch_path(batch_dir, number, kind)
        tmp = path.with_name(f".{path.name}.tmp")
        frame.write_parquet(
            tmp,
            compression="zstd",
            compression_level=1,
            statistics=kind == "variants",
            row_group_size=TEXT_ROW_GROUP,
        )
        tmp.replace(path)
    return BatchResult(number, outcomes)


def parse_files(
    refs: list[PlannedFile], settings: Settings, batch_dir: Path
) -> Iterator[BatchResult]:
    """Parse files in batches of `batch_files`, over `workers` processes when worth it."""
    size = max(settings.batch_files, 1)
    batches = [refs[i : i + size] for i in range(0, len(refs), size)]
    numbers = list(range(len(batches)))
    if settings.workers <= 1 or len(batches) <= 1:
        for number, batch in zip(numbers, batches, strict=True):
            yield parse_batch(batch, settings.max_file_bytes, batch_dir, number)
        return
    # spawn, not fork: the parent may run Prefect's threads and event loop.
    with ProcessPoolExecutor(settings.workers, mp_context=get_context("spawn")) as pool:
        try:
            yield from pool.map(
                parse_batch,
                batches,
                [settings.max_file_bytes] * len(batches),
                [batch_dir] * len(batches),
                numbers,
            )
        except BaseException:  # interrupted: don't wait for the queued batches
            pool.shutdown(wait=False, cancel_futures=True)
            raise
