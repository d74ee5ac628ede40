"""A local Prefect server: one kept between runs (`authorgraph server start`), or one for the
life of `serve`. Light on purpose: `run` asks `running_server()` before importing Prefect.

Without a server, every `authorgraph run` starts Prefect's temporary server (about 6 s) and
stops it again (3-4 s). `authorgraph server start` starts `prefect server start` on 127.0.0.1 in
its own session, with its own PREFECT_HOME, and records its address in
`$AUTHORGRAPH_SERVER_DIR/server.json` (default `~/.local/state/authorgraph/prefect-server`);
`run` and `serve` use it while it answers its health check, and `server stop` ends it.

A run that uses the kept server watches its process (`watch_process`): when the server ends
during the run (`server stop`, a crash, the OOM killer), Prefect's client would retry every call
for about a minute and print a traceback per call; the run stops at once instead, with one line.
A run without a kept server watches Prefect's temporary server the same way, from the moment
Prefect has started it (`watch_temporary_server`).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from authorgraph.pipelines.config import quiet_libraries

SERVER_DIR_ENV = "AUTHORGRAPH_SERVER_DIR"
STATE_FILE = "server.json"
START_TIMEOUT = 180.0
STOP_GRACE = 3.0
WATCH_POLL = 0.5  # seconds between checks of a watched server's process


class ServerError(RuntimeError):
    """A local Prefect server did not start or stop."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    """True when the Prefect API at `api_url` answers its health check."""
    try:
        with urllib.request.urlopen(api_url + "/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop_group(leader: int | subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM a process group (its leader started it in its own session), then SIGKILL.

    Pass the leader's `Popen` when this process started it: a leader that has exited stays a
    zombie until it is reaped, and a zombie keeps its group alive, so without reaping it every
    stop would wait out both graces (6 s for `serve`'s server, which exits in about 1 s)."""
    pid = leader if isinstance(leader, int) else leader.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not isinstance(leader, int):
                leader.poll()
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def server_command(port: int) -> list[str]:
    """The command that runs a Prefect server on 127.0.0.1:`port`."""
    host = ["--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, "-m", "prefect", "server", "start", *host]


def launch(
    home: Path, log_path: Path, outlive: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `prefect server start` in its own session with `home` as PREFECT_HOME.

    `outlive`: the server is meant to outlive this command (`server start`), so it does not
    carry the marker by which the command's guardian stops what the command started.
    """
    drop = {"PREFECT_API_URL", *(["AUTHORGRAPH_PROCESS_MARKER"] if outlive else [])}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PREFECT_HOME"] = str(home)
    quiet_libraries(env)
    port = free_port()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            server_command(port),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}/api"


def wait_healthy(process: subprocess.Popen[bytes], api_url: str, log_path: Path) -> None:
    """Wait until the server answers; raise ServerError if it exits or never does."""
    deadline = time.monotonic() + START_TIMEOUT
    while not healthy(api_url):
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ServerError(f"the Prefect server exited ({process.returncode}):\n{tail}")
        if time.monotonic() > deadline:
            stop_group(process)
            raise ServerError(f"no healthy Prefect server after {START_TIMEOUT:.0f} s")
        time.sleep(0.25)


def server_dir() -> Path:
    """Where the kept server's home, log and address live."""
    default = Path.home() / ".local" / "state" / "authorgraph" / "prefect-server"
    return Path(os.environ.get(SERVER_DIR_ENV) or default)


def _state() -> dict[str, Any] | None:  # parsed JSON: values of any type
    try:
        state = json.loads((server_dir() / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def running_server() -> str | None:
    """The kept server's API URL if it is up and healthy, else None (fast when it is down)."""
    kept = kept_server()
    return None if kept is None else kept[0]


def kept_server() -> tuple[str, int] | None:
    """The kept server's API URL and pid if it is up and healthy, else None."""
    state = _state()
    if state is None:
        return None
    url, pid = str(state.get("url")), int(state.get("pid", 0))
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError):
        return None
    return (url, pid) if healthy(url, timeout=1.0) else None


def watch_process(pid: int, on_gone: Callable[[], None], poll: float = WATCH_POLL) -> None:
    """Call `on_gone` once, from a daemon thread, when process `pid` has ended (a zombie
    counts as ended; the pid is tied to its start time, so a reused pid is not mistaken for
    it). A process that is already gone, or not ours to see, is not watched."""
    import psutil

    try:
        process = psutil.Process(pid)
    except psutil.Error:
        return

    def ended() -> bool:
        try:
            return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return False

    def loop() -> None:
        while not ended():
            time.sleep(poll)
        on_gone()

    threading.Thread(target=loop, name="authorgraph-server-watch", daemon=True).start()


def temporary_server() -> tuple[str, int] | None:
    """(API URL, pid) of Prefect's temporary server, once this process has started it: Prefect
    3 keeps it as a `SubprocessASGIServer` per port, with its `server_process`. None before
    that, or if a Prefect release stops keeping them there (the watch then does nothing, and
    `tests/test_signals.py` says so)."""
    module = sys.modules.get("prefect.server.api.server")  # imported by Prefect when it starts one
    servers = getattr(getattr(module, "SubprocessASGIServer", None), "_instances", None)
    for server in list((servers or {}).values()):
        process = getattr(server, "server_process", None)
        if isinstance(process, subprocess.Popen):
            return str(server.api_url), process.pid
    return None


def watch_temporary_server(
    on_gone: Callable[[str, int], None], stop: threading.Event, poll: float = WATCH_POLL
) -> None:
    """From a daemon thread: wait until Prefect has started its temporary server (or `stop` is
    set), then `watch_process` it, calling `on_gone(url, pid)` once it has ended."""

    def wait_for_it() -> None:
        while not stop.is_set():
            found = temporary_server()
            if found is not None:
                watch_process(found[1], functools.partial(on_gone, *found), poll)
                return
            stop.wait(poll)

    threading.Thread(target=wait_for_it, name="authorgraph-server-watch", daemon=True).start()


def start_server(echo: Callable[[str], None]) -> str:
    """Start the kept server unless it already runs; return its API URL."""
    url = running_server()
    if url is not None:
        echo(f"a Prefect server is already running at {url}")
        return url
    folder = server_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    home = folder / "home"
    home.mkdir(exist_ok=True, mode=0o700)
    log_path = folder / "server.log"
    process, url = launch(home, log_path, outlive=True)
    echo(f"starting a Prefect server at {url} (log: {log_path})")
    wait_healthy(process, url, log_path)
    state = {"pid": process.pid, "url": url}
    tmp = folder / f".{STATE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, folder / STATE_FILE)
    echo(f"Prefect server running at {url}; `authorgraph run` uses it until `server stop`")
    return url


def stop_server() -> bool:
    """Stop the kept server; False when none was running."""
    state = _state()
    (server_dir() / STATE_FILE).unlink(missing_ok=True)
    if state is None:
        return False
    pid = int(state.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stop_group(pid)
    return True
