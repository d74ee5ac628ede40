"""Review queues: the exact rules on literal inputs, and the out-of-core build against them."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from authorgraph.pipelines.transform import minhash
from authorgraph.pipelines.transform import review as review_build
from authorgraph.pipelines.transform.review import (
    BIG_PAPER_AUTHORS,
    build_reviews,
    text_overlaps,
)
from authorgraph.transforms.review import (
    author_review,
    fold_name,
    fold_title,
    given_compatible,
    initials_match,
    is_near,
    jaccard,
    near,
    overlap,
    paper_review,
    similarity,
    tokens_agree,
    word_shingles,
)
from authorgraph.transforms.schema import (
    AUTHOR_REVIEW,
    AUTHORS,
    AUTHORSHIP,
    PAPER_REVIEW,
    PAPERS,
    REVIEW_TABLES,
    arrow_array,
)

WORDS = [f"w{i}" for i in range(40)]


def words(first: int, count: int) -> str:
    """`count` distinct words x<first>, x<first+1>, ... (every 3-gram distinct)."""
    return " ".join(f"x{i}" for i in range(first, first + count))


def papers_frame(rows: list[tuple[str, str, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(pid, title, "arXiv.org Testing", "Testing", abstract) for pid, title, abstract in rows],
        schema=PAPERS.polars_schema,
        orient="row",
    )


def authors_frame(rows: list[tuple[str, str, str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(aid, display, display, family, given, None) for aid, display, family, given in rows],
        schema=AUTHORS.polars_schema,
        orient="row",
    )


def authorship_frame(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(aid, pid, "page.txt") for aid, pid in rows], schema=AUTHORSHIP.polars_schema, orient="row"
    )


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.parquet")}


def build(
    folder: Path,
    papers: pl.DataFrame,
    authors: pl.DataFrame,
    authorship: pl.DataFrame,
    big_paper: int = BIG_PAPER_AUTHORS,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Write the core tables, run the out-of-core build, check inputs unchanged, read queues.
    `big_paper`: papers with more authors take the shared co-authors' big-paper path."""
    folder.mkdir(parents=True, exist_ok=True)
    papers.write_parquet(folder / "papers.parquet")
    authors.write_parquet(folder / "authors.parquet")
    authorship.write_parquet(folder / "authorship.parquet")
    before = digests(folder)
    counts = build_reviews(
        folder, folder / "work", memory_limit="256MB", threads=1, big_paper=big_paper
    )
    inputs = {k: v for k, v in digests(folder).items() if k in before}
    assert inputs == before, "the review build changed its input tables"
    queues = []
    for table in REVIEW_TABLES:
        path = folder / f"{table.name}.parquet"
        assert pq.read_schema(path).remove_metadata() == table.arrow_schema
        queues.append(pl.read_parquet(path))
        assert counts[table.name] == queues[-1].height
    return queues[0], queues[1]


# --- the folding helpers --------------------------------------------------------------------


def test_fold_title_and_shingles() -> None:
    assert fold_title("  Deep\tLEARNING \n for  Graphs ") == "deep learning for graphs"
    assert word_shingles(None) is None
    assert word_shingles("two words") is None
    assert word_shingles("One two  THREE\nfour") == {
        ("one", "two", "three"),
        ("two", "three", "four"),
    }
    assert jaccard(word_shingles(words(0, 7)), word_shingles(words(0, 6))) == 0.8
    assert jaccard(word_shingles("a b c"), None) is None


@pytest.mark.parametrize(
    ("a", "b", "agree"),
    [
        ("k.", "koray", True),
        ("k", "koray", True),
        ("koray", "k.", True),
        ("koray", "koray", True),
        ("j.", "k.", False),
        ("j.", "john", True),
        ("jo.", "john", False),  # only a single letter is an initial
        ("koray", "korey", False),
    ],
)
def test_tokens_agree(a: str, b: str, agree: bool) -> None:
    assert tokens_agree(a, b) is agree


@pytest.mark.parametrize(
    ("a", "b", "compatible"),
    [
        ("K.", "Koray", True),
        ("A. S.", "André Susano", True),
        ("A. S.", "Andre Susano", True),
        ("J. R.", "John", True),  # compared over the shorter list only
        ("J.", "K.", False),
        ("John R.", "John Q.", False),
        ("Élodie", "E.", True),
    ],
)
def test_given_compatible(a: str, b: str, compatible: bool) -> None:
    assert given_compatible(a, b) is compatible


