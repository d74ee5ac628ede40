"""`authorgraph serve` for real: a local Prefect server, scheduled runs, a prompt stop on
SIGTERM, and nothing left behind after kill -9."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psutil
import pytest

from authorgraph.pipelines.config import quiet_libraries
from tests.conftest import ROOT
from tests.test_signals import (
    GONE_TIMEOUT,
    command_line,
    killed_at_end,
    lock_holder,
    lock_is_free,
)


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


def start_serve(
    seeds: Path, warehouse: Path, tmp_path: Path, interval: int = 30, fault: str | None = None
) -> subprocess.Popen[bytes]:
    """`authorgraph serve --interval N` starting its own Prefect server, output to serve.log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHORGRAPH_", "PREFECT_"))}
    env["HOME"] = str(tmp_path / "home")
    quiet_libraries(env, override=True)
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = "1"  # the runner looks for due runs every 1 s, not 10
    if fault:
        env["AUTHORGRAPH_FAULT"] = fault
    command = [sys.executable, "-m", "authorgraph.pipelines", "serve", "--interval", str(interval)]
    command += ["--seeds", str(seeds), "--warehouse", str(warehouse)]
    with (tmp_path / "serve.log").open("w") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.waits(35)
def test_serve_runs_on_schedule_and_stops_everything_it_started(
    seeds_copy: Path, tmp_path: Path
) -> None:
    """SIGTERM (what a container runtime sends) stops serve, exit 0, and all it started."""
    warehouse = tmp_path / "wh"
    serve = start_serve(seeds_copy, warehouse, tmp_path, interval=10)  # two runs, 10 s apart
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
        assert any("server" in command_line(p) for p in started.values())
        serve.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert serve.wait(timeout=90) == 0, (tmp_path / "serve.log").read_text()
        print(f"serve: exit {time.monotonic() - sent:.1f} s after SIGTERM")
    finally:
        if serve.poll() is None:
            serve.kill()
    output = (tmp_path / "serve.log").read_text()
    assert "Prefect UI: http://127.0.0.1:" in output
    assert "stopped" in output
    assert "Traceback" not in output
    _, alive = psutil.wait_procs(list(started.values()), timeout=10)
    assert alive == [], [(p.pid, command_line(p)) for p in alive]
    assert published_runs(warehouse) >= 2


@pytest.mark.waits(24)
def test_kill_9_to_serve_stops_its_server_and_the_flow_run_in_flight(
    seeds_copy: Path, tmp_path: Path
) -> None:
    """The flow run holds the warehouse lock when serve is killed: it must not publish later
    or block the next writer; the Prefect server must not stay behind either."""
    warehouse = tmp_path / "wh"
    fault = "transform:parsing=sleep:60"
    serve = start_serve(seeds_copy, warehouse, tmp_path, interval=5, fault=fault)
    started: dict[int, psutil.Process] = {serve.pid: psutil.Process(serve.pid)}
    with killed_at_end(started):
        parent, deadline = started[serve.pid], time.monotonic() + 240
        while lock_holder(warehouse) not in started:  # a flow run of serve's holds the lock
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            with contextlib.suppress(psutil.NoSuchProcess):
                started |= {p.pid: p for p in parent.children(recursive=True)}
            time.sleep(0.2)
        assert any("server" in command_line(p) for p in started.values())
        serve.kill()
        sent = time.monotonic()
        _, alive = psutil.wait_procs(list(started.values()), timeout=GONE_TIMEOUT)
        print(f"serve: children gone {time.monotonic() - sent:.1f} s after SIGKILL")
    assert alive == [], [(p.pid, command_line(p)) for p in alive]
    assert lock_is_free(warehouse)
    output = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in output
    assert published_runs(warehouse) == 0  # the killed run never published
    # The server's scratch home (its database, its log) went with it: the guardian removed it.
    found = re.search(r"\(log: (.+)/server\.log\)", output)
    assert found is not None, output
    home = Path(found[1])
    assert home.name.startswith("authorgraph-prefect-server-") and not home.exists(), home
