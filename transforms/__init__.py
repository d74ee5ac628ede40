"""Pure transforms: page bytes → records → tables. No Prefect, DuckDB or GX in here."""
