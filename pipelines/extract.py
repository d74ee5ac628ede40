"""Extract: find the page files, read and hash them, and parse each one (decode + B1-B5)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from transforms.parse import AuthorPage, PageRejected, check_size, parse_author_page

READ_CHUNK = 1 << 20


class SeedsError(Exception):
    """The seeds folder cannot be read."""


@dataclass(frozen=True, slots=True)
class FileRef:
    """A discovered page file: its name (lineage key), path, size and modification time."""

    name: str
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a file was rejected as a whole."""

    reason_code: str
    message: str
    line: int | None


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file after reading and parsing: either a page or a rejection."""

    ref: FileRef
    sha256: str
    page: AuthorPage | None
    rejection: Rejection | None


def discover_files(seeds: Path) -> list[FileRef]:
    """List the regular, non-hidden files directly in `seeds`, in code point order of name."""
    if not seeds.is_dir():
        raise SeedsError(f"seeds folder not found: {seeds}")
    refs = []
    with os.scandir(seeds) as entries:  # DirEntry caches the file type: one stat per file
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            stat = entry.stat()
            refs.append(FileRef(entry.name, Path(entry.path), stat.st_size, stat.st_mtime_ns))
    return sorted(refs, key=lambda r: r.name)


def hash_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(READ_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_and_parse(ref: FileRef, max_bytes: int) -> FileResult:
    """Read one file, hash it and parse it; a broken page becomes a Rejection, not an error."""
    try:
        if ref.size > max_bytes:  # never load an oversized file: hash it as a stream
            sha = hash_file(ref.path)
            check_size(ref.size, max_bytes)
        data = ref.path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        page = parse_author_page(data, max_bytes)
    except PageRejected as exc:
        return FileResult(ref, sha, None, Rejection(exc.reason_code, exc.message, exc.line))
    return FileResult(ref, sha, page, None)
