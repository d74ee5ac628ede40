"""The DuckDB file: keys, comments, compatibility and atomic publish (no Prefect)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from authorgraph.pipelines.load.publish import WarehouseError, read_published_tables, run_query
from authorgraph.transforms.schema import ALL_TABLES


@pytest.fixture
def warehouse(seeds_warehouse: Path) -> Path:
    """The session's warehouse built from seeds/ (these tests only read it)."""
    return seeds_warehouse


def test_tables_declare_keys(warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse / "authorgraph.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "select table_name, constraint_type, constraint_column_names "
            "from duckdb_constraints() where constraint_type in ('PRIMARY KEY', 'FOREIGN KEY')"
        ).fetchall()
    finally:
        con.close()
    found = {(t, kind, tuple(cols)) for t, kind, cols in rows}
    assert ("authors", "PRIMARY KEY", ("author_id",)) in found
    assert ("papers", "PRIMARY KEY", ("paper_id",)) in found
    assert ("authorship", "PRIMARY KEY", ("author_id", "paper_id")) in found
    assert ("authorship", "FOREIGN KEY", ("author_id",)) in found
    assert ("authorship", "FOREIGN KEY", ("paper_id",)) in found
    assert ("rejected_files", "PRIMARY KEY", ("file_name",)) in found


def test_every_table_and_column_has_a_comment(warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse / "authorgraph.duckdb"), read_only=True)
    try:
        tables = dict(con.execute("select table_name, comment from duckdb_tables()").fetchall())
        columns = con.execute(
            "select table_name, column_name, comment from duckdb_columns() "
            "where not internal and schema_name = 'main'"
        ).fetchall()
    finally:
        con.close()
    for table in ALL_TABLES:
        assert tables[table.name] == table.comment
    declared = {(t.name, c.name): c.comment for t in ALL_TABLES for c in t.columns}
    assert {(t, c): comment for t, c, comment in columns} == declared


def test_long_texts_are_stored_zstd_compressed(warehouse: Path) -> None:
    """Columns declared long_text (abstracts) are ZSTD in the DuckDB file; the rest keep
    DuckDB's own choice (a key column is never ZSTD)."""
    long_texts = {(t.name, c.name) for t in ALL_TABLES for c in t.columns if c.long_text}
    assert ("papers", "abstract") in long_texts
    con = duckdb.connect(str(warehouse / "authorgraph.duckdb"), read_only=True)
    try:
        for table, column in [*long_texts, ("papers", "paper_id")]:
            methods = {
                row[0]
                for row in con.execute(
                    "select compression from pragma_storage_info(?) "
                    "where column_name = ? and segment_type = 'VARCHAR'",
                    [table, column],
                ).fetchall()
            }
            assert ("ZSTD" in methods) == ((table, column) in long_texts), (table, column)
    finally:
        con.close()


def test_foreign_keys_are_enforced(warehouse: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes((warehouse / "authorgraph.duckdb").read_bytes())
    con = duckdb.connect(str(copy))
    try:
        with pytest.raises(duckdb.ConstraintException):
            con.execute("insert into authorship values ('nope', 'nope', 'x.txt')")
    finally:
        con.close()


def test_published_tables_read_back_with_declared_schema(warehouse: Path) -> None:
    tables = read_published_tables(warehouse)
    for table in ALL_TABLES:
        assert tables[table.name].schema.names == table.column_names
        assert tables[table.name].schema.types == [c.dtype for c in table.columns]
    assert tables["papers"].num_rows == 25


def test_sql_is_read_only(warehouse: Path) -> None:
    with pytest.raises(WarehouseError, match="read-only"):
        run_query(warehouse, "delete from papers")
    assert run_query(warehouse, "select count(*) from papers")[1] == [(25,)]


def test_no_staging_left_behind(warehouse: Path) -> None:
    assert not any((warehouse / ".staging").glob("*"))


def test_tables_are_written_and_inserted_a_slice_at_a_time_unchanged(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The small tables (the manifest has a row per input file: 2M at 2M pages) are written
    `WRITE_ROWS` rows at a time and DuckDB inserts them from that file: the same rows and the
    declared schema as the whole table, extra state columns dropped, `declared=False`
    keeping the frame's own types."""
    import polars as pl
    import pyarrow.parquet as pq

    from authorgraph.pipelines.load import publish
    from authorgraph.pipelines.load.state import MANIFEST_STATE_SCHEMA
    from authorgraph.transforms.schema import TABLES_BY_NAME

    published = read_published_tables(warehouse)["manifest"]
    frame = pl.from_arrow(published)
    assert isinstance(frame, pl.DataFrame)
    state = frame.with_columns(  # as the run state holds it
        reason_code=pl.lit("X"), line=pl.lit(1, dtype=pl.Int64), message=pl.lit("m")
    )
    assert state.schema == MANIFEST_STATE_SCHEMA
    monkeypatch.setattr(publish, "WRITE_ROWS", 2)
    written = publish.write_parquet({"manifest": state}, tmp_path / "declared")["manifest"]
    kept = publish.write_parquet({"manifest": state}, tmp_path / "state", declared=False)
    assert pq.ParquetFile(written).metadata.num_row_groups == (state.height + 1) // 2
    assert pq.read_table(written).equals(published)  # every slice, in order, declared types
    assert pl.read_parquet(kept["manifest"]).equals(state)
    with duckdb.connect() as con:
        for statement in publish.table_ddl(TABLES_BY_NAME["manifest"]):
            con.execute(statement)
        publish.insert_from_parquet(con, "manifest", written)
        inserted = con.sql("SELECT * FROM manifest").to_arrow_table()
    assert inserted.cast(published.schema).equals(published)
