"""The run's Prefect markdown artifact: what a run read, reused, rejected, loaded and checked.

Every value taken from the data (file names, messages, failure lines, paths) is escaped: it
renders as the same text, never as HTML, a link, an image, emphasis or a table cell break.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path

from authorgraph.pipelines.extract.seeds import RejectedFile

ARTIFACT_KEY = "authorgraph-run"


# `<`, `>` and `&` become entities (no raw HTML, no `<http://...>` autolinks, no entity tricks);
# the characters that start inline markdown are backslash-escaped: code, emphasis, links and
# images, table cell breaks, strikethrough, math, and `:`/`.` so `http://`/`www.` is no autolink.
# Values never start a line (each follows `| ` or `- FAILED `), so block syntax needs nothing.
# Line breaks and other control characters become one space.
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BACKSLASHED = set("\\`*_[]()!|~$:.")


def _escape_char(char: str) -> str:
    if char in _ENTITIES:
        return _ENTITIES[char]
    if char in _BACKSLASHED:
        return "\\" + char
    if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
        return " "
    return char


def _cell(value: object) -> str:
    """A value from the data made safe as markdown text (also inside one table cell)."""
    text = "" if value is None else str(value)
    return "".join(_escape_char(c) for c in text)


def run_markdown(
    record: Mapping[str, object],
    rejected: Sequence[RejectedFile],
    row_counts: Mapping[str, int],
    validation_headline: str,
    failure_lines: Sequence[str],
    data_docs_index: Path | None,
) -> str:
    """The artifact's markdown: files, rejections with reasons, rows, validation, Data Docs."""
    lines = [
        f"# authorgraph run `{record['run_id']}`",  # made by new_run_id(): digits, letters, -
        "",
        f"Status: **{_cell(record['status'])}**",
        "",
        "## Files",
        "",
        "| read | parsed | reused | rejected | deleted |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {record['files_read']} | {record['files_parsed']} | {record['files_reused']} "
        f"| {record['files_rejected']} | {record['files_deleted']} |",
        "",
    ]
    if rejected:
        lines += [
            "### Rejected files",
            "",
            "| file | reason | line | message |",
            "| --- | --- | ---: | --- |",
        ]
        lines += [
            f"| {_cell(f.file_name)} | {_cell(f.rejection.reason_code)} "
            f"| {_cell(f.rejection.line)} | {_cell(f.rejection.message)} |"
            for f in rejected
        ]
        lines.append("")
    lines += ["## Rows", "", "| table | rows |", "| --- | ---: |"]
    lines += [f"| {name} | {count} |" for name, count in row_counts.items()]
    lines += ["", "## Validation", "", validation_headline, ""]
    lines += [f"- FAILED {_cell(line)}" for line in failure_lines]
    lines += ["", f"Data Docs: {_cell(str(data_docs_index))}", ""]
    return "\n".join(lines)
