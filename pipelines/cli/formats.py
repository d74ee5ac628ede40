"""Query results as text: CSV, JSON or a rich table (for `authorgraph sql --format`)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from rich.table import Table as RichTable
from rich.text import Text

FORMATS = ("table", "csv", "json")


def _json_value(value: object) -> object:
    """A value json.dumps can write: dates as ISO text, decimals as text, the rest as is."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | bytes):
        return str(value)
    return value


def _csv_cell(value: object) -> str:
    """One CSV cell: NULL is empty, lists and structs are JSON, everything else str()."""
    if value is None:
        return ""
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, ensure_ascii=False, default=_json_value)
    return str(value)


def to_csv(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """RFC 4180 CSV with a header line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def to_json(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A JSON array with one object per row (NULL is null)."""
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    return json.dumps(records, ensure_ascii=False, indent=2, default=_json_value) + "\n"


def to_rich_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> RichTable:
    """A rich table for the terminal (NULL shown as NULL)."""
    table = RichTable(*columns, show_lines=False)
    for row in rows:
        table.add_row(*(Text("NULL" if v is None else str(v)) for v in row))
    return table
