"""The four stages as plain functions (the Prefect flow only puts them in order).

extract: find files, compare them with the manifest, hash what changed.
transform: parse changed files in batches, reuse cached rows for unchanged ones, build tables.
validate: run the suites. load: stage Parquet + DuckDB, publish atomically, quarantine.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import polars as pl
import pyarrow as pa

from expectations.validate import ValidationReport, validate_tables
from pipelines.config import Settings
from pipelines.extract import FileRef, discover_files, hash_file
from pipelines.parsing import BatchResult, parse_batch, parse_files
from transforms.schema import CORE_TABLES, MANIFEST, REJECTED_FILES, RUNS, TABLES_BY_NAME
from transforms.tables import StagedPages, build_tables, to_arrow
from warehouse.lock import writer_lock
from warehouse.publish import (
    clean_leftovers,
    current_version,
    deny_world_write,
    make_dir,
    publish_staged,
    published_run_id,
    restage_current,
    stage_warehouse,
    sync_quarantine,
)
from warehouse.state import RunState, append_run_log, read_run_log, read_state

LOADED, REJECTED, DELETED = "loaded", "rejected", "deleted"
# Re-exported: the flow submits parse_batch as a task and passes BatchResults to transform.
__all__ = ["BatchResult", "parse_batch"]


def software_version() -> str:
    """The installed authorgraph version."""
    try:
        return version("authorgraph")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "0+unknown"


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def fault_point(settings: Settings, name: str) -> None:
    """Testing hook: AUTHORGRAPH_FAULT=<name>=kill dies here as `kill -9` would;
    <name>=sleep:<seconds> pauses here (to start a competing run or reader meanwhile)."""
    if not settings.fault or not settings.fault.startswith(name + "="):
        return
    action = settings.fault.split("=", 1)[1]
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("sleep:"):
        time.sleep(float(action.split(":", 1)[1]))


@contextmanager
def exclusive_run(settings: Settings) -> Iterator[None]:
    """Hold the warehouse's writer lock for a whole run; clean up what killed runs left."""
    deny_world_write()
    make_dir(settings.warehouse)
    with writer_lock(settings.warehouse, settings.wait_seconds):
        clean_leftovers(settings.warehouse)
        yield


# -- extract ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """A discovered file, its content hash, and whether its cached records can be reused."""

    ref: FileRef
    sha256: str
    reuse: bool


@dataclass
class Extracted:
    """The extract stage's output: what to read, what to reuse, what the last run left."""

    files: list[PlannedFile]
    deleted: list[str]
    previous: RunState


def plan_files(refs: list[FileRef], manifest: pl.DataFrame, full_hash: bool) -> list[PlannedFile]:
    """Reuse a file's records when its content is unchanged; trust size + mtime unless told not to.

    Like rsync: a file whose size and modification time match the manifest is not read at all
    (`full_hash` reads and hashes it anyway); any other file is hashed and reused only when its
    hash matches.
    """
    known = {
        row["file_name"]: row
        for row in manifest.filter(pl.col("status") != DELETED).iter_rows(named=True)
    }
    planned = []
    for ref in refs:
        prev = known.get(ref.name)
        if prev and not full_hash and (prev["size"], prev["mtime_ns"]) == (ref.size, ref.mtime_ns):
            planned.append(PlannedFile(ref, prev["sha256"], True))
            continue
        sha = hash_file(ref.path)
        planned.append(PlannedFile(ref, sha, prev is not None and prev["sha256"] == sha))
    return planned


def extract(settings: Settings) -> Extracted:
    """Find the page files, compare them with the manifest and hash what changed."""
    refs = discover_files(settings.seeds)
    previous = read_state(settings.warehouse)
    if settings.full_refresh:  # keep the file and run history, forget every parsed record
        empty = RunState.empty()
        previous = RunState(
            previous.manifest, empty.page_authors, empty.page_links, empty.variants, previous.runs
        )
    # A file's records can be reused only if the cache really holds them (or it was rejected).
    keys = pl.concat(
        [
            previous.page_authors.select("file_name", "sha256"),
            previous.manifest.filter(pl.col("status") == REJECTED).select("file_name", "sha256"),
        ]
    )
    usable = previous.manifest.join(keys.unique(), on=["file_name", "sha256"], how="semi")
    if settings.full_refresh:
        usable = usable.clear()
    files = plan_files(refs, usable, settings.full_hash)
    names = {r.name for r in refs}
    deleted = [
        n
        for n in previous.manifest.filter(pl.col("status") != DELETED)["file_name"]
        if n not in names
    ]
    return Extracted(files, deleted, previous)


# -- transform ----------------------------------------------------------------------------


