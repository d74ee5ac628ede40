"""Build the tables out of core: DuckDB SQL over the staged batches and the reused cache rows.

Memory is bounded by `memory_limit`, not by the corpus: no table is ever held whole in polars,
pandas or Arrow. DuckDB reads the batches' Parquet files, spills to `temp_directory` when it
must, writes the staged DuckDB file and the Parquet tables (`COPY`).

Steps, in the staging folder of one run:
1. the run's cache: the reused files' rows from the previous version's cache plus the rows of
   every parsed batch, written as `version/state/{page_authors,page_links}.parquet` and
   `version/state/variants/part-*.parquet` (each distinct paper text once);
2. the core tables from that cache, first copy in file order winning (`arg_min`), inserted
   in key order into the staged DuckDB file (keys, foreign keys, comments);
3. each core table copied out to `version/parquet/<table>.parquet`, in key order;
4. the review queues from those files (`authorgraph.pipelines.transform.review`).

Wide rows (paper texts) are never sorted or de-duplicated all at once: when the texts are
larger than the memory limit, steps 1 and 2 run in parts by paper-id prefix (ids are hex
hashes, so parts are even), in key order. The batches' texts and the listings are first split
by prefix in one pass each (DuckDB's partitioned `COPY`), so a part reads only its own files:
each part scanning every batch and every listing made the build grow with the square of the
corpus (256 parts at 2M pages). DuckDB's own spilling covers the rest.

Paths are this run's own folders, quoted as SQL literals; no value from the data is ever
pasted into SQL text.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from authorgraph.expectations.validate import RELATIONSHIP_KEYS
from authorgraph.pipelines.config import limit_bytes
from authorgraph.pipelines.extract.parsing import BATCH_KINDS
from authorgraph.pipelines.load.errors import MemoryLimitReached
from authorgraph.pipelines.load.publish import (
    DUCKDB_FILE,
    NO_PROGRESS_BAR,
    PARQUET_DIR,
    STATE_DIR,
    STORAGE_COMPATIBILITY,
    make_dir,
    no_world_write,
    one_thread,
    os_errors,
    sql_literal,
    table_ddl,
)
from authorgraph.pipelines.transform.parts import (
    ROW_GROUP_ROWS,
    id_prefixes,
    part_filter,
    split_by_prefix,
)
from authorgraph.pipelines.transform.review import build_reviews
from authorgraph.transforms.schema import CORE_TABLES, LEDGER_TABLES, REVIEW_TABLES, TABLES_BY_NAME

#: Columns of the cached per-page rows (with the content hash they were parsed from).
CACHE_COLUMNS: dict[str, dict[str, str]] = {
    "page_authors": {
        "file_name": "VARCHAR",
        "author_id": "VARCHAR",
        "display_name": "VARCHAR",
        "name_raw": "VARCHAR",
        "family_name": "VARCHAR",
        "given_name": "VARCHAR",
        "suffix": "VARCHAR",
        "sha256": "VARCHAR",
    },
    "page_links": {
        "file_name": "VARCHAR",
        "position": "INTEGER",
        "paper_id": "VARCHAR",
        "variant_id": "VARCHAR",
        "sha256": "VARCHAR",
    },
    "variants": {
        "variant_id": "VARCHAR",
        "paper_id": "VARCHAR",
        "title": "VARCHAR",
        "source": "VARCHAR",
        "subject": "VARCHAR",
        "abstract": "VARCHAR",
    },
}
assert tuple(CACHE_COLUMNS) == BATCH_KINDS

# First copy in file order wins (authorgraph.transforms.tables.build_tables says the same for
# frames). The ledger (paper_variants, listings) keeps every listing and text that was merged.
SELECTS: dict[str, str] = {
    # The same author on several pages: prefer a copy whose name was split into parts, then
    # the first file in file-name order.
    "authors": """
        SELECT author_id, r.display_name, r.name_raw, r.family_name, r.given_name, r.suffix
        FROM (
            SELECT author_id,
                   arg_min({'display_name': display_name, 'name_raw': name_raw,
                            'family_name': family_name, 'given_name': given_name,
                            'suffix': suffix},
                           (family_name IS NULL, file_name)) AS r
            FROM cache.page_authors WHERE {part} GROUP BY author_id
        )
        ORDER BY author_id
    """,
    "papers": """
        SELECT v.paper_id, v.title, v.source, v.subject, v.abstract
        FROM (
            SELECT paper_id, arg_min(variant_id, (file_name, position)) AS variant_id
            FROM {links} WHERE {part} GROUP BY paper_id
        ) AS first
        JOIN {variants} AS v ON v.variant_id = first.variant_id
        ORDER BY v.paper_id
    """,
    "authorship": """
        SELECT a.author_id, l.paper_id, min(l.file_name) AS source_file
        FROM cache.page_links AS l JOIN cache.page_authors AS a USING (file_name)
        WHERE {part}
        GROUP BY a.author_id, l.paper_id
        ORDER BY a.author_id, l.paper_id
    """,
    "paper_variants": """
        SELECT variant_id, paper_id, title, source, abstract FROM {variants}
        WHERE {part}
        ORDER BY paper_id, variant_id
    """,
    # The canonical listing of a paper is its first in file order: the one whose variant
    # `papers` took its text from.
    "listings": """
        SELECT l.file_name AS source_file, l.position, a.author_id, l.paper_id, l.variant_id,
               (l.file_name, l.position) = f.first AS is_canonical
        FROM cache.page_links AS l
        JOIN cache.page_authors AS a USING (file_name)
        JOIN (
            SELECT paper_id, min((file_name, position)) AS first
            FROM cache.page_links GROUP BY paper_id
        ) AS f USING (paper_id)
        WHERE {part}
        ORDER BY source_file, l.position
    """,
}


#: The key each core table is built in parts by (one part per id prefix, in key order). Only
#: papers carry wide texts; the narrow tables are built whole (DuckDB spills their sorts).
PART_KEYS = {"papers": "paper_id", "paper_variants": "paper_id"}
#: Memory DuckDB takes to de-duplicate or sort rows, per byte of their uncompressed data.
TEXT_EXPANSION = 2
#: The variants cache is a folder of parts (`part-<id prefix>.parquet`).
VARIANTS_DIR = "variants"


def _compatible(part: Path, prefix: str) -> bool:
    """Whether a cache part (`part-<its prefix>` or `part-all`) can hold ids of `prefix`."""
    own = part.stem.removeprefix("part-")
    return own == "all" or own.startswith(prefix) or prefix.startswith(own)


def uncompressed_bytes(paths: list[Path]) -> int:
    """The uncompressed size of Parquet files' data, from their footers."""
    total = 0
    for path in paths:
        meta = pq.read_metadata(path)
        total += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return total


