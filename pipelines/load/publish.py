"""Build the warehouse in a staging folder, then publish it with atomic renames.

The folder's layout is named once, in `layout.py`.

Nothing here reads page files or pastes a value from a file into SQL text: tables arrive as
Arrow tables and are registered with DuckDB; DDL is generated from `authorgraph.transforms.schema`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from authorgraph.pipelines.load.errors import (
    NoSpaceLeft,
    WarehouseDamaged,
    WarehouseError,
    WarehouseUnusable,
)
from authorgraph.pipelines.load.layout import (
    CURRENT_LINK,
    DUCKDB_FILE,
    OUTPUTS_FILE,
    PARQUET_DIR,
    STAGING_DIR,
    STATE_DIR,
    VERSIONS_DIR,
)
from authorgraph.pipelines.load.safe_io import (
    UnsafePathError,
    atomic_copy,
    is_temp_name,
    real_dir,
    restrict_umask,
)
from authorgraph.pipelines.load.views import create_views
from authorgraph.transforms.schema import ALL_TABLES, TABLES_BY_NAME, Table

__all__ = [
    "DUCKDB_FILE",
    "PARQUET_DIR",
    "STATE_DIR",
    "VERSIONS_DIR",
    "NoSpaceLeft",
    "WarehouseDamaged",
    "WarehouseError",
    "WarehouseUnusable",
]

# Files readable by DuckDB 1.4+ (many BI drivers and CLIs still ship 1.x).
STORAGE_COMPATIBILITY = "v1.4.0"
_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}

Step = Callable[[str], None]


# `authorgraph sql` and every other reader: the warehouse file and nothing else. No file is read
# or written outside it (COPY, EXPORT, read_csv/read_text/glob, ATTACH), no extension is
# installed or loaded from disk or network, and no setting can be changed back (SET, RESET,
# PRAGMA ... = ...). DuckDB's Python replacement scans are off too.
READ_ONLY_CONFIG: dict[str, str | bool] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_extension_repositories": "forbidden",
    "allow_persistent_secrets": False,
    "lock_configuration": True,  # SET/RESET/PRAGMA can change none of the above
}


def _no_step(_: str) -> None:
    return None


def no_world_write(path: Path) -> None:
    """Drop group- and world-write permission from a file or folder this code created."""
    info = path.lstat()
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not stat.S_ISLNK(info.st_mode):
        os.chmod(path, mode & ~(stat.S_IWGRP | stat.S_IWOTH))


def make_dir(path: Path) -> Path:
    """Create a folder (and missing parents) without group- or world-write permission."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for created in missing:
        no_world_write(created)
    return path


def deny_world_write() -> None:
    """Make this process create nothing group- or world-writable, whatever the user's umask."""
    restrict_umask()


