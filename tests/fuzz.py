"""Fuzzing the page parser: seeded generators, an independent line-by-line reference reader of
the input contract, and the invariants every input must keep.

`tests/test_fuzz.py` runs a few thousand cases in the suite; `make fuzz` runs the same
generators at 100k+ cases:

    python -m tests.fuzz --cases 100000 [--seed 0]

Every input must either parse or raise `PageRejected` with a known reason code and, when it
names a line, a line of the input; parsing twice gives equal results; the parser agrees with
`reference_parse` (code and line, or the same page); and render → parse round-trips.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from authorgraph.transforms.parse import (
    DEFAULT_MAX_BYTES,
    HEADER,
    AuthorPage,
    PageRejected,
    RawPaper,
    fold_whitespace,
    parse_author_page,
    render_author_page,
)
from authorgraph.transforms.schema import REASON_CODES

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
BOM = b"\xef\xbb\xbf"

#: What the mutators insert: controls, line ends, Unicode whitespace, BOM, zero-width characters,
#: combining marks.
ODDITIES = (
    "\x00",
    "\r",
    "\r\n",
    "\n",
    "\n\n",
    "\n\n\n",
    "\t",
    " ",
    "\u00a0",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u3000",
    "\x85",
    "\u0301",
    "\u0301\u0316" * 20,  # a long run of combining marks in non-canonical order
    "\u0f73\u0344\u0323" * 11,
)
#: Whitespace that B2/B4 fold (inside a line) and that may pad a line or a blank line.
PADDING = (" ", "\t", "\u00a0", "\u3000", "\u2028", "  ", " \t\u00a0")
#: Words for structured pages: ASCII, accents (composed and not), CJK, RTL, emoji, LaTeX,
#: zero-width characters and a BOM inside the text (content, not whitespace).
WORDS = (
    "Deep",
    "learning",
    "Gemma",
    "3",
    "Synth$^2$:",
    "\\emph{x}",
    "&amp;",
    "<b>VLMs</b>",
    "Caf\u00e9",
    "Cafe\u0301",
    "\u5f20\u4f1f",
    "\u0645\u0631\u062d\u0628\u0627",
    "\U0001f600",
    "zero\u200bwidth",
    "join\u200d\u200cer",
    "b\ufeffom",
    "Goto",
    "Collaborating",
    "Authors",
    "arXiv.org",
    "'; DROP TABLE papers; --",
    "a,b",
    "\u00c5ngstr\u00f6m",
    "A\u030a",
    "e" + "\u0316\u0301" * 17,
)


@dataclass(frozen=True)
class Rejection:
    """What the reference reader decides for a bad page: the reason code and the line."""

    reason_code: str
    line: int | None


# ---------------------------------------------------------------------------------------------
# The reference reader: the contract read line by line, written for clarity, not speed.


def _line_of_offset(data: bytes, offset: int) -> int:
    """Line of a byte offset: LF, CRLF and lone CR each end a line (B1)."""
    prefix = data[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return prefix.count(b"\n") + 1


def reference_parse(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> AuthorPage | Rejection:
    """Read a page by the contract's rules (B1-B5, "Bad files"), one line at a time."""
    if len(data) > max_bytes:
        return Rejection("FILE_TOO_LARGE", None)
    skip = 3 if data.startswith(BOM) else 0
    body = data[skip:]
    at = 0
    while at < len(body):
        if body[at] in b" \t\r\n":
            at += 1
        elif body[at : at + 2] == b"\xc2\xa0":
            at += 2
        else:
            break
    if at == len(body):
        return Rejection("EMPTY_FILE", None)
    for i, byte in enumerate(body):
        if byte < 0x20 and byte not in (0x09, 0x0A, 0x0D):
            return Rejection("BINARY_CONTENT", _line_of_offset(data, i + skip))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("INVALID_UTF8", _line_of_offset(data, exc.start + skip))
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = text.split("\n")
    nonblank = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    for position, expected in enumerate(HEADER):
        if len(nonblank) <= position:
            return Rejection("MISSING_HEADER", None)
        if nonblank[position][1] != expected:
            return Rejection("MISSING_HEADER", nonblank[position][0])
    if len(nonblank) < 3:
        return Rejection("MISSING_AUTHOR_NAME", len(lines))
    name_number, name = nonblank[2]
    blocks: list[tuple[int, list[list[str]]]] = []  # (first line, fields of soft-wrapped lines)
    blanks = 0
    for number in range(name_number + 1, len(lines) + 1):
        line = fold_whitespace(lines[number - 1])
        if not line:
            blanks += 1
            continue
        if not blocks or blanks >= 2:
            blocks.append((number, [[line]]))
        elif blanks == 1:
            blocks[-1][1].append([line])
        else:
            blocks[-1][1][-1].append(line)
        blanks = 0
    papers = []
    for first_line, fields in blocks:
        if len(fields) < 2:
            return Rejection("INCOMPLETE_PAPER", first_line)
        joined = [" ".join(field) for field in fields]
        abstract = "\n\n".join(joined[2:]) or None
        papers.append(RawPaper(joined[0], joined[1], abstract))
    return AuthorPage(fold_whitespace(name), tuple(papers))


