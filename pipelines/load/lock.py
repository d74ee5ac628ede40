"""One writer at a time per warehouse: an advisory `flock` on `<warehouse>/.lock`.

The kernel drops the lock when the holder exits, however it exits (kill -9 included), so a
crashed run never leaves a stale lock behind. The file is opened with O_NOFOLLOW: a `.lock`
planted as a symlink or hard link to another file is refused (UnsafePathError), never written.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from authorgraph.pipelines.load.layout import LOCK_FILE
from authorgraph.pipelines.load.safe_io import UnsafePathError, open_exclusive_file

__all__ = ["LOCK_FILE", "WarehouseBusy", "held_by_another", "writer_lock"]

POLL_SECONDS = 0.2


class WarehouseBusy(Exception):
    """Another run holds the warehouse's writer lock."""

    def __init__(self, warehouse: Path) -> None:
        super().__init__(
            f"another run is publishing to {warehouse}; try again later or pass --wait SECONDS"
        )


def held_by_another(warehouse: Path) -> bool:
    """Whether another process holds the warehouse's writer lock right now: a look before a
    run starts Prefect (a busy warehouse is reported in a moment, not after Prefect's
    temporary server has started: 6-12 s). Only a look: the run still takes the lock, and
    reports a warehouse that became busy since. Takes a shared lock for an instant, which a
    run starting at that very instant would take for another run's: both are runs.
    Nothing is created; a `.lock` that is missing or unsafe to open counts as not held (the
    run's own lock reports the unsafe one)."""
    try:
        fd = open_exclusive_file(warehouse / LOCK_FILE, os.O_RDONLY)
    except (OSError, UnsafePathError):  # missing, a symlink, a FIFO...: the run decides
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # and with it the shared lock
    return False


@contextmanager
def writer_lock(warehouse: Path, timeout: float = 0.0) -> Iterator[None]:
    """Hold the warehouse's writer lock; wait up to `timeout` seconds, then raise WarehouseBusy.

    Raises UnsafePathError when `.lock` is a symlink, a hard link or not a regular file.
    """
    path = warehouse / LOCK_FILE
    fd = open_exclusive_file(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(warehouse) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
