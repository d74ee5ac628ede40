"""BASELINE, not authorgraph: the same plain job written with polars (issue 10's second peer).

Read every file into one frame, split the text with polars' string and list expressions,
`unique`, write Parquet: no Python loop over papers. Like the pandas peer it skips the files it
cannot use instead of reporting them, and neither validates nor publishes atomically. The
benchmark times it on the same files as authorgraph, Parquet writing included.

Approximate on purpose, as a plain script is: keys are lower-cased (not casefolded), names are
split on commas (a CJK name becomes `Given Family`), no BOM, CRLF or Unicode normalization
handling, and the header lines must be written exactly. On the benchmark's generated corpus its
three row counts equal expected.json.

    python -m tests.benchmarks.polars_peer PAGES_DIR [OUT_DIR]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import polars as pl


def read_pages(folder: Path) -> pl.DataFrame:
    """One row per file that decodes as UTF-8 (the others are skipped)."""
    names: list[str] = []
    texts: list[str] = []
    for name in sorted(os.listdir(folder)):
        if name.startswith("."):
            continue
        try:
            texts.append((folder / name).read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
        names.append(name)
    return pl.DataFrame({"file_name": names, "text": texts})


def fold(column: pl.Expr) -> pl.Expr:
    """Whitespace runs (soft wraps included) to one space, trimmed."""
    return column.str.replace_all(r"\s+", " ").str.strip_chars()


def display_name(name: pl.Expr) -> pl.Expr:
    """'Family, Given' -> 'Given Family'; 'Family, Suffix, Given' -> 'Given Family Suffix'."""
    parts = name.str.split(",")
    part = [parts.list.get(i, null_on_oob=True).str.strip_chars() for i in range(3)]
    count = parts.list.len()
    return (
        pl.when(count == 2)
        .then(pl.concat_str(part[1], part[0], separator=" "))
        .when(count == 3)
        .then(pl.concat_str(part[2], part[0], part[1], separator=" "))
        .otherwise(name)
    )


def build(folder: Path) -> dict[str, pl.DataFrame]:
    """The three tables, de-duplicated the way the input contract says."""
    chunks = pl.col("text").str.split("\n\n\n")
    head = chunks.list.first().str.split("\n\n")
    pages = (
        read_pages(folder)
        .filter(~pl.col("text").str.contains("\x00", literal=True))
        .with_columns(
            name_raw=fold(head.list.get(2, null_on_oob=True)),
            ok=(head.list.get(0, null_on_oob=True) == "Goto")
            & (head.list.get(1, null_on_oob=True) == "Collaborating Authors"),
            block=chunks.list.slice(1),
        )
        .filter(pl.col("ok") & (pl.col("name_raw") != ""))
        .drop("text", "ok")
    )
    fields = pl.col("block").str.splitn("\n\n", 3)
    listings = (
        pages.select("file_name", "block")
        .explode("block")
        .filter(pl.col("block").is_not_null() & (pl.col("block") != ""))
        .select(
            "file_name",
            title=fold(fields.struct[0]),
            source=fold(fields.struct[1]),
            abstract=fold(fields.struct[2]),
        )
    )
    # A paper with no source line means the page was cut off: skip the whole page.
    truncated = listings.filter(pl.col("source").fill_null("") == "").select("file_name")
    authors = (
        pages.join(truncated, on="file_name", how="anti")
        .select("file_name", "name_raw", display_name=display_name(pl.col("name_raw")))
        .with_columns(author_key=pl.col("display_name").str.to_lowercase())
    )
    listings = (
        listings.join(authors.select("file_name", "author_key"), on="file_name")
        .with_columns(pl.col("abstract").replace("", None))
        .with_columns(
            paper_id=pl.struct(
                pl.col("title").str.to_lowercase(), pl.col("abstract").str.to_lowercase()
            ).hash()
        )
    )
    return {
        "authors": authors.unique("author_key", keep="first", maintain_order=True),
        "papers": listings.select("paper_id", "title", "source", "abstract").unique(
            "paper_id", keep="first", maintain_order=True
        ),
        "authorship": listings.select("author_key", "paper_id", "file_name").unique(
            ["author_key", "paper_id"], keep="first", maintain_order=True
        ),
    }


def run(folder: Path, out: Path) -> dict[str, int]:
    """Build the tables, write one Parquet file per table into `out`; return the row counts."""
    tables = build(folder)
    out.mkdir(parents=True, exist_ok=True)
    for table, frame in tables.items():
        frame.write_parquet(out / f"{table}.parquet")
    return {table: frame.height for table, frame in tables.items()}


def main(argv: list[str] | None = None) -> None:
    """Build and write the tables; print their row counts as JSON."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        counts = run(Path(args[0]), Path(args[1]))
    else:
        with tempfile.TemporaryDirectory(prefix="polars-peer-") as tmp:
            counts = run(Path(args[0]), Path(tmp))
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
