"""`authorgraph server`: a Prefect server kept between runs, used by `run` while it is up."""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.conftest import prefect_home_set_up
from tests.test_concurrency import counts, start_run, wait_for
from tests.test_exit_codes import authorgraph


def flow_runs(api_url: str) -> int:
    request = urllib.request.Request(
        api_url + "/flow_runs/count", data=b"{}", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.loads(response.read()))


@pytest.mark.waits(24)
def test_kept_server_is_used_by_run_and_stopped(
    seeds_copy: Path, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """A run uses the kept server; a second run, paused at a gate (a file that never comes),
    stops with one line and exit 7 when `server stop` ends that server under it, and the
    warehouse keeps the first run's version. The server's home (`<server dir>/home`) starts
    with Prefect's database set up, as after a first `server start`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AUTHORGRAPH_", "PREFECT_API_URL"))
    }
    env["AUTHORGRAPH_SERVER_DIR"] = str(tmp_path / "server")
    (tmp_path / "server").mkdir(mode=0o700)
    prefect_home_set_up(pytestconfig, tmp_path / "server" / "home")
    env["PREFECT_HOME"] = str(tmp_path / "client-home")
    assert authorgraph("server", "status", env=env).returncode == 1
    started = authorgraph("server", "start", env=env)
    assert started.returncode == 0, started.stderr
    state = json.loads((tmp_path / "server" / "server.json").read_text())
    server = psutil.Process(state["pid"])
    warehouse = tmp_path / "wh"
    paused = None
    try:
        status = authorgraph("server", "status", env=env)
        assert status.stdout.strip() == f"running at {state['url']}"
        before = flow_runs(state["url"])
        args = ("run", "--seeds", str(seeds_copy), "--warehouse", str(warehouse))
        result = authorgraph(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert flow_runs(state["url"]) == before + 1  # the run was recorded by the kept server
        assert server.is_running()  # and the server outlived the run
        (seeds_copy / "000_38a999d25114c30e.txt").unlink()  # what the paused run would publish
        gate = f"transform:parsing=wait:{tmp_path / 'never'}"
        paused = start_run(seeds_copy, warehouse, env, fault=gate)
        lock = warehouse / ".lock"
        wait_for(lambda: lock.exists() and lock.read_text().strip() == str(paused.pid))
    finally:
        stopped = authorgraph("server", "stop", env=env)
        if paused is not None and paused.poll() is None and stopped.returncode != 0:
            paused.kill()
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped"
    server.wait(timeout=60)
    assert authorgraph("server", "status", env=env).stdout.strip() == "not running"
    _, stderr = paused.communicate(timeout=120)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert paused.returncode == 7, stderr
    assert len(lines) == 1, stderr  # no traceback from Prefect's client
    assert lines[0].startswith(f"authorgraph: the Prefect server at {state['url']}"), stderr
    assert "run stopped and the warehouse keeps its last complete version" in lines[0]
    assert counts(warehouse) == (5, 25, 33)  # the first run's version, still readable


def test_watch_process_calls_back_once_its_process_has_ended() -> None:
    """A killed process is seen as ended even before it is reaped (a zombie: what a server
    whose parent never waits for it becomes); a process that is already gone is not watched."""
    import signal
    import subprocess
    import threading

    from authorgraph.pipelines.ops.server import watch_process

    child = subprocess.Popen(["sleep", "300"])
    seen = threading.Event()
    calls: list[int] = []

    def on_gone() -> None:
        calls.append(child.pid)
        seen.set()

    try:
        watch_process(child.pid, on_gone, poll=0.01)
        assert not seen.wait(0.2)  # alive: no call
        os.kill(child.pid, signal.SIGKILL)  # not reaped yet: a zombie
        assert seen.wait(30), "the watcher never saw the process end"
        assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
    finally:
        child.kill()
        child.wait()
    gone = threading.Event()
    watch_process(child.pid, gone.set, poll=0.01)  # reaped: nothing to watch
    assert calls == [child.pid] and not gone.wait(0.2)


def test_stopping_a_group_whose_leader_has_exited_does_not_wait_out_the_grace() -> None:
    """A leader that ends on SIGTERM is a zombie until reaped, and a zombie keeps its group
    alive: `stop_group` given the leader's Popen reaps it and returns, instead of waiting both
    graces (each 600 s here: only a stop that never looked for the end would hit the join)."""
    import signal
    import subprocess
    import threading

    from authorgraph.pipelines.ops.server import stop_group

    leader = subprocess.Popen(["sleep", "600"], start_new_session=True)
    stopper = threading.Thread(target=stop_group, args=(leader, 600.0), daemon=True)
    try:
        stopper.start()
        stopper.join(120)
        assert not stopper.is_alive(), "stop_group waited on a group that had ended"
    finally:
        leader.kill()
        leader.wait()
    assert leader.returncode == -signal.SIGTERM  # stopped by the SIGTERM, not the SIGKILL


def test_stopping_children_spares_the_resource_tracker_that_ignores_sigterm() -> None:
    """`stop_children` (the end of `serve`) stops real children but not multiprocessing's
    resource tracker: it ignores SIGTERM, and stopping it waited out the grace (600 s here);
    it ends with its parent."""
    import subprocess
    import sys

    script = (
        "import subprocess\n"
        "from multiprocessing import resource_tracker\n"
        "from authorgraph.pipelines.ops import lifecycle\n"
        "resource_tracker.ensure_running()\n"
        "child = subprocess.Popen(['sleep', '600'])\n"
        "lifecycle.stop_children(grace=600)\n"
        "import psutil\n"
        "print(psutil.pid_exists(child.pid), resource_tracker._resource_tracker._pid)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    child_left, tracker = done.stdout.split()
    assert child_left == "False"  # the real child was stopped (and reaped)
    with contextlib.suppress(psutil.NoSuchProcess):  # the tracker ends with its parent
        _, alive = psutil.wait_procs([psutil.Process(int(tracker))], timeout=60)
        assert alive == []


def test_the_hard_exit_after_a_server_ends_leaves_no_semaphore_to_warn_about() -> None:
    """When the server ends under a run that does not stop within its grace, the run exits
    at once (`hard_exit`). Its parse pool's named semaphores must be unlinked first: else
    multiprocessing's resource tracker, which writes to the same terminal, unlinks them and
    prints a "leaked semaphore objects" warning after the run's one line."""
    import subprocess
    import sys

    script = (
        "import multiprocessing\n"
        "from authorgraph.pipelines.ops.lifecycle import hard_exit\n"
        "context = multiprocessing.get_context('spawn')\n"
        "lock, queue = context.Lock(), context.Queue()\n"  # named semaphores, as a pool's
        "queue.put('batch')\n"
        "hard_exit(7)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )  # stderr is read to its end: the resource tracker's copy of it closes last
    assert done.returncode == 7
    assert done.stderr == ""


@pytest.mark.parametrize("quiet", [True, False])
def test_semaphores_left_by_an_exit_without_finalizers_are_cleaned_without_a_warning(
    quiet: bool,
) -> None:
    """On a busy machine `hard_exit`'s finalizers may not finish in their second (seen with
    six test workers on two cores): the process ends with its semaphores still named. The
    resource tracker unlinks them, and after `quiet_resource_tracker` (the CLI calls it
    first) says nothing; without it, it prints its warning on the command's stderr."""
    import subprocess
    import sys

    script = (
        "import multiprocessing, os\n"
        "from authorgraph.pipelines.ops.lifecycle import quiet_resource_tracker\n"
        + ("quiet_resource_tracker()\n" if quiet else "")
        + "context = multiprocessing.get_context('spawn')\n"
        "lock = context.Lock()\n"  # a named semaphore, as a pool's queue holds
        "os._exit(7)\n"  # what an exit whose finalizers ran out of time comes to
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 7
    if quiet:
        assert done.stderr == ""
    else:
        assert "leaked semaphore" in done.stderr
