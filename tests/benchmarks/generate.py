"""Deterministic corpus generator: N author pages in the exact byte format of `seeds/`.

The pages draw from a pool of papers with heavy-tailed popularity: a small "hot" head (the real
arXiv records first) listed on hundreds of pages, a shared middle listed on about two, and
fresh papers listed on one. Paper 0..499 are the real records of
`../shared/realdata/arxiv_papers.json`; later ones are deterministic recombinations of real
titles and abstract sentences (or of a synthetic vocabulary when the file is absent), each with
a distinct casefolded title + abstract.

`expected.json` is computed from what the generator wrote (its own author and paper indices),
never by running authorgraph:

    python -m tests.benchmarks.generate --pages 20000 --out /tmp/corpus
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

GENERATOR_VERSION = 1
DEFAULT_SEED = 20261125
REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata" / "arxiv_papers.json"
HEADER = "Goto\n\nCollaborating Authors\n\n\u00a0"
REAL_COUNT = 500

# Mean papers per page so that an average page is ~10.5 KB (an average paper is ~1.45 KB).
MEAN_PAPERS_PER_PAGE = 7.55
PAPERS_SIGMA = 0.6  # log-normal spread: most authors list a few papers, some dozens
HOT_SHARE = 0.07  # listings drawn from the hot head (Zipf-like: a few papers on hundreds of pages)
FRESH_SHARE = 0.55  # listings of a paper nobody else lists
DUP_AUTHOR_SHARE = 0.01  # pages that name an earlier page's author again (other spelling)
EMPTY_PAGE_SHARE = 0.002  # header and name, no papers (valid)
SOFT_WRAP_SHARE = 0.01  # listings whose title is soft-wrapped / abstract has a whitespace run

SUBJECTS = {
    "cs.CL": "Computation and Language",
    "cs.LG": "Machine Learning",
    "cs.AI": "Artificial Intelligence",
    "cs.CV": "Computer Vision and Pattern Recognition",
    "cs.IR": "Information Retrieval",
    "cs.CR": "Cryptography and Security",
    "cs.SE": "Software Engineering",
    "cs.RO": "Robotics",
    "cs.DB": "Databases",
    "cs.HC": "Human-Computer Interaction",
}
OTHER_SOURCES = [
    "Proceedings of the AAAI Conference on Artificial Intelligence",
    "Transactions of the Association for Computational Linguistics",
    "Neural Information Processing Systems",
    "IEEE Transactions on Pattern Analysis and Machine Intelligence",
]
LATEX_SNIPPETS = [
    r"$\mathcal{O}(n \log n)$",
    r"$k$-NN",
    r"$\ell_1$",
    r"$V_{0.5}$",
    r"Prism-$Δ$",
    r"$\alpha$-Entmax",
    r"\emph{Sparse}",
    r"$\text{Top-}k$",
]
CJK_FAMILIES = [
    "张",
    "王",
    "李",
    "刘",
    "陈",
    "杨",
    "黄",
    "赵",
    "吴",
    "周",
    "佐藤",
    "鈴木",
    "김",
    "박",
]
CJK_GIVENS = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "翔太",
    "陽菜",
    "민준",
    "서연",
]
SUFFIXES = ["Jr.", "III", "Sr."]
SYNTH_WORDS = [
    "learning",
    "model",
    "language",
    "neural",
    "graph",
    "attention",
    "sparse",
    "robust",
    "efficient",
    "adaptive",
    "retrieval",
    "reasoning",
    "benchmark",
    "transformer",
    "diffusion",
    "agent",
    "policy",
    "semantic",
    "latent",
    "multilingual",
    "evaluation",
    "alignment",
    "representation",
    "scalable",
    "contrastive",
    "generative",
]
SYNTH_NAMES = [
    "Müller",
    "Sarıyüce",
    "Jeļinska",
    "Ólafsdóttir",
    "Nguyễn",
    "Kowalczyk",
    "Østergaard",
    "Ibáñez",
    "Dvořák",
    "Smith",
    "Garcia",
    "Okafor",
    "Haddad",
    "Tanaka",
    "Schmidt",
    "Rossi",
    "Novak",
    "Silva",
    "Ahmed",
    "Kim",
]
SYNTH_GIVENS = [
    "Jürgen",
    "Ahmet",
    "Jeļizaveta",
    "Zoë",
    "Søren",
    "Łukasz",
    "Chloé",
    "Ana",
    "Amir",
    "Yuki",
    "Olga",
    "Kofi",
    "Priya",
    "Mateo",
    "Ines",
]


def nfc(text: str) -> str:
    """NFC text with whitespace runs folded (what every field becomes after parsing)."""
    return unicodedata.normalize("NFC", " ".join(text.split()))


def key_of(*parts: str) -> str:
    """Identity key as the input contract defines it: casefolded, whitespace-folded, NFC."""
    return "\x1f".join(unicodedata.normalize("NFC", " ".join(p.casefold().split())) for p in parts)


def _latin(token: str) -> bool:
    return all(ord(c) < 0x2000 for c in token) and "," not in token


@dataclass
class Vocabulary:
    """What papers and names are built from."""

    titles: list[str]
    abstracts: list[str]
    sources: list[str]
    sentences: list[str]
    title_words: list[str]
    families: list[str]
    givens: list[str]
    real: bool


def load_vocabulary(path: Path = REALDATA) -> Vocabulary:
    """The real records when present; a synthetic vocabulary otherwise."""
    rng = random.Random(7)
    if path.is_file():
        records = json.loads(path.read_text(encoding="utf-8"))
        titles = [nfc(r["title"]) for r in records]
        abstracts = [unicodedata.normalize("NFC", r["abstract"].strip()) for r in records]
        sources = []
        for r in records:
            cat = r["categories"][0] if r["categories"] else ""
            sources.append(f"arXiv.org {SUBJECTS.get(cat, 'Machine Learning')}")
        families: set[str] = set()
        givens: set[str] = set()
        for r in records:
            for name in r["authors"]:
                parts = nfc(name).split(" ")
                if len(parts) >= 2 and all(_latin(p) for p in parts):
                    families.add(parts[-1])
                    givens.add(" ".join(parts[:-1]))
        real = True
    else:
        titles, abstracts, sources = [], [], []
        for _ in range(REAL_COUNT):
            titles.append(" ".join(rng.choice(SYNTH_WORDS) for _ in range(rng.randint(4, 14))))
            sentences = [
                " ".join(rng.choice(SYNTH_WORDS) for _ in range(rng.randint(8, 20))) + "."
                for _ in range(rng.randint(6, 14))
            ]
            abstracts.append(" ".join(sentences).capitalize())
            sources.append(f"arXiv.org {rng.choice(list(SUBJECTS.values()))}")
        families, givens = set(SYNTH_NAMES), set(SYNTH_GIVENS)
        real = False
    sentences = [s for a in abstracts for s in re.split(r"(?<=\.) ", a) if 20 <= len(s) <= 600]
    words = sorted({w for t in titles for w in t.split()})
    return Vocabulary(
        titles=titles,
        abstracts=abstracts,
        sources=sources,
        sentences=sentences,
        title_words=words,
        families=sorted(families),
        givens=sorted(givens),
        real=real,
    )


@dataclass(frozen=True)
class Paper:
    """One paper as written on a page."""

    title: str
    source: str
    abstract: str | None


def paper_block(paper: Paper) -> bytes:
    """A paper's bytes on a page: title, source, abstract separated by one blank line."""
    fields = [paper.title, paper.source] + ([paper.abstract] if paper.abstract is not None else [])
    return "\n\n".join(fields).encode("utf-8")


