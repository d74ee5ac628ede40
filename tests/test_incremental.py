"""Incremental runs: cache reuse, changes, deletions, full refresh, idempotence, quarantine.

These run the stages in-process (no Prefect) against real warehouse folders and DuckDB files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from authorgraph.pipelines import stages
from authorgraph.pipelines.config import Settings
from authorgraph.pipelines.load.publish import read_published_tables
from authorgraph.pipelines.load.state import read_state
from authorgraph.transforms.schema import ALL_TABLES
from tests.conftest import FIXTURES, PublishSeeds, run_stages

DATA_TABLES = ("authors", "papers", "authorship", "rejected_files")


def published(settings: Settings) -> dict[str, pl.DataFrame]:
    tables = read_published_tables(settings.warehouse)
    return {name: pl.DataFrame(tables[name]) for name in DATA_TABLES}


def query_bytes(settings: Settings) -> bytes:
    """Every data table, as the exact rows a SQL reader gets, serialized."""
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        out = []
        for name in DATA_TABLES:
            out.append(repr(con.execute(f"select * from {name} order by all").fetchall()))
        return "\n".join(out).encode()
    finally:
        con.close()


def last_run(settings: Settings) -> dict[str, Any]:  # the runs row, as DuckDB returns it
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        cursor = con.execute("select * from runs order by run_id desc limit 1")
        names = [d[0] for d in cursor.description]
        row = cursor.fetchone()
        assert row is not None
        return dict(zip(names, row, strict=True))
    finally:
        con.close()


@pytest.fixture
def settings(seeds_copy: Path, tmp_path: Path) -> Settings:
    return Settings(seeds=seeds_copy, warehouse=tmp_path / "wh", workers=1)


def test_second_run_reuses_everything_and_changes_nothing(settings: Settings) -> None:
    first = run_stages(settings)
    before_tables, before_bytes = published(settings), query_bytes(settings)
    assert (first.files_parsed, first.files_reused) == (5, 0)
    second = run_stages(settings)
    assert (second.files_parsed, second.files_reused) == (0, 5)
    for name, frame in published(settings).items():
        assert_frame_equal(frame, before_tables[name])
    assert query_bytes(settings) == before_bytes
    run = last_run(settings)
    assert (run["files_read"], run["files_parsed"], run["files_reused"]) == (5, 0, 5)
    # Nothing changed: validation carried over and the published version re-staged cheaply.
    assert run["validation_success"] is True and run["status"] == "unchanged"
    assert run["expectations_evaluated"] >= 50


def test_changed_file_replaces_its_contributions(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    page = settings.seeds / "002_928ee7f537c5860a.txt"
    text = page.read_text(encoding="utf-8")
    # Drop its last paper (only listed on this page and 003) and add a new one.
    blocks = text.split("\n\n\n")
    page.write_text("\n\n\n".join([*blocks[:-1], "Brand New Paper\n\nNature"]), encoding="utf-8")
    out = run_stages(settings)
    assert (out.files_parsed, out.files_reused) == (1, 4)
    tables = published(settings)
    titles = set(tables["papers"]["title"])
    assert "Brand New Paper" in titles
    assert not any(t.startswith("Data-Efficient Learning via Clustering") for t in titles)
    assert tables["papers"].height == 25  # one removed, one added
    jerome = tables["authors"].filter(pl.col("display_name") == "Sammy Jerome")["author_id"][0]
    assert tables["authorship"].filter(pl.col("author_id") == jerome).height == 3


def test_new_bytes_with_the_same_rows_carry_the_published_tables_over(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    """A page whose bytes changed but not its data (trailing whitespace here; in the wild, a
    site-wide change to the pages' header) is parsed again and gives the rows already
    published: the tables carry over as in an unchanged run, and the cache keeps the page's
    rows under its new hash, so the next run reuses them."""
    publish_seeds(settings)
    before, first = query_bytes(settings), (settings.warehouse / "current").resolve()
    page = settings.seeds / "002_928ee7f537c5860a.txt"
    with page.open("ab") as handle:
        handle.write(b"\n \n")
    out = run_stages(settings)
    assert (out.files_parsed, out.files_reused, out.unchanged) == (1, 4, True)
    run = last_run(settings)
    assert (run["status"], run["files_parsed"], run["validation_success"]) == ("unchanged", 1, True)
    assert query_bytes(settings) == before
    second = (settings.warehouse / "current").resolve()
    assert (first / "parquet" / "papers.parquet").stat().st_ino == (
        second / "parquet" / "papers.parquet"
    ).stat().st_ino  # hard-linked, not rebuilt
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        sha = con.execute("select sha256 from manifest where file_name = ?", [page.name])
        assert sha.fetchall() == [(hashlib.sha256(page.read_bytes()).hexdigest(),)]
    finally:
        con.close()
    again = run_stages(settings)
    assert (again.files_parsed, again.files_reused) == (0, 5)
    run_stages(dataclasses.replace(settings, full_refresh=True))
    assert query_bytes(settings) == before


def test_pages_without_rows_touched_or_gone_carry_over_and_a_lost_page_rebuilds(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    """Rows decide, per page: a new rejected page, then its deletion, change no table; a
    loaded page that breaks takes its rows with it."""
    publish_seeds(settings)
    bad = settings.seeds / "006_bad.txt"
    shutil.copy(FIXTURES / "bad" / "incomplete_paper.txt", bad)
    statuses = []
    for change in (
        lambda: None,
        bad.unlink,
        lambda: (settings.seeds / "002_928ee7f537c5860a.txt").write_bytes(b"Goto\n"),
    ):
        change()
        run_stages(settings)
        run = last_run(settings)
        statuses.append(run["status"])
        rejected = set(published(settings)["rejected_files"]["file_name"])
        assert rejected == ({bad.name} if bad.exists() else set()) | (
            {"002_928ee7f537c5860a.txt"} if run["status"] == "published" else set()
        )
    assert statuses == ["unchanged", "unchanged", "published"]
    assert "Sammy Jerome" not in set(published(settings)["authors"]["display_name"])


def test_deleted_file_contributions_disappear(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    (settings.seeds / "002_928ee7f537c5860a.txt").unlink()
    out = run_stages(settings)
    assert out.files_deleted == 1
    tables = published(settings)
    assert "Sammy Jerome" not in set(tables["authors"]["display_name"])
    assert tables["authors"].height == 4
    assert tables["authorship"].height == 30
    # Papers only on the deleted page are gone; shared ones stay.
    assert "Gemma 3 Technical Report" in set(tables["papers"]["title"])
    assert not any(t.startswith("Data-Efficient Learning") for t in tables["papers"]["title"])
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        status = con.execute(
            "select status from manifest where file_name = ?", ["002_928ee7f537c5860a.txt"]
        ).fetchone()
    finally:
        con.close()
    assert status == ("deleted",)


def test_full_refresh_equals_incremental(settings: Settings, publish_seeds: PublishSeeds) -> None:
    publish_seeds(settings)
    (settings.seeds / "004_c8458a22db8174c8.txt").unlink()
    shutil.copy(FIXTURES / "edge" / "wrapped_fields.txt", settings.seeds / "005_wrapped.txt")
    shutil.copy(FIXTURES / "bad" / "incomplete_paper.txt", settings.seeds / "006_bad.txt")
    incremental = run_stages(settings)
    assert incremental.files_parsed == 2
    inc_tables, inc_bytes = published(settings), query_bytes(settings)
    full = run_stages(Settings(**{**settings.__dict__, "full_refresh": True}))
    assert (full.files_parsed, full.files_reused) == (6, 0)
    for name, frame in published(settings).items():
        assert_frame_equal(frame, inc_tables[name])
    assert query_bytes(settings) == inc_bytes
    assert last_run(settings)["full_refresh"] is True


def test_listing_order_does_not_matter(settings: Settings) -> None:
    extracted = stages.extract(settings)
    forward = stages.transform(extracted, settings, "r1")
    extracted.plan = extracted.plan.reverse()
    extracted.to_read.reverse()
    backward = stages.transform(extracted, settings, "r1")
    for name in DATA_TABLES:
        assert_frame_equal(forward.tables[name], backward.tables[name])


def test_same_size_and_mtime_is_trusted_unless_full_hash(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    page = settings.seeds / "000_38a999d25114c30e.txt"
    stat = page.stat()
    data = page.read_bytes().replace(b"Gemma 3 Technical Report", b"Gemma 3 Technical Rep0rt")
    page.write_bytes(data)
    os.utime(page, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run_stages(settings).files_parsed == 0  # like rsync: size + mtime unchanged
    out = run_stages(Settings(**{**settings.__dict__, "full_hash": True}))
    assert out.files_parsed == 1
    assert "Gemma 3 Technical Rep0rt" in set(published(settings)["papers"]["title"])


def test_touched_but_unchanged_file_is_hashed_not_parsed(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    page = settings.seeds / "003_946b4e9e47dcb52c.txt"
    os.utime(page, ns=(page.stat().st_atime_ns, page.stat().st_mtime_ns + 10**9))
    out = run_stages(settings)
    assert (out.files_parsed, out.files_reused) == (0, 5)


def test_the_plan_is_a_row_per_file_and_objects_only_for_the_files_to_read(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    """Each way a file is planned, in one listing: trusted by size and mtime, hashed and
    reused, hashed and changed, changed in size, new; and every file hashed under full_hash."""
    publish_seeds(settings)
    pages = sorted(settings.seeds.iterdir())
    touched, edited, grown = pages[1], pages[2], pages[3]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    data = edited.read_bytes()
    edited.write_bytes(data[:-1] + (b"?" if data.endswith(b"!") else b"!"))  # the same size
    grown.write_bytes(grown.read_bytes() + b"\n")
    (settings.seeds / "zz_new.txt").write_bytes(pages[0].read_bytes())
    published_hashes = dict(
        read_state(settings.warehouse).manifest.select("file_name", "sha256").iter_rows()
    )

    def sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    for full_hash in (False, True):
        extracted = stages.extract(dataclasses.replace(settings, full_hash=full_hash))
        plan = {row["file_name"]: row for row in extracted.plan.iter_rows(named=True)}
        names = [p.name for p in sorted(settings.seeds.iterdir())]
        assert list(plan) == names  # listing order, every file once
        assert all(plan[n]["size"] == (settings.seeds / n).stat().st_size for n in names)
        reused = {n for n in names if plan[n]["reuse"]}
        assert reused == {pages[0].name, touched.name, pages[4].name}
        for name in reused:
            assert plan[name]["sha256"] == published_hashes[name] == sha(settings.seeds / name)
        to_read = {f.ref.name: f.sha256 for f in extracted.to_read}
        assert list(to_read) == [n for n in names if n not in reused]
        assert to_read[edited.name] == sha(edited)  # same size: hashed when planned
        hashed = {grown.name: sha(grown), "zz_new.txt": sha(settings.seeds / "zz_new.txt")}
        for name, digest in hashed.items():  # a new size or a new file: hashed when read
            assert to_read[name] == (digest if full_hash else None)
        assert {n: plan[n]["sha256"] for n in to_read} == to_read


def test_rejected_file_stays_quarantined_until_fixed(settings: Settings) -> None:
    bad = settings.seeds / "bad page.txt"
    shutil.copy(FIXTURES / "bad" / "incomplete_paper.txt", bad)
    run_stages(settings)
    quarantined = settings.quarantine_dir / "bad page.txt"
    assert quarantined.read_bytes() == bad.read_bytes()
    again = run_stages(settings)  # unchanged: reused, still rejected, still quarantined
    assert again.files_reused == 6 and again.files_rejected == 1
    assert quarantined.exists()
    assert published(settings)["rejected_files"]["reason_code"].to_list() == ["INCOMPLETE_PAPER"]
    bad.write_bytes(bad.read_bytes() + b"\n\nNow It Has A Source")
    fixed = run_stages(settings)
    assert fixed.files_rejected == 0
    assert not quarantined.exists()
    assert published(settings)["rejected_files"].height == 0
    assert "Trunc Tina" not in set(published(settings)["authors"]["display_name"])
    assert "Tina Trunc" in set(published(settings)["authors"]["display_name"])


def test_failed_run_is_recorded_in_runs(
    settings: Settings, publish_seeds: PublishSeeds, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    publish_seeds(settings)
    run_id, started = stages.new_run_id(), datetime.now(UTC)
    # A full refresh: with unchanged inputs the run would carry the published tables over.
    refresh = dataclasses.replace(settings, full_refresh=True)
    transformed = stages.transform(stages.extract(refresh), refresh, run_id)
    transformed.replace_table(
        "papers", transformed.tables["papers"].with_columns(title=pl.lit(" x"))
    )
    report = stages.validate(transformed, refresh)
    assert not report.success
    stages.record_failed_run(
        settings, stages.run_record(run_id, started, transformed, report, settings)
    )
    run_stages(settings)
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        rows = con.execute("select run_id, status, validation_success from runs").fetchall()
    finally:
        con.close()
    assert (run_id, "validation_failed", False) in rows
    assert sorted(r[1] for r in rows) == ["published", "unchanged", "validation_failed"]


def test_leftovers_and_stale_wal_are_cleaned(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    junk = settings.staging_dir / "20200101T000000Z-dead"
    (junk / "version").mkdir(parents=True)
    (junk / "authorgraph.duckdb").write_bytes(b"half written")
    settings.duckdb_path.with_name("authorgraph.duckdb.wal").write_bytes(b"not a wal")
    run_stages(settings)
    assert not junk.exists()
    assert not settings.duckdb_path.with_name("authorgraph.duckdb.wal").exists()
    assert published(settings)["papers"].height == 25
    versions = sorted((settings.warehouse / "versions").iterdir())
    assert len(versions) == 2  # the current one and the one before it


def test_unchanged_run_still_refreshes_manifest_and_keeps_files_shared(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    first_version = (settings.warehouse / "current").resolve()
    run_stages(settings)
    second_version = (settings.warehouse / "current").resolve()
    assert first_version != second_version
    big = "papers.parquet"
    assert (first_version / "parquet" / big).stat().st_ino == (
        second_version / "parquet" / big
    ).stat().st_ino  # hard-linked, not rewritten
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        seen = con.execute("select count(distinct last_seen) from manifest").fetchone()
        runs = con.execute("select count(*) from runs").fetchone()
        papers = con.execute("select count(*) from papers").fetchone()
    finally:
        con.close()
    assert (seen, runs, papers) == ((1,), (2,), (25,))


def test_every_table_is_published_in_duckdb_and_manifest_tracks_files(
    settings: Settings, publish_seeds: PublishSeeds
) -> None:
    publish_seeds(settings)
    tables = read_published_tables(settings.warehouse)
    assert set(tables) == {t.name for t in ALL_TABLES}
    manifest = pl.DataFrame(tables["manifest"])
    assert manifest.height == 5
    assert set(manifest["status"]) == {"loaded"}
    assert manifest["sha256"].str.len_chars().to_list() == [64] * 5


def test_database_and_state_from_different_runs_are_rebuilt_not_trusted(
    settings: Settings, publish_seeds: PublishSeeds, tmp_path: Path
) -> None:
    publish_seeds(settings)
    old_db = tmp_path / "old.duckdb"
    shutil.copyfile(settings.duckdb_path, old_db)
    (settings.seeds / "002_928ee7f537c5860a.txt").unlink()
    run_stages(settings)
    os.replace(old_db, settings.duckdb_path)  # as if a publish died between its two renames
    out = run_stages(settings)
    assert last_run(settings)["status"] == "published"  # rebuilt, not carried over
    assert out.files_deleted == 0
    assert published(settings)["authors"].height == 4
