"""Property tests: render → parse gives back the records; normalizing is idempotent."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from transforms.normalize import (
    identity_key,
    paper_id_for,
    paper_id_of_parsed,
    parse_person_name,
)
from transforms.parse import RawPaper, fold_whitespace, parse_author_page, render_author_page

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
