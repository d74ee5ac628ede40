"""Run state kept beside the published tables: the file manifest, the parse cache, run history.

State is written into each version folder with the tables, so it is published (and rolled
back) atomically with them. Runs that fail validation publish nothing; they are appended to
`run_log.jsonl` and folded into the `runs` table by the next published run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from transforms.schema import MANIFEST, RUNS
from transforms.tables import PAGE_AUTHOR_SCHEMA, PAGE_LINK_SCHEMA, VARIANT_SCHEMA
from warehouse.publish import STATE_DIR, current_version
from warehouse.safe_io import open_exclusive_file

RUN_LOG = "run_log.jsonl"
CACHE_KEY = {"sha256": pl.String()}
MANIFEST_STATE_SCHEMA: dict[str, pl.DataType] = {
    **MANIFEST.polars_schema,
    "reason_code": pl.String(),
    "line": pl.Int64(),
    "message": pl.String(),
}


@dataclass(frozen=True)
class RunState:
    """What the previous published run left: manifest, cached per-page rows, run history."""

    manifest: pl.DataFrame
    page_authors: pl.DataFrame
    page_links: pl.DataFrame
    variants: pl.DataFrame
    runs: pl.DataFrame

    @staticmethod
    def empty() -> RunState:
        """The state of a warehouse that was never published."""
        return RunState(
            pl.DataFrame(schema=MANIFEST_STATE_SCHEMA),
            pl.DataFrame(schema={**PAGE_AUTHOR_SCHEMA, **CACHE_KEY}),
            pl.DataFrame(schema={**PAGE_LINK_SCHEMA, **CACHE_KEY}),
            pl.DataFrame(schema=VARIANT_SCHEMA),
            pl.DataFrame(schema=RUNS.polars_schema),
        )

    def frames(self) -> dict[str, pl.DataFrame]:
        """The state as named frames, for writing."""
        return {
            "manifest": self.manifest,
            "page_authors": self.page_authors,
            "page_links": self.page_links,
            "variants": self.variants,
            "runs": self.runs,
        }


def read_state(warehouse: Path) -> RunState:
    """The published run state, or an empty one (first run, or state unreadable)."""
    version = current_version(warehouse)
    if version is None or not (version / STATE_DIR).is_dir():
        return RunState.empty()
    empty = RunState.empty().frames()
    frames = {}
    for name, blank in empty.items():
        path = version / STATE_DIR / f"{name}.parquet"
        frames[name] = pl.read_parquet(path).cast(blank.schema) if path.exists() else blank
    return RunState(**frames)


def append_run_log(warehouse: Path, row: dict[str, object]) -> None:
    """Append one run's record (one JSON line, one write, O_APPEND).

    A run log planted as a symlink or hard link to another file is refused (UnsafePathError).
    """
    line = json.dumps(row, default=str, ensure_ascii=False) + "\n"
    fd = open_exclusive_file(warehouse / RUN_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_run_log(warehouse: Path) -> pl.DataFrame:
    """Runs recorded in the log (those that published nothing), as `runs` rows."""
    path = warehouse / RUN_LOG
    schema = RUNS.polars_schema
    if not path.exists():
        return pl.DataFrame(schema=schema)
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line from a killed run
    if not rows:
        return pl.DataFrame(schema=schema)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(
        pl.col("started_at", "finished_at").str.to_datetime(time_zone="UTC")
    ).select([pl.col(c).cast(t) for c, t in schema.items()])
