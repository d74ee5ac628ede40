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
import pyarrow as pa
import pyarrow.parquet as pq

from authorgraph.pipelines.load.layout import RUN_LOG
from authorgraph.pipelines.load.publish import (
    DUCKDB_FILE,
    STATE_DIR,
    VERSIONS_DIR,
    WarehouseDamaged,
    WarehouseError,
    connect_read_only,
    current_version,
)
from authorgraph.pipelines.load.safe_io import open_exclusive_file
from authorgraph.transforms.schema import MANIFEST, RUNS

MANIFEST_STATE_SCHEMA: dict[str, pl.DataType] = {
    **MANIFEST.polars_schema,
    "reason_code": pl.String(),
    "line": pl.Int64(),
    "message": pl.String(),
}
#: Nullable `runs` columns added after warehouses were first published: a runs table or run
#: log written before them lacks them, and reads them as null.
RUNS_ADDED_COLUMNS = frozenset(
    c.name for c in RUNS.columns if c.nullable and c.name in ("warnings",)
)


def conform_runs(frame: pl.DataFrame) -> pl.DataFrame:
    """A runs frame in the declared column order and types; a column added since it was
    written (`RUNS_ADDED_COLUMNS`) is null. A missing required column raises ColumnNotFoundError."""
    schema = RUNS.polars_schema
    missing = [c for c in RUNS_ADDED_COLUMNS if c not in frame.columns]
    frame = frame.with_columns(pl.lit(None, dtype=schema[c]).alias(c) for c in missing)
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


#: The keys the cached rows were built under (authorgraph.pipelines.extract.fingerprint.BuildKeys).
BUILD_SCHEMA: dict[str, pl.DataType] = {"parse_key": pl.String(), "output_key": pl.String()}


@dataclass(frozen=True)
class RunState:
    """What the previous published run left: manifest, run history, the keys its cache was
    built under, and where that cache is (Parquet files, read by DuckDB, never whole here)."""

    manifest: pl.DataFrame
    runs: pl.DataFrame
    build: pl.DataFrame
    cache_dir: Path | None = None  # holds page_authors/page_links/variants.parquet

    @staticmethod
    def empty() -> RunState:
        """The state of a warehouse that was never published."""
        return RunState(
            pl.DataFrame(schema=MANIFEST_STATE_SCHEMA),
            pl.DataFrame(schema=RUNS.polars_schema),
            pl.DataFrame(schema=BUILD_SCHEMA),
        )

    def build_key(self, name: str) -> str | None:
        """The parse or output key the cached rows were built under (None if unknown)."""
        return self.build[name][0] if self.build.height == 1 else None

    def without_cache(self) -> RunState:
        """The same history (manifest, runs) with every cached row forgotten."""
        return RunState(self.manifest, self.runs, RunState.empty().build, None)

    def cached_keys(self) -> pl.DataFrame:
        """(file_name, sha256) of every page the cache holds rows for (two columns only)."""
        if self.cache_dir is None:
            return pl.DataFrame(schema={"file_name": pl.String(), "sha256": pl.String()})
        return (
            pl.scan_parquet(self.cache_dir / "page_authors.parquet")
            .select("file_name", "sha256")
            .collect()
        )


#: The state files written with every version: the frames above, and the cache.
HISTORY_FILES = ("manifest", "runs", "build")
CACHE_FILES = ("page_authors", "page_links")
#: Parts: variants/part-<id prefix>.parquet (authorgraph.pipelines.transform.build).
VARIANTS_DIR = "variants"


def read_state(warehouse: Path) -> RunState:
    """The published run state; an empty one before the first publish.

    When the state files are missing or unreadable but something was published, the parse
    cache is dropped (every file is parsed again) and the history (manifest, runs) is read
    back from the published DuckDB file, so `first_seen` and the run history survive. When
    neither can be read, WarehouseDamaged says so rather than start a new history silently.
    """
    version = current_version(warehouse)
    blank = RunState.empty()
    if version is None:
        frames, damaged = (
            {"manifest": blank.manifest, "runs": blank.runs, "build": blank.build},
            ["no published version (the `current` link is gone)"],
        )
    else:
        frames, damaged = _read_frames(version / STATE_DIR)
        damaged += _check_cache(version / STATE_DIR)
    state = RunState(
        frames["manifest"],
        frames["runs"],
        frames["build"],
        version / STATE_DIR if version else None,
    )
    if not damaged:
        return state
    if not _published_anything(warehouse):
        return blank
    if not any(d.startswith(("manifest", "runs")) for d in damaged) and version is not None:
        return state.without_cache()
    try:
        manifest, runs = history_from_duckdb(warehouse)
    except WarehouseError as exc:
        raise WarehouseDamaged(
            f"the run history of {warehouse} cannot be read ({'; '.join(damaged)}; {exc}); "
            "restore the `current` link or move the warehouse aside to start a new history"
        ) from None
    return RunState(manifest, runs, blank.build, None)


def _read_frames(state_dir: Path) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """Manifest, runs and build keys as frames (a blank one where missing or unreadable)."""
    blank = RunState.empty()
    blanks = {"manifest": blank.manifest, "runs": blank.runs, "build": blank.build}
    frames, damaged = {}, []
    for name, empty in blanks.items():
        path = state_dir / f"{name}.parquet"
        try:
            frame = pl.read_parquet(path)
            frames[name] = conform_runs(frame) if name == "runs" else frame.cast(empty.schema)
        except (OSError, pl.exceptions.PolarsError) as exc:
            damaged.append(f"{name}: {exc}")
            frames[name] = empty
    return frames, damaged


def _check_cache(state_dir: Path) -> list[str]:
    """What is wrong with the cache files (their footers are read, not their rows): the
    per-page rows, and the variants folder of parts."""
    paths = [state_dir / f"{name}.parquet" for name in CACHE_FILES]
    parts = sorted((state_dir / VARIANTS_DIR).glob("part-*.parquet"))
    damaged = [] if parts else [f"{VARIANTS_DIR}: no parts in {state_dir / VARIANTS_DIR}"]
    for path in paths + parts:
        try:
            pq.read_metadata(path)
        except (OSError, pa.ArrowException) as exc:
            damaged.append(f"{path.name}: {exc}")
    return damaged


def _published_anything(warehouse: Path) -> bool:
    versions = warehouse / VERSIONS_DIR
    return (warehouse / DUCKDB_FILE).exists() or (versions.is_dir() and any(versions.iterdir()))


def history_from_duckdb(warehouse: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The manifest (with each rejected file's reason) and the runs, from the DuckDB file."""
    import duckdb

    con = connect_read_only(warehouse)
    try:
        manifest = con.sql(
            "SELECT m.*, r.reason_code, r.line, r.message FROM manifest m "
            "LEFT JOIN rejected_files r USING (file_name)"
        ).pl()
        runs = con.sql("SELECT * FROM runs").pl()
    except duckdb.Error as exc:
        raise WarehouseDamaged(f"cannot read {warehouse / DUCKDB_FILE}: {exc}") from None
    finally:
        con.close()
    return (
        manifest.select([pl.col(c).cast(t) for c, t in MANIFEST_STATE_SCHEMA.items()]),
        conform_runs(runs),
    )


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
    if path.is_symlink() or not path.is_file():  # a planted link is never read
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
    return conform_runs(
        frame.with_columns(pl.col("started_at", "finished_at").str.to_datetime(time_zone="UTC"))
    )