def variant_files(state_dir: Path) -> list[Path]:
    """The parts of a cache's variants."""
    return sorted((state_dir / VARIANTS_DIR).glob("part-*.parquet"))


@dataclass(frozen=True)
class BuildLimits:
    """How much DuckDB may use while building: memory (it spills beyond it) and threads."""

    memory_limit: str = "512MB"
    threads: int = 2


@dataclass(frozen=True)
class CacheInputs:
    """Where this run's rows come from: the batches parsed now, and the previous version's
    cache (`None` when nothing is reused) with the (file_name, sha256) pairs to reuse."""

    batch_dir: Path
    previous_cache: Path | None
    reused: pa.Table
    #: The published tables' Parquet folder when they were built by this code and settings
    #: and are intact (their review queues can be this run's when their inputs are equal).
    previous_tables: Path | None = None


@contextmanager
def staging_connection(stage_dir: Path, limits: BuildLimits) -> Iterator[duckdb.DuckDBPyConnection]:
    """The staged DuckDB file, opened for writing with bounded memory and a spill folder."""
    spill = make_dir(stage_dir / "spill")
    config: dict[str, str | bool | int | float | list[str]] = {
        "storage_compatibility_version": STORAGE_COMPATIBILITY,
        "memory_limit": limits.memory_limit,
        "threads": max(limits.threads, 1),
        "temp_directory": str(spill),
        # Row order is set by ORDER BY where it matters; elsewhere DuckDB needn't buffer rows
        # to keep it, which is what bounds its memory on large inputs.
        "preserve_insertion_order": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    with os_errors(), closing(duckdb.connect(str(stage_dir / DUCKDB_FILE), config=config)) as con:
        con.execute(NO_PROGRESS_BAR)
        yield con
    no_world_write(stage_dir / DUCKDB_FILE)
    shutil.rmtree(spill, ignore_errors=True)


def _files_source(paths: list[Path], columns: dict[str, str]) -> str:
    """SQL reading `columns` from Parquet files (an empty typed relation when there are none)."""
    if not paths:
        typed = ", ".join(f"NULL::{t} AS {c}" for c, t in columns.items())
        return f"(SELECT {typed} WHERE false)"
    files = ", ".join(sql_literal(str(p)) for p in paths)
    return f"(SELECT {', '.join(columns)} FROM read_parquet([{files}]))"


def _copy_to(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    con.execute(
        f"COPY ({query}) TO {sql_literal(str(target))} "
        "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
    )
    no_world_write(target)


def _view(con: duckdb.DuckDBPyConnection, kind: str, paths: list[Path]) -> None:
    source = _files_source(paths, CACHE_COLUMNS[kind])
    con.execute(f"CREATE OR REPLACE VIEW cache.{kind} AS SELECT * FROM {source}")


#: The columns of a listing that the parts need (which variant each listing shows).
LINK_COLUMNS = ("paper_id", "variant_id", "file_name", "position")


@dataclass(frozen=True)
class Parts:
    """The id prefixes a build runs in (`[""]`: one part), and, when there are several, each
    prefix's files of listings (`LINK_COLUMNS`), split from `cache.page_links` in one pass."""

    prefixes: list[str]
    links: dict[str, list[Path]] | None = None

    def links_source(self, prefix: str) -> str:
        """SQL reading the listings of papers of `prefix` (or all, for a single part)."""
        if self.links is None:
            return "cache.page_links"
        columns = {c: CACHE_COLUMNS["page_links"][c] for c in LINK_COLUMNS}
        return _files_source(self.links.get(prefix, []), columns)


#: The cached rows kept per page (the texts, `variants`, are kept per distinct text).
PAGE_KINDS = ("page_authors", "page_links")


def _batch_rows(batch_dir: Path, kind: str, columns: list[str]) -> str:
    """SQL reading `columns` of this run's parsed batches' rows of `kind`."""
    batches = sorted(batch_dir.glob(f"*.{kind}.parquet"))
    return f"SELECT {', '.join(columns)} FROM {_files_source(batches, CACHE_COLUMNS[kind])}"


def _page_rows(inputs: CacheInputs, kind: str) -> str:
    """SQL for this run's cached rows of `kind`: the parsed batches' and the reused files'
    (from the previous cache, by file name and hash: registered as `reused_files`)."""
    columns = list(CACHE_COLUMNS[kind])
    query = _batch_rows(inputs.batch_dir, kind, columns)
    if inputs.previous_cache is not None:
        cached = sql_literal(str(inputs.previous_cache / f"{kind}.parquet"))
        query += (
            f" UNION ALL SELECT {', '.join(columns)} FROM read_parquet({cached}) "
            "SEMI JOIN reused_files USING (file_name, sha256)"
        )
    return query


def same_rows(inputs: CacheInputs, touched: pa.Table, target: Path, limits: BuildLimits) -> bool:
    """Whether the pages parsed or deleted in this run (`touched`: their `file_name`s) give
    exactly the rows the previous cache holds for them: then every table would be built as
    it is published (a page whose bytes changed but not its data: whitespace, a new header).

    If so, writes this run's cache of per-page rows (the new hashes with the same rows) to
    `target`/<kind>.parquet, as `write_cache` would, and returns True. The texts' cache is
    the previous one as it is: a listing's variant id is a hash of its exact text."""
    if inputs.previous_cache is None:
        return False
    old_dir = inputs.previous_cache
    with scratch_connection(target / "spill", limits) as con:
        con.register("touched", touched)
        for kind in PAGE_KINDS:
            columns = [c for c in CACHE_COLUMNS[kind] if c != "sha256"]
            new = _batch_rows(inputs.batch_dir, kind, columns)
            old = (
                f"SELECT {', '.join(columns)} FROM "
                f"read_parquet({sql_literal(str(old_dir / f'{kind}.parquet'))}) "
                "SEMI JOIN touched USING (file_name)"
            )
            rows = con.execute(
                f"SELECT count(*) FROM (({new} EXCEPT ALL {old}) "
                f"UNION ALL ({old} EXCEPT ALL {new}))"
            ).fetchall()
            if rows[0][0]:
                return False
        con.register("reused_files", inputs.reused)
        for kind in PAGE_KINDS:
            _copy_to(con, _page_rows(inputs, kind), target / f"{kind}.parquet")
    return True


def write_cache(
    con: duckdb.DuckDBPyConnection,
    inputs: CacheInputs,
    state_dir: Path,
    limit: int,
    split_dir: Path,
) -> Parts:
    """Write this run's cache (step 1) and attach it as views in schema `cache`. Returns the
    id prefixes to build in parts by (from the size of the texts), with the listings split
    by them in `split_dir` when there are several."""
    make_dir(state_dir)
    old = inputs.previous_cache
    con.execute("CREATE SCHEMA IF NOT EXISTS cache")
    con.register("reused_files", inputs.reused)
    for kind in PAGE_KINDS:
        _copy_to(con, _page_rows(inputs, kind), state_dir / f"{kind}.parquet")
        _view(con, kind, [state_dir / f"{kind}.parquet"])
    con.unregister("reused_files")
    # Each distinct text once (the copies of one variant id are equal), and only those some
    # listing still uses (a parsed batch's texts all are; the previous cache's may not be).
    # When the texts outgrow the limit this runs once per paper-id prefix, over that
    # prefix's split of the batches and the cache part named for it; papers of one prefix
    # are then built from that part alone.
    batches = sorted(inputs.batch_dir.glob("*.variants.parquet"))
    cached = variant_files(old) if old is not None else []
    prefixes = id_prefixes(uncompressed_bytes(batches + cached) * TEXT_EXPANSION, limit)
    parts, texts = Parts(prefixes), {"": batches}
    digits = len(prefixes[0])
    if digits:
        make_dir(split_dir)
        source = _files_source(batches, CACHE_COLUMNS["variants"])
        texts = split_by_prefix(con, f"SELECT * FROM {source}", digits, split_dir / "texts")
        links = f"SELECT {', '.join(LINK_COLUMNS)} FROM cache.page_links"
        parts = Parts(prefixes, split_by_prefix(con, links, digits, split_dir / "links"))
    folder = make_dir(state_dir / VARIANTS_DIR)
    for prefix in prefixes:
        files = texts.get(prefix, []) + [p for p in cached if _compatible(p, prefix)]
        part = part_filter("paper_id", prefix)
        source = _files_source(files, CACHE_COLUMNS["variants"])
        query = f"SELECT DISTINCT ON (variant_id) * FROM {source} WHERE {part}"
        if old is not None:
            query += (
                f" AND variant_id IN (SELECT variant_id FROM {parts.links_source(prefix)} "
                f"WHERE {part})"
            )
        target = folder / f"part-{prefix or 'all'}.parquet"
        con.execute(
            f"COPY ({query}) TO {sql_literal(str(target))} (FORMAT parquet, COMPRESSION zstd, "
            f"COMPRESSION_LEVEL 1, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
        )
        no_world_write(target)
    shutil.rmtree(split_dir / "texts", ignore_errors=True)  # merged: give the disk back
    _view(con, "variants", variant_files(state_dir))
    return parts


@dataclass(frozen=True)
class Built:
    """What a build made: rows per table, seconds per step (`cache`, `core`, `ledger`,
    `review`; the benchmark reports what each part of the dataset costs), and whether the
    staged DuckDB file enforces the tables' keys (see `keys_fit`)."""

    counts: dict[str, int]
    seconds: dict[str, float]
    keys_enforced: bool = True


#: Memory per row that DuckDB's index of a table's keys takes while rows are inserted: the
#: index must fit in the memory limit (it cannot spill). Measured with a 512MB limit: a key
#: of two 64-character ids (authorship's) fit 1.5M rows and ran out at 2M; one id fit 2M
#: rows and ran out at 3M.
KEY_INDEX_BYTES = 320


def keys_fit(rows: int, limit: int) -> bool:
    """Whether a table of `rows` rows can have its keys enforced within `limit` bytes.
    Beyond it (about 1.6M listings, some 220k pages, at 512MB) the staged file declares the
    keys in COMMENTs only. The suites still check the core keys and relationships before
    anything is published; the ledger's and queues' keys hold by construction."""
    return rows * KEY_INDEX_BYTES <= limit


def insert(con: duckdb.DuckDBPyConnection, table: str, select: str) -> None:
    """INSERT the rows of `select` into `table`, retried once on one thread if DuckDB runs out
    of memory. A table's key indexes cannot spill, and near the memory limit an insert on two
    threads sometimes ran out where the same insert fits on one: at 200k pages and 512MB, 3
    runs in 10 stopped on a ledger table's insert. The failed statement is rolled back whole;
    a checkpoint first writes what the tables built so far hold in memory to the file, so
    DuckDB can evict it. On one thread the insert takes longer (listings at 200k: 19 s, not
    14 s), so only a failed one pays that."""
    statement = f"INSERT INTO {table} {select}"
    try:
        con.execute(statement)
    except duckdb.OutOfMemoryException:
        con.execute("CHECKPOINT")
        with one_thread(con):
            con.execute(statement)


def build_core(
    con: duckdb.DuckDBPyConnection,
    parquet_dir: Path,
    state_dir: Path,
    parts: Parts,
    seconds: dict[str, float] | None = None,
    keys: bool = True,
) -> dict[str, int]:
    """Build the core and ledger tables from the `cache` views (step 2), one id prefix at a
    time in key order, and copy them to Parquet in that order (step 3). Returns their row
    counts. `keys`: whether the tables enforce their keys (`table_ddl`)."""
    make_dir(parquet_dir)
    counts = {}
    seconds = {} if seconds is None else seconds
    for table in (*CORE_TABLES, *LEDGER_TABLES):
        started = time.perf_counter()
        for statement in table_ddl(table, keys):
            con.execute(statement)
        key = PART_KEYS.get(table.name)
        for prefix in parts.prefixes if key else [""]:
            part = part_filter(key or "", prefix)
            variants = _files_source(
                [state_dir / VARIANTS_DIR / f"part-{prefix or 'all'}.parquet"],
                CACHE_COLUMNS["variants"],
            )
            select = SELECTS[table.name].replace("{part}", part)
            select = select.replace("{variants}", variants)
            select = select.replace("{links}", parts.links_source(prefix))
            insert(con, table.name, select)
        target = parquet_dir / f"{table.name}.parquet"
        # Parquet rows in key order. One thread: in-order output from parallel scans would
        # buffer rows (all of papers' texts at 200k pages), a single scan needs no buffer.
        with one_thread(con):
            con.execute("SET preserve_insertion_order = true")
            con.execute(
                f"COPY {table.name} TO {sql_literal(str(target))} (FORMAT parquet, "
                f"COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
            )
            con.execute("SET preserve_insertion_order = false")
        no_world_write(target)
        row = con.execute(f"SELECT count(*) FROM {table.name}").fetchone()
        counts[table.name] = int(row[0]) if row else 0
        step = "ledger" if table in LEDGER_TABLES else "core"
        seconds[step] = seconds.get(step, 0.0) + time.perf_counter() - started
    return counts


#: What each review queue is computed from (`review.py`): per core table, its key and the
#: columns read. `paper_review` from the papers' titles and abstracts, `author_review` from
#: the authors' names and who wrote what.
REVIEW_INPUTS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "paper_review": {"papers": (("paper_id",), ("title", "abstract"))},
    "author_review": {
        "authors": (("author_id",), ("display_name", "family_name", "given_name")),
        "authorship": (("author_id", "paper_id"), ()),
    },
}


def unchanged_queues(con: duckdb.DuckDBPyConnection, new: Path, old: Path) -> set[str]:
    """The review queues whose inputs (`REVIEW_INPUTS`) in the Parquet folder `new` equal
    those in `old`, row for row: the queues built from `old` are `new`'s. Rows are matched
    by key and their values compared as they are (a join: 0.2 s for 108k papers' texts,
    where hashing every text for a set difference took 2 s)."""
    same = set()
    for queue, inputs in REVIEW_INPUTS.items():
        for name, (keys, values) in inputs.items():
            a, b = (sql_literal(str(folder / f"{name}.parquet")) for folder in (new, old))
            rows = con.execute(
                f"SELECT count(*) FROM read_parquet({a}) AS a FULL JOIN read_parquet({b}) AS b "
                f"ON {_same_keys(keys)} WHERE a.{keys[0]} IS NULL OR {_differs(keys, values)}"
            ).fetchall()
            if rows[0][0]:
                break
        else:
            same.add(queue)
    return same


def _same_keys(keys: tuple[str, ...]) -> str:
    """SQL joining rows `a` and `b` on equal `keys`."""
    return " AND ".join(f"a.{k} = b.{k}" for k in keys)


def _differs(keys: tuple[str, ...], values: tuple[str, ...]) -> str:
    """SQL true when row `a` has no `b` of its keys (a left or full join), or other values."""
    return " OR ".join([f"b.{keys[0]} IS NULL", *(f"a.{v} IS DISTINCT FROM b.{v}" for v in values)])


def build_tables(stage_dir: Path, inputs: CacheInputs, limits: BuildLimits) -> Built:
    """Steps 1-3 in `stage_dir` (see the module doc); returns the built tables' row counts
    and each step's seconds."""
    version = stage_dir / "version"
    # A transform run again under the same run id (a retried task) starts from nothing.
    shutil.rmtree(version, ignore_errors=True)
    shutil.rmtree(stage_dir / "split", ignore_errors=True)
    for leftover in (DUCKDB_FILE, DUCKDB_FILE + ".wal"):
        (stage_dir / leftover).unlink(missing_ok=True)
    limit = limit_bytes(limits.memory_limit)
    try:
        with staging_connection(stage_dir, limits) as con:
            started = time.perf_counter()
            split = stage_dir / "split"
            parts = write_cache(con, inputs, version / STATE_DIR, limit, split)
            seconds = {"cache": time.perf_counter() - started}
            # The listings are the longest keyed table (one row per parsed listing).
            row = con.execute("SELECT count(*) FROM cache.page_links").fetchone()
            keys = keys_fit(int(row[0]) if row else 0, limit)
            counts = build_core(
                con, version / PARQUET_DIR, version / STATE_DIR, parts, seconds, keys
            )
            con.execute("DROP SCHEMA cache CASCADE")
            shutil.rmtree(split, ignore_errors=True)
            started = time.perf_counter()
            previous = inputs.previous_tables
            same = unchanged_queues(con, version / PARQUET_DIR, previous) if previous else set()
        # The review queues: the published ones whose inputs are unchanged, the others built
        # from the core tables' Parquet (their own bounded DuckDB; the staged file is closed
        # meanwhile, so the two never hold memory at once).
        for name in same:
            assert previous is not None
            file = version / PARQUET_DIR / f"{name}.parquet"
            os.link(previous / file.name, file)
            counts[name] = pq.read_metadata(file).num_rows
        if rebuild := tuple(t.name for t in REVIEW_TABLES if t.name not in same):
            work = stage_dir / "review"
            counts |= build_reviews(
                version / PARQUET_DIR, work, limits.memory_limit, limits.threads, queues=rebuild
            )
            shutil.rmtree(work, ignore_errors=True)
        with staging_connection(stage_dir, limits) as con:
            for table in REVIEW_TABLES:
                # Their foreign keys need the core tables' keys.
                enforced = keys and keys_fit(counts[table.name], limit)
                for statement in table_ddl(table, enforced):
                    con.execute(statement)
                source = sql_literal(str(version / PARQUET_DIR / f"{table.name}.parquet"))
                insert(con, table.name, f"SELECT * FROM read_parquet({source})")
        seconds["review"] = time.perf_counter() - started
    except duckdb.OutOfMemoryException:
        raise MemoryLimitReached(
            f"DuckDB needed more than its {limits.memory_limit} memory limit to build the "
            "tables; raise AUTHORGRAPH_MEMORY_LIMIT; the published warehouse is unchanged"
        ) from None
    return Built(counts, seconds, keys)


@contextmanager
def scratch_connection(spill: Path, limits: BuildLimits) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB for a query over Parquet files, its memory bounded, spilling to
    `spill` (removed afterwards); DuckDB's I/O errors arrive as OSError."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": limits.memory_limit,
        "threads": max(limits.threads, 1),
        "temp_directory": str(make_dir(spill)),
    }
    with os_errors(), closing(duckdb.connect(config=config)) as con:
        con.execute(NO_PROGRESS_BAR)
        yield con
    shutil.rmtree(spill, ignore_errors=True)