def test_fold_name_and_initials_rule() -> None:
    assert fold_name("André Susano Pinto") == fold_name("ANDRE SUSANO PINTO")
    assert initials_match(
        ("K. Kavukcuoglu", "Kavukcuoglu", "K."), ("Koray Kavukcuoglu", "KAVUKÇUOĞLU", "Koray")
    )
    # Unsplit names (no family name) never pair by initials; equal display names never do.
    assert not initials_match(
        ("Kavukcuoglu K.", None, None), ("Koray Kavukcuoglu", "Kavukcuoglu", "Koray")
    )
    assert not initials_match(("K. Smith", "Smith", "K."), ("K. Smith", "Smith", "K."))


@pytest.mark.parametrize(
    ("a", "b", "counts", "is_listed"),
    [
        (set("abcd"), set("abcde"), (4, 5), True),  # exactly 0.8
        (set("abcdefghijklmno"), set("abcdefghijklmnopqrs"), (15, 19), False),  # 0.789
        (set("ab"), set("c"), (0, 3), False),
        (set("x"), set("x"), (1, 1), True),
    ],
)
def test_overlap_counts_and_the_near_rule(
    a: set[str], b: set[str], counts: tuple[int, int], is_listed: bool
) -> None:
    assert overlap(a, b) == counts
    assert near(counts) is is_listed
    assert similarity(counts) == len(a & b) / len(a | b)
    shingles_a, shingles_b = frozenset((x,) for x in a), frozenset((x,) for x in b)
    assert is_near(shingles_a, shingles_b) is is_listed
    assert jaccard(shingles_a, shingles_b) == counts[0] / counts[1]
    assert similarity(None) is None and not near(None)


#: Abstracts where Python's casefold and whitespace differ from a plain lowercase split on
#: spaces, with repeated 3-grams, and with too few words.
TRICKY_TEXTS: list[str | None] = [
    None,
    "",
    "one",
    "one two",
    "one two three",
    "ONE two\tthree one two three one two three",
    "Straße ist  lang und die strasse ist lang",
    "STRASSE IST LANG und die STRAẞE ist lang",
    "a\x1cb c\u3000d e\x85f g\xa0h i\u2028j",
    "a b c d e f g h i j",
    "é e\u0301 é e\u0301 é",
    words(0, 52),
    words(0, 42),
    words(100, 21),
    words(100, 17),
]


@pytest.mark.parametrize("cube_words", [review_build.CUBE_WORDS, 3])
def test_text_overlaps_count_the_word_shingles_exactly(
    monkeypatch: pytest.MonkeyPatch, cube_words: int
) -> None:
    """The scoring's int codes give the reference's counts for every pair (also with the
    codes built from numbered word pairs, as when a batch has 2**21 distinct words)."""
    monkeypatch.setattr(review_build, "CUBE_WORDS", cube_words)
    pairs = [(a, b) for a in TRICKY_TEXTS for b in TRICKY_TEXTS]
    expected: list[tuple[int, int] | None] = []
    for a, b in pairs:
        shingles_a, shingles_b = word_shingles(a), word_shingles(b)
        if shingles_a is None or shingles_b is None:
            expected.append(None)
        else:
            expected.append(overlap(shingles_a, shingles_b))
    assert text_overlaps(pairs) == expected
    assert text_overlaps([(words(0, 52), words(0, 42))]) == [(40, 50)]  # exactly 0.8
    assert text_overlaps([(words(100, 21), words(100, 17))]) == [(15, 19)]  # 0.789
    assert text_overlaps([]) == []
    # a text with no word first: the next text's first 3-gram still counts
    assert text_overlaps([("", "a b c d"), ("a b c d", "a b c d e")]) == [None, (2, 3)]


