"""The Prefect flow: four tasks, one per stage; the flow only puts them in order."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.settings import temporary_settings
from prefect.states import State
from prefect.utilities.annotations import quote

from authorgraph.expectations.validate import ValidationReport
from authorgraph.pipelines import stages
from authorgraph.pipelines.artifacts import ARTIFACT_KEY, run_markdown
from authorgraph.pipelines.config import Settings
from authorgraph.pipelines.extract.seeds import PlannedFile, RejectedFile, SeedsError
from authorgraph.pipelines.load.errors import WarehouseError

Progress = Callable[[int], None]


@dataclass
class RunSummary:
    """What a completed run did: files, rows, validation, where the outputs are."""

    run_id: str
    record: dict[str, object]
    rejected: list[RejectedFile]
    row_counts: dict[str, int]
    validation: ValidationReport
    duckdb_path: Path
    data_docs_index: Path | None
    files_skipped: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def files_read(self) -> int:
        """Files found in the seeds folder."""
        files_read = self.record["files_read"]
        assert isinstance(files_read, int)  # run_record stores the plan's height
        return files_read

    @property
    def files_loaded(self) -> int:
        """Files whose records were loaded."""
        return self.files_read - len(self.rejected)


def retry_unless_named(task: object, task_run: object, state: State) -> bool:
    """Retry a failed I/O task, except for our named errors: a missing seeds folder, a full
    disk or an unusable warehouse won't mend in a few seconds, so say so at once."""
    exc = state.result(raise_on_failure=False)
    return not isinstance(exc, (SeedsError, WarehouseError))


# I/O tasks retry with backoff (not on our named errors); pure ones don't. No task caches:
# inputs are large frames.
IO_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [1, 4],
    "retry_condition_fn": retry_unless_named,
}


@task(name="extract", cache_policy=NO_CACHE, **IO_RETRIES)
def extract_task(settings: Settings) -> stages.Extracted:
    """Discover the page files and hash what changed since the last run."""
    return stages.extract(settings)


