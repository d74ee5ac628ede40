"""Checks on the warehouse folder that need no database: is it a folder we may write?"""

from __future__ import annotations

import os
from pathlib import Path

from authorgraph.pipelines.load.errors import WarehouseUnusable
from authorgraph.pipelines.load.layout import DATA_DOCS_DIR, LOCK_FILE
from authorgraph.pipelines.load.safe_io import UnsafePathError


def owner_note(path: Path) -> str:
    """' (owned by uid N)' when another user owns `path`, else ''."""
    try:
        uid = path.lstat().st_uid
    except OSError:
        return ""
    return f" (owned by uid {uid})" if uid != os.geteuid() else ""


def check_warehouse(warehouse: Path) -> None:
    """Say plainly, before any work, why an existing warehouse folder can't be written:
    a file in its place, a read-only folder, or a lock file this user can't open."""
    if not warehouse.exists():
        return
    if not warehouse.is_dir():
        raise WarehouseUnusable(f"the warehouse path {warehouse} is a file, not a folder")
    if not os.access(warehouse, os.W_OK | os.X_OK):
        raise WarehouseUnusable(f"the warehouse {warehouse} is read-only for this user")
    lock = warehouse / LOCK_FILE
    if lock.is_symlink():
        raise UnsafePathError(f"refusing to write {lock}: it is a symlink")
    if lock.exists() and not os.access(lock, os.W_OK):
        raise WarehouseUnusable(
            f"cannot take the writer lock {lock}{owner_note(lock)}: permission denied"
        )
    check_data_docs(warehouse / DATA_DOCS_DIR)


def check_data_docs(folder: Path) -> None:
    """Data Docs are rebuilt on every validation: say at once when they can't be written
    (Great Expectations would print a traceback per page instead)."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WarehouseUnusable(f"cannot write Data Docs into {folder}: read-only for this user")


__all__ = ["DATA_DOCS_DIR", "check_data_docs", "check_warehouse", "owner_note"]
