"""The four stages as plain functions (the Prefect flow only puts them in order).

extract: find files, compare them with the manifest, hash what changed.
transform: parse changed files in batches, reuse cached rows for unchanged ones, build tables.
validate: run the suites. load: stage Parquet + DuckDB, publish atomically, quarantine.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from authorgraph.expectations.validate import (
    RELATIONSHIPS,
    ExpectationResult,
    TableUnreadable,
    ValidationFailed,
    ValidationReport,
    key_columns,
    key_part_counts,
    validate_tables,
)
from authorgraph.pipelines.config import Settings
from authorgraph.pipelines.extract.fingerprint import BuildKeys, build_keys, software_version
from authorgraph.pipelines.extract.parsing import (
    OUTCOME_SCHEMA,
    BatchResult,
    parse_batch,
    parse_files,
)
from authorgraph.pipelines.extract.seeds import (
    AFRESH_CODES,
    NOT_COPIED_CODES,
    FileRef,
    PlannedFile,
    check_seeds,
    file_path,
    hash_file,
    list_seeds,
)
from authorgraph.pipelines.load.errors import MemoryLimitReached, StepProcessDied
from authorgraph.pipelines.load.folder import check_warehouse, owner_note
from authorgraph.pipelines.load.lock import LOCK_FILE, writer_lock
from authorgraph.pipelines.load.publish import (
    DUCKDB_FILE,
    PARQUET_DIR,
    STATE_DIR,
    VERSIONS_DIR,
    NoSpaceLeft,
    WarehouseUnusable,
    check_outputs,
    clean_leftovers,
    current_version,
    deny_world_write,
    finish_publish,
    finish_staged,
    make_dir,
    publish_staged,
    published_run_id,
    recover_current,
    restage_current,
    sync_quarantine,
    write_parquet,
)
from authorgraph.pipelines.load.state import (
    BUILD_SCHEMA,
    RunState,
    append_run_log,
    read_run_log,
    read_state,
)
from authorgraph.pipelines.ops import children
from authorgraph.pipelines.transform.build import (
    PAGE_KINDS,
    BuildLimits,
    CacheInputs,
    KeyChecks,
    build_tables,
    key_checks,
    ledger_checks,
    rows_not_in,
    same_rows,
)
from authorgraph.pipelines.transform.drift import page_stats
from authorgraph.transforms.schema import (
    BUILT_TABLES,
    CORE_TABLES,
    REJECTED_FILES,
    RUNS,
    TABLES_BY_NAME,
    VALIDATION_RESULTS,
    Table,
    arrow_array,
)
from authorgraph.transforms.tables import to_arrow

LOADED, REJECTED, DELETED = "loaded", "rejected", "deleted"
# Re-exported: the flow submits parse_batch as a task and passes BatchResults to transform.
__all__ = ["BatchResult", "PlannedFile", "parse_batch", "software_version"]


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


_FAILED_ONCE: set[str] = set()


def fault_point(settings: Settings, name: str) -> None:
    """Testing hook: AUTHORGRAPH_FAULT=<name>=kill dies here as `kill -9` would;
    <name>=sleep:<seconds> pauses here (to start a competing run or reader meanwhile);
    <name>=wait:<path> pauses here until <path> exists (a gate the test opens; 10 minutes at
    most); <name>=fail-once raises an I/O error the first time this process gets here."""
    if not settings.fault or not settings.fault.startswith(name + "="):
        return
    action = settings.fault.split("=", 1)[1]
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("sleep:"):
        time.sleep(float(action.split(":", 1)[1]))
    elif action.startswith("wait:"):
        gate, deadline = Path(action.split(":", 1)[1]), time.monotonic() + 600
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    elif action == "fail-once" and name not in _FAILED_ONCE:
        _FAILED_ONCE.add(name)
        raise OSError(errno.EIO, f"injected fault at {name}")


def open_warehouse(warehouse: Path) -> None:
    """Check the warehouse folder, creating it if needed (see `check_warehouse`)."""
    check_warehouse(warehouse)
    try:
        make_dir(warehouse)
    except OSError as exc:
        raise WarehouseUnusable(
            f"cannot create the warehouse {warehouse}: {exc.strerror}"
        ) from None


@contextmanager
def exclusive_run(settings: Settings) -> Iterator[list[str]]:
    """Hold the warehouse's writer lock for a whole run; clean up what killed runs left.

    Yields the run's list of warnings (one line each; they never fail the run).
    """
    deny_world_write()
    open_warehouse(settings.warehouse)
    with ExitStack() as stack:
        try:
            stack.enter_context(writer_lock(settings.warehouse, settings.wait_seconds))
        except OSError as exc:
            lock = settings.warehouse / LOCK_FILE
            owner = owner_note(lock)
            raise WarehouseUnusable(
                f"cannot take the writer lock {lock}{owner}: {exc.strerror}"
            ) from None
        warnings: list[str] = []
        repaired = recover_current(settings.warehouse)
        if repaired:
            warnings.append(repaired)
        try:
            clean_leftovers(settings.warehouse)
        except OSError as exc:
            warnings.append(f"could not remove old versions or staging leftovers: {exc}")
        yield warnings


# -- extract ------------------------------------------------------------------------------


@dataclass
class Extracted:
    """The extract stage's output: what to read, what to reuse, what the last run left.

    Every listed file is a row of `plan`, not an object: at 200k files a `FileRef` and a
    `PlannedFile` a file held about 0.4 KB each in the run's process through the whole run.
    Only the files to read (`to_read`: new, changed, or rejected from the listing) are
    objects; a re-run reuses nearly every file."""

    plan: pl.DataFrame  # PLAN_SCHEMA, one row per listed file, in listing order
    to_read: list[PlannedFile]  # the rows of `plan` with `reuse` false, in the same order
    folder: str  # the folder the files were listed in (a row's path, unless `target`)
    deleted: list[str]
    previous: RunState
    keys: BuildKeys
    skipped: int = 0  # directories, FIFOs, sockets, devices in the seeds folder (E2)

    def paths(self, names: set[str]) -> dict[str, Path]:
        """The path to open of each listed file named in `names`."""
        rows = self.plan.filter(pl.col("file_name").is_in(list(names)))
        return {
            name: Path(
                file_path(self.folder, name, None if target is None else os.fsdecode(target))
            )
            for name, target in rows.select("file_name", "target").iter_rows()
        }


#: A plan row: a listed file, its hash when known (from the manifest or hashed now), whether
#: its cached rows are reused, and the path to open when it is not folder/name (`FileRef.target`).
PLAN_SCHEMA: dict[str, pl.DataType] = {
    "file_name": pl.String(),
    "size": pl.Int64(),
    "mtime_ns": pl.Int64(),
    "sha256": pl.String(),
    "reuse": pl.Boolean(),
    "target": pl.Binary(),  # bytes: a link's target may be no valid UTF-8 (E5)
}


def plan_files(
    refs: list[FileRef], manifest: pl.DataFrame, full_hash: bool
) -> tuple[pl.DataFrame, list[PlannedFile]]:
    """Reuse a file's records when its content is unchanged; trust size + mtime unless told not to.

    Like rsync: a file whose size and modification time match the manifest is not read at all
    (`full_hash` reads and hashes it anyway). A file of the same size but a new mtime is hashed
    and reused when its hash matches; any other file is read (and hashed) once, when parsed.
    Files rejected from the listing or unreadable are decided afresh on every run.

    Returns the plan (`PLAN_SCHEMA`, in the order of `refs`) and the files to read. The
    comparison with the manifest is a join: no per-file record is made for a trusted file.
    """
    known = (
        manifest.filter(
            (pl.col("status") != DELETED)
            & ~pl.col("reason_code").is_in(list(AFRESH_CODES)).fill_null(False)
        )
        .select(
            "file_name",
            known_size=pl.col("size").cast(pl.Int64),
            known_mtime_ns=pl.col("mtime_ns").cast(pl.Int64),
            known_sha256=pl.col("sha256"),
        )
        .unique("file_name", keep="last", maintain_order=True)
    )
    listed = pl.DataFrame(
        {
            "file_name": [r.name for r in refs],
            "size": [r.size for r in refs],
            "mtime_ns": [r.mtime_ns for r in refs],
            "target": [None if r.target is None else os.fsencode(r.target) for r in refs],
            "listed_ok": [r.rejection is None for r in refs],
        },
        schema={**{c: PLAN_SCHEMA[c] for c in ("file_name", "size", "mtime_ns", "target")}}
        | {"listed_ok": pl.Boolean()},
    ).join(known, on="file_name", how="left", maintain_order="left")
    trusted = (
        pl.col("listed_ok")
        & pl.lit(not full_hash)
        & (pl.col("known_size") == pl.col("size")).fill_null(False)
        & (pl.col("known_mtime_ns") == pl.col("mtime_ns")).fill_null(False)
    )
    listed = listed.with_row_index("i").with_columns(trusted=trusted)
    # The rest, one at a time: hashed now when the size matches (or under full_hash).
    checked_rows: list[int] = []
    hashes: list[str | None] = []
    reused: list[bool] = []
    to_read: list[PlannedFile] = []
    untrusted = listed.filter(~pl.col("trusted")).select("i", "known_size", "known_sha256")
    for i, known_size, known_sha in untrusted.iter_rows():
        ref = refs[i]
        sha: str | None = None
        if ref.rejection is None and (full_hash or known_size == ref.size):
            try:
                sha = hash_file(ref.path)
            except OSError:  # reported as UNREADABLE_FILE when the parse step reads it
                sha = None
        reuse = known_sha is not None and sha is not None and known_sha == sha
        checked_rows.append(i)
        hashes.append(sha)
        reused.append(reuse)
        if not reuse:
            to_read.append(PlannedFile(ref, sha, False))
    hashed = pl.DataFrame(
        {"i": checked_rows, "hashed": hashes, "hashed_reuse": reused},
        schema={"i": pl.UInt32(), "hashed": pl.String(), "hashed_reuse": pl.Boolean()},
    )
    plan = listed.join(hashed, on="i", how="left", maintain_order="left").with_columns(
        sha256=pl.when("trusted").then("known_sha256").otherwise("hashed"),
        reuse=pl.col("trusted") | pl.col("hashed_reuse").fill_null(False),
    )
    return plan.select(PLAN_SCHEMA.keys()), to_read


def extract(settings: Settings) -> Extracted:
    """Find the page files, compare them with the manifest and hash what changed."""
    listing = list_seeds(settings.seeds)
    previous = read_state(settings.warehouse)
    keys = build_keys(settings.max_file_bytes)
    # The cache holds rows built by some code under some settings: reuse it only under the
    # same ones (a parser fix or a new size limit re-parses every file; history is kept).
    stale = previous.build_key("parse_key") != keys.parse_key
    if settings.full_refresh or stale:
        previous = previous.without_cache()
    # A file's records can be reused only if the cache really holds them (or it was rejected).
    cached = pl.concat(
        [
            previous.cached_keys(),
            previous.manifest.filter(pl.col("status") == REJECTED).select("file_name", "sha256"),
        ]
    )
    usable = previous.manifest.join(cached.unique(), on=["file_name", "sha256"], how="semi")
    del cached
    if settings.full_refresh or stale:
        usable = usable.clear()
    plan, to_read = plan_files(listing.files, usable, settings.full_hash)
    if sum(f.ref.size for f in to_read) > ISOLATE_BYTES:
        children.release()  # a large parse: an idle GX process would sit through it
    deleted = previous.manifest.filter(
        (pl.col("status") != DELETED) & ~pl.col("file_name").is_in(plan["file_name"].implode())
    )["file_name"].to_list()
    folder = os.fspath(settings.seeds)
    return Extracted(plan, to_read, folder, deleted, previous, keys, listing.skipped)


_R = TypeVar("_R")


# -- transform ----------------------------------------------------------------------------


def stage_dir_for(settings: Settings, run_id: str) -> Path:
    """The staging folder of one run (parse batches, the cache, tables, the DuckDB file)."""
    return settings.staging_dir / run_id


@dataclass
class Transformed:
    """The transform stage's output: where the staged tables are, and what was done.

    The core tables exist only as Parquet files (and in the staged DuckDB file) under
    `stage_dir`; an unchanged run builds nothing and its tables are the published ones.
    `manifest` and `rejected_files` are small per-file frames.
    """

    stage_dir: Path
    manifest: pl.DataFrame
    rejected_files: pl.DataFrame
    counts: dict[str, int]
    previous: RunState
    build_keys: BuildKeys
    files_read: int
    files_parsed: int
    files_reused: int
    files_deleted: int
    rejected_paths: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # the build's steps (benchmark)
    #: Every expectation's result as validated (published as validation_results).
    validation: list[ExpectationResult] = field(default_factory=list)
    files_skipped: int = 0
    keys_match: bool = False  # the published tables were built under this run's output key
    unchanged: bool = False  # the intact published tables are this run's (see `transform`)
    #: When changed pages gave the published rows: this run's per-page cache (their new hashes).
    restated: Path | None = None
    isolate: bool = False  # large input: DuckDB work runs in child processes (`in_child`)
    warnings: list[str] = field(default_factory=list)

    @property
    def row_counts(self) -> dict[str, int]:
        """Rows per data table."""
        return {**self.counts, "rejected_files": self.rejected_files.height}

    @property
    def files_rejected(self) -> int:
        """Files rejected in this run (new or unchanged)."""
        return self.rejected_files.height

    def table_path(self, name: str) -> Path:
        """The Parquet file of a core table: staged, or the published one if unchanged."""
        warehouse = self.stage_dir.parent.parent
        if self.unchanged:
            version = current_version(warehouse)
            assert version is not None  # an unchanged run has a published version
            return version / PARQUET_DIR / f"{name}.parquet"
        staged = self.stage_dir / "version" / PARQUET_DIR / f"{name}.parquet"
        published = warehouse / VERSIONS_DIR / self.stage_dir.name / PARQUET_DIR / staged.name
        return published if not staged.exists() and published.exists() else staged

    def state_path(self) -> Path:
        """The staged version's state folder (the parse cache), or the published one when a
        retried run's version already moved (see `table_path`)."""
        staged = self.stage_dir / "version" / STATE_DIR
        published = self.stage_dir.parent.parent / VERSIONS_DIR / self.stage_dir.name / STATE_DIR
        return published if not staged.exists() and published.exists() else staged

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        """Every data table read whole into frames (for small corpora: tests, reports)."""
        frames = {t.name: pl.read_parquet(self.table_path(t.name)) for t in BUILT_TABLES}
        return {**frames, "rejected_files": self.rejected_files, "manifest": self.manifest}

    def replace_table(self, name: str, frame: pl.DataFrame) -> None:
        """Overwrite a staged core table's Parquet file (tests: corrupt a table on purpose)."""
        assert not self.unchanged
        to_arrow_file(frame, TABLES_BY_NAME[name], self.table_path(name))


