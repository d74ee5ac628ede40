"""BASELINE, not authorgraph: the "straightforward pandas peer" of issue 4.

A short pandas script that reads the pages, splits them and drops duplicates into the same
three tables (authors, papers, authorship). It skips files it cannot read instead of reporting
them, and it neither validates nor publishes. The benchmark times it on the same files as
authorgraph so the ratio holds on a noisy machine.

    python -m tests.benchmarks.pandas_peer PAGES_DIR
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from pathlib import Path

import pandas as pd

PAPER_BREAK = re.compile(r"\n[^\S\n]*\n(?:[^\S\n]*\n)+")
FIELD_BREAK = re.compile(r"\n[^\S\n]*\n")


def fold(text: str) -> str:
    """Whitespace runs to one space, trimmed."""
    return " ".join(text.split())


def display_name(line: str) -> str:
    """'Family, Given' → 'Given Family'; anything else as written."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) == 2 and all(parts):
        return f"{parts[1]} {parts[0]}"
    if len(parts) == 3 and all(parts):
        return f"{parts[2]} {parts[0]} {parts[1]}"
    return line


def read_pages(folder: Path) -> tuple[list[dict[str, str]], list[dict[str, object]], int]:
    """One row per page and one per paper listing; files that do not parse are skipped."""
    authors: list[dict[str, str]] = []
    listings: list[dict[str, object]] = []
    skipped = 0
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            skipped += 1
            continue
        text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
        lines = [ln.strip() for ln in text.split("\n")]
        nonblank = [i for i, ln in enumerate(lines) if ln]
        if (
            "\x00" in text
            or len(nonblank) < 3
            or lines[nonblank[0]] != "Goto"
            or lines[nonblank[1]] != "Collaborating Authors"
        ):
            skipped += 1
            continue
        name = fold(lines[nonblank[2]])
        body = "\n".join(lines[nonblank[2] + 1 :]).strip("\n")
        rows = []
        for block in PAPER_BREAK.split(body) if body else []:
            fields = [fold(f) for f in FIELD_BREAK.split(block) if fold(f)]
            if not fields:
                continue
            if len(fields) < 2:
                rows = None
                break
            abstract = "\n\n".join(fields[2:]) or None
            rows.append({"title": fields[0], "source": fields[1], "abstract": abstract})
        if rows is None:
            skipped += 1
            continue
        display = display_name(name)
        authors.append({"file_name": path.name, "display_name": display, "name_raw": name})
        for row in rows:
            listings.append({"file_name": path.name, "display_name": display, **row})
    return authors, listings, skipped


def build(folder: Path) -> dict[str, pd.DataFrame]:
    """The three tables, de-duplicated the way the input contract says."""
    author_rows, listing_rows, _ = read_pages(folder)
    authors = pd.DataFrame(author_rows, columns=["file_name", "display_name", "name_raw"])
    listings = pd.DataFrame(
        listing_rows, columns=["file_name", "display_name", "title", "source", "abstract"]
    )
    authors["author_key"] = authors["display_name"].str.casefold()
    listings["author_key"] = listings["display_name"].str.casefold()
    listings["paper_key"] = (
        listings["title"].str.casefold() + "\x1f" + listings["abstract"].fillna("").str.casefold()
    )
    return {
        "authors": authors.drop_duplicates("author_key"),
        "papers": listings.drop_duplicates("paper_key")[
            ["paper_key", "title", "source", "abstract"]
        ],
        "authorship": listings.drop_duplicates(["author_key", "paper_key"])[
            ["author_key", "paper_key", "file_name"]
        ],
    }


def main(argv: list[str] | None = None) -> None:
    """Build the tables and print their row counts as JSON."""
    args = sys.argv[1:] if argv is None else argv
    tables = build(Path(args[0]))
    print(json.dumps({name: len(frame) for name, frame in tables.items()}))


if __name__ == "__main__":
    main()
