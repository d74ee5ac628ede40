"""One test per reading rule of the input contract (B1-B6), on literal strings."""

from __future__ import annotations

import unicodedata

import pytest

from authorgraph.transforms.parse import (
    DEFAULT_MAX_BYTES,
    AuthorPage,
    PageRejected,
    RawPaper,
    check_size,
    parse_author_page,
)

HEADER = "Goto\n\nCollaborating Authors\n\n\u00a0"
PAPER = "A Title\n\narXiv.org Machine Learning\n\nAn abstract."


def parse(text: str) -> AuthorPage:
    return parse_author_page(text.encode("utf-8"))


def rejection(data: bytes, **kwargs: int) -> PageRejected:
    with pytest.raises(PageRejected) as info:
        parse_author_page(data, **kwargs)
    return info.value


def test_real_shape_parses() -> None:
    page = parse(HEADER + "Pathak, Shreya\n\n\n" + PAPER + "\n\n\n" + PAPER.replace("A Title", "B"))
    assert page.name_line == "Pathak, Shreya"
    assert page.papers == (
        RawPaper("A Title", "arXiv.org Machine Learning", "An abstract."),
        RawPaper("B", "arXiv.org Machine Learning", "An abstract."),
    )


# B1 bytes
def test_b1_bom_dropped_once() -> None:
    page = parse_author_page(b"\xef\xbb\xbf" + (HEADER + "A, B\n\n\n" + PAPER).encode())
    assert page.name_line == "A, B"


def test_b1_second_bom_is_content() -> None:
    data = b"\xef\xbb\xbf\xef\xbb\xbf" + (HEADER + "A, B").encode()
    assert rejection(data).reason_code == "MISSING_HEADER"


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_b1_crlf_and_lone_cr_become_lf(newline: str) -> None:
    text = (HEADER + "A, B\n\n\nT1\nwrapped\n\nSrc\n\nPara 1\n\nPara 2").replace("\n", newline)
    page = parse(text)
    assert page.papers == (RawPaper("T1 wrapped", "Src", "Para 1\n\nPara 2"),)


def test_b1_text_is_nfc() -> None:
    decomposed = "Pinto, Andre\u0301"
    page = parse(HEADER + decomposed + "\n\n\nCafe\u0301 Models\n\nSrc")
    assert page.name_line == "Pinto, Andr\u00e9"
    assert page.papers[0].title == "Caf\u00e9 Models"


def test_b1_no_encoding_is_guessed() -> None:
    data = (HEADER + "Caf").encode() + b"\xe9, Zo\n\n\nT\n\nS"
    error = rejection(data)
    assert error.reason_code == "INVALID_UTF8"
    assert "byte offset 34" in error.message
    assert error.line == 5


# B2 blank lines
def test_b2_whitespace_only_lines_are_blank() -> None:
    text = HEADER + "A, B\n \t\n\u00a0\nT\n\nS\n\nAbs\n  \n\t\n" + PAPER
    page = parse(text)
    assert [p.title for p in page.papers] == ["T", "A Title"]


def test_b2_trailing_whitespace_and_blank_lines_create_nothing() -> None:
    page = parse(HEADER + "A, B\n\n\n" + PAPER + "   \n\n\n\n \n\t")
    assert len(page.papers) == 1
    assert page.papers[0].abstract == "An abstract."


# B3 header
@pytest.mark.parametrize("prefix", ["\u00a0", " ", ""])
def test_b3_name_may_follow_nbsp_space_or_nothing(prefix: str) -> None:
    page = parse("Goto\n\nCollaborating Authors\n\n" + prefix + "Jerome, Sammy\n\n\n" + PAPER)
    assert page.name_line == "Jerome, Sammy"


def test_b3_header_blank_lines_are_flexible() -> None:
    page = parse("\n\nGoto\nCollaborating Authors\n\n\n\nJerome, Sammy\n" + PAPER)
    assert page.name_line == "Jerome, Sammy"
    assert len(page.papers) == 1


def test_b3_wrong_header_is_missing_header() -> None:
    error = rejection(("Goto\n\nSomething Else\n\nA, B\n\n\n" + PAPER).encode())
    assert error.reason_code == "MISSING_HEADER"
    assert error.line == 3