def test_arrow_splits_on_pythons_whitespace() -> None:
    """The scoring lets Arrow split casefolded abstracts: its whitespace is Python's, code
    point by code point (empty strings aside)."""
    points = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    texts = pl.Series([f"a{chr(c)}b" for c in points])
    spaces = pl.Series([chr(c).isspace() for c in points])
    # Compared as columns, not as 1.1M Python lists (4 s of CPU): each "a<c>b" splits into
    # "a" and "b" where Python's str.split() does, and is one word, unchanged, elsewhere.
    split = pl.Series(pc.utf8_split_whitespace(texts.to_arrow()))
    at_spaces = split.filter(spaces).to_list()
    assert len(at_spaces) > 20  # Python's whitespace: 25 code points and more
    assert at_spaces == [["a", "b"]] * len(at_spaces)
    elsewhere = split.filter(~spaces)
    assert (elsewhere.list.len() == 1).all()
    assert elsewhere.list.first().equals(texts.filter(~spaces), check_names=False)
    others = [" a\x1c\x85 b\u3000\u3000", "\t", ""]
    split_others: list[list[str]] = pc.utf8_split_whitespace(pa.array(others)).to_pylist()  # type: ignore[misc,assignment]  # pyarrow-stubs: to_pylist of a ListArray is untyped
    assert [[w for w in words if w] for words in split_others] == [t.split() for t in others]


def hostile_arrow_array(values: list[str], dtype: pa.DataType) -> pa.Array:
    """`arrow_array`, but a string array's data is followed by UTF-8 continuation bytes: what
    a buffer's padding, which nobody writes, may hold."""
    array = arrow_array(values, dtype)
    if dtype != pa.large_string():
        return array
    _, offsets, data = array.buffers()
    assert offsets is not None and data is not None and array.null_count == array.offset == 0
    end = int.from_bytes(offsets.to_pybytes()[8 * len(array) :][:8], "little")
    hostile = pa.py_buffer(data.to_pybytes()[:end] + b"\xb7" * 8)
    return pa.LargeStringArray.from_buffers(len(array), offsets, hostile)


@pytest.mark.parametrize("end", ["\n", " ", "\t", "\u3000", "\u2028", "\x85", "\n\n"])
def test_a_text_ending_its_buffer_in_whitespace_splits_as_python_does(
    monkeypatch: pytest.MonkeyPatch, end: str
) -> None:
    """pyarrow's `utf8_split_whitespace` reads past the end of the last value of its data:
    with a continuation byte there, it kept a trailing whitespace character in the last word.
    So an abstract ending in "\\n" once scored 9/11 against its own words (one suite run in
    about ten: padding is whatever memory held). The scoring and the MinHash shingles split
    right-stripped texts (`split_words`), whatever follows them."""
    monkeypatch.setattr(minhash, "arrow_array", hostile_arrow_array)
    text = " ".join(WORDS[:6])
    assert text_overlaps([(text, text + end)]) == [(4, 4)]  # the longer one is split last
    _, hashed = minhash.shingle_hashes(arrow_array([text], pa.large_string()))
    _, ending = minhash.shingle_hashes(arrow_array([text + end], pa.large_string()))
    assert sorted(ending.tolist()) == sorted(hashed.tolist())


def test_candidates_see_the_rules_words_casefold_and_every_whitespace(tmp_path: Path) -> None:
    """Abstracts equal under `casefold().split()` but not under `lower()` and a split on spaces
    (`ß`/`SS`, tabs, ideographic spaces) are one set of 3-grams, similarity 1.0: the LSH
    search must propose them (its words once approximated the rule's and missed such pairs)."""
    words = [f"straße{i}" for i in range(12)]
    rows: list[tuple[str, str, str | None]] = [
        ("p1", "One", " ".join(words)),
        ("p2", "Two", "\t".join(w.upper() for w in words)),
        ("p3", "Three", "\u3000".join(words) + "\n"),
    ]
    papers, _ = build(tmp_path, papers_frame(rows), authors_frame([]), authorship_frame([]))
    assert papers.rows() == [
        ("p1", "p2", "NEAR_ABSTRACT", 1.0),
        ("p1", "p3", "NEAR_ABSTRACT", 1.0),
        ("p2", "p3", "NEAR_ABSTRACT", 1.0),
    ]


