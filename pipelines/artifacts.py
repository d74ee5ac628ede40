"""The run's Prefect markdown artifact: what a run read, reused, rejected, loaded and checked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

ARTIFACT_KEY = "authorgraph-run"


def _cell(value: object) -> str:
    """A value made safe for one markdown table cell."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def run_markdown(
    record: Mapping[str, object],
    rejected: Sequence[Mapping[str, object]],
    row_counts: Mapping[str, int],
    validation_headline: str,
    failure_lines: Sequence[str],
    data_docs_index: Path | None,
) -> str:
    """The artifact's markdown: files, rejections with reasons, rows, validation, Data Docs."""
    lines = [
        f"# authorgraph run `{record['run_id']}`",
        "",
        f"Status: **{record['status']}**",
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
            f"| {_cell(r['file_name'])} | {_cell(r['reason_code'])} | {_cell(r.get('line'))} "
            f"| {_cell(r.get('message'))} |"
            for r in rejected
        ]
        lines.append("")
    lines += ["## Rows", "", "| table | rows |", "| --- | ---: |"]
    lines += [f"| {name} | {count} |" for name, count in row_counts.items()]
    lines += ["", "## Validation", "", validation_headline, ""]
    lines += [f"- FAILED {_cell(line)}" for line in failure_lines]
    lines += ["", f"Data Docs: `{data_docs_index}`", ""]
    return "\n".join(lines)