def to_arrow_file(frame: pl.DataFrame, table: Table, path: Path) -> None:
    """Write a frame as one declared table's Parquet file."""
    write_parquet({table.name: frame}, path.parent)  # cast to the table's schema as written


def transform(
    extracted: Extracted,
    settings: Settings,
    run_id: str,
    batches: Iterable[BatchResult] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Transformed:
    """Parse what changed, reuse what didn't, and build the de-duplicated tables (DuckDB).

    `batches`: the changed files already parsed elsewhere into this run's staging folder (the
    flow fans parsing out over its task runner); without it they are parsed here, and
    `progress` hears of each parsed batch. Nothing is built when the run would publish
    exactly what is published: the published version is trusted (`trusted_version`) and
    nothing was parsed or deleted, or what was gives the same rows (`same_rows`).
    """
    now = datetime.now(UTC)
    previous = extracted.previous
    stage_dir = make_dir(stage_dir_for(settings, run_id))
    batch_dir = stage_dir / "batches"
    to_parse = extracted.to_read
    reused = extracted.plan.filter(pl.col("reuse"))
    outcomes = [pl.DataFrame(schema=OUTCOME_SCHEMA)]
    results = parse_files(to_parse, settings, batch_dir) if batches is None else batches
    for number, batch in enumerate(results):
        outcomes.append(batch.outcomes)
        if number == 0:
            fault_point(settings, "transform:parsing")
        if progress is not None and batches is None:
            progress(batch.outcomes.height)
    parsed = pl.concat(outcomes)  # the files parsed now, as columns
    del outcomes
    # The reused files' outcomes are the manifest's, read there: no record is made for them
    # (a re-run reuses nearly every file: 0.3 KB each, in a process that then builds).
    manifest = _manifest(extracted, parsed, run_id, now)
    quarantined = _quarantined(parsed) | _quarantined(
        previous.manifest.join(reused, on="file_name", how="semi")
    )
    del parsed
    transformed = Transformed(
        stage_dir=stage_dir,
        manifest=manifest,
        rejected_files=(
            manifest.filter(pl.col("status") == REJECTED)
            .with_columns(quarantined=QUARANTINED)
            .select(REJECTED_FILES.column_names)
            .sort("file_name")
        ),
        counts={},
        previous=previous,
        build_keys=extracted.keys,
        files_read=extracted.plan.height,
        files_parsed=sum(f.ref.rejection is None for f in to_parse),  # read, not refused
        files_reused=reused.height,
        files_deleted=len(extracted.deleted),
        rejected_paths=extracted.paths(quarantined),
        files_skipped=extracted.skipped,
        keys_match=previous.build_key("output_key") == extracted.keys.output_key,
    )
    trusted = trusted_version(transformed, settings)
    published_tables = trusted / PARQUET_DIR if trusted is not None else None
    inputs = CacheInputs(batch_dir, previous.cache_dir, _reused_keys(reused), published_tables)
    transformed.isolate = input_bytes(inputs) > ISOLATE_BYTES

    def rows_as_published() -> bool:
        """Whether the pages parsed or deleted give the rows the published cache holds
        (a page whose bytes changed but not its data: whitespace, a site-wide header)."""
        touched = [f.ref.name for f in to_parse] + list(extracted.deleted)
        names = pa.Table.from_arrays([arrow_array(touched, pa.string())], names=["file_name"])
        target = stage_dir / RESTATED_DIR
        try:
            limits = _limits(settings)
            same = in_child(transformed.isolate, same_rows, inputs, names, target, limits)
        except OSError as exc:
            shutil.rmtree(stage_dir, ignore_errors=True)  # give the space back
            raise _staging_error(exc, settings.warehouse) from None
        transformed.restated = target if same else None
        return same

    changed = bool(transformed.files_parsed or transformed.files_deleted)
    transformed.unchanged = trusted is not None and (not changed or rows_as_published())
    if transformed.unchanged:
        children.release()  # nothing to validate
        transformed.counts = _published_counts(transformed)
    else:
        if transformed.isolate:
            children.release()  # a large build: an idle GX process would sit through it
        try:
            built = in_child(
                transformed.isolate, build_tables, stage_dir, inputs, _limits(settings)
            )
            transformed.counts, transformed.seconds = built.counts, built.seconds
        except OSError as exc:
            shutil.rmtree(stage_dir, ignore_errors=True)  # give the space back
            raise _staging_error(exc, settings.warehouse) from None
        except (MemoryLimitReached, StepProcessDied):
            shutil.rmtree(stage_dir, ignore_errors=True)
            raise
    shutil.rmtree(batch_dir, ignore_errors=True)  # merged into the staged cache
    return transformed


#: Where a run whose changed pages gave the published rows writes its per-page cache.
RESTATED_DIR = "restated"

#: Above this much input (parse batches + cache), the run's DuckDB work (the build, then the
#: page statistics, the ledger checks and the changed rows) runs in child processes: what
#: DuckDB's allocator keeps after a large query is then returned to the system when the child
#: exits, instead of staying in the run's process through validation and load.
ISOLATE_BYTES = 64 * 2**20


def input_bytes(inputs: CacheInputs) -> int:
    """Bytes of Parquet a build reads: this run's parse batches and the reused cache."""
    files = [*inputs.batch_dir.glob("*.parquet")]
    if inputs.previous_cache is not None:
        files += [*inputs.previous_cache.rglob("*.parquet")]
    return sum(f.stat().st_size for f in files)


def in_child(isolate: bool, fn: Callable[..., _R], *args: Any) -> _R:
    """`fn(*args)`, in a spawned child process when `isolate` (ops/children.py)."""
    return children.run_in_child(fn, *args) if isolate else fn(*args)


def _limits(settings: Settings) -> BuildLimits:
    return BuildLimits(memory_limit=settings.memory_limit, threads=settings.workers)


def _reused_keys(reused: pl.DataFrame) -> pa.Table:
    """(file_name, sha256) of the files whose cached rows are reused (plan rows), as an
    Arrow table of plain strings."""
    keys = reused.select("file_name", "sha256").to_arrow()
    return keys.cast(pa.schema([("file_name", pa.string()), ("sha256", pa.string())]))


def _published_counts(transformed: Transformed) -> dict[str, int]:
    """Row counts of the published core tables, from their Parquet footers."""
    return {t.name: pq.read_metadata(transformed.table_path(t.name)).num_rows for t in BUILT_TABLES}


def _build_row(keys: BuildKeys) -> dict[str, str]:
    """The build keys as one state row."""
    return {"parse_key": keys.parse_key, "output_key": keys.output_key}


#: A rejected file whose copy is kept in quarantine/ (a row of a manifest or of outcomes).
QUARANTINED = pl.col("reason_code").is_not_null() & ~pl.col("reason_code").is_in(
    list(NOT_COPIED_CODES)
)


def _quarantined(frame: pl.DataFrame) -> set[str]:
    """The names of the files a manifest or a batch's outcomes say are quarantined."""
    return set(frame.filter(QUARANTINED)["file_name"])


def _manifest(
    extracted: Extracted, parsed: pl.DataFrame, run_id: str, now: datetime
) -> pl.DataFrame:
    """The manifest after this run: every listed file, then every file the previous manifest
    knew that is gone (status `deleted`, otherwise as last seen). `parsed` holds the outcomes
    of the files parsed now (`OUTCOME_SCHEMA`); a reused file keeps its hash and its
    rejection as the previous manifest records them. Built column by column: a dict per row
    held 0.7 KB a file (140 MiB at 200k files) in the run's parent."""
    previous = extracted.previous.manifest
    schema = previous.schema
    current = extracted.plan.select(
        "file_name",
        pl.col("size").cast(schema["size"]),
        pl.col("mtime_ns").cast(schema["mtime_ns"]),
        pl.col("sha256").cast(schema["sha256"]).alias("planned_sha256"),
        "reuse",
    )
    kept = ("reason_code", "line", "message")
    known = previous.select(
        "file_name",
        "first_seen",
        "parsed_run_id",
        *(pl.col(c).alias(f"previous_{c}") for c in kept),
        known=pl.lit(True),
    )
    current = current.join(parsed, on="file_name", how="left", maintain_order="left")
    current = current.join(known, on="file_name", how="left", maintain_order="left")
    current = current.with_columns(  # a reused file: its hash as planned, its rejection kept
        pl.when(pl.col("reuse")).then(pl.col(f"previous_{c}")).otherwise(pl.col(c)).alias(c)
        for c in kept
    ).with_columns(
        sha256=pl.when(pl.col("reuse"))
        .then(pl.col("planned_sha256"))
        .otherwise(pl.col("sha256"))
        .cast(schema["sha256"])
    )
    current = current.with_columns(
        first_seen=pl.col("first_seen").fill_null(pl.lit(now, dtype=schema["first_seen"])),
        last_seen=pl.lit(now, dtype=schema["last_seen"]),
        status=pl.when(pl.col("reason_code").is_not_null())
        .then(pl.lit(REJECTED))
        .otherwise(pl.lit(LOADED)),
        parsed_run_id=pl.when(pl.col("reuse") & pl.col("known").fill_null(False))
        .then(pl.col("parsed_run_id"))
        .otherwise(pl.lit(run_id)),
    )
    gone = previous.filter(~pl.col("file_name").is_in(current["file_name"].implode()))
    gone = gone.with_columns(status=pl.lit(DELETED))
    return pl.concat([current.select(schema.names()), gone.select(schema.names())]).sort(
        "file_name"
    )


# -- validate -----------------------------------------------------------------------------


def validate(transformed: Transformed, settings: Settings) -> ValidationReport:
    """Run the suites on the core tables, the listing ledger and the run's page statistics
    (the layout drift alarm), and build Data Docs (raises nothing).

    When the published tables passed under the same suites and code (`keys_match`), the
    row-level expectations see only the rows that are new or changed since then; the
    set-level ones (keys, uniqueness, relationships) always see whole tables, split on disk
    first (`key_checks_for`) so that no process holds a large table's keys whole. The page
    statistics always describe the whole run (every page, reused ones too).
    """
    tables: dict[str, Path] = {t.name: transformed.table_path(t.name) for t in CORE_TABLES}
    stats = run_page_stats(transformed, settings)
    changed = changed_rows(transformed, settings) if transformed.keys_match else None
    tables["ledger"] = ledger_checks_for(transformed, settings)
    keys = key_checks_for(transformed, settings)
    if keys.relationships is not None:
        tables[RELATIONSHIPS] = keys.relationships
    return children.call_validator(
        validate_tables,
        tables,
        settings.data_docs_dir,
        changed=changed,
        page_stats=stats,
        key_parts=keys.parts,
    )


def key_checks_for(transformed: Transformed, settings: Settings) -> KeyChecks:
    """The relationships frame and the key partitions of tables over one chunk (DuckDB,
    memory bounded), staged for the suites that judge whole tables (`key_checks`)."""
    tables = {t.name: transformed.table_path(t.name) for t in CORE_TABLES}
    try:
        parts = key_part_counts(dict(tables))
    except TableUnreadable:  # the suites read the file and name it
        return KeyChecks(None, {})
    target = transformed.stage_dir / "checks"
    try:
        limits = _limits(settings)
        keys = key_columns()
        return in_child(transformed.isolate, key_checks, tables, keys, parts, target, limits)
    except OSError as exc:
        shutil.rmtree(transformed.stage_dir, ignore_errors=True)  # give the space back
        raise _staging_error(exc, settings.warehouse) from None


def ledger_checks_for(transformed: Transformed, settings: Settings) -> Path:
    """The ledger suite's input: one row of violation counts, staged as Parquet."""
    ledger = {t: transformed.table_path(t) for t in ("papers", "authorship", "listings")}
    ledger["page_links"] = transformed.state_path() / "page_links.parquet"
    target = transformed.stage_dir / "checks" / "ledger.parquet"
    try:
        return in_child(transformed.isolate, ledger_checks, ledger, target, _limits(settings))
    except OSError as exc:
        shutil.rmtree(transformed.stage_dir, ignore_errors=True)  # give the space back
        raise _staging_error(exc, settings.warehouse) from None


def run_page_stats(transformed: Transformed, settings: Settings) -> pl.DataFrame:
    """The run-level page statistics of the staged parse cache (one row)."""
    limits = _limits(settings)
    try:
        return in_child(
            transformed.isolate, page_stats, transformed.state_path(), limits.memory_limit
        )
    except OSError as exc:
        shutil.rmtree(transformed.stage_dir, ignore_errors=True)  # nothing is published
        raise WarehouseUnusable(
            f"cannot compute the page statistics: {exc}; the published warehouse is unchanged"
        ) from None


def changed_rows(transformed: Transformed, settings: Settings) -> dict[str, Path] | None:
    """Per core table, a Parquet file of its rows not in the published version (None when
    nothing trustworthy is published)."""
    published = current_version(settings.warehouse)
    if published is None or check_outputs(settings.warehouse) is not None:
        return None
    out = make_dir(transformed.stage_dir / "changed")
    old = {t.name: published / PARQUET_DIR / f"{t.name}.parquet" for t in CORE_TABLES}
    new = {t.name: transformed.table_path(t.name) for t in CORE_TABLES}
    try:
        return in_child(transformed.isolate, rows_not_in, new, old, out, _limits(settings))
    except OSError as exc:
        shutil.rmtree(transformed.stage_dir, ignore_errors=True)  # give the space back
        raise _staging_error(exc, settings.warehouse) from None


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
        "warnings": "\n".join(transformed.warnings) or None,
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


def trusted_version(transformed: Transformed, settings: Settings) -> Path | None:
    """The published version, if this run may take its tables as they are: no full refresh,
    built under this run's output key (code, suites, views, settings), and its files
    untouched since they were written. A run takes all of them when nothing was parsed or
    deleted, or when what was gives the same rows (see `transform`); the build takes the
    review queues whose inputs are unchanged.

    A damaged or altered output is never trusted: the run rebuilds everything and, when no
    file changed (so it would have carried the tables over), says why in a warning.
    """
    if settings.full_refresh or not transformed.keys_match:
        return None
    published = transformed.previous.runs.filter(pl.col("status") != "validation_failed")
    current = current_version(settings.warehouse)
    if published.is_empty() or current is None:
        return None
    problem = check_outputs(settings.warehouse)
    # The DuckDB file and the run state must come from the same run (a crash between their
    # two renames leaves them apart: then rebuild rather than trust either). Opening it also
    # lets DuckDB check its own file.
    if problem is None and published_run_id(settings.warehouse) != current.name:
        problem = "the DuckDB file does not open or is not the current version's"
    if problem is not None:
        if not (transformed.files_parsed or transformed.files_deleted):
            transformed.warnings.append(f"rebuilding the published tables: {problem}")
        return None
    return current


def carried_over_report(transformed: Transformed, settings: Settings) -> ValidationReport:
    """An unchanged run re-publishes tables that already passed: their report carries over."""
    last = transformed.previous.runs.filter(pl.col("status") != "validation_failed").sort("run_id")
    index = settings.data_docs_dir / "index.html"
    evaluated = int(last["expectations_evaluated"][-1])
    return ValidationReport(evaluated, [], index if index.exists() else None, carried_over=True)


@dataclass
class Loaded:
    """What the load stage published, and what went wrong after the commit point."""

    duckdb_path: Path
    warnings: list[str] = field(default_factory=list)


def load(
    transformed: Transformed,
    settings: Settings,
    record: dict[str, object],
) -> Loaded:
    """Finish the staged DuckDB file and Parquet, publish them atomically, and keep rejected
    files quarantined.

    An unchanged run (`transformed.unchanged`) re-stages the published version with only
    `manifest`, `runs` and `rejected_files` replaced (and the per-page cache, when changed
    pages gave the published rows). Safe to retry: every staging step can run twice, a retry
    after the version or the DuckDB file moved finishes the publish, and one after the commit
    point (the `current` swap) publishes nothing twice. Steps after the commit point only warn.
    """
    run_id = str(record["run_id"])
    stage_dir = transformed.stage_dir
    current = current_version(settings.warehouse)
    if current is None or current.name != run_id:
        try:
            _stage(transformed, settings, record, stage_dir)
        except OSError as exc:
            shutil.rmtree(stage_dir, ignore_errors=True)  # give the space back
            raise _staging_error(exc, settings.warehouse) from None
        fault_point(settings, "load:staged")
        publish_staged(
            stage_dir, settings.warehouse, run_id, lambda step: fault_point(settings, step)
        )
    loaded = Loaded(settings.duckdb_path)
    for step, action in (
        ("finish publishing", lambda: finish_publish(stage_dir, settings.warehouse)),
        (
            "update quarantine/",
            lambda: sync_quarantine(transformed.rejected_paths, settings.quarantine_dir),
        ),
    ):
        try:
            action()
        except OSError as exc:
            loaded.warnings.append(f"published, but could not {step}: {exc}")
    return loaded


def _stage(
    transformed: Transformed,
    settings: Settings,
    record: dict[str, object],
    stage_dir: Path,
) -> None:
    """Add this run's small tables, state and views to the staged version and DuckDB file."""
    unchanged = transformed.unchanged
    runs = runs_table(transformed.previous.runs, read_run_log(settings.warehouse), record)
    small = {
        "rejected_files": transformed.rejected_files,
        "manifest": transformed.manifest,
        "runs": runs,
    }
    if not unchanged:  # an unchanged run keeps the results of the pass it carries over
        small["validation_results"] = validation_frame(str(record["run_id"]), transformed)
    build = pl.DataFrame([_build_row(transformed.build_keys)], schema=BUILD_SCHEMA)
    # Frames, cast a slice at a time as they are written (the manifest has a row per file).
    state: dict[str, pa.Table | pl.DataFrame] = {
        "manifest": transformed.manifest,
        "runs": to_arrow(runs, TABLES_BY_NAME["runs"]),
        "build": build.to_arrow(),
    }
    version = stage_dir / "version"
    if unchanged:
        published = settings.warehouse / VERSIONS_DIR / str(record["run_id"])
        for leftover in (version, stage_dir / DUCKDB_FILE, published):
            if leftover.is_dir():
                shutil.rmtree(leftover)  # a retried load starts afresh
            else:
                leftover.unlink(missing_ok=True)
        restated = transformed.restated
        cache = {k: restated / f"{k}.parquet" for k in PAGE_KINDS} if restated else {}
        restage_current(settings.warehouse, stage_dir, small, state, cache)
    elif (stage_dir / DUCKDB_FILE).exists():
        # Else a retry after the DuckDB file moved: it was finished before it moved.
        finish_staged(stage_dir, small, state, _limits(settings).memory_limit)


def validation_frame(run_id: str, transformed: Transformed) -> pl.DataFrame:
    """The run's expectation results as validation_results rows."""
    rows = [
        {
            "run_id": run_id,
            "ordinal": number,
            "suite": r.suite,
            "expectation": r.expectation,
            "column_name": r.column,
            "status": r.status,
            "severity": r.severity,
            "observed": json.dumps(r.to_dict()["observed"], sort_keys=True),
            "description": r.description,
        }
        for number, r in enumerate(transformed.validation)
    ]
    return pl.DataFrame(rows, schema=VALIDATION_RESULTS.polars_schema)


def _staging_error(exc: OSError, warehouse: Path) -> Exception:
    """A named error for a failed staging write: the published warehouse is unchanged."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpaceLeft(
            f"no space left on the device while staging in {warehouse}; "
            "the published warehouse is unchanged"
        )
    return WarehouseUnusable(
        f"cannot write the new version into {warehouse}: {exc.strerror or exc}; "
        "the published warehouse is unchanged"
    )


# -- the run sequence -----------------------------------------------------------------------


@dataclass(frozen=True)
class Steps:
    """The stage functions one run calls. The flow passes its Prefect tasks; tests and the
    benchmark the plain functions (or timed ones). `parse` may parse the changed files ahead
    of `transform` (the flow fans batches out over its task runner); None parses inside it."""

    extract: Callable[[Settings], Extracted] = extract
    parse: Callable[
        [Extracted, Settings, str, Callable[[int], None] | None], list[BatchResult] | None
    ] = lambda _e, _s, _r, _p: None
    transform: Callable[..., Transformed] = transform
    validate: Callable[[Transformed, Settings], ValidationReport] = validate
    load: Callable[[Transformed, Settings, dict[str, object]], Loaded] = load


@dataclass
class Outcome:
    """What one run did: its record, tables, validation and what it published."""

    run_id: str
    record: dict[str, object]
    transformed: Transformed
    report: ValidationReport
    loaded: Loaded

    @property
    def warnings(self) -> list[str]:
        """Every warning of the run, in the order they arose."""
        return self.transformed.warnings + self.loaded.warnings


def run_sequence(
    settings: Settings,
    steps: Steps | None = None,
    progress: Callable[[int], None] | None = None,
    on_validated: Callable[[dict[str, object], Transformed, ValidationReport], None] | None = None,
) -> Outcome:
    """One run, the only place its order is written: lock, extract, parse, transform, then
    validate (or carry the last pass over when nothing changed), then publish.

    `on_validated` hears of every validated run, failed ones included (the flow publishes its
    artifact there). A failed validation is logged and raises ValidationFailed; nothing is
    published.
    """
    steps = steps or Steps()
    run_id, started_at = new_run_id(), datetime.now(UTC)
    check_seeds(settings.seeds)
    with exclusive_run(settings) as warnings:
        extracted = steps.extract(settings)
        batches = steps.parse(extracted, settings, run_id, progress)
        transformed = steps.transform(extracted, settings, run_id, batches, progress)
        transformed.warnings[:0] = warnings
        if transformed.unchanged:  # the published tables are this run's: they passed
            report = carried_over_report(transformed, settings)
        else:
            report = steps.validate(transformed, settings)
            transformed.warnings.extend(report.warnings)  # recorded with the run
            transformed.validation = report.results
        record = run_record(run_id, started_at, transformed, report, settings)
        if on_validated is not None:
            on_validated(record, transformed, report)
        if not report.success:
            record_failed_run(settings, record)
            shutil.rmtree(transformed.stage_dir, ignore_errors=True)  # nothing is published
            raise ValidationFailed(report)
        loaded = steps.load(transformed, settings, record)
    return Outcome(run_id, record, transformed, report, loaded)
