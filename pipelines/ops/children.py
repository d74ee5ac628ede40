"""Steps run in a child process: one spawned child, one call, then the child is killed.

- `run_in_child(fn, *args)`: a large run's DuckDB steps (the build, page statistics, ledger
  checks, changed rows) run in a child, so that what DuckDB's allocator keeps is given back
  when the child ends. If this process is interrupted while it waits (Ctrl-C, or SIGTERM,
  which `authorgraph run` turns into Ctrl-C), the child is killed at once: the run stops in
  seconds, not when the child's step would have finished (at 2M pages a build runs for an
  hour). A child that ends without an answer (killed, out of memory) is `StepProcessDied`.
- `validator_ahead()` and `call_validator(...)`: `authorgraph run` spawns one child as it
  begins; it imports Great Expectations (about 1.7 s of one core, without its SQL packages)
  while this process starts Prefect, compiles GX's Data Docs templates until the call
  arrives, then runs the validate step's call. It is released unused (`release`) as soon as
  the run knows it will not validate there: a run with nothing to rebuild, or one with over
  64 MiB of pages to parse or a build in a child (its ~200 MiB would sit through them); a
  re-run with little to parse keeps it. Without the child (released, or dead), the call runs
  in this process. A thread was tried first and lost: Prefect's client keeps the main thread
  busy while it starts, and the two imports took turns on the GIL.
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from authorgraph.pipelines.load.errors import StepProcessDied

_R = TypeVar("_R")

#: `validator_ahead`'s child runs this module's `prepare_to_validate` before it waits, and on
#: while it waits until the call arrives.
PRELOAD = "authorgraph.expectations.validate"


class _Child:
    """One spawned process that runs one call sent over a pipe and sends back its outcome."""

    def __init__(self, preload: bool) -> None:
        ctx = get_context("spawn")
        self.conn, theirs = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(theirs, preload), daemon=True)
        self.process.start()
        theirs.close()

    def call(self, fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
        """fn's result, or its exception raised here; EOFError when the child died."""
        self.conn.send((fn, args, kwargs))
        ok, value = self.conn.recv()
        if not ok:
            raise value
        return value  # the child sent fn's result

    def stop(self) -> None:
        """Kill it (it holds nothing but memory: unused, done, or abandoned)."""
        self.conn.close()
        self.process.kill()
        self.process.join()


def _serve(conn: Connection, preload: bool) -> None:
    """The child: import ahead if asked, run at most one call, send back its outcome."""
    if preload:
        importlib.import_module(PRELOAD).prepare_to_validate(stop=conn.poll)
    try:
        fn, args, kwargs = conn.recv()
    except EOFError:  # released unused
        return
    try:
        result = (True, fn(*args, **kwargs))
    except Exception as exc:  # re-raised in the parent
        result = (False, _portable(exc))
    conn.send(result)


def _portable(exc: Exception) -> Exception:
    """`exc` if it survives the pipe; else its type and text as a RuntimeError (an exception
    whose class takes other arguments than its message cannot be rebuilt on the other side)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # any failure to rebuild it
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def run_in_child(fn: Callable[..., _R], *args: Any) -> _R:
    """`fn(*args)` in a new child process, killed if this one is interrupted while waiting."""
    child = _Child(preload=False)
    try:
        return child.call(fn, *args)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        child.process.join(5)
        raise StepProcessDied(
            f"the process running {fn.__name__} ended without an answer (exit code "
            f"{child.process.exitcode}; a negative code is the signal that ended it, -9 often "
            "the system running out of memory); nothing was published"
        ) from None
    finally:
        child.stop()


_child: _Child | None = None


@contextmanager
def validator_ahead() -> Iterator[None]:
    """Within this block, `call_validator` runs in a child that imported GX ahead of time."""
    global _child
    _child = _Child(preload=True)
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
