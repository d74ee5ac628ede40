"""`authorgraph serve`: the flow as a Prefect deployment on a schedule, served by this process.

Prefect's temporary in-process server does not schedule, so without a configured
`PREFECT_API_URL` this starts `prefect server start` on 127.0.0.1 (a free port, its own
PREFECT_HOME unless one is set), waits for `/api/health`, serves, and stops it on exit.

Stopping (SIGINT or SIGTERM) takes a few seconds: in-flight flow runs get SIGTERM at once and
SIGKILL after `STOP_GRACE`, then the runner stops, then the server (the same grace). After a
`kill -9` of serve, the guardian (`authorgraph.pipelines.ops.lifecycle`) stops the server and the
flow runs, and each flow run also stops itself once serve is gone, releasing the warehouse lock.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from prefect import flow

from authorgraph.pipelines.config import resolve_settings
from authorgraph.pipelines.flow import run_pipeline
from authorgraph.pipelines.ops import lifecycle
from authorgraph.pipelines.ops.server import ServerError, launch, stop_group, wait_healthy

__all__ = ["ServerError"]

DEPLOYMENT_NAME = "scheduled"
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL when stopping: 10 s is a common budget
SERVE_PID_ENV = "AUTHORGRAPH_SERVE_PID"  # tells a flow run which process served it


_server_pid: int | None = None  # the `prefect server` this process started, if any


@flow(name="authorgraph", validate_parameters=True)
def scheduled_flow(
    seeds: str = "seeds", warehouse: str = "warehouse", wait_seconds: float = 0.0
) -> dict[str, object]:
    """The deployment's entry point: plain JSON parameters, the same pipeline as `run`.

    A run that finds the warehouse busy fails fast with WarehouseBusy (or waits up to
    `wait_seconds`), so scheduled runs never pile up behind a long one.
    """
    if os.environ.get(SERVE_PID_ENV, "").isdigit():  # a run started by `authorgraph serve`
        lifecycle.stop_when_orphaned(int(os.environ[SERVE_PID_ENV]))
    settings = resolve_settings(seeds=seeds, warehouse=warehouse, wait_seconds=wait_seconds)
    summary = run_pipeline(settings)
    return {"run_id": summary.run_id, "row_counts": summary.row_counts}


@contextmanager
def local_prefect_server(echo: Callable[[str], None]) -> Iterator[str]:
    """Run `prefect server start` on 127.0.0.1 until the block ends; yield its API URL."""
    own_home = "PREFECT_HOME" not in os.environ
    home = Path(tempfile.mkdtemp(prefix="authorgraph-prefect-server-")) if own_home else None
    log_dir = home or Path(tempfile.mkdtemp(prefix="authorgraph-prefect-log-"))
    lifecycle.remove_when_gone(log_dir)  # removed below, or by the guardian after a kill -9
    log_path = log_dir / "server.log"
    server, api_url = launch(home or Path(os.environ["PREFECT_HOME"]), log_path)
    global _server_pid
    _server_pid = server.pid
    try:
        echo(f"starting a local Prefect server at {api_url} (log: {log_path})")
        wait_healthy(server, api_url, log_path)
        echo(f"Prefect UI: {api_url.removesuffix('/api')}")
        yield api_url
    finally:
        stop_group(server, STOP_GRACE)
        server.wait()
        shutil.rmtree(log_dir, ignore_errors=True)


def serve_flow(
    seeds: Path,
    warehouse: Path,
    wait_seconds: float,
    cron: str | None,
    interval: float | None,
) -> None:
    """Serve the deployment until SIGINT/SIGTERM. At most one run at a time (`limit=1` on this
    runner and a deployment concurrency limit of 1); the warehouse lock guards other writers."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType
    from prefect.runner import Runner

    parameters = {
        "seeds": str(seeds.resolve()),
        "warehouse": str(warehouse.resolve()),
        "wait_seconds": wait_seconds,
    }
    # `scheduled_flow.serve(...)` spelled out, to put our SIGTERM handler in place of the
    # runner's (which gives in-flight runs 30 s to react to a cancel, then 30 s more).
    runner = Runner(name=DEPLOYMENT_NAME, limit=1)
    runner.add_flow(
        scheduled_flow,
        name=DEPLOYMENT_NAME,
        cron=cron,
        interval=interval,
        parameters=parameters,
        description="authorgraph on a schedule: extract, transform, validate, publish.",
        tags=["authorgraph"],
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    stop = lifecycle.on_sigterm(stop_flow_runs)
    runner.handle_sigterm = stop  # type: ignore[method-assign]  # Runner has no SIGTERM hook
    asyncio.run(runner.start())


def stop_flow_runs() -> None:
    """SIGTERM the flow runs in flight now, SIGKILL them after STOP_GRACE (in a thread: this
    runs in a signal handler). Each runs in its own session; its group goes with it."""
    import psutil

    def stop() -> None:
        spared = lifecycle.helper_pids() | {_server_pid}
        runs = [c for c in psutil.Process().children() if c.pid not in spared]
        descendants = []
        for run in runs:
            with suppress(psutil.NoSuchProcess):
                descendants += run.children(recursive=True)
        lifecycle.stop_processes(runs + descendants, STOP_GRACE)

    threading.Thread(target=stop, name="authorgraph-stop-flow-runs", daemon=True).start()


def serve_forever(
    seeds: Path,
    warehouse: Path,
    wait_seconds: float,
    cron: str | None,
    interval: float | None,
    echo: Callable[[str], None],
) -> None:
    """Use the configured Prefect API, or start a local server; serve; stop what we started."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    lifecycle.handle_sigterm_as_sigint()  # the runner's handler is ours too, see serve_flow
    os.environ[SERVE_PID_ENV] = str(os.getpid())  # flow runs stop themselves when we are gone
    try:
        configured = PREFECT_API_URL.value()
        with local_prefect_server(echo) if not configured else _given(configured) as api_url:
            os.environ["PREFECT_API_URL"] = api_url  # for the runner's flow-run subprocesses
            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                serve_flow(seeds, warehouse, wait_seconds, cron, interval)
    except KeyboardInterrupt:
        pass
    finally:
        lifecycle.stop_children(STOP_GRACE)
        echo("stopped")


@contextmanager
def _given(api_url: str) -> Iterator[str]:
    yield api_url
