"""Shared fixtures. Prefect and GX are quiet and offline; the Prefect harness starts once."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported in the fixtures: Prefect and GX must see the environment first
    from authorgraph.pipelines.config import Settings
    from authorgraph.pipelines.stages import Transformed

# Before anything imports Prefect or GX: telemetry off (the project's one list of quiet,
# offline library settings), a throwaway PREFECT_HOME, no AUTHORGRAPH_* from the shell.
from authorgraph.pipelines.config import quiet_libraries  # imports no Prefect or GX

# Everything a test process keeps outside pytest's tmp_path lives in one folder, removed when
# the process exits (atexit runs last what registers first: after Prefect's own handlers).
_SCRATCH = Path(tempfile.mkdtemp(prefix="authorgraph-tests-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
_PREFECT_HOME = _SCRATCH / "prefect-home"
_PREFECT_HOME.mkdir()
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
quiet_libraries(override=True)
for _key in [k for k in os.environ if k.startswith("AUTHORGRAPH_")]:
    del os.environ[_key]
# A Prefect server kept by `authorgraph server start` on this machine is never used by tests.
(_SCRATCH / "server").mkdir()
os.environ["AUTHORGRAPH_SERVER_DIR"] = str(_SCRATCH / "server")

# Property tests run beside subprocess-heavy tests on 2 cores: a slow draw is load, not a bug.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "authorgraph", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("authorgraph")


def _own_random_for_websockets() -> None:
    """Hypothesis warns ("Do not use the `random` module inside strategies") when the global
    `random` state changes while it draws. After an in-process flow, Prefect's events client
    keeps a websocket open in a background thread of the xdist worker, and `websockets` draws
    its keepalive ping payloads (and reconnect backoff) from the global `random`: a ping during
    a property test tripped the warning now and then. Those modules get a Random of their own;
    what they draw is as random as before."""
    import random

    import websockets.asyncio.connection
    import websockets.client

    for module in (websockets.asyncio.connection, websockets.client):
        module.random = random.Random()  # type: ignore[attr-defined]  # mypy knows no such attribute: the module imports random


_own_random_for_websockets()

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
PublishSeeds = Callable[["Settings"], None]  # the `publish_seeds` fixture
FIXTURES = Path(__file__).parent / "fixtures"


def _shared_dir(config: pytest.Config) -> Path:
    """A folder every process of this pytest session sees: the controller's base temp folder
    (xdist workers get a `popen-gwN` folder inside it)."""
    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]  # pytest keeps it private
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _session_lock(config: pytest.Config, name: str) -> Iterator[Path]:
    """Hold an exclusive lock named `name` in the session's shared folder (yielded): what is
    built under it is built once, by the first process that gets there."""
    root = _shared_dir(config)
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield root


def _shared_prefect_server(config: pytest.Config) -> str:
    """The API URL of the session's one Prefect test server, started by whichever process asks
    first (a file lock orders the xdist workers) in its own session, so it outlives that
    worker; `pytest_sessionfinish` in the controller stops it. Same server as Prefect's test
    harness (uvicorn, no UI, no services), on a throwaway SQLite database."""
    import json
    import subprocess
    import sys

    from authorgraph.pipelines.ops.server import free_port, healthy

    with _session_lock(config, "prefect-server") as root:
        state, home = root / SERVER_STATE, root / "prefect-server-home"
        if state.exists():
            url = str(json.loads(state.read_text())["url"])
        else:
            home.mkdir(exist_ok=True)
            port = free_port()
            env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
            env |= {
                "PREFECT_HOME": str(home),
                "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/test.db",
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
            }
            command = [sys.executable, "-m", "uvicorn", "--factory"]
            command += ["prefect.server.api.server:create_app", "--host", "127.0.0.1"]
            command += ["--port", str(port), "--log-level", "error", "--lifespan", "on"]
            with (root / "prefect-server.log").open("ab") as log:
                server = subprocess.Popen(
                    command, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            url = f"http://127.0.0.1:{port}/api"
            state.write_text(json.dumps({"url": url, "pid": server.pid}))
        deadline = time.monotonic() + 180
        while not healthy(url):
            assert time.monotonic() < deadline, f"no Prefect test server at {url}: see {root}"
            time.sleep(0.2)
        template = root / PREFECT_DATABASE
        if not template.exists():  # the new server's database, before any test writes to it
            _copy_database(home / "test.db", template)
    return url


SERVER_STATE = "prefect-server.json"
#: A copy of the test server's database as its start left it: set up and empty.
PREFECT_DATABASE = "prefect-template.db"


def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database in use (SQLite's online backup), written whole
    before it takes its name."""
    import sqlite3

    partial = target.with_name(f".{target.name}.{os.getpid()}")
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(partial)) as dst,
    ):
        src.backup(dst)
    partial.replace(target)


