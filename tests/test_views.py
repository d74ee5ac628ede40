"""The analytics views, each checked against results computed in Python from seeds/."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from authorgraph.pipelines.config import Settings
from authorgraph.pipelines.load.views import SQL_DIR, view_names
from authorgraph.transforms.parse import parse_author_page
from tests.conftest import ROOT, SEEDS, transform_only


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    """The polars tables for seeds/, straight from the transform stage (no SQL involved)."""
    settings = Settings(seeds=SEEDS, warehouse=ROOT / "unused")
    return transform_only(settings).tables


@pytest.fixture(scope="module")
def con(seeds_warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(seeds_warehouse / "authorgraph.duckdb"), read_only=True)
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:  # DuckDB values
    cursor = con.execute(query)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def page_papers(path: Path) -> set[tuple[str, str]]:
    """The papers one page lists, as casefolded (title, abstract), read with the parser only."""
    return {
        (p.title.casefold(), (p.abstract or "").casefold())
        for p in parse_author_page(path.read_bytes()).papers
    }


def test_every_sql_file_is_a_commented_view_in_analytics(con: duckdb.DuckDBPyConnection) -> None:
    found = dict(
        con.execute(
            "select schema_name || '.' || view_name, comment from duckdb_views() where not internal"
        ).fetchall()
    )
    expected = view_names()
    assert expected == [
        "analytics.author_summary",
        "analytics.coauthors",
        "analytics.paper_summary",
        "analytics.subject_counts",
    ]
    assert sorted(found) == expected
    assert all(found[name] and len(found[name]) > 40 for name in expected)
    columns = con.execute(
        "select column_name, comment from duckdb_columns() where schema_name = 'analytics'"
    ).fetchall()
    assert len(columns) == 20
    assert [name for name, comment in columns if not comment] == []
    for path in sorted(SQL_DIR.glob("*.sql")):
        text = path.read_text().lower()
        assert "final as (" in text and "select * from final;" in text, path.name


def test_author_summary(con: duckdb.DuckDBPyConnection, tables: dict[str, pl.DataFrame]) -> None:
    subject_of = dict(tables["papers"].select("paper_id", "subject").iter_rows())
    papers: defaultdict[str, set[str]] = defaultdict(set)
    files: defaultdict[str, list[str]] = defaultdict(list)
    for author_id, paper_id, source_file in tables["authorship"].iter_rows():
        papers[author_id].add(paper_id)
        files[author_id].append(source_file)
    expected = {
        author_id: {
            "author_id": author_id,
            "display_name": name,
            "papers_count": len(papers[author_id]),
            "subjects": sorted({subject_of[p] for p in papers[author_id]} - {None}),
            "first_source_file": min(files[author_id]),
        }
        for author_id, name in tables["authors"].select("author_id", "display_name").iter_rows()
    }
    got = {r["author_id"]: r for r in rows(con, "select * from analytics.author_summary")}
    assert got == expected
    by_name = {r["display_name"]: r for r in got.values()}
    assert by_name["Koray Kavukcuoglu"]["papers_count"] == 10
    assert by_name["Shreya Pathak"]["first_source_file"] == "000_38a999d25114c30e.txt"
    assert sum(r["papers_count"] for r in got.values()) == 33


def test_paper_summary(con: duckdb.DuckDBPyConnection, tables: dict[str, pl.DataFrame]) -> None:
    name_of = dict(tables["authors"].select("author_id", "display_name").iter_rows())
    names: defaultdict[str, list[str]] = defaultdict(list)
    for author_id, paper_id, _ in tables["authorship"].iter_rows():
        names[paper_id].append(name_of[author_id])
    got = {r["paper_id"]: r for r in rows(con, "select * from analytics.paper_summary")}
    assert len(got) == 25
    for paper_id, title, source, subject, _ in tables["papers"].iter_rows():
        assert got[paper_id] == {
            "paper_id": paper_id,
            "title": title,
            "source": source,
            "subject": subject,
            "authors_count": len(names[paper_id]),
            "author_names": sorted(names[paper_id]),
        }
    gemma = [r for r in got.values() if r["title"] == "Gemma 3 Technical Report"]
    assert [g["authors_count"] for g in gemma] == [5]


def test_coauthors(con: duckdb.DuckDBPyConnection, tables: dict[str, pl.DataFrame]) -> None:
    authors_of: defaultdict[str, set[str]] = defaultdict(set)
    for author_id, paper_id, _ in tables["authorship"].iter_rows():
        authors_of[paper_id].add(author_id)
    shared: Counter[tuple[str, str]] = Counter()
    for authors in authors_of.values():
        shared.update(combinations(sorted(authors), 2))
    got = rows(con, "select * from analytics.coauthors")
    assert {(r["author_id_a"], r["author_id_b"]): r["shared_papers"] for r in got} == shared
    assert len(got) == len(shared)  # each pair once
    assert all(r["author_id_a"] < r["author_id_b"] for r in got)
    assert len(got) == 10  # Gemma 3 alone links all five authors


def test_authors_of_pages_001_and_002_share_exactly_their_common_papers(
    con: duckdb.DuckDBPyConnection,
) -> None:
    page_001 = next(SEEDS.glob("001_*"))
    page_002 = next(SEEDS.glob("002_*"))
    common = page_papers(page_001) & page_papers(page_002)
    assert common  # Gemma 3 at least
    got = con.execute(
        "select shared_papers from analytics.coauthors c "
        "join analytics.author_summary a1 on a1.first_source_file = ? "
        "join analytics.author_summary a2 on a2.first_source_file = ? "
        "where (c.author_id_a, c.author_id_b) in "
        "((a1.author_id, a2.author_id), (a2.author_id, a1.author_id))",
        [page_001.name, page_002.name],
    ).fetchall()
    assert got == [(len(common),)]


def test_subject_counts(con: duckdb.DuckDBPyConnection, tables: dict[str, pl.DataFrame]) -> None:
    papers = Counter(tables["papers"].select("source", "subject").iter_rows())
    triples = tables["papers"].select("paper_id", "source", "subject").iter_rows()
    subject_of = {paper_id: (source, subject) for paper_id, source, subject in triples}
    authors: defaultdict[tuple[str, str | None], set[str]] = defaultdict(set)
    for author_id, paper_id, _ in tables["authorship"].iter_rows():
        authors[subject_of[paper_id]].add(author_id)
    got = rows(con, "select * from analytics.subject_counts")
    assert {(r["source"], r["subject"]): r["papers_count"] for r in got} == papers
    assert {(r["source"], r["subject"]): r["authors_count"] for r in got} == {
        key: len(authors[key]) for key in papers
    }
    assert sum(r["papers_count"] for r in got) == 25
    assert papers[("arXiv.org Artificial Intelligence", "Artificial Intelligence")] == 20
