"""Real signals to a real `authorgraph run` that starts its own temporary Prefect server: no
process it started outlives it, and the warehouse lock is free afterwards."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from authorgraph.pipelines.config import quiet_libraries
from authorgraph.pipelines.load.layout import STAGING_DIR
from tests.conftest import ROOT, prefect_home_set_up

GONE_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """One PREFECT_HOME for this module's runs (spread over xdist workers: one per worker), its
    database already set up: a run's temporary server starts without migrating it."""
    return prefect_home_set_up(pytestconfig, tmp_path_factory.mktemp("prefect-home"))


def own_server_env(prefect_home: Path) -> dict[str, str]:
    """No PREFECT_API_URL and no kept server: the run starts Prefect's temporary server as a
    subprocess (a server kept in the default AUTHORGRAPH_SERVER_DIR, as a developer's
    `authorgraph server start` leaves one, would be used instead)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHORGRAPH_", "PREFECT_"))}
    env |= {
        "PREFECT_HOME": str(prefect_home),
        "AUTHORGRAPH_SERVER_DIR": str(prefect_home / "no-kept-server"),
        "AUTHORGRAPH_FAULT": "transform:parsing=sleep:60",  # mid-run, holding the lock
    }
    quiet_libraries(env, override=True)
    return env


def lock_holder(warehouse: Path) -> int | None:
    """The pid written into the warehouse's lock file, if any."""
    with contextlib.suppress(OSError, ValueError):
        return int((warehouse / ".lock").read_text().strip())
    return None


def lock_is_free(warehouse: Path) -> bool:
    """True when this process can take the writer lock (nobody holds it)."""
    fd = os.open(warehouse / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def record_descendants(
    process: subprocess.Popen[bytes],
    log: Path,
    found: dict[int, psutil.Process],
    ready: Callable[[dict[int, psutil.Process]], bool],
    timeout: float = 240.0,
) -> None:
    """Gather every process started under `process` into `found` until `ready(found)` holds."""
    deadline = time.monotonic() + timeout
    parent = psutil.Process(process.pid)
    while True:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        with contextlib.suppress(psutil.NoSuchProcess):
            found |= {p.pid: p for p in parent.children(recursive=True)}
        if ready(found):
            return
        time.sleep(0.2)


def wait_gone(processes: dict[int, psutil.Process]) -> tuple[float, list[psutil.Process]]:
    """Wait for the processes to end; seconds taken and those still alive."""
    started = time.monotonic()
    _, alive = psutil.wait_procs(list(processes.values()), timeout=GONE_TIMEOUT)
    return time.monotonic() - started, alive


@contextlib.contextmanager
def killed_at_end(found: dict[int, psutil.Process]) -> Iterator[None]:
    """Kill whatever is left of `found` at the end, so a failing test leaves nothing behind."""
    try:
        yield
    finally:
        for leftover in found.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()


def start_run(
    seeds: Path, warehouse: Path, prefect_home: Path, log: Path, *args: str
) -> subprocess.Popen[bytes]:
    """`authorgraph run` with its own Prefect server, mid-run for a minute, output to `log`."""
    command = [sys.executable, "-m", "authorgraph.pipelines", "run", "--seeds", str(seeds)]
    command += ["--warehouse", str(warehouse), *args]
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=own_server_env(prefect_home), stdout=out, stderr=out
        )


def command_line(process: psutil.Process) -> str:
    """A process's command line, or "" once it has ended: short-lived helpers end between
    being found and being looked at (a full suite failed on one, stop 29)."""
    with contextlib.suppress(psutil.Error):
        return " ".join(process.cmdline())
    return ""


def has_server(found: dict[int, psutil.Process]) -> bool:
    """One of them is Prefect's temporary server (uvicorn)."""
    return any("uvicorn" in command_line(p) for p in found.values())


@contextlib.contextmanager
def run_mid_way(
    seeds: Path, tmp_path: Path, prefect_home: Path
) -> Iterator[tuple[subprocess.Popen[bytes], dict[int, psutil.Process], Path, Path]]:
    """(run, what it started, warehouse, log) of a run with its own Prefect server, once it
    holds the warehouse lock mid-run and its server is up; all of it is killed at the end."""
    warehouse, log = tmp_path / "wh", tmp_path / "run.log"
    run = start_run(seeds, warehouse, prefect_home, log)
    found = {run.pid: psutil.Process(run.pid)}
    with killed_at_end(found):
        record_descendants(
            run, log, found, lambda found: lock_holder(warehouse) == run.pid and has_server(found)
        )
        yield run, found, warehouse, log


