"""`authorgraph run` validates in a child that imported Great Expectations while Prefect
started (pipelines/ops/children.py): the call's result and errors come back as if run here, and a
missing child means the call runs here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from authorgraph.expectations.validate import TableUnreadable, ValidationReport, validate_tables
from authorgraph.pipelines.load.errors import StepProcessDied
from authorgraph.pipelines.ops import children
from authorgraph.transforms.schema import CORE_TABLES

# Not tests.conftest's ROOT: the spawned children import this module, and conftest would give
# each a scratch folder that a killed child never removes.
ROOT = Path(__file__).resolve().parents[1]


def where_am_i() -> tuple[int, bool]:
    return os.getpid(), "great_expectations" in sys.modules


def validated_where(tables: dict[str, Path], docs: Path) -> tuple[int, bool, ValidationReport]:
    """(pid, sqlalchemy importable?, the report of validating `tables`) in this process."""
    report = validate_tables(dict(tables), docs)
    return os.getpid(), sys.modules.get("sqlalchemy", "importable") is not None, report


def unreadable(name: str) -> None:
    raise TableUnreadable(f"cannot read {name}")


def test_the_call_runs_in_a_child_that_imported_gx_which_ends_after_it() -> None:
    with children.validator_ahead():
        child = children._child
        assert child is not None
        pid, gx_loaded = children.call_validator(where_am_i)
        assert pid == child.process.pid != os.getpid()
        assert gx_loaded  # imported ahead, before the call arrived
        assert not child.process.is_alive() and children._child is None  # one call, then gone
        assert children.call_validator(where_am_i)[0] == os.getpid()  # any later call: here
    assert children._child is None


def test_the_child_validates_without_sqlalchemy_and_judges_as_this_process(
    seeds_warehouse: Path, tmp_path: Path
) -> None:
    """The child imports GX without its SQL packages (0.2 s of its import): GX runs as where
    sqlalchemy is not installed, and judges the seeds' tables as a validation here does."""
    current = seeds_warehouse / "current" / "parquet"
    tables = {t.name: current / f"{t.name}.parquet" for t in CORE_TABLES}
    with children.validator_ahead():
        pid, sql_there, there = children.call_validator(validated_where, tables, tmp_path / "a")
    here_pid, sql_here, here = validated_where(tables, tmp_path / "b")
    assert (pid != here_pid, sql_there, sql_here) == (True, False, True)
    assert there.success and there.evaluated == here.evaluated > 0
    assert [r.to_dict() for r in there.results] == [r.to_dict() for r in here.results]
    assert (tmp_path / "a" / "index.html").is_file()


def test_an_error_in_the_child_is_raised_here_with_its_message() -> None:
    with children.validator_ahead(), pytest.raises(TableUnreadable, match="cannot read papers"):
        children.call_validator(unreadable, "papers")


class NeedsTwo(Exception):
    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


def raise_needs_two() -> None:
    raise NeedsTwo("papers", "cannot be rebuilt from its message alone")


def test_an_error_that_cannot_cross_the_pipe_arrives_as_its_text() -> None:
    with pytest.raises(RuntimeError, match="NeedsTwo: papers: cannot be rebuilt"):
        children.run_in_child(raise_needs_two)


def test_a_released_or_dead_child_means_the_call_runs_here() -> None:
    with children.validator_ahead():
        child = children._child
        assert child is not None
        children.release()
        assert not child.process.is_alive()
        assert children.call_validator(where_am_i)[0] == os.getpid()
    with children.validator_ahead():
        child = children._child
        assert child is not None
        child.process.kill()  # out of memory, or killed by hand
        child.process.join()
        assert children.call_validator(where_am_i)[0] == os.getpid()
        assert children._child is None


def sleep_after_saying_where(path: str) -> None:
    Path(path).write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(600)


def die_at_once() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_child_that_dies_is_a_named_error_not_a_hang() -> None:
    from authorgraph.pipelines.cli.commands import EXIT_NO_SPACE, warehouse_exit_code

    with pytest.raises(StepProcessDied, match=r"die_at_once .*exit code -9") as info:
        children.run_in_child(die_at_once)
    assert warehouse_exit_code(info.value) == EXIT_NO_SPACE  # exit 6, as for memory or disk


def test_sigterm_while_a_step_runs_in_a_child_stops_both_at_once(tmp_path: Path) -> None:
    """A real SIGTERM to a process waiting on a child's step (a large run's build): the
    process stops as on Ctrl-C and kills the child, instead of waiting for its step."""
    ready = tmp_path / "child-pid"
    script = (
        "import sys\n"
        "from authorgraph.pipelines.ops import lifecycle\n"
        "from authorgraph.pipelines.ops.children import run_in_child\n"
        "from tests.test_children import sleep_after_saying_where\n"
        "lifecycle.handle_sigterm_as_sigint()\n"
        "try:\n"
        f"    run_in_child(sleep_after_saying_where, {str(ready)!r})\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() or not ready.read_text():  # the child is in its step
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        child = int(ready.read_text())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130  # the step would have slept 600 s
        assert not psutil.pid_exists(child)
    finally:
        proc.kill()
        proc.wait()
