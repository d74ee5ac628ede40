"""`authorgraph run` validates in a child that imported Great Expectations while Prefect
started (pipelines/ops/ahead.py): the call's result and errors come back as if run here, and a
missing child means the call runs here."""

from __future__ import annotations

import os
import sys

import pytest

from authorgraph.expectations.validate import TableUnreadable
from authorgraph.pipelines.ops import ahead


def where_am_i() -> tuple[int, bool]:
    return os.getpid(), "great_expectations" in sys.modules


def unreadable(name: str) -> None:
    raise TableUnreadable(f"cannot read {name}")


def test_the_call_runs_in_a_child_that_imported_gx_which_ends_after_it() -> None:
    with ahead.validator_ahead():
        child = ahead._child
        assert child is not None
        pid, gx_loaded = ahead.call_validator(where_am_i)
        assert pid == child.process.pid != os.getpid()
        assert gx_loaded  # imported ahead, before the call arrived
        assert not child.process.is_alive() and ahead._child is None  # one call, then gone
        assert ahead.call_validator(where_am_i)[0] == os.getpid()  # any later call: here
    assert ahead._child is None


def test_an_error_in_the_child_is_raised_here_with_its_message() -> None:
    with ahead.validator_ahead(), pytest.raises(TableUnreadable, match="cannot read papers"):
        ahead.call_validator(unreadable, "papers")


def test_a_released_or_dead_child_means_the_call_runs_here() -> None:
    with ahead.validator_ahead():
        child = ahead._child
        assert child is not None
        ahead.release()
        assert not child.process.is_alive()
        assert ahead.call_validator(where_am_i)[0] == os.getpid()
    with ahead.validator_ahead():
        child = ahead._child
        assert child is not None
        child.process.kill()  # out of memory, or killed by hand
        child.process.join()
        assert ahead.call_validator(where_am_i)[0] == os.getpid()
        assert ahead._child is None