def rows_not_in(
    new: dict[str, Path], old: dict[str, Path], out_dir: Path, limits: BuildLimits
) -> dict[str, Path]:
    """Per table, a Parquet file of the rows of `new[name]` that are not in `old[name]`
    (what a re-run changed; row-level checks need to see only these). Rows are matched by
    the table's key (unique in `old`: it passed the suites), the rest compared as it is: a
    set difference hashed every text (1.1 s at 20k pages against 0.2 s). A row equal to one
    in `old` is left out even when its key repeats in `new` (the uniqueness checks see whole
    tables): its values passed the row-level checks before."""
    make_dir(out_dir)
    paths = {}
    with scratch_connection(out_dir / "spill", limits) as con:
        for name, path in new.items():
            table = TABLES_BY_NAME[name]
            keys = table.primary_key
            values = tuple(c for c in table.column_names if c not in keys)
            target = out_dir / f"{name}.parquet"
            a, b = sql_literal(str(path)), sql_literal(str(old[name]))
            con.execute(
                f"COPY (SELECT a.* FROM read_parquet({a}) AS a "
                f"LEFT JOIN read_parquet({b}) AS b ON {_same_keys(keys)} "
                f"WHERE {_differs(keys, values)}) TO {sql_literal(str(target))} (FORMAT parquet)"
            )
            paths[name] = target
    return paths


