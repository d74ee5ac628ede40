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
from authorgraph.pipelines.load.safe_io import open_exclusive_file

__all__ = ["LOCK_FILE", "writer_lock"]

POLL_SECONDS = 0.2


class WarehouseBusy(Exception):
    """Another run holds the warehouse's writer lock."""


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
                    raise WarehouseBusy(
                        f"another run is publishing to {warehouse}; "
                        "try again later or pass --wait SECONDS"
                    ) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
