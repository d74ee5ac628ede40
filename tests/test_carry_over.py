"""No stale cache, no silent loss: what a run carries forward is keyed on everything that
shapes it, checked cheaply, and the history survives a lost `current` link.

In-process stages (no Prefect) against real warehouse folders and DuckDB files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from authorgraph.pipelines import stages
from authorgraph.pipelines.config import Settings
from authorgraph.pipelines.extract import fingerprint
from authorgraph.pipelines.extract.fingerprint import (
    OUTPUT_SOURCES,
    PARSE_SOURCES,
    BuildKeys,
    software_version,
)
from authorgraph.pipelines.load.errors import WarehouseDamaged
from authorgraph.pipelines.load.publish import check_outputs
from authorgraph.pipelines.load.safe_io import UnsafePathError
from authorgraph.pipelines.load.state import read_state
from tests.conftest import ROOT, PublishSeeds, run_stages
from tests.test_concurrency import add_page


def runs(settings: Settings) -> list[tuple[str, str]]:
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        return con.execute("select run_id, status from runs order by run_id").fetchall()
    finally:
        con.close()


def count(settings: Settings, table: str) -> int:
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        row = con.execute(f"select count(*) from {table}").fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


@pytest.fixture
def settings(seeds_copy: Path, tmp_path: Path) -> Settings:
    return Settings(seeds=seeds_copy, warehouse=tmp_path / "wh", workers=1)


def test_keys_cover_code_suites_views_and_settings() -> None:
    def matched(patterns: tuple[str, ...]) -> set[str]:
        return {p.relative_to(ROOT).as_posix() for pat in patterns for p in ROOT.glob(pat)}

    parse, output = matched(PARSE_SOURCES), matched(OUTPUT_SOURCES)
    assert {"transforms/parse.py", "transforms/normalize.py", "pipelines/extract/seeds.py"} <= parse
    assert "expectations/suites/papers.json" in output
    assert any(name.startswith("warehouse/sql/") for name in output)
    assert {"pipelines/load/publish.py", "pipelines/transform/build.py"} <= output
    assert parse <= output
    assert fingerprint.build_keys(100) != fingerprint.build_keys(200)
    version = software_version()
    assert "+" in version and len(version.split("+")[1]) == 12


def test_a_new_parser_reaches_unchanged_files(
    settings: Settings, publish_seeds: PublishSeeds, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_seeds(settings)
    assert run_stages(settings).files_parsed == 0
    keys = fingerprint.build_keys(settings.max_file_bytes)
    # As after a parser fix: the code's hash, hence the parse key, changes.
    monkeypatch.setattr(
        stages, "build_keys", lambda _: BuildKeys("another parser", keys.output_key)
    )
    out = run_stages(settings)
    assert (out.files_parsed, out.files_reused) == (5, 0)
    assert runs(settings)[-1][1] == "published"


def test_new_suites_or_views_are_never_an_unchanged_run(
    settings: Settings, publish_seeds: PublishSeeds, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_seeds(settings)
    keys = fingerprint.build_keys(settings.max_file_bytes)
    monkeypatch.setattr(stages, "build_keys", lambda _: BuildKeys(keys.parse_key, "new suites"))
    out = run_stages(settings)
    assert out.files_parsed == 0  # the parse cache is still good
    assert runs(settings)[-1][1] == "published"  # but validated and rebuilt, not carried


def test_a_corrupted_duckdb_block_is_not_carried_forward(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    size = settings.duckdb_path.stat().st_size
    with open(settings.duckdb_path, "r+b") as handle:
        handle.seek(size // 2)
        handle.write(os.urandom(4096))
    assert "authorgraph.duckdb changed" in str(check_outputs(settings.warehouse))
    out = run_stages(settings)
    assert any("rebuilding" in w and "authorgraph.duckdb" in w for w in out.warnings)
    assert runs(settings)[-1][1] == "published"
    assert count(settings, "papers") == 25 and check_outputs(settings.warehouse) is None


def test_a_rewritten_parquet_table_is_not_carried_forward(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    papers = settings.warehouse / "parquet" / "papers.parquet"
    one_row = pq.read_table(papers).slice(0, 1)
    pq.write_table(one_row, papers)
    out = run_stages(settings)
    assert any("papers.parquet" in w for w in out.warnings)
    assert pq.read_table(settings.warehouse / "parquet" / "papers.parquet").num_rows == 25


def test_history_survives_a_deleted_current_link(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    first_seen = read_state(settings.warehouse).manifest["first_seen"].to_list()
    run_stages(settings)
    (settings.warehouse / "current").unlink()
    out = run_stages(settings)
    assert any("`current` link" in w for w in out.warnings)
    assert len(runs(settings)) == 3
    assert read_state(settings.warehouse).manifest["first_seen"].to_list() == first_seen
    assert out.files_reused == 5  # the restored version's cache was used


def test_history_survives_losing_every_version_folder(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    first_seen = read_state(settings.warehouse).manifest["first_seen"].to_list()
    (settings.warehouse / "current").unlink()
    shutil.rmtree(settings.warehouse / "versions")
    out = run_stages(settings)  # history read back from the DuckDB file
    assert (out.files_parsed, len(runs(settings))) == (5, 2)
    assert read_state(settings.warehouse).manifest["first_seen"].to_list() == first_seen


def test_unreadable_history_refuses_instead_of_starting_over(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    (settings.warehouse / "current").unlink()
    shutil.rmtree(settings.warehouse / "versions")
    settings.duckdb_path.write_bytes(b"not a database")
    with pytest.raises(WarehouseDamaged, match="run history"):
        run_stages(settings)


def _same_rows(seeds: Path) -> None:
    with (seeds / "002_928ee7f537c5860a.txt").open("ab") as page:
        page.write(b"\n")  # new bytes, the same rows: the published tables carry over


#: A change that builds new tables (a new page), and one whose rows are the published ones.
CHANGES = [add_page, _same_rows]


def validated_run(settings: Settings) -> tuple[str, stages.Transformed, dict[str, object]]:
    """A run up to its validation (call under the writer lock): what `load` is handed."""
    run_id, started = stages.new_run_id(), datetime.now(UTC)
    transformed = stages.transform(stages.extract(settings), settings, run_id)
    if transformed.unchanged:  # as run_sequence does
        report = stages.carried_over_report(transformed, settings)
    else:
        report = stages.validate(transformed, settings)
    return run_id, transformed, stages.run_record(run_id, started, transformed, report, settings)


@pytest.mark.parametrize("change", CHANGES, ids=["new_rows", "same_rows"])
def test_a_retried_load_after_the_commit_point_changes_nothing(
    settings: Settings, publish_seeds: PublishSeeds, change: Callable[[Path], None]
) -> None:
    publish_seeds(settings)
    (settings.seeds / "empty.txt").write_bytes(b"")
    change(settings.seeds)
    with stages.exclusive_run(settings):
        run_id, transformed, record = validated_run(settings)
        stages.load(transformed, settings, record)
        published = (settings.warehouse / "current").resolve()
        stages.load(transformed, settings, record)  # as Prefect's retry would
    assert (settings.warehouse / "current").resolve() == published
    assert published.name == run_id
    assert (settings.quarantine_dir / "empty.txt").exists()


@pytest.mark.parametrize("change", CHANGES, ids=["new_rows", "same_rows"])
def test_a_retried_load_before_the_commit_point_stages_afresh(
    settings: Settings, publish_seeds: PublishSeeds, change: Callable[[Path], None]
) -> None:
    publish_seeds(settings)
    (settings.seeds / "empty.txt").write_bytes(b"")
    change(settings.seeds)
    with stages.exclusive_run(settings):
        run_id, transformed, record = validated_run(settings)
        # A first attempt died after moving its version into place, before the swap.
        leftover = settings.warehouse / "versions" / run_id
        leftover.mkdir(parents=True)
        (leftover / "partial").write_text("half a version")
        (settings.staging_dir / run_id).mkdir(parents=True, exist_ok=True)
        stages.load(transformed, settings, record)
    assert (settings.warehouse / "current").resolve().name == run_id
    assert not (settings.warehouse / "versions" / run_id / "partial").exists()
    assert count(settings, "rejected_files") == 1


def test_a_planted_staging_link_deletes_nothing_through_it(
    settings: Settings, tmp_path: Path
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    settings.warehouse.mkdir()
    (settings.warehouse / ".staging").symlink_to(precious)
    run_stages(settings)
    assert (precious / "keep.txt").read_text() == "mine"


def test_the_state_records_the_keys_it_was_built_under(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    state = read_state(settings.warehouse)
    keys = fingerprint.build_keys(settings.max_file_bytes)
    assert state.build.height == 1
    assert (state.build_key("parse_key"), state.build_key("output_key")) == (
        keys.parse_key,
        keys.output_key,
    )


def test_planted_versions_and_parquet_links_are_refused_or_replaced(
    settings: Settings, publish_seeds: PublishSeeds, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    publish_seeds(settings)
    parquet = settings.warehouse / "parquet"
    parquet.unlink()
    parquet.symlink_to(elsewhere)  # readers of warehouse/parquet would read someone else's
    (settings.seeds / "empty.txt").write_bytes(b"")
    run_stages(settings)
    assert os.readlink(parquet) == "current/parquet" and (parquet / "papers.parquet").exists()
    versions = settings.warehouse / "versions"
    versions.rename(tmp_path / "moved")
    versions.symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match="versions"):
        run_stages(settings)
    assert list(elsewhere.iterdir()) == []
