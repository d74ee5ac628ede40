"""The Prefect flow: four tasks, one per stage; the flow only puts them in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from expectations.validate import ValidationFailed, ValidationReport
from pipelines import stages
from pipelines.config import Settings
from pipelines.extract import FileRef


@dataclass
class RunSummary:
    """What a completed run did: files, rows, validation, where the outputs are."""

    run_id: str
    files_read: int
    rejected: list[dict[str, object]]
    row_counts: dict[str, int]
    validation: ValidationReport
    duckdb_path: Path
    data_docs_index: Path | None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def files_loaded(self) -> int:
        """Files whose records were loaded."""
        return self.files_read - len(self.rejected)


# I/O tasks retry with backoff; pure ones don't. No task caches: inputs are large frames.
@task(name="extract", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 4])
def extract_task(settings: Settings) -> list[FileRef]:
    """Discover the page files."""
    return stages.extract(settings)


@task(name="transform", cache_policy=NO_CACHE)
def transform_task(refs: list[FileRef], settings: Settings) -> stages.Transformed:
    """Read, parse and normalize the pages into tables."""
    return stages.transform(refs, settings)


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(transformed: stages.Transformed, settings: Settings) -> ValidationReport:
    """Run the Great Expectations suites and build Data Docs."""
    return stages.validate(transformed, settings)


@task(name="load", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 4])
def load_task(transformed: stages.Transformed, settings: Settings, run_id: str) -> Path:
    """Publish the validated tables into the warehouse."""
    return stages.load(transformed, settings, run_id)


@flow(name="authorgraph", validate_parameters=False)
def authorgraph_flow(settings: Settings) -> RunSummary:
    """extract → transform → validate → load; a failed suite stops the run before load."""
    run_id = stages.new_run_id()
    refs = extract_task(settings)
    transformed = transform_task(refs, settings)
    report = validate_task(transformed, settings)
    if not report.success:
        raise ValidationFailed(report)
    duckdb_path = load_task(transformed, settings, run_id)
    return RunSummary(
        run_id=run_id,
        files_read=transformed.files_read,
        rejected=transformed.tables["rejected_files"].to_dicts(),
        row_counts=transformed.row_counts,
        validation=report,
        duckdb_path=duckdb_path,
        data_docs_index=report.data_docs_index,
    )
