"""Validate the tables with the Great Expectations suites in `expectations/suites/`.

The suites are plain JSON, one per table plus one cross-table suite, loaded into an ephemeral
GX context (nothing is written outside the Data Docs folder). Frames arrive as polars and are
handed to GX as pandas with Arrow dtypes.

The Data Docs site is built in a fresh folder and renamed into place: a `data_docs` symlink
planted in the warehouse is replaced by the new folder, and what it pointed at is left untouched.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

# Great Expectations and pandas are imported when a validation runs, not with this module:
# GX alone takes about 4 s to import, and a run whose inputs are unchanged never validates.
if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core.expectation_suite import ExpectationSuite

logging.getLogger("great_expectations").setLevel(logging.WARNING)

SUITES_DIR = Path(__file__).parent / "suites"
SITE_NAME = "local_site"
RELATIONSHIPS = "authorship_relationships"
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Failure:
    """One failed expectation: where, what, and a few offending values."""

    suite: str
    expectation: str
    column: str | None
    unexpected_count: int | None
    examples: list[Any] = field(default_factory=list)

    def describe(self) -> str:
        """One line: `suite: expectation(column): N unexpected, e.g. [...]`."""
        where = f"({self.column})" if self.column else ""
        count = f": {self.unexpected_count} unexpected" if self.unexpected_count else ""
        examples = f", e.g. {self.examples}" if self.examples else ""
        return f"{self.suite}: {self.expectation}{where}{count}{examples}"


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of every suite: counts, failures and the Data Docs index."""

    evaluated: int
    failures: list[Failure]
    data_docs_index: Path | None
    carried_over: bool = False  # the inputs were unchanged: the last run's outcome stands

    @property
    def success(self) -> bool:
        """True when every expectation passed."""
        return not self.failures

    def headline(self) -> str:
        """`passed (N expectations)` or `FAILED (k of N expectations)`."""
        if self.carried_over:
            return f"unchanged inputs: the last run's pass stands ({self.evaluated} expectations)"
        if self.success:
            return f"passed ({self.evaluated} expectations)"
        return f"FAILED ({len(self.failures)} of {self.evaluated} expectations)"

    def failure_lines(self) -> list[str]:
        """One line per failed expectation."""
        return [f.describe() for f in self.failures]


def _gx() -> Any:
    """Great Expectations, imported on first use, quiet and offline."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.core.expectation_suite
    import great_expectations.data_context.types.base
    import great_expectations.expectations.expectation_configuration

    return gx


class ValidationFailed(Exception):
    """A suite failed: the run stops and nothing is published."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__("; ".join(report.failure_lines()))
        self.report = report


def load_suite(path: Path) -> ExpectationSuite:
    """Build a suite from its JSON file; an unknown expectation type raises."""
    gx = _gx()
    ExpectationConfiguration = gx.expectations.expectation_configuration.ExpectationConfiguration
    ExpectationSuite = gx.core.expectation_suite.ExpectationSuite
    doc = json.loads(path.read_text(encoding="utf-8"))
    expectations = [
        ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj()
        for e in doc["expectations"]
    ]
    return ExpectationSuite(name=doc["name"], expectations=expectations, meta=doc.get("meta"))


def relationships_frame(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Authorship left-joined to authors and papers: a null *_ref marks a dangling row."""
    authors = frames["authors"].select(pl.col("author_id"), author_ref=pl.col("author_id"))
    papers = frames["papers"].select(pl.col("paper_id"), paper_ref=pl.col("paper_id"))
    return (
        frames["authorship"]
        .select("author_id", "paper_id")
        .join(authors.unique("author_id"), on="author_id", how="left")
        .join(papers.unique("paper_id"), on="paper_id", how="left")
    )


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """Hand a frame to GX as pandas with Arrow dtypes (nullable types survive)."""
    import pandas as pd

    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _context(docs_dir: Path) -> Any:
    gx = _gx()
    ProgressBarsConfig = gx.data_context.types.base.ProgressBarsConfig
    context = gx.get_context(mode="ephemeral")
    context.enable_analytics(False)
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.update_data_docs_site(
        SITE_NAME,
        {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir.resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


def _clean(value: Any) -> Any:
    import pandas as pd

    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    try:
        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def _column(kwargs: dict[str, Any]) -> str | None:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_list" in kwargs:
        return ", ".join(kwargs["column_list"])
    return None


def _replace_dir(path: Path, build: Callable[[Path], object]) -> Path:
    """Build a folder's new contents in a fresh folder beside it, then swap it in by rename.

    Whatever was at `path` (a folder, or a planted symlink) is moved aside and removed without
    following links, so a symlink's target is never written or deleted.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in path.parent.glob(f".{path.name}.*.old"):  # from a killed run
        _remove(leftover)
    fresh = path.with_name(f".{path.name}.{secrets.token_hex(8)}.new")
    os.mkdir(fresh, 0o777)
    try:
        build(fresh)
        aside: list[Path] = []
        while True:
            old = path.with_name(f".{path.name}.{secrets.token_hex(8)}.old")
            try:
                os.rename(path, old)  # a rename moves a symlink itself, never its target
                aside.append(old)
            except FileNotFoundError:
                pass
            try:
                os.rename(fresh, path)
                break
            except OSError as exc:  # another writer swapped its folder in meanwhile: again
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    for old in aside:
        _remove(old)
    return path


def _remove(path: Path) -> None:
    """Remove a file, a symlink (not what it points to) or a folder tree."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def validate_tables(
    frames: dict[str, pl.DataFrame], docs_dir: Path, suites_dir: Path = SUITES_DIR
) -> ValidationReport:
    """Run each table's suite and the cross-table suite; rebuild the Data Docs site."""
    failures: list[Failure] = []
    evaluated = 0

    def build(site_dir: Path) -> None:
        nonlocal evaluated
        evaluated = _run_suites(frames, site_dir, suites_dir, failures)

    _replace_dir(docs_dir, build)
    index = docs_dir / "index.html"
    return ValidationReport(evaluated, failures, index if index.exists() else None)


def _run_suites(
    frames: dict[str, pl.DataFrame], site_dir: Path, suites_dir: Path, failures: list[Failure]
) -> int:
    """Validate every input, append its failures, build the site in `site_dir`; return the
    number of expectations evaluated."""
    gx = _gx()
    inputs = {**frames, RELATIONSHIPS: relationships_frame(frames)}
    context = _context(site_dir)
    source = context.data_sources.add_pandas(name="authorgraph")
    evaluated = 0
    for name, frame in inputs.items():
        suite = context.suites.add(load_suite(suites_dir / f"{name}.json"))
        batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(name)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=[definition],
                result_format={
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": MAX_EXAMPLES,
                },
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": to_pandas(frame)})
        for suite_result in result.run_results.values():
            for r in suite_result.results:
                evaluated += 1
                if r.success:
                    continue
                outcome = r.result or {}
                failures.append(
                    Failure(
                        suite=name,
                        expectation=r.expectation_config.type,
                        column=_column(r.expectation_config.kwargs),
                        unexpected_count=outcome.get("unexpected_count"),
                        examples=[_clean(v) for v in outcome.get("partial_unexpected_list") or []][
                            :MAX_EXAMPLES
                        ]
                        or ([outcome["observed_value"]] if "observed_value" in outcome else []),
                    )
                )
    context.build_data_docs(site_names=[SITE_NAME])
    return evaluated