def test_build_reviews_literal_scored_pair_by_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Texts encoded one pair at a time (the smallest chunk) list the same pairs."""
    monkeypatch.setattr(review_build, "SCORE_CHARS", 1)
    papers, _ = build(
        tmp_path, papers_frame(LITERAL_PAPERS), authors_frame([]), authorship_frame([])
    )
    assert_frame_equal(
        papers, pl.DataFrame(EXPECTED_PAPERS, schema=PAPER_REVIEW.polars_schema, orient="row")
    )


def test_build_reviews_literal_scored_in_many_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Candidates joined to their abstracts a paper-id prefix at a time and split into parts
    (each part reading only its own files of abstracts), scored on more threads than
    chunks, list the same pairs as one part."""
    split, score = review_build.split_candidates, review_build.score_papers
    calls: list[int] = []
    prefix_splits: list[tuple[str, list[str]]] = []

    def split_by_prefix(*args: Any, **kwargs: Any) -> dict[str, list[Path]]:
        written = split_by_prefix_of(*args, **kwargs)
        prefix_splits.append((args[4] if len(args) > 4 else "paper_id", sorted(written)))
        return written

    split_by_prefix_of = review_build.split_by_prefix
    monkeypatch.setattr(review_build, "split_by_prefix", split_by_prefix)

    def many_parts(
        con: duckdb.DuckDBPyConnection,
        papers: Path,
        candidates: Path,
        memory_limit: str,
        work: Path,
    ) -> list[tuple[str, str]]:
        # What the build chose for these few pairs: one part, no split.
        assert split(con, papers, candidates, memory_limit, work) == split(
            con, papers, candidates, memory_limit, work / "again"
        )
        assert not (work / "score_split").exists()
        # A limit of 1KB: the joins run a paper-id prefix at a time (the abstracts' 2-4 KB
        # make 16 prefixes) and the pairs are scored in parts by a hash of paper_id_a.
        sources = split(con, papers, candidates, "1KB", work)
        calls.append(len(sources))
        pairs = con.sql(f"SELECT paper_id_a, paper_id_b FROM '{candidates}'").fetchall()
        assert prefix_splits == [
            ("paper_id_b", sorted({b[0] for _, b in pairs})),
            ("paper_id", sorted({a[0] for a, _ in pairs})),
        ]
        assert not (work / "score_split" / "seconds").exists()  # given back once joined
        assert not (work / "score_split" / "joined").exists()  # given back once split
        parts = list((work / "score_split" / "pairs").iterdir())
        assert 1 < len(parts) == len(sources) <= len({a for a, _ in pairs})
        return sources

    def hex_id(pid: str) -> str:  # hex, as real ids are (the parts are id prefixes), in order
        return f"{int(pid[1:]) * 0x111:03x}"

    monkeypatch.setattr(review_build, "split_candidates", many_parts)
    monkeypatch.setattr(review_build, "score_papers", functools.partial(score, threads=3))
    literal = [(hex_id(pid), title, abstract) for pid, title, abstract in LITERAL_PAPERS]
    papers, _ = build(tmp_path, papers_frame(literal), authors_frame([]), authorship_frame([]))
    assert calls and calls[0] > 1
    expected = [(hex_id(a), hex_id(b), *rest) for a, b, *rest in EXPECTED_PAPERS]
    assert_frame_equal(
        papers, pl.DataFrame(expected, schema=PAPER_REVIEW.polars_schema, orient="row")
    )


