"""No process outlives its command: SIGTERM stops like Ctrl-C, and a guardian cleans up after
a `kill -9`.

- `handle_sigterm_as_sigint()`: SIGTERM runs whatever SIGINT would (a KeyboardInterrupt, or
  asyncio's graceful cancel), so `finally` blocks and `atexit` hooks run; Prefect's temporary
  server is stopped by its own atexit hook.
- `start_guardian()`: a small watcher process holds the read end of a pipe whose write end only
  this process has. When this process ends, however it ends (SIGKILL included), the read
  returns EOF and the guardian stops every process that carries this command's marker in its
  environment (children inherit it: Prefect's server, parse workers, flow-run subprocesses),
  SIGTERM first, SIGKILL after `GRACE` seconds. No polling, and no patching of how Prefect
  starts its server. Then it removes the scratch folders this process named to it through
  the same pipe (`remove_when_gone`: `serve`'s Prefect server home), which the process
  removes itself when it ends normally.
- A stop that Python swallows is sent again (`_resend_swallowed_stop`): a signal handler
  raises in whatever Python code runs when the signal arrives, and when that is a weakref
  callback or a `__del__` (the garbage collector's), Python prints "Exception ignored" and
  goes on: the KeyboardInterrupt, or Prefect's TerminationSignal during a flow, is lost and
  the command runs on. Seen once in a test: SIGTERM to a run was ignored for a minute.
- `stop_when_orphaned()`: for a process started by another one (a served flow run), a thread
  that stops this process once its parent has gone.
- `leave(code)`: end a finished command without the interpreter's teardown (below);
  `output_lost(exc)`: a command whose output could not be written exits 120 with one line.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn, ParamSpec, TypeVar

if TYPE_CHECKING:
    import psutil

MARKER_ENV = "AUTHORGRAPH_PROCESS_MARKER"
GRACE = 3.0  # seconds between SIGTERM and SIGKILL for processes we stop
#: The exit code when a command's output could not be written: CPython's own for it.
EXIT_OUTPUT = 120
ORPHAN_POLL = 0.5  # seconds between parent checks in stop_when_orphaned
#: Seconds before a swallowed stop's signal is sent again: time for the main thread to leave
#: the callback that swallowed it (if it lands in one again, it is sent again).
RESEND_DELAY = 0.05

_P = ParamSpec("_P")
_R = TypeVar("_R")

_stop_signal: int | None = None
_guardian: subprocess.Popen[bytes] | None = None
_keep_open: list[int] = []  # the pipe's write end: open for as long as this process lives


def stop_signal() -> int:
    """The signal that asked this process to stop (SIGINT unless SIGTERM arrived)."""
    return _stop_signal or signal.SIGINT


def exit_code() -> int:
    """The shell's convention for a process ended by a signal: 128 + its number (130, 143)."""
    return 128 + stop_signal()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Do what SIGINT does right now; a KeyboardInterrupt if nothing else is installed."""
    global _stop_signal
    _stop_signal = signum
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signum, frame)
    else:
        raise KeyboardInterrupt


def handle_sigterm_as_sigint() -> None:
    """Make SIGTERM (a container stop, `kill`) end this process the way Ctrl-C does, and
    send a stop again when Python swallows it (`_resend_swallowed_stop`)."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    if sys.unraisablehook is not _resend_swallowed_stop:
        _hooks.append(sys.unraisablehook)
        sys.unraisablehook = _resend_swallowed_stop


_hooks: list[Callable[[sys.UnraisableHookArgs], object]] = []  # the hook ours replaced


def swallowed_stop(exc: BaseException | None) -> int | None:
    """The signal behind `exc` when it is a stop request: a KeyboardInterrupt (SIGINT, or
    SIGTERM through `_on_sigterm`) or Prefect's TerminationSignal (which carries its signal)."""
    if isinstance(exc, KeyboardInterrupt):
        return stop_signal()
    kind = type(exc)
    number = getattr(exc, "signal", None)
    if kind.__name__ == "TerminationSignal" and kind.__module__.startswith("prefect"):
        return number if isinstance(number, int) else signal.SIGTERM
    return None


def _resend_swallowed_stop(unraisable: sys.UnraisableHookArgs) -> None:
    """`sys.unraisablehook`: an exception Python could not raise (in a weakref callback, a
    `__del__`, the garbage collector). A stop request among them is sent to the main thread
    again, from a thread of its own, once the callback is likely left; anything else goes to
    the hook this one replaced (Python's: the "Exception ignored" report)."""
    number = swallowed_stop(unraisable.exc_value)
    if number is None:
        (_hooks[0] if _hooks else sys.__unraisablehook__)(unraisable)
        return
    main = threading.main_thread().ident
    assert main is not None
    resend = threading.Timer(RESEND_DELAY, signal.pthread_kill, (main, number))
    resend.daemon = True
    resend.start()


def on_sigterm(extra: Callable[[], None]) -> Callable[[int, FrameType | None], None]:
    """A SIGTERM handler that runs `extra` first, then behaves like `_on_sigterm`."""

    def handler(signum: int, frame: FrameType | None) -> None:
        extra()
        _on_sigterm(signum, frame)

    return handler


def start_guardian() -> None:
    """Start the guardian once; mark this process's environment so children inherit it."""
    global _guardian
    if _guardian is not None:
        return
    marker = f"{os.getpid()}-{uuid.uuid4().hex}"
    os.environ[MARKER_ENV] = marker
    read_end, write_end = os.pipe()  # both non-inheritable; the guardian gets read_end only
    command = [sys.executable, "-m", "authorgraph.pipelines.ops.lifecycle", str(read_end), marker]
    _guardian = subprocess.Popen(command, pass_fds=(read_end,), stdin=subprocess.DEVNULL)
    os.close(read_end)
    _keep_open.append(write_end)  # closed by the kernel when this process ends


def remove_when_gone(folder: Path) -> None:
    """Have the guardian remove `folder` (a scratch folder this process made) once this
    process has ended and what it started has been stopped: the clean-up a `kill -9` skips.
    Nothing without a guardian. Removing it earlier, as a normal exit does, is fine."""
    if _keep_open:
        with suppress(OSError):  # a guardian killed by hand: the folder stays, as before
            os.write(_keep_open[0], os.fsencode(folder.resolve()) + b"\0")


def guardian_pid() -> int | None:
    """The guardian's pid, if this process started one."""
    return _guardian.pid if _guardian is not None else None


def helper_pids() -> set[int]:
    """This process's own helpers, which a stop spares: the guardian, and multiprocessing's
    resource tracker. The tracker ignores SIGTERM, so stopping it waited out the whole grace
    (3 s of every `serve` stop); it ends by itself when this process does (its pipe closes)."""
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker, "_resource_tracker", None)
    return {pid for pid in (guardian_pid(), getattr(tracker, "_pid", None)) if pid is not None}


def stops_on_signals(
    fail: Callable[[str, int], Exception],
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate a CLI command: SIGTERM is handled like Ctrl-C, a guardian cleans up after
    kill -9, and an interrupted command prints one line (via `fail`) and exits 130 or 143."""

    def decorate(command: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(command)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            handle_sigterm_as_sigint()
            start_guardian()
            try:
                return command(*args, **kwargs)
            except KeyboardInterrupt:
                name = signal.Signals(stop_signal()).name
                message = f"stopped by {name}; the warehouse keeps its last complete version"
                raise fail(message, exit_code()) from None

        return wrapper

    return decorate


def stop_processes(processes: Iterable[psutil.Process], grace: float = GRACE) -> None:
    """SIGTERM each process, wait up to `grace` seconds, SIGKILL what is left."""
    import psutil

    targets = list(processes)
    for process in targets:
        with suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(targets, timeout=grace)
    for process in alive:
        with suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=grace)


def stop_children(grace: float = GRACE, keep: Iterable[int] = ()) -> None:
    """Stop every descendant of this process except its helpers and pids in `keep`."""
    import psutil

    spared = helper_pids() | set(keep)
    children = psutil.Process().children(recursive=True)
    stop_processes([c for c in children if c.pid not in spared], grace)


def marked_processes(marker: str) -> list[psutil.Process]:
    """Every other process whose environment carries `marker` (inherited from its starter)."""
    import psutil

    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        with suppress(psutil.Error):
            if process.environ().get(MARKER_ENV) == marker:
                found.append(process)
    return found


def guard(read_fd: int, marker: str) -> None:
    """The guardian: wait for EOF on the pipe (its starter has ended), then stop what the
    starter left behind. Ignores SIGINT/SIGTERM/SIGHUP so a signal to the whole process group
    cannot end it before the cleanup it is there for."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    named = b""  # NUL-terminated folder paths (`remove_when_gone`)
    while chunk := os.read(read_fd, 65536):
        named += chunk
    for _ in range(3):  # a second pass catches children started by the dying ones
        left = marked_processes(marker)
        if not left:
            break
        stop_processes(left)
    for folder in named.split(b"\0")[:-1]:
        shutil.rmtree(os.fsdecode(folder), ignore_errors=True)


def stop_when_orphaned(parent_pid: int) -> None:
    """If this process's parent is `parent_pid`, stop this process once that parent is gone
    (SIGTERM, so Prefect marks the run crashed and locks are released; SIGKILL after GRACE)."""
    if os.getppid() != parent_pid:
        return

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(ORPHAN_POLL)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(GRACE)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="authorgraph-orphan-watch", daemon=True).start()


