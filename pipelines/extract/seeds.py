"""Extract: list the seeds folder (rules E1-E6 of the input contract), read, hash and parse.

Which entries are page files is decided here, from the listing alone: nothing is opened
that might hang (FIFOs), and nothing outside the seeds folder is ever read (symlinks out).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authorgraph.transforms.parse import AuthorPage, PageRejected, check_size, parse_author_page

READ_CHUNK = 1 << 20
#: Codes decided from the listing or the open, never from the content: re-checked on every
#: run (a fixed permission or a renamed file loads next time, same size and mtime or not).
AFRESH_CODES = frozenset({"BAD_FILE_NAME", "UNSAFE_LINK", "UNREADABLE_FILE"})
#: Codes whose file is never read whole, so no quarantine copy is kept (E3, E5, E4, E6).
NOT_COPIED_CODES = AFRESH_CODES | {"FILE_TOO_LARGE"}


class SeedsError(Exception):
    """The seeds folder cannot be read."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a file was rejected as a whole: the one shape of a rejection. In the manifest and
    `rejected_files` tables it is the columns `reason_code`, `line` and `message`."""

    reason_code: str
    message: str
    line: int | None = None

    @staticmethod
    def columns_of(rejections: Sequence[Rejection | None]) -> dict[str, list[Any]]:
        """These rejections as table columns, one value each (None: a file not rejected)."""
        return {
            "reason_code": [r.reason_code if r else None for r in rejections],
            "line": [r.line if r else None for r in rejections],
            "message": [r.message if r else None for r in rejections],
        }

    @staticmethod
    def from_row(row: Mapping[str, Any]) -> Rejection | None:
        """The rejection a manifest or `rejected_files` row records, None if it has none."""
        code = row.get("reason_code")
        return Rejection(code, row["message"], row["line"]) if code else None


@dataclass(frozen=True, slots=True)
class RejectedFile:
    """A rejected file as the CLI summary and the run's artifact show it: one `rejected_files`
    row (`from_rows` reads them)."""

    file_name: str
    rejection: Rejection

    @staticmethod
    def from_rows(rows: Iterable[Mapping[str, Any]]) -> list[RejectedFile]:
        found = [(row["file_name"], Rejection.from_row(row)) for row in rows]
        return [RejectedFile(name, r) for name, r in found if r is not None]


@dataclass(frozen=True, slots=True)
class FileRef:
    """A listed page file: its stored name (the lineage key), the folder it was listed in,
    its size and modification time, a rejection already decided from the listing (E3, E5),
    and the path to open when it is not the folder's entry of that name (a symlink's target
    inside the folder, a name stored escaped)."""

    name: str
    folder: str  # one string shared by every file of a listing
    size: int
    mtime_ns: int
    rejection: Rejection | None = None
    target: str | None = None

    @property
    def path(self) -> str:
        """The path to open. Built when asked, not stored: a path a file held 0.13 KB in a
        run's parent (260 MiB at 2M files)."""
        return file_path(self.folder, self.name, self.target)


def file_path(folder: str, name: str, target: str | None) -> str:
    """The path to open for a listed file: its target when it has one (a symlink's target
    inside the folder, a name stored escaped), else the folder's entry of that name."""
    return target if target is not None else os.path.join(folder, name)


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """A listed file, its content hash when known, and whether its cached rows are reused."""

    ref: FileRef
    sha256: str | None
    reuse: bool


