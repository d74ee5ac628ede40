"""The published tables, declared once: names, types, nullability, keys and comments.

Every writer (Parquet, DuckDB), every suite check and every loader uses these declarations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy.typing as npt
import polars as pl
import pyarrow as pa


@dataclass(frozen=True)
class Column:
    """One column of a published table."""

    name: str
    dtype: pa.DataType
    nullable: bool
    comment: str
    #: Long free text (abstracts, about 1.3 KB each): DuckDB stores it ZSTD-compressed, which
    #: its automatic choice (dictionary + FSST) is not for such texts. At 20k pages: the
    #: papers table 85 -> 31 MB, written in 1.6 s instead of 2.9 s, text searches no slower.
    long_text: bool = False


@dataclass(frozen=True)
class ForeignKey:
    """`column` references `ref_table`(`ref_column`)."""

    column: str
    ref_table: str
    ref_column: str


@dataclass(frozen=True)
class Table:
    """A published table: its columns, primary key, foreign keys and comment."""

    name: str
    comment: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        """Column names in declared order."""
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        """The pyarrow schema every Parquet writer casts to."""
        return pa.schema([pa.field(c.name, c.dtype, nullable=c.nullable) for c in self.columns])

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        """The same schema as polars dtypes (for building empty frames)."""
        return {c.name: polars_dtype(c.dtype) for c in self.columns}


def polars_dtype(dtype: pa.DataType) -> pl.DataType:
    """The polars dtype polars reads an Arrow column of `dtype` as. The declared types are
    mapped directly: building any Arrow table or array makes pyarrow import pandas (0.3 s at
    start-up), and a run with nothing to rebuild needs neither."""
    if pa.types.is_timestamp(dtype):
        return pl.Datetime(dtype.unit, dtype.tz)
    simple = _POLARS_TYPES.get(dtype)
    if simple is not None:
        return simple
    # An empty array of the type (an empty table would import pandas); the stubs' overloads
    # of `nulls` list each type, not DataType.
    return pl.Series(values=pa.nulls(0, dtype)).dtype  # type: ignore[call-overload]


def arrow_array(values: Sequence[Any] | npt.NDArray[Any], dtype: pa.DataType) -> pa.Array[Any]:
    """`pa.array(values, dtype)` for a list of Python values or a NumPy array, built by
    polars: pyarrow's own conversions (`pa.array`, `pa.table`, `pa.scalar`, `to_numpy`, a
    NumPy argument to a compute function) import pandas to check for pandas objects, 0.22 s
    on a run's critical path, and a run's own process needs no pandas."""
    series = pl.Series(values=values, dtype=polars_dtype(dtype), strict=True)
    return series.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(dtype)


def numpy_of(array: pa.Array[Any] | pa.ChunkedArray[Any]) -> Any:
    """`array.to_numpy()` through polars, for the same reason as `arrow_array`: pyarrow's
    `to_numpy` imports pandas too. Nulls come out as NaN (floats) or None (objects)."""
    return pl.Series(values=array).to_numpy()


_POLARS_TYPES: dict[pa.DataType, pl.DataType] = {
    pa.string(): pl.String(),
    pa.large_string(): pl.String(),
    pa.bool_(): pl.Boolean(),
    pa.int32(): pl.Int32(),
    pa.int64(): pl.Int64(),
    pa.float64(): pl.Float64(),
    # The review's band keys and name tokens, converted batch by batch (`arrow_array`).
    pa.uint64(): pl.UInt64(),
    pa.list_(pa.string()): pl.List(pl.String()),
}


STR = pa.string()

AUTHORS = Table(
    name="authors",
    comment="One row per distinct author (casefolded display name), from the author pages.",
    columns=(
        Column("author_id", STR, False, "Stable id: hash of the casefolded display name."),
        Column("display_name", STR, False, "Name as shown: 'Given Family[ Suffix]'."),
        Column("name_raw", STR, False, "The page's name line, whitespace collapsed."),
        Column("family_name", STR, True, "Family name; null when the name has no comma."),
        Column("given_name", STR, True, "Given name(s); null when the name has no comma."),
        Column("suffix", STR, True, "Suffix such as 'Jr.' from 'Family, Suffix, Given'."),
    ),
    primary_key=("author_id",),
)

PAPERS = Table(
    name="papers",
    comment="One row per distinct paper (casefolded title + abstract), de-duplicated.",
    columns=(
        Column("paper_id", STR, False, "Stable id: hash of the casefolded title and abstract."),
        Column("title", STR, False, "Title, verbatim (LaTeX kept), from the first copy."),
        Column("source", STR, False, "Source line, verbatim, e.g. 'arXiv.org Machine Learning'."),
        Column("subject", STR, True, "Subject split out of an 'arXiv.org <Subject>' source."),
        Column(
            "abstract",
            STR,
            True,
            "Abstract; paragraphs joined by a blank line; null if none.",
            long_text=True,
        ),
    ),
    primary_key=("paper_id",),
)

AUTHORSHIP = Table(
    name="authorship",
    comment="One row per author-paper pair: the paper is listed on the author's page.",
    columns=(
        Column("author_id", STR, False, "The author (authors.author_id)."),
        Column("paper_id", STR, False, "The paper (papers.paper_id)."),
        Column("source_file", STR, False, "Page file the pair was first seen on (lineage)."),
    ),
    primary_key=("author_id", "paper_id"),
    foreign_keys=(
        ForeignKey("author_id", "authors", "author_id"),
        ForeignKey("paper_id", "papers", "paper_id"),
    ),
)

PAPER_VARIANTS = Table(
    name="paper_variants",
    comment=(
        "Listing ledger: each distinct exact text of a paper (title, source, abstract) once; "
        "the listings that show it point here."
    ),
    columns=(
        Column("variant_id", STR, False, "Stable id: hash of the exact title, source, abstract."),
        Column("paper_id", STR, False, "The paper this text was merged into (papers.paper_id)."),
        Column("title", STR, False, "Title, verbatim, as this variant shows it."),
        Column("source", STR, False, "Source line, verbatim, as this variant shows it."),
        Column(
            "abstract",
            STR,
            True,
            "Abstract as this variant shows it; null if none.",
            long_text=True,
        ),
    ),
    primary_key=("variant_id",),
    foreign_keys=(ForeignKey("paper_id", "papers", "paper_id"),),
)

LISTINGS = Table(
    name="listings",
    comment=(
        "Listing ledger: one row per paper listing on a page, so every merge can be explained: "
        "which pages listed a paper, in which exact text, and which copy was kept."
    ),
    columns=(
        Column("source_file", STR, False, "Page file the listing is on (manifest.file_name)."),
        Column("position", pa.int32(), False, "0-based position of the listing on its page."),
        Column("author_id", STR, False, "The page's author (authors.author_id)."),
        Column("paper_id", STR, False, "The paper it was merged into (papers.paper_id)."),
        Column("variant_id", STR, False, "The exact text it shows (paper_variants.variant_id)."),
        Column(
            "is_canonical",
            pa.bool_(),
            False,
            "True on the paper's first listing in file order: its text is the one in papers.",
        ),
    ),
    primary_key=("source_file", "position"),
    foreign_keys=(
        ForeignKey("author_id", "authors", "author_id"),
        ForeignKey("paper_id", "papers", "paper_id"),
        ForeignKey("variant_id", "paper_variants", "variant_id"),
    ),
)

REJECTED_FILES = Table(
    name="rejected_files",
    comment="Input files rejected as a whole; a copy is kept under quarantine/ when it was read.",
    columns=(
        Column("file_name", STR, False, "File name, verbatim (escaped, behind '/', if invalid)."),
        Column("sha256", STR, True, "SHA-256 of the file's bytes; null if it was never read."),
        Column("reason_code", STR, False, "BAD_FILE_NAME, UNSAFE_LINK, ..., INCOMPLETE_PAPER."),
        Column("line", pa.int64(), True, "Line the problem was found on, when there is one."),
        Column("message", STR, False, "What is wrong and what to do about it."),
        Column(
            "quarantined",
            pa.bool_(),
            False,
            "True when a copy is kept under quarantine/ (never for files not read whole).",
        ),
    ),
    primary_key=("file_name",),
)

TS = pa.timestamp("us", tz="UTC")
I64 = pa.int64()

MANIFEST = Table(
    name="manifest",
    comment="Every input file seen: size, hash, when first and last seen, and its status.",
    columns=(
        Column("file_name", STR, False, "File name, verbatim (authorship.source_file)."),
        Column("size", I64, False, "Size in bytes when last seen."),
        Column("mtime_ns", I64, False, "Modification time (ns) when last seen."),
        Column("sha256", STR, True, "SHA-256 of the content when last read; null if never read."),
        Column("first_seen", TS, False, "When a run first saw this file name."),
        Column("last_seen", TS, False, "When a run last saw this file name."),
        Column("status", STR, False, "loaded, rejected, or deleted (gone from the seeds)."),
        Column("parsed_run_id", STR, True, "The run that parsed this content (runs.run_id)."),
    ),
    primary_key=("file_name",),
)

RUNS = Table(
    name="runs",
    comment="One row per run: timing, files, rows, validation outcome, software version.",
    columns=(
        Column("run_id", STR, False, "Run id: UTC start time plus a random suffix."),
        Column("started_at", TS, False, "When the run started."),
        Column("finished_at", TS, False, "When the run finished building (before publish)."),
        Column("status", STR, False, "published, or validation_failed (nothing published)."),
        Column("full_refresh", pa.bool_(), False, "True when the cache was ignored."),
        Column("files_read", I64, False, "Input files found."),
        Column("files_parsed", I64, False, "Files parsed in this run."),
        Column("files_reused", I64, False, "Unchanged files whose parsed records were reused."),
        Column("files_rejected", I64, False, "Files rejected (see rejected_files)."),
        Column("files_deleted", I64, False, "Files gone since the previous run."),
        Column("authors_rows", I64, False, "Rows in authors."),
        Column("papers_rows", I64, False, "Rows in papers."),
        Column("authorship_rows", I64, False, "Rows in authorship."),
        Column("validation_success", pa.bool_(), False, "Did every expectation pass?"),
        Column("expectations_evaluated", I64, False, "Expectations evaluated."),
        Column("expectations_failed", I64, False, "Expectations that failed."),
        Column("software_version", STR, False, "authorgraph version that ran."),
        Column(
            "warnings",
            STR,
            True,
            "The run's warnings, one per line (layout drift, repairs...); null if none.",
        ),
    ),
    primary_key=("run_id",),
)

VALIDATION_RESULTS = Table(
    name="validation_results",
    comment=(
        "Every expectation of every suite, as the run that published this version judged it "
        "(`authorgraph report` shows them; GX's Data Docs need scripts from CDNs)."
    ),
    columns=(
        Column("run_id", STR, False, "The run that validated (runs.run_id)."),
        Column("ordinal", I64, False, "Order of the expectation: suite by suite, as declared."),
        Column("suite", STR, False, "Suite name (expectations/suites/<suite>.json)."),
        Column("expectation", STR, False, "GX expectation type."),
        Column("column_name", STR, True, "The column it judges, if one."),
        Column("status", STR, False, "passed, failed, or warning (failed but only warns)."),
        Column("severity", STR, False, "error (a failure stops the run) or warning."),
        Column("observed", STR, False, "What was seen, as JSON (value, unexpected count...)."),
        Column("description", STR, True, "What a failure means, when the suite says."),
    ),
    primary_key=("run_id", "ordinal"),
)

F64 = pa.float64()

PAPER_REVIEW = Table(
    name="paper_review",
    comment=(
        "Pairs of distinct papers that may be one paper (same title, or near-equal abstracts), "
        "for a person to review; nothing is merged."
    ),
    columns=(
        Column("paper_id_a", STR, False, "The pair's smaller paper id (papers.paper_id)."),
        Column("paper_id_b", STR, False, "The pair's larger paper id (papers.paper_id)."),
        Column(
            "reason",
            STR,
            False,
            "SAME_TITLE (folded titles equal, abstracts differ) or NEAR_ABSTRACT "
            "(abstract similarity >= 0.8); a pair meeting both is SAME_TITLE.",
        ),
        Column(
            "score",
            F64,
            True,
            "Jaccard similarity of the abstracts' word 3-grams (casefolded); null when an "
            "abstract is missing or has fewer than 3 words.",
        ),
    ),
    primary_key=("paper_id_a", "paper_id_b"),
    foreign_keys=(
        ForeignKey("paper_id_a", "papers", "paper_id"),
        ForeignKey("paper_id_b", "papers", "paper_id"),
    ),
)

AUTHOR_REVIEW = Table(
    name="author_review",
    comment=(
        "Pairs of distinct authors that may be one person (names equal but for accents, or "
        "given names compatible as initials), for a person to review; nothing is merged."
    ),
    columns=(
        Column("author_id_a", STR, False, "The pair's smaller author id (authors.author_id)."),
        Column("author_id_b", STR, False, "The pair's larger author id (authors.author_id)."),
        Column(
            "reason",
            STR,
            False,
            "ACCENTS (display names equal without accents and case) or INITIALS (family names "
            "equal so, given names compatible as initials); a pair meeting both is ACCENTS.",
        ),
        Column(
            "shared_coauthors",
            I64,
            False,
            "Authors other than the two who share a paper with both (from authorship).",
        ),
    ),
    primary_key=("author_id_a", "author_id_b"),
    foreign_keys=(
        ForeignKey("author_id_a", "authors", "author_id"),
        ForeignKey("author_id_b", "authors", "author_id"),
    ),
)

#: The review queues: built from the core tables, published beside them, never merged into them.
REVIEW_TABLES: tuple[Table, ...] = (PAPER_REVIEW, AUTHOR_REVIEW)

#: The three tables the suites validate, in load order (referenced tables first).
CORE_TABLES: tuple[Table, ...] = (AUTHORS, PAPERS, AUTHORSHIP)
#: The listing ledger: how listings on pages became papers (checked by the `ledger` suite).
LEDGER_TABLES: tuple[Table, ...] = (PAPER_VARIANTS, LISTINGS)
#: Every table the build makes from the parsed pages, in load order (the review queues are
#: made from the core tables once they are built).
BUILT_TABLES: tuple[Table, ...] = (*CORE_TABLES, *LEDGER_TABLES, *REVIEW_TABLES)
#: Every published table, in load order.
ALL_TABLES: tuple[Table, ...] = (
    *BUILT_TABLES,
    REJECTED_FILES,
    MANIFEST,
    RUNS,
    VALIDATION_RESULTS,
)
TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in ALL_TABLES}

#: Reason codes for rejected files, in the order they are checked: first what the listing
#: and the open decide (E-rules), then the size, then the content.
REASON_CODES: tuple[str, ...] = (
    "BAD_FILE_NAME",
    "UNSAFE_LINK",
    "UNREADABLE_FILE",
    "FILE_TOO_LARGE",
    "EMPTY_FILE",
    "BINARY_CONTENT",
    "INVALID_UTF8",
    "MISSING_HEADER",
    "MISSING_AUTHOR_NAME",
    "INCOMPLETE_PAPER",
)
