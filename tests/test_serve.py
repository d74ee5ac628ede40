"""`authorgraph serve` for real: a local Prefect server, scheduled runs, a clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psutil

from tests.conftest import ROOT


def published_runs(warehouse: Path) -> int:
    """Completed runs in the warehouse's `runs` table (0 while there is no file yet): the first
    publishes, later ones on the same seeds record status `unchanged`."""
    path = warehouse / "authorgraph.duckdb"
    for _ in range(5):  # the publisher may be swapping the file in right now
        if not path.exists():
            return 0
        try:
            con = duckdb.connect(str(path), read_only=True)
            try:
                row = con.execute(
                    "select count(*) from runs where status in ('published', 'unchanged')"
                ).fetchone()
            finally:
                con.close()
            assert row is not None
            return int(row[0])
        except duckdb.Error:
            time.sleep(0.5)
    return 0


def test_serve_runs_on_schedule_and_stops_everything_it_started(
    seeds_copy: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "wh"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHORGRAPH_", "PREFECT_"))}
    env |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "pipelines", "serve", "--interval", "30"]
    command += ["--seeds", str(seeds_copy), "--warehouse", str(warehouse)]
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    started: dict[int, psutil.Process] = {}
    try:
        parent = psutil.Process(serve.pid)
        deadline = time.monotonic() + 240
        while published_runs(warehouse) < 2:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            # every process it starts: the Prefect server, the flow-run subprocesses
            with contextlib.suppress(psutil.NoSuchProcess):
                started |= {p.pid: p for p in parent.children(recursive=True)}
            time.sleep(0.5)
        started |= {p.pid: p for p in parent.children(recursive=True)}
        assert any("server" in " ".join(p.cmdline()) for p in started.values() if p.is_running())
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=90) == 0, (tmp_path / "serve.log").read_text()
    finally:
        if serve.poll() is None:
            serve.kill()
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert "Prefect UI: http://127.0.0.1:" in output
    assert "stopped" in output
    _, alive = psutil.wait_procs(list(started.values()), timeout=10)
    assert alive == [], [(p.pid, p.cmdline()) for p in alive]
    assert published_runs(warehouse) >= 2
