"""prefect.yaml describes the same deployment that `authorgraph serve` serves."""

from __future__ import annotations

import inspect

import yaml

from tests.conftest import ROOT


def test_prefect_yaml_points_at_the_served_flow_with_its_parameters() -> None:
    from pipelines import serve

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = spec["deployments"]
    path, name = deployment["entrypoint"].split(":")
    assert (ROOT / path).resolve() == (ROOT / "pipelines" / "serve.py").resolve()
    flow = getattr(serve, name)
    assert flow is serve.scheduled_flow and flow.name == "authorgraph"
    assert deployment["name"] == serve.DEPLOYMENT_NAME
    assert set(deployment["parameters"]) == set(inspect.signature(flow.fn).parameters)
    assert deployment["concurrency_limit"]["limit"] == 1
    assert deployment["schedules"][0]["cron"] == "0 * * * *"
