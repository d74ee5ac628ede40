"""The README's "Query it" examples run, and answer their questions on seeds/ (no Prefect)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT
from warehouse.publish import run_query


def readme_queries() -> list[str]:
    """The ```sql blocks of the README's "Query it" section, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Query it\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


def test_there_are_five_examples() -> None:
    assert len(readme_queries()) == 5


@pytest.fixture(scope="module")
def results(seeds_warehouse: Path) -> list[tuple[list[str], list[tuple[object, ...]]]]:
    return [run_query(seeds_warehouse, query) for query in readme_queries()]


def test_1_most_papers(results: list[tuple[list[str], list[tuple[object, ...]]]]) -> None:
    columns, rows = results[0]
    assert columns == ["display_name", "papers_count", "subjects"]
    assert [(name, n) for name, n, _ in rows] == [
        ("Koray Kavukcuoglu", 10),
        ("André Susano Pinto", 8),
        ("Shreya Pathak", 7),
        ("Piotr Stanczyk", 5),
        ("Sammy Jerome", 3),
    ]


def test_2_shared_papers(results: list[tuple[list[str], list[tuple[object, ...]]]]) -> None:
    _, rows = results[1]
    assert len(rows) == 5
    assert rows[0][:2] == ("Gemma 3 Technical Report", 5)
    assert all(n == len(names) >= 2 for _, n, names in rows)  # type: ignore[arg-type]


def test_3_closest_coauthors(results: list[tuple[list[str], list[tuple[object, ...]]]]) -> None:
    _, rows = results[2]
    assert len(rows) == 5
    assert rows[0] == ("Koray Kavukcuoglu", "Shreya Pathak", 3)
    assert [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True)


def test_4_papers_per_subject(results: list[tuple[list[str], list[tuple[object, ...]]]]) -> None:
    assert results[3][1] == [("Artificial Intelligence", 20, 5), ("Machine Learning", 5, 3)]


def test_5_one_authors_page(results: list[tuple[list[str], list[tuple[object, ...]]]]) -> None:
    columns, rows = results[4]
    assert columns == ["title", "subject", "source_file"]
    assert len(rows) == 3  # Sammy Jerome's page lists three papers
    assert "Gemma 3 Technical Report" in [r[0] for r in rows]
    assert {r[2] for r in rows} == {"002_928ee7f537c5860a.txt"}  # his own page
