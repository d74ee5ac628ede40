"""Validate the tables with the Great Expectations suites in `expectations/suites/`.

The suites are plain JSON, one per table plus one cross-table suite, loaded into an ephemeral
GX context (nothing is written outside the Data Docs folder). A table arrives as a Parquet file
(or, from tests and small callers, a polars frame) and is never handed to GX whole:

- row-level expectations (each row judged alone: not null, type, regex, lengths, value sets...)
  run on chunks of at most `chunk_rows` rows of only the columns they name, read with
  `ParquetFile.iter_batches`; with `changed=`, only on the changed rows of that table. Rows of
  more than `CHUNK_BYTES` go to GX a column at a time: GX copies the frame it is given, every
  column of it, for each metric it filters (the rows not null, the unexpected ones), so a
  papers chunk with its abstracts was copied again for each check of its titles;
- set-level expectations (uniqueness, row counts...) run once on the whole table, projected to
  the columns they name; uniqueness runs on partitions of the keys split by a hash of the
  first key column (equal keys meet in one partition). A caller with large tables splits
  them on disk beforehand (`key_parts`), so that no table's keys are ever held whole;
- schema-level expectations (the column list) run on a zero-row frame with every column.

`ROW_LEVEL_TYPES`, `SET_LEVEL_TYPES` and `SCHEMA_LEVEL_TYPES` are the one place that says which
is which. The cross-table suite judges `relationships_frame`, built from key-only projections,
or the same rows built on disk by the caller (`tables[RELATIONSHIPS]`) and read in chunks.
Each chunk goes to GX as pandas with Arrow dtypes; every expectation is counted and reported
once, whatever the number of chunks.

The Data Docs site is built in a fresh folder and renamed into place: a `data_docs` symlink
planted in the warehouse is replaced by the new folder, and what it pointed at is left untouched.
The fresh folder's name carries its builder (host and pid): a build killed half-way leaves its
folder, and the next build on that host removes it once that process has ended.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from authorgraph.expectations.gx_configurations import runs_with_kept_configurations

# Great Expectations and pandas are imported when a validation runs, not with this module:
# GX alone takes about 4 s to import, and a run whose inputs are unchanged never validates.
if TYPE_CHECKING:
    import pandas as pd

logging.getLogger("great_expectations").setLevel(logging.WARNING)

SUITES_DIR = Path(__file__).parent / "suites"
SITE_NAME = "local_site"
RELATIONSHIPS = "authorship_relationships"
#: The suite over the run-level page statistics (authorgraph.pipelines.transform.drift).
LAYOUT_DRIFT = "layout_drift"
MAX_EXAMPLES = 5
#: What GX keeps of each expectation's result: counts and a few offending values.
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES}
#: An offending text kept in an expectation's result is cut to this many characters.
EXAMPLE_CHARS = 200
# Rows per chunk handed to GX. Peak memory follows the chunk (GX copies text columns while
# matching regexes); each chunk costs a fixed 0.2-0.5 s of GX bookkeeping. Measured on 200k
# author pages (1.5M authorship rows, 1.1M papers): 50k rows 59 s and 1.6 GiB peak, 100k rows
# 40 s and 2.0 GiB, 200k rows 2.8 GiB; whole tables took 8.0 GiB.
DEFAULT_CHUNK_ROWS = 100_000
#: A row-level chunk of a Parquet table holds at most about this many bytes of its columns
#: (GX copies values into Python objects for regex checks: a chunk of abstracts costs several
#: times its Arrow size).
CHUNK_BYTES = 24 * 2**20

TableInput = Path | pl.DataFrame  # a Parquet file of the whole table, or a frame
_T = TypeVar("_T")

# Which expectations judge each row alone (run per chunk, and only on changed rows when told),
# which judge the set of rows (run once on the whole table, projected to the columns they
# name) and which judge only the column names (run on a zero-row frame with every column).
# A type in none of these is treated as set-level on the columns it names, or on every column
# when it names none: correct, only costlier. A row-level expectation with `mostly` below 1
# judges a share of all rows, so it is set-level too.
ROW_LEVEL_TYPES = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
        "expect_column_values_to_match_regex_list",
        "expect_column_values_to_not_match_regex_list",
        "expect_column_values_to_match_like_pattern",
        "expect_column_values_to_not_match_like_pattern",
        "expect_column_values_to_match_like_pattern_list",
        "expect_column_values_to_not_match_like_pattern_list",
        "expect_column_values_to_match_strftime_format",
        "expect_column_values_to_be_dateutil_parseable",
        "expect_column_values_to_be_json_parseable",
        "expect_column_values_to_match_json_schema",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal",
        "expect_column_pair_values_to_be_equal",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_in_set",
        "expect_select_column_values_to_be_unique_within_record",
        "expect_multicolumn_sum_to_equal",
    }
)
SET_LEVEL_TYPES = frozenset(
    {
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
        "expect_column_values_to_be_increasing",
        "expect_column_values_to_be_decreasing",
        "expect_column_unique_value_count_to_be_between",
        "expect_column_proportion_of_unique_values_to_be_between",
        "expect_column_distinct_values_to_be_in_set",
        "expect_column_distinct_values_to_contain_set",
        "expect_column_distinct_values_to_equal_set",
        "expect_column_most_common_value_to_be_in_set",
        "expect_column_min_to_be_between",
        "expect_column_max_to_be_between",
        "expect_column_mean_to_be_between",
        "expect_column_median_to_be_between",
        "expect_column_stdev_to_be_between",
        "expect_column_sum_to_be_between",
        "expect_column_quantile_values_to_be_between",
        "expect_column_kl_divergence_to_be_less_than",
        "expect_column_value_z_scores_to_be_less_than",  # against the whole column's mean
        "expect_column_proportion_of_non_null_values_to_be_between",
        "expect_table_row_count_to_equal",
        "expect_table_row_count_to_be_between",
        "expect_table_row_count_to_equal_other_table",
    }
)
#: Set-level expectations that judge rows by their key alone (duplicates): every row with a
#: given key value lands in the same partition of a hash of that key, so each runs over the
#: whole table one partition at a time, with the same outcome and counts as on the whole.
KEY_LEVEL_TYPES = frozenset(
    {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
)
SCHEMA_LEVEL_TYPES = frozenset(
    {
        "expect_table_columns_to_match_ordered_list",
        "expect_table_columns_to_match_set",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
        "expect_column_to_exist",
    }
)


@dataclass(frozen=True)
class Failure:
    """One failed expectation: where, what, and a few offending values."""

    suite: str
    expectation: str
    column: str | None
    unexpected_count: int | None
    examples: list[Any] = field(default_factory=list)
    #: What the failure means to a person, when the suite says (a statistic's suites do).
    message: str | None = None

    def describe(self) -> str:
        """One line: `suite: expectation(column): N unexpected, e.g. [...]`, or
        `suite: <message>` when the suite gives one."""
        if self.message:
            return f"{self.suite}: {self.message}"
        where = f"({self.column})" if self.column else ""
        count = f": {self.unexpected_count} unexpected" if self.unexpected_count else ""
        examples = f", e.g. {self.examples}" if self.examples else ""
        return f"{self.suite}: {self.expectation}{where}{count}{examples}"


PASSED, FAILED, WARNING = "passed", "failed", "warning"
#: `meta.severity` of an expectation that warns instead of failing (the default is `error`).
SEVERITY_WARNING, SEVERITY_ERROR = "warning", "error"


@dataclass(frozen=True)
class ExpectationResult:
    """One declared expectation's outcome, whatever it was (JSON-able with `to_dict`).

    `status` is `passed`, `failed` (the run stops) or `warning` (it failed but only warns: its
    severity is `warning`, or its suite judges too small a run). `observed` is what was
    seen: a one-row input's value in the column (`value`), and the unexpected rows' count and
    percent (`unexpected_count`, `unexpected_percent`) or GX's `observed_value` when it has one.
    """

    suite: str
    expectation: str
    column: str | None
    status: str
    severity: str
    observed: dict[str, Any]
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-able values."""
        return {
            "suite": self.suite,
            "expectation": self.expectation,
            "column": self.column,
            "status": self.status,
            "severity": self.severity,
            "observed": _jsonable(self.observed),
            "description": self.description,
        }


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of every suite: counts, failures, warnings, every expectation's result and
    the Data Docs index."""

    evaluated: int
    failures: list[Failure]
    data_docs_index: Path | None
    carried_over: bool = False  # the inputs were unchanged: the last run's outcome stands
    #: One line per expectation that failed but only warns (they never stop a run).
    warnings: list[str] = field(default_factory=list)
    #: One per declared expectation, in suite order (empty when carried over).
    results: list[ExpectationResult] = field(default_factory=list)
    #: The run-level page statistics the layout_drift suite judged (None if not judged).
    page_stats: dict[str, Any] | None = None

    @property
    def success(self) -> bool:
        """True when every expectation passed."""
        return not self.failures

    def headline(self) -> str:
        """`passed (N expectations)` or `FAILED (k of N expectations)`."""
        if self.carried_over:
            return f"tables unchanged: the last run's pass stands ({self.evaluated} expectations)"
        if self.success:
            return f"passed ({self.evaluated} expectations)"
        return f"FAILED ({len(self.failures)} of {self.evaluated} expectations)"

    def failure_lines(self) -> list[str]:
        """One line per failed expectation."""
        return [f.describe() for f in self.failures]


#: Modules GX imports with its expectations but uses only inside functions we never call (the
#: KL-divergence and KS-test expectations): loaded on first attribute access instead of with
#: GX, 0.7 s of its 2.5 s import. Only a submodule taken with `from package import name` stays
#: lazy: a plain `import altair` reads the module's `__spec__`, which loads it at once.
DEFERRED_BY_GX = ("scipy.stats",)
#: GX's pandas engine fingerprints every batch under this many bytes, an MD5 of pandas' hash of
#: every value, only to record it among the batch's markers, which nothing here reads: 0.45 s
#: of a 20k-page validation (3.7 s). `import_gx` sets it to 0: no batch is fingerprinted.
GX_FINGERPRINT_BYTES = 0
#: Packages GX imports only for its SQL datasources, which authorgraph never uses (its batches
#: are pandas frames): sqlalchemy is 0.2 s of GX's 1.7 s import. Prefect needs it, so only a
#: process that validates and nothing else (the run's validating child) leaves it out, with
#: `import_gx(sql=False)`; GX then runs as it does where sqlalchemy is not installed.
SQL_ONLY_FOR_GX = ("sqlalchemy",)


def defer_import(name: str) -> None:
    """Put a lazy module for `name` in `sys.modules` (importlib's `LazyLoader`): importing it
    costs nothing; its code runs on the first attribute access. Nothing when it is already
    imported or not installed."""
    import importlib.util

    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:  # as the import system does: `from scipy import stats` finds it there
        setattr(sys.modules[parent], child, module)


def import_gx(sql: bool = True) -> Any:
    """Great Expectations, imported on first use, quiet and offline. `sql=False` (a process
    that only validates) imports it without its SQL packages (`SQL_ONLY_FOR_GX`): they stay
    unimportable in this process from then on."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    for name in DEFERRED_BY_GX:
        defer_import(name)
    if not sql:
        for name in SQL_ONLY_FOR_GX:
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: ImportError
    import great_expectations as gx
    import great_expectations.core.expectation_suite
    import great_expectations.data_context.types.base
    import great_expectations.execution_engine.pandas_execution_engine as engine
    import great_expectations.expectations.expectation as expectation
    import great_expectations.expectations.expectation_configuration
    import great_expectations.render.view.view as view

    from authorgraph.expectations import gx_configurations
    from authorgraph.expectations.docs_templates import CachingEnvironment

    engine.HASH_THRESHOLD = GX_FINGERPRINT_BYTES  # see GX_FINGERPRINT_BYTES
    view.Environment = CachingEnvironment  # type: ignore[misc]  # the class GX makes: a subclass
    gx_configurations.install(expectation.Expectation)
    return gx


def prepare_to_validate(stop: Callable[[], bool]) -> None:
    """Ready a process that will validate and do nothing else (the run's validating child,
    while the run starts): GX imported without its SQL packages, then its Data Docs templates
    compiled until `stop()` is true (only a head start: if that fails, as it could after a GX
    upgrade, the Data Docs build compiles them; tests call `compile_ahead` directly)."""
    import_gx(sql=False)
    from authorgraph.expectations.docs_templates import compile_ahead

    with contextlib.suppress(Exception):
        compile_ahead(stop)


class ValidationFailed(Exception):
    """A suite failed: the run stops and nothing is published."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__("; ".join(report.failure_lines()))
        self.report = report


class TableUnreadable(Exception):
    """A table's Parquet file is missing or cannot be read."""


def relationships_frame(frames: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Authorship left-joined to authors and papers: a null *_ref marks a dangling row.

    Needs only the keys: authorship (author_id, paper_id), authors (author_id), papers
    (paper_id); any other column is ignored.
    """
    authors = frames["authors"].select(pl.col("author_id"), author_ref=pl.col("author_id"))
    papers = frames["papers"].select(pl.col("paper_id"), paper_ref=pl.col("paper_id"))
    return (
        frames["authorship"]
        .select("author_id", "paper_id")
        .join(authors.unique("author_id"), on="author_id", how="left")
        .join(papers.unique("paper_id"), on="paper_id", how="left")
    )


# The only columns `relationships_frame` reads: a key-only projection of each table.
RELATIONSHIP_KEYS = {
    "authorship": ["author_id", "paper_id"],
    "authors": ["author_id"],
    "papers": ["paper_id"],
}


def to_pandas(data: pl.DataFrame | pa.Table | pa.RecordBatch) -> pd.DataFrame:
    """Hand a frame or Arrow chunk to GX as pandas with Arrow dtypes (nullable types survive)."""
    import pandas as pd

    if isinstance(data, pl.DataFrame):
        data = data.to_arrow(compat_level=pl.CompatLevel.oldest())
    return data.to_pandas(types_mapper=pd.ArrowDtype)


@dataclass(frozen=True)
class _Source:
    """One table to validate: a Parquet file read in pieces, or a frame sliced the same way."""

    data: TableInput

    def _read(self, what: Callable[[], _T]) -> _T:
        try:
            return what()
        except (OSError, pa.ArrowException) as exc:
            message = " ".join(str(exc).split())  # one line
            raise TableUnreadable(f"cannot read {self.data}: {message}") from None

    def column_names(self) -> list[str]:
        if isinstance(self.data, pl.DataFrame):
            return self.data.columns
        path = self.data
        return list(self._read(lambda: pq.read_schema(path)).names)

    def _present(self, columns: Sequence[str]) -> list[str]:
        """The named columns the table has (a missing one fails its expectations in GX)."""
        names = self.column_names()
        return [c for c in dict.fromkeys(columns) if c in names]

    def num_rows(self) -> int:
        if isinstance(self.data, pl.DataFrame):
            return self.data.height
        path = self.data
        return int(self._read(lambda: pq.read_metadata(path)).num_rows)

    def num_bytes(self) -> int:
        """The table's uncompressed size: from the Parquet footer, or the frame's estimate."""
        if isinstance(self.data, pl.DataFrame):
            return int(self.data.estimated_size())
        path = self.data
        meta = self._read(lambda: pq.read_metadata(path))
        return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))

    def empty(self) -> pa.Table:
        """Zero rows, every column: what the schema-level expectations judge."""
        if isinstance(self.data, pl.DataFrame):
            return self.data.head(0).to_arrow(compat_level=pl.CompatLevel.oldest())
        path = self.data
        return self._read(lambda: pq.read_schema(path)).empty_table()

    def project(self, columns: Sequence[str]) -> pa.Table:
        """Every row, only these columns."""
        wanted = self._present(columns)
        if isinstance(self.data, pl.DataFrame):
            if not wanted:  # no columns, but every row (a row count)
                return pa.table({"_": pa.nulls(self.data.height)}).select([])
            return self.data.select(wanted).to_arrow(compat_level=pl.CompatLevel.oldest())
        path = self.data
        return self._read(lambda: pq.read_table(path, columns=wanted))

    def chunks(
        self, columns: Sequence[str], chunk_rows: int
    ) -> Iterator[pa.Table | pa.RecordBatch]:
        """Only these columns, at most `chunk_rows` rows at a time; one empty chunk if no rows."""
        wanted = self._present(columns)
        if isinstance(self.data, pl.DataFrame):
            frame = self.data.select(wanted)
            for offset in range(0, max(frame.height, 1), chunk_rows):
                yield frame.slice(offset, chunk_rows).to_arrow(compat_level=pl.CompatLevel.oldest())
            return
        path = self.data
        # pre_buffer=False: with pyarrow's default (True) the reader keeps every column chunk
        # it has read until it is closed, so a chunked read of abstracts grows with the table.
        file = self._read(lambda: pq.ParquetFile(path, pre_buffer=False))
        rows = min(chunk_rows, _rows_within(file.metadata, wanted, CHUNK_BYTES))
        batches = self._read(lambda: file.iter_batches(batch_size=rows, columns=wanted))
        seen = False
        while (batch := self._read(lambda: next(batches, None))) is not None:
            if batch.num_rows:
                seen = True
                yield batch
        if not seen:
            yield file.schema_arrow.empty_table().select(wanted)


def _rows_within(meta: pq.FileMetaData, columns: Sequence[str], budget: int) -> int:
    """How many rows of these columns take about `budget` bytes uncompressed (at least 1,000):
    wide rows (paper abstracts) come in smaller chunks than narrow ones (ids)."""
    size = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for j in range(group.num_columns):
            column = group.column(j)
            if column.path_in_schema in columns:
                size += column.total_uncompressed_size
    per_row = size / meta.num_rows if meta.num_rows else 0
    return max(int(budget / per_row), 1_000) if per_row else budget


def key_part_count(rows: int, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> int:
    """How many partitions the keys-level expectations of a table of `rows` rows judge."""
    return max(-(-rows // max(chunk_rows, 1)), 1)


def key_columns(suites_dir: Path = SUITES_DIR) -> dict[str, list[str]]:
    """Per table, the columns its suite's keys-level expectations name, the one partitions
    are hashed on first (tables without such expectations are left out)."""
    found: dict[str, list[str]] = {}
    for path in sorted(suites_dir.glob("*.json")):
        for expectation in json.loads(path.read_text(encoding="utf-8"))["expectations"]:
            if expectation_level(expectation) == "keys":
                columns = found.setdefault(path.stem, [])
                named = _named_columns(expectation.get("kwargs", {})) or []
                columns += [c for c in named if c not in columns]
    return found


def key_part_counts(
    tables: Mapping[str, TableInput], chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> dict[str, int]:
    """For each table with keys-level expectations and more than one chunk of rows, how many
    partitions its keys are judged in (from the Parquet footers; raises TableUnreadable)."""
    rows = {n: _Source(tables[n]).num_rows() for n in key_columns() if n in tables}
    counts = {name: key_part_count(r, chunk_rows) for name, r in rows.items()}
    return {name: count for name, count in counts.items() if count > 1}


def key_partitions(keys: pa.Table, chunk_rows: int) -> Iterator[pa.Table]:
    """The key columns' rows split into about rows / chunk_rows partitions by a hash of the
    first key column, so equal keys share a partition (one partition if the table is small)."""
    parts = key_part_count(keys.num_rows, chunk_rows)
    if parts == 1 or keys.num_columns == 0:
        yield keys
        return
    frame = pl.from_arrow(keys)
    assert isinstance(frame, pl.DataFrame)
    bucket = frame.get_column(keys.column_names[0]).hash(seed=0) % parts
    for number in range(parts):
        yield frame.filter(bucket == number).to_arrow(compat_level=pl.CompatLevel.oldest())


def _config_not_saved() -> None:
    """What our ephemeral GX context does to save its project config: nothing (`_context`)."""


def _context(docs_dir: Path) -> Any:
    gx = import_gx()
    ProgressBarsConfig = gx.data_context.types.base.ProgressBarsConfig
    context = gx.get_context(mode="ephemeral")
    # An ephemeral context "saves" its project config by writing all of it as YAML to an
    # in-memory store that nothing reads back, on every setting, data source and asset added:
    # 15 times in a validation of seeds/ (35 ms of its 0.53 s), each dump longer than the last.
    context._save_project_config = _config_not_saved
    context.enable_analytics(False)
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.update_data_docs_site(
        SITE_NAME,
        {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir.resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


def _clean(value: Any) -> Any:
    import pandas as pd

    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    try:
        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def _column(kwargs: dict[str, Any]) -> str | None:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_list" in kwargs:
        return ", ".join(kwargs["column_list"])
    return None


def _replace_dir(path: Path, build: Callable[[Path], object]) -> Path:
    """Build a folder's new contents in a fresh folder beside it, then swap it in by rename.

    Whatever was at `path` (a folder, or a planted symlink) is moved aside and removed without
    following links, so a symlink's target is never written or deleted.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in path.parent.glob(f".{path.name}.*.old"):  # from a killed run
        _remove(leftover)
    for leftover in path.parent.glob(f".{path.name}.*.new"):  # a killed builder's
        if not _builder_alive(leftover.name):
            _remove(leftover)
    fresh = path.with_name(f".{path.name}.{_builder_tag()}-{secrets.token_hex(8)}.new")
    os.mkdir(fresh, 0o777)
    try:
        build(fresh)
        aside: list[Path] = []
        while True:
            old = path.with_name(f".{path.name}.{secrets.token_hex(8)}.old")
            try:
                os.rename(path, old)  # a rename moves a symlink itself, never its target
                aside.append(old)
            except FileNotFoundError:
                pass
            try:
                os.rename(fresh, path)
                break
            except OSError as exc:  # another writer swapped its folder in meanwhile: again
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    for old in aside:
        _remove(old)
    return path


def _builder_tag() -> str:
    """`<host>-<pid>` of this process, for the name of a folder it builds: `<host>` a short
    hash of the host name (a warehouse on a shared disk may see builders on other hosts)."""
    import hashlib
    import socket

    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    return f"{host}-{os.getpid()}"


def _builder_alive(name: str) -> bool:
    """False only when a `.<folder>.<host>-<pid>-<hex>.new` folder was built on this host by
    a process that has ended (killed while it built: nothing else will finish or remove it).
    A name of another host, or without a builder (an older version's), counts as alive."""
    host, _, rest = name.rsplit(".", 2)[-2].partition("-")
    pid = rest.partition("-")[0]
    if host != _builder_tag().partition("-")[0] or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, OverflowError):  # ended, or no pid can be that large
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove(path: Path) -> None:
    """Remove a file, a symlink (not what it points to) or a folder tree."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class _Collected:
    """What the suites found, gathered as they run."""

    evaluated: int = 0
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    results: list[ExpectationResult] = field(default_factory=list)


def validate_tables(
    tables: Mapping[str, TableInput],
    docs_dir: Path,
    suites_dir: Path = SUITES_DIR,
    changed: Mapping[str, TableInput] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    page_stats: pl.DataFrame | None = None,
    key_parts: Mapping[str, Sequence[Path]] | None = None,
) -> ValidationReport:
    """Run each table's suite and the cross-table suite; rebuild the Data Docs site.

    `tables` holds each core table whole (a Parquet file or a frame). `changed[name]`, when
    given, holds only the rows of that table that are new or different since its last
    validated version under the same suites: its row-level expectations judge only those
    rows, while set- and schema-level expectations and the cross-table suite always judge the
    whole table. `page_stats`, when given, is the run's one row of page statistics
    (authorgraph.pipelines.transform.drift), judged by the `layout_drift` suite.

    Large tables need not be held whole for the checks that judge all their rows at once:
    `tables[RELATIONSHIPS]`, when given, is the cross-table suite's input (as
    `relationships_frame` builds it), and `key_parts[name]` files that together hold that
    table's key columns (`key_columns`), equal keys in the same file, judged one at a time.
    Raises TableUnreadable when a Parquet file cannot be read.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    found = _Collected()
    extra = {} if page_stats is None else {LAYOUT_DRIFT: page_stats}

    def build(site_dir: Path) -> None:
        _run_suites(
            tables, changed or {}, site_dir, suites_dir, chunk_rows, found, extra, key_parts or {}
        )

    _replace_dir(docs_dir, build)
    index = docs_dir / "index.html"
    return ValidationReport(
        found.evaluated,
        found.failures,
        index if index.exists() else None,
        warnings=found.warnings,
        results=found.results,
        page_stats=None if page_stats is None else _jsonable(page_stats.row(0, named=True)),
    )