@task(name="parse_batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 4])
def parse_batch_task(
    refs: list[PlannedFile], max_bytes: int, batch_dir: Path, number: int
) -> stages.BatchResult:
    """Read, hash and parse one batch of changed files into the staging folder (fans out over
    the task runner; a Dask worker writes to the same, shared staging folder)."""
    return stages.parse_batch(refs, max_bytes, batch_dir, number)


@task(name="transform", cache_policy=NO_CACHE)
def transform_task(
    extracted: stages.Extracted,
    settings: Settings,
    run_id: str,
    batches: list[stages.BatchResult] | None = None,
    progress: Progress | None = None,
) -> stages.Transformed:
    """Reuse unchanged pages, merge the parsed batches, and build the tables."""
    return stages.transform(extracted, settings, run_id, batches, progress)


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(transformed: stages.Transformed, settings: Settings) -> ValidationReport:
    """Run the Great Expectations suites and build Data Docs."""
    return stages.validate(transformed, settings)


@task(name="load", cache_policy=NO_CACHE, **IO_RETRIES)
def load_task(
    transformed: stages.Transformed,
    settings: Settings,
    record: dict[str, object],
) -> stages.Loaded:
    """Publish the validated tables into the warehouse."""
    return stages.load(transformed, settings, record)


def parse_batches(extracted: stages.Extracted, settings: Settings) -> list[list[PlannedFile]]:
    """The changed files in file order, cut into at most `batch_files` per batch and into at
    least one batch per worker, so every worker of the task runner gets a share."""
    refs = extracted.to_read
    if not refs:
        return []
    size = max(min(settings.batch_files, math.ceil(len(refs) / max(settings.workers, 1))), 1)
    return [refs[i : i + size] for i in range(0, len(refs), size)]


def parse_task_batches(
    extracted: stages.Extracted, settings: Settings, run_id: str, progress: Progress | None
) -> list[stages.BatchResult] | None:
    """Fan the changed files out as parse_batch tasks over the flow's task runner (None for
    the `pool` runner: the transform task parses over its own process pool)."""
    if settings.runner == "pool":
        return None
    batch_dir = (stages.stage_dir_for(settings, run_id) / "batches").absolute()
    futures = [
        parse_batch_task.submit(refs, settings.max_file_bytes, batch_dir, number)
        for number, refs in enumerate(parse_batches(extracted, settings))
    ]
    batches = []
    for future in futures:  # in file order; the runner finishes them in any order
        batches.append(future.result())
        if progress is not None:
            progress(batches[-1].outcomes.height)
    return batches


_T = TypeVar("_T")


def _quoted(value: _T) -> _T:
    """`value` in Prefect's quote(), typed as the value: Prefect unwraps it before the task
    runs, so the task receives exactly `value` (its annotations type the quote as quote[T])."""
    return cast(_T, quote(value))


# quote(): Prefect would otherwise walk every file record and row of these large parameters
# looking for futures (seconds at 20k pages, tens of seconds at 200k).
FLOW_STEPS = stages.Steps(
    extract=extract_task,
    parse=parse_task_batches,
    transform=lambda extracted, settings, run_id, batches, progress: transform_task(
        _quoted(extracted), settings, run_id, _quoted(batches), progress
    ),
    validate=lambda transformed, settings: validate_task(_quoted(transformed), settings),
    load=lambda transformed, settings, record: load_task(_quoted(transformed), settings, record),
)


def run_pipeline(settings: Settings, progress: Progress | None = None) -> RunSummary:
    """The flow's body (call it inside a flow): `stages.run_sequence` with Prefect tasks as
    its steps. Parse batches fan out over the flow's task runner; merge, validate and the
    single DuckDB writer stay in this process."""

    def on_validated(
        record: dict[str, object], transformed: stages.Transformed, report: ValidationReport
    ) -> None:
        rejected = RejectedFile.from_rows(transformed.rejected_files.iter_rows(named=True))
        publish_artifact(record, rejected, transformed.row_counts, report)

    outcome = stages.run_sequence(settings, FLOW_STEPS, progress, on_validated)
    transformed, report = outcome.transformed, outcome.report
    return RunSummary(
        run_id=outcome.run_id,
        record=outcome.record,
        rejected=RejectedFile.from_rows(transformed.rejected_files.iter_rows(named=True)),
        row_counts=transformed.row_counts,
        validation=report,
        duckdb_path=outcome.loaded.duckdb_path,
        data_docs_index=report.data_docs_index,
        files_skipped=transformed.files_skipped,
        warnings=outcome.warnings,
    )


def publish_artifact(
    record: dict[str, object],
    rejected: list[RejectedFile],
    row_counts: dict[str, int],
    report: ValidationReport,
) -> None:
    """The run's markdown artifact in Prefect (its UI shows it on the flow run)."""
    markdown = run_markdown(
        record,
        rejected,
        row_counts,
        report.headline(),
        report.failure_lines(),
        report.data_docs_index,
    )
    create_markdown_artifact(
        markdown, key=ARTIFACT_KEY, description=f"authorgraph run {record['run_id']}"
    )


@flow(name="authorgraph", validate_parameters=False)
def authorgraph_flow(settings: Settings, progress: Progress | None = None) -> RunSummary:
    """extract → parse batches → transform → validate → load, holding the warehouse's writer
    lock throughout. `progress` is called with the number of files after each parsed batch."""
    return run_pipeline(settings, progress)


#: Either names Prefect's flow-run heartbeat interval; a run honours whichever is set.
HEARTBEAT_ENV = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


@contextlib.contextmanager
def heartbeats_unless_asked(environ: Mapping[str, str] | None = None) -> Iterator[None]:
    """Flow runs started inside send no heartbeats, unless the environment asks for them.

    Prefect 3 emits a heartbeat event from a thread every 180 s by default; at the end of a
    run it joins that thread, which sleeps in 1 s steps: 0.5-1 s of every short run spent
    waiting (a warm `authorgraph run` with a kept server: 4.4 s -> 3.5 s). Heartbeats only
    matter to a server automation that marks silent runs crashed; set either HEARTBEAT_ENV
    variable (seconds, at least 30) to have them."""
    environ = os.environ if environ is None else environ
    if any(name in environ for name in HEARTBEAT_ENV):
        yield
        return
    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield
