"""Transform: the DuckDB build that turns the staged parse batches (and the reused rows) into
the tables."""
