"""The warehouse's named errors (a light module: the CLI imports it before anything heavy)."""

from __future__ import annotations


class WarehouseError(Exception):
    """The warehouse could not be read or written."""


class WarehouseUnusable(WarehouseError):
    """The warehouse folder can't be used: a file, read-only, or not ours to write."""


class WarehouseDamaged(WarehouseError):
    """Published files are damaged or missing, so they can't be read or carried over."""


class NoSpaceLeft(WarehouseError):
    """The disk filled up while a run was staging; nothing was published."""


class MemoryLimitReached(NoSpaceLeft):
    """DuckDB needed more than its memory limit to build the tables; nothing was published."""


class StepProcessDied(NoSpaceLeft):
    """A step run in its own process (a large run's build) ended without an answer, most
    often killed for memory; nothing was published (exit 6, like a full disk)."""
