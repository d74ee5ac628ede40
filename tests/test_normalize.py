"""Names, identity keys, ids and subjects, on literal inputs."""

from __future__ import annotations

import pytest

from authorgraph.transforms.normalize import (
    PersonName,
    author_id_for,
    identity_key,
    paper_id_for,
    parse_person_name,
    subject_of,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Pathak, Shreya", PersonName("Pathak, Shreya", "Shreya Pathak", "Pathak", "Shreya", None)),
        (
            "Pinto,  André Susano ",
            PersonName("Pinto, André Susano", "André Susano Pinto", "Pinto", "André Susano", None),
        ),
        (
            "van der Berg, Jan",
            PersonName("van der Berg, Jan", "Jan van der Berg", "van der Berg", "Jan", None),
        ),
        (
            "King, Jr., Martin",
            PersonName("King, Jr., Martin", "Martin King Jr.", "King", "Martin", "Jr."),
        ),
        ("张, 伟", PersonName("张, 伟", "张伟", "张", "伟", None)),
        ("田中, 太郎", PersonName("田中, 太郎", "田中太郎", "田中", "太郎", None)),
        (
            "Koray Kavukcuoglu",
            PersonName("Koray Kavukcuoglu", "Koray Kavukcuoglu", None, None, None),
        ),
        ("Rai", PersonName("Rai", "Rai", None, None, None)),
        ("Smith,", PersonName("Smith,", "Smith,", None, None, None)),
        ("a, b, c, d", PersonName("a, b, c, d", "a, b, c, d", None, None, None)),
    ],
)
def test_parse_person_name(raw: str, expected: PersonName) -> None:
    assert parse_person_name(raw) == expected


def test_mixed_script_name_keeps_space() -> None:
    assert parse_person_name("张, Wei").display_name == "Wei 张"


def test_same_author_with_and_without_comma() -> None:
    with_comma = parse_person_name("Kavukcuoglu, Koray").display_name
    without = parse_person_name("koray KAVUKCUOGLU").display_name
    assert author_id_for(with_comma) == author_id_for(without)


def test_author_ids_are_stable_literals() -> None:
    # Stable on every run and machine: a changed id would orphan every downstream join.
    assert author_id_for("Shreya Pathak") == "6014dbd355644e2a"


def test_identity_key_folds_case_whitespace_and_form() -> None:
    assert identity_key("  Stra\u00dfe   NEURAL\n\nNets ") == "strasse neural nets"
    assert identity_key("Cafe\u0301") == identity_key("CAF\u00c9")
    assert identity_key(None) == ""


def test_paper_identity_is_title_and_abstract_not_source() -> None:
    assert paper_id_for("Gemma", "We introduce.") == paper_id_for("GEMMA", "we  introduce.")
    assert paper_id_for("Gemma", "We introduce.") != paper_id_for("Gemma", "Other abstract.")
    assert paper_id_for("Gemma", None) != paper_id_for("Gemma", "We introduce.")


@pytest.mark.parametrize(
    ("source", "subject"),
    [
        ("arXiv.org Artificial Intelligence", "Artificial Intelligence"),
        ("arXiv.org Machine Learning", "Machine Learning"),
        ("Nature", None),
        ("arXiv.org", None),
        ("Proceedings of arXiv.org Workshop", None),
    ],
)
def test_subject_split(source: str, subject: str | None) -> None:
    assert subject_of(source) == subject