def test_score_parts_follow_the_abstracts_size() -> None:
    """One part while the candidates' abstracts fit their share of the memory limit, more as
    they grow."""
    budget = 512 * 10**6 * review_build.SCORE_SHARE  # DuckDB's MB, as limit_bytes reads it
    assert review_build.score_parts(0, "512MB", 1000) == 1
    assert review_build.score_parts(100_000, "512MB", 1000) == 1
    per_text = 4000 + review_build.TEXT_BYTES
    assert review_build.score_parts(int(budget // per_text), "512MB", 4000) == 1
    assert review_build.score_parts(int(budget // per_text) + 1, "512MB", 4000) == 2
    assert review_build.score_parts(1_000_000, "128MB", 1300) == -(
        -1_000_000 * (1300 + review_build.TEXT_BYTES) // int(128 * 10**6 * review_build.SCORE_SHARE)
    )


# --- paper_review on literal inputs --------------------------------------------------------

LITERAL_PAPERS = [
    # exactly 0.8 (40 of 50 3-grams shared): NEAR_ABSTRACT
    ("p01", "Alpha", words(0, 52)),
    ("p02", "Beta", words(0, 42)),
    # 15/19 = 0.789: not listed
    ("p03", "Gamma", words(100, 21)),
    ("p04", "Delta", words(100, 17)),
    # a star of 4 with different abstracts (one null, one too short): 3 rows to p05
    ("p05", "A Star  Title", words(200, 10)),
    ("p06", "a star title", words(300, 10)),
    ("p07", "A STAR\tTITLE", None),
    ("p08", "A star title", "too short"),
    # same title, both abstracts null: equal abstracts, not listed
    ("p09", "Nothing Said", None),
    ("p10", "nothing said", None),
    # same title and near abstracts (0.9): listed once, as SAME_TITLE
    ("p11", "Twice", words(400, 12)),
    ("p12", "TWICE", words(400, 11)),
    # fewer than 3 words never pair, even equal
    ("p13", "Short one", "a b"),
    ("p14", "Short two", "a b"),
]

EXPECTED_PAPERS = [
    ("p01", "p02", "NEAR_ABSTRACT", 0.8),
    ("p05", "p06", "SAME_TITLE", 0.0),
    ("p05", "p07", "SAME_TITLE", None),
    ("p05", "p08", "SAME_TITLE", None),
    ("p11", "p12", "SAME_TITLE", 0.9),
]


def test_paper_review_rules() -> None:
    expected = pl.DataFrame(EXPECTED_PAPERS, schema=PAPER_REVIEW.polars_schema, orient="row")
    assert_frame_equal(paper_review(papers_frame(LITERAL_PAPERS)), expected)


# --- author_review on literal inputs -------------------------------------------------------

LITERAL_AUTHORS = [
    ("a1", "André Susano Pinto", "Pinto", "André Susano"),
    ("a2", "Andre Susano Pinto", "Pinto", "Andre Susano"),  # ACCENTS (and INITIALS) with a1
    ("a3", "A. S. Pinto", "Pinto", "A. S."),  # INITIALS with a1 and a2
    ("a4", "Koray Kavukcuoglu", "Kavukcuoglu", "Koray"),
    ("a5", "K. Kavukcuoglu", "Kavukcuoglu", "K."),  # INITIALS with a4
    ("a6", "Kavukcuoglu K.", None, None),  # unsplit: never INITIALS
    ("a7", "John Smith", "Smith", "John"),
    ("a8", "J. R. Smith", "Smith", "J. R."),  # INITIALS with a7
    ("a9", "K. Smith", "Smith", "K."),  # J. is not K.
    ("b1", "Same Name", "Name", "Same"),
    ("b2", "Same Name", "Name", "Same"),  # equal display names: ACCENTS, not INITIALS
]
LITERAL_AUTHORSHIP = [
    # a4 and a5 share coauthors x1 and x2 (and each other, which does not count)
    ("a4", "q1"), ("a5", "q1"), ("x1", "q1"),
    ("a4", "q2"), ("x2", "q2"),
    ("a5", "q3"), ("x2", "q3"), ("x3", "q3"),
    ("a7", "q4"), ("x3", "q4"),
]  # fmt: skip
EXPECTED_AUTHORS = [
    ("a1", "a2", "ACCENTS", 0),
    ("a1", "a3", "INITIALS", 0),
    ("a2", "a3", "INITIALS", 0),
    ("a4", "a5", "INITIALS", 2),
    ("a7", "a8", "INITIALS", 0),
    ("b1", "b2", "ACCENTS", 0),
]


def test_author_review_rules() -> None:
    expected = pl.DataFrame(EXPECTED_AUTHORS, schema=AUTHOR_REVIEW.polars_schema, orient="row")
    got = author_review(authors_frame(LITERAL_AUTHORS), authorship_frame(LITERAL_AUTHORSHIP))
    assert_frame_equal(got, expected)


@pytest.mark.parametrize("big_paper", [1, BIG_PAPER_AUTHORS])
def test_build_reviews_literal(tmp_path: Path, big_paper: int) -> None:
    """The out-of-core build lists exactly the literal pairs, inputs untouched; the shared
    co-authors are the same when every paper of two or more authors counts as big."""
    papers, authors = build(
        tmp_path,
        papers_frame(LITERAL_PAPERS),
        authors_frame(LITERAL_AUTHORS),
        authorship_frame(LITERAL_AUTHORSHIP),
        big_paper,
    )
    assert_frame_equal(
        papers, pl.DataFrame(EXPECTED_PAPERS, schema=PAPER_REVIEW.polars_schema, orient="row")
    )
    assert_frame_equal(
        authors, pl.DataFrame(EXPECTED_AUTHORS, schema=AUTHOR_REVIEW.polars_schema, orient="row")
    )


def test_build_reviews_nothing_to_flag(tmp_path: Path) -> None:
    papers, authors = build(
        tmp_path,
        papers_frame([("p1", "One", None), ("p2", "Two", "x y")]),
        authors_frame([("a1", "Ann Lee", "Lee", "Ann")]),
        authorship_frame([("a1", "p1")]),
    )
    assert papers.is_empty() and authors.is_empty()


# --- the out-of-core build against the reference -------------------------------------------


def mutate(text: str, rng: random.Random, edits: int) -> str:
    tokens = text.split()
    for _ in range(edits):
        tokens[rng.randrange(len(tokens))] = rng.choice(WORDS).upper()
    return " ".join(tokens)


@st.composite
def corpora(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    titles = ["Graph Nets", "graph  nets", "GRAPH NETS", "Attention", "Other", "Solo"]
    papers: list[tuple[str, str, str | None]] = []
    for i in range(draw(st.integers(2, 24))):
        kind = rng.random()
        if kind < 0.1:
            abstract = None
        elif kind < 0.2:
            abstract = " ".join(rng.choices(WORDS, k=rng.randint(0, 3)))
        elif kind < 0.6 and papers and papers[-1][2]:
            base = papers[-1][2] or ""
            abstract = mutate(base, rng, rng.randint(0, 3)) if len(base.split()) > 2 else base
        else:
            abstract = " ".join(rng.choices(WORDS, k=rng.randint(3, 40)))
        papers.append((f"p{rng.randrange(16**4):04x}{i}", rng.choice(titles), abstract))
    families = ["Pinto", "Smith", "Smíth", "Lee"]
    givens = ["André", "Andre", "A.", "A. S.", "John", "J. R.", "J.", "K.", "Koray"]
    authors: list[tuple[str, str, str | None, str | None]] = []
    for i in range(draw(st.integers(1, 14))):
        family, given_name = rng.choice(families), rng.choice(givens)
        if rng.random() < 0.15:
            authors.append((f"a{i:02d}", f"{given_name} {family}", None, None))
        else:
            authors.append((f"a{i:02d}", f"{given_name} {family}", family, given_name))
    links = {(rng.choice(authors)[0], rng.choice(papers)[0]) for _ in range(3 * len(papers))}
    return papers_frame(papers), authors_frame(authors), authorship_frame(sorted(links))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(corpora(), st.sampled_from([0, 1, 2, 3, BIG_PAPER_AUTHORS]))
def test_build_reviews_matches_reference(
    corpus: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame], big_paper: int
) -> None:
    """Equal to the reference, whichever papers count as big for the shared co-authors."""
    papers, authors, authorship = corpus
    with tempfile.TemporaryDirectory() as folder:
        got_papers, got_authors = build(Path(folder), papers, authors, authorship, big_paper)
    expected = paper_review(papers)
    # Every listed pair is in the reference with the same reason and score ...
    key = ["paper_id_a", "paper_id_b"]
    assert_frame_equal(got_papers, expected.join(got_papers, on=key, how="semi"))
    # ... and every reference pair is listed, except NEAR_ABSTRACT pairs under 0.9 (LSH).
    must = expected.filter((pl.col("reason") == "SAME_TITLE") | (pl.col("score") >= 0.9))
    assert must.join(got_papers, on=key, how="anti").is_empty()
    assert_frame_equal(got_authors, author_review(authors, authorship))


def test_the_author_steps_get_the_scorings_share_of_the_memory_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The paper steps' DuckDB starts with the whole limit; the author steps' gets the
    scoring's share (the process still holds what the paper steps left: with the whole limit
    on top, the author steps made a 200k build's peak), and their queue is unchanged."""
    from authorgraph.pipelines.transform import review

    limits: list[str] = []
    real = review._connection

    def connection(work_dir: Path, memory_limit: str, threads: int) -> Any:
        limits.append(memory_limit)
        return real(work_dir, memory_limit, threads)

    monkeypatch.setattr(review, "_connection", connection)
    papers = papers_frame([("p1", "A Title", "one two three four"), ("p2", "B", None)])
    authors = authors_frame(
        [
            ("a1", "André Susano Pinto", "Pinto", "André Susano"),
            ("a2", "Andre Susano Pinto", "Pinto", "Andre Susano"),
            ("a3", "K. Lee", "Lee", "K."),
        ]
    )
    authorship = authorship_frame([("a1", "p1"), ("a2", "p1"), ("a3", "p1"), ("a3", "p2")])
    _, got_authors = build(tmp_path, papers, authors, authorship)
    from authorgraph.pipelines.config import limit_bytes

    assert limits[0] == "256MB" and len(limits) == 2  # what `build` gives, then the authors'
    assert 0 < limit_bytes(limits[1]) <= limit_bytes("256MB") * (1 - review.SCORE_SHARE)
    assert got_authors.height == 1  # André and Andre, sharing K. Lee
    assert_frame_equal(got_authors, author_review(authors, authorship))


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(8, 16))) + "."


def test_planted_near_duplicates_are_found(tmp_path: Path) -> None:
    """Planted pairs at 0.9+ among 3,000 abstracts built from a pool of 60 shared sentences."""
    rng = random.Random(7)
    pool = [sentence(rng) for _ in range(60)]
    rows: list[tuple[str, str, str | None]] = [
        (f"d{i:05d}", f"Distractor {i}", " ".join(rng.sample(pool, 6))) for i in range(3000)
    ]
    planted = []
    for i in range(40):
        base = " ".join(rng.sample(pool, 4)) + " " + " ".join(f"u{i}v{j}" for j in range(40))
        copy = mutate(base, rng, 1)
        score = jaccard(word_shingles(base), word_shingles(copy))
        assert score is not None and score >= 0.9
        rows += [(f"m{i:03d}a", f"Planted {i}", base), (f"m{i:03d}b", f"Copy {i}", copy)]
        planted.append((f"m{i:03d}a", f"m{i:03d}b", "NEAR_ABSTRACT", score))
    papers = papers_frame(rows)
    got, _ = build(tmp_path, papers, authors_frame([]), authorship_frame([]))
    want = pl.DataFrame(planted, schema=PAPER_REVIEW.polars_schema, orient="row")
    assert want.join(got, on=list(want.columns), how="anti").is_empty()
    # Whatever else is listed is a true pair, scored exactly.
    texts = dict(zip(papers["paper_id"], papers["abstract"], strict=True))
    for a, b, reason, score in got.iter_rows():
        assert reason == "NEAR_ABSTRACT"
        assert score == jaccard(word_shingles(texts[a]), word_shingles(texts[b]))
        assert score is not None and score >= 0.8


def write_crafted_pages(
    seeds: Path,
    venue: str = "Venue",
    edit: str = " changed",
    koray: str = "Koray",
    title: str = "Graph Ideas",
) -> Path:
    """Four pages whose papers and authors pair by each reason: a title written twice, two
    near abstracts (`edit` ends the second; `venue` is its source line), a name with and
    without accents, and initials."""
    from authorgraph.transforms.parse import RawPaper, render_author_page

    near = words(0, 40)
    near_edited = near.rsplit(" ", 1)[0] + edit  # " changed": 37 of 39 3-grams shared, 0.95
    pages = {
        "a.txt": ("Pinto, André Susano", [RawPaper("Deep Nets", "arXiv.org AI", words(100, 30))]),
        "b.txt": ("Pinto, Andre Susano", [RawPaper("deep  NETS", "arXiv.org AI", words(200, 30))]),
        "c.txt": ("Kavukcuoglu, K.", [RawPaper("Graph Models", "arXiv.org AI", near)]),
        "d.txt": (f"Kavukcuoglu, {koray}", [RawPaper(title, venue, near_edited)]),
    }
    seeds.mkdir(exist_ok=True)
    for file_name, (name, listed) in pages.items():
        (seeds / file_name).write_text(render_author_page(name, listed), encoding="utf-8")
    return seeds


def test_queues_are_the_published_ones_while_their_inputs_are_unchanged(tmp_path: Path) -> None:
    """Builds after one change each to published pages: a new source line changes `papers` but
    no title, abstract, name or link, so both published queues are taken as they are (the
    same files); a new name builds `author_review` alone; a title in new case (the same paper
    id), `paper_review` alone; a new abstract (a new paper id, so new links) both. Each time
    both equal a full refresh's."""
    import duckdb

    from authorgraph.pipelines import stages
    from authorgraph.pipelines.config import Settings
    from tests.conftest import run_stages, transform_only

    names = ("paper_review", "author_review")

    def queues(folder: Path) -> list[object]:
        con = duckdb.connect()
        return [
            con.execute(f"select * from '{folder / n}.parquet' order by all").fetchall()
            for n in names
        ]

    def inodes(folder: Path) -> tuple[int, ...]:
        return tuple((folder / f"{n}.parquet").stat().st_ino for n in names)

    settings = Settings(seeds=write_crafted_pages(tmp_path / "seeds"), warehouse=tmp_path / "wh")
    run_stages(settings)
    published = (settings.warehouse / "current" / "parquet").resolve()
    assert all(queues(published))
    changes = [  # which queue keeps the published file
        ({"venue": "Another Venue"}, (True, True)),
        ({"koray": "Korey"}, (True, False)),
        ({"title": "GRAPH Ideas"}, (False, True)),
        ({"edit": " altered"}, (False, False)),
    ]
    for number, (change, kept) in enumerate(changes):
        write_crafted_pages(settings.seeds, **change)
        built = stages.transform(stages.extract(settings), settings, f"change-{number}")
        assert not built.unchanged  # rows changed: the tables were built
        staged = built.stage_dir / "version" / "parquet"
        fresh = transform_only(dataclasses.replace(settings, full_refresh=True))
        assert queues(staged) == queues(fresh.stage_dir / "version" / "parquet"), change
        assert tuple(a == b for a, b in zip(inodes(staged), inodes(published), strict=True)) == (
            kept
        ), change


def test_crafted_pages_show_each_reason_and_nothing_is_merged(tmp_path: Path) -> None:
    """Real page files through the whole run (no Prefect): each reason appears in the
    published queues, every paper and author stays its own row, the docs' queue examples
    answer, and the report shows the pairs."""
    from typer.testing import CliRunner

    from authorgraph.pipelines.cli.commands import app
    from authorgraph.pipelines.config import Settings
    from authorgraph.pipelines.load.publish import run_query
    from tests.conftest import run_stages
    from tests.test_readme_queries import ALL_SQL, NO_ROWS_ON_SEEDS

    settings = Settings(seeds=write_crafted_pages(tmp_path / "seeds"), warehouse=tmp_path / "wh")
    run_stages(settings)

    def rows(query: str) -> list[tuple[object, ...]]:
        return run_query(settings.warehouse, query)[1]

    assert rows("select count(*) from papers") == [(4,)]  # nothing merged
    assert rows("select count(*) from authors") == [(4,)]
    papers = {str(t): str(i) for t, i in rows("select title, paper_id from papers")}
    got = rows(
        "select reason, round(score, 2), paper_id_a, paper_id_b from paper_review order by 1"
    )
    assert got == [
        ("NEAR_ABSTRACT", 0.95, *sorted([papers["Graph Models"], papers["Graph Ideas"]])),
        ("SAME_TITLE", 0.0, *sorted([papers["Deep Nets"], papers["deep NETS"]])),
    ]
    reasons = rows(
        "select a.display_name, b.display_name, r.reason from author_review r "
        "join authors a on a.author_id = r.author_id_a "
        "join authors b on b.author_id = r.author_id_b order by r.reason"
    )
    assert {(frozenset(r[:2]), r[2]) for r in reasons} == {
        (frozenset({"André Susano Pinto", "Andre Susano Pinto"}), "ACCENTS"),
        (frozenset({"K. Kavukcuoglu", "Koray Kavukcuoglu"}), "INITIALS"),
    }
    for block in ALL_SQL:
        if block.text.startswith(NO_ROWS_ON_SEEDS):
            assert run_query(settings.warehouse, block.text)[1], block.where
    result = CliRunner().invoke(app, ["report", "--warehouse", str(settings.warehouse)])
    assert result.exit_code == 0, result.output
    page = (settings.warehouse / "report.html").read_text(encoding="utf-8")
    assert "NEAR_ABSTRACT: 1, SAME_TITLE: 1." in page and "ACCENTS: 1, INITIALS: 1." in page
    assert all(f"<td>{title}</td>" in page for title in papers)
