"""Write the tables (Parquet + DuckDB) into a staging folder, then publish them atomically.

Nothing here reads page files or pastes a value from a file into SQL text: tables arrive as
Arrow tables and are registered with DuckDB; DDL is generated from `transforms.schema`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.schema import ALL_TABLES, TABLES_BY_NAME, Table
from warehouse.views import create_views

DUCKDB_FILE = "authorgraph.duckdb"
PARQUET_DIR = "parquet"
# Files readable by DuckDB 1.4+ (many BI drivers and CLIs still ship 1.x).
STORAGE_COMPATIBILITY = "v1.4.0"
_DUCKDB_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN"}


class WarehouseError(Exception):
    """The warehouse could not be read or written."""


def sql_literal(text: str) -> str:
    """Quote a constant from this codebase (a comment) as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def table_ddl(table: Table) -> list[str]:
    """CREATE TABLE (with keys) and COMMENT statements for one declared table."""
    lines = [
        f"{c.name} {_DUCKDB_TYPES[c.dtype]}{'' if c.nullable else ' NOT NULL'}"
        for c in table.columns
    ]
    lines.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
    lines += [
        f"FOREIGN KEY ({fk.column}) REFERENCES {fk.ref_table} ({fk.ref_column})"
        for fk in table.foreign_keys
    ]
    statements = [f"CREATE TABLE {table.name} (\n  " + ",\n  ".join(lines) + "\n)"]
    statements.append(f"COMMENT ON TABLE {table.name} IS {sql_literal(table.comment)}")
    statements += [
        f"COMMENT ON COLUMN {table.name}.{c.name} IS {sql_literal(c.comment)}"
        for c in table.columns
    ]
    return statements


def write_parquet(tables: Mapping[str, pa.Table], out_dir: Path) -> dict[str, Path]:
    """Write each table to `<out_dir>/<name>.parquet` (zstd), cast to its declared schema."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in tables.items():
        path = out_dir / f"{name}.parquet"
        pq.write_table(table.cast(TABLES_BY_NAME[name].arrow_schema), path, compression="zstd")
        paths[name] = path
    return paths


def build_duckdb(db_path: Path, tables: Mapping[str, pa.Table]) -> None:
    """Create a new DuckDB file with every declared table, its keys, comments and rows."""
    if db_path.exists():
        db_path.unlink()
    con = duckdb.connect(
        str(db_path), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}
    )
    try:
        con.execute("BEGIN")
        for table in ALL_TABLES:
            for statement in table_ddl(table):
                con.execute(statement)
            data = tables[table.name].cast(table.arrow_schema)
            con.register("incoming", data)
            con.execute(f"INSERT INTO {table.name} SELECT * FROM incoming")
            con.unregister("incoming")
        create_views(con)
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def stage_warehouse(tables: Mapping[str, pa.Table], stage_dir: Path) -> Path:
    """Write Parquet and a complete DuckDB file into `stage_dir`; return it."""
    write_parquet(tables, stage_dir / PARQUET_DIR)
    build_duckdb(stage_dir / DUCKDB_FILE, tables)
    return stage_dir


def publish_staged(stage_dir: Path, warehouse: Path) -> None:
    """Move a staged build into place: each file with one atomic `os.replace`."""
    target_parquet = warehouse / PARQUET_DIR
    target_parquet.mkdir(parents=True, exist_ok=True)
    for staged in sorted((stage_dir / PARQUET_DIR).glob("*.parquet")):
        os.replace(staged, target_parquet / staged.name)
    db_target = warehouse / DUCKDB_FILE
    # A WAL left by a crashed writer would not match the new file: drop it first.
    wal = db_target.with_name(db_target.name + ".wal")
    if wal.exists():
        wal.unlink()
    os.replace(stage_dir / DUCKDB_FILE, db_target)
    shutil.rmtree(stage_dir, ignore_errors=True)


def sync_quarantine(rejected: Mapping[str, Path], quarantine: Path) -> None:
    """Keep a copy of each rejected file (name → source path); drop copies no longer rejected."""
    quarantine.mkdir(parents=True, exist_ok=True)
    for name, source in rejected.items():
        tmp = quarantine / f".{name}.tmp"
        shutil.copyfile(source, tmp)
        os.replace(tmp, quarantine / name)
    for existing in quarantine.iterdir():
        if existing.name not in rejected and not existing.name.startswith("."):
            existing.unlink()


def connect_read_only(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """Open the published DuckDB file read-only (as a BI tool would)."""
    path = warehouse / DUCKDB_FILE
    if not path.exists():
        raise WarehouseError(f"no published warehouse at {path}: run `authorgraph run` first")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise WarehouseError(f"cannot open {path} read-only: {exc}") from None


def read_published_tables(warehouse: Path) -> dict[str, pa.Table]:
    """Read every published table back from the DuckDB file."""
    con = connect_read_only(warehouse)
    try:
        return {t.name: con.sql(f"SELECT * FROM {t.name}").to_arrow_table() for t in ALL_TABLES}
    finally:
        con.close()


def run_query(warehouse: Path, query: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """Run a query on a read-only connection; return column names and rows."""
    con = connect_read_only(warehouse)
    try:
        cursor = con.execute(query)
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()
    except duckdb.Error as exc:
        raise WarehouseError(f"query failed: {exc}") from None
    finally:
        con.close()