@dataclass
class Transformed:
    """The transform stage's output: the tables, the new run state, and what was done."""

    tables: dict[str, pl.DataFrame]
    state: RunState
    files_read: int
    files_parsed: int
    files_reused: int
    files_deleted: int
    rejected_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def row_counts(self) -> dict[str, int]:
        """Rows per data table."""
        names = ("authors", "papers", "authorship", "rejected_files")
        return {name: self.tables[name].height for name in names}

    @property
    def files_rejected(self) -> int:
        """Files rejected in this run (new or unchanged)."""
        return self.tables["rejected_files"].height


def _cached_rows(previous: RunState, keys: pl.DataFrame) -> StagedPages:
    """The previous run's rows for the (file_name, sha256) pairs in `keys`."""
    authors = previous.page_authors.join(keys, on=["file_name", "sha256"], how="semi")
    links = previous.page_links.join(keys, on=["file_name", "sha256"], how="semi")
    return StagedPages(authors.drop("sha256"), links.drop("sha256"), previous.variants)


def transform(
    extracted: Extracted,
    settings: Settings,
    run_id: str,
    batches: Iterable[BatchResult] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Transformed:
    """Parse what changed, reuse what didn't, and build the de-duplicated tables.

    `batches`: the changed files already parsed elsewhere (the flow fans parsing out over its
    task runner); without it they are parsed here, and `progress` hears of each parsed batch.
    """
    now = datetime.now(UTC)
    previous = extracted.previous
    reused = [f for f in extracted.files if f.reuse]
    to_parse = [f.ref for f in extracted.files if not f.reuse]
    parsed: list[StagedPages] = []
    outcome: dict[str, tuple[str, str | None, int | None, str | None]] = {}
    results = parse_files(to_parse, settings) if batches is None else batches
    for number, batch in enumerate(results):
        parsed.append(batch.staged)
        for name, sha, code, line, message in batch.outcomes:
            outcome[name] = (sha, code, line, message)
        if number == 0:
            fault_point(settings, "transform:parsing")
        if progress is not None and batches is None:
            progress(len(batch.outcomes))
    prev_manifest = {r["file_name"]: r for r in previous.manifest.iter_rows(named=True)}
    for f in reused:
        prev = prev_manifest[f.ref.name]
        outcome[f.ref.name] = (f.sha256, prev["reason_code"], prev["line"], prev["message"])
    reused_keys = pl.DataFrame(
        {"file_name": [f.ref.name for f in reused], "sha256": [f.sha256 for f in reused]},
        schema={"file_name": pl.String(), "sha256": pl.String()},
    )
    staged = StagedPages.concat([_cached_rows(previous, reused_keys), *parsed])
    staged = StagedPages(
        staged.page_authors,
        staged.page_links,
        staged.variants.join(
            staged.page_links.select("variant_id").unique(), on="variant_id", how="semi"
        ),
    )
    tables = build_tables(staged)
    manifest = _manifest(extracted, outcome, prev_manifest, run_id, now)
    tables["rejected_files"] = (
        manifest.filter(pl.col("status") == REJECTED)
        .select(REJECTED_FILES.column_names)
        .sort("file_name")
    )
    tables["manifest"] = manifest.select(MANIFEST.column_names)
    sha = manifest.select("file_name", "sha256")
    state = RunState(
        manifest=manifest,
        page_authors=staged.page_authors.join(sha, on="file_name", how="left"),
        page_links=staged.page_links.join(sha, on="file_name", how="left"),
        variants=staged.variants,
        runs=previous.runs,
    )
    refs = {f.ref.name: f.ref for f in extracted.files}
    return Transformed(
        tables=tables,
        state=state,
        files_read=len(extracted.files),
        files_parsed=len(to_parse),
        files_reused=len(reused),
        files_deleted=len(extracted.deleted),
        rejected_paths={
            name: refs[name].path for name, (_, code, _, _) in outcome.items() if code is not None
        },
    )


def _manifest(
    extracted: Extracted,
    outcome: dict[str, tuple[str, str | None, int | None, str | None]],
    prev: dict[str, dict[str, object]],
    run_id: str,
    now: datetime,
) -> pl.DataFrame:
    rows = []
    for f in extracted.files:
        sha, code, line, message = outcome[f.ref.name]
        old = prev.get(f.ref.name)
        rows.append(
            {
                "file_name": f.ref.name,
                "size": f.ref.size,
                "mtime_ns": f.ref.mtime_ns,
                "sha256": sha,
                "first_seen": old["first_seen"] if old else now,
                "last_seen": now,
                "status": REJECTED if code else LOADED,
                "parsed_run_id": old["parsed_run_id"] if f.reuse and old else run_id,
                "reason_code": code,
                "line": line,
                "message": message,
            }
        )
    for name in extracted.deleted:
        rows.append({**prev[name], "status": DELETED})
    for name, old in prev.items():
        if old["status"] == DELETED and name not in {r["file_name"] for r in rows}:
            rows.append(old)
    schema = extracted.previous.manifest.schema
    return pl.DataFrame(rows, schema=schema).sort("file_name")


# -- validate -----------------------------------------------------------------------------


def validate(transformed: Transformed, settings: Settings) -> ValidationReport:
    """Run the suites on the core tables and build Data Docs (raises nothing)."""
    frames = {t.name: transformed.tables[t.name] for t in CORE_TABLES}
    return validate_tables(frames, settings.data_docs_dir)


# -- load ---------------------------------------------------------------------------------


def run_record(
    run_id: str,
    started_at: datetime,
    transformed: Transformed,
    report: ValidationReport,
    settings: Settings,
) -> dict[str, object]:
    """The `runs` row describing this run."""
    counts = transformed.row_counts
    return {
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": datetime.now(UTC),
        "status": (
            "validation_failed"
            if not report.success
            else "unchanged"
            if report.carried_over
            else "published"
        ),
        "full_refresh": settings.full_refresh,
        "files_read": transformed.files_read,
        "files_parsed": transformed.files_parsed,
        "files_reused": transformed.files_reused,
        "files_rejected": transformed.files_rejected,
        "files_deleted": transformed.files_deleted,
        "authors_rows": counts["authors"],
        "papers_rows": counts["papers"],
        "authorship_rows": counts["authorship"],
        "validation_success": report.success,
        "expectations_evaluated": report.evaluated,
        "expectations_failed": len(report.failures),
        "software_version": software_version(),
    }


def record_failed_run(settings: Settings, record: dict[str, object]) -> None:
    """A run that published nothing still leaves a line in the run log."""
    append_run_log(settings.warehouse, record)


def runs_table(
    previous_runs: pl.DataFrame, logged: pl.DataFrame, record: dict[str, object]
) -> pl.DataFrame:
    """Run history: published runs, logged failed runs, and this run; one row per run id."""
    current = pl.DataFrame([record], schema=RUNS.polars_schema)
    return (
        pl.concat([previous_runs, logged, current])
        .unique("run_id", keep="last", maintain_order=True)
        .sort("run_id")
    )


def is_unchanged(transformed: Transformed, settings: Settings) -> bool:
    """True when this run would publish exactly what is published: nothing parsed or deleted,
    no full refresh, and the last published run used this same software version."""
    if settings.full_refresh or transformed.files_parsed or transformed.files_deleted:
        return False
    published = transformed.state.runs.filter(pl.col("status") != "validation_failed")
    current = current_version(settings.warehouse)
    if published.is_empty() or current is None:
        return False
    # The DuckDB file and the run state must come from the same run (a crash between their
    # two renames leaves them apart: then rebuild rather than trust either).
    if published_run_id(settings.warehouse) != current.name:
        return False
    return published.sort("run_id")["software_version"][-1] == software_version()


def carried_over_report(transformed: Transformed, settings: Settings) -> ValidationReport:
    """An unchanged run re-publishes tables that already passed: their report carries over."""
    last = transformed.state.runs.filter(pl.col("status") != "validation_failed").sort("run_id")
    index = settings.data_docs_dir / "index.html"
    evaluated = int(last["expectations_evaluated"][-1])
    return ValidationReport(evaluated, [], index if index.exists() else None, carried_over=True)


def load(
    transformed: Transformed,
    settings: Settings,
    record: dict[str, object],
    unchanged: bool = False,
) -> Path:
    """Stage Parquet + DuckDB, publish them atomically, and keep rejected files quarantined.

    An unchanged run re-stages the published version with only `manifest` and `runs` replaced.
    """
    run_id = str(record["run_id"])
    runs = runs_table(transformed.state.runs, read_run_log(settings.warehouse), record)
    tables = {**transformed.tables, "runs": runs}
    state_frames = {**transformed.state.frames(), "runs": runs}
    # An unchanged run rewrites only these two; every other table is carried over as is.
    names = ("manifest", "runs") if unchanged else tuple(tables)
    arrow: dict[str, pa.Table] = {n: to_arrow(tables[n], TABLES_BY_NAME[n]) for n in names}
    state_names = ("manifest", "runs") if unchanged else tuple(state_frames)
    state = {n: state_frames[n].to_arrow() for n in state_names}
    state["runs"] = arrow["runs"]
    stage_dir = settings.staging_dir / run_id
    if unchanged:
        restage_current(settings.warehouse, stage_dir, arrow, state)
    else:
        stage_warehouse(arrow, state, stage_dir)
    fault_point(settings, "load:staged")
    publish_staged(stage_dir, settings.warehouse, run_id, lambda step: fault_point(settings, step))
    sync_quarantine(transformed.rejected_paths, settings.quarantine_dir)
    return settings.duckdb_path
