"""The golden test: the real pages in seeds/ give exactly the known tables."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from authorgraph.pipelines.config import Settings
from tests.conftest import ROOT, SEEDS, transform_only


@pytest.fixture(scope="module")
def seeds_tables() -> dict[str, pl.DataFrame]:
    settings = Settings(seeds=SEEDS, warehouse=ROOT / "unused")
    return transform_only(settings).tables


# The five real pages, as published in ../shared/seeds/ (checked there too when it is present).
SEED_SHA256 = {
    "000_38a999d25114c30e.txt": "f3ca5492a653553fbe42756fd142a69912819d95d19e2a690e66f5f7de8e2111",
    "001_7eb41409eff8d1bd.txt": "3426e792da2871c7d272082464d180b79c134e360240f8697613e64988fd8cad",
    "002_928ee7f537c5860a.txt": "18719dc6ffeb8dfc6394ff79d3ad219f27afdc0de9f10d915a630144288d68cd",
    "003_946b4e9e47dcb52c.txt": "2139c61d017f98b42fb5cf6911edef52d04c2b7d628896d32c73844b012de894",
    "004_c8458a22db8174c8.txt": "ea363316e3ed5122ac02fcfeeed9a1324d8067a07c9680ad9ce30d33ac2d12a1",
}


def test_seeds_are_the_real_pages_byte_for_byte() -> None:
    ours = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in SEEDS.iterdir()}
    assert ours == SEED_SHA256
    shared = ROOT.parent / "shared" / "seeds"
    if shared.is_dir():
        theirs = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in shared.iterdir()}
        assert theirs == ours


def test_exact_counts(seeds_tables: dict[str, pl.DataFrame]) -> None:
    counts = {name: frame.height for name, frame in seeds_tables.items()}
    assert counts == {
        "authors": 5,
        "papers": 25,
        "authorship": 33,
        # The ledger: no paper is listed twice on one page, and no paper in two texts.
        "listings": 33,
        "paper_variants": 25,
        # Nothing to review: no two papers share a title or an abstract, no two names fold alike.
        "paper_review": 0,
        "author_review": 0,
        "rejected_files": 0,
        "manifest": 5,
    }


def test_author_of_001(seeds_tables: dict[str, pl.DataFrame]) -> None:
    source = seeds_tables["authorship"].filter(pl.col("source_file").str.starts_with("001_"))
    (author_id,) = source["author_id"].unique().to_list()
    author = seeds_tables["authors"].filter(pl.col("author_id") == author_id).row(0, named=True)
    assert author == {
        "author_id": author_id,
        "display_name": "André Susano Pinto",
        "name_raw": "Pinto, André Susano",
        "family_name": "Pinto",
        "given_name": "André Susano",
        "suffix": None,
    }


def test_gemma_3_links_all_five_authors(seeds_tables: dict[str, pl.DataFrame]) -> None:
    papers = seeds_tables["papers"].filter(pl.col("title") == "Gemma 3 Technical Report")
    assert papers.height == 1
    paper = papers.row(0, named=True)
    assert paper["source"] == "arXiv.org Artificial Intelligence"
    assert paper["subject"] == "Artificial Intelligence"
    assert paper["abstract"].startswith("We introduce Gemma 3, a multimodal addition")
    links = seeds_tables["authorship"].filter(pl.col("paper_id") == paper["paper_id"])
    assert links.height == 5
    assert set(links["author_id"]) == set(seeds_tables["authors"]["author_id"])


def test_display_names(seeds_tables: dict[str, pl.DataFrame]) -> None:
    assert sorted(seeds_tables["authors"]["display_name"]) == [
        "André Susano Pinto",
        "Koray Kavukcuoglu",
        "Piotr Stanczyk",
        "Sammy Jerome",
        "Shreya Pathak",
    ]


def test_papers_per_page(seeds_tables: dict[str, pl.DataFrame]) -> None:
    per_file = dict(
        seeds_tables["authorship"].group_by("source_file").len().sort("source_file").iter_rows()
    )
    assert [per_file[k] for k in sorted(per_file)] == [7, 8, 3, 10, 5]
    subjects = seeds_tables["papers"]["subject"].value_counts().sort("subject")
    assert dict(subjects.iter_rows()) == {"Artificial Intelligence": 20, "Machine Learning": 5}
