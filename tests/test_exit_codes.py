"""The exit code tells the truth: each way a warehouse can't be used is one line and a
documented code, through the real CLI, with real permissions, mounts and processes.

These machines run as root, which can write anything: the CLI runs under `setpriv` without
the capabilities that bypass file permissions, so a read-only folder really is read-only.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from authorgraph.pipelines.cli.commands import (
    EXIT_NO_SPACE,
    EXIT_USAGE,
    EXIT_VALIDATION,
    EXIT_WAREHOUSE,
)
from authorgraph.pipelines.config import Settings
from tests.conftest import ROOT, PublishSeeds, run_stages
from tests.test_concurrency import add_page, cli_env  # noqa: F401 (a fixture)

NO_DAC = [
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
]


def authorgraph(
    *args: str, env: dict[str, str] | None = None, wrap: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [*(wrap or []), sys.executable, "-m", "authorgraph.pipelines", *args]
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AUTHORGRAPH_") or k == "AUTHORGRAPH_SERVER_DIR"
    }
    return subprocess.run(
        command, cwd=ROOT, env=env or base, capture_output=True, text=True, timeout=300
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """Exit `code`, one `authorgraph:` line on stderr naming the problem, no traceback."""
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("authorgraph: "), result.stderr
    for needle in needles:
        assert needle in lines[0]


def fingerprint(warehouse: Path) -> dict[str, str]:
    """Hashes of the published DuckDB file and Parquet tables."""
    files = [warehouse / "authorgraph.duckdb", *sorted((warehouse / "parquet").glob("*"))]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def published(seeds_copy: Path, tmp_path: Path, publish_seeds: PublishSeeds) -> Settings:
    """A warehouse published from a copy of seeds/ (a copy of the session's: no Prefect, no
    validation to wait for)."""
    settings = Settings(seeds=seeds_copy, warehouse=tmp_path / "wh")
    publish_seeds(settings)
    return settings


def test_missing_seeds_folder_is_reported_at_once_and_creates_nothing(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    result = authorgraph("run", "--seeds", str(tmp_path / "nope"), "--warehouse", str(warehouse))
    one_line_error(result, EXIT_USAGE, "seeds folder not found")
    assert not warehouse.exists()


def test_warehouse_path_that_is_a_file(seeds_copy: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    warehouse.write_text("not a folder")
    result = authorgraph("run", "--seeds", str(seeds_copy), "--warehouse", str(warehouse))
    one_line_error(result, EXIT_WAREHOUSE, "is a file")
    assert warehouse.read_text() == "not a folder"


def test_read_only_warehouse(published: Settings) -> None:
    before = fingerprint(published.warehouse)
    published.warehouse.chmod(0o555)
    try:
        args = ("run", "--seeds", str(published.seeds), "--warehouse", str(published.warehouse))
        result = authorgraph(*args, wrap=NO_DAC)
    finally:
        published.warehouse.chmod(0o755)
    one_line_error(result, EXIT_WAREHOUSE, "read-only")
    assert fingerprint(published.warehouse) == before


def test_lock_owned_by_another_user(published: Settings) -> None:
    lock = published.warehouse / ".lock"
    lock.touch()
    os.chown(lock, 1000, 1000)
    lock.chmod(0o644)
    args = ("run", "--seeds", str(published.seeds), "--warehouse", str(published.warehouse))
    result = authorgraph(*args, wrap=NO_DAC)
    one_line_error(result, EXIT_WAREHOUSE, "writer lock", "owned by uid 1000")


def test_validate_on_a_read_only_warehouse(published: Settings) -> None:
    for path in [published.warehouse, *published.warehouse.rglob("*")]:
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    try:
        result = authorgraph("validate", "--warehouse", str(published.warehouse), wrap=NO_DAC)
    finally:
        for path in [published.warehouse, *published.warehouse.rglob("*")]:
            if not path.is_symlink():
                path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o200)
    one_line_error(result, EXIT_WAREHOUSE, "Data Docs")


def test_validate_on_a_damaged_warehouse(published: Settings) -> None:
    """`validate` reads the published Parquet files: a damaged one is one line, exit 5."""
    papers = (published.warehouse / "current" / "parquet" / "papers.parquet").resolve()
    with open(papers, "r+b") as handle:  # overwrite the header, the data and the footer
        handle.write(os.urandom(papers.stat().st_size))
    result = authorgraph("validate", "--warehouse", str(published.warehouse))
    one_line_error(result, EXIT_WAREHOUSE, "cannot read", "papers.parquet")


def test_validate_judges_the_published_parquet_files(published: Settings) -> None:
    """A bad value written into the current version's Parquet file (not the DuckDB file) fails
    `validate` with exit 1 and names the expectation."""
    papers = (published.warehouse / "current" / "parquet" / "papers.parquet").resolve()
    table = pq.read_table(papers)
    titles = table.column("title").to_pylist()
    bad = table.set_column(
        table.schema.get_field_index("title"), "title", pa.array([" x", *titles[1:]])
    )
    pq.write_table(bad, papers)
    result = authorgraph("validate", "--warehouse", str(published.warehouse))
    assert result.returncode == EXIT_VALIDATION, (result.stdout, result.stderr)
    assert "FAILED papers: expect_column_values_to_not_match_regex_list(title)" in result.stderr


def test_full_disk_while_staging_leaves_the_published_warehouse_unchanged(
    published: Settings,
    cli_env: dict[str, str],  # noqa: F811
) -> None:
    add_page(published.seeds)  # a real change, so the run stages new files
    staging = published.warehouse / ".staging"
    staging.mkdir(exist_ok=True)
    before = fingerprint(published.warehouse)
    # A private mount namespace with a 64 KiB filesystem where the run stages its files.
    script = 'mount -t tmpfs -o size=64k tmpfs "$1" && shift && exec "$@"'
    wrap = ["unshare", "--mount", "sh", "-c", script, "sh", str(staging)]
    args = ("run", "--seeds", str(published.seeds), "--warehouse", str(published.warehouse))
    result = authorgraph(*args, env=cli_env, wrap=wrap)
    one_line_error(result, EXIT_NO_SPACE, "no space left", "published warehouse is unchanged")
    assert fingerprint(published.warehouse) == before
    # Space again: the next run (in-process: the CLI's part was the error) publishes the change.
    run_stages(published)
    assert fingerprint(published.warehouse) != before


def test_steps_after_publishing_warn_and_a_retried_load_succeeds(
    published: Settings,
    cli_env: dict[str, str],  # noqa: F811
) -> None:
    (published.seeds / "empty.txt").write_bytes(b"")  # rejected: to be copied to quarantine/
    add_page(published.seeds)  # new rows: the run builds and publishes
    quarantine = published.quarantine_dir
    quarantine.mkdir(exist_ok=True)
    quarantine.chmod(0o555)  # the copy after publishing fails
    env = {**cli_env, "AUTHORGRAPH_FAULT": "publish:version_moved=fail-once"}
    args = ("run", "--seeds", str(published.seeds), "--warehouse", str(published.warehouse))
    try:
        result = authorgraph(*args, env=env, wrap=NO_DAC)
    finally:
        quarantine.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "quarantine" in warnings[0]
    con = duckdb.connect(str(published.duckdb_path), read_only=True)
    try:
        status = con.execute("select status from runs order by run_id desc limit 1").fetchone()
        files = con.execute("select count(*) from rejected_files").fetchone()
    finally:
        con.close()
    assert status == ("published",) and files == (1,)
    # The retried load left no half-published version behind.
    versions = sorted(p.name for p in (published.warehouse / "versions").iterdir())
    assert (published.warehouse / "current").resolve().name == versions[-1]
