"""The layout-drift alarm: run-level page statistics judged by `layout_drift.json`.

Pages are rendered from the real arXiv records with the benchmark generator's own page
rendering. A layout that shifts under the parser (source and abstract swapped, title and
source swapped, abstracts gone) still parses into valid rows; the alarm must stop such a run
(nothing published, a line naming the shift), while real, generated and edge-case corpora
pass, and a small run only warns.
"""

from __future__ import annotations

import json
import shutil
import unicodedata
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from authorgraph.expectations.validate import ValidationFailed, ValidationReport, validate_tables
from authorgraph.pipelines import stages
from authorgraph.pipelines.cli.commands import app
from authorgraph.pipelines.config import Settings
from authorgraph.pipelines.load.layout import RUN_LOG
from authorgraph.pipelines.load.publish import PARQUET_DIR, STATE_DIR, current_version
from authorgraph.pipelines.load.state import read_run_log, read_state
from authorgraph.pipelines.transform.drift import STATS_SCHEMA
from authorgraph.transforms.schema import CORE_TABLES
from tests.benchmarks.generate import (
    REALDATA,
    Paper,
    generate,
    load_vocabulary,
    paper_block,
    render_page,
)
from tests.conftest import FIXTURES, SEEDS
from tests.test_concurrency import cli_env, run_cli  # noqa: F401 (cli_env is a fixture)

Drift = Callable[[Paper], Paper]
DRIFTS: dict[str, tuple[Drift, str]] = {
    # name: (how each paper is written, the line the failed run must print)
    "source_abstract_swapped": (
        lambda p: Paper(p.title, p.abstract or "", p.source),
        "layout_drift: share_long_source 1.00 > 0.20: source lines too long",
    ),
    "title_source_swapped": (
        lambda p: Paper(p.source, p.title, p.abstract),
        "layout_drift: share_title_like_source 1.00 > 0.20: titles look like source lines",
    ),
    "abstracts_missing": (
        lambda p: Paper(p.title, p.source, None),
        "layout_drift: share_no_abstract 1.00 > 0.30: abstracts missing",
    ),
}


def real_pages(out: Path, pages: int = 60, drift: Drift | None = None) -> Path:
    """`pages` author pages of the real records: the first author of each record in turn
    (each author once), listing every record that names them; written as in seeds/."""
    # Never skipped: the drift corpora must be real pages. CI and every clone next to
    # ../shared/ have the records; elsewhere these tests fail and say where they looked.
    assert REALDATA.is_file(), f"the real-data records are not at {REALDATA} (../shared/)"
    records = json.loads(REALDATA.read_text(encoding="utf-8"))
    vocab = load_vocabulary(REALDATA)
    papers = [
        Paper(vocab.titles[i], vocab.sources[i], vocab.abstracts[i]) for i in range(len(records))
    ]
    listed: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        for name in record["authors"]:
            listed.setdefault(name, []).append(i)
    out.mkdir(parents=True)
    chosen: list[str] = []
    for record in records:
        name = record["authors"][0]
        if name not in chosen:
            chosen.append(name)
        if len(chosen) == pages:
            break
    for number, name in enumerate(chosen):
        parts = unicodedata.normalize("NFC", name).split()
        line = f"{parts[-1]}, {' '.join(parts[:-1])}" if len(parts) > 1 else name
        blocks = [paper_block(drift(papers[i]) if drift else papers[i]) for i in listed[name]]
        (out / f"{number:03d}_real.txt").write_bytes(render_page(line, blocks))
    return out


def drift_results(report: ValidationReport) -> dict[str, str]:
    """The layout_drift suite's status per statistic."""
    return {str(r.column): r.status for r in report.results if r.suite == "layout_drift"}


def published_state(warehouse: Path) -> tuple[str | None, bytes | None]:
    """The current version's name and the DuckDB file's bytes (None when absent)."""
    current = current_version(warehouse)
    db = warehouse / "authorgraph.duckdb"
    return (current.name if current else None, db.read_bytes() if db.exists() else None)