@pytest.mark.waits(23)
def test_sigterm_to_run_stops_it_cleanly_with_its_prefect_server(
    seeds_copy: Path, tmp_path: Path, prefect_home: Path
) -> None:
    with run_mid_way(seeds_copy, tmp_path, prefect_home) as (run, found, warehouse, log):
        run.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert run.wait(timeout=GONE_TIMEOUT) == 143, log.read_text()
        exited = time.monotonic() - sent
        took, alive = wait_gone(found)
    output = log.read_text()
    print(f"run: exit {exited:.1f} s after SIGTERM, children gone {exited + took:.1f} s after")
    assert alive == [], [command_line(p) for p in alive]
    assert "authorgraph: stopped by SIGTERM" in output
    assert "Traceback" not in output
    assert lock_is_free(warehouse)


@pytest.mark.waits(13)
def test_sigkill_to_run_leaves_no_prefect_server_or_parse_worker(
    seeds_copy: Path, tmp_path: Path, prefect_home: Path
) -> None:
    """More than one parse batch (500 files each) and 2 workers: the process pool is in use.

    The kill comes once a worker has written rows of the first batch: by then the run has
    handed every batch to the pool, so each worker has read its start-up data. A kill in the
    instant between a worker's exec and the run writing it that data (what the first version
    of this test waited for: a worker's command line) leaves the worker Python's own EOFError
    traceback from `multiprocessing.spawn`; the worker still ends (CI, stop 27)."""
    pages = sorted(seeds_copy.iterdir())
    for number in range(1000):
        shutil.copy(pages[number % len(pages)], seeds_copy / f"copy_{number:04}.txt")
    warehouse, log = tmp_path / "wh", tmp_path / "run.log"

    def pool_is_up(found: dict[int, psutil.Process]) -> bool:
        workers = [p for p in found.values() if "spawn_main" in command_line(p)]
        parsed = any(warehouse.glob(f"{STAGING_DIR}/*/batches/*.parquet"))
        up = lock_holder(warehouse) == run.pid and has_server(found)
        return up and len(workers) >= 1 and parsed

    run = start_run(seeds_copy, warehouse, prefect_home, log, "--workers", "2")
    found = {run.pid: psutil.Process(run.pid)}
    with killed_at_end(found):
        record_descendants(run, log, found, pool_is_up)
        run.send_signal(signal.SIGKILL)
        assert run.wait(timeout=30) == -signal.SIGKILL
        took, alive = wait_gone(found)
    print(f"run: children gone {took:.1f} s after SIGKILL")
    assert alive == [], [command_line(p) for p in alive]
    output = log.read_text()
    assert "Traceback" not in output, output
    assert lock_is_free(warehouse)


@pytest.mark.waits(17)
def test_a_run_whose_temporary_prefect_server_dies_stops_at_once_with_its_line(
    seeds_copy: Path, tmp_path: Path, prefect_home: Path
) -> None:
    """Prefect's temporary server killed under a run (as the OOM killer would): the run does not
    wait out Prefect's retries (2 minutes and 135 lines of tracebacks before the watch) but
    stops with exit 7 and its one line, leaves nothing running, and publishes nothing. Prefect's
    own workers may notice the server's end first, within the watch's half second, and log an
    error line of their own before it (once in the six runs of this test so far)."""
    with run_mid_way(seeds_copy, tmp_path, prefect_home) as (run, found, warehouse, log):
        server = next(p for p in found.values() if "uvicorn" in command_line(p))
        server.kill()
        assert run.wait(timeout=GONE_TIMEOUT) == 7, log.read_text()
        _, alive = wait_gone(found)
    output = log.read_text()
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[-1].startswith("authorgraph: Prefect's temporary server at http://127.0.0.1:")
    assert f"(pid {server.pid}) stopped; run stopped" in lines[-1]
    assert len(lines) <= 3 and all("prefect" in line for line in lines[:-1]), lines
    assert "Traceback" not in output, output
    assert alive == [], [command_line(p) for p in alive]
    assert lock_is_free(warehouse)
    assert not (warehouse / "authorgraph.duckdb").exists()


SWALLOW_SCRIPT = """
import signal, sys, time, weakref
from authorgraph.pipelines.ops import lifecycle
lifecycle.handle_sigterm_as_sigint()
class Thing:
    pass
def callback(_):  # a weakref callback: Python reports what it raises and goes on
    signal.raise_signal(signal.SIGTERM)  # the handler runs at the next instruction: in here
    sum(range(1000))
def main():
    thing = Thing()
    kept = weakref.ref(thing, callback)
    del thing  # the callback runs now, and swallows the stop
    time.sleep(30)  # what the stop interrupts (sent again), or what ends the test if it is lost
    return kept
if sys.argv[1] == "prefect":  # inside a flow run: Prefect's handler, its TerminationSignal
    from prefect.utilities.engine import capture_sigterm
    def main(plain=main):
        with capture_sigterm():
            return plain()
started = time.monotonic()
try:
    main()
except KeyboardInterrupt:
    print(f"stopped by {lifecycle.stop_signal()} after {time.monotonic() - started:.1f} s")
    sys.exit(lifecycle.exit_code())
print("ran on")
"""


