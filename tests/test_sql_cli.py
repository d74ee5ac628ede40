"""`authorgraph sql`: formats (table, csv, json) and where the query comes from (no Prefect)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from authorgraph.pipelines.cli.commands import app
from authorgraph.pipelines.cli.formats import to_csv, to_json

runner = CliRunner()
QUERY = (
    "select display_name, papers_count, subjects from analytics.author_summary "
    "order by papers_count desc, display_name"
)


def invoke(*args: str | Path, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args], input=stdin)
    return result.exit_code, result.output


def test_default_is_a_table(seeds_warehouse: Path) -> None:
    code, output = invoke("sql", QUERY, "--warehouse", seeds_warehouse)
    assert code == 0, output
    assert "Koray Kavukcuoglu" in output and "display_name" in output
    assert "│" in output or "┃" in output


def test_csv(seeds_warehouse: Path) -> None:
    code, output = invoke("sql", QUERY, "--format", "csv", "--warehouse", seeds_warehouse)
    assert code == 0, output
    records = list(csv.reader(io.StringIO(output)))
    assert records[0] == ["display_name", "papers_count", "subjects"]
    assert records[1] == [
        "Koray Kavukcuoglu",
        "10",
        '["Artificial Intelligence", "Machine Learning"]',
    ]
    assert len(records) == 6


def test_json(seeds_warehouse: Path) -> None:
    code, output = invoke("sql", QUERY, "--format", "json", "--warehouse", seeds_warehouse)
    assert code == 0, output
    records = json.loads(output)
    assert len(records) == 5
    assert records[0] == {
        "display_name": "Koray Kavukcuoglu",
        "papers_count": 10,
        "subjects": ["Artificial Intelligence", "Machine Learning"],
    }
    assert sum(r["papers_count"] for r in records) == 33


def test_query_from_file(seeds_warehouse: Path, tmp_path: Path) -> None:
    query_file = tmp_path / "q.sql"
    query_file.write_text("-- how many papers?\nselect count(*) as n from papers;\n")
    code, output = invoke(
        "sql", "--file", query_file, "--format", "csv", "--warehouse", seeds_warehouse
    )
    assert code == 0, output
    assert output == "n\n25\n"


def test_query_from_stdin(seeds_warehouse: Path) -> None:
    code, output = invoke(
        "sql",
        "-",
        "--format",
        "json",
        "--warehouse",
        seeds_warehouse,
        stdin="select count(*) as n from authorship",
    )
    assert code == 0, output
    assert json.loads(output) == [{"n": 33}]


def test_usage_errors(seeds_warehouse: Path, tmp_path: Path) -> None:
    code, output = invoke("sql", "select 1", "--format", "xml", "--warehouse", seeds_warehouse)
    assert code == 2 and "--format must be one of table, csv, json" in output
    code, output = invoke("sql", "--warehouse", seeds_warehouse)
    assert code == 2 and "either as an argument" in output
    code, output = invoke("sql", "select 1", "--file", tmp_path / "q.sql")
    assert code == 2 and "either as an argument" in output
    code, output = invoke("sql", "--file", tmp_path / "missing.sql")
    assert code == 2 and "cannot read" in output and "Traceback" not in output
    code, output = invoke("sql", "delete from papers", "--warehouse", seeds_warehouse)
    assert code == 2 and "read-only" in output


def test_formatters_handle_nulls_and_quotes() -> None:
    columns = ["a", "b"]
    rows = [(None, 'say "hi", ok'), (1, None)]
    assert to_csv(columns, rows) == 'a,b\n,"say ""hi"", ok"\n1,\n'
    assert json.loads(to_json(columns, rows)) == [
        {"a": None, "b": 'say "hi", ok'},
        {"a": 1, "b": None},
    ]


def test_output_that_cannot_be_written_is_one_line_and_exit_120(seeds_warehouse: Path) -> None:
    """`sql` into a full device (/dev/full): exit 120 and one line, not a traceback, whether the
    output fails while being written (large) or only at exit, from its buffer (small)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    for query in ("select 42", "select * from range(100000)"):
        command = [sys.executable, "-m", "authorgraph.pipelines", "sql", query]
        command += ["--format", "csv", "--warehouse", str(seeds_warehouse)]
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, env=env
            )
        assert done.returncode == 120, (query, done.stderr)
        message = "authorgraph: could not write the output: [Errno 28] No space left on device\n"
        assert done.stderr == message, query
