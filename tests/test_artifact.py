"""Each run publishes a markdown artifact: files, rejections, rows, validation, Data Docs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import anyio
import pytest

from tests.conftest import FIXTURES

if TYPE_CHECKING:
    from authorgraph.pipelines.config import Settings

pytestmark = pytest.mark.usefixtures("prefect_harness")


async def read_run_artifact(flow_run_id: UUID | None) -> str:
    assert flow_run_id is not None
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    assert len(artifacts) == 1
    assert artifacts[0].key == "authorgraph-run" and artifacts[0].type == "markdown"
    return str(artifacts[0].data)


def test_run_artifact_reports_files_rows_validation_and_docs(
    seeds_copy: Path, settings_for: Callable[..., Settings]
) -> None:
    from authorgraph.pipelines.flow import authorgraph_flow

    shutil.copy(FIXTURES / "bad" / "incomplete_paper.txt", seeds_copy / "zz | bad.txt")
    settings = settings_for(seeds_copy)
    authorgraph_flow(settings)  # the first run parses everything
    (seeds_copy / "010_extra.txt").write_bytes(
        (FIXTURES / "edge" / "wrapped_fields.txt").read_bytes()
    )
    state = authorgraph_flow(settings, return_state=True)
    summary = state.result()
    markdown = anyio.run(read_run_artifact, state.state_details.flow_run_id)

    assert f"# authorgraph run `{summary.run_id}`" in markdown
    assert "Status: **published**" in markdown
    # read, parsed, reused, rejected, deleted: the new page parsed, the rest reused
    assert "| 7 | 1 | 6 | 1 | 0 |" in markdown
    assert "| zz \\| bad\\.txt | INCOMPLETE\\_PAPER | 15 |" in markdown  # escaped, one cell
    assert "| authors | 6 |" in markdown
    assert "| papers | 27 |" in markdown
    assert "| authorship | 35 |" in markdown
    assert "| rejected_files | 1 |" in markdown
    assert "passed (" in markdown and "FAILED" not in markdown
    docs = str(settings.data_docs_dir / "index.html")
    assert "Data Docs: " + docs.replace("_", "\\_").replace(".", "\\.") in markdown
