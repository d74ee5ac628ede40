"""The suites pass on the real tables and catch each kind of corruption (real GX, no Prefect)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from expectations.validate import SUITES_DIR, validate_tables
from pipelines.config import Settings
from tests.conftest import SEEDS, transform_only
from transforms.schema import CORE_TABLES


@pytest.fixture(scope="module")
def good() -> dict[str, pl.DataFrame]:
    settings = Settings(seeds=SEEDS, warehouse=Path("unused"))
    tables = transform_only(settings).tables
    return {t.name: tables[t.name] for t in CORE_TABLES}


def failures(frames: dict[str, pl.DataFrame], tmp_path: Path) -> set[tuple[str, str, str | None]]:
    report = validate_tables(frames, tmp_path / "docs")
    return {(f.suite, f.expectation, f.column) for f in report.failures}


def test_seeds_pass_and_build_data_docs(good: dict[str, pl.DataFrame], tmp_path: Path) -> None:
    report = validate_tables(good, tmp_path / "docs")
    assert report.success, report.failure_lines()
    assert report.evaluated >= 50
    assert report.data_docs_index == tmp_path / "docs" / "index.html"
    index = report.data_docs_index.read_text()
    for suite in ("authors", "papers", "authorship", "authorship_relationships"):
        assert suite in index


def test_duplicated_key_fails(good: dict[str, pl.DataFrame], tmp_path: Path) -> None:
    authors = pl.concat([good["authors"], good["authors"].head(1)])
    found = failures({**good, "authors": authors}, tmp_path)
    assert ("authors", "expect_column_values_to_be_unique", "author_id") in found


def test_duplicated_pair_fails(good: dict[str, pl.DataFrame], tmp_path: Path) -> None:
    authorship = pl.concat([good["authorship"], good["authorship"].head(1)])
    found = failures({**good, "authorship": authorship}, tmp_path)
    assert ("authorship", "expect_compound_columns_to_be_unique", "author_id, paper_id") in found


def test_dangling_authorship_row_fails_with_offending_row(
    good: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    dangling = good["authorship"].head(1).with_columns(author_id=pl.lit("ffffffffffffffff"))
    report = validate_tables(
        {**good, "authorship": pl.concat([good["authorship"], dangling])}, tmp_path / "docs"
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
    good: dict[str, pl.DataFrame],
    tmp_path: Path,
    table: str,
    column: str,
    value: str | None,
    expectation: str,
) -> None:
    frame = good[table].with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit(value, dtype=pl.String))
        .otherwise(pl.col(column))
        .alias(column)
    )
    assert (table, expectation, column) in failures({**good, table: frame}, tmp_path)


def test_wrong_column_set_fails(good: dict[str, pl.DataFrame], tmp_path: Path) -> None:
    papers = good["papers"].drop("subject")
    found = failures({**good, "papers": papers}, tmp_path)
    assert (
        "papers",
        "expect_table_columns_to_match_ordered_list",
        "paper_id, title, source, subject, abstract",
    ) in found


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
