"""One fixture file per reason code: the file is rejected, the other files still load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, transform_only

BAD = FIXTURES / "bad"
EDGE = FIXTURES / "edge"


@pytest.mark.parametrize(
    ("fixture", "code", "line"),
    [
        ("empty_file.txt", "EMPTY_FILE", None),
        ("file_too_large.txt", "FILE_TOO_LARGE", None),
        ("binary_content.txt", "BINARY_CONTENT", 8),
        ("invalid_utf8.txt", "INVALID_UTF8", 5),
        ("missing_header.txt", "MISSING_HEADER", 1),
        ("missing_author_name.txt", "MISSING_AUTHOR_NAME", 6),
        ("incomplete_paper.txt", "INCOMPLETE_PAPER", 15),
    ],
)
def test_bad_file_rejected_and_others_load(
    fixture: str, code: str, line: int | None, seeds_copy: Path, settings_for
) -> None:
    shutil.copy(BAD / fixture, seeds_copy / fixture)
    settings = settings_for(
        seeds_copy, max_file_bytes=16_000
    )  # seeds are under 13 kB; the fixture ~20 kB
    out = transform_only(settings)
    rejected = out.tables["rejected_files"].to_dicts()
    assert len(rejected) == 1
    row = rejected[0]
    assert (row["file_name"], row["reason_code"], row["line"]) == (fixture, code, line)
    assert len(row["sha256"]) == 64 and row["message"]
    # E6: a file over the size limit is never copied to quarantine; every other one is.
    copied = code != "FILE_TOO_LARGE"
    assert row["quarantined"] is copied
    assert out.rejected_paths == ({fixture: seeds_copy / fixture} if copied else {})
    # Nothing from the bad file; everything from the good ones.
    counts = {name: out.tables[name].height for name in ("authors", "papers", "authorship")}
    assert counts == {"authors": 5, "papers": 25, "authorship": 33}


def test_all_edge_fixtures_load(tmp_path: Path, settings_for) -> None:
    settings = settings_for(EDGE)
    out = transform_only(settings)
    assert out.tables["rejected_files"].height == 0
    authors = {r["name_raw"]: r for r in out.tables["authors"].to_dicts()}
    assert authors["Crlf, Carl"]["display_name"] == "Carl Crlf"
    assert authors["张, 伟"]["display_name"] == "张伟"
    assert authors["van der Berg, Jr., Jan"]["suffix"] == "Jr."
    assert authors["Koray Kavukcuoglu"]["family_name"] is None
    assert authors["Wrap, Wendy"]["given_name"] == "Wendy"
    assert "Lonely, Lou" in authors
    titles = dict(out.tables["papers"].select("title", "abstract").iter_rows())
    assert titles["Only A Title"] is None
    assert (
        titles["A Title That Wraps Twice"] == "First paragraph soft wrapped.\n\nSecond paragraph."
    )
    # "A Tiny Paper" is on five pages: one paper row.
    assert list(titles).count("A Tiny Paper") == 1
