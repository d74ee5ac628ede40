"""BASELINE, not authorgraph: the plain pandas script a user would write (issue 10's peer).

Read every file, split the text with str methods, drop duplicates, write Parquet. One Python
loop splits each page into its header and papers (`str.split`); pandas folds whitespace, builds
the keys (a 64-bit hash of the lower-cased title and abstract is the paper id), drops
duplicates and writes one Parquet file per table. It skips the files it cannot use instead of
reporting them, and it neither validates nor publishes atomically. The benchmark times it on
the same files as authorgraph, Parquet writing included.

Approximate on purpose, as a plain script is: keys are lower-cased (not casefolded), names are
split on commas (a CJK name becomes `Given Family`, not `FamilyGiven`), no BOM, CRLF or Unicode
normalization handling, and the header lines must be written exactly. On the benchmark's
generated corpus its three row counts equal expected.json.

    python -m tests.benchmarks.pandas_peer PAGES_DIR [OUT_DIR]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def read_pages(folder: Path) -> tuple[list[tuple[str, str]], list[tuple[str, ...]]]:
    """(file, name line) per usable page and (file, title, source, abstract) per paper.

    Skipped: files that are not UTF-8 or hold NUL bytes, pages without the `Goto` /
    `Collaborating Authors` header or a name, and pages with a paper cut off before its source.
    Abstracts with a whitespace run or a line break are folded here, where it is cheap to tell.
    """
    pages: list[tuple[str, str]] = []
    papers: list[tuple[str, ...]] = []
    for name in sorted(os.listdir(folder)):
        if name.startswith("."):
            continue
        try:
            text = (folder / name).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        head, *blocks = text.split("\n\n\n")
        lines = head.split("\n\n")
        if "\x00" in text or lines[:2] != ["Goto", "Collaborating Authors"] or len(lines) < 3:
            continue
        rows = [block.split("\n\n", 2) for block in blocks if block]
        if not lines[2].strip() or any(len(fields) < 2 for fields in rows):
            continue
        pages.append((name, lines[2]))
        for fields in rows:
            abstract = fields[2] if len(fields) == 3 else ""
            if "  " in abstract or "\n" in abstract:
                abstract = " ".join(abstract.split())
            papers.append((name, fields[0], fields[1], abstract))
    return pages, papers


def fold(column: pd.Series) -> pd.Series:
    """Whitespace runs (soft wraps included) to one space, trimmed."""
    return column.str.split().str.join(" ")


def display_names(name: pd.Series) -> pd.Series:
    """'Family, Given' -> 'Given Family'; 'Family, Suffix, Given' -> 'Given Family Suffix'."""
    parts: pd.Series = name.str.split(",")  # lists: the stubs would give .str string methods only
    count = parts.str.len()
    first, second, third = (parts.str[i].str.strip() for i in range(3))
    two = second + " " + first
    three = third + " " + first + " " + second
    return pd.Series(np.where(count == 2, two, np.where(count == 3, three, name)), index=name.index)


def build(folder: Path) -> dict[str, pd.DataFrame]:
    """The three tables, de-duplicated the way the input contract says."""
    page_rows, paper_rows = read_pages(folder)
    authors = pd.DataFrame(page_rows, columns=["file_name", "name_raw"])
    authors["name_raw"] = fold(authors["name_raw"])
    authors["display_name"] = display_names(authors["name_raw"])
    authors["author_key"] = authors["display_name"].str.lower()
    listings = pd.DataFrame(paper_rows, columns=["file_name", "title", "source", "abstract"])
    listings["title"] = fold(listings["title"])
    listings["source"] = fold(listings["source"])
    listings["abstract"] = listings["abstract"].str.strip().replace("", None)
    listings["author_key"] = listings["file_name"].map(authors.set_index("file_name")["author_key"])
    # A paper is its lower-cased title and abstract: hash them into one 64-bit id.
    keys = pd.DataFrame({"t": listings["title"].str.lower(), "a": listings["abstract"].str.lower()})
    listings["paper_id"] = pd.util.hash_pandas_object(keys, index=False)
    return {
        "authors": authors.drop_duplicates("author_key"),
        "papers": listings[["paper_id", "title", "source", "abstract"]].drop_duplicates("paper_id"),
        "authorship": listings[["author_key", "paper_id", "file_name"]].drop_duplicates(
            ["author_key", "paper_id"]
        ),
    }


def run(folder: Path, out: Path) -> dict[str, int]:
    """Build the tables, write one Parquet file per table into `out`; return the row counts."""
    tables = build(folder)
    out.mkdir(parents=True, exist_ok=True)
    for table, frame in tables.items():
        frame.to_parquet(out / f"{table}.parquet", index=False)
    return {table: len(frame) for table, frame in tables.items()}


def main(argv: list[str] | None = None) -> None:
    """Build and write the tables; print their row counts as JSON."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        counts = run(Path(args[0]), Path(args[1]))
    else:
        with tempfile.TemporaryDirectory(prefix="pandas-peer-") as tmp:
            counts = run(Path(args[0]), Path(tmp))
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
