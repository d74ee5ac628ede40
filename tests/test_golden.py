"""The golden test: the real pages in seeds/ give exactly the known tables."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from pipelines import stages
from pipelines.config import Settings
from tests.conftest import ROOT, SEEDS


@pytest.fixture(scope="module")
def seeds_tables() -> dict[str, pl.DataFrame]:
    settings = Settings(seeds=SEEDS, warehouse=ROOT / "unused")
    return stages.transform(stages.extract(settings), settings).tables


def test_seeds_match_shared_copy_byte_for_byte() -> None:
    shared = ROOT.parent / "shared" / "seeds"
    if not shared.is_dir():
        pytest.skip("../shared/seeds is not beside this checkout")
    for path in shared.iterdir():
        ours = SEEDS / path.name
        assert (
            hashlib.sha256(ours.read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest()
        )


def test_exact_counts(seeds_tables: dict[str, pl.DataFrame]) -> None:
    counts = {name: frame.height for name, frame in seeds_tables.items()}
    assert counts == {"authors": 5, "papers": 25, "authorship": 33, "rejected_files": 0}


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