def render_page(name_line: str, blocks: list[bytes]) -> bytes:
    """A page's bytes, as in `seeds/`: the header, the name line, then the paper blocks
    separated by two blank lines (no newline at the end)."""
    return b"\n\n\n".join([(HEADER + name_line).encode("utf-8"), *blocks])


class PaperPool:
    """Paper `i` is a deterministic function of (seed, i, salt); salts keep keys distinct."""

    def __init__(self, vocab: Vocabulary, seed: int) -> None:
        self.vocab = vocab
        self.seed = seed
        self.salts: dict[int, int] = {}
        self._cache: dict[int, bytes] = {}

    def make(self, index: int, salt: int = 0) -> Paper:
        """Build paper `index` (the real records first, then recombinations)."""
        v = self.vocab
        if index < len(v.titles) and salt == 0:
            return Paper(v.titles[index], v.sources[index], v.abstracts[index])
        rng = random.Random(f"{self.seed}:{index}:{salt}")
        a, b = rng.randrange(len(v.titles)), rng.randrange(len(v.titles))
        ta, tb = v.titles[a].split(), v.titles[b].split()
        title = " ".join(ta[: max(1, len(ta) // 2)] + tb[len(tb) // 2 :])
        if rng.random() < 0.15:
            title = f"{title} with {rng.choice(LATEX_SNIPPETS)}"
        while len(title) < 20:
            title = f"{title} {rng.choice(v.title_words)}"
        if len(title) > 200:
            title = title[:200].rstrip()
        target = rng.randint(400, 2000)
        parts: list[str] = []
        length = 0
        while length < target:
            sentence = rng.choice(v.sentences)
            if length + len(sentence) + 1 > 2000 and length >= 400:
                break
            parts.append(sentence)
            length += len(sentence) + 1
        abstract = " ".join(parts)[:2000].rstrip()
        if rng.random() < 0.02:
            return Paper(title, rng.choice(OTHER_SOURCES), None)  # no abstract: valid
        source = v.sources[a] if rng.random() < 0.9 else rng.choice(OTHER_SOURCES)
        return Paper(title, source, abstract)

    def get(self, index: int) -> Paper:
        """Paper `index` with the salt assigned when keys were checked."""
        return self.make(index, self.salts.get(index, 0))

    def assign_distinct(self, indices: list[int]) -> None:
        """Give each used index a salt such that all casefolded title+abstract keys differ."""
        seen: set[bytes] = set()
        for index in sorted(indices):
            salt = 0
            while True:
                p = self.make(index, salt)
                digest = hashlib.blake2b(
                    key_of(p.title, p.abstract or "").encode(), digest_size=12
                ).digest()
                if digest not in seen:
                    break
                salt += 1
            seen.add(digest)
            if salt:
                self.salts[index] = salt

    def block(self, index: int, cache: bool) -> bytes:
        """The paper's bytes on a page: title, source, abstract separated by one blank line."""
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        data = paper_block(self.get(index))
        if cache:
            self._cache[index] = data
        return data


@dataclass
class Author:
    """A page's author: the written name line and the identity key it maps to."""

    line: str
    key: str
    alt_line: str  # the same person written the other way (comma vs display order)


def _is_cjk(text: str) -> bool:
    return all("\u2e80" <= c <= "\ud7af" or "\uf900" <= c <= "\ufaff" for c in text) and bool(text)


def make_author(rng: random.Random, vocab: Vocabulary, taken: set[str]) -> Author:
    """A new author whose casefolded display name no earlier author has."""
    while True:
        roll = rng.random()
        suffix = None
        if roll < 0.02:
            family, given = rng.choice(CJK_FAMILIES), rng.choice(CJK_GIVENS)
        else:
            family, given = rng.choice(vocab.families), rng.choice(vocab.givens)
            if rng.random() < 0.3:  # widen the name space for large corpora
                given = f"{given} {rng.choice(vocab.givens).split()[0][0]}."
            if roll > 0.985:
                suffix = rng.choice(SUFFIXES)
        display = family + given if _is_cjk(family) and _is_cjk(given) else f"{given} {family}"
        if suffix:
            display = f"{display} {suffix}"
        key = key_of(display)
        if key in taken:
            continue
        taken.add(key)
        line = f"{family}, {suffix}, {given}" if suffix else f"{family}, {given}"
        if roll > 0.97 and not suffix and display == f"{given} {family}":
            line, alt = display, f"{family}, {given}"  # unsplit name line (no comma)
        else:
            alt = display if display == f"{given} {family}" and not suffix else line
        return Author(line=line, key=key, alt_line=alt)


REJECTS: dict[str, bytes] = {
    "EMPTY_FILE": b"",
    "BINARY_CONTENT": (
        HEADER + "Nul, Byte\n\n\nA Paper\n\narXiv.org Databases\n\nAb\x00c."
    ).encode(),
    "INVALID_UTF8": (HEADER + "Bad, Bytes\n\n\nA Paper\n\narXiv.org Databases\n\n").encode()
    + b"caf\xe9 latin-1",
    "MISSING_HEADER": b"Hello\n\nThis is not an author page.",
    "MISSING_AUTHOR_NAME": b"Goto\n\nCollaborating Authors\n\n",
    "INCOMPLETE_PAPER": (
        HEADER + "Trunc, Tina\n\n\nA Tiny Paper\n\narXiv.org Machine Learning\n\nWe study.\n\n\n"
        "A Paper Cut Off Here"
    ).encode(),
}


def generate(
    pages: int, out: Path, seed: int = DEFAULT_SEED, realdata: Path = REALDATA
) -> dict[str, object]:
    """Write `pages` valid pages plus one rejected file per reason code into `out/pages/`.

    Returns the expected result, also written to `out/expected.json`.
    """
    started = time.perf_counter()
    page_dir = out / "pages"
    page_dir.mkdir(parents=True, exist_ok=True)
    for old in page_dir.iterdir():
        if old.is_file():
            old.unlink()
    vocab = load_vocabulary(realdata)
    rng = random.Random(seed)
    pool = PaperPool(vocab, seed)
    listings = pages * MEAN_PAPERS_PER_PAGE
    hot = max(50, min(REAL_COUNT, pages // 40))
    shared = max(hot + 1, int(listings * (1 - HOT_SHARE - FRESH_SHARE) / 2))
    next_fresh = hot + shared
    mu = math.log(MEAN_PAPERS_PER_PAGE) - PAPERS_SIGMA**2 / 2

    # Phase 1: who is on which page (author keys and paper indices only).
    taken: set[str] = set()
    authors: list[Author] = []
    plan: list[tuple[str, str, list[int]]] = []  # (name line, author key, paper indices)
    for _ in range(pages):
        if authors and rng.random() < DUP_AUTHOR_SHARE:
            author = rng.choice(authors)
            line = author.alt_line
        else:
            author = make_author(rng, vocab, taken)
            authors.append(author)
            line = author.line
        count = 0
        if rng.random() >= EMPTY_PAGE_SHARE:
            count = max(1, min(60, round(rng.lognormvariate(mu, PAPERS_SIGMA))))
        papers: list[int] = []
        for _ in range(count):
            roll = rng.random()
            if roll < HOT_SHARE:
                papers.append(int(hot * rng.random() ** 2))
            elif roll < HOT_SHARE + FRESH_SHARE:
                papers.append(next_fresh)
                next_fresh += 1
            else:
                papers.append(hot + rng.randrange(shared))
        plan.append((line, author.key, papers))

    # Phase 2: a distinct casefolded title + abstract for every paper that is used.
    pool.assign_distinct(sorted({i for _, _, papers in plan for i in papers}))

    # Phase 3: write the pages; expected counts come from the generator's own indices.
    width = max(6, len(str(pages + len(REJECTS))))
    reject_at = {(k + 1) * pages // (len(REJECTS) + 1): r for k, r in enumerate(REJECTS)}
    pairs: set[tuple[str, int]] = set()
    author_keys: set[str] = set()
    popularity: dict[int, int] = {}
    rejected: list[dict[str, str]] = []
    total_bytes = listing_count = number = 0
    for page_no, (line, akey, papers) in enumerate(plan):
        if page_no in reject_at:
            reason = reject_at[page_no]
            name = f"{number:0{width}d}_rejected_{reason.lower()}.txt"
            (page_dir / name).write_bytes(REJECTS[reason])
            rejected.append({"file_name": name, "reason_code": reason})
            total_bytes += len(REJECTS[reason])
            number += 1
        blocks = []
        for i in papers:
            block = pool.block(i, cache=i < hot)
            if rng.random() < SOFT_WRAP_SHARE:
                block = _reflow(block, rng)
            blocks.append(block)
            pairs.add((akey, i))
            popularity[i] = popularity.get(i, 0) + 1
        listing_count += len(papers)
        author_keys.add(akey)
        data = render_page(line, blocks)
        digest = hashlib.sha256(line.encode("utf-8")).hexdigest()[:16]
        (page_dir / f"{number:0{width}d}_{digest}.txt").write_bytes(data)
        total_bytes += len(data)
        number += 1
    top = sorted(popularity.values(), reverse=True)
    expected: dict[str, object] = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "pages": pages,
        "files": number,
        "bytes": total_bytes,
        "realdata": vocab.real,
        "authors": len(author_keys),
        "papers": len(popularity),
        "authorship": len(pairs),
        "listings": listing_count,
        "rejected": len(rejected),
        "rejected_files": rejected,
        "popularity": {
            "max_pages_per_paper": top[0] if top else 0,
            "papers_on_100_plus_pages": sum(1 for c in top if c >= 100),
            "papers_on_1_or_2_pages": sum(1 for c in top if c <= 2),
        },
        "generate_seconds": round(time.perf_counter() - started, 3),
    }
    (out / "expected.json").write_text(json.dumps(expected, indent=2), encoding="utf-8")
    return expected


def _reflow(block: bytes, rng: random.Random) -> bytes:
    """Same paper, other whitespace: a soft-wrapped title or a run of spaces in the abstract."""
    text = block.decode("utf-8")
    title, _, rest = text.partition("\n\n")
    if " " in title and rng.random() < 0.5:
        cut = title.index(" ", len(title) // 3) if " " in title[len(title) // 3 :] else -1
        if cut > 0:
            title = title[:cut] + "\n" + title[cut + 1 :]
    else:
        rest = rest.replace(" ", "   ", 1)
    return f"{title}\n\n{rest}".encode()


def main(argv: list[str] | None = None) -> None:
    """CLI: generate a corpus and print its expected counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    expected = generate(args.pages, args.out, args.seed)
    print(json.dumps({k: v for k, v in expected.items() if k != "rejected_files"}, indent=2))


if __name__ == "__main__":
    main()
