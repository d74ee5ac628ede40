"""Settings, resolved once at the top (CLI flags over `AUTHORGRAPH_*` env over defaults)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from authorgraph.pipelines.load.layout import (
    DATA_DOCS_DIR,
    DUCKDB_FILE,
    QUARANTINE_DIR,
    STAGING_DIR,
)
from authorgraph.transforms.parse import DEFAULT_MAX_BYTES

ENV_PREFIX = "AUTHORGRAPH_"

# Quiet, offline defaults for the libraries; set before Prefect or GX are imported.
LIBRARY_ENV_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # Prefect's own logs go to its API (the UI shows them); its console handler stays quiet
    # so the CLI prints a short summary and one-line errors, never an engine traceback.
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "DO_NOT_TRACK": "1",
}


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def limit_bytes(text: str) -> int:
    """A memory limit such as `512MB` or `2GiB` in bytes (ValueError if it isn't one)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if match is None or match.group(2).upper() not in _UNITS:
        raise ValueError(f"not a memory size: {text!r} (write e.g. 512MB or 2GB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


class ConfigError(Exception):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, passed down explicitly."""

    seeds: Path
    warehouse: Path
    max_file_bytes: int = DEFAULT_MAX_BYTES
    strict: bool = False
    full_refresh: bool = False  # ignore the manifest and parse cache; rebuild everything
    full_hash: bool = False  # hash every file even when its size and mtime are unchanged
    wait_seconds: float = 0.0  # how long to wait for another run's writer lock
    workers: int = 1  # processes parsing file batches
    batch_files: int = 500  # files per parse batch (bounds memory)
    memory_limit: str = "512MB"  # DuckDB's limit while building tables; it spills beyond it
    runner: str = "pool"  # pool: a process pool inside the transform task; else parse tasks
    fault: str | None = None  # testing hook (stages.fault_point): "<point>=<action>"

    @property
    def duckdb_path(self) -> Path:
        """The published DuckDB file."""
        return self.warehouse / DUCKDB_FILE

    @property
    def data_docs_dir(self) -> Path:
        """The Great Expectations Data Docs site."""
        return self.warehouse / DATA_DOCS_DIR

    @property
    def quarantine_dir(self) -> Path:
        """Where rejected input files are copied."""
        return self.warehouse / QUARANTINE_DIR

    @property
    def staging_dir(self) -> Path:
        """Where a run builds its tables before publishing them."""
        return self.warehouse / STAGING_DIR


def quiet_libraries(
    environ: MutableMapping[str, str] | None = None, override: bool = False
) -> None:
    """Turn Prefect and GX telemetry off and logs down in `environ` (default: os.environ),
    unless the user set them; `override` sets them whatever they were (tests, benchmarks).
    The one place these defaults are applied: the CLI, the local server, tests and bench."""
    target = os.environ if environ is None else environ
    for key, value in LIBRARY_ENV_DEFAULTS.items():
        if override:
            target[key] = value
        else:
            target.setdefault(key, value)


def resolve_settings(
    seeds: str | Path | None = None,
    warehouse: str | Path | None = None,
    max_file_bytes: int | None = None,
    strict: bool | None = None,
    environ: Mapping[str, str] | None = None,
    **options: object,
) -> Settings:
    """Build Settings from explicit values, then `AUTHORGRAPH_*` variables, then defaults."""
    env = os.environ if environ is None else environ

    def pick(value: object, name: str, default: str) -> str:
        return str(value) if value is not None else env.get(ENV_PREFIX + name, default)

    raw_max = pick(max_file_bytes, "MAX_FILE_BYTES", str(DEFAULT_MAX_BYTES))
    try:
        max_bytes = int(raw_max)
    except ValueError:
        raise ConfigError(
            f"{ENV_PREFIX}MAX_FILE_BYTES must be a whole number, not {raw_max!r}"
        ) from None
    if max_bytes <= 0:
        raise ConfigError(f"the file size limit must be positive, not {max_bytes}")
    strict_value = strict
    if strict_value is None:
        strict_value = env.get(ENV_PREFIX + "STRICT", "").lower() in {"1", "true", "yes"}
    workers = _positive_int(pick(options.pop("workers", None), "WORKERS", "0"), "workers", 0)
    if workers == 0:
        workers = default_workers()
    memory_limit = pick(options.pop("memory_limit", None), "MEMORY_LIMIT", "512MB")
    try:
        if limit_bytes(memory_limit) < 16 * 2**20:
            raise ConfigError(f"the memory limit must be at least 16MB, not {memory_limit}")
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}MEMORY_LIMIT: {exc}") from None
    given = {k: v for k, v in options.items() if v is not None}
    return Settings(
        seeds=Path(pick(seeds, "SEEDS", "seeds")),
        memory_limit=memory_limit,
        warehouse=Path(pick(warehouse, "WAREHOUSE", "warehouse")),
        max_file_bytes=max_bytes,
        strict=strict_value,
        workers=workers,
        fault=env.get(ENV_PREFIX + "FAULT") or None,
        **given,  # type: ignore[arg-type]  # Settings fields by name; it rejects others
    )


def default_workers() -> int:
    """Parse with every core this process may use."""
    return max(len(os.sched_getaffinity(0)), 1)


def _positive_int(raw: str, name: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value
