"""Review queues: pairs of papers or authors that may be one, flagged for a person, never merged.

The rules, exactly (the reference implementations below follow them pair by pair; the
out-of-core build in `authorgraph.pipelines.transform.review` must list the same pairs):

paper_review, one row per pair (`paper_id_a` < `paper_id_b`):
- SAME_TITLE: the folded titles (`fold_title`) are equal and the abstracts differ. Abstracts are
  compared as stored strings; two nulls are equal, null and a text differ. Within a group of
  papers sharing a folded title, the rows are a star around the group's smallest paper id:
  (smallest, other) for every other paper whose abstract differs from the smallest one's. A group
  of k papers with pairwise different abstracts gives k-1 rows. `score` is the abstracts'
  similarity, null when either is missing or has fewer than 3 words.
- NEAR_ABSTRACT: both abstracts have 3 words or more and their similarity is >= 0.8.
- Similarity: Jaccard of the sets of word 3-grams of the casefolded abstracts, words split on
  whitespace (`abstract.casefold().split()`).
- A pair meeting both rules is listed once, as SAME_TITLE.

author_review, one row per pair (`author_id_a` < `author_id_b`):
- ACCENTS: the folded display names (`fold_name`) are equal.
- INITIALS: both family names present and equal when folded, the given names compatible
  (`given_compatible`), and the display names differ.
- A pair meeting both rules is listed once, as ACCENTS.
- `shared_coauthors`: authors other than the two who share a paper with both.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Hashable, Iterable
from collections.abc import Set as AbstractSet
from itertools import combinations

import polars as pl

from authorgraph.transforms.schema import AUTHOR_REVIEW, PAPER_REVIEW

SAME_TITLE = "SAME_TITLE"
NEAR_ABSTRACT = "NEAR_ABSTRACT"
ACCENTS = "ACCENTS"
INITIALS = "INITIALS"
#: NEAR_ABSTRACT pairs have a similarity of at least NEAR_NUM / NEAR_DEN (0.8), compared exactly.
NEAR_NUM, NEAR_DEN = 4, 5
#: Words in a shingle.
SHINGLE_WORDS = 3

Shingles = frozenset[tuple[str, ...]]


def fold_title(title: str) -> str:
    """Casefolded title with whitespace runs folded to one space (SAME_TITLE compares these)."""
    return " ".join(title.casefold().split())


def word_shingles(abstract: str | None) -> Shingles | None:
    """The set of word 3-grams of the casefolded abstract; None when it has fewer than 3 words."""
    if abstract is None:
        return None
    words = abstract.casefold().split()
    if len(words) < SHINGLE_WORDS:
        return None
    return frozenset(zip(words, words[1:], words[2:], strict=False))


def overlap(a: AbstractSet[Hashable], b: AbstractSet[Hashable]) -> tuple[int, int]:
    """(|a & b|, |a | b|), with one intersection and no union set: |a | b| = |a| + |b| - |a & b|.
    Any sets whose elements stand one for one for the shingles give the same counts."""
    inter = len(a & b)
    return inter, len(a) + len(b) - inter


def similarity(counts: tuple[int, int] | None) -> float | None:
    """The Jaccard similarity of an `overlap`; None when there is none (a missing set)."""
    return None if counts is None else counts[0] / counts[1]


def near(counts: tuple[int, int] | None) -> bool:
    """An `overlap`'s similarity >= 0.8, compared in integers (exactly 0.8 counts)."""
    return counts is not None and NEAR_DEN * counts[0] >= NEAR_NUM * counts[1]


def jaccard(a: Shingles | None, b: Shingles | None) -> float | None:
    """|a & b| / |a | b|; None when either set is missing (an abstract with too few words)."""
    return similarity(None if a is None or b is None else overlap(a, b))


def is_near(a: Shingles | None, b: Shingles | None) -> bool:
    """Similarity >= 0.8, compared in integers (a ratio of exactly 0.8 counts)."""
    return near(None if a is None or b is None else overlap(a, b))