@pytest.mark.parametrize("handler", ["authorgraph", "prefect"])
def test_a_sigterm_swallowed_by_a_weakref_callback_is_sent_again(handler: str) -> None:
    """A SIGTERM whose exception Python swallows (it arrived during a weakref callback: GC's
    work, at any moment) still stops the process: sent again, it raises where it can. Without
    that, the process slept on for 30 s (and a run under Prefect ran on for a minute)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHORGRAPH_")}
    done = subprocess.run(
        [sys.executable, "-c", SWALLOW_SCRIPT, handler],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 143, (done.stdout, done.stderr)
    assert done.stdout.startswith(f"stopped by {signal.SIGTERM.value} after "), done.stdout
    assert float(done.stdout.split()[-2]) < 10, done.stdout
    assert "Exception ignored" not in done.stderr, done.stderr


LEAVE_SCRIPT = """
import atexit, pathlib, sys, threading, time
from authorgraph.pipelines.ops.lifecycle import leave
out = pathlib.Path(sys.argv[1])
def late():  # still working when leave() starts: it must be joined, not cut off
    time.sleep(0.3)
    (out / "thread").write_text("joined")
threading.Thread(target=late).start()
atexit.register(lambda: (out / "hook").write_text((out / "thread").read_text()))
sys.stdout.write("buffered, not yet flushed")
leave(eval(sys.argv[2]))
"""


def run_leave(tmp_path: Path, code: str, stdout: Any) -> subprocess.CompletedProcess[str]:
    """LEAVE_SCRIPT in a real process, its stdout block-buffered (PYTHONUNBUFFERED removed,
    as a user's shell has it), so only the exit's flush writes it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", LEAVE_SCRIPT, str(tmp_path), code],
        stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(("code", "returncode"), [("3", 3), ("None", 0), ("'a message'", 1)])
def test_leave_joins_threads_runs_exit_hooks_and_flushes_before_it_exits(
    tmp_path: Path, code: str, returncode: int
) -> None:
    """`leave` (the CLI's exit, without the interpreter's teardown) skips nothing a normal exit
    would do that anyone can see: threads, atexit hooks (after the threads), buffered output."""
    done = run_leave(tmp_path, code, subprocess.PIPE)
    assert done.returncode == returncode, done.stderr
    assert done.stdout == "buffered, not yet flushed"
    assert (tmp_path / "hook").read_text() == "joined"
    assert done.stderr == ("a message\n" if returncode == 1 else "")


def test_leave_exits_120_with_one_line_when_the_output_cannot_be_written(tmp_path: Path) -> None:
    """Output that only reaches the disk at exit, on a full device (/dev/full): exit 120, as
    CPython's own exit gives, and one line saying why, not a silent 0."""
    with open("/dev/full", "w") as full:
        done = run_leave(tmp_path, "0", full)
    assert done.returncode == 120, done.stderr
    message = "authorgraph: could not write the output: [Errno 28] No space left on device\n"
    assert done.stderr == message
    assert (tmp_path / "hook").read_text() == "joined"


def test_data_docs_half_built_by_a_killed_process_go_with_the_next_build(
    seeds_warehouse: Path, tmp_path: Path
) -> None:
    """`kill -9` (or the kernel's OOM killer) while the Data Docs are built leaves the
    half-built folder beside `data_docs/`. The next build on this host removes it, but never
    the folder of a builder that still runs, one from another host (a warehouse on a shared
    disk) or one named by an older version."""
    from authorgraph.expectations import validate
    from authorgraph.transforms.schema import CORE_TABLES

    warehouse = tmp_path / "wh"
    shutil.copytree(seeds_warehouse, warehouse, symlinks=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHORGRAPH_")}
    command = [sys.executable, "-m", "authorgraph.pipelines", "validate"]
    building = subprocess.Popen(
        [*command, "--warehouse", str(warehouse)], cwd=ROOT, env=env, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not (killed := list(warehouse.glob(".data_docs.*.new"))):  # then GX's import
        assert building.poll() is None and time.monotonic() < deadline, building.communicate()
        time.sleep(0.01)
    building.kill()
    building.wait()
    assert all(folder.is_dir() for folder in killed)  # what kill -9 leaves behind
    tag = validate._builder_tag()
    live = warehouse / f".data_docs.{tag.partition('-')[0]}-{os.getpid()}-0a0b.new"
    elsewhere = warehouse / f".data_docs.{'0' if tag[0] != '0' else '1'}{tag[1:8]}-1-0a0b.new"
    older = warehouse / ".data_docs.0123456789abcdef.new"
    for folder in (live, elsewhere, older):
        folder.mkdir()
    current = warehouse / "current" / "parquet"
    tables = {t.name: current / f"{t.name}.parquet" for t in CORE_TABLES}
    report = validate.validate_tables(tables, warehouse / "data_docs")
    assert report.success and (warehouse / "data_docs" / "index.html").is_file()
    assert not any(folder.exists() for folder in killed)
    assert live.is_dir() and elsewhere.is_dir() and older.is_dir()
