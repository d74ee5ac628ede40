"""Property tests: render → parse gives back the records; normalizing is idempotent."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authorgraph.transforms.normalize import (
    identity_key,
    paper_id_for,
    paper_id_of_parsed,
    parse_person_name,
)
from authorgraph.transforms.parse import (
    PageRejected,
    RawPaper,
    fold_whitespace,
    parse_author_page,
    render_author_page,
)

# Field text as the contract stores it: NFC, no control characters, whitespace folded.
_chars = st.characters(
    codec="utf-8", categories=("L", "M", "N", "P", "S", "Zs"), exclude_characters="\u2028\u2029"
)
field = st.text(_chars, min_size=1, max_size=60).map(fold_whitespace).filter(bool)
import unicodedata  # noqa: E402

field = field.map(lambda s: unicodedata.normalize("NFC", s)).filter(
    lambda s: s == fold_whitespace(s) and bool(s)
)
abstract = st.none() | st.lists(field, min_size=1, max_size=3).map("\n\n".join)
paper = st.builds(RawPaper, title=field, source=field, abstract=abstract)
name = field.filter(lambda s: s not in {"Goto", "Collaborating Authors"})


@given(name, st.lists(paper, max_size=6))
def test_render_then_parse_round_trips(name_line: str, papers: list[RawPaper]) -> None:
    page = parse_author_page(render_author_page(name_line, papers).encode("utf-8"))
    assert page.name_line == name_line
    assert list(page.papers) == papers


@given(name, st.lists(paper, max_size=4), st.sampled_from(["\n", "\r\n", "\r"]))
def test_line_endings_do_not_matter(name_line: str, papers: list[RawPaper], newline: str) -> None:
    text = render_author_page(name_line, papers)
    assert parse_author_page(text.replace("\n", newline).encode()) == parse_author_page(
        text.encode()
    )


@given(st.text())
def test_identity_key_is_idempotent(text: str) -> None:
    assert identity_key(identity_key(text)) == identity_key(text)


@given(field, field)
def test_split_names_round_trip(family: str, given_name: str) -> None:
    family, given_name = family.replace(",", " ").strip(), given_name.replace(",", " ").strip()
    if not family or not given_name:
        return
    name = parse_person_name(f"{family}, {given_name}")
    assert (name.family_name, name.given_name) == (
        fold_whitespace(family),
        fold_whitespace(given_name),
    )


@given(name, st.lists(paper, min_size=1, max_size=4))
def test_fast_paper_id_matches_the_contract(name_line: str, papers: list[RawPaper]) -> None:
    page = parse_author_page(render_author_page(name_line, papers).encode("utf-8"))
    for parsed in page.papers:
        assert paper_id_of_parsed(parsed.title, parsed.abstract) == paper_id_for(
            parsed.title, parsed.abstract
        )


# Whitespace a blank line may hold, and that may pad a line (B2), for the truncation property.
_blank = st.sampled_from(["", "", " ", "\t", "\u00a0", " \t\u00a0", "\u3000"])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(name, st.lists(paper, min_size=1, max_size=5), st.data())
def test_a_paper_without_source_anywhere_is_incomplete_on_its_title_line(
    name_line: str, papers: list[RawPaper], data: st.DataObject
) -> None:
    """Issue 9: any paper cut to its title, anywhere on the page, in any whitespace arrangement
    (padded lines, whitespace-only blank lines, 2+ blank lines between papers, trailing
    whitespace, any line ending) is INCOMPLETE_PAPER on the line the title is on."""
    cut = data.draw(st.integers(0, len(papers) - 1), label="cut")
    text = f"Goto\n\nCollaborating Authors\n\n\u00a0{name_line}"
    title_line = 0
    for index, item in enumerate(papers):
        gap = data.draw(st.lists(_blank, min_size=0 if index == 0 else 2, max_size=4))
        text += "\n" + "".join(blank + "\n" for blank in gap) + data.draw(_blank)
        if index == cut:
            title_line = text.count("\n") + 1
            text += item.title + data.draw(_blank)
            continue
        fields = [item.title, item.source] + ([item.abstract] if item.abstract else [])
        text += "\n\n".join(fields) + data.draw(_blank)
    text += data.draw(st.sampled_from(["", "\n", " ", "\t", "\u00a0", "\n \n\t\n", "\n\n\n\n"]))
    newline = data.draw(st.sampled_from(["\n", "\r\n", "\r"]))
    with pytest.raises(PageRejected) as info:
        parse_author_page(text.replace("\n", newline).encode("utf-8"))
    assert (info.value.reason_code, info.value.line) == ("INCOMPLETE_PAPER", title_line)
