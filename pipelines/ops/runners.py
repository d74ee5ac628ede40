"""Task runners for the flow's parse batches: threads, processes, or a Dask cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

RUNNERS = ("pool", "threads", "processes", "dask")
# Measured on a 2-core machine (README, "Running on a cluster"): see DEFAULT_RUNNER there.
# pool: parsing runs in the transform task over a process pool of --workers processes that
# import only the parser (no Prefect task per batch, no Prefect server per worker).
DEFAULT_RUNNER = "pool"


class RunnerError(ValueError):
    """An unknown runner name or an address given for a runner that takes none."""


# TaskRunner[Any]: each runner makes its own kind of future (thread, process, Dask).
def make_task_runner(name: str, workers: int, address: str | None = None) -> TaskRunner[Any]:
    """The Prefect task runner called `name`; `dask` uses the cluster at `address` if given,
    else starts a LocalCluster of `workers` single-threaded worker processes."""
    if name not in RUNNERS:
        raise RunnerError(f"--runner must be one of {', '.join(RUNNERS)}, not {name!r}")
    if address and name != "dask":
        raise RunnerError("--dask-address needs --runner dask")
    if name in ("pool", "threads"):
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers)
    if name == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=workers)
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True}
    )
