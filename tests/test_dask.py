"""`--runner dask` on a real two-worker LocalCluster gives the local run's tables, row for row."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from authorgraph.pipelines.cli.commands import app
from tests.conftest import FIXTURES

pytestmark = pytest.mark.usefixtures("prefect_harness")
DATA_TABLES = ("authors", "papers", "authorship", "rejected_files")


@pytest.fixture
def dask_address(prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A LocalCluster of two worker processes that report to the session's Prefect server."""
    from distributed import LocalCluster
    from prefect.settings import PREFECT_API_URL

    # Workers inherit the environment: without this each would start its own Prefect server.
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        yield str(cluster.scheduler_address)


def table_rows(warehouse: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(warehouse / "authorgraph.duckdb"), read_only=True)
    try:
        return {t: con.execute(f"select * from {t} order by all").fetchall() for t in DATA_TABLES}
    finally:
        con.close()


@pytest.mark.waits(16)
def test_dask_run_equals_local_run_row_for_row(
    seeds_copy: Path, tmp_path: Path, dask_address: str
) -> None:
    shutil.copy(FIXTURES / "bad" / "missing_header.txt", seeds_copy / "zz_bad.txt")
    for n, page in enumerate(sorted((FIXTURES / "edge").iterdir())):
        shutil.copy(page, seeds_copy / f"edge_{n:02d}_{page.name}")
    runner = CliRunner()
    local, remote = tmp_path / "local", tmp_path / "dask"
    common = ["--seeds", str(seeds_copy), "--workers", "2"]  # two parse batches
    result = runner.invoke(app, ["run", *common, "--warehouse", str(local), "--runner", "threads"])
    assert result.exit_code == 0, result.output
    dask = ["--runner", "dask", "--dask-address", dask_address]
    result = runner.invoke(app, ["run", *common, "--warehouse", str(remote), *dask])
    assert result.exit_code == 0, result.output
    rows = table_rows(remote)
    assert all(rows[t] for t in ("authors", "papers", "authorship", "rejected_files"))
    assert rows == table_rows(local)
