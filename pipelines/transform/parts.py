"""Id-prefix parts: how the build and the review queues work through data larger than the
memory limit a slice at a time. Ids are hex digests, so their prefixes split rows evenly, and
the built Parquet files are in key order, so a prefix's rows lie in few row groups."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb

from authorgraph.pipelines.load.publish import sql_literal

HEX = "0123456789abcdef"
#: Rows per row group of the built tables' Parquet and of the review's files of texts: a
#: reader (validation chunks, the review queues' scans of abstracts) holds about one row group
#: of a column at a time, so this bounds its memory (DuckDB's default, 122,880 rows, is 150 MB
#: of papers' texts); the writer, too, buffers a row group: 4,096 rows of long random texts
#: fit a 128MB limit, 16,384 did not.
ROW_GROUP_ROWS = 4_096


def id_prefixes(data_bytes: int, limit: int) -> list[str]:
    """Id prefixes to build in parts by, so that one part's texts fit in the memory limit:
    [""] (a single part), or all 16, 256 or 4096 hex prefixes."""
    digits = 0
    while digits < 3 and data_bytes > limit * 16**digits:
        digits += 1
    return ["".join(p) for p in itertools.product(HEX, repeat=digits)]


def part_filter(column: str, prefix: str) -> str:
    """SQL selecting the rows whose `column` starts with `prefix`, as a range, so DuckDB skips
    Parquet row groups outside it. `prefix` is pasted into the SQL, so it must be hex digits:
    one of `id_prefixes`, or an id prefix read back from a split's folder names (ids are hex
    digests); anything else is refused."""
    if not all(c in HEX for c in prefix):
        raise ValueError(f"not an id prefix: {prefix!r}")
    if not prefix:
        return "true"
    following = int(prefix, 16) + 1
    low = f"{column} >= '{prefix}'"
    if following == 16 ** len(prefix):
        return low
    return f"{low} AND {column} < '{following:0{len(prefix)}x}'"


def split_by(
    con: duckdb.DuckDBPyConnection, query: str, key: str, target: Path, open_files: int = 256
) -> dict[str, list[Path]]:
    """Write the rows of `query` once, split into a folder per value of the SQL expression
    `key` (DuckDB's partitioned COPY, streamed: nothing sorted or held); returns each value's
    files (a value without rows has none; a value may have several files)."""
    # DuckDB buffers rows per thread until this many, then appends them to each part's
    # file: measured on 200k pages' texts, 512 rows wrote 16 parts in 8 s at 177 MB, 10,000
    # rows took 14 s at 576 MB and 50,000 ran out of a 512MB limit (the default is 524,288).
    con.execute("SET partitioned_write_flush_threshold = 512")
    con.execute(f"SET partitioned_write_max_open_files = {int(open_files)}")
    con.execute(
        f"COPY (SELECT *, {key} AS part FROM ({query})) "
        f"TO {sql_literal(str(target))} (FORMAT parquet, PARTITION_BY (part), "
        f"COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
    )
    return {
        folder.name.removeprefix("part="): sorted(folder.glob("*.parquet"))
        for folder in target.glob("part=*")
    }


def split_by_prefix(
    con: duckdb.DuckDBPyConnection,
    query: str,
    digits: int,
    target: Path,
    column: str = "paper_id",
) -> dict[str, list[Path]]:
    """`split_by` the `digits`-digit prefix of the id `column`."""
    key = f"substr({column}, 1, {int(digits)})"
    return split_by(con, query, key, target, min(16**digits, 256))
