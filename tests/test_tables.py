"""De-duplication and first-copy-wins rules, on literal pages; the Arrow conversions."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from authorgraph.transforms.normalize import author_id_for, paper_id_for
from authorgraph.transforms.parse import AuthorPage, RawPaper
from authorgraph.transforms.schema import AUTHORS, AUTHORSHIP, PAPERS, arrow_array, numpy_of
from authorgraph.transforms.tables import StagedPages, build_tables, stage_pages, to_arrow

GEMMA = RawPaper("Gemma 3", "arXiv.org Artificial Intelligence", "We introduce Gemma 3.")
JET = RawPaper("Jet", "arXiv.org Machine Learning", None)


def tables(*pages: tuple[str, AuthorPage]) -> dict[str, pl.DataFrame]:
    return build_tables(stage_pages(pages))


def test_same_paper_on_many_pages_is_one_row_linked_to_each_author() -> None:
    out = tables(
        ("a.txt", AuthorPage("A, Ann", (GEMMA, JET))), ("b.txt", AuthorPage("B, Bo", (GEMMA,)))
    )
    assert out["papers"].height == 2
    assert out["authorship"].height == 3
    gemma = paper_id_for(GEMMA.title, GEMMA.abstract)
    linked = out["authorship"].filter(pl.col("paper_id") == gemma)
    assert sorted(linked["source_file"]) == ["a.txt", "b.txt"]


def test_same_paper_twice_on_one_page_is_one_link() -> None:
    out = tables(("a.txt", AuthorPage("A, Ann", (GEMMA, GEMMA))))
    assert (out["papers"].height, out["authorship"].height) == (1, 1)


def test_case_and_whitespace_variants_keep_first_copy_in_file_name_order() -> None:
    shouty = RawPaper("GEMMA  3", "Elsewhere", "WE INTRODUCE GEMMA 3.")
    out = tables(
        ("b.txt", AuthorPage("B, Bo", (shouty,))), ("a.txt", AuthorPage("A, Ann", (GEMMA,)))
    )
    assert out["papers"].select("title", "source").row(0) == ("Gemma 3", GEMMA.source)


def test_file_name_order_is_code_point_order() -> None:
    upper = RawPaper("X", "From Upper", "abs")
    lower = RawPaper("x", "From lower", "ABS")
    out = tables(("a.txt", AuthorPage("A, A", (lower,))), ("B.txt", AuthorPage("B, B", (upper,))))
    assert out["papers"]["source"].to_list() == ["From Upper"]  # "B" (66) sorts before "a" (97)


def test_same_title_different_abstract_are_two_papers() -> None:
    other = RawPaper(GEMMA.title, GEMMA.source, "A different paper.")
    assert tables(("a.txt", AuthorPage("A, A", (GEMMA, other))))["papers"].height == 2


def test_same_author_on_two_pages_is_one_author_preferring_the_split_name() -> None:
    out = tables(
        ("a.txt", AuthorPage("Koray Kavukcuoglu", (GEMMA,))),
        ("b.txt", AuthorPage("Kavukcuoglu, Koray", (GEMMA, JET))),
    )
    assert out["authors"].height == 1
    assert out["authors"].row(0, named=True)["family_name"] == "Kavukcuoglu"
    assert out["authorship"].height == 2
    sources = dict(out["authorship"].select("paper_id", "source_file").iter_rows())
    assert sources == {
        paper_id_for(GEMMA.title, GEMMA.abstract): "a.txt",  # first file that lists it
        paper_id_for(JET.title, JET.abstract): "b.txt",
    }


def test_listing_order_does_not_change_tables() -> None:
    pages = [("a.txt", AuthorPage("A, A", (GEMMA,))), ("b.txt", AuthorPage("B, B", (JET, GEMMA)))]
    forward = build_tables(StagedPages.concat([stage_pages(pages[:1]), stage_pages(pages[1:])]))
    backward = build_tables(StagedPages.concat([stage_pages(pages[1:]), stage_pages(pages[:1])]))
    for name in forward:
        assert_frame_equal(forward[name], backward[name])


def test_page_without_papers_keeps_author() -> None:
    out = tables(("a.txt", AuthorPage("Lonely, Lou", ())))
    assert out["authors"]["author_id"].to_list() == [author_id_for("Lou Lonely")]
    assert out["papers"].height == 0


def test_outputs_cast_to_declared_schema() -> None:
    out = tables(("a.txt", AuthorPage("A, A", (GEMMA, JET))))
    for table in (AUTHORS, PAPERS, AUTHORSHIP):
        assert to_arrow(out[table.name], table).schema == table.arrow_schema


def test_polars_schemas_are_what_polars_reads_from_the_arrow_schemas() -> None:
    """`Table.polars_schema` maps types directly (no Arrow table built): the same dtypes polars
    gives each declared table's Arrow schema, and the fallback for a type not in the map."""
    import pyarrow as pa

    from authorgraph.transforms import schema

    tables = [t for t in vars(schema).values() if isinstance(t, schema.Table)]
    assert len(tables) >= 10
    for table in tables:
        assert table.polars_schema == dict(pl.DataFrame(table.arrow_schema.empty_table()).schema)
    assert schema.polars_dtype(pa.list_(pa.int16())) == pl.List(pl.Int16)


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (["a", None, "é", ""], pa.string()),
        (["a", None], pa.large_string()),
        ([["x", "y"], [], None, ["z"]], pa.list_(pa.string())),
        (np.array([0, 2**64 - 1, 7], dtype=np.uint64), pa.uint64()),
        (np.array([3, -1], dtype=np.int64), pa.int64()),
        (np.array([True, False, True]), pa.bool_()),
        ([], pa.string()),
    ],
)
def test_arrow_array_equals_pyarrows_own_conversion(values: Any, dtype: pa.DataType) -> None:
    """`arrow_array` (built by polars, so that no pandas is imported) gives what `pa.array`
    gives, type included; `numpy_of` gives back what `to_numpy` gives."""
    built = arrow_array(values, dtype)
    expected = pa.array(values, dtype)
    assert built.type == dtype and built.equals(expected)
    if not pa.types.is_list(dtype):
        assert list(numpy_of(built)) == list(expected.to_numpy(zero_copy_only=False))


def test_arrow_array_refuses_values_of_another_type() -> None:
    with pytest.raises((TypeError, pl.exceptions.PolarsError)):
        arrow_array([1, "a"], pa.string())
