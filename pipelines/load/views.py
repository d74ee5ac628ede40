"""The analytics views: one `CREATE VIEW` + `COMMENT ON VIEW` per file in `warehouse/sql/`.

The SQL is this codebase's own text, read from warehouse/sql/ (package data of
`authorgraph.warehouse`, beside `authorgraph.pipelines` in a checkout and in site-packages); no
value from the data is ever pasted into it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

SQL_DIR = Path(__file__).resolve().parents[2] / "warehouse" / "sql"
ANALYTICS_SCHEMA = "analytics"


def view_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    """The view definitions, in file-name order."""
    return sorted(sql_dir.glob("*.sql"))


def view_names(sql_dir: Path = SQL_DIR) -> list[str]:
    """Qualified names of the views the SQL files create (`analytics.<file stem>`)."""
    return [f"{ANALYTICS_SCHEMA}.{path.stem}" for path in view_files(sql_dir)]


def create_views(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR) -> list[str]:
    """Create the `analytics` schema and every view in `sql_dir`; return the views' names."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ANALYTICS_SCHEMA}")
    for path in view_files(sql_dir):
        con.execute(path.read_text(encoding="utf-8"))
    return view_names(sql_dir)