def expectation_level(expectation: dict[str, Any]) -> str:
    """`rows`, `keys`, `set` or `schema`: how much of a table this expectation (suite JSON)
    judges at once."""
    kind, kwargs = expectation["type"], expectation.get("kwargs", {})
    if kind in SCHEMA_LEVEL_TYPES:
        return "schema"
    if kind in KEY_LEVEL_TYPES and kwargs.get("mostly", 1) >= 1:
        return "keys"
    if kind in ROW_LEVEL_TYPES and kwargs.get("mostly", 1) >= 1:
        return "rows"
    return "set"


def _by_columns(declared: list[dict[str, Any]], indices: list[int]) -> list[list[int]]:
    """`indices` of `declared` grouped by the columns their expectations name, in order of
    first appearance (each group is one GX run on only its columns)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i in indices:
        key = tuple(_named_columns(declared[i].get("kwargs", {})) or ())
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _named_columns(kwargs: dict[str, Any]) -> list[str] | None:
    """The columns an expectation names, or None when it names none (a table-level one)."""
    names = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    names += list(kwargs.get("column_list", []))
    return [str(n) for n in names] or None


@dataclass
class _Outcome:
    """One expectation's results gathered over every chunk it ran on."""

    failed: bool = False
    unexpected_count: int | None = None
    element_count: int | None = None
    examples: list[Any] = field(default_factory=list)
    observed: list[Any] = field(default_factory=list)
    observed_value: Any = None

    def add(self, result: Any) -> None:
        outcome = result.result or {}
        count = outcome.get("unexpected_count")
        if count is not None:
            self.unexpected_count = (self.unexpected_count or 0) + int(count)
        elements = outcome.get("element_count")
        if elements is not None:
            self.element_count = (self.element_count or 0) + int(elements)
        if self.observed_value is None and outcome.get("observed_value") is not None:
            self.observed_value = outcome["observed_value"]
        if result.success:
            return
        self.failed = True
        room = MAX_EXAMPLES - len(self.examples)
        partial = outcome.get("partial_unexpected_list") or []
        self.examples += [_clean(v) for v in partial][: max(room, 0)]
        if not self.observed and "observed_value" in outcome:
            self.observed = [outcome["observed_value"]]

    def observations(self) -> dict[str, Any]:
        """What was observed over every chunk, as JSON-able values."""
        seen: dict[str, Any] = {}
        if self.observed_value is not None:
            seen["observed_value"] = self.observed_value
        if self.unexpected_count is not None:
            seen["unexpected_count"] = self.unexpected_count
            if self.element_count:
                seen["unexpected_percent"] = 100 * self.unexpected_count / self.element_count
        if self.examples:  # a few offending values, long texts cut short
            seen["examples"] = [
                v[:EXAMPLE_CHARS] if isinstance(v, str) else v for v in self.examples
            ]
        return {k: _jsonable(v) for k, v in seen.items()}


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy and pandas scalars unwrapped, NaN as None, the rest as text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and value != value:
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _number(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _message(expectation: dict[str, Any], value: Any) -> str | None:
    """`<column> <value> > <max>: <description>` for an expectation whose meta describes the
    shift it catches, judged on a one-row input (None without a description)."""
    description = (expectation.get("meta") or {}).get("description")
    if not description:
        return None
    kwargs = expectation.get("kwargs", {})
    column = _column(kwargs) or expectation["type"]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        high, low = kwargs.get("max_value"), kwargs.get("min_value")
        if high is not None and value > high:
            return f"{column} {_number(value)} > {_number(high)}: {description}"
        if low is not None and value < low:
            return f"{column} {_number(value)} < {_number(low)}: {description}"
    if value is not None:
        return f"{column} {_number(value)}: {description}"
    return f"{column}: {description}"


def _gate(meta: Mapping[str, Any], row: Mapping[str, Any] | None) -> str | None:
    """Why this suite's failures only warn: its input is a run smaller than the suite's
    `meta.min_papers` (its `papers` statistic). None when the suite judges the run."""
    least = meta.get("min_papers")
    if least is None or row is None or row.get("papers") is None:
        return None
    if int(row["papers"]) >= int(least):
        return None
    return f"only {row['papers']} papers, judged from {least}: a warning"


def _run_suites(
    tables: Mapping[str, TableInput],
    changed: Mapping[str, TableInput],
    site_dir: Path,
    suites_dir: Path,
    chunk_rows: int,
    found: _Collected,
    extra: Mapping[str, pl.DataFrame],
    key_parts: Mapping[str, Sequence[Path]],
) -> None:
    """Validate every input (the tables, their relationships, and `extra`: a suite's name to
    its input frame), gather every expectation's outcome in `found` (each counted once,
    whatever the number of chunks) and build the site in `site_dir`.

    An expectation whose `meta.severity` is `warning`, or any expectation of a suite whose
    `meta.min_papers` exceeds its one-row input's `papers`, warns instead of failing."""
    gx = import_gx()
    sources = {name: _Source(data) for name, data in tables.items()}
    inputs = dict(sources)
    # the cross-table suite needs all three tables, unless its input is given
    if RELATIONSHIPS not in sources and RELATIONSHIP_KEYS.keys() <= sources.keys():
        keys = {n: pl.DataFrame(sources[n].project(k)) for n, k in RELATIONSHIP_KEYS.items()}
        inputs[RELATIONSHIPS] = _Source(relationships_frame(keys))
        del keys
    inputs.update((name, _Source(frame)) for name, frame in extra.items())
    context = _context(site_dir)
    data_source = context.data_sources.add_pandas(name="authorgraph")
    ExpectationConfiguration = gx.expectations.expectation_configuration.ExpectationConfiguration
    ExpectationSuite = gx.core.expectation_suite.ExpectationSuite
    for name, source in inputs.items():
        doc = json.loads((suites_dir / f"{name}.json").read_text(encoding="utf-8"))
        declared = doc["expectations"]
        outcomes = [_Outcome() for _ in declared]
        all_columns: list[str] | None = None
        # A table of at most chunk_rows rows and CHUNK_BYTES bytes (and not limited to changed
        # rows) is judged whole, in one GX run: each run costs GX a fixed 0.1-0.5 s, and small
        # runs are the common case. A larger one is judged level by level, a column at a time.
        small = source.num_rows() <= chunk_rows and source.num_bytes() <= CHUNK_BYTES
        judged = _Source(changed[name]) if name in changed else source  # row-level ones
        if name not in changed and small:
            levels = [("whole", list(range(len(declared))))]
        else:
            levels = [
                ("schema", [i for i, e in enumerate(declared) if expectation_level(e) == "schema"])
            ]
            levels += [
                ("keys", [i]) for i, e in enumerate(declared) if expectation_level(e) == "keys"
            ]
            levels.append(
                ("set", [i for i, e in enumerate(declared) if expectation_level(e) == "set"])
            )
            # Rows over CHUNK_BYTES are judged a column at a time (see the module's docstring);
            # fewer go to one GX run, as a re-run's changed rows usually do.
            rows = [i for i, e in enumerate(declared) if expectation_level(e) == "rows"]
            if judged.num_bytes() > CHUNK_BYTES:
                levels += [("rows", group) for group in _by_columns(declared, rows)]
            else:
                levels.append(("rows", rows))
        for level, indices in levels:
            if not indices:
                continue
            several = level in ("keys", "rows")  # a part per key, a part per column
            part = f"{doc['name']}.{level}" + (f"-{indices[0]}" if several else "")
            suite = context.suites.add(
                ExpectationSuite(
                    name=part,
                    expectations=[
                        ExpectationConfiguration(
                            type=declared[i]["type"],
                            kwargs=declared[i]["kwargs"],
                            meta=declared[i].get("meta"),
                        ).to_domain_obj()
                        for i in indices
                    ],
                    meta=doc.get("meta"),
                )
            )
            by_id = {e.id: i for e, i in zip(suite.expectations, indices, strict=True)}
            batch = data_source.add_dataframe_asset(name=part).add_batch_definition_whole_dataframe(
                part
            )
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=part, data=batch, suite=suite)
            )
            columns: list[str] = []
            for i in indices:
                named = _named_columns(declared[i].get("kwargs", {}))
                if named is None:
                    if all_columns is None:
                        all_columns = source.column_names()
                    named = all_columns
                columns += named
            chunks: Iterator[pa.Table | pa.RecordBatch]
            if level == "whole":
                chunks = iter([source.project(source.column_names())])
            elif level == "schema":
                chunks = iter([source.empty()])
            elif level == "set":
                chunks = iter([source.project(columns)])
            elif level == "keys" and name in key_parts:  # split on disk, equal keys together
                chunks = (_Source(path).project(columns) for path in key_parts[name])
            elif level == "keys":
                chunks = key_partitions(source.project(columns), chunk_rows)
            else:
                chunks = judged.chunks(columns, chunk_rows)
            # The definition runs itself, without a Checkpoint around it: it stores its result
            # (what Data Docs are built from) all the same, and a Checkpoint only added a
            # second freshness check of every suite and a result object of its own: 0.06 s
            # of the 0.8 s a validation of seeds/ takes (and no actions are configured).
            for chunk in chunks:
                with runs_with_kept_configurations():
                    result = definition.run(
                        batch_parameters={"dataframe": to_pandas(chunk)},
                        result_format=RESULT_FORMAT,
                    )
                del chunk
                for r in result.results:
                    outcomes[by_id[r.expectation_config.id]].add(r)
        found.evaluated += len(declared)
        row = _single_row(source)
        gate = _gate(doc.get("meta") or {}, row)
        for expectation, outcome in zip(declared, outcomes, strict=True):
            _judge(name, expectation, outcome, row, gate, found)
    context.build_data_docs(site_names=[SITE_NAME])