@dataclass(frozen=True, slots=True)
class Listing:
    """The page files in code point order of name, and how many entries were skipped (E2)."""

    files: list[FileRef]
    skipped: int


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file after reading and parsing: either a page or a rejection."""

    ref: FileRef
    sha256: str | None  # None: the file was never read (E3-E5)
    page: AuthorPage | None
    rejection: Rejection | None


def escape_file_name(name: str) -> str:
    """A printable, unambiguous text for a name that is not valid UTF-8 or holds a control
    character (E5): `\\xff` for a raw byte, `\\r`, `\\n`, `\\t`, `\\x1b` for controls, `\\\\`
    for a backslash, behind a leading `/`. No real file name holds `/`, so this text can never
    equal the verbatim name of a valid file."""
    raw = os.fsencode(name)
    out = []
    for char in raw.decode("utf-8", errors="surrogateescape"):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char == "\\":
            out.append("\\\\")
        elif char in "\r\n\t":
            out.append({"\r": "\\r", "\n": "\\n", "\t": "\\t"}[char])
        elif _is_control(char):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "/" + "".join(out)


def _is_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code < 0xA0


def bad_name_reason(name: str) -> str | None:
    """Why a listed name breaks E5 (not UTF-8, or a control character), or None."""
    try:
        os.fsencode(name).decode("utf-8")
    except UnicodeDecodeError:
        return "the file name is not valid UTF-8"
    if any(_is_control(c) for c in name):
        return "the file name holds a control character (CR, LF, tab, ...)"
    return None


def _link_target(path: str, root: Path) -> tuple[Path | None, str | None]:
    """Where a symlink leads (E1/E3): (resolved path, None) when it stays inside `root`,
    else (None, why it is unsafe)."""
    try:
        target = Path(os.path.realpath(path, strict=True))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, "the symlink loops"
        return None, "the symlink dangles (its target does not exist)"
    except RuntimeError:  # pragma: no cover - Python < 3.13 reports loops this way
        return None, "the symlink loops"
    if root not in target.parents:
        return None, f"the symlink points outside the seeds folder (to {target})"
    return target, None


def check_seeds(seeds: Path) -> None:
    """A missing seeds folder is reported at once, before anything is created or retried."""
    if not seeds.is_dir():
        raise SeedsError(f"seeds folder not found: {seeds}")


def list_seeds(seeds: Path) -> Listing:
    """List the seeds folder once, not recursively, and sort out its entries by E1-E5.

    Page files and files rejected from the listing come back in code point order of their
    stored names. Directories, FIFOs, sockets and devices are skipped and counted; hidden
    names are skipped silently.
    """
    check_seeds(seeds)
    root = Path(os.path.realpath(seeds))
    folder = os.fspath(seeds)  # what each entry's path starts with
    refs: list[FileRef] = []
    skipped = 0
    for entry in _entries(seeds):
        name = entry.name
        if name.startswith("."):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:  # vanished between listing and stat: nothing to report
            continue
        path, link = entry.path, None
        bad = bad_name_reason(name)
        if bad is not None:
            message = f"{bad}; rename the file (shown here escaped) so it loads"
            rejection = Rejection("BAD_FILE_NAME", message)
            escaped = escape_file_name(name)
            refs.append(FileRef(escaped, folder, info.st_size, info.st_mtime_ns, rejection, path))
            continue
        if stat.S_ISLNK(info.st_mode):
            target, unsafe = _link_target(path, root)
            if target is None:
                message = f"{unsafe}: never read; point it at a file inside the seeds folder"
                rejection = Rejection("UNSAFE_LINK", message)
                refs.append(FileRef(name, folder, info.st_size, info.st_mtime_ns, rejection))
                continue
            try:
                info = target.stat()
            except OSError:
                continue
            link = str(target)
        if not stat.S_ISREG(info.st_mode):
            skipped += 1  # E2: a directory, FIFO, socket or device is never opened
            continue
        refs.append(FileRef(name, folder, info.st_size, info.st_mtime_ns, target=link))
    return Listing(sorted(refs, key=lambda r: r.name), skipped)


def _entries(seeds: Path) -> Iterator[os.DirEntry[str]]:
    """The folder's entries one at a time: a list of them all held 1.4 KB a file at its peak
    (200k files: 270 MiB that a run's parent never gave back), one at a time 0.4 KB."""
    try:
        with os.scandir(seeds) as entries:
            yield from entries
    except OSError as exc:
        raise SeedsError(f"cannot list the seeds folder {seeds}: {exc.strerror}") from None


def _open_regular(path: str | Path) -> int:
    """Open a page file for reading without following a symlink swapped in after listing
    and without blocking on a FIFO; only a regular file is accepted."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "no longer a regular file")
    return fd


def hash_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, streamed in chunks (raises OSError)."""
    digest = hashlib.sha256()
    fd = _open_regular(path)
    try:
        while chunk := os.read(fd, READ_CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def read_limited(path: str | Path, max_bytes: int) -> tuple[bytes | None, str, int]:
    """The file's bytes, SHA-256 and size; the bytes are None when it holds more than
    `max_bytes`: the rest is then hashed as a stream, never held in memory (raises OSError)."""
    digest = hashlib.sha256()
    fd = _open_regular(path)
    try:
        chunks: list[bytes] | None = []
        held = 0
        while chunk := os.read(fd, READ_CHUNK):
            digest.update(chunk)
            held += len(chunk)
            if chunks is not None:
                chunks.append(chunk)
                if held > max_bytes:
                    chunks = None  # grew past the limit after listing: stop holding it
    finally:
        os.close(fd)
    return (None if chunks is None else b"".join(chunks)), digest.hexdigest(), held


def unreadable(exc: OSError) -> Rejection:
    """E4: the file could not be opened or read; the OS error is named."""
    name = errno.errorcode.get(exc.errno or 0, "error")
    return Rejection(
        "UNREADABLE_FILE",
        f"cannot read the file: {exc.strerror or exc} ({name}); fix its permissions or "
        "storage, it is checked again on the next run",
    )


def read_and_parse(planned: PlannedFile, max_bytes: int) -> FileResult:
    """Read one file, hash it and parse it; a broken page becomes a Rejection, not an error.

    A file over `max_bytes` (by its listed size) is never read into memory: its hash is
    streamed once, or taken from `planned` when extract already computed it (E6).
    """
    ref, sha = planned.ref, planned.sha256
    if ref.rejection is not None:
        return FileResult(ref, None, None, ref.rejection)
    try:
        if ref.size > max_bytes:
            sha = sha or hash_file(ref.path)
            check_size(ref.size, max_bytes)
        data, sha, size = read_limited(ref.path, max_bytes)
        check_size(size, max_bytes)  # it may have grown past the limit after listing
        page = parse_author_page(data or b"", max_bytes)
    except OSError as exc:
        return FileResult(ref, None, None, unreadable(exc))
    except PageRejected as exc:
        return FileResult(ref, sha, None, Rejection(exc.reason_code, exc.message, exc.line))
    return FileResult(ref, sha, page, None)
