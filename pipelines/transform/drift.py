"""Run-level page statistics: what the listings of a whole run look like, as one row.

A page layout that changes under the parser (fields swapped, abstracts gone) still parses into
valid rows: every table suite passes and only the proportions give it away. These statistics
are those proportions, computed out of core with DuckDB from a version's parse cache
(`state/page_links.parquet` joined to `state/variants/part-*.parquet`, one row per paper
listing on a page; `state/page_authors.parquet`, one row per page). The suite
`expectations/suites/layout_drift.json` judges the row.

Every `share_*` is a share of listings (a paper listed on three pages counts three times), in
[0, 1], 0 when there are no listings:

- `share_no_abstract`: listings without an abstract;
- `share_long_source`: source lines longer than `LONG_SOURCE_CHARS` characters;
- `share_sentence_source`: source lines that read like prose: at least `SENTENCE_WORDS` words,
  or ending with '.' with at least `SHORT_SENTENCE_WORDS` words ('Proc. ACM.' is no sentence);
- `share_title_like_source`: titles with the known source shape (`arXiv.org <Subject>`);
- `share_unknown_source_shape`: source lines without that shape (sources are free text: soft);
- `share_abstract_shorter_than_title`: of the listings with an abstract, those whose abstract
  is shorter than their title.

And the papers-per-page distribution: `mean_papers_per_page`, `share_empty_pages`,
`p99_papers_per_page`, `max_papers_per_page` (listings per page, empty pages included).

Paths are a version's own folders, quoted as SQL literals; no value from the data is pasted
into SQL text.
"""

from __future__ import annotations

import tempfile
from contextlib import closing
from pathlib import Path

import duckdb
import polars as pl

from authorgraph.pipelines.load.errors import MemoryLimitReached
from authorgraph.pipelines.load.publish import NO_PROGRESS_BAR, os_errors, sql_literal

#: A source line longer than this is no source line (the longest real one is ~60 characters).
LONG_SOURCE_CHARS = 120
#: Words from which a source line reads like prose whatever its punctuation.
SENTENCE_WORDS = 12
#: Words from which a source line ending with '.' reads like a sentence.
SHORT_SENTENCE_WORDS = 6
#: The known source shape (authorgraph.transforms.normalize.subject_of splits the same one).
SOURCE_SHAPE = r"^arxiv\.org\s+\S"

#: The statistics, in column order, with their polars types.
STATS_SCHEMA: dict[str, pl.DataType] = {
    "pages": pl.Int64(),
    "listings": pl.Int64(),
    "papers": pl.Int64(),
    "share_no_abstract": pl.Float64(),
    "share_long_source": pl.Float64(),
    "share_sentence_source": pl.Float64(),
    "share_title_like_source": pl.Float64(),
    "share_unknown_source_shape": pl.Float64(),
    "share_abstract_shorter_than_title": pl.Float64(),
    "mean_papers_per_page": pl.Float64(),
    "share_empty_pages": pl.Float64(),
    "p99_papers_per_page": pl.Float64(),
    "max_papers_per_page": pl.Int64(),
}


def _words(column: str) -> str:
    """SQL: the number of words of a whitespace-folded text (one more than its spaces)."""
    return f"(length({column}) - length(replace({column}, ' ', '')) + 1)"


def stats_sql(state_dir: Path) -> str:
    """The one-row query over the cache files under `state_dir`."""
    links = sql_literal(str(state_dir / "page_links.parquet"))
    pages = sql_literal(str(state_dir / "page_authors.parquet"))
    variants = sql_literal(str(state_dir / "variants" / "part-*.parquet"))
    shape = sql_literal(SOURCE_SHAPE)
    # Each variant's flags first: the join then carries a few booleans, not the texts.
    return f"""
        WITH v AS (
            SELECT variant_id,
                   abstract IS NULL AS no_abstract,
                   length(source) > {LONG_SOURCE_CHARS} AS long_source,
                   {_words("source")} >= {SENTENCE_WORDS}
                       OR (ends_with(source, '.')
                           AND {_words("source")} >= {SHORT_SENTENCE_WORDS}) AS sentence_source,
                   regexp_matches(title, {shape}, 'i') AS title_like_source,
                   NOT regexp_matches(source, {shape}, 'i') AS unknown_source_shape,
                   abstract IS NOT NULL AND length(abstract) < length(title) AS short_abstract
            FROM read_parquet({variants})
        ),
        l AS (
            SELECT l.file_name, l.paper_id, v.*
            FROM read_parquet({links}) AS l JOIN v USING (variant_id)
        ),
        per_page AS (
            SELECT p.file_name, count(l.file_name) AS n
            FROM (SELECT DISTINCT file_name FROM read_parquet({pages})) AS p
            LEFT JOIN (SELECT file_name FROM read_parquet({links})) AS l USING (file_name)
            GROUP BY p.file_name
        ),
        listing_stats AS (
            SELECT count(*) AS listings,
                   count(DISTINCT paper_id) AS papers,
                   coalesce(avg(no_abstract::INT), 0) AS share_no_abstract,
                   coalesce(avg(long_source::INT), 0) AS share_long_source,
                   coalesce(avg(sentence_source::INT), 0) AS share_sentence_source,
                   coalesce(avg(title_like_source::INT), 0) AS share_title_like_source,
                   coalesce(avg(unknown_source_shape::INT), 0) AS share_unknown_source_shape,
                   coalesce(avg(short_abstract::INT) FILTER (WHERE NOT no_abstract), 0)
                       AS share_abstract_shorter_than_title
            FROM l
        ),
        page_stats AS (
            SELECT count(*) AS pages,
                   coalesce(avg(n), 0) AS mean_papers_per_page,
                   coalesce(avg((n = 0)::INT), 0) AS share_empty_pages,
                   coalesce(quantile_cont(n, 0.99), 0) AS p99_papers_per_page,
                   coalesce(max(n), 0) AS max_papers_per_page
            FROM per_page
        )
        SELECT {", ".join(STATS_SCHEMA)} FROM listing_stats, page_stats
    """


def page_stats(state_dir: Path, memory_limit: str = "512MB") -> pl.DataFrame:
    """The run-level page statistics of the cache under `state_dir`, as one row
    (`STATS_SCHEMA`). Raises OSError when the cache files cannot be read."""
    with tempfile.TemporaryDirectory(prefix="authorgraph-stats-") as spill:
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": memory_limit,
            # One thread: each scan of the texts holds a row group (a cache part written by
            # older code is one 90 MB group); two threads ran out of 512MB at 200k pages,
            # one takes 4 s there. Spill rather than fail; no buffering for row order.
            "threads": 1,
            "temp_directory": spill,
            "preserve_insertion_order": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        with os_errors(), closing(duckdb.connect(":memory:", config=config)) as con:
            con.execute(NO_PROGRESS_BAR)
            try:
                row = con.execute(stats_sql(state_dir)).fetchone()
            except duckdb.IOException as exc:
                raise OSError(f"cannot read the parse cache in {state_dir}: {exc}") from None
            except duckdb.OutOfMemoryException:
                raise MemoryLimitReached(
                    f"DuckDB needed more than its {memory_limit} memory limit for the page "
                    "statistics; raise AUTHORGRAPH_MEMORY_LIMIT"
                ) from None
    assert row is not None  # an aggregate without GROUP BY is one row
    return pl.DataFrame([row], schema=STATS_SCHEMA, orient="row")
