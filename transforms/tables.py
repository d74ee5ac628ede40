"""Parsed pages → the published tables: ids, de-duplication, first-copy-wins, schema casts.

Pages are first turned into per-page rows (`stage_pages`: cheap to cache or to compute in
parallel batches), then every batch is merged at once (`build_tables`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from authorgraph.transforms.normalize import (
    author_id_for,
    paper_id_of_parsed,
    parse_person_name,
    stable_id,
    subject_of,
)
from authorgraph.transforms.parse import AuthorPage, RawPaper
from authorgraph.transforms.schema import AUTHORS, LISTINGS, PAPER_VARIANTS, PAPERS, Table

PAGE_AUTHOR_SCHEMA: dict[str, pl.DataType] = {
    "file_name": pl.String(),
    **{c: pl.String() for c in AUTHORS.column_names},
}
PAGE_LINK_SCHEMA: dict[str, pl.DataType] = {
    "file_name": pl.String(),
    "position": pl.Int32(),
    "paper_id": pl.String(),
    "variant_id": pl.String(),
}
VARIANT_SCHEMA: dict[str, pl.DataType] = {
    "variant_id": pl.String(),
    **{c: pl.String() for c in PAPERS.column_names},
}


@dataclass(frozen=True)
class StagedPages:
    """Per-page rows for a set of pages, small enough to cache and to merge in batches.

    `page_authors`: one row per page. `page_links`: one row per paper listing (file, position,
    paper id, variant id). `variants`: each distinct exact text of a paper, once, so the text
    of a paper listed on hundreds of pages is held once, not hundreds of times.
    """

    page_authors: pl.DataFrame
    page_links: pl.DataFrame
    variants: pl.DataFrame

    @staticmethod
    def concat(batches: Iterable[StagedPages]) -> StagedPages:
        """Stack batches (in any order: `build_tables` orders by file name)."""
        batches = list(batches)
        if not batches:
            return stage_pages([])
        return StagedPages(
            pl.concat([b.page_authors for b in batches]),
            pl.concat([b.page_links for b in batches]),
            pl.concat([b.variants for b in batches]).unique("variant_id", maintain_order=True),
        )


def stage_pages(pages: Iterable[tuple[str, AuthorPage]]) -> StagedPages:
    """Turn (file name, parsed page) pairs into per-page rows with ids."""
    authors: dict[str, list[str | None]] = {c: [] for c in PAGE_AUTHOR_SCHEMA}
    links: dict[str, list[str | int]] = {c: [] for c in PAGE_LINK_SCHEMA}
    variants: dict[str, list[str | None]] = {c: [] for c in VARIANT_SCHEMA}
    seen: set[str] = set()
    ids: dict[RawPaper, tuple[str, str]] = {}  # a popular paper is hashed once per batch
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
            known = ids.get(paper)
            if known is None:
                known = ids[paper] = (
                    paper_id_of_parsed(paper.title, paper.abstract),
                    stable_id(paper.title, paper.source, paper.abstract or "\x00"),
                )
            paper_id, variant_id = known
            links["file_name"].append(file_name)
            links["position"].append(position)
            links["paper_id"].append(paper_id)
            links["variant_id"].append(variant_id)
            if variant_id not in seen:
                seen.add(variant_id)
                variants["variant_id"].append(variant_id)
                variants["paper_id"].append(paper_id)
                variants["title"].append(paper.title)
                variants["source"].append(paper.source)
                variants["subject"].append(subject_of(paper.source))
                variants["abstract"].append(paper.abstract)
    return StagedPages(
        pl.DataFrame(authors, schema=PAGE_AUTHOR_SCHEMA),
        pl.DataFrame(links, schema=PAGE_LINK_SCHEMA),
        pl.DataFrame(variants, schema=VARIANT_SCHEMA),
    )


def build_tables(staged: StagedPages) -> dict[str, pl.DataFrame]:
    """Merge per-page rows into authors, papers and authorship (first copy in file order wins),
    and the listing ledger that explains the merge: paper_variants and listings."""
    links = staged.page_links.sort(["file_name", "position"])
    listings = (
        links.join(
            staged.page_authors.select("file_name", "author_id"), on="file_name", how="inner"
        )
        .sort(["file_name", "position"])  # a join need not keep the left side's order
        .with_columns(is_canonical=pl.int_range(pl.len()).over("paper_id") == 0)
        .rename({"file_name": "source_file"})
        .select(LISTINGS.column_names)
    )
    used = links.select("variant_id").unique()
    paper_variants = (
        staged.variants.join(used, on="variant_id", how="semi")
        .select(PAPER_VARIANTS.column_names)
        .sort("paper_id", "variant_id")
    )
    papers = (
        links.unique("paper_id", keep="first", maintain_order=True)
        .select("variant_id")
        .join(staged.variants, on="variant_id", how="left")
        .select(PAPERS.column_names)
        .sort("paper_id")
    )
    authorship = (
        links.join(
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
    return {
        "authors": authors,
        "papers": papers,
        "authorship": authorship,
        "paper_variants": paper_variants,
        "listings": listings,
    }


def to_arrow(frame: pl.DataFrame, table: Table) -> pa.Table:
    """Select the table's columns in declared order and cast them to its Arrow schema."""
    return frame.select(table.column_names).to_arrow().cast(table.arrow_schema)


__all__ = ["StagedPages", "build_tables", "stage_pages", "to_arrow"]