# ---------------------------------------------------------------------------------------------
# Generators: each takes a seeded Random and returns (page bytes, what the page must give or
# None when only the reference reader knows).

Expected = AuthorPage | Rejection | None


def seed_pages() -> list[bytes]:
    """The real pages in seeds/, in file-name order."""
    return [path.read_bytes() for path in sorted(SEEDS.glob("*.txt"))]


def random_bytes(rng: random.Random) -> tuple[bytes, Expected]:
    """Random bytes, sometimes after a valid header (so the later checks get reached)."""
    size = rng.choice((0, 1, 2, 3, 8, 64, 512))
    alphabet = rng.choice((range(256), range(0x20, 0x7F), b" \t\r\n\xc2\xa0Ga,"))
    noise = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, size)))
    prefix = rng.choice((b"", b"", BOM, b"Goto\n\nCollaborating Authors\n\n\xc2\xa0A, B\n\n\n"))
    return prefix + noise, None


def mutate_seed(rng: random.Random, seeds: list[bytes]) -> tuple[bytes, Expected]:
    """A real page with 1-4 mutations: byte flips, inserted oddities, cuts, duplicated chunks."""
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(data) + 1)
        kind = rng.randrange(6)
        if kind == 0 and data:
            data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data[at:at] = rng.choice(ODDITIES).encode()
        elif kind == 2:
            del data[at:]
        elif kind == 3:
            del data[at : at + rng.randint(1, 200)]
        elif kind == 4:
            chunk = data[at : at + rng.randint(1, 300)]
            data[at:at] = chunk
        else:
            data[at:at] = rng.choice(PADDING).encode() * rng.randint(1, 3)
    return bytes(data), None


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, words)))


def _odd_field(rng: random.Random, text: str, newline: str | None) -> str:
    """Pad a field with whitespace oddities and (given a newline) soft wraps that B4 folds."""
    between: tuple[str, ...] = (" ", " ", "\t", "\u00a0", "  ", "\u2028", "\u3000")
    if newline is not None:
        between += (newline, f" {newline}\t", f"\u00a0{newline}")
    out = rng.choice(("", "", *PADDING))
    for i, word in enumerate(text.split(" ")):
        out += rng.choice(between) + word if i else word
    return out + rng.choice(("", "", *PADDING))


def _blank_lines(rng: random.Random, count: int, newline: str) -> str:
    """`count` blank lines, some holding only whitespace, ending the previous line first."""
    return newline + "".join(rng.choice(("", "", *PADDING)) + newline for _ in range(count))


def structured_page(rng: random.Random) -> tuple[bytes, Expected]:
    """A generated page in any whitespace arrangement, with its expected result: the page, or
    INCOMPLETE_PAPER on the line of the one paper left without a source (maybe the last)."""
    newline = rng.choice(("\n", "\n", "\r\n", "\r"))
    name = _text(rng, 4)
    papers = []
    for _ in range(rng.randint(0, 6)):
        paragraphs = [_text(rng, 12) for _ in range(rng.randint(0, 3))]
        papers.append((_text(rng, 8), _text(rng, 4), paragraphs))
    truncated = rng.randrange(len(papers)) if papers and rng.random() < 0.4 else None
    out = rng.choice(("", BOM.decode(), "\n", newline * 2))
    out += f"Goto{_blank_lines(rng, rng.randint(0, 2), newline)}Collaborating Authors"
    out += _blank_lines(rng, rng.randint(0, 2), newline)
    out += rng.choice(("\u00a0", " ", "", "\t")) + _odd_field(rng, name, None)
    expected_papers = []
    incomplete_line = None
    for index, (title, source, paragraphs) in enumerate(papers):
        gap = rng.randint(0 if index == 0 else 2, 5)
        out += _blank_lines(rng, gap, newline) + rng.choice(("", "", *PADDING))
        if index == truncated:
            incomplete_line = out.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
            out += _odd_field(rng, title, newline)
            if index == len(papers) - 1:
                out += rng.choice(("", newline, " ", "\t", "\u00a0", f"{newline} {newline}\t"))
            continue
        fields = [title, source, *paragraphs]
        out += _blank_lines(rng, 1, newline).join(
            _odd_field(rng, field, newline) for field in fields
        )
        abstract = "\n\n".join(paragraphs) or None
        expected_papers.append(RawPaper(title, source, abstract))
    out += rng.choice(("", "", newline, newline * 4, " \t", "\u00a0" + newline))
    data = out.encode("utf-8")
    if incomplete_line is not None:
        return data, Rejection("INCOMPLETE_PAPER", incomplete_line)
    normal = [
        RawPaper(_normal(p.title), _normal(p.source), p.abstract and _normal_abstract(p.abstract))
        for p in expected_papers
    ]
    return data, AuthorPage(_normal(name), tuple(normal))


