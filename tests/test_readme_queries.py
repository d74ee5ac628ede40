"""The docs' SQL runs: every ```sql block of README.md and docs/*.md on a warehouse built from
seeds/, read-only; the README's "Query it" examples also answer their questions (no Prefect)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from authorgraph.pipelines.load.publish import run_query
from tests.conftest import ROOT
from tests.markdown import DOC_FILES, Block, split_fences, sql_blocks

Rows = list[tuple[Any, ...]]  # DuckDB values: each query decides their types

ALL_SQL = [block for path in DOC_FILES for block in sql_blocks(path)]
#: An example that answers nothing on seeds/ says so on its first line.
NO_ROWS_ON_SEEDS = "-- on seeds/: no rows"


def readme_queries() -> list[str]:
    """The ```sql blocks of the README's "Query it" section, in order."""
    readme = ROOT / "README.md"
    _, prose = split_fences(readme)
    start = prose.index("## Query it") + 1  # 1-based line of the heading
    end = next((i + 1 for i in range(start, len(prose)) if prose[i].startswith("## ")), len(prose))
    return [block.text for block in sql_blocks(readme) if start < block.line < end]


def test_there_are_five_examples() -> None:
    assert len(readme_queries()) == 5


def test_every_doc_with_sql_is_found() -> None:
    """The block finder sees the README's examples and those of docs/ (a fence it misreads
    would silently drop examples from the test below)."""
    files = {block.path.name for block in ALL_SQL}
    assert {"README.md", "bi.md", "data-model.md"} <= files
    assert all(block.text.strip() for block in ALL_SQL)


@pytest.mark.parametrize("block", ALL_SQL, ids=[block.where for block in ALL_SQL])
def test_sql_example_runs_on_the_seeds_warehouse(seeds_warehouse: Path, block: Block) -> None:
    """Each example runs through the sandboxed read-only connection of `authorgraph sql` and
    returns rows: an example that answers nothing on seeds/ shows nothing to a reader."""
    columns, rows = run_query(seeds_warehouse, block.text)
    assert columns, block.where
    if not block.text.startswith(NO_ROWS_ON_SEEDS):  # tests/test_review.py runs those
        assert rows, f"{block.where}: no rows on seeds/"


@pytest.fixture(scope="module")
def results(seeds_warehouse: Path) -> list[tuple[list[str], Rows]]:
    return [run_query(seeds_warehouse, query) for query in readme_queries()]


def test_1_most_papers(results: list[tuple[list[str], Rows]]) -> None:
    columns, rows = results[0]
    assert columns == ["display_name", "papers_count", "subjects"]
    assert [(name, n) for name, n, _ in rows] == [
        ("Koray Kavukcuoglu", 10),
        ("André Susano Pinto", 8),
        ("Shreya Pathak", 7),
        ("Piotr Stanczyk", 5),
        ("Sammy Jerome", 3),
    ]


def test_2_shared_papers(results: list[tuple[list[str], Rows]]) -> None:
    _, rows = results[1]
    assert len(rows) == 5
    assert rows[0][:2] == ("Gemma 3 Technical Report", 5)
    assert all(n == len(names) >= 2 for _, n, names in rows)


def test_3_closest_coauthors(results: list[tuple[list[str], Rows]]) -> None:
    _, rows = results[2]
    assert len(rows) == 5
    assert rows[0] == ("Koray Kavukcuoglu", "Shreya Pathak", 3)
    assert [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True)


def test_4_papers_per_subject(results: list[tuple[list[str], Rows]]) -> None:
    assert results[3][1] == [("Artificial Intelligence", 20, 5), ("Machine Learning", 5, 3)]


def test_5_one_authors_page(results: list[tuple[list[str], Rows]]) -> None:
    columns, rows = results[4]
    assert columns == ["title", "subject", "source_file"]
    assert len(rows) == 3  # Sammy Jerome's page lists three papers
    assert "Gemma 3 Technical Report" in [r[0] for r in rows]
    assert {r[2] for r in rows} == {"002_928ee7f537c5860a.txt"}  # his own page
