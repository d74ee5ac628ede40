"""Shared fixtures. Prefect and GX are quiet and offline; the Prefect harness starts once."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported in the fixtures: Prefect and GX must see the environment first
    from authorgraph.pipelines.config import Settings
    from authorgraph.pipelines.stages import Transformed

# Before anything imports Prefect or GX: telemetry off, a throwaway PREFECT_HOME.
_PREFECT_HOME = tempfile.mkdtemp(prefix="authorgraph-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
for _key in [k for k in os.environ if k.startswith("AUTHORGRAPH_")]:
    del os.environ[_key]
# A Prefect server kept by `authorgraph server start` on this machine is never used by tests.
os.environ["AUTHORGRAPH_SERVER_DIR"] = tempfile.mkdtemp(prefix="authorgraph-server-")

# Property tests run beside subprocess-heavy tests on 2 cores: a slow draw is load, not a bug.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "authorgraph", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("authorgraph")

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the whole session (it costs ~20 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


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

    scratch = dataclasses.replace(settings, warehouse=Path(tempfile.mkdtemp(prefix="ag-wh-")))
    return stages.transform(stages.extract(scratch), scratch, "test-run")


@pytest.fixture(scope="session")
def seeds_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse published from seeds/ without Prefect (fast; shared, so treat as read-only)."""
    from authorgraph.pipelines.config import Settings

    settings = Settings(seeds=SEEDS, warehouse=tmp_path_factory.mktemp("seeds-warehouse"))
    run_stages(settings)
    return settings.warehouse