def test_b3_no_name_is_missing_author_name() -> None:
    assert rejection(b"Goto\n\nCollaborating Authors\n\n  \n").reason_code == "MISSING_AUTHOR_NAME"


# B4 papers
def test_b4_soft_wraps_paragraphs_and_whitespace_runs() -> None:
    text = (
        HEADER + "A, B\n\n\n  Deep\n  Learning  \n\nJournal   of\tThings\n\nP1 line\nmore\n\n P2 "
    )
    (paper,) = parse(text).papers
    assert paper == RawPaper("Deep Learning", "Journal of Things", "P1 line more\n\nP2")


def test_b4_three_or_more_blank_lines_also_separate_papers() -> None:
    page = parse(HEADER + "A, B\n\n\n" + PAPER + "\n\n\n\n\n" + PAPER)
    assert len(page.papers) == 2


# B5 missing parts
def test_b5_title_and_source_without_abstract() -> None:
    (paper,) = parse(HEADER + "A, B\n\n\nTitle\n\nSource").papers
    assert paper.abstract is None


def test_b5_title_without_source_rejects_whole_file() -> None:
    error = rejection((HEADER + "A, B\n\n\n" + PAPER + "\n\n\nCut Off Title").encode())
    assert error.reason_code == "INCOMPLETE_PAPER"
    assert "Cut Off Title" in error.message
    assert error.line == 15


def test_b5_header_and_name_without_papers_is_valid() -> None:
    page = parse(HEADER + "Lonely, Lou")
    assert page == AuthorPage("Lonely, Lou", ())


# B6 content is data
def test_b6_latex_html_and_length_kept_verbatim() -> None:
    title = "Synth$^2$: \\emph{Boosting} &amp; <b>VLMs</b> " + "x" * 5000
    (paper,) = parse(HEADER + "A, B\n\n\n" + title + "\n\nSrc\n\n'; DROP TABLE papers; --").papers
    assert paper.title == title
    assert paper.abstract == "'; DROP TABLE papers; --"


# Bad files, in the order they are checked
@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "EMPTY_FILE"),
        (b"\xef\xbb\xbf \n\t\r\n", "EMPTY_FILE"),
        ((HEADER + "A, B\n\n\n" + PAPER).encode(), "FILE_TOO_LARGE"),
        (b"Goto\x00\n", "BINARY_CONTENT"),
        (b"Goto\n\x1b[0m", "BINARY_CONTENT"),
        (b"\xff\xfeG\x00", "BINARY_CONTENT"),
        (b"Goto\n\xc3\x28", "INVALID_UTF8"),
        (b"Hello\n\nWorld\n\nA, B", "MISSING_HEADER"),
        (b"Goto\n\nCollaborating Authors", "MISSING_AUTHOR_NAME"),
        ((HEADER + "A, B\n\n\nOnly title").encode(), "INCOMPLETE_PAPER"),
    ],
)
def test_reason_codes(data: bytes, code: str) -> None:
    limit = 40 if code == "FILE_TOO_LARGE" else 1 << 20
    assert rejection(data, max_bytes=limit).reason_code == code


def test_tab_lf_cr_are_not_binary() -> None:
    page = parse_author_page((HEADER + "A,\tB\r\n\n\n" + PAPER).encode())
    assert page.name_line == "A, B"