#: The listing ledger's invariants as violation counts (the `ledger` suite wants each at 0).
LEDGER_CHECKS = """
    SELECT
        (SELECT count(*) FROM papers AS p
         LEFT JOIN (SELECT paper_id, count(*) FILTER (WHERE is_canonical) AS canonical
                    FROM listings GROUP BY paper_id) AS l USING (paper_id)
         WHERE coalesce(l.canonical, 0) <> 1) AS papers_without_one_canonical_listing,
        (SELECT count(*) FROM authorship AS a
         ANTI JOIN listings AS l USING (author_id, paper_id)) AS authorship_without_listing,
        (SELECT count(*) FROM (
            SELECT file_name AS source_file, paper_id, count(*) AS n
            FROM page_links GROUP BY ALL
         ) AS parsed
         FULL JOIN (
            SELECT source_file, paper_id, count(*) AS n FROM listings GROUP BY ALL
         ) AS kept USING (source_file, paper_id)
         WHERE parsed.n IS DISTINCT FROM kept.n) AS listings_not_as_parsed
"""


def ledger_checks(tables: dict[str, Path], target: Path, limits: BuildLimits) -> Path:
    """Count the ledger's violations (one row, see LEDGER_CHECKS) from the tables' Parquet
    files and the parsed listings (`page_links`, the run's cache) into `target`, with
    DuckDB's memory bounded: only keys are read."""
    make_dir(target.parent)
    with scratch_connection(target.parent / "spill", limits) as con:
        for name in ("papers", "authorship", "listings", "page_links"):
            source = sql_literal(str(tables[name]))
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({source})")
        _copy_to(con, LEDGER_CHECKS, target)
    return target


