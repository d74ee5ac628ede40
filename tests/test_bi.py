"""What BI tools do with the published warehouse: SQLAlchemy reflection, pandas, Parquet readers,
a second read-only process, and a real DuckDB 1.x reader (the `duckdb-cli` package)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from authorgraph.pipelines.load.views import view_names
from authorgraph.transforms.schema import ALL_TABLES
from tests.conftest import ROOT

#: DuckDB 1.x CLIs to test against: 1.4 (the LTS line the file is written for) and the newest 1.x.
#: The Makefile's DUCKDB_CLI_VERSIONS installs the same list.
DUCKDB_CLI_VERSIONS = ("1.4.4", "1.5.6")
CLI_CACHE = ROOT / ".cache"


@pytest.fixture
def engine(seeds_warehouse: Path) -> Iterator[sa.Engine]:
    """The engine a BI tool would build: duckdb-engine URL, read-only.

    Disposed after each test: duckdb-engine opens the file with its own settings, and DuckDB
    refuses a second in-process connection to the same file with different settings."""
    url = f"duckdb:///{seeds_warehouse / 'authorgraph.duckdb'}"
    engine = sa.create_engine(url, connect_args={"read_only": True})
    yield engine
    engine.dispose()


@pytest.fixture
def inspector(engine: sa.Engine) -> sa.Inspector:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "doesn't yet support reflection on indices"
        return sa.inspect(engine)


def test_reflect_schemas_tables_and_views(inspector: sa.Inspector) -> None:
    schemas = inspector.get_schema_names()
    assert "authorgraph.main" in schemas and "authorgraph.analytics" in schemas
    assert sorted(inspector.get_table_names()) == sorted(t.name for t in ALL_TABLES)
    assert inspector.get_view_names(schema="analytics") == [
        name.split(".")[1] for name in view_names()
    ]
    coauthors = inspector.get_table_comment("coauthors", schema="analytics")["text"]
    assert coauthors and "co-author graph" in coauthors


def test_reflect_columns_with_types_nullability_and_comments(inspector: sa.Inspector) -> None:
    for table in ALL_TABLES:
        columns = inspector.get_columns(table.name)
        assert [c["name"] for c in columns] == table.column_names
        assert [c["nullable"] for c in columns] == [c.nullable for c in table.columns]
        assert [c["comment"] for c in columns] == [c.comment for c in table.columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # list columns reflect as NullType ("Did not recognize")
        view_columns = inspector.get_columns("coauthors", schema="analytics")
    assert [(c["name"], str(c["type"])) for c in view_columns] == [
        ("author_id_a", "VARCHAR"),
        ("display_name_a", "VARCHAR"),
        ("author_id_b", "VARCHAR"),
        ("display_name_b", "VARCHAR"),
        ("shared_papers", "BIGINT"),
    ]
    assert all(c["comment"] for c in view_columns)


def test_reflect_foreign_keys(inspector: sa.Inspector) -> None:
    fks = inspector.get_foreign_keys("authorship")
    assert sorted(
        (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]) for fk in fks
    ) == [(["author_id"], "authors", ["author_id"]), (["paper_id"], "papers", ["paper_id"])]


def test_primary_keys(inspector: sa.Inspector, engine: sa.Engine) -> None:
    """SQLAlchemy 2.0.43-2.0.54 with duckdb-engine 0.17 reflect an empty primary key (2.0.55+
    and 2.1 raise instead): the keys are declared, and a BI tool can read them from
    `duckdb_constraints()` over the same connection."""
    for table in ALL_TABLES:
        reflected = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert reflected in ([], list(table.primary_key))
    query = sa.text(
        "select table_name, constraint_column_names from duckdb_constraints() "
        "where constraint_type = 'PRIMARY KEY'"
    )
    with engine.connect() as connection:
        found = {table: list(columns) for table, columns in connection.execute(query)}
    assert found == {t.name: list(t.primary_key) for t in ALL_TABLES}


def test_pandas_read_sql(engine: sa.Engine) -> None:
    query = sa.text(
        "select display_name_a, display_name_b, shared_papers from analytics.coauthors "
        "order by shared_papers desc, display_name_a, display_name_b"
    )
    with engine.connect() as connection:
        frame = pd.read_sql(query, connection)
        papers = pd.read_sql(sa.text("select * from papers"), connection)
    assert len(frame) == 10
    assert frame.iloc[0].to_dict() == {
        "display_name_a": "Koray Kavukcuoglu",
        "display_name_b": "Shreya Pathak",
        "shared_papers": 3,
    }
    assert papers.shape == (25, 5)


@pytest.mark.parametrize("table", [t.name for t in ALL_TABLES])
def test_parquet_reads_the_same_rows_everywhere(seeds_warehouse: Path, table: str) -> None:
    path = seeds_warehouse / "parquet" / f"{table}.parquet"
    key = list(next(t for t in ALL_TABLES if t.name == table).primary_key)
    from_pyarrow = pl.DataFrame(pq.read_table(path)).sort(key)
    from_polars = pl.read_parquet(path).sort(key)
    con = duckdb.connect()
    try:
        arrow = con.sql("select * from read_parquet(?)", params=[str(path)]).to_arrow_table()
        from_duckdb = pl.DataFrame(arrow).sort(key)
    finally:
        con.close()
    con = duckdb.connect(str(seeds_warehouse / "authorgraph.duckdb"), read_only=True)
    try:
        from_warehouse = con.sql(f"select * from {table}").pl().sort(key)
    finally:
        con.close()
    # DuckDB names the UTC zone "Etc/UTC": same instants, so compare in one dtype.
    assert from_pyarrow.equals(from_polars)
    assert from_polars.equals(from_duckdb.cast(from_polars.schema))
    assert from_polars.equals(from_warehouse.cast(from_polars.schema))


def test_opens_read_only_in_a_second_process(seeds_warehouse: Path) -> None:
    script = textwrap.dedent(
        """
        import json, sys, duckdb
        con = duckdb.connect(sys.argv[1], read_only=True)
        print(json.dumps(con.execute(
            "select (select count(*) from papers), (select count(*) from analytics.coauthors)"
        ).fetchone()))
        """
    )
    db = seeds_warehouse / "authorgraph.duckdb"
    result = subprocess.run(
        [sys.executable, "-c", script, str(db)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [25, 10]


def duckdb_cli(version: str) -> Path:
    """`duckdb` from the PyPI `duckdb-cli` package, installed by `make duckdb-cli` (a step of
    `make test`) into its own venv under .cache/. The test installs nothing: a missing CLI fails."""
    binary = CLI_CACHE / f"duckdb-cli-{version}" / "bin" / "duckdb"
    if not os.access(binary, os.X_OK):
        pytest.fail(
            f"the DuckDB {version} CLI is not installed at {binary.relative_to(ROOT)}: "
            "run `make duckdb-cli` (`make test` does)",
            pytrace=False,
        )
    return binary


def test_the_makefile_installs_the_clis_this_file_reads_with() -> None:
    [listed] = re.findall(
        r"^DUCKDB_CLI_VERSIONS\s*:?=(.*)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE
    )
    assert tuple(listed.split()) == DUCKDB_CLI_VERSIONS


@pytest.mark.parametrize("version", DUCKDB_CLI_VERSIONS)
def test_duckdb_1x_cli_reads_the_published_file(seeds_warehouse: Path, version: str) -> None:
    binary = duckdb_cli(version)
    reported = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    assert reported.stdout.startswith(f"v{version} "), reported.stdout
    query = (
        "select (select count(*) from papers) as papers, "
        "(select count(*) from authorship) as authorship, "
        "(select max(shared_papers) from analytics.coauthors) as max_shared, "
        "(select comment from duckdb_views() where view_name = 'coauthors') as comment"
    )
    result = subprocess.run(
        [
            str(binary),
            "-readonly",
            "-json",
            str(seeds_warehouse / "authorgraph.duckdb"),
            "-c",
            query,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert row["papers"] == 25 and row["authorship"] == 33 and row["max_shared"] == 3
    assert "co-author graph" in row["comment"]