def sql_literal(text: str) -> str:
    """Quote a constant from this codebase (a comment) as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


#: Said in a table's COMMENT when DuckDB does not enforce its keys (see `table_ddl`).
KEYS_NOT_ENFORCED = (
    "Keys not enforced by DuckDB in this file (their index would not fit the memory limit; "
    "which ones validation checks: docs/data-model.md, Keys at scale): "
)


def table_ddl(table: Table, keys: bool = True) -> list[str]:
    """CREATE TABLE and COMMENT statements for one declared table. With `keys`, its primary
    and foreign keys are constraints; without, they are only named in the table's COMMENT
    (DuckDB's key index must fit in memory and cannot spill)."""
    lines = [
        f"{c.name} {_DUCKDB_TYPES[c.dtype]}{'' if c.nullable else ' NOT NULL'}"
        + (" USING COMPRESSION zstd" if c.long_text else "")
        for c in table.columns
    ]
    constraints = [f"PRIMARY KEY ({', '.join(table.primary_key)})"]
    constraints += [
        f"FOREIGN KEY ({fk.column}) REFERENCES {fk.ref_table} ({fk.ref_column})"
        for fk in table.foreign_keys
    ]
    comment = table.comment
    if keys:
        lines += constraints
    else:
        comment = f"{comment} {KEYS_NOT_ENFORCED}{'; '.join(constraints)}."
    statements = [f"CREATE TABLE {table.name} (\n  " + ",\n  ".join(lines) + "\n)"]
    statements.append(f"COMMENT ON TABLE {table.name} IS {sql_literal(comment)}")
    statements += [
        f"COMMENT ON COLUMN {table.name}.{c.name} IS {sql_literal(c.comment)}"
        for c in table.columns
    ]
    return statements


#: Rows per slice when writing a table to Parquet: a table with a row per input file (the
#: manifest: 2M rows at 2M pages) is converted and cast a slice at a time, never whole.
WRITE_ROWS = 131_072

Frame = pa.Table | pl.DataFrame  # a table to write: Arrow, or a polars frame not yet converted


def write_parquet(
    tables: Mapping[str, Frame], out_dir: Path, declared: bool = True
) -> dict[str, Path]:
    """Write each table to `<out_dir>/<name>.parquet` (zstd), cast to its declared schema
    (`declared=False`: as it is), `WRITE_ROWS` rows at a time."""
    make_dir(out_dir)
    paths = {}
    for name, table in tables.items():
        path = out_dir / f"{name}.parquet"
        _write_slices(table, path, TABLES_BY_NAME[name].arrow_schema if declared else None)
        no_world_write(path)
        paths[name] = path
    return paths


def _write_slices(data: Frame, path: Path, schema: pa.Schema | None) -> None:
    """One Parquet file from `data`, a slice at a time: at 2M pages, converting the manifest
    whole (to Arrow, cast, then once more for DuckDB) took 1.3 GiB at the end of a run."""
    rows = data.num_rows if isinstance(data, pa.Table) else data.height
    writer: pq.ParquetWriter | None = None
    try:
        for offset in range(0, max(rows, 1), WRITE_ROWS):
            part = data.slice(offset, WRITE_ROWS)
            arrow = part.to_arrow() if isinstance(part, pl.DataFrame) else part
            if schema is not None:
                arrow = arrow.select(schema.names).cast(schema)
            if writer is None:
                writer = pq.ParquetWriter(path, arrow.schema, compression="zstd")
            writer.write_table(arrow)
    finally:
        if writer is not None:
            writer.close()


def insert_from_parquet(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> None:
    """Fill table `name` from the Parquet file written for it: DuckDB reads it in row
    groups, so no second copy of a large table is held to insert it."""
    con.execute(f"INSERT INTO {name} SELECT * FROM read_parquet(?)", [str(path)])


#: DuckDB draws a progress bar on stdout for queries over 2 s, even into a log file.
NO_PROGRESS_BAR = "SET enable_progress_bar = false"


@contextmanager
def one_thread(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block's queries on one DuckDB thread, then give the connection its threads
    back (each thread of a scan holds a row group, each thread of an insert its own state)."""
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {int(threads)}")


@contextmanager
def os_errors() -> Iterator[None]:
    """DuckDB's I/O errors as OSError (a full disk as ENOSPC), so callers handle one kind."""
    try:
        yield
    except duckdb.Error as exc:
        # A write that fails at commit arrives as a TransactionException, not an IOException.
        text = str(exc).lower()
        full = "no space left" in text
        if not (full or isinstance(exc, duckdb.IOException) or "could not write" in text):
            raise
        raise OSError(errno.ENOSPC if full else errno.EIO, str(exc)) from None


SMALL_TABLES = ("rejected_files", "manifest", "runs", "validation_results")


def finish_staged(
    stage_dir: Path,
    tables: Mapping[str, Frame],
    state: Mapping[str, Frame],
    memory_limit: str = "512MB",
) -> Path:
    """Complete a staged version whose core tables are built: write the small tables
    (rejected_files, manifest, runs, validation_results) and the run state, add them and the
    views to the staged DuckDB file, and record every output. Safe to run twice."""
    written = write_parquet(tables, stage_dir / "version" / PARQUET_DIR)
    write_parquet(state, stage_dir / "version" / STATE_DIR, declared=False)
    db_path = stage_dir / DUCKDB_FILE
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": memory_limit,
        "storage_compatibility_version": STORAGE_COMPATIBILITY,
    }
    with os_errors(), closing(duckdb.connect(str(db_path), config=config)) as con:
        con.execute(NO_PROGRESS_BAR)
        con.execute("BEGIN")
        con.execute("DROP SCHEMA IF EXISTS analytics CASCADE")
        for name in SMALL_TABLES:
            table = TABLES_BY_NAME[name]
            con.execute(f"DROP TABLE IF EXISTS {name}")
            for statement in table_ddl(table):
                con.execute(statement)
            insert_from_parquet(con, name, written[name])
        create_views(con)
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    no_world_write(db_path)
    shutil.rmtree(stage_dir / "spill", ignore_errors=True)
    record_outputs(stage_dir)
    return stage_dir


def record_outputs(stage_dir: Path) -> None:
    """Write the size and modification time of every staged output (DuckDB file, Parquet,
    state) into the version, so the next run can check cheaply that they are untouched.
    Renames keep both, so the record stays true once the files are published."""
    version = stage_dir / "version"
    record = {
        p.relative_to(version).as_posix(): [p.stat().st_size, p.stat().st_mtime_ns]
        for p in sorted(version.rglob("*.parquet"))
    }
    db = (stage_dir / DUCKDB_FILE).stat()
    record[DUCKDB_FILE] = [db.st_size, db.st_mtime_ns]
    path = version / OUTPUTS_FILE
    path.write_text(json.dumps(record, indent=0), encoding="utf-8")
    no_world_write(path)


def check_outputs(warehouse: Path) -> str | None:
    """None when every published output still has the size and mtime recorded when it was
    published; else what changed (a cheap check: no file is read or hashed)."""
    version = current_version(warehouse)
    if version is None:
        return "nothing is published"
    try:
        record = json.loads((version / OUTPUTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{version.name}/{OUTPUTS_FILE} is missing or unreadable"
    for name, (size, mtime_ns) in record.items():
        path = warehouse / DUCKDB_FILE if name == DUCKDB_FILE else version / name
        try:
            info = path.stat()
        except OSError:
            return f"{name} is missing"
        if (info.st_size, info.st_mtime_ns) != (size, mtime_ns):
            return f"{name} changed after it was published"
    return None


def restage_current(
    warehouse: Path,
    stage_dir: Path,
    tables: Mapping[str, Frame],
    state: Mapping[str, Frame],
    state_files: Mapping[str, Path] | None = None,
) -> Path:
    """Stage the published version again with only some tables replaced (a no-change run).

    The DuckDB file is copied and the given tables are replaced inside it; every other Parquet
    and state file is hard-linked from the current version, so nothing large is rewritten.
    `state_files`: state files written already, linked in by name (`<name>.parquet`).
    """
    current = current_version(warehouse)
    if current is None:
        raise WarehouseError(f"nothing published in {warehouse} to carry over")
    make_dir(stage_dir)
    files = state_files or {}
    for folder, replaced in ((PARQUET_DIR, set(tables)), (STATE_DIR, {*state, *files})):
        target = make_dir(stage_dir / "version" / folder)
        for existing in sorted((current / folder).rglob("*.parquet")):  # parts in subfolders
            relative = existing.relative_to(current / folder)
            if relative.parent == Path(".") and existing.stem in replaced:
                continue
            make_dir((target / relative).parent)
            os.link(existing, target / relative)
    written = write_parquet(tables, stage_dir / "version" / PARQUET_DIR)
    write_parquet(state, stage_dir / "version" / STATE_DIR, declared=False)
    for name, path in files.items():
        os.link(path, stage_dir / "version" / STATE_DIR / f"{name}.parquet")  # kept: a retry
    db_path = stage_dir / DUCKDB_FILE
    shutil.copyfile(warehouse / DUCKDB_FILE, db_path)
    with os_errors(), closing(duckdb.connect(str(db_path))) as con:
        con.execute(NO_PROGRESS_BAR)
        con.execute("BEGIN")
        for name, path in written.items():
            con.execute(f"DELETE FROM {name}")
            insert_from_parquet(con, name, path)
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    no_world_write(db_path)
    record_outputs(stage_dir)
    return stage_dir


def _swap_symlink(link: Path, target: str) -> None:
    tmp = link.with_name(f".{link.name}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def publish_staged(stage_dir: Path, warehouse: Path, run_id: str, on_step: Step = _no_step) -> None:
    """Publish a staged run: version folder in place, DuckDB file replaced, `current` swapped.

    Each step is one atomic rename, so a reader sees the old or the new version of each file,
    never a mix, and a run killed between two steps leaves a readable warehouse behind. The
    `current` swap is the commit point; a retry after it finds the run published and stops.
    """
    versions = make_dir(warehouse / VERSIONS_DIR)
    target = versions / run_id
    current = current_version(warehouse)
    if current is not None and current.name == run_id:
        return  # a retry of a publish that already committed
    if (stage_dir / "version").is_dir():
        if target.is_dir():  # a retry after the version moved: it was never made current
            shutil.rmtree(target)
        os.rename(stage_dir / "version", target)
    on_step("publish:version_moved")
    db_target = warehouse / DUCKDB_FILE
    if (stage_dir / DUCKDB_FILE).exists():
        # A WAL left by a crashed writer would not match the new file: drop it first.
        wal = db_target.with_name(db_target.name + ".wal")
        if wal.exists() or wal.is_symlink():
            wal.unlink()
        os.replace(stage_dir / DUCKDB_FILE, db_target)
    on_step("publish:duckdb_replaced")
    # The run state moves last: a run killed before this point leaves the old state, so the
    # next run sees its changes as still pending and redoes them.
    _swap_symlink(warehouse / CURRENT_LINK, f"{VERSIONS_DIR}/{run_id}")
    on_step("publish:current_swapped")


def finish_publish(stage_dir: Path, warehouse: Path) -> None:
    """After the commit point: the stable `parquet` link and the staging folder's removal."""
    parquet_link, target = warehouse / PARQUET_DIR, f"{CURRENT_LINK}/{PARQUET_DIR}"
    if parquet_link.is_dir() and not parquet_link.is_symlink():
        shutil.rmtree(parquet_link)  # a warehouse from before versioned publishing
    if not parquet_link.is_symlink() or os.readlink(parquet_link) != target:
        _swap_symlink(parquet_link, target)  # also re-points a link planted elsewhere
    shutil.rmtree(stage_dir, ignore_errors=True)


def current_version(warehouse: Path) -> Path | None:
    """The published version folder, or None before the first publish."""
    link = warehouse / CURRENT_LINK
    if not link.is_symlink():
        return None
    target = link.resolve()
    versions = (warehouse / VERSIONS_DIR).resolve()
    return target if target.is_dir() and target.parent == versions else None


def recover_current(warehouse: Path) -> str | None:
    """Point a missing or dangling `current` link back at the published version.

    The version is the one the published DuckDB file names as its last run, else the newest
    version folder with run state. Returns a warning line when it repaired the link.
    """
    versions = warehouse / VERSIONS_DIR
    if current_version(warehouse) is not None or versions.is_symlink() or not versions.is_dir():
        return None
    candidates = sorted(
        p.name for p in versions.iterdir() if not p.is_symlink() and (p / STATE_DIR).is_dir()
    )
    if not candidates:
        return None
    published = published_run_id(warehouse)
    chosen = published if published in candidates else candidates[-1]
    _swap_symlink(warehouse / CURRENT_LINK, f"{VERSIONS_DIR}/{chosen}")
    return f"the `current` link was missing or broken; restored it to {VERSIONS_DIR}/{chosen}"


def _remove(path: Path) -> None:
    """Remove a file, a symlink (never what it points to) or a folder tree."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def clean_leftovers(warehouse: Path, keep_versions: int = 2) -> list[Path]:
    """Remove staging folders of killed runs and all but the newest published versions.

    Call only while holding the writer lock. The current version is always kept, and no
    version is removed while there is no current one. A symlink planted in place of a
    folder is removed itself; nothing is deleted through it.
    """
    removed: list[Path] = []
    staging = warehouse / STAGING_DIR
    if staging.is_symlink():
        _remove(staging)
        removed.append(staging)
    elif staging.is_dir():
        for leftover in staging.iterdir():
            _remove(leftover)
            removed.append(leftover)
    versions = warehouse / VERSIONS_DIR
    if versions.is_symlink():
        raise UnsafePathError(f"refusing to publish into {versions}: it is a symlink")
    current = current_version(warehouse)
    if current is not None and versions.is_dir():
        old = sorted(p for p in versions.iterdir() if p.name != current.name)
        for stale in old[: max(len(old) - (keep_versions - 1), 0)]:
            _remove(stale)
            removed.append(stale)
    return removed


def sync_quarantine(rejected: Mapping[str, Path], quarantine: Path) -> None:
    """Keep a copy of each rejected file (name → source path); drop copies no longer rejected.

    A `quarantine` symlink planted in the warehouse is replaced by a real folder (its target is
    never written or emptied); each copy is written to a fresh temporary file and renamed into
    place, so a planted link at a copy's name is replaced, not followed.
    """
    real_dir(quarantine)
    no_world_write(quarantine)
    for existing in quarantine.iterdir():
        if is_temp_name(existing.name):
            existing.unlink()  # a temporary copy left by a killed run
    for name, source in rejected.items():
        atomic_copy(source, quarantine / name)
    for existing in quarantine.iterdir():
        if existing.name not in rejected and not existing.name.startswith("."):
            existing.unlink()


def _one_line(exc: Exception) -> str:
    """DuckDB's message on one line (without the `LINE 1: ...` caret excerpt)."""
    text = str(exc).split("\n\nLINE ", 1)[0]
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def connect_read_only(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """Open the published DuckDB file read-only (as a BI tool would), sandboxed.

    The connection reads that file and nothing else: see READ_ONLY_CONFIG.
    """
    path = warehouse / DUCKDB_FILE
    if not path.exists():
        raise WarehouseError(f"no published warehouse at {path}: run `authorgraph run` first")
    try:
        return duckdb.connect(str(path), read_only=True, config=dict(READ_ONLY_CONFIG))
    except duckdb.Error as exc:
        raise WarehouseDamaged(f"cannot open {path} read-only: {_one_line(exc)}") from None


def published_run_id(warehouse: Path) -> str | None:
    """The run that published the current DuckDB file (its newest non-failed `runs` row)."""
    try:
        con = connect_read_only(warehouse)
    except WarehouseError:
        return None
    try:
        row = con.execute(
            "SELECT max(run_id) FROM runs WHERE status <> 'validation_failed'"
        ).fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return row[0] if row else None


def read_published_tables(warehouse: Path) -> dict[str, pa.Table]:
    """Read every published table back from the DuckDB file."""
    con = connect_read_only(warehouse)
    try:
        return {
            t.name: con.sql(f"SELECT * FROM {t.name}").to_arrow_table().cast(t.arrow_schema)
            for t in ALL_TABLES
        }
    except (duckdb.Error, pa.ArrowInvalid) as exc:  # a damaged block, a changed table
        raise WarehouseDamaged(
            f"cannot read the tables of {warehouse / DUCKDB_FILE}: {_one_line(exc)}"
        ) from None
    finally:
        con.close()


def run_query(warehouse: Path, query: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """Run a query on a sandboxed read-only connection; return column names and rows.

    Anything but reading the warehouse (writing or reading other files, ATTACH, INSTALL, LOAD,
    changing settings) fails with a one-line WarehouseError.
    """
    con = connect_read_only(warehouse)
    try:
        cursor = con.execute(query)
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()
    except duckdb.Error as exc:
        raise WarehouseError(f"query failed: {_one_line(exc)}") from None
    finally:
        con.close()