def fold_name(name: str) -> str:
    """NFKD, combining marks removed, casefolded: 'André' and 'ANDRE' fold alike."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def initial_of(token: str) -> str | None:
    """The letter of a single-letter token ('k' or 'k.'), else None."""
    bare = token[:-1] if len(token) == 2 and token.endswith(".") else token
    return bare if len(bare) == 1 and bare.isalpha() else None


def tokens_agree(a: str, b: str) -> bool:
    """Folded given-name tokens agree: equal, or one is an initial of the other ('k.' ~ 'koray')."""
    if a == b:
        return True
    initial_a, initial_b = initial_of(a), initial_of(b)
    return (initial_a is not None and initial_a == b[:1]) or (
        initial_b is not None and initial_b == a[:1]
    )


def given_compatible(given_a: str, given_b: str) -> bool:
    """Given names agree token by token (folded, split on spaces) over the shorter one's length."""
    tokens_a, tokens_b = fold_name(given_a).split(), fold_name(given_b).split()
    return all(tokens_agree(x, y) for x, y in zip(tokens_a, tokens_b, strict=False))


def initials_match(
    a: tuple[str, str | None, str | None], b: tuple[str, str | None, str | None]
) -> bool:
    """The INITIALS rule for two (display_name, family_name, given_name) triples."""
    (display_a, family_a, given_a), (display_b, family_b, given_b) = a, b
    if family_a is None or family_b is None or given_a is None or given_b is None:
        return False
    return (
        display_a != display_b
        and fold_name(family_a) == fold_name(family_b)
        and given_compatible(given_a, given_b)
    )


def paper_review(papers: pl.DataFrame) -> pl.DataFrame:
    """The paper review queue by the rules above, comparing every pair (for tests and small
    corpora; the pipeline uses the out-of-core build). Sorted by the key."""
    rows = papers.select("paper_id", "title", "abstract").sort("paper_id").rows()
    shingles = {pid: word_shingles(abstract) for pid, _, abstract in rows}
    found: dict[tuple[str, str], str] = {}
    groups: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for pid, title, abstract in rows:
        groups[fold_title(title)].append((pid, abstract))
    for members in groups.values():
        first, first_abstract = members[0]
        for pid, abstract in members[1:]:
            if abstract != first_abstract:
                found[(first, pid)] = SAME_TITLE
    # Every pair, but by size: a set can reach 0.8 only with one at most 5/4 its size.
    sized = sorted((len(s), pid, s) for pid, s in shingles.items() if s is not None)
    for i, (size, pid_a, set_a) in enumerate(sized):
        for other_size, pid_b, set_b in sized[i + 1 :]:
            if NEAR_NUM * other_size > NEAR_DEN * size:
                break
            pair = (pid_a, pid_b) if pid_a < pid_b else (pid_b, pid_a)
            if pair not in found and is_near(set_a, set_b):
                found[pair] = NEAR_ABSTRACT
    out = [(a, b, reason, jaccard(shingles[a], shingles[b])) for (a, b), reason in found.items()]
    return _frame(out, PAPER_REVIEW.polars_schema, ["paper_id_a", "paper_id_b"])


def coauthors(authorship: pl.DataFrame) -> dict[str, set[str]]:
    """Each author's coauthors: the other authors of any of their papers."""
    by_paper: dict[str, set[str]] = defaultdict(set)
    for author_id, paper_id in authorship.select("author_id", "paper_id").iter_rows():
        by_paper[paper_id].add(author_id)
    result: dict[str, set[str]] = defaultdict(set)
    for members in by_paper.values():
        for author_id in members:
            result[author_id] |= members - {author_id}
    return result


def author_review(authors: pl.DataFrame, authorship: pl.DataFrame) -> pl.DataFrame:
    """The author review queue by the rules above, comparing every pair (for tests and small
    corpora). Sorted by the key."""
    rows = authors.select("author_id", "display_name", "family_name", "given_name")
    ordered = rows.sort("author_id").rows()
    found: dict[tuple[str, str], str] = {}
    folded = {author_id: fold_name(display) for author_id, display, _, _ in ordered}
    families = {a: fold_name(f) for a, _, f, _ in ordered if f is not None}
    for (id_a, *a), (id_b, *b) in combinations(ordered, 2):
        if folded[id_a] == folded[id_b]:
            found[(id_a, id_b)] = ACCENTS
        # (the family test first only to skip most pairs fast; initials_match repeats it)
        elif families.get(id_a, 0) == families.get(id_b, 1) and initials_match(
            (a[0], a[1], a[2]), (b[0], b[1], b[2])
        ):
            found[(id_a, id_b)] = INITIALS
    co = coauthors(authorship)
    out = [(a, b, reason, len((co[a] & co[b]) - {a, b})) for (a, b), reason in found.items()]
    return _frame(out, AUTHOR_REVIEW.polars_schema, ["author_id_a", "author_id_b"])


def _frame(
    rows: Iterable[tuple[object, ...]], schema: dict[str, pl.DataType], key: list[str]
) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=schema, orient="row").sort(key)
