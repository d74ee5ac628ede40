"""Bytes of one author page → its name line and papers (rules B1-B5 of the input contract).

Pure: no paths, no clock, no I/O. A file that breaks a rule raises `PageRejected` with a
reason code, a message a person can act on and, where there is one, the line number (LF, CRLF
and lone CR each end a line). Any bytes either parse or raise `PageRejected`, never another
error; time is linear in the page and peak memory a small multiple of it: every regex here
repeats a single character class, and an incomplete paper's line comes from the split offsets,
never a search. tests/fuzz.py checks all of this against a line-by-line reading of the rules.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from itertools import islice

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
HEADER = ("Goto", "Collaborating Authors")

_BOM = b"\xef\xbb\xbf"
# A page with nothing but the blank-line whitespace of B2 (space, tab, U+00A0) and line ends
# (after one BOM) is empty. A single byte class: a repeated group `(?:...|...)*` makes the regex
# engine keep state per repetition (1.5 GB for a 16 MiB page); the pairs are checked after.
_BLANK_BYTES = re.compile(rb"[ \t\r\n\xc2\xa0]*\Z")
# C0 control bytes other than tab, LF and CR: one regex, and the same set as single bytes for
# the quick check (one memchr scan per byte value runs far faster than a regex over the page).
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_BYTE_VALUES = tuple(bytes([b]) for b in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)))
# Every character str.isspace() accepts besides the plain space, LF and CR (CR is gone by now).
ODD_WHITESPACE = (
    "\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_ODD_WHITESPACE = re.compile(f"[{ODD_WHITESPACE}]")
# The characters of combining class 0 that decompose to combining marks (Tibetan vowel signs).
_MARKS_WITH_CLASS_0 = "\u0f73\u0f75\u0f81"
_SPACE_RUN = re.compile(" {2,}")
# A space at the start or end of a line (after runs were folded to one space).
_LINE_EDGES = re.compile(r" ?\n ?")


class PageRejected(Exception):
    """The page breaks a rule of the input contract; the whole file is rejected."""

    def __init__(self, reason_code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class RawPaper:
    """One paper block: fields after whitespace folding (rule B4)."""

    title: str
    source: str
    abstract: str | None


@dataclass(frozen=True, slots=True)
class AuthorPage:
    """A parsed page: the name line (whitespace collapsed) and its papers in page order."""

    name_line: str
    papers: tuple[RawPaper, ...]


def fold_whitespace(text: str) -> str:
    """Collapse every whitespace run (line breaks included) to one space and trim."""
    return " ".join(text.split())


def check_size(size: int, max_bytes: int) -> None:
    """Raise FILE_TOO_LARGE when a file is over the configured limit."""
    if size > max_bytes:
        raise PageRejected(
            "FILE_TOO_LARGE",
            f"the file is {size:,} bytes, over the {max_bytes:,}-byte limit "
            "(raise it with --max-file-bytes if the page is genuine)",
        )


def decode_page(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Check the bytes (B1) and return NFC text with LF line endings, or raise PageRejected.

    Checks run in the contract's order: FILE_TOO_LARGE (size alone), EMPTY_FILE,
    BINARY_CONTENT, INVALID_UTF8; the first rule broken is the one reported.
    """
    check_size(len(data), max_bytes)
    skip = len(_BOM) if data.startswith(_BOM) else 0
    body = data[skip:] if skip else data
    if _BLANK_BYTES.match(body) and not body.replace(b"\xc2\xa0", b"").strip(b" \t\r\n"):
        raise PageRejected("EMPTY_FILE", "the file is empty (no text at all); re-export the page")
    quick = any(value in body for value in _CONTROL_BYTE_VALUES)
    bad = _CONTROL_BYTES.search(body) if quick else None
    if bad is not None:
        offset = bad.start() + skip
        raise PageRejected(
            "BINARY_CONTENT",
            f"control byte 0x{bad.group()[0]:02x} at byte offset {offset}: not a text page",
            line=_byte_line(data, offset),
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
        raise PageRejected(
            "INVALID_UTF8",
            f"invalid UTF-8 at byte offset {offset} (byte 0x{body[exc.start]:02x}); "
            "save the page as UTF-8",
            line=_byte_line(data, offset),
        ) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _nfc(text)


def _nfc(text: str) -> str:
    """NFC in linear time. CPython puts combining marks in canonical order by insertion sort,
    quadratic in a run's length (hours for a 16 MiB run of alternating marks); runs longer than
    any script uses (30, as in UAX #15's stream-safe format) are ordered here first, so its
    pass has nothing to swap. The result is the same text `unicodedata.normalize` gives."""
    if unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", _long_mark_run().sub(_order_marks, text))


@functools.cache
def _long_mark_run() -> re.Pattern[str]:
    """31+ characters in a row that decompose to combining marks only (built on first use)."""
    marks = "".join(c for c in map(chr, range(0x110000)) if unicodedata.combining(c))
    return re.compile(f"[{marks}{_MARKS_WITH_CLASS_0}]{{31,}}")


def _order_marks(match: re.Match[str]) -> str:
    """A run of combining marks, decomposed and stably sorted by combining class (canonical
    order); str.translate keeps it linear and free of per-character objects."""
    run = match.group()
    chars = set(run)
    decompose = {ord(c): d for c in chars if (d := unicodedata.normalize("NFD", c)) != c}
    if decompose:
        run = run.translate(decompose)
        chars = set(run)
    by_class: dict[int, list[str]] = {}
    for c in chars:
        by_class.setdefault(unicodedata.combining(c), []).append(c)
    parts = []
    for ccc in sorted(by_class):
        others = {ord(c): None for k, group in by_class.items() if k != ccc for c in group}
        parts.append(run.translate(others))
    return "".join(parts)


def _byte_line(data: bytes, offset: int) -> int:
    """The line a byte offset is on, counting LF, CRLF and lone CR as line ends (as B1 does)."""
    lone_cr = data.count(b"\r", 0, offset) - data.count(b"\r\n", 0, offset)
    return data.count(b"\n", 0, offset) + lone_cr + 1


def _line_no(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _split_header(text: str) -> tuple[str, int]:
    """Return the name line and the offset where the papers start (B3)."""
    found: list[str] = []
    pos = 0
    while len(found) < 3 and pos <= len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end].strip()
        if line:
            if len(found) < 2 and line != HEADER[len(found)]:
                raise PageRejected(
                    "MISSING_HEADER",
                    f"expected {HEADER[len(found)]!r} as non-blank line {len(found) + 1}, "
                    f"found {line[:60]!r}: not an author page",
                    line=_line_no(text, pos),
                )
            found.append(line)
        pos = end + 1
    if len(found) < 2:
        raise PageRejected(
            "MISSING_HEADER",
            f"the header {' / '.join(HEADER)!r} is incomplete: not an author page",
        )
    if len(found) < 3:
        raise PageRejected(
            "MISSING_AUTHOR_NAME",
            "no author name after the 'Collaborating Authors' header",
            line=_line_no(text, len(text)),
        )
    return fold_whitespace(found[2]), min(pos, len(text))


def has_odd_whitespace(text: str) -> bool:
    """True if `text` holds whitespace other than single spaces and LF (plain substring scans,
    which run far faster than a Unicode character-class regex)."""
    return "  " in text or any(c in text for c in ODD_WHITESPACE)


def _fold_body(body: str) -> str:
    """B2/B4 on the whole body at once: whitespace runs become one space, lines are trimmed,
    so whitespace-only lines become empty. Newlines are kept, so line numbers still hold."""
    if has_odd_whitespace(body):
        body = _SPACE_RUN.sub(" ", _ODD_WHITESPACE.sub(" ", body))
    if " \n" in body or "\n " in body:
        body = _LINE_EDGES.sub("\n", body)
    return body


def _parse_block(block: str) -> RawPaper | None:
    """One paper block: title, source, then abstract paragraphs (B4, B5); None if incomplete."""
    fields = block.split("\n\n")
    if len(fields) < 2:
        return None
    title, source = fields[0].replace("\n", " "), fields[1].replace("\n", " ")
    if len(fields) == 2:
        return RawPaper(title, source, None)
    abstract = "\n\n".join(f.replace("\n", " ") for f in fields[2:])
    return RawPaper(title, source, abstract)


def parse_author_page(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> AuthorPage:
    """Parse one page's bytes into its name line and papers, or raise PageRejected."""
    text = decode_page(data, max_bytes)
    name_line, start = _split_header(text)
    lines_before = text.count("\n", 0, start)
    body = _fold_body(text[start:])
    del text  # the folded body is all that is needed now: one copy of the page fewer in memory
    papers: list[RawPaper] = []
    # Split on two blank lines; longer runs, and the body's own edges, leave newlines (and at
    # the body's two ends, a space) at the pieces' edges: strip them.
    pieces = body.split("\n\n\n")
    for index, piece in enumerate(pieces):
        block = piece.strip(" \n")
        if not block:
            continue
        paper = _parse_block(block)
        if paper is None:
            raise _incomplete(body, pieces, index, lines_before)
        papers.append(paper)
    return AuthorPage(name_line=name_line, papers=tuple(papers))


def _incomplete(body: str, pieces: list[str], index: int, lines_before: int) -> PageRejected:
    """INCOMPLETE_PAPER for `pieces[index]`, naming the paper and the line its title is on.

    The piece's offset in the body is the lengths of the pieces before it plus the separators
    that split removed: linear, and no search that could find a different copy of the text.
    """
    piece = pieces[index]
    offset = sum(len(p) for p in islice(pieces, index)) + 3 * index
    offset += len(piece) - len(piece.lstrip(" \n"))
    block = piece.strip(" \n")
    return PageRejected(
        "INCOMPLETE_PAPER",
        f"paper {block[:80].replace(chr(10), ' ')!r} has a title but no source line: "
        "the file looks truncated; re-export the page",
        line=lines_before + body.count("\n", 0, offset) + 1,
    )


def render_author_page(name_line: str, papers: list[RawPaper] | tuple[RawPaper, ...]) -> str:
    """Render a page in the aggregator's format (the inverse of `parse_author_page`)."""
    parts = [f"Goto\n\nCollaborating Authors\n\n\u00a0{name_line}"]
    for paper in papers:
        fields = [paper.title, paper.source]
        if paper.abstract is not None:
            fields.append(paper.abstract)
        parts.append("\n\n".join(fields))
    return "\n\n\n".join(parts)


__all__ = [
    "DEFAULT_MAX_BYTES",
    "AuthorPage",
    "PageRejected",
    "RawPaper",
    "check_size",
    "decode_page",
    "fold_whitespace",
    "parse_author_page",
    "render_author_page",
]
