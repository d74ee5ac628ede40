"""Real processes against a real warehouse: readers during a run, kill -9, two runs at once,
awkward file names and permissions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import psutil
import pytest

from authorgraph.pipelines.config import Settings
from tests.conftest import FIXTURES, ROOT, PublishSeeds, run_stages

pytestmark = pytest.mark.usefixtures("prefect_harness")
KILL_POINTS = [
    "transform:parsing",
    "load:staged",
    "publish:version_moved",
    "publish:duckdb_replaced",
    "publish:current_swapped",
]


@pytest.fixture
def cli_env(prefect_harness: None) -> dict[str, str]:
    """Environment for `authorgraph` subprocesses: the session's Prefect server, quiet."""
    from prefect.settings import PREFECT_API_URL

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AUTHORGRAPH_") or k == "AUTHORGRAPH_SERVER_DIR"
    }
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    return env


def start_run(
    seeds: Path, warehouse: Path, env: dict[str, str], *args: str, fault: str | None = None
) -> subprocess.Popen[str]:
    run_env = dict(env)
    if fault:
        run_env["AUTHORGRAPH_FAULT"] = fault
    command = [sys.executable, "-m", "authorgraph.pipelines", "run", "--seeds", str(seeds)]
    command += ["--warehouse", str(warehouse), *args]
    return subprocess.Popen(
        command, cwd=ROOT, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run_cli(
    seeds: Path, warehouse: Path, env: dict[str, str], *args: str, fault: str | None = None
) -> tuple[int, str, str]:
    process = start_run(seeds, warehouse, env, *args, fault=fault)
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def counts(warehouse: Path) -> tuple[int, int, int]:
    con = duckdb.connect(str(warehouse / "authorgraph.duckdb"), read_only=True)
    try:
        row = con.execute(
            "select (select count(*) from authors), (select count(*) from papers), "
            "(select count(*) from authorship)"
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return row


def wait_for(predicate: Callable[[], object], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def has_open(pid: int, path: Path) -> bool:
    """Process `pid` has `path` open (False once it has ended)."""
    try:
        return any(Path(f.path) == path.resolve() for f in psutil.Process(pid).open_files())
    except psutil.NoSuchProcess:
        return False


def add_page(seeds: Path) -> None:
    shutil.copy(FIXTURES / "edge" / "wrapped_fields.txt", seeds / "005_wrapped.txt")


def test_reader_holding_the_file_keeps_working_while_a_run_publishes(
    seeds_copy: Path, tmp_path: Path, cli_env: dict[str, str], publish_seeds: PublishSeeds
) -> None:
    warehouse = tmp_path / "wh"
    publish_seeds(Settings(seeds=seeds_copy, warehouse=warehouse))  # the run after is the test
    reader_code = textwrap.dedent(
        """
        import sys, duckdb
        con = duckdb.connect(sys.argv[1], read_only=True)
        q = "select count(*) from papers"
        print(con.execute(q).fetchone()[0], flush=True)
        sys.stdin.readline()
        print(con.execute(q).fetchone()[0], flush=True)
        """
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", reader_code, str(warehouse / "authorgraph.duckdb")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None and reader.stdin is not None
    assert reader.stdout.readline().strip() == "25"  # holding a read-only connection now
    add_page(seeds_copy)
    code, _out, err = run_cli(seeds_copy, warehouse, cli_env)
    assert code == 0, err
    reader.stdin.write("\n")
    reader.stdin.flush()
    assert reader.stdout.readline().strip() == "25"  # its snapshot, still readable
    assert reader.wait(timeout=30) == 0
    assert counts(warehouse)[1] == 27  # new connections see the new version


@pytest.mark.waits(35)
def test_kill_9_at_any_point_leaves_the_warehouse_readable_and_recoverable(
    seeds_copy: Path, tmp_path: Path, cli_env: dict[str, str], publish_seeds: PublishSeeds
) -> None:
    """One killed run per point, back to back; each starts by clearing what the last one left.
    The first version (the session's, copied) and the recovering run are in-process."""
    warehouse = tmp_path / "wh"
    publish_seeds(Settings(seeds=seeds_copy, warehouse=warehouse))
    add_page(seeds_copy)  # every run from here on would publish 6 authors, 27 papers
    for point in KILL_POINTS:
        code, _, err = run_cli(seeds_copy, warehouse, cli_env, fault=f"{point}=kill")
        assert code == -9, (point, err)
        # Readable and intact: the old version or the new one, each complete.
        assert counts(warehouse) in {(5, 25, 33), (6, 27, 35)}, point
        parquet = (
            duckdb.connect()
            .execute(
                "select count(*) from read_parquet(?)",
                [str(warehouse / "parquet" / "papers.parquet")],
            )
            .fetchone()
        )
        assert parquet in {(25,), (27,)}, point
        leftovers = list((warehouse / ".staging").iterdir())
        assert len(leftovers) <= 1, (point, leftovers)  # only the killed run's own
    run_stages(Settings(seeds=seeds_copy, warehouse=warehouse))  # recovers: lock, staging
    assert counts(warehouse) == (6, 27, 35)
    assert not any((warehouse / ".staging").iterdir())


def test_held_by_another_is_a_look_that_creates_nothing(tmp_path: Path) -> None:
    """The run's look before it starts Prefect: true only while another open of `.lock`
    holds it; a missing folder or lock file, or an unsafe one (a symlink, a FIFO that would
    block an open), is left to the run."""
    from authorgraph.pipelines.load.lock import held_by_another, writer_lock

    warehouse = tmp_path / "wh"
    assert not held_by_another(warehouse) and not warehouse.exists()
    warehouse.mkdir()
    assert not held_by_another(warehouse) and not (warehouse / ".lock").exists()
    with writer_lock(warehouse):
        assert held_by_another(warehouse)
    assert not held_by_another(warehouse)
    (warehouse / ".lock").unlink()
    (warehouse / ".lock").symlink_to(tmp_path / "elsewhere")
    assert not held_by_another(warehouse) and not (tmp_path / "elsewhere").exists()
    (warehouse / ".lock").unlink()
    os.mkfifo(warehouse / ".lock")  # opened without blocking, then refused: not a regular file
    assert not held_by_another(warehouse)


def test_a_busy_warehouse_is_refused_before_prefect_starts(
    seeds_copy: Path, tmp_path: Path
) -> None:
    """Without `--wait`, a run on a warehouse another run holds exits 4 with its line before
    it starts Prefect: no temporary server, no Prefect database (this took 6-12 s: the
    server started only to hear the warehouse was busy). The flow's own refusal, for a lock
    taken after that look, is checked in-process."""
    from authorgraph.pipelines.config import quiet_libraries
    from authorgraph.pipelines.load.lock import WarehouseBusy, writer_lock

    warehouse, home = tmp_path / "wh", tmp_path / "prefect-home"
    warehouse.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHORGRAPH_", "PREFECT_"))}
    env |= {"PREFECT_HOME": str(home), "AUTHORGRAPH_SERVER_DIR": str(tmp_path / "no-server")}
    quiet_libraries(env, override=True)
    with writer_lock(warehouse):
        code, out, err = run_cli(seeds_copy, warehouse, env)
        with pytest.raises(WarehouseBusy, match=f"another run is publishing to {warehouse}"):
            run_stages(Settings(seeds=seeds_copy, warehouse=warehouse))
    assert code == 4, err
    assert err.strip() == (
        f"authorgraph: another run is publishing to {warehouse}; "
        "try again later or pass --wait SECONDS"
    )
    assert not (home / "prefect.db").exists() and out == ""
    assert not any(warehouse.glob(".staging/*"))


def test_two_runs_at_once_one_waits_or_stops_cleanly(
    seeds_copy: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """The first run holds the lock, paused at a gate (a file) until the test opens it: after
    a second run has been refused and a third is seen waiting on the lock file."""
    warehouse, gate = tmp_path / "wh", tmp_path / "gate"
    first = start_run(seeds_copy, warehouse, cli_env, fault=f"transform:parsing=wait:{gate}")
    lock, started = warehouse / ".lock", [first]
    try:
        wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid))
        code, out, err = run_cli(seeds_copy, warehouse, cli_env)
        assert code == 4
        assert f"another run is publishing to {warehouse}" in err
        assert "Traceback" not in err + out
        waiting = start_run(seeds_copy, warehouse, cli_env, "--wait", "120")
        started.append(waiting)
        wait_for(lambda: has_open(waiting.pid, lock))  # polling for the lock the first holds
        assert first.poll() is None and lock.read_text().strip() == str(first.pid)
    except BaseException:  # a failed check: no run stays paused at the gate or waiting
        for process in started:
            process.kill()
        raise
    gate.touch()
    assert first.wait(timeout=300) == 0
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    assert "0 parsed, 5 unchanged and reused" in out
    assert "validation: tables unchanged: the last run's pass stands" in out
    assert counts(warehouse) == (5, 25, 33)