def _normal(text: str) -> str:
    return fold_whitespace(unicodedata.normalize("NFC", text))


def _normal_abstract(text: str) -> str:
    return "\n\n".join(_normal(p) for p in text.split("\n\n"))


def truncations(seed: bytes) -> Iterator[bytes]:
    """The page cut at every byte offset, from empty to whole."""
    for end in range(len(seed) + 1):
        yield seed[:end]


# ---------------------------------------------------------------------------------------------
# The invariants.


def _outcome(data: bytes, max_bytes: int) -> AuthorPage | Rejection:
    try:
        return parse_author_page(data, max_bytes)
    except PageRejected as error:
        return Rejection(error.reason_code, error.line)


def line_count(data: bytes) -> int:
    """Lines in the input as B1 reads them (LF, CRLF and lone CR end a line)."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1


def check(data: bytes, expected: Expected = None, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Check every invariant on one input; return its outcome's code ("OK" if it parsed)."""
    first = _outcome(data, max_bytes)
    assert _outcome(data, max_bytes) == first, "parsing the same bytes twice differed"
    if isinstance(first, Rejection):
        assert first.reason_code in REASON_CODES, first
        assert first.line is None or 1 <= first.line <= line_count(data), first
    reference = reference_parse(data, max_bytes)
    assert first == reference, f"parser {first!r} != reference {reference!r}"
    if expected is not None:
        assert first == expected, f"parser {first!r} != expected {expected!r}"
    if isinstance(first, AuthorPage):
        rendered = render_author_page(first.name_line, first.papers).encode("utf-8")
        assert parse_author_page(rendered) == first, "parse(render(parse(x))) != parse(x)"
        return "OK"
    return first.reason_code


GENERATORS: dict[str, Callable[[random.Random, list[bytes]], tuple[bytes, Expected]]] = {
    "random_bytes": lambda rng, seeds: random_bytes(rng),
    "mutated_seed": mutate_seed,
    "structured": lambda rng, seeds: structured_page(rng),
}


def run(cases: int, seed: int = 0) -> Counter[str]:
    """Run `cases` generated cases (a third per generator) plus every truncation of the smallest
    seed page; return how often each outcome occurred. Raises AssertionError on a failure,
    naming the generator, the case number and the input."""
    seeds = seed_pages()
    outcomes: Counter[str] = Counter()
    smallest = min(seeds, key=len)
    for data in truncations(smallest):
        outcomes["truncation:" + _checked("truncation", 0, data, None)] += 1
    names = sorted(GENERATORS)
    for case in range(cases):
        name = names[case % len(names)]
        rng = random.Random(f"{seed}:{case}")
        data, expected = GENERATORS[name](rng, seeds)
        outcomes[f"{name}:" + _checked(name, case, data, expected)] += 1
    return outcomes


def _checked(name: str, case: int, data: bytes, expected: Expected) -> str:
    try:
        return check(data, expected)
    except AssertionError as error:
        raise AssertionError(f"{name} case {case}: {error}\ninput: {data[:2000]!r}") from None


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.fuzz --cases N`: run the fuzz cases and print the outcome counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        outcomes = run(args.cases, args.seed)
    except AssertionError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    for outcome, count in sorted(outcomes.items()):
        print(f"{count:>8} {outcome}")
    total = sum(outcomes.values())
    print(f"{total} cases, no failures, in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
