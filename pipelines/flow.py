"""The Prefect flow: four tasks, one per stage; the flow only puts them in order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from expectations.validate import ValidationFailed, ValidationReport
from pipelines import stages
from pipelines.config import Settings


@dataclass
class RunSummary:
    """What a completed run did: files, rows, validation, where the outputs are."""

    run_id: str
    record: dict[str, object]
    rejected: list[dict[str, object]]
    row_counts: dict[str, int]
    validation: ValidationReport
    duckdb_path: Path
    data_docs_index: Path | None

    @property
    def files_read(self) -> int:
        """Files found in the seeds folder."""
        return int(self.record["files_read"])  # type: ignore[call-overload]

    @property
    def files_loaded(self) -> int:
        """Files whose records were loaded."""
        return self.files_read - len(self.rejected)


# I/O tasks retry with backoff; pure ones don't. No task caches: inputs are large frames.
@task(name="extract", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 4])
def extract_task(settings: Settings) -> stages.Extracted:
    """Discover the page files and hash what changed since the last run."""
    return stages.extract(settings)


@task(name="transform", cache_policy=NO_CACHE)
def transform_task(
    extracted: stages.Extracted, settings: Settings, run_id: str
) -> stages.Transformed:
    """Parse changed pages, reuse unchanged ones, and build the tables."""
    return stages.transform(extracted, settings, run_id)


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(transformed: stages.Transformed, settings: Settings) -> ValidationReport:
    """Run the Great Expectations suites and build Data Docs."""
    return stages.validate(transformed, settings)


@task(name="load", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 4])
def load_task(
    transformed: stages.Transformed,
    settings: Settings,
    record: dict[str, object],
    unchanged: bool = False,
) -> Path:
    """Publish the validated tables into the warehouse."""
    return stages.load(transformed, settings, record, unchanged)


@flow(name="authorgraph", validate_parameters=False)
def authorgraph_flow(settings: Settings) -> RunSummary:
    """extract → transform → validate → load, holding the warehouse's writer lock throughout."""
    run_id, started_at = stages.new_run_id(), datetime.now(UTC)
    with stages.exclusive_run(settings):
        extracted = extract_task(settings)
        transformed = transform_task(extracted, settings, run_id)
        unchanged = stages.is_unchanged(transformed, settings)
        if unchanged:  # same inputs, same software: the published tables already passed
            report = stages.carried_over_report(transformed, settings)
        else:
            report = validate_task(transformed, settings)
        record = stages.run_record(run_id, started_at, transformed, report, settings)
        if not report.success:
            stages.record_failed_run(settings, record)
            raise ValidationFailed(report)
        duckdb_path = load_task(transformed, settings, record, unchanged)
    return RunSummary(
        run_id=run_id,
        record=record,
        rejected=transformed.tables["rejected_files"].to_dicts(),
        row_counts=transformed.row_counts,
        validation=report,
        duckdb_path=duckdb_path,
        data_docs_index=report.data_docs_index,
    )
