"""Publishing the tables into the DuckDB warehouse, and reading them back."""