def prefect_home_set_up(config: pytest.Config, home: Path) -> Path:
    """`home`, a new PREFECT_HOME, with Prefect's database already set up in it (a copy of
    the session's test server's, taken when it started). A server's first start on a new
    database runs every migration: 4-5 s of CPU, half of that start. Tests that start their
    own server check what comes after."""
    _shared_prefect_server(config)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)  # as `authorgraph server start` makes it
    shutil.copyfile(_shared_dir(config) / PREFECT_DATABASE, home / "prefect.db")
    return home


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (or a run without xdist) stops the shared Prefect server, if any."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    import json

    from authorgraph.pipelines.ops.server import stop_group

    state = _shared_dir(session.config) / SERVER_STATE
    if state.exists():
        stop_group(int(json.loads(state.read_text())["pid"]))
        state.unlink()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, run the tests marked `waits` first, on half the workers.

    They spend most of their time waiting on servers, schedules and signals (a third of a
    core each). In the files' order several came last, and one worker waited alone at the
    end of the run while the other core idled; spread over every worker, at times all four
    waited at once. Here half the workers start with them back to back, while the other half
    keep the cores busy with the rest. `--dist worksteal` gives each worker a contiguous
    slice of this list and steals from slices' ends, so these heads stay where they are put.
    Every worker orders the same way (xdist requires it)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    waits = {item: float(m.args[0]) for item in items if (m := item.get_closest_marker("waits"))}
    if workers < 2 or not waits:
        return
    heads: list[list[pytest.Item]] = [[] for _ in range(workers)]
    load = [0.0] * (workers // 2)
    for item in sorted(waits, key=lambda i: -waits[i]):  # longest first, onto the least load
        lane = load.index(min(load))
        heads[lane].append(item)
        load[lane] += waits[item]
    rest = iter([item for item in items if item not in waits])
    ordered: list[pytest.Item] = []
    left = len(items)
    for slot, head in enumerate(heads):  # xdist's cut: len(pending) // nodes_remaining
        size = left // (workers - slot)
        left -= size
        ordered += head
        ordered += [next(rest) for _ in range(max(size - len(head), 0))]
    ordered += list(rest)
    items[:] = ordered


@pytest.fixture(scope="session")
def prefect_harness(pytestconfig: pytest.Config) -> Iterator[None]:
    """One Prefect test server for the whole session, shared by all xdist workers (each start
    costs ~20 s of CPU): in-process flows use it through PREFECT_API_URL, as with Prefect's
    `prefect_test_harness`; CLI subprocesses get it from `cli_env`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: _shared_prefect_server(pytestconfig)}):
        yield


@pytest.fixture
def seeds_copy(tmp_path: Path) -> Path:
    """A writable copy of seeds/ to add or break files in."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., Settings]:
    """Build Settings for a seeds folder and a fresh warehouse under tmp_path."""
    from authorgraph.pipelines.config import Settings

    def make(seeds: Path, **kwargs: Any) -> Settings:  # kwargs: any other Settings fields
        return Settings(seeds=seeds, warehouse=tmp_path / "warehouse", **kwargs)

    return make


def run_stages(settings: Settings) -> Transformed:
    """One run as plain calls (no Prefect): the flow's own sequence, `stages.run_sequence`."""
    from authorgraph.pipelines import stages

    outcome = stages.run_sequence(settings)
    outcome.transformed.warnings.extend(outcome.loaded.warnings)
    return outcome.transformed


def transform_only(settings: Settings) -> Transformed:
    """Extract and transform (no Prefect, nothing published): the tables are staged in a
    fresh temporary warehouse, never in `settings.warehouse`."""
    import dataclasses

    from authorgraph.pipelines import stages

    warehouse = Path(tempfile.mkdtemp(prefix="warehouse-", dir=_SCRATCH))
    scratch = dataclasses.replace(settings, warehouse=warehouse)
    return stages.transform(stages.extract(scratch), scratch, "test-run")


@pytest.fixture(scope="session")
def seeds_warehouse(pytestconfig: pytest.Config) -> Path:
    """A warehouse published from seeds/ without Prefect, built once per pytest session by the
    first xdist worker that asks (a full run validates and builds Data Docs: the slow part)
    and shared by all: treat it as read-only (copy it, or use `publish_seeds`, to change it)."""
    from authorgraph.pipelines.config import Settings

    with _session_lock(pytestconfig, "seeds-warehouse") as root:
        warehouse, done = root / "seeds-warehouse", root / "seeds-warehouse.done"
        if not done.exists():
            shutil.rmtree(warehouse, ignore_errors=True)  # a build that failed half-way
            run_stages(Settings(seeds=SEEDS, warehouse=warehouse))
            done.touch()
    return warehouse


@pytest.fixture
def publish_seeds(seeds_warehouse: Path) -> PublishSeeds:
    """Stand-in for a first `run_stages(settings)` on an untouched copy of seeds/: copies the
    session's `seeds_warehouse` to `settings.warehouse` (the same files, hashes and sizes and
    mtimes, so the next run reuses them) and skips that run's validation and Data Docs, the
    slowest part of a run. Refuses when the seeds or the settings differ from that build's."""
    from authorgraph.pipelines.config import Settings

    def publish(settings: Settings) -> None:
        def listing(folder: Path) -> list[tuple[str, int, int]]:
            return sorted(
                (p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()
            )

        like_session = Settings(seeds=settings.seeds, warehouse=settings.warehouse, workers=1)
        assert settings == like_session, "publish_seeds copies a warehouse built by default"
        assert listing(settings.seeds) == listing(SEEDS), "the seeds copy was changed"
        assert not settings.warehouse.exists(), settings.warehouse
        shutil.copytree(seeds_warehouse, settings.warehouse, symlinks=True)

    return publish
