"""What shapes a run's output, as hashes: the code, the suites, the views and the settings.

The parse cache is reused only under the same `parse_key` (parsing and normalizing code, the
file size limit); the "unchanged inputs" shortcut only under the same `output_key` (all of
the code, the suites, the views, the settings that shape the tables). A parser fix therefore
reaches unchanged files on the next run, and raising `--max-file-bytes` re-reads the files
the old limit rejected.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: The folder holding pipelines/, transforms/, expectations/ and warehouse/: the checkout for an
#: editable install, site-packages/authorgraph for a wheel.
ROOT = Path(__file__).resolve().parents[2]
#: Files whose bytes decide how a page becomes rows.
PARSE_SOURCES = ("transforms/*.py", "pipelines/extract/seeds.py", "pipelines/extract/parsing.py")
#: Files whose bytes decide what is validated and published (the parse sources included).
OUTPUT_SOURCES = (
    "transforms/*.py",
    "pipelines/**/*.py",
    "expectations/*.py",
    "expectations/suites/*.json",
    "warehouse/sql/*.sql",
)


@cache
def source_digest(patterns: tuple[str, ...]) -> str:
    """SHA-256 over the names and bytes of the files matching `patterns` (read once)."""
    digest = hashlib.sha256()
    paths = sorted({p for pattern in patterns for p in ROOT.glob(pattern) if p.is_file()})
    for path in paths:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def software_version() -> str:
    """The installed version plus a fingerprint of the code, suites and views that ran."""
    try:
        base = version("authorgraph")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        base = "0+unknown"
    return f"{base}+{source_digest(OUTPUT_SOURCES)[:12]}"


@dataclass(frozen=True, slots=True)
class BuildKeys:
    """The keys a run's cache and shortcut are valid under."""

    parse_key: str
    output_key: str


def build_keys(max_file_bytes: int) -> BuildKeys:
    """The keys for this code and these settings."""
    setting = f"max_file_bytes={max_file_bytes}".encode()
    parse = hashlib.sha256(source_digest(PARSE_SOURCES).encode() + setting).hexdigest()
    output = hashlib.sha256(source_digest(OUTPUT_SOURCES).encode() + setting).hexdigest()
    return BuildKeys(parse, output)