def leave(code: object) -> NoReturn:
    """End this process with `code` (a `SystemExit` code: None is 0) after the first two
    steps of CPython's own exit, in its order: `threading._shutdown` (the hooks threads
    register, such as Prefect's and concurrent.futures' drains, then every non-daemon thread
    joined) and every `atexit` hook (Prefect's temporary server, logging, multiprocessing,
    `weakref.finalize`); then stdout and stderr are flushed, and, as CPython does, a failed
    flush (a full disk, a closed pipe) makes the exit code 120, with one line on stderr
    unless the pipe was closed. What it skips is the interpreter tearing down its modules and
    objects: about 0.3 s after `authorgraph run` has loaded Prefect, GX and pandas, which
    nothing waits for. A message (not a plain exit code), or a Python without those two
    steps, exits the normal way."""
    join_threads = getattr(threading, "_shutdown", None)
    run_hooks = getattr(atexit, "_run_exitfuncs", None)
    if (code is not None and not isinstance(code, int)) or not (join_threads and run_hooks):
        raise SystemExit(code)
    join_threads()
    run_hooks()
    status = code or 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception as exc:  # what CPython's exit does with it: status 120
            status = EXIT_OUTPUT
            _say_output_failed(exc)
    os._exit(status)


#: The resource tracker's warnings (`-W` options reach it from `sys.warnoptions`).
QUIET_TRACKER = "ignore::UserWarning:multiprocessing.resource_tracker"


def quiet_resource_tracker() -> None:
    """Keep multiprocessing's resource tracker from printing on the terminal's stderr after a
    command's one line. When a command ends at once (`hard_exit`) and the machine is too
    busy for the exit finalizers' second, the tracker unlinks the semaphores the process
    left (a parse pool's queue locks) itself, and said so with "leaked semaphore objects"
    warnings: seen with six test workers on two cores. The tracker still cleans up; only its
    warnings go. It is started with the interpreter's `-W` options, read from
    `sys.warnoptions` when it starts: call this before any pool exists."""
    if QUIET_TRACKER not in sys.warnoptions:
        sys.warnoptions.append(QUIET_TRACKER)


def hard_exit(code: int, timeout: float = 1.0) -> NoReturn:
    """`os._exit(code)` for a command whose main thread will not finish in time (it still
    talks to a Prefect server that has gone), after the one step of exit that must not be
    skipped: multiprocessing's exit finalizers, which unlink this process's named semaphores
    (a parse pool's queue locks) and tell the resource tracker. Skipped, the tracker unlinks
    them itself when this process is gone and prints a "leaked semaphore objects" warning on
    the terminal's stderr after the command's one line. At most `timeout` seconds, on a
    thread of its own: a finalizer that blocks does not keep the process alive."""
    import multiprocessing.util

    finalizers = threading.Thread(
        target=multiprocessing.util._run_finalizers,  # type: ignore[attr-defined]  # private, stable since 2.6
        args=(0,),
        name="authorgraph-exit-finalizers",
        daemon=True,
    )
    finalizers.start()
    finalizers.join(timeout)
    os._exit(code)


def _say_output_failed(exc: BaseException) -> None:
    """One line on stderr for output that could not be written (none for a closed pipe: its
    reader has gone on purpose, as `| head` does)."""
    if not isinstance(exc, BrokenPipeError):
        with suppress(Exception):
            os.write(2, f"authorgraph: could not write the output: {exc}\n".encode())


def output_lost(exc: OSError) -> NoReturn:
    """A command's output could not be written (a full disk, a closed pipe): one line, exit
    `EXIT_OUTPUT`, and what is left of it dropped, so that the exit does not try it again."""
    _say_output_failed(exc)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115  # the old buffer is never flushed
    raise SystemExit(EXIT_OUTPUT)


if __name__ == "__main__":
    guard(int(sys.argv[1]), sys.argv[2])
