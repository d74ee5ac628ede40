"""prefect.yaml describes the same deployment that `authorgraph serve` serves."""

from __future__ import annotations

import inspect
import io
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SEEDS


def test_prefect_yaml_points_at_the_served_flow_with_its_parameters() -> None:
    from authorgraph.pipelines.ops import serve

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = spec["deployments"]
    path, name = deployment["entrypoint"].split(":")
    assert (ROOT / path).resolve() == (ROOT / "pipelines" / "ops" / "serve.py").resolve()
    flow = getattr(serve, name)
    assert flow is serve.scheduled_flow and flow.name == "authorgraph"
    assert deployment["name"] == serve.DEPLOYMENT_NAME
    assert set(deployment["parameters"]) == set(inspect.signature(flow.fn).parameters)
    assert deployment["concurrency_limit"]["limit"] == 1
    assert deployment["schedules"][0]["cron"] == "0 * * * *"


def test_serve_and_runner_usage_errors_exit_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from authorgraph.pipelines.cli.commands import app

    runner = CliRunner()
    both = runner.invoke(app, ["serve", "--cron", "0 * * * *", "--interval", "60"])
    assert both.exit_code == 2 and "either --cron or --interval" in both.output
    missing = runner.invoke(app, ["serve", "--seeds", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "seeds folder not found" in missing.output
    bogus = runner.invoke(app, ["run", "--seeds", str(SEEDS), "--runner", "bogus"])
    assert bogus.exit_code == 2 and "--runner must be one of pool, threads, processes, dask" in (
        bogus.output
    )
    stray = runner.invoke(app, ["run", "--runner", "threads", "--dask-address", "tcp://x:1"])
    assert stray.exit_code == 2 and "--dask-address needs --runner dask" in stray.output


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from authorgraph.pipelines.cli.progress import file_progress

    with file_progress(Console(file=io.StringIO())) as progress:
        assert progress is None
    buffer = io.StringIO()
    with file_progress(Console(file=buffer, force_terminal=True)) as progress:
        assert progress is not None
        progress(3)  # before SHOW_AFTER_SECONDS: counted, nothing drawn yet
    assert "parsing files" not in buffer.getvalue()
    monkeypatch.setattr("authorgraph.pipelines.cli.progress.SHOW_AFTER_SECONDS", 0.0)
    buffer = io.StringIO()
    with file_progress(Console(file=buffer, force_terminal=True, width=80)) as progress:
        assert progress is not None
        progress(3)
        progress(2)
    assert "parsing files" in buffer.getvalue() and "5/?" in buffer.getvalue()
