"""The four stages as plain functions (the Prefect flow only puts them in order)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa

from expectations.validate import ValidationReport, validate_tables
from pipelines.config import Settings
from pipelines.extract import FileRef, FileResult, discover_files, read_and_parse_all
from transforms.schema import CORE_TABLES, REJECTED_FILES, TABLES_BY_NAME
from transforms.tables import build_tables, stage_pages, to_arrow
from warehouse.publish import publish_staged, stage_warehouse, sync_quarantine


@dataclass
class Transformed:
    """The transform stage's output: the tables, and the files behind them."""

    tables: dict[str, pl.DataFrame]
    files_read: int
    rejected_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def row_counts(self) -> dict[str, int]:
        """Rows per table."""
        return {name: frame.height for name, frame in self.tables.items()}


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def extract(settings: Settings) -> list[FileRef]:
    """Find the page files to read, in file-name order."""
    return discover_files(settings.seeds)


def rejected_frame(results: list[FileResult]) -> pl.DataFrame:
    """One row per rejected file, in file-name order."""
    rows = [
        {
            "file_name": r.ref.name,
            "sha256": r.sha256,
            "reason_code": r.rejection.reason_code,
            "line": r.rejection.line,
            "message": r.rejection.message,
        }
        for r in results
        if r.rejection is not None
    ]
    return pl.DataFrame(rows, schema=REJECTED_FILES.polars_schema)


def transform(refs: list[FileRef], settings: Settings) -> Transformed:
    """Read, decode and parse every file; build the de-duplicated tables."""
    results = list(read_and_parse_all(refs, settings.max_file_bytes))
    pages = [(r.ref.name, r.page) for r in results if r.page is not None]
    tables = build_tables(stage_pages(pages))
    tables["rejected_files"] = rejected_frame(results)
    rejected_paths = {r.ref.name: r.ref.path for r in results if r.rejection is not None}
    return Transformed(tables, files_read=len(results), rejected_paths=rejected_paths)


def validate(transformed: Transformed, settings: Settings) -> ValidationReport:
    """Run the suites on the core tables and build Data Docs (raises nothing)."""
    frames = {t.name: transformed.tables[t.name] for t in CORE_TABLES}
    return validate_tables(frames, settings.data_docs_dir)


def load(transformed: Transformed, settings: Settings, run_id: str) -> Path:
    """Stage Parquet + DuckDB, publish them atomically, and keep rejected files quarantined."""
    arrow: dict[str, pa.Table] = {
        name: to_arrow(frame, TABLES_BY_NAME[name]) for name, frame in transformed.tables.items()
    }
    stage_dir = settings.staging_dir / run_id
    stage_warehouse(arrow, stage_dir)
    publish_staged(stage_dir, settings.warehouse)
    sync_quarantine(transformed.rejected_paths, settings.quarantine_dir)
    return settings.duckdb_path