def test_real_pages_pass_and_a_drifted_layout_leaves_the_warehouse_unchanged(
    tmp_path: Path, settings_for: Callable[..., Settings]
) -> None:
    seeds = real_pages(tmp_path / "pages")
    settings = settings_for(seeds)
    outcome = stages.run_sequence(settings)
    report = outcome.report
    assert report.success and not report.warnings
    stats = report.page_stats
    assert stats is not None and set(stats) == set(STATS_SCHEMA)
    assert stats["pages"] == 60 and stats["papers"] >= 60  # judged: at least min_papers (50)
    assert stats["share_no_abstract"] == 0 and stats["share_title_like_source"] == 0
    declared = json.loads(Path("expectations/suites/layout_drift.json").read_text())
    statuses = drift_results(report)
    assert len(statuses) == len(declared["expectations"])
    assert set(statuses.values()) == {"passed"}
    # Every declared expectation has a result, JSON-able, counted as before.
    assert len(report.results) == report.evaluated
    json.dumps([r.to_dict() for r in report.results])
    assert {r.status for r in report.results} == {"passed"}
    drift = next(r for r in report.results if r.column == "share_no_abstract")
    assert drift.to_dict()["observed"]["value"] == 0.0

    # The same pages with source and abstract swapped: the run stops, nothing is published.
    before = published_state(settings.warehouse)
    shutil.rmtree(seeds)
    real_pages(seeds, drift=DRIFTS["source_abstract_swapped"][0])
    with pytest.raises(ValidationFailed) as failed:
        stages.run_sequence(settings)
    lines = failed.value.report.failure_lines()
    assert any(line.startswith(DRIFTS["source_abstract_swapped"][1]) for line in lines), lines
    assert all(line.startswith("layout_drift: ") for line in lines), lines  # tables are valid
    assert published_state(settings.warehouse) == before
    logged = read_run_log(settings.warehouse)
    assert logged["status"].to_list() == ["validation_failed"]


@pytest.mark.parametrize("name", ["title_source_swapped", "abstracts_missing"])
def test_a_drifted_layout_fails_in_process(
    tmp_path: Path, settings_for: Callable[..., Settings], name: str
) -> None:
    drift, line = DRIFTS[name]
    settings = settings_for(real_pages(tmp_path / "pages", drift=drift))
    with pytest.raises(ValidationFailed) as failed:
        stages.run_sequence(settings)
    assert any(f.startswith(line) for f in failed.value.report.failure_lines())
    assert published_state(settings.warehouse) == (None, None)
    assert not any((settings.warehouse / "staging").glob("*/version"))


def test_a_drifted_layout_fails_the_cli(tmp_path: Path, cli_env: dict[str, str]) -> None:  # noqa: F811
    drift, line = DRIFTS["abstracts_missing"]
    seeds = real_pages(tmp_path / "pages", drift=drift)
    warehouse = tmp_path / "warehouse"
    code, _out, err = run_cli(seeds, warehouse, cli_env)
    assert code == 1, err
    assert f"FAILED {line}: has the page layout changed?" in err
    assert "nothing was published" in err
    assert published_state(warehouse) == (None, None)


def test_seeds_generated_and_edge_corpora_pass(
    tmp_path: Path, settings_for: Callable[..., Settings]
) -> None:
    generate(40, tmp_path / "generated", seed=3)
    edge = tmp_path / "edge"
    shutil.copytree(FIXTURES / "edge", edge)
    for number, folder in enumerate([SEEDS, tmp_path / "generated" / "pages", edge]):
        settings = Settings(seeds=folder, warehouse=tmp_path / f"wh{number}")
        report = stages.run_sequence(settings).report
        assert report.success, (folder, report.failure_lines())
        assert set(drift_results(report)) == {
            c for c in STATS_SCHEMA if c not in ("pages", "listings", "papers")
        }
        if folder != edge:  # the edge pages are few and odd: they may warn
            assert not report.warnings, (folder, report.warnings)


def test_a_small_drifted_run_warns_and_records_it(
    tmp_path: Path, settings_for: Callable[..., Settings]
) -> None:
    drift, line = DRIFTS["abstracts_missing"]
    settings = settings_for(real_pages(tmp_path / "pages", pages=8, drift=drift))
    outcome = stages.run_sequence(settings)
    assert outcome.report.success
    assert outcome.report.page_stats is not None and outcome.report.page_stats["papers"] < 50
    warned = [w for w in outcome.warnings if w.startswith(line)]
    assert len(warned) == 1 and "judged from 50" in warned[0], outcome.warnings
    assert drift_results(outcome.report)["share_no_abstract"] == "warning"
    con = duckdb.connect(str(settings.warehouse / "authorgraph.duckdb"), read_only=True)
    try:
        recorded = con.execute("SELECT warnings FROM runs").fetchall()
    finally:
        con.close()
    assert recorded == [("\n".join(outcome.warnings),)]
    assert read_state(settings.warehouse).runs["warnings"].to_list() == [recorded[0][0]]
    # `authorgraph validate` judges the published version's page statistics the same way.
    result = CliRunner().invoke(app, ["validate", "--warehouse", str(settings.warehouse)])
    assert result.exit_code == 0, result.output
    assert "validation: passed (74 expectations)" in result.output
    assert f"authorgraph: warning: {warned[0]}" in result.output


