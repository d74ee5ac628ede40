"""The suites pass on the real tables and catch each kind of corruption (real GX, no Prefect).

Every corruption is checked with frames and with Parquet files as input; chunking, `changed=`
and the columns handed to GX are checked on the seeds tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from authorgraph.expectations import validate
from authorgraph.expectations.validate import (
    RELATIONSHIPS,
    SUITES_DIR,
    TableInput,
    TableUnreadable,
    ValidationReport,
    expectation_level,
    validate_tables,
)
from authorgraph.pipelines.config import Settings
from authorgraph.transforms.schema import CORE_TABLES
from tests.conftest import SEEDS, transform_only

Frames = dict[str, pl.DataFrame]
AsInput = Callable[[Frames], dict[str, TableInput]]
KEY_COLUMNS = ({"author_id"}, {"paper_id"}, {"author_id", "paper_id"})


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Frames:
    """The seeds' core tables (the only place these tests depend on the transform's API)."""
    settings = Settings(seeds=SEEDS, warehouse=tmp_path_factory.mktemp("wh"))
    tables = transform_only(settings).tables
    return {t.name: tables[t.name] for t in CORE_TABLES}


def to_parquet(frames: Frames, folder: Path) -> dict[str, TableInput]:
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, TableInput] = {}
    for name, frame in frames.items():
        frame.write_parquet(folder / f"{name}.parquet")
        paths[name] = folder / f"{name}.parquet"
    return paths


@pytest.fixture(params=["frames", "parquet"])
def as_input(request: pytest.FixtureRequest, tmp_path: Path) -> AsInput:
    """Hand the tables over as polars frames, or as Parquet files written from them."""
    if request.param == "frames":
        return dict
    return lambda frames: to_parquet(frames, tmp_path / "tables")


def failures(
    frames: Frames, tmp_path: Path, as_input: AsInput = dict
) -> set[tuple[str, str, str | None]]:
    report = validate_tables(as_input(frames), tmp_path / "docs")
    return {(f.suite, f.expectation, f.column) for f in report.failures}


def detailed(report: ValidationReport) -> list[tuple[str, str, str | None, int | None, str]]:
    """Each failure with its count and examples, in a stable order."""
    return sorted(
        (f.suite, f.expectation, f.column, f.unexpected_count, repr(f.examples))
        for f in report.failures
    )


def declared_count() -> int:
    """How many expectations the suite files declare."""
    names = [t.name for t in CORE_TABLES] + [RELATIONSHIPS]
    return sum(
        len(json.loads((SUITES_DIR / f"{n}.json").read_text())["expectations"]) for n in names
    )


def set_value(frame: pl.DataFrame, column: str, rows: list[int], value: str | None) -> pl.DataFrame:
    """`frame` with `column` set to `value` in the given row positions."""
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()).is_in(rows))
        .then(pl.lit(value, dtype=pl.String))
        .otherwise(pl.col(column))
        .alias(column)
    )


def test_seeds_pass_and_build_data_docs(good: Frames, tmp_path: Path) -> None:
    report = validate_tables(good, tmp_path / "docs")
    assert report.success, report.failure_lines()
    assert report.evaluated == declared_count() >= 50
    assert report.data_docs_index == tmp_path / "docs" / "index.html"
    index = report.data_docs_index.read_text()
    for suite in ("authors", "papers", "authorship", "authorship_relationships"):
        assert suite in index


def test_duplicated_key_fails(good: Frames, tmp_path: Path, as_input: AsInput) -> None:
    authors = pl.concat([good["authors"], good["authors"].head(1)])
    found = failures({**good, "authors": authors}, tmp_path, as_input)
    assert ("authors", "expect_column_values_to_be_unique", "author_id") in found


def test_duplicated_pair_fails(good: Frames, tmp_path: Path, as_input: AsInput) -> None:
    authorship = pl.concat([good["authorship"], good["authorship"].head(1)])
    found = failures({**good, "authorship": authorship}, tmp_path, as_input)
    assert ("authorship", "expect_compound_columns_to_be_unique", "author_id, paper_id") in found


def test_dangling_authorship_row_fails_with_offending_row(
    good: Frames, tmp_path: Path, as_input: AsInput
) -> None:
    dangling = good["authorship"].head(1).with_columns(author_id=pl.lit("ffffffffffffffff"))
    report = validate_tables(
        as_input({**good, "authorship": pl.concat([good["authorship"], dangling])}),
        tmp_path / "docs",
    )
    (failure,) = report.failures
    assert (failure.suite, failure.column) == ("authorship_relationships", "author_ref")
    assert failure.unexpected_count == 1


@pytest.mark.parametrize(
    ("table", "column", "value", "expectation"),
    [
        ("papers", "title", " Leading space", "expect_column_values_to_not_match_regex_list"),
        ("papers", "abstract", "Carriage\rreturn", "expect_column_values_to_not_match_regex_list"),
        ("authors", "display_name", "Trailing ", "expect_column_values_to_not_match_regex_list"),
        ("papers", "title", "", "expect_column_value_lengths_to_be_between"),
        ("authors", "display_name", None, "expect_column_values_to_not_be_null"),
    ],
)
def test_bad_values_fail(
    good: Frames,
    tmp_path: Path,
    as_input: AsInput,
    table: str,
    column: str,
    value: str | None,
    expectation: str,
) -> None:
    frame = set_value(good[table], column, [0], value)
    assert (table, expectation, column) in failures({**good, table: frame}, tmp_path, as_input)


def test_wrong_column_set_fails(good: Frames, tmp_path: Path, as_input: AsInput) -> None:
    papers = good["papers"].drop("subject")
    found = failures({**good, "papers": papers}, tmp_path, as_input)
    assert (
        "papers",
        "expect_table_columns_to_match_ordered_list",
        "paper_id, title, source, subject, abstract",
    ) in found


# -- chunks and changed rows ------------------------------------------------------------------

CHUNK = 10  # seeds: authors 5 rows (1 chunk), papers 25 (3 chunks), authorship 33 (4)


def corrupt_last_chunk(good: Frames) -> Frames:
    """Bad values in the last row of papers and authors: the last, partial chunk."""
    last_paper, last_author = good["papers"].height - 1, good["authors"].height - 1
    return {
        **good,
        "papers": set_value(good["papers"], "title", [last_paper], "Trailing "),
        "authors": set_value(good["authors"], "display_name", [last_author], None),
    }


def corrupt_across_chunks(good: Frames) -> Frames:
    """Bad titles and abstracts in the first, middle and last chunks, and the first paper
    repeated last, so the two copies of its key sit in different chunks."""
    papers = good["papers"]
    rows = [0, papers.height // 2, papers.height - 1]
    papers = set_value(set_value(papers, "title", rows, " Leading"), "abstract", rows, "")
    papers = pl.concat([papers, papers.head(1)])
    assert papers.height > 2 * CHUNK  # row 0 and the last row are chunks apart
    return {**good, "papers": papers}


@pytest.mark.parametrize("corrupt", [corrupt_last_chunk, corrupt_across_chunks])
def test_chunking_is_invisible(
    good: Frames, tmp_path: Path, corrupt: Callable[[Frames], Frames]
) -> None:
    tables = to_parquet(corrupt(good), tmp_path / "tables")
    whole = validate_tables(tables, tmp_path / "docs", chunk_rows=10**9)
    chunked = validate_tables(tables, tmp_path / "docs", chunk_rows=CHUNK)
    assert not whole.success
    assert detailed(chunked) == detailed(whole)
    assert chunked.evaluated == whole.evaluated == declared_count()
    if corrupt is corrupt_across_chunks:
        found = {(f.suite, f.expectation, f.column): f for f in chunked.failures}
        assert (
            found["papers", "expect_column_values_to_be_unique", "paper_id"].unexpected_count == 2
        )
        title = found["papers", "expect_column_values_to_not_match_regex_list", "title"]
        assert title.unexpected_count == 4  # three rows, and row 0's copy at the end


def test_keys_and_relationships_split_on_disk_judge_as_in_memory(
    good: Frames, tmp_path: Path
) -> None:
    """What a run hands the suites instead of whole tables (`key_checks`: DuckDB writes the
    relationships frame and splits each table's keys by a hash of the first key) gives the
    same results as the tables judged in memory: a paper key repeated chunks apart, and an
    authorship row whose paper does not exist."""
    from authorgraph.pipelines.transform.build import BuildLimits, key_checks

    bad = corrupt_across_chunks(good)
    dangling = bad["authorship"].head(1).with_columns(paper_id=pl.lit("0" * 16))
    bad["authorship"] = pl.concat([bad["authorship"], dangling])
    tables = to_parquet(bad, tmp_path / "tables")
    paths = {name: tmp_path / "tables" / f"{name}.parquet" for name in bad}
    keys = validate.key_columns()
    assert keys == {"authors": ["author_id"], "authorship": ["author_id", "paper_id"],
                    "papers": ["paper_id"]}  # fmt: skip
    checks = key_checks(paths, keys, dict.fromkeys(keys, 3), tmp_path / "checks", BuildLimits())
    for name, files in checks.parts.items():  # every key row once, equal keys in one file
        parts = [pl.read_parquet(f) for f in files]
        assert len(parts) > 1
        whole = pl.read_parquet(paths[name], columns=keys[name])
        assert_frame_equal(pl.concat(parts).sort(keys[name]), whole.sort(keys[name]))
        firsts = [set(part[keys[name][0]]) for part in parts]
        assert sum(map(len, firsts)) == len(set().union(*firsts))
    assert checks.relationships is not None
    columns = ["author_id", "paper_id", "author_ref", "paper_ref"]
    assert_frame_equal(
        pl.read_parquet(checks.relationships).sort(columns, nulls_last=True),
        validate.relationships_frame(bad).sort(columns, nulls_last=True),
    )
    in_memory = validate_tables(tables, tmp_path / "memory", chunk_rows=CHUNK)
    split = validate_tables(
        {**tables, RELATIONSHIPS: checks.relationships},
        tmp_path / "split",
        chunk_rows=CHUNK,
        key_parts=checks.parts,
    )
    assert detailed(split) == detailed(in_memory)
    found = {(f.suite, f.column): f.unexpected_count for f in split.failures}
    assert found[RELATIONSHIPS, "paper_ref"] == 1 and found["papers", "paper_id"] == 2


def test_kept_configurations_judge_as_gx_alone(
    good: Frames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each expectation's configuration built once per GX run (`gx_configurations`) changes no
    result: every expectation's status, observed values, counts and examples are the same as
    with GX's own property, on tables that fail in several suites and chunks."""
    import contextlib

    tables = to_parquet(corrupt_across_chunks(good), tmp_path / "tables")
    kept = validate_tables(tables, tmp_path / "kept", chunk_rows=CHUNK)
    monkeypatch.setattr(validate, "runs_with_kept_configurations", contextlib.nullcontext)
    rebuilt = validate_tables(tables, tmp_path / "rebuilt", chunk_rows=CHUNK)
    assert not kept.success and detailed(kept) == detailed(rebuilt)
    assert [r.to_dict() for r in kept.results] == [r.to_dict() for r in rebuilt.results]


def test_the_context_writes_no_project_config_that_nothing_reads(
    good: Frames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GX's ephemeral context dumps its whole project config as YAML to an in-memory store on
    every data source and asset added (9 times for these tables); ours skips that, and still
    judges every table and builds its Data Docs."""
    gx = validate.import_gx()
    variables = gx.data_context.data_context_variables.DataContextVariables
    saves: list[object] = []
    real_save = variables.save

    def save(self: object) -> object:
        saves.append(self)
        return real_save(self)

    monkeypatch.setattr(variables, "save", save)
    make_context = validate._context

    def context(docs_dir: Path) -> object:
        made = make_context(docs_dir)
        saves.clear()  # what GX's own start saved; from here on, the validation's
        return made

    monkeypatch.setattr(validate, "_context", context)
    result = validate_tables(to_parquet(good, tmp_path / "tables"), tmp_path / "docs")
    assert result.success and saves == []
    assert (tmp_path / "docs" / "index.html").is_file()


def test_a_configuration_is_kept_only_within_a_run() -> None:
    """Inside `runs_with_kept_configurations` an expectation's configuration is built once;
    outside it, GX builds a new one per read, as it does itself. A class whose
    `configuration` is not a read-only property (a GX that changed it) is left alone."""
    from authorgraph.expectations.gx_configurations import install, runs_with_kept_configurations

    gx = validate.import_gx()
    expectation = gx.expectations.ExpectColumnValuesToNotBeNull(column="title")
    assert expectation.configuration is not expectation.configuration
    with runs_with_kept_configurations():
        first = expectation.configuration
        assert expectation.configuration is first
        assert first.to_json_dict() == expectation.configuration.to_json_dict()
    assert expectation.configuration is not first
    assert expectation.configuration.to_json_dict() == first.to_json_dict()

    class Changed:
        configuration = "a value, not a property"

    assert install(Changed) is False and Changed.configuration == "a value, not a property"
    assert install(gx.expectations.Expectation) is True  # installed by import_gx, once


def test_changed_rows_limit_row_level_checks_only(good: Frames, tmp_path: Path) -> None:
    """A bad value outside `changed` is not judged again; whole-table rules still see it all."""
    last = good["authors"].height - 1
    authors = set_value(good["authors"], "display_name", [0], "Trailing ")  # judged before
    authors = set_value(authors, "name_raw", [last], None)  # the changed row
    authors = pl.concat([authors, good["authors"].head(1)])  # an old author's id again
    new_author = authors.slice(last, 1)
    dangling = good["authorship"].head(1).with_columns(paper_id=pl.lit("ffffffffffffffff"))
    tables = {**good, "authors": authors, "authorship": pl.concat([good["authorship"], dangling])}
    changed = {"authors": new_author, "authorship": dangling}
    report = validate_tables(tables, tmp_path / "docs", changed=changed, chunk_rows=CHUNK)
    found = {(f.suite, f.expectation, f.column): f.unexpected_count for f in report.failures}
    assert found == {
        ("authors", "expect_column_values_to_not_be_null", "name_raw"): 1,  # a changed row
        ("authors", "expect_column_values_to_be_unique", "author_id"): 2,  # the whole table
        ("authorship_relationships", "expect_column_values_to_not_be_null", "paper_ref"): 1,
    }
    assert report.evaluated == declared_count()
    whole = validate_tables(tables, tmp_path / "docs", chunk_rows=CHUNK)  # without `changed`
    assert ("authors", "expect_column_values_to_not_match_regex_list", "display_name") in {
        (f.suite, f.expectation, f.column) for f in whole.failures
    }


def test_gx_never_gets_a_whole_table(
    good: Frames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row-level parts get at most `chunk_rows` rows; whole-table parts only key columns."""
    received: list[pd.DataFrame] = []
    real = validate.to_pandas

    def spy(data: pl.DataFrame | pa.Table | pa.RecordBatch) -> pd.DataFrame:
        frame = real(data)
        received.append(frame)
        return frame

    monkeypatch.setattr(validate, "to_pandas", spy)
    chunk = 8
    report = validate_tables(
        to_parquet(good, tmp_path / "tables"), tmp_path / "docs", chunk_rows=chunk
    )
    assert report.success, report.failure_lines()
    big = [f for f in received if len(f) > chunk]
    assert big  # the set-level parts saw every row of papers and authorship
    for frame in big:
        assert set(frame.columns) in KEY_COLUMNS, list(frame.columns)
    row_frames = [f for f in received if 0 < len(f) <= chunk]
    assert sum(len(f) for f in row_frames if "abstract" in f.columns) == good["papers"].height
    assert all(isinstance(dtype, pd.ArrowDtype) for f in received for dtype in f.dtypes)


@pytest.mark.parametrize("stored", ["frames", "parquet"])
def test_a_table_over_chunk_bytes_is_judged_a_column_at_a_time(
    good: Frames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stored: str
) -> None:
    """Within `chunk_rows` but over CHUNK_BYTES, a table is not handed to GX whole (GX copies
    every column of its frame for each metric it filters): each column's row-level checks get
    that column alone, with the whole run's outcome. The bound sits just under papers' size:
    papers is split, and each of its columns still fits one chunk."""
    corrupted = corrupt_across_chunks(good)
    tables: dict[str, TableInput] = (
        dict(corrupted) if stored == "frames" else to_parquet(corrupted, tmp_path / "tables")
    )
    whole = validate_tables(tables, tmp_path / "docs", chunk_rows=10**9)
    received: list[pd.DataFrame] = []
    real = validate.to_pandas

    def spy(data: pl.DataFrame | pa.Table | pa.RecordBatch) -> pd.DataFrame:
        received.append(real(data))
        return received[-1]

    monkeypatch.setattr(validate, "to_pandas", spy)
    papers_bytes = validate._Source(tables["papers"]).num_bytes()
    monkeypatch.setattr(validate, "CHUNK_BYTES", papers_bytes - 1)
    split = validate_tables(tables, tmp_path / "docs", chunk_rows=10**9)
    assert not whole.success
    assert detailed(split) == detailed(whole)
    assert split.evaluated == whole.evaluated
    assert [list(f.columns) for f in received if "abstract" in f.columns and len(f)] == [
        ["abstract"]
    ]


def test_gx_fingerprints_no_batch(
    good: Frames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GX's pandas engine would hash every value of every batch only to record a fingerprint
    that nothing reads (0.45 s of a 20k-page validation)."""
    validate.import_gx()
    import great_expectations.execution_engine.pandas_execution_engine as engine

    hashed: list[int] = []

    def fingerprint(frame: pd.DataFrame) -> str:
        hashed.append(len(frame))
        return "fingerprint"

    monkeypatch.setattr(engine, "hash_pandas_dataframe", fingerprint)
    report = validate_tables(good, tmp_path / "docs")
    assert report.success, report.failure_lines()
    assert hashed == []


@pytest.fixture
def compiled_templates(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the templates Jinja compiles from here on (into an empty cache of compiled
    templates, as in a new process)."""
    import jinja2

    from authorgraph.expectations.docs_templates import TEMPLATE_CACHE

    compiled: list[str] = []
    compile_template = jinja2.Environment.compile

    def recording(env: jinja2.Environment, source: str, name: str | None = None, *a: Any) -> Any:
        if name is not None:
            compiled.append(name)
        return compile_template(env, source, name, *a)

    monkeypatch.setattr(jinja2.Environment, "compile", recording)
    monkeypatch.setattr(TEMPLATE_CACHE, "_code", {})
    return compiled


def test_data_docs_templates_are_compiled_once_per_process(
    good: Frames, tmp_path: Path, compiled_templates: list[str]
) -> None:
    """GX makes a Jinja environment per Data Docs page; they share one cache of compiled
    templates, so a second validation in a process (a test process) compiles none of the 44
    again (0.1 s a build)."""
    builds = []
    for build in ("first", "second"):
        compiled_templates.clear()
        assert validate_tables(good, tmp_path / build).success
        builds.append((len(compiled_templates), (tmp_path / build / "index.html").is_file()))
    assert builds[0][0] > 10 and builds[1] == (0, True), builds


def test_templates_compiled_ahead_until_stopped_leave_none_to_compile(
    good: Frames, tmp_path: Path, compiled_templates: list[str]
) -> None:
    """What the validating child does while it waits: compile GX's templates, one at a time,
    until its call arrives (`stop()`); after a whole pass a validation compiles none."""
    from authorgraph.expectations.docs_templates import compile_ahead

    asked = iter([False, False, True])
    assert compile_ahead(lambda: next(asked)) == 2
    assert compile_ahead(lambda: False) > 20
    compiled_templates.clear()
    assert validate_tables(good, tmp_path / "docs").success
    assert compiled_templates == []


def test_unreadable_parquet_file_raises_and_keeps_the_last_docs(
    good: Frames, tmp_path: Path
) -> None:
    tables = to_parquet(good, tmp_path / "tables")
    (tmp_path / "tables" / "papers.parquet").write_bytes(b"not parquet")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.html").write_text("last run")
    with pytest.raises(TableUnreadable, match=r"papers\.parquet"):
        validate_tables(tables, docs)
    assert (docs / "index.html").read_text() == "last run"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".docs")] == []


def test_every_expectation_type_in_the_suites_is_classified() -> None:
    """No suite relies on the unclassified default (set-level on the columns it names)."""
    classified = validate.ROW_LEVEL_TYPES | validate.SET_LEVEL_TYPES | validate.SCHEMA_LEVEL_TYPES
    assert not (validate.ROW_LEVEL_TYPES & validate.SET_LEVEL_TYPES)
    for path in SUITES_DIR.glob("*.json"):
        for expectation in json.loads(path.read_text())["expectations"]:
            assert expectation["type"] in classified, (path.name, expectation["type"])
    assert (
        expectation_level({"type": "expect_column_values_to_not_be_null", "kwargs": {}}) == "rows"
    )
    mostly = {"type": "expect_column_values_to_not_be_null", "kwargs": {"mostly": 0.9}}
    assert expectation_level(mostly) == "set"
    assert expectation_level({"type": "expect_something_new", "kwargs": {}}) == "set"


def test_suites_agree_with_declared_schema() -> None:
    for table in CORE_TABLES:
        suite = json.loads((SUITES_DIR / f"{table.name}.json").read_text())
        kinds = {
            (e["type"], json.dumps(e["kwargs"], sort_keys=True)) for e in suite["expectations"]
        }
        ordered = ("expect_table_columns_to_match_ordered_list",)
        assert (ordered[0], json.dumps({"column_list": table.column_names})) in kinds
        for column in table.columns:
            assert str(column.dtype) == "string"  # every core column is text
            typed = json.dumps({"column": column.name, "type_": "str"}, sort_keys=True)
            assert ("expect_column_values_to_be_of_type", typed) in kinds
            if not column.nullable:
                assert (
                    "expect_column_values_to_not_be_null",
                    json.dumps({"column": column.name}),
                ) in kinds


def test_chunked_parquet_reads_hold_only_the_chunk_being_read(tmp_path: Path) -> None:
    """The review's and validation's batch readers never keep what they have already read:
    with pyarrow's default `pre_buffer=True`, a reader keeps every column chunk until it is
    closed (here ~30 MB of Arrow memory by the end; at 530k abstracts, 202 MiB)."""
    import base64
    import os

    import pyarrow.parquet as pq

    from authorgraph.pipelines.transform.review import parquet_batches

    rows = 20_000  # 2,000 characters each that zstd cannot shrink much: about 40 MB
    texts = [base64.b64encode(os.urandom(1_500)).decode() for _ in range(rows)]
    path = tmp_path / "papers.parquet"
    table = pa.table({"paper_id": [f"{i:016x}" for i in range(rows)], "abstract": texts})
    pq.write_table(table, path, row_group_size=500, compression="zstd")
    del table, texts
    readers = {
        "review": lambda: parquet_batches(path, 500, ["paper_id", "abstract"]),
        "validation": lambda: validate._Source(path).chunks(["paper_id", "abstract"], 500),
    }
    for name, read in readers.items():
        before, most, seen = pa.total_allocated_bytes(), 0, 0
        for batch in read():
            most = max(most, pa.total_allocated_bytes() - before)
            seen += batch.num_rows
        assert seen == rows, name
        assert most < 8 << 20, f"{name}: {most >> 20} MiB held while reading"


def test_gx_is_imported_without_running_scipy_stats_until_it_is_used() -> None:
    """`import_gx` defers `scipy.stats` (0.7 s of GX's import; our suites never use it): in a
    fresh interpreter its code has not run after the import, and GX's own use of it (the
    KL-divergence expectation's `stats.entropy`) still works, loading it then."""
    import subprocess
    import sys

    script = """
import sys
from authorgraph.expectations.validate import DEFERRED_BY_GX, import_gx
import_gx()
from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl
print(DEFERRED_BY_GX, "scipy.stats._stats_py" in sys.modules)
print(kl.stats.entropy([0.5, 0.5], [0.5, 0.5]), "scipy.stats._stats_py" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.splitlines() == ["('scipy.stats',) False", "0.0 True"], result.stderr