# A truncated last paper, in each whitespace arrangement (issue 9): the title is on line 15.
TRUNCATED = HEADER + "A, B\n\n\n" + PAPER + "\n\n\n"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param(TRUNCATED + "Cut Off Title\n", 15, id="trailing-newline"),
        pytest.param(TRUNCATED + "Cut Off Title ", 15, id="trailing-space"),
        pytest.param(TRUNCATED + "Cut Off Title\t", 15, id="trailing-tab"),
        pytest.param(TRUNCATED + " Cut Off Title", 15, id="leading-space"),
        pytest.param(HEADER + "A, B\n Cut Off Title", 6, id="leading-space-first-paper"),
        pytest.param((TRUNCATED + "Cut Off Title\n").replace("\n", "\r\n"), 15, id="crlf"),
        pytest.param(TRUNCATED + "\u00a0Cut Off Title\u00a0", 15, id="nbsp"),
        pytest.param(TRUNCATED + "Cut Off Title\n \n\t\n", 15, id="trailing-blank-lines"),
        pytest.param(TRUNCATED.replace("\n", "\r") + "Cut Off Title\r", 15, id="lone-cr"),
    ],
)
def test_b5_truncated_last_paper_in_any_whitespace(text: str, line: int) -> None:
    error = rejection(text.encode())
    assert error.reason_code == "INCOMPLETE_PAPER"
    assert error.line == line
    assert "Cut Off Title" in error.message


def test_b5_truncated_paper_mid_page_names_its_line() -> None:
    text = HEADER + "A, B\n\n\n" + PAPER + "\n\n\n\n \n Cut Off\nTitle \n\n\n\n" + PAPER + "\n"
    error = rejection(text.encode())
    assert (error.reason_code, error.line) == ("INCOMPLETE_PAPER", 17)
    assert "Cut Off Title" in error.message


def test_size_is_checked_before_emptiness() -> None:
    """FORMAT.md: FILE_TOO_LARGE, decided from the size alone, comes before EMPTY_FILE."""
    assert rejection(b"\n" * 100, max_bytes=50).reason_code == "FILE_TOO_LARGE"


def test_file_too_large_names_sizes_past_32_bits_in_full() -> None:
    """A 2 GiB page (2**31 bytes, past a signed 32-bit size) is named in full, with separators."""
    with pytest.raises(PageRejected) as rejected:
        check_size(2**31, DEFAULT_MAX_BYTES)
    assert rejected.value.reason_code == "FILE_TOO_LARGE"
    assert "the file is 2,147,483,648 bytes, over the 16,777,216-byte limit" in str(rejected.value)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xc2\xa0\n \xc2\xa0\t", "EMPTY_FILE"),  # B2 whitespace only, U+00A0 included
        (b"\x0c\n", "BINARY_CONTENT"),  # a form feed is a control byte, not emptiness
        (b"\x0b", "BINARY_CONTENT"),
    ],
)
def test_empty_means_blank_whitespace_only(data: bytes, code: str) -> None:
    assert rejection(data).reason_code == code


def test_byte_error_lines_count_lone_cr_as_a_line_end() -> None:
    """B1 reads a lone CR as a line end; the line of a bad byte counts it too."""
    assert rejection(b"Goto\r\rCollab\xff").line == 3
    assert rejection(b"Goto\r\n\r\nX\x00").line == 3


# B1 NFC in linear time: CPython orders combining marks by insertion sort (quadratic in a run).
@pytest.mark.parametrize(
    "marks",
    [
        "\u0301\u0316" * 40,  # classes 230, 220 alternating: the quadratic case
        "\u0f73\u0f71\u0f72" * 20,  # Tibetan: 0F73 has class 0 but decomposes to 0F71 0F72
        "\u0344\u0323\u0301\u302a\u05b0" * 10,  # 0344 decomposes; five classes
        "\u0301" * 31 + "x" + "\u0316\u0301" * 16,  # a long run, a starter, another run
    ],
)
def test_b1_long_combining_mark_runs_are_nfc(marks: str) -> None:
    title = "Cafe" + marks + " end"
    (paper,) = parse(HEADER + "A, B\n\n\n" + title + "\n\nSrc").papers
    assert paper.title == unicodedata.normalize("NFC", title)
    assert paper.title != title


def test_marks_of_class_0_that_decompose_to_marks_are_listed() -> None:
    """The long-run finder must know every character whose decomposition starts with a mark."""
    from authorgraph.transforms.parse import _MARKS_WITH_CLASS_0

    found = {
        c
        for c in map(chr, range(0x110000))
        if unicodedata.decomposition(c)
        and not unicodedata.combining(c)
        and unicodedata.combining(unicodedata.normalize("NFD", c)[0])
    }
    assert found == set(_MARKS_WITH_CLASS_0)
