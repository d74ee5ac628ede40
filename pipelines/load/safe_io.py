"""Writing inside a warehouse folder without following links someone planted there.

Anyone who can write to the warehouse folder could put a symlink (or a hard link) where the
pipeline writes: `.lock -> ~/.bashrc` would truncate that file. Every write here either

- opens the name with O_NOFOLLOW and refuses what is not a plain, singly-linked file
  (`open_exclusive_file`, for files written in place: the lock, the run log), or
- writes a fresh temporary file (random name, O_CREAT|O_EXCL|O_NOFOLLOW) and renames it over
  the name (`atomic_write`, `atomic_copy`): a rename replaces a planted link, never its target.

Folders the pipeline owns (`quarantine/`, `data_docs/`) that turn out to be symlinks are
replaced by real folders (`real_dir`); the folder they pointed at is left untouched.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from authorgraph.pipelines.load.errors import WarehouseUnusable

# Group and world may read what the pipeline writes, never write it.
SAFE_UMASK = 0o022


class UnsafePathError(WarehouseUnusable):
    """A path the pipeline writes is a symlink, hard link or special file: refused."""


def restrict_umask() -> int:
    """Make this process create nothing group- or world-writable, whatever the user's umask.

    Keeps any stricter bits the user has (umask 077 stays 077); returns the new umask.
    """
    mask = os.umask(0) | SAFE_UMASK
    os.umask(mask)
    return mask


def open_exclusive_file(path: Path, flags: int, mode: int = 0o644) -> int:
    """os.open a file written in place, refusing a symlink, hard link or non-regular file.

    Returns the descriptor. O_NOFOLLOW makes the open fail (ELOOP) when the last component is a
    symlink, dangling or not; the fstat check refuses FIFOs, devices and folders, and a file with
    a second hard link (writing to it would change that other name's contents too).
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(f"refusing to write {path}: it is a symlink") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(f"refusing to write {path}: it is not a regular file")
        if info.st_nlink != 1:
            raise UnsafePathError(f"refusing to write {path}: it has {info.st_nlink} hard links")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _temp_beside(path: Path) -> tuple[Path, int]:
    """A new file next to `path` with an unguessable name, created exclusively."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue


def _write_then_rename(path: Path, fill: Callable[[BinaryIO], object]) -> Path:
    tmp, fd = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
        os.replace(tmp, path)  # replaces a planted symlink itself, not what it points to
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a fresh temporary file and a rename."""
    return _write_then_rename(path, lambda handle: handle.write(data))


def atomic_copy(source: Path, path: Path) -> Path:
    """Copy `source`'s bytes to `path` through a fresh temporary file and a rename."""

    def fill(handle: BinaryIO) -> None:
        with source.open("rb") as src:
            shutil.copyfileobj(src, handle)

    return _write_then_rename(path, fill)


def is_temp_name(name: str) -> bool:
    """True for a name `atomic_write`/`atomic_copy` uses for its temporary files."""
    return name.startswith(".") and name.endswith(".tmp")


def real_dir(path: Path) -> Path:
    """Make sure `path` is a real folder, not a symlink: a planted link (or file) is removed,
    never followed, and a folder is created in its place. Returns `path`."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path
