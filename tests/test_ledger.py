"""The listing ledger: every listing kept, every merge explained, its three invariants checked.

Crafted pages (real files, the real DuckDB build, the real GX suite) show a paper merged from
two texts, a paper listed twice on one page, and the suite failing when a rule is broken.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authorgraph.expectations.validate import validate_tables
from authorgraph.pipelines.config import Settings
from authorgraph.pipelines.transform.build import BuildLimits, ledger_checks
from authorgraph.transforms.parse import AuthorPage, RawPaper, render_author_page
from authorgraph.transforms.tables import build_tables, stage_pages
from tests.conftest import run_stages

ABSTRACT = "We study how merged listings can be explained to the reader of a dataset."
PAPER = RawPaper("Explainable Merges", "arXiv.org Databases", ABSTRACT)
# The same paper (same casefolded title and abstract) from another aggregator feed.
OTHER_TEXT = RawPaper("EXPLAINABLE MERGES", "Proceedings of VLDB", ABSTRACT.upper())
SOLO = RawPaper("A Paper Alone", "arXiv.org Machine Learning", None)


def write_pages(folder: Path, pages: dict[str, tuple[str, list[RawPaper]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, (name, papers) in pages.items():
        (folder / file_name).write_text(render_author_page(name, papers), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    """Three pages: b.txt lists the paper twice, c.txt in another text, a.txt not at all."""
    seeds = write_pages(
        tmp_path_factory.mktemp("seeds"),
        {
            "a.txt": ("Alone, Ada", [SOLO]),
            "b.txt": ("Twice, Tom", [PAPER, SOLO, PAPER]),
            "c.txt": ("Copy, Cora", [OTHER_TEXT]),
        },
    )
    warehouse = tmp_path_factory.mktemp("wh")
    run_stages(Settings(seeds=seeds, warehouse=warehouse))
    with duckdb.connect(str(warehouse / "authorgraph.duckdb"), read_only=True) as con:
        return {
            name: con.sql(f"SELECT * FROM {name}").pl()
            for name in ("papers", "authorship", "paper_variants", "listings")
        }


def test_a_paper_listed_twice_on_one_page_has_two_listings(ledger: dict[str, pl.DataFrame]) -> None:
    on_b = ledger["listings"].filter(pl.col("source_file") == "b.txt").sort("position")
    assert on_b["position"].to_list() == [0, 1, 2]
    assert on_b["paper_id"][0] == on_b["paper_id"][2] != on_b["paper_id"][1]
    # ... and still one authorship row for that author and paper.
    pairs = ledger["authorship"].group_by("author_id", "paper_id").len()
    assert pairs["len"].max() == 1 and ledger["authorship"].height == 4


def test_two_texts_of_one_paper_are_two_variants_and_the_first_listing_is_canonical(
    ledger: dict[str, pl.DataFrame],
) -> None:
    papers, listings, variants = ledger["papers"], ledger["listings"], ledger["paper_variants"]
    merged = papers.filter(pl.col("title") == PAPER.title)
    assert merged.height == 1  # one paper, never two
    paper_id = merged["paper_id"][0]
    texts = variants.filter(pl.col("paper_id") == paper_id).sort("title")
    assert texts["title"].to_list() == [OTHER_TEXT.title, PAPER.title]
    assert texts["source"].to_list() == [OTHER_TEXT.source, PAPER.source]
    rows = listings.filter(pl.col("paper_id") == paper_id).sort("source_file", "position")
    assert rows.select("source_file", "position", "is_canonical").rows() == [
        ("b.txt", 0, True),
        ("b.txt", 2, False),
        ("c.txt", 0, False),
    ]
    # The canonical listing's variant is the text papers kept.
    canonical = rows.filter("is_canonical").join(variants, on="variant_id")
    assert canonical["title"][0] == merged["title"][0]
    assert canonical["source"][0] == merged["source"][0]


def test_every_paper_has_exactly_one_canonical_listing(ledger: dict[str, pl.DataFrame]) -> None:
    counts = ledger["listings"].group_by("paper_id").agg(pl.col("is_canonical").sum())
    assert (
        counts.sort("paper_id")["paper_id"].to_list()
        == ledger["papers"]["paper_id"].sort().to_list()
    )
    assert set(counts["is_canonical"]) == {1}


def _checks(
    tables: dict[str, pl.DataFrame], tmp_path: Path, parsed: pl.DataFrame | None = None
) -> dict[str, int]:
    """The ledger's violation counts; the parsed listings are `parsed`'s (by default the
    listings given, as an unbroken ledger has them)."""
    paths = {}
    tmp_path.mkdir(parents=True, exist_ok=True)
    parsed = tables["listings"] if parsed is None else parsed
    tables = {**tables, "page_links": parsed.rename({"source_file": "file_name"})}
    for name in ("papers", "authorship", "listings", "page_links"):
        paths[name] = tmp_path / f"{name}.parquet"
        tables[name].write_parquet(paths[name])
    target = ledger_checks(paths, tmp_path / "checks" / "ledger.parquet", BuildLimits())
    return pl.read_parquet(target).row(0, named=True)


def test_the_ledger_suite_passes_and_catches_each_broken_rule(
    ledger: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    ok = _checks(dict(ledger), tmp_path / "ok")
    assert set(ok.values()) == {0}
    listings = ledger["listings"]
    broken = {
        # A second canonical listing for a paper.
        "papers_without_one_canonical_listing": listings.with_columns(is_canonical=True),
        # c.txt's listing credited to another page's author: c.txt's authorship row has none.
        "authorship_without_listing": listings.with_columns(
            author_id=pl.when(pl.col("source_file") == "c.txt")
            .then(pl.lit(listings.filter(pl.col("source_file") == "a.txt")["author_id"][0]))
            .otherwise(pl.col("author_id"))
        ),
        # Two listings of one paper on one page merged into one.
        "listings_not_as_parsed": listings.filter(
            (pl.col("source_file") != "b.txt") | (pl.col("position") != 2)
        ),
    }
    for rule, frame in broken.items():
        counts = _checks({**ledger, "listings": frame}, tmp_path / rule, listings)
        assert counts[rule] > 0, rule
        assert [k for k, v in counts.items() if v] == [rule]
    # Through the real GX suite: the failure names the rule.
    bad = _checks(
        {**ledger, "listings": broken["authorship_without_listing"]}, tmp_path / "gx", listings
    )
    report = validate_tables({"ledger": pl.DataFrame([bad])}, tmp_path / "docs")
    assert not report.success
    assert [f.column for f in report.failures] == ["authorship_without_listing"]
    assert validate_tables({"ledger": pl.DataFrame([ok])}, tmp_path / "docs2").success


paper = st.builds(
    RawPaper,
    st.sampled_from(["T", "t", "U"]),
    st.sampled_from(["arXiv.org AI", "Venue"]),
    st.sampled_from([None, "x y z", "X Y Z"]),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.lists(paper, max_size=4)),
        max_size=5,
        unique_by=lambda p: p[0],
    )
)
def test_ledger_invariants_hold_on_any_pages(pages: list[tuple[str, list[RawPaper]]]) -> None:
    """The pure rules (which the DuckDB build equals, tests/test_build.py): every listing is
    kept, each paper has one canonical listing, every authorship row has a listing."""
    parsed = [(f"{n}.txt", AuthorPage(name_line=f"{n}, A", papers=tuple(p))) for n, p in pages]
    tables = build_tables(stage_pages(parsed))
    listings = tables["listings"]
    assert listings.height == sum(len(p) for _, p in pages)
    canonical = listings.group_by("paper_id").agg(pl.col("is_canonical").sum())
    assert canonical.height == tables["papers"].height and set(canonical["is_canonical"]) <= {1}
    assert tables["authorship"].join(listings, on=["author_id", "paper_id"], how="anti").is_empty()
    assert set(listings["variant_id"]) == set(tables["paper_variants"]["variant_id"])


def test_seeds_ledger_checks_are_clean(
    seeds_warehouse: Path, tmp_path: Path, settings_for: Callable[..., Settings]
) -> None:
    with duckdb.connect(str(seeds_warehouse / "authorgraph.duckdb"), read_only=True) as con:
        tables = {
            n: con.sql(f"SELECT * FROM {n}").pl() for n in ("papers", "authorship", "listings")
        }
    assert set(_checks(tables, tmp_path).values()) == {0}


def test_the_canonical_listing_is_the_first_in_file_order_whatever_the_page_order() -> None:
    """Pages handed over in reverse file order (hypothesis found the reference rules marking
    b.txt canonical: a polars join need not keep its left side's order)."""
    shared = RawPaper("T", "S", None)
    pages = [("b.txt", AuthorPage("0", (shared,))), ("a.txt", AuthorPage("0", (shared,)))]
    listings = build_tables(stage_pages(pages))["listings"]
    assert listings.select("source_file", "is_canonical").rows() == [
        ("a.txt", True),
        ("b.txt", False),
    ]