def stats_row(**values: float) -> pl.DataFrame:
    """A page-statistics row of a normal run of 100 papers, with `values` changed."""
    row: dict[str, float] = {c: 0.0 for c in STATS_SCHEMA}
    row.update(pages=20, listings=150, papers=100, mean_papers_per_page=7.5)
    row.update(p99_papers_per_page=20, max_papers_per_page=25)
    row.update(values)
    return pl.DataFrame([row]).cast(STATS_SCHEMA)  # type: ignore[arg-type]  # polars types cast() narrower than a schema


def test_severity_and_min_papers(tmp_path: Path, seeds_warehouse: Path) -> None:
    version = current_version(seeds_warehouse)
    assert version is not None
    tables = {t.name: version / PARQUET_DIR / f"{t.name}.parquet" for t in CORE_TABLES}

    def judge(**values: float) -> ValidationReport:
        return validate_tables(tables, tmp_path / "docs", page_stats=stats_row(**values))

    # A `severity: warning` expectation warns: the report passes and says why.
    report = judge(share_empty_pages=0.9)
    assert report.success
    assert report.warnings == [
        "layout_drift: share_empty_pages 0.90 > 0.20: many pages list no papers: "
        "are papers still where the parser looks?"
    ]
    assert drift_results(report)["share_empty_pages"] == "warning"
    # An error-severity one fails on a run of at least 50 papers...
    report = judge(share_sentence_source=0.5)
    assert report.failure_lines() == [
        "layout_drift: share_sentence_source 0.50 > 0.20: source lines read like sentences: "
        "are source and abstract swapped?"
    ]
    assert drift_results(report)["share_sentence_source"] == "failed"
    # ... and only warns below that.
    report = judge(share_sentence_source=0.5, papers=49)
    assert report.success and len(report.warnings) == 1
    assert report.warnings[0].endswith("(only 49 papers, judged from 50: a warning)")


def test_a_warehouse_without_the_warnings_column_still_loads(
    tmp_path: Path, seeds_warehouse: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    shutil.copytree(seeds_warehouse, warehouse, symlinks=True)
    version = current_version(warehouse)
    assert version is not None
    # As the previous code wrote them: no `warnings` in the runs state, the DuckDB file or the log.
    runs_file = version / STATE_DIR / "runs.parquet"
    old = pq.read_table(runs_file).drop_columns(["warnings"])
    runs_file.unlink()  # a hard link may be shared with another version
    pq.write_table(old, runs_file)
    row = old.to_pylist()[0]
    row.update(run_id="00000000T000000000000Z-000000", status="validation_failed")
    with (warehouse / RUN_LOG).open("a", encoding="utf-8") as log:
        log.write(json.dumps(row, default=str) + "\n")
    state = read_state(warehouse)
    assert state.runs["warnings"].to_list() == [None]
    assert read_run_log(warehouse)["warnings"].to_list() == [None]
    # The history read back from the DuckDB file (when the state is unreadable) too.
    db = warehouse / "authorgraph.duckdb"
    db_copy = tmp_path / "old.duckdb"
    shutil.copy(db, db_copy)
    con = duckdb.connect(str(db_copy))
    con.execute("ALTER TABLE runs DROP COLUMN warnings")
    con.close()
    db.unlink()
    shutil.copy(db_copy, db)
    runs_file.write_bytes(b"not parquet")
    assert read_state(warehouse).runs["warnings"].to_list() == [None]
    # A new run over it publishes, with the column.
    settings = Settings(seeds=SEEDS, warehouse=warehouse)
    stages.run_sequence(settings)
    con = duckdb.connect(str(db), read_only=True)
    try:
        runs = con.execute("SELECT status, warnings FROM runs ORDER BY run_id").fetchall()
    finally:
        con.close()
    assert [r[0] for r in runs] == ["validation_failed", "published", "published"]
