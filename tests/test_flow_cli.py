"""End to end: the real Prefect flow and the `authorgraph` CLI, into temp warehouses."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from authorgraph.expectations.validate import ValidationFailed
from authorgraph.pipelines import stages
from authorgraph.pipelines.cli.commands import app
from tests.conftest import FIXTURES, ROOT, SEEDS

pytestmark = pytest.mark.usefixtures("prefect_harness")
runner = CliRunner()


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def snapshot(warehouse: Path) -> dict[str, str]:
    """sha256 of every published file (DuckDB + Parquet)."""
    files = [warehouse / "authorgraph.duckdb", *sorted((warehouse / "parquet").glob("*.parquet"))]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_run_then_sql(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    code, output = invoke("run", "--seeds", SEEDS, "--warehouse", warehouse)
    assert code == 0, output
    assert "5 read, 5 loaded, 0 rejected" in output
    assert "authors 5, papers 25, authorship 33" in output
    assert "to review: paper pairs 0, author pairs 0 (flagged, never merged)" in output
    assert "validation: passed" in output
    for path in [
        "authorgraph.duckdb",
        "parquet/authors.parquet",
        "parquet/papers.parquet",
        "parquet/authorship.parquet",
        "data_docs/index.html",
    ]:
        assert (warehouse / path).is_file(), path
    code, output = invoke("sql", "select count(*) as n from papers", "--warehouse", warehouse)
    assert code == 0
    assert "25" in output.split()
    con = duckdb.connect(str(warehouse / "authorgraph.duckdb"), read_only=True)
    try:
        gemma = con.execute(
            "select count(*) from authorship join papers using (paper_id) where title = ?",
            ["Gemma 3 Technical Report"],
        ).fetchone()
        assert gemma == (5,)
        assert con.execute("select count(*) from rejected_files").fetchone() == (0,)
    finally:
        con.close()
    parquet = pl.read_parquet(warehouse / "parquet" / "authorship.parquet")
    assert parquet.height == 33
    code, output = invoke("validate", "--warehouse", warehouse)
    assert code == 0 and "validation: passed" in output


def test_rejected_file_is_reported_quarantined_and_strict_exits_3(
    seeds_copy: Path, tmp_path: Path
) -> None:
    shutil.copy(FIXTURES / "bad" / "incomplete_paper.txt", seeds_copy / "zz bad; 'name'.txt")
    warehouse = tmp_path / "wh"
    code, output = invoke("run", "--seeds", seeds_copy, "--warehouse", warehouse)
    assert code == 0, output
    assert "6 read, 5 loaded, 1 rejected" in output
    assert "zz bad; 'name'.txt (line 15): INCOMPLETE_PAPER" in output
    assert (warehouse / "quarantine" / "zz bad; 'name'.txt").read_bytes() == (
        seeds_copy / "zz bad; 'name'.txt"
    ).read_bytes()
    code, output = invoke("run", "--seeds", seeds_copy, "--warehouse", warehouse, "--strict")
    assert code == 3
    assert "--strict: 1 file(s) rejected" in output
    con = duckdb.connect(str(warehouse / "authorgraph.duckdb"), read_only=True)
    try:
        row = con.execute("select file_name, reason_code from rejected_files").fetchall()
    finally:
        con.close()
    assert row == [("zz bad; 'name'.txt", "INCOMPLETE_PAPER")]


def test_failed_validation_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "wh"
    assert invoke("run", "--seeds", SEEDS, "--warehouse", warehouse)[0] == 0
    before = snapshot(warehouse)
    real_transform = stages.transform

    def corrupted(*args: Any, **kwargs: Any) -> stages.Transformed:
        out = real_transform(*args, **kwargs)
        tables = out.tables
        authorship = tables["authorship"]
        dangling = authorship.head(1).with_columns(paper_id=pl.lit("0000000000000000"))
        out.replace_table("authorship", pl.concat([authorship, dangling]))
        out.replace_table("authors", pl.concat([tables["authors"], tables["authors"].head(1)]))
        return out

    monkeypatch.setattr(stages, "transform", corrupted)
    # --full-refresh: with unchanged inputs a run would re-publish the validated version as is.
    code, output = invoke("run", "--seeds", SEEDS, "--warehouse", warehouse, "--full-refresh")
    assert code == 1
    assert "FAILED authors: expect_column_values_to_be_unique(author_id)" in output
    assert (
        "FAILED authorship_relationships: expect_column_values_to_not_be_null(paper_ref)" in output
    )
    assert "nothing was published" in output
    assert snapshot(warehouse) == before
    assert not any((warehouse / ".staging").glob("*"))  # nothing was even staged


def test_flow_raises_validation_failed_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from authorgraph.pipelines.config import Settings
    from authorgraph.pipelines.flow import authorgraph_flow

    real_transform = stages.transform

    def empty_title(*args: Any, **kwargs: Any) -> stages.Transformed:
        out = real_transform(*args, **kwargs)
        out.replace_table("papers", out.tables["papers"].with_columns(title=pl.lit("")))
        return out

    monkeypatch.setattr(stages, "transform", empty_title)
    settings = Settings(seeds=SEEDS, warehouse=tmp_path / "wh")
    with pytest.raises(ValidationFailed) as info:
        authorgraph_flow(settings)
    assert not (tmp_path / "wh" / "authorgraph.duckdb").exists()
    assert info.value.report.failures[0].suite == "papers"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    code, output = invoke("run", "--no-such-flag")
    assert code == 2
    code, output = invoke("run", "--seeds", tmp_path / "missing", "--warehouse", tmp_path / "wh")
    assert code == 2
    assert "seeds folder not found" in output and "Traceback" not in output
    code, output = invoke("sql", "select 1", "--warehouse", tmp_path / "nowhere")
    assert code == 2 and "no published warehouse" in output
    code, output = invoke("run", "--max-file-bytes", "0", "--warehouse", tmp_path / "wh")
    assert code == 2 and "must be positive" in output


def test_env_vars_configure_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHORGRAPH_SEEDS", str(SEEDS))
    monkeypatch.setenv("AUTHORGRAPH_WAREHOUSE", str(tmp_path / "env-wh"))
    code, output = invoke("run")
    assert code == 0, output
    assert (tmp_path / "env-wh" / "authorgraph.duckdb").is_file()


@pytest.mark.parametrize("command", [[], ["run"], ["serve"], ["validate"], ["sql"], ["report"]])
def test_every_command_has_help(command: list[str]) -> None:
    code, output = invoke(*command, "--help")
    assert code == 0
    assert "Usage" in output


def test_python_m_pipelines_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "authorgraph.pipelines", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0
    for command in ("run", "validate", "sql"):
        assert command in result.stdout


@pytest.mark.parametrize("runner", ["pool", "threads"])
def test_progress_hears_every_parsed_file(runner: str, tmp_path: Path) -> None:
    from authorgraph.pipelines.config import Settings
    from authorgraph.pipelines.flow import authorgraph_flow

    heard: list[int] = []
    settings = Settings(seeds=SEEDS, warehouse=tmp_path / "wh", runner=runner, workers=2)
    summary = authorgraph_flow(settings, heard.append)
    assert sum(heard) == 5
    assert summary.row_counts["papers"] == 25


def test_flow_runs_send_no_heartbeats_unless_the_environment_asks() -> None:
    """`authorgraph run` wraps its flow in `heartbeats_unless_asked`: the flow run's engine
    reads no heartbeat interval (no thread to join at its end), unless a variable asks."""
    from prefect import flow
    from prefect.settings import get_current_settings

    from authorgraph.pipelines.flow import HEARTBEAT_ENV, heartbeats_unless_asked

    @flow
    def interval() -> int | None:
        return get_current_settings().flows.heartbeat_frequency

    default = interval()
    assert default is not None  # Prefect's own default: heartbeats on
    with heartbeats_unless_asked({}):
        assert interval() is None
    assert interval() == default
    for name in HEARTBEAT_ENV:
        with heartbeats_unless_asked({name: "60"}):
            assert interval() == default
