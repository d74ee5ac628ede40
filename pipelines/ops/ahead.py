"""Great Expectations imported ahead of time, in a child process, while Prefect starts.

Importing GX takes about 4 s of one core (scipy.stats, altair, pydantic models), and a run that
validates pays for it after its flow has started. `authorgraph run` therefore spawns one child
as it begins (`validator_ahead`): the child imports GX while the parent starts Prefect's
temporary server (or talks to a kept one), then waits for one call. The run's `validate` step
hands it `validate_tables` (`call_validator`); the child's process ends with the command.

The child is given back as soon as the run knows it does not need it (`release`): a run with
nothing to rebuild validates nothing, and a large run validates in its own process after the
DuckDB build, where an idle child's ~300 MiB would count against the run's memory. If the
child is gone (killed, out of memory), the call runs in this process instead. A thread in this
process was tried first and lost: Prefect's client keeps the main thread busy during start-up,
and the two imports took turns on the GIL.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any, TypeVar

_R = TypeVar("_R")

#: The modules the child imports before it waits for its call.
PRELOAD = "authorgraph.expectations.validate"


class _Child:
    """One spawned process: import PRELOAD, run one call sent over a pipe, send its result."""

    def __init__(self) -> None:
        ctx = get_context("spawn")
        self.conn, theirs = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(theirs,), daemon=True)
        self.process.start()
        theirs.close()

    def call(self, fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
        self.conn.send((fn, args, kwargs))
        ok, value = self.conn.recv()  # EOFError when the child died
        if not ok:
            raise value
        return value  # the child sent fn's result

    def stop(self) -> None:
        """Kill it (it holds nothing but memory: unused, or done with its one call)."""
        self.conn.close()
        self.process.kill()
        self.process.join()


def _serve(conn: Connection) -> None:
    """The child: import ahead, then run at most one call and send back its outcome."""
    module = importlib.import_module(PRELOAD)
    module.import_gx()
    try:
        fn, args, kwargs = conn.recv()
    except EOFError:  # released unused
        return
    try:
        result = (True, fn(*args, **kwargs))
    except Exception as exc:  # re-raised in the parent
        result = (False, exc)
    conn.send(result)


_child: _Child | None = None


@contextmanager
def validator_ahead() -> Iterator[None]:
    """Within this block, `call_validator` runs in a child that imported GX ahead of time."""
    global _child
    _child = _Child()
    try:
        yield
    finally:
        release()


def release() -> None:
    """Stop the child now, if there is one (the run will not validate, or not in it)."""
    global _child
    child, _child = _child, None
    if child is not None:
        child.stop()


def call_validator(fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
    """`fn(*args, **kwargs)` in the child made ahead, or here if there is none (or it died).
    The child serves one call: it is released after it."""
    global _child
    child, _child = _child, None
    if child is None:
        return fn(*args, **kwargs)
    try:
        return child.call(fn, *args, **kwargs)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return fn(*args, **kwargs)
    finally:
        child.stop()