def _single_row(source: _Source) -> dict[str, Any] | None:
    """A one-row frame's values by column (a statistics row), else None."""
    if isinstance(source.data, pl.DataFrame) and source.data.height == 1:
        return source.data.row(0, named=True)
    return None


def _judge(
    suite: str,
    expectation: dict[str, Any],
    outcome: _Outcome,
    row: Mapping[str, Any] | None,
    gate: str | None,
    found: _Collected,
) -> None:
    """Record one expectation's result, and its failure or warning."""
    meta = expectation.get("meta") or {}
    severity = str(meta.get("severity", SEVERITY_ERROR))
    column = _column(expectation.get("kwargs", {}))
    observed = outcome.observations()
    value = row.get(column) if row is not None and column is not None else None
    if value is not None:
        observed = {"value": _jsonable(value), **observed}
    status = PASSED
    if outcome.failed:
        failure = Failure(
            suite=suite,
            expectation=expectation["type"],
            column=column,
            unexpected_count=outcome.unexpected_count,
            examples=outcome.examples or outcome.observed,
            message=_message(expectation, value),
        )
        if severity == SEVERITY_WARNING or gate is not None:
            status = WARNING
            why = [] if severity == SEVERITY_WARNING else [f" ({gate})"]
            found.warnings.append(failure.describe() + "".join(why))
        else:
            status = FAILED
            found.failures.append(failure)
    found.results.append(
        ExpectationResult(
            suite=suite,
            expectation=expectation["type"],
            column=column,
            status=status,
            severity=severity,
            observed=observed,
            description=meta.get("description"),
        )
    )