#: The cross-table suite's input, as `relationships_frame` (authorgraph.expectations.validate)
#: builds it in memory: authorship left-joined to the keys of authors and papers, a null
#: `*_ref` marking a dangling row. It reads the columns `RELATIONSHIP_KEYS` names.
RELATIONSHIPS_SQL = """
    SELECT a.author_id, a.paper_id, au.author_id AS author_ref, p.paper_id AS paper_ref
    FROM authorship AS a
    LEFT JOIN (SELECT DISTINCT author_id FROM authors) AS au ON a.author_id = au.author_id
    LEFT JOIN (SELECT DISTINCT paper_id FROM papers) AS p ON a.paper_id = p.paper_id
"""


@dataclass(frozen=True)
class KeyChecks:
    """What the set-level checks of large tables read instead of whole tables in memory:
    the cross-table suite's rows, and per table its key columns split into files."""

    relationships: Path | None  # None: a table lacks a column it joins on (the suites say so)
    parts: dict[str, list[Path]]


def key_checks(
    tables: dict[str, Path],
    keys: dict[str, list[str]],
    parts: dict[str, int],
    target: Path,
    limits: BuildLimits,
) -> KeyChecks:
    """The inputs of the checks that judge whole tables at once, written under `target` by
    DuckDB with its memory bounded (it spills beyond it): the relationships frame
    (`RELATIONSHIPS_SQL`), and for each table named in `parts`, its `keys` columns split into
    that many files by a hash of the first, so that equal keys share a file. At 2M pages the
    same checks in memory held 6 GiB. A table missing a column is left to the suites, which
    read it themselves and report the column."""
    make_dir(target)
    present = {n: set(pq.read_schema(path).names) for n, path in tables.items()}
    with scratch_connection(target / "spill", limits) as con:
        relationships = None
        if all(set(c) <= present.get(n, set()) for n, c in RELATIONSHIP_KEYS.items()):
            for name in RELATIONSHIP_KEYS:
                source = sql_literal(str(tables[name]))
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({source})")
            relationships = target / "relationships.parquet"
            _copy_to(con, RELATIONSHIPS_SQL, relationships)
        split: dict[str, list[Path]] = {}
        for name, count in parts.items():
            columns = [c for c in keys.get(name, []) if c in present.get(name, set())]
            if not columns or columns[0] != keys[name][0]:
                continue
            names = ", ".join(_identifier(c) for c in columns)
            folder = make_dir(target / "keys") / name
            con.execute(
                f"COPY (SELECT {names}, hash({_identifier(columns[0])}) % {int(count)} AS part "
                f"FROM read_parquet({sql_literal(str(tables[name]))})) "
                f"TO {sql_literal(str(folder))} (FORMAT parquet, PARTITION_BY (part))"
            )
            split[name] = sorted(folder.rglob("*.parquet"))
            for path in [*split[name], *folder.rglob("part=*")]:
                no_world_write(path)
    return KeyChecks(relationships, split)


def _identifier(name: str) -> str:
    """A column name quoted for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'
