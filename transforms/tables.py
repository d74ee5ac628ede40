"""Parsed pages → the published tables: ids, de-duplication, first-copy-wins, schema casts.

Pages are first turned into per-page rows (`stage_pages`: cheap to cache or to compute in
parallel batches), then every batch is merged at once (`build_tables`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from transforms.normalize import author_id_for, paper_id_for, parse_person_name, subject_of
from transforms.parse import AuthorPage
from transforms.schema import AUTHORS, AUTHORSHIP, PAPERS, Table

PAGE_AUTHOR_SCHEMA: dict[str, pl.DataType] = {
    "file_name": pl.String(),
    **{c: pl.String() for c in AUTHORS.column_names},
}
PAGE_PAPER_SCHEMA: dict[str, pl.DataType] = {
    "file_name": pl.String(),
    "position": pl.Int32(),
    **{c: pl.String() for c in PAPERS.column_names},
}


@dataclass(frozen=True)
class StagedPages:
    """Per-page rows for a batch of pages: one author row and one row per paper listing."""

    page_authors: pl.DataFrame
    page_papers: pl.DataFrame

    @staticmethod
    def concat(batches: Iterable[StagedPages]) -> StagedPages:
        """Stack batches (in any order: `build_tables` orders by file name)."""
        batches = list(batches)
        if not batches:
            return stage_pages([])
        return StagedPages(
            pl.concat([b.page_authors for b in batches]),
            pl.concat([b.page_papers for b in batches]),
        )


def stage_pages(pages: Iterable[tuple[str, AuthorPage]]) -> StagedPages:
    """Turn (file name, parsed page) pairs into per-page author and paper rows with ids."""
    authors: dict[str, list[str | None]] = {c: [] for c in PAGE_AUTHOR_SCHEMA}
    papers: dict[str, list[str | int | None]] = {c: [] for c in PAGE_PAPER_SCHEMA}
    for file_name, page in pages:
        name = parse_person_name(page.name_line)
        author_row = {
            "file_name": file_name,
            "author_id": author_id_for(name.display_name),
            "display_name": name.display_name,
            "name_raw": name.name_raw,
            "family_name": name.family_name,
            "given_name": name.given_name,
            "suffix": name.suffix,
        }
        for column, value in author_row.items():
            authors[column].append(value)
        for position, paper in enumerate(page.papers):
            papers["file_name"].append(file_name)
            papers["position"].append(position)
            papers["paper_id"].append(paper_id_for(paper.title, paper.abstract))
            papers["title"].append(paper.title)
            papers["source"].append(paper.source)
            papers["subject"].append(subject_of(paper.source))
            papers["abstract"].append(paper.abstract)
    return StagedPages(
        pl.DataFrame(authors, schema=PAGE_AUTHOR_SCHEMA),
        pl.DataFrame(papers, schema=PAGE_PAPER_SCHEMA),
    )


def build_tables(staged: StagedPages) -> dict[str, pl.DataFrame]:
    """Merge per-page rows into authors, papers and authorship (first copy in file order wins)."""
    page_papers = staged.page_papers.sort(["file_name", "position"])
    papers = (
        page_papers.unique("paper_id", keep="first", maintain_order=True)
        .select(PAPERS.column_names)
        .sort("paper_id")
    )
    authorship = (
        page_papers.join(
            staged.page_authors.select("file_name", "author_id"), on="file_name", how="inner"
        )
        .sort(["file_name", "position"])
        .unique(["author_id", "paper_id"], keep="first", maintain_order=True)
        .select(author_id="author_id", paper_id="paper_id", source_file="file_name")
        .sort(["author_id", "paper_id"])
    )
    # The same author on several pages: prefer a copy whose name was split into parts,
    # then the first file in file-name order.
    authors = (
        staged.page_authors.sort(
            [pl.col("family_name").is_null(), pl.col("file_name")], maintain_order=True
        )
        .unique("author_id", keep="first", maintain_order=True)
        .select(AUTHORS.column_names)
        .sort("author_id")
    )
    return {"authors": authors, "papers": papers, "authorship": authorship}


def to_arrow(frame: pl.DataFrame, table: Table) -> pa.Table:
    """Select the table's columns in declared order and cast them to its Arrow schema."""
    return frame.select(table.column_names).to_arrow().cast(table.arrow_schema)


def empty_frame(table: Table) -> pl.DataFrame:
    """An empty frame with the table's schema."""
    return pl.DataFrame(schema=table.polars_schema)


__all__ = ["AUTHORSHIP", "StagedPages", "build_tables", "empty_frame", "stage_pages", "to_arrow"]
