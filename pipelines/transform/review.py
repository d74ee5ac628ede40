"""Build the review queues (paper_review, author_review) out of core from the built tables.

The rules are `authorgraph.transforms.review`'s; this module finds the same pairs without
comparing all pairs and without holding a table in Python:
1. keys, written to Parquet in `work_dir` chunk by chunk (`parquet_batches`): each paper's
   folded title; each abstract's MinHash signature (`minhash.signatures`), as LSH band keys and
   as a 16-bit-per-bin fingerprint; each author's folded name parts. The folding is Python's
   own (`fold_title`, `fold_name`), so the joins on it are exact;
2. candidate pairs, in DuckDB (bounded memory, spilling to `work_dir`): SAME_TITLE from the
   folded-title groups, abstracts compared by MD5 (no text held in a join); NEAR_ABSTRACT from
   abstracts sharing at least `MIN_BANDS` band keys whose fingerprints estimate a similarity of
   at least `MIN_ESTIMATE`; ACCENTS and INITIALS from self-joins on the folded display name and
   on (folded family name, first letter of the first given name), INITIALS checked token by
   token in SQL over tokens Python folded;
3. the exact similarity of each paper candidate, streamed in batches and in parts sized to the
   memory limit; NEAR_ABSTRACT candidates under 0.8 dropped. Per chunk of a batch, each distinct
   abstract's word 3-grams (`word_shingles`' rule) are coded one for one as integers
   (`shingle_codes`: words numbered, no hashing) and each distinct pair of abstracts is counted
   with one set intersection (`overlap`);
4. the queues written to `parquet_dir` in key order, in the declared Arrow schemas; shared
   coauthors counted in DuckDB for the flagged author pairs only.

Nothing here changes papers, authors or authorship.

NEAR_ABSTRACT is a probabilistic search: with 20 bands of 5 rows and 2 bands required, a pair
of similarity 0.9 is missed with probability about 5e-7, a pair at 0.8 about 4e-3 (the
estimate's cut at 0.6 is 5 standard deviations under 0.8 and adds about 3e-7).
"""

from __future__ import annotations

import itertools
import shutil
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from typing import Any, cast

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from authorgraph.pipelines.config import limit_bytes
from authorgraph.pipelines.load.errors import MemoryLimitReached
from authorgraph.pipelines.load.publish import (
    NO_PROGRESS_BAR,
    make_dir,
    no_world_write,
    one_thread,
    os_errors,
    sql_literal,
)
from authorgraph.pipelines.transform.minhash import (
    BANDS,
    BINS,
    CHUNK_ROWS,
    U64,
    estimated_similarity,
    fingerprints,
    keys_of,
    signatures,
    split_words,
)
from authorgraph.pipelines.transform.parts import (
    ROW_GROUP_ROWS,
    id_prefixes,
    part_filter,
    split_by,
    split_by_prefix,
)
from authorgraph.transforms.review import (
    ACCENTS,
    INITIALS,
    NEAR_ABSTRACT,
    SAME_TITLE,
    SHINGLE_WORDS,
    fold_name,
    fold_title,
    initial_of,
    near,
    overlap,
    similarity,
)
from authorgraph.transforms.schema import AUTHOR_REVIEW, PAPER_REVIEW, Table, arrow_array, numpy_of

#: A pair of abstracts is a NEAR_ABSTRACT candidate when it shares this many band keys ...
MIN_BANDS = 2
#: ... and its signatures estimate a similarity of at least this (5 standard deviations under
#: 0.8 with 100 bins), before the exact check.
MIN_ESTIMATE = 0.6
#: Memory an abstract takes while scored, besides its text: a Python string and a dict entry.
TEXT_BYTES = 256
#: The share of the memory limit one scoring part's abstracts may take: at 200k pages and
#: 512MB, a whole limit's worth (3 parts) put the review's process at 1.12 GiB; half of it
#: (6 parts) costs three more reads of papers' abstracts, about 2 s each.
SCORE_SHARE = 0.5
#: Added to HyperLogLog's estimate of the papers the candidates name when sizing the scoring
#: parts (its standard error is about 1.6%).
APPROX_MARGIN = 0.05
#: Rows per batch when reading titles and names, and when scoring candidates.
BATCH_ROWS = 16_384
#: Characters of abstracts whose 3-grams are encoded at once while scoring (the codes and their
#: temporaries take about 25 bytes per character: about 100 MB).
SCORE_CHARS = 4_000_000
#: Papers with more authors than this are not expanded into co-author pairs when counting
#: shared co-authors (`_shared_coauthors_sql`); the count stays exact.
BIG_PAPER_AUTHORS = 1_000
#: Distinct words up to which a 3-gram's code (x * V + y) * V + z fits in 63 bits.
CUBE_WORDS = (1 << 21) - 1

_TITLE_KEYS = pa.schema([pa.field("paper_id", pa.string()), pa.field("title_key", pa.string())])
#: One file per LSH band: (row, key) of every abstract with a 3-gram, where `row` is the
#: paper's row number in papers.parquet: the band joins and the count of shared bands work on
#: two integers, not two 16-character ids (at 2M pages, 347M band hits: counting them by ids
#: ran out of 512MB, by row numbers it took 52 s).
_BAND_TYPES: dict[str, pa.DataType] = {"row": pa.uint64(), "key": pa.uint64()}
_BAND_KEYS = pa.schema(_BAND_TYPES)
_FINGERPRINT = pa.binary(2 * BINS)
#: Each abstract's signature fingerprint, and the paper_id of its row number.
_FINGERPRINT_TYPES: dict[str, pa.DataType] = {
    "row": pa.uint64(),
    "paper_id": pa.string(),
    "fingerprint": _FINGERPRINT,
}
_FINGERPRINTS = pa.schema(_FINGERPRINT_TYPES)
_NAME_KEYS = pa.schema(
    [
        ("author_id", pa.string()),
        ("display_name", pa.string()),
        ("name_key", pa.string()),
        ("family_key", pa.string()),
        ("block", pa.string()),
        ("tokens", pa.list_(pa.string())),
        ("initials", pa.list_(pa.string())),
        ("firsts", pa.list_(pa.string())),
    ]
)


@contextmanager
def _writer(path: Path, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        yield writer
    no_world_write(path)


def _batch(columns: list[list[Any]], schema: pa.Schema) -> pa.RecordBatch:
    """A record batch of Python values, typed by `schema`."""
    arrays = [arrow_array(c, f.type) for c, f in zip(columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def parquet_batches(path: Path, rows: int, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """`columns` of the Parquet file at `path`, `rows` rows at a time, holding only the batch
    being read. Without `pre_buffer=False` (pyarrow's default is True), the reader keeps every
    column chunk it has read until it is closed: 202 MiB of Arrow memory at the end of 530k
    abstracts (a process 280 MiB larger), and 5 MiB with it, as fast."""
    return pq.ParquetFile(path, pre_buffer=False).iter_batches(rows, columns=columns)


def write_title_keys(papers: Path, target: Path) -> None:
    """(paper_id, folded title) of every paper, read and written in batches."""
    with _writer(target, _TITLE_KEYS) as out:
        for batch in parquet_batches(papers, BATCH_ROWS, ["paper_id", "title"]):
            keys = [fold_title(str(t)) for t in batch.column(1).to_pylist()]
            out.write_batch(_batch([batch.column(0).to_pylist(), keys], _TITLE_KEYS))


def band_files(band_dir: Path) -> list[Path]:
    """The per-band key files `write_band_keys` writes, band 0 first."""
    return [band_dir / f"band-{band:02d}.parquet" for band in range(BANDS)]


_BandRows = tuple[U64, pa.Array, U64, npt.NDArray[np.uint16]]


def _band_rows(batch: pa.RecordBatch, first_row: int) -> _BandRows | None:
    """(row number, paper_id, band keys, fingerprints) of a batch's abstracts that have a
    3-gram; the batch's first row is row `first_row` of the file."""
    present = np.flatnonzero(numpy_of(batch.column(1).is_valid()))
    dense, valid = signatures(batch.column(1).take(arrow_array(present, pa.int64())))
    rows = present[valid]
    if not len(rows):
        return None
    ids = batch.column(0).take(arrow_array(rows, pa.int64())).cast(pa.string())
    return (
        rows.astype(np.uint64) + np.uint64(first_row),
        ids,
        keys_of(dense[valid]),
        fingerprints(dense[valid]),
    )


def write_band_keys(
    papers: Path, band_dir: Path, fingerprint_target: Path, threads: int = 1
) -> None:
    """(row, key) of every abstract with a 3-gram, one file per band (`band_files`), and its
    signature's fingerprint (row, paper_id, fingerprint), a chunk of abstracts at a time on
    `threads` threads (Arrow, polars and numpy release the GIL for most of the work: 1.4x
    faster on 2 cores), at most `threads` chunks in flight and written in order."""
    make_dir(band_dir)
    with ExitStack() as stack:
        outs = [stack.enter_context(_writer(path, _BAND_KEYS)) for path in band_files(band_dir)]
        prints = stack.enter_context(_writer(fingerprint_target, _FINGERPRINTS))
        pool = stack.enter_context(ThreadPoolExecutor(max(threads, 1)))
        # Chunks of CHUNK_ROWS / threads abstracts: the chunks in flight together take the
        # memory one CHUNK_ROWS chunk took on one thread (and are as fast: 3.0 s vs 2.9 s at 20k).
        rows = max(CHUNK_ROWS // max(threads, 1), 1)
        batches = parquet_batches(papers, rows, ["paper_id", "abstract"])
        pending: deque[Future[_BandRows | None]] = deque()
        first_row = 0
        for batch in itertools.chain(batches, [None]):
            if batch is not None:
                pending.append(pool.submit(_band_rows, batch, first_row))
                first_row += batch.num_rows
            while pending and (batch is None or len(pending) >= max(threads, 1)):
                done = pending.popleft().result()
                if done is None:
                    continue
                numbers, kept_ids, keys, marks = done
                row_column = arrow_array(numbers, pa.uint64())
                for band, out in enumerate(outs):
                    key_column = arrow_array(keys[:, band], _BAND_TYPES["key"])
                    out.write_batch(pa.record_batch([row_column, key_column], schema=_BAND_KEYS))
                blob = pa.py_buffer(np.ascontiguousarray(marks).tobytes())
                column = pa.FixedSizeBinaryArray.from_buffers(
                    _FINGERPRINT, len(kept_ids), [None, blob]
                )
                prints.write_batch(
                    pa.record_batch([row_column, kept_ids, column], schema=_FINGERPRINTS)
                )


def _fingerprint_rows(column: pa.Array) -> npt.NDArray[np.uint16]:
    """A column of fingerprints (fixed- or variable-size binary, all 2 * BINS bytes, no nulls)
    as an array of shape (rows, BINS)."""
    column = column.cast(pa.large_binary())
    offset_buffer, data_buffer = column.buffers()[1:3]
    assert offset_buffer is not None and data_buffer is not None
    offsets = np.frombuffer(memoryview(offset_buffer), np.int64)
    offsets = offsets[column.offset :][: len(column) + 1]
    data = np.frombuffer(memoryview(data_buffer), np.uint8)[offsets[0] : offsets[-1]]
    return data.view(np.uint16).reshape(len(column), BINS)


def prune_near(con: duckdb.DuckDBPyConnection, pairs: str, prints: str, target: Path) -> None:
    """Keep the candidate pairs (row numbers, from `near_pairs`) whose signatures estimate a
    similarity of at least `MIN_ESTIMATE` (far below 0.8: a true pair is dropped with
    probability about 1e-6), written as (paper_id_a, paper_id_b), paper_id_a < paper_id_b."""
    schema = pa.schema([pa.field("paper_id_a", pa.string()), pa.field("paper_id_b", pa.string())])
    reader = con.sql(
        f"""SELECT least(x.paper_id, y.paper_id) AS paper_id_a,
            greatest(x.paper_id, y.paper_id) AS paper_id_b,
            x.fingerprint AS x, y.fingerprint AS y
        FROM read_parquet({pairs}) AS p
        JOIN read_parquet({prints}) AS x ON x.row = p.row_a
        JOIN read_parquet({prints}) AS y ON y.row = p.row_b"""
    ).to_arrow_reader(BATCH_ROWS)
    with _writer(target, schema) as out:
        for batch in reader:
            x, y = _fingerprint_rows(batch.column("x")), _fingerprint_rows(batch.column("y"))
            keep = estimated_similarity(x, y) >= MIN_ESTIMATE
            if keep.any():
                mask = arrow_array(keep, pa.bool_())
                out.write_batch(
                    pa.record_batch(
                        [batch.column(0).filter(mask), batch.column(1).filter(mask)],
                        schema=schema,
                    )
                )


def _name_row(
    author_id: str, display: str, family: str | None, given: str | None
) -> tuple[object, ...]:
    tokens = fold_name(given).split() if family is not None and given is not None else None
    return (
        author_id,
        display,
        fold_name(display),
        fold_name(family) if tokens is not None and family is not None else None,
        (tokens[0][:1] if tokens else None),
        tokens,
        [initial_of(t) for t in tokens] if tokens is not None else None,
        [t[:1] for t in tokens] if tokens is not None else None,
    )


def write_name_keys(authors: Path, target: Path) -> None:
    """Each author's folded display name, folded family name and folded given-name tokens."""
    columns = ["author_id", "display_name", "family_name", "given_name"]
    with _writer(target, _NAME_KEYS) as out:
        for batch in parquet_batches(authors, BATCH_ROWS, columns):
            rows = [
                _name_row(*r) for r in zip(*(c.to_pylist() for c in batch.columns), strict=True)
            ]
            if rows:
                columns_out = [list(c) for c in zip(*rows, strict=True)]
                out.write_batch(_batch(columns_out, _NAME_KEYS))


def near_pairs(con: duckdb.DuckDBPyConnection, band_dir: Path, target: Path) -> None:
    """Pairs of abstracts (row_a < row_b, their row numbers in papers.parquet) sharing at least
    MIN_BANDS band keys, into `target`. Each band is joined with itself alone (one key per
    abstract: a twentieth of the keys in a join at a time; all bands at once ran out of 512MB
    at 200k pages), its pairs written out, and the pairs of every band counted afterwards."""
    hits = []
    for path in band_files(band_dir):
        out = path.with_name(f"pairs-{path.name}")
        source = sql_literal(str(path))
        con.execute(
            f"""COPY (
                SELECT x.row AS row_a, y.row AS row_b
                FROM read_parquet({source}) AS x JOIN read_parquet({source}) AS y
                  ON x.key = y.key AND x.row < y.row
            ) TO {sql_literal(str(out))} (FORMAT parquet)"""
        )
        hits.append(sql_literal(str(out)))
    con.execute(
        f"""COPY (
            SELECT row_a, row_b FROM read_parquet([{", ".join(hits)}])
            GROUP BY ALL HAVING count(*) >= {MIN_BANDS}
        ) TO {sql_literal(str(target))} (FORMAT parquet)"""
    )


def _paper_candidates_sql(papers: str, titles: str, near: str) -> str:
    return f"""
        WITH title_groups AS (
            SELECT title_key, min(paper_id) AS head FROM read_parquet({titles})
            GROUP BY title_key HAVING count(*) > 1
        ),
        members AS (
            SELECT t.paper_id, g.head FROM read_parquet({titles}) AS t
            JOIN title_groups AS g USING (title_key)
        ),
        -- Abstracts compared by their MD5 (equal digests: equal texts; two nulls are equal),
        -- so no text is held in a join.
        digests AS (
            SELECT paper_id, md5_number(abstract) AS digest FROM read_parquet({papers})
            SEMI JOIN members USING (paper_id)
        ),
        same_title AS (
            SELECT m.head AS paper_id_a, m.paper_id AS paper_id_b
            FROM members AS m
            JOIN digests AS x ON x.paper_id = m.head
            JOIN digests AS y ON y.paper_id = m.paper_id
            WHERE m.paper_id <> m.head AND x.digest IS DISTINCT FROM y.digest
        ),
        near AS (SELECT paper_id_a, paper_id_b FROM read_parquet({near})),
        final AS (
            SELECT *, '{SAME_TITLE}' AS reason FROM same_title
            UNION ALL
            SELECT *, '{NEAR_ABSTRACT}' AS reason FROM near
            ANTI JOIN same_title USING (paper_id_a, paper_id_b)
        )
        SELECT * FROM final
    """


def after_scoring_share(memory_limit: str) -> str:
    """DuckDB's limit while this process holds Python's share (`SCORE_SHARE`) of the memory
    limit: the scoring's abstracts, or what the paper steps left (the author steps)."""
    rest = int(limit_bytes(memory_limit) * (1 - SCORE_SHARE)) >> 20
    return f"{max(rest, 16)}MB"


def score_parts(papers: int, memory_limit: str, abstract_bytes: int) -> int:
    """How many parts to score candidates in, so that one part's abstracts take at most
    `SCORE_SHARE` of the memory limit (DuckDB keeps up to the limit in its own buffers
    meanwhile): `papers` abstracts in all (`split_candidates` counts each first paper's and
    each pair's second), one taking `abstract_bytes` on average (its Parquet size) plus
    `TEXT_BYTES` as a Python string."""
    budget = int(limit_bytes(memory_limit) * SCORE_SHARE)
    return max(1, -(-papers * (abstract_bytes + TEXT_BYTES) // budget))


def mean_abstract_bytes(papers: Path) -> int:
    """The mean uncompressed Parquet size of an abstract in `papers` (0 when it has no rows),
    from the file's footer."""
    meta = pq.read_metadata(papers)
    column = meta.schema.names.index("abstract")
    total = sum(
        meta.row_group(i).column(column).total_uncompressed_size for i in range(meta.num_row_groups)
    )
    return total // meta.num_rows if meta.num_rows else 0


def split_candidates(
    con: duckdb.DuckDBPyConnection,
    papers: Path,
    candidates: Path,
    memory_limit: str,
    work: Path,
) -> list[tuple[str, str]]:
    """The scoring's input in parts that fit the memory limit, read in time linear in the
    corpus: per part, (SQL of its first abstracts: `paper_id`, `abstract`; SQL of its pairs
    with the second abstract: `paper_id_a`, `paper_id_b`, `reason`, `abstract_b`).

    1. Joins: each pair gets its second abstract, and each first paper its abstract. When the
       papers' abstracts outgrow the memory limit, both joins run a paper-id prefix at a time
       (`id_prefixes`, as the build does), over that prefix's split of the candidates and that
       prefix's range of `papers` (`part_filter`: the file is in key order, so DuckDB reads
       its row groups alone). One join of 18.1M candidates with 10.7M papers ran out of 512MB.
    2. Parts: the joined rows are split by a hash of `paper_id_a` into `score_parts` parts,
       so that a part's first abstracts (held in a dict) and its pairs (sorted by DuckDB)
       fit. A hash, not an id prefix: a SAME_TITLE star's first paper is its group's smallest
       id, so at 2M pages three stars in four have one in prefix `0`.

    Until 2026-11-29 each part read all of `papers` for the abstracts it needed: 63 parts and
    19 minutes at 2M pages, growing with the square of the corpus."""
    source = f"read_parquet({_lit(papers)})"
    pairs_source = f"read_parquet({_lit(candidates)})"

    def pairs_of(pairs: str, prefix: str) -> str:
        return f"""SELECT c.paper_id_a, c.paper_id_b, c.reason, p.abstract AS abstract_b
            FROM {pairs} AS c
            JOIN (SELECT paper_id, abstract FROM {source} WHERE {part_filter("paper_id", prefix)})
              AS p ON p.paper_id = c.paper_id_b"""

    def firsts_of(ids: str, prefix: str) -> str:
        return f"""SELECT paper_id, abstract FROM {source}
            WHERE {part_filter("paper_id", prefix)} AND paper_id IN (SELECT paper_id FROM {ids})"""

    abstract = mean_abstract_bytes(papers)
    data = 2 * abstract * pq.read_metadata(papers).num_rows
    ranges = id_prefixes(data, limit_bytes(memory_limit))
    rows = con.execute(
        f"SELECT count(*), approx_count_distinct(paper_id_a) FROM {pairs_source}"
    ).fetchall()
    if not rows[0][0]:
        return []
    # Each pair's second abstract and each first abstract, once; a few percent over the count.
    parts = score_parts(
        int((rows[0][0] + rows[0][1]) * (1 + APPROX_MARGIN)), memory_limit, abstract
    )
    first_ids = f"SELECT paper_id_a AS paper_id FROM {pairs_source}"
    pairs, firsts = pairs_of(pairs_source, ""), firsts_of(f"({first_ids})", "")
    if len(ranges) == 1 and parts == 1:
        return [(firsts, pairs)]
    split = make_dir(work / "score_split")
    if len(ranges) > 1:  # on the connection's threads, as every split here
        digits = len(ranges[0])
        seconds = split_by_prefix(
            con, f"SELECT * FROM {pairs_source}", digits, split / "seconds", "paper_id_b"
        )
        pairs = _joined(con, seconds, pairs_of, split / "joined" / "pairs")
        ids = split_by_prefix(con, first_ids, digits, split / "first_ids")
        firsts = _joined(con, ids, firsts_of, split / "joined" / "firsts")
        for done in ("seconds", "first_ids"):  # joined: give the disk back
            shutil.rmtree(split / done)
    if parts == 1:
        return [(firsts, pairs)]
    key = f"hash({{}}) % {parts}"
    by_part = split_by(con, pairs, key.format("paper_id_a"), split / "pairs")
    firsts_by_part = split_by(con, firsts, key.format("paper_id"), split / "firsts")
    shutil.rmtree(split / "joined", ignore_errors=True)  # split: give the disk back (4 GB at 2M)
    return [
        (f"SELECT * FROM {_files(firsts_by_part[part])}", f"SELECT * FROM {_files(files)}")
        for part, files in sorted(by_part.items())
    ]


def _joined(
    con: duckdb.DuckDBPyConnection,
    inputs: dict[str, list[Path]],
    join: Callable[[str, str], str],
    target: Path,
) -> str:
    """SQL reading `join(files, prefix)` run for each prefix's files (at least one prefix),
    each written to its own file in `target`."""
    outputs = []
    for prefix, files in sorted(inputs.items()):
        outputs.append(make_dir(target) / f"{prefix}.parquet")
        _copy(con, join(_files(files), prefix), outputs[-1])
    return f"SELECT * FROM {_files(outputs)}"


def score_papers(
    con: duckdb.DuckDBPyConnection,
    sources: list[tuple[str, str]],
    target: Path,
    threads: int = 1,
) -> None:
    """The exact similarity of each candidate pair; NEAR_ABSTRACT pairs under 0.8 dropped.
    Part by part (`split_candidates`): the part's first abstracts into a dict, then its pairs
    in paper_id_a order, so a SAME_TITLE group's first paper is encoded once for its whole
    star. A batch's chunks of texts are encoded on `threads` threads (Arrow's part of it
    releases the GIL)."""
    schema = PAPER_REVIEW.arrow_schema
    with one_thread(con), _writer(target, schema) as out, ThreadPoolExecutor(threads) as pool:
        for first_source, pair_source in sources:
            texts: dict[str, str | None] = {}
            for batch in con.sql(first_source).to_arrow_reader(BATCH_ROWS):
                ids, abstracts = batch.column(0).to_pylist(), batch.column(1).to_pylist()
                texts.update(zip(ids, abstracts, strict=True))
            reader = con.sql(
                f"SELECT * FROM ({pair_source}) ORDER BY paper_id_a, paper_id_b"
            ).to_arrow_reader(BATCH_ROWS)
            for batch in reader:
                kept = _scored(batch, texts, pool)
                if kept:
                    out.write_batch(_batch([list(c) for c in zip(*kept, strict=True)], schema))


def _files(paths: list[Path]) -> str:
    """SQL reading Parquet files (at least one)."""
    return f"read_parquet([{', '.join(_lit(p) for p in paths)}])"


def _copy(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    """`query`'s rows into a Parquet file in row groups of ROW_GROUP_ROWS (texts: see there)."""
    con.execute(
        f"COPY ({query}) TO {_lit(target)} (FORMAT parquet, COMPRESSION zstd, "
        f"COMPRESSION_LEVEL 1, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
    )


def shingle_codes(texts: list[str | None]) -> tuple[npt.NDArray[np.int64], list[int]]:
    """Each text's word 3-grams (`word_shingles`: `casefold().split()`) as int64 codes that
    stand one for one for them: text i's are `codes[offsets[i]:offsets[i + 1]]` (with
    repeats), none when it is None or has fewer than 3 words. Exact, no hashing: the words
    are numbered (Arrow's dictionary encoding: equal strings, equal numbers) and a 3-gram
    (x, y, z) of numbers under V is coded (x * V + y) * V + z."""
    # Python casefolds; Arrow splits (`split_words`), leaving empty strings at the ends of
    # runs of whitespace: dropped.
    lists = split_words([t.casefold() if t is not None else "" for t in texts])
    flat: Any = pc.list_flatten(lists)  # (the stubs type it as a list)
    kept = pc.cast(pc.binary_length(flat), pa.bool_())  # non-empty words (Arrow alone)
    parents = numpy_of(pc.list_parent_indices(lists).filter(kept))
    bounds = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(np.bincount(parents, minlength=len(texts)), out=bounds[1:])
    encoded = cast("pa.DictionaryArray", pc.dictionary_encode(flat.filter(kept)))
    words = numpy_of(encoded.indices).astype(np.int64)
    size = len(encoded.dictionary)
    lengths = np.diff(bounds)
    counts = np.maximum(lengths - (SHINGLE_WORDS - 1), 0)
    # A 3-gram starts at every word but each text's last two.
    starts = np.ones(len(words), np.bool_)
    for back in range(1, SHINGLE_WORDS):
        starts[bounds[1:][lengths >= back] - back] = False
    starts = starts[: max(len(words) - (SHINGLE_WORDS - 1), 0)]
    x, y, z = words[:-2][starts], words[1:-1][starts], words[2:][starts]
    if size <= CUBE_WORDS:
        codes = (x * size + y) * size + z
    else:  # number the (x, y) pairs first: fewer of them than words in all
        _, numbered = np.unique(x * size + y, return_inverse=True)
        codes = numbered.astype(np.int64) * size + z
    offsets = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return codes, offsets.tolist()


def text_overlaps(pairs: list[tuple[str | None, str | None]]) -> list[tuple[int, int] | None]:
    """`overlap` of each pair of texts' 3-gram sets (None when a text has fewer than 3 words),
    each distinct text encoded once (`shingle_codes`) and each distinct pair of texts counted
    once; one set held at a time beside the one being compared, so memory is the texts' codes."""
    index: dict[str | None, int] = {}
    numbered = [
        (index.setdefault(a, len(index)), index.setdefault(b, len(index))) for a, b in pairs
    ]
    keys = [(x, y) if x <= y else (y, x) for x, y in numbered]
    codes, offsets = shingle_codes(list(index))

    def codes_of(i: int) -> set[int] | None:
        start, end = offsets[i], offsets[i + 1]
        return set(codes[start:end].tolist()) if end > start else None

    found: dict[tuple[int, int], tuple[int, int] | None] = {}
    held, held_set = -1, None
    for x, y in sorted(set(keys)):  # by the first text: its set is made once
        if x != held:
            held, held_set = x, codes_of(x)
        other = held_set if y == x else codes_of(y) if held_set is not None else None
        found[(x, y)] = None if held_set is None or other is None else overlap(held_set, other)
    return [found[k] for k in keys]


def _scored(
    batch: pa.RecordBatch, texts: dict[str, str | None], pool: Executor
) -> list[tuple[str, str, str, float | None]]:
    """The batch's pairs (paper_id_a, paper_id_b, reason, abstract_b) with the exact
    similarity of their abstracts (paper_id_a's in `texts`), NEAR_ABSTRACT pairs under 0.8
    dropped; texts encoded SCORE_CHARS characters at a time, the chunks spread over `pool`."""
    ids_a = cast("list[str]", batch.column(0).to_pylist())
    ids_b = cast("list[str]", batch.column(1).to_pylist())
    reasons = cast("list[str]", batch.column(2).to_pylist())
    texts_a = [texts[i] for i in ids_a]
    texts_b = cast("list[str | None]", batch.column(3).to_pylist())
    kept: list[tuple[str, str, str, float | None]] = []
    chunks = list(_chunks(texts_a, texts_b))
    scored = pool.map(
        text_overlaps,
        [list(zip(texts_a[start:end], texts_b[start:end], strict=True)) for start, end in chunks],
    )
    for (start, _), overlaps in zip(chunks, scored, strict=True):
        for i, counts in enumerate(overlaps, start):
            if reasons[i] == SAME_TITLE or near(counts):
                kept.append((ids_a[i], ids_b[i], reasons[i], similarity(counts)))
    return kept


def _chunks(texts_a: list[str | None], texts_b: list[str | None]) -> Iterator[tuple[int, int]]:
    """(start, end) of runs of pairs whose texts total at most SCORE_CHARS (one pair at least)."""
    start, chars = 0, 0
    for i, (a, b) in enumerate(zip(texts_a, texts_b, strict=True)):
        size = len(a or "") + len(b or "")
        if i > start and chars + size > SCORE_CHARS:
            yield start, i
            start, chars = i, 0
        chars += size
    if start < len(texts_a):
        yield start, len(texts_a)


def _author_pairs_sql(names: str) -> str:
    agree = (
        "x.tokens[i] = y.tokens[i] OR coalesce(x.initials[i] = y.firsts[i], false) "
        "OR coalesce(y.initials[i] = x.firsts[i], false)"
    )
    compatible = (
        "list_bool_and(list_transform(range(1, least(len(x.tokens), len(y.tokens)) + 1), "
        f"lambda i: {agree}))"
    )
    return f"""
        WITH names AS (SELECT * FROM read_parquet({names})),
        accents AS (
            SELECT x.author_id AS author_id_a, y.author_id AS author_id_b
            FROM names AS x JOIN names AS y
              ON x.name_key = y.name_key AND x.author_id < y.author_id
        ),
        -- INITIALS pairs share the folded family name and the first given token's first letter
        -- (given names that fold to no token at all are compatible with any given name).
        blocked AS (
            SELECT x.*, y.author_id AS y_id FROM names AS x JOIN names AS y
              ON x.family_key = y.family_key AND x.block = y.block AND x.author_id < y.author_id
            WHERE x.display_name <> y.display_name AND {compatible}
        ),
        unblocked AS (
            SELECT least(x.author_id, y.author_id) AS author_id_a,
                   greatest(x.author_id, y.author_id) AS author_id_b
            FROM names AS x JOIN names AS y
              ON x.family_key = y.family_key AND x.author_id <> y.author_id
            WHERE x.block IS NULL AND len(x.tokens) = 0 AND x.display_name <> y.display_name
        ),
        initials AS (
            SELECT author_id AS author_id_a, y_id AS author_id_b FROM blocked
            UNION SELECT * FROM unblocked
        ),
        final AS (
            SELECT *, '{ACCENTS}' AS reason FROM accents
            UNION ALL
            SELECT *, '{INITIALS}' AS reason FROM initials
            ANTI JOIN accents USING (author_id_a, author_id_b)
        )
        SELECT * FROM final
    """


def _shared_coauthors_sql(authorship: str, big_paper: int = BIG_PAPER_AUTHORS) -> str:
    """Each flagged pair with the number of other authors who share a paper with both.

    Listing every author's co-authors costs k(k-1) rows for a paper of k authors: 5.7e9 rows
    at 2M benchmark pages, from a few papers listed on tens of thousands of pages. So papers of
    more than `big_paper` authors are never expanded; the count stays exact:
    - S(x): x's co-authors through small papers (listed, as before); B(x): x's big papers;
    - c is a co-author of a when c is in S(a) or B(c) meets B(a);
    - a pair where neither author has a big paper counts S(a) and S(b)'s common members;
    - otherwise, the authors in S(a) or S(b) are checked one by one (B(c) against B(a) and
      B(b)), except those on a big paper of each, which are all counted at once: the authors
      whose B(c) meets both B(a) and B(b), from the distinct big-paper sets and how many
      authors have each set (a and b themselves included there when B(a) meets B(b)).
    """
    return f"""
        WITH flagged AS (
            SELECT author_id_a AS author_id FROM author_pairs
            UNION SELECT author_id_b FROM author_pairs
        ),
        links AS (SELECT author_id, paper_id FROM read_parquet({authorship})),
        -- Only the flagged authors' papers are sized: another paper's authors never meet a
        -- flagged author's big paper. (Each step materialized in turn: DuckDB does not push a
        -- filter into a materialized CTE's scan.)
        flagged_links AS MATERIALIZED (
            SELECT author_id, paper_id FROM links
            WHERE author_id IN (SELECT author_id FROM flagged)
        ),
        big_papers AS MATERIALIZED (
            SELECT paper_id FROM links
            WHERE paper_id IN (SELECT paper_id FROM flagged_links)
            GROUP BY paper_id HAVING count(*) > {big_paper}
        ),
        big_of AS MATERIALIZED (
            SELECT author_id, list(paper_id ORDER BY paper_id) AS papers
            FROM links WHERE paper_id IN (SELECT paper_id FROM big_papers)
            GROUP BY author_id
        ),
        coauthors AS MATERIALIZED (
            SELECT DISTINCT x.author_id, y.author_id AS other
            FROM (SELECT * FROM flagged_links ANTI JOIN big_papers USING (paper_id)) AS x
            JOIN links AS y ON x.paper_id = y.paper_id AND x.author_id <> y.author_id
        ),
        pairs AS MATERIALIZED (
            SELECT p.author_id_a, p.author_id_b, ba.papers AS big_a, bb.papers AS big_b
            FROM author_pairs AS p
            LEFT JOIN big_of AS ba ON ba.author_id = p.author_id_a
            LEFT JOIN big_of AS bb ON bb.author_id = p.author_id_b
        ),
        -- Neither has a big paper: each pair's first author's co-authors, then those the
        -- second one shares. Left to itself DuckDB joined co-authors on co-authors first:
        -- 681M rows and 33 s at 200k pages, against 3 s this way.
        of_a AS MATERIALIZED (
            SELECT p.author_id_a, p.author_id_b, ca.other
            FROM pairs AS p JOIN coauthors AS ca ON ca.author_id = p.author_id_a
            WHERE p.big_a IS NULL AND p.big_b IS NULL AND ca.other <> p.author_id_b
        ),
        plain AS (
            SELECT a.author_id_a, a.author_id_b, count(*) AS shared_coauthors
            FROM of_a AS a SEMI JOIN coauthors AS cb
              ON cb.author_id = a.author_id_b AND cb.other = a.other
            GROUP BY ALL
        ),
        -- Either has a big paper: S(a) and S(b), each author once, with the sides it is on.
        near AS (
            SELECT author_id_a, author_id_b, other, bool_or(side_a) AS in_a,
                   bool_or(NOT side_a) AS in_b
            FROM (
                SELECT p.author_id_a, p.author_id_b, c.other, true AS side_a
                FROM pairs AS p JOIN coauthors AS c ON c.author_id = p.author_id_a
                WHERE p.big_a IS NOT NULL OR p.big_b IS NOT NULL
                UNION ALL
                SELECT p.author_id_a, p.author_id_b, c.other, false AS side_a
                FROM pairs AS p JOIN coauthors AS c ON c.author_id = p.author_id_b
                WHERE p.big_a IS NOT NULL OR p.big_b IS NOT NULL
            )
            WHERE other <> author_id_a AND other <> author_id_b
            GROUP BY ALL
        ),
        near_counted AS (
            SELECT author_id_a, author_id_b,
                   count(*) FILTER ((in_a OR big_ca) AND (in_b OR big_cb)
                                    AND NOT (big_ca AND big_cb)) AS shared
            FROM (
                SELECT n.author_id_a, n.author_id_b, n.in_a, n.in_b,
                       coalesce(list_has_any(bc.papers, p.big_a), false) AS big_ca,
                       coalesce(list_has_any(bc.papers, p.big_b), false) AS big_cb
                FROM near AS n
                JOIN pairs AS p USING (author_id_a, author_id_b)
                LEFT JOIN big_of AS bc ON bc.author_id = n.other
            )
            GROUP BY ALL
        ),
        -- Authors on a big paper of each, per distinct (B(a), B(b)), as |U(A)| + |U(B)| -
        -- |U(A + B)|, where |U(S)| (the authors on any paper of S) is the sum of S's papers'
        -- authors less, for each author on two or more of them, the times too many it was
        -- counted. Authors are grouped by their exact set of big papers ("sets": a few
        -- thousand at 2M pages), and only sets that share two papers with S are looked at.
        sets AS MATERIALIZED (
            SELECT row_number() OVER () AS set_id, papers, count
            FROM (SELECT papers, count(*) AS count FROM big_of GROUP BY papers)
        ),
        set_papers AS MATERIALIZED (SELECT set_id, unnest(papers) AS paper_id FROM sets),
        paper_authors AS MATERIALIZED (
            SELECT sp.paper_id, sum(s.count)::BIGINT AS authors
            FROM set_papers AS sp JOIN sets AS s USING (set_id) GROUP BY ALL
        ),
        set_twos AS MATERIALIZED (
            SELECT x.set_id, x.paper_id AS p, y.paper_id AS q
            FROM set_papers AS x
            JOIN set_papers AS y ON x.set_id = y.set_id AND x.paper_id < y.paper_id
        ),
        combos AS MATERIALIZED (
            SELECT DISTINCT big_a, big_b,
                   list_sort(list_distinct(list_concat(big_a, big_b))) AS big_ab
            FROM pairs WHERE big_a IS NOT NULL AND big_b IS NOT NULL
        ),
        needed AS MATERIALIZED (
            SELECT row_number() OVER () AS need_id, papers
            FROM (SELECT big_a AS papers FROM combos UNION SELECT big_b FROM combos
                  UNION SELECT big_ab FROM combos)
        ),
        need_papers AS MATERIALIZED (SELECT need_id, unnest(papers) AS paper_id FROM needed),
        -- (each two papers of a needed set first: joined the other way round, DuckDB made
        -- 460M rows at 2M pages)
        need_twos AS MATERIALIZED (
            SELECT x.need_id, x.paper_id AS p, y.paper_id AS q
            FROM need_papers AS x
            JOIN need_papers AS y ON x.need_id = y.need_id AND x.paper_id < y.paper_id
        ),
        repeats AS (
            SELECT DISTINCT n.need_id, t.set_id FROM need_twos AS n JOIN set_twos AS t USING (p, q)
        ),
        overcount AS (
            SELECT r.need_id,
                   sum(s.count * (len(list_intersect(s.papers, n.papers)) - 1))::BIGINT AS extra
            FROM repeats AS r JOIN sets AS s USING (set_id) JOIN needed AS n USING (need_id)
            GROUP BY ALL
        ),
        union_sizes AS MATERIALIZED (
            SELECT n.papers, u.authors - coalesce(o.extra, 0) AS authors
            FROM (SELECT np.need_id, sum(pa.authors)::BIGINT AS authors
                  FROM need_papers AS np JOIN paper_authors AS pa USING (paper_id)
                  GROUP BY ALL) AS u
            JOIN needed AS n USING (need_id)
            LEFT JOIN overcount AS o USING (need_id)
        ),
        on_both AS (
            SELECT c.big_a, c.big_b, ua.authors + ub.authors - uab.authors AS shared
            FROM combos AS c
            JOIN union_sizes AS ua ON ua.papers = c.big_a
            JOIN union_sizes AS ub ON ub.papers = c.big_b
            JOIN union_sizes AS uab ON uab.papers = c.big_ab
        ),
        with_big AS (
            SELECT p.author_id_a, p.author_id_b,
                   coalesce(n.shared, 0) + coalesce(o.shared, 0)
                   - CASE WHEN list_has_any(p.big_a, p.big_b) THEN 2 ELSE 0 END
                   AS shared_coauthors
            FROM pairs AS p
            LEFT JOIN near_counted AS n USING (author_id_a, author_id_b)
            LEFT JOIN on_both AS o
              ON o.big_a = p.big_a AND o.big_b = p.big_b
            WHERE p.big_a IS NOT NULL OR p.big_b IS NOT NULL
        ),
        shared AS (SELECT * FROM plain UNION ALL SELECT * FROM with_big),
        final AS (
            SELECT p.author_id_a, p.author_id_b, p.reason,
                   coalesce(s.shared_coauthors, 0) AS shared_coauthors
            FROM author_pairs AS p LEFT JOIN shared AS s USING (author_id_a, author_id_b)
        )
        SELECT * FROM final ORDER BY author_id_a, author_id_b
    """


def _write_sorted(con: duckdb.DuckDBPyConnection, query: str, table: Table, target: Path) -> int:
    """Stream `query`'s rows (already in key order) into `target` in `table`'s Arrow schema."""
    schema = table.arrow_schema
    rows = 0
    with _writer(target, schema) as out:
        for batch in con.sql(query).to_arrow_reader(BATCH_ROWS):
            out.write_table(pa.Table.from_batches([batch]).cast(schema))
            rows += batch.num_rows
    return rows


@contextmanager
def _connection(
    work_dir: Path, memory_limit: str, threads: int
) -> Iterator[duckdb.DuckDBPyConnection]:
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": memory_limit,
        "threads": max(threads, 1),
        "temp_directory": str(make_dir(work_dir / "spill")),
        "preserve_insertion_order": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    with os_errors(), closing(duckdb.connect(config=config)) as con:
        con.execute(NO_PROGRESS_BAR)
        yield con


def _lit(path: Path) -> str:
    """A path as an SQL string literal."""
    return sql_literal(str(path))


def build_reviews(
    parquet_dir: Path,
    work_dir: Path,
    memory_limit: str = "512MB",
    threads: int = 2,
    big_paper: int = BIG_PAPER_AUTHORS,
    queues: tuple[str, ...] = (PAPER_REVIEW.name, AUTHOR_REVIEW.name),
) -> dict[str, int]:
    """Write `paper_review.parquet` and `author_review.parquet` (those named in `queues`)
    into `parquet_dir` from its papers, authors and authorship (left unchanged); returns
    their row counts. `big_paper`: see `_shared_coauthors_sql` (tests lower it to take the
    big papers' path)."""
    work = make_dir(work_dir)
    papers, authors = parquet_dir / "papers.parquet", parquet_dir / "authors.parquet"
    counts: dict[str, int] = {}

    try:
        if PAPER_REVIEW.name in queues:
            write_title_keys(papers, work / "title_keys.parquet")
            write_band_keys(papers, work / "bands", work / "fingerprints.parquet", threads)
            with _connection(work, memory_limit, threads) as con:
                counts[PAPER_REVIEW.name] = _paper_review(
                    con, parquet_dir, work, memory_limit, threads
                )
        if AUTHOR_REVIEW.name in queues:
            write_name_keys(authors, work / "name_keys.parquet")
            # Their DuckDB gets the scoring's share of the limit, not all of it: this process
            # still holds what the paper steps' Python work left (350 MiB at 200k pages, where
            # the whole limit on top made the build's peak, 818 MiB), and both author steps
            # completed at 2M pages within 256MB.
            with _connection(work, after_scoring_share(memory_limit), threads) as con:
                pairs = _author_pairs_sql(_lit(work / "name_keys.parquet"))
                con.execute(f"CREATE TEMP TABLE author_pairs AS {pairs}")
                counts[AUTHOR_REVIEW.name] = _write_sorted(
                    con,
                    _shared_coauthors_sql(_lit(parquet_dir / "authorship.parquet"), big_paper),
                    AUTHOR_REVIEW,
                    parquet_dir / f"{AUTHOR_REVIEW.name}.parquet",
                )
    except duckdb.OutOfMemoryException:
        raise MemoryLimitReached(
            f"DuckDB needed more than its {memory_limit} memory limit to build the review "
            "queues; raise AUTHORGRAPH_MEMORY_LIMIT"
        ) from None
    return counts


def _paper_review(
    con: duckdb.DuckDBPyConnection,
    parquet_dir: Path,
    work: Path,
    memory_limit: str,
    threads: int,
) -> int:
    """`paper_review.parquet` from the papers and the keys written in `work`; its rows."""
    papers = parquet_dir / "papers.parquet"

    banded = work / "near_banded.parquet"
    near_pairs(con, work / "bands", banded)
    near = work / "near_pairs.parquet"
    prune_near(con, _lit(banded), _lit(work / "fingerprints.parquet"), near)
    candidates = work / "paper_candidates.parquet"
    sql = _paper_candidates_sql(_lit(papers), _lit(work / "title_keys.parquet"), _lit(near))
    # One thread: each thread scanning papers' abstracts holds a whole row group of texts
    # (150 MB at 1M papers), and two of them overran 512 MB.
    with one_thread(con):
        con.execute(f"COPY ({sql}) TO {_lit(candidates)} (FORMAT parquet)")
    scored = work / "paper_scored.parquet"
    sources = split_candidates(con, papers, candidates, memory_limit, work)
    # From here on this process holds Python's share (the scored abstracts, then what
    # they leave behind), so DuckDB gets the rest of the limit, not all of it: with
    # the whole limit on top, the process peaked 0.96 GiB at 200k pages and 512MB.
    con.execute(f"SET memory_limit = '{after_scoring_share(memory_limit)}'")
    score_papers(con, sources, scored, threads=max(threads, 1))
    return _write_sorted(
        con,
        f"SELECT * FROM read_parquet({_lit(scored)}) ORDER BY paper_id_a, paper_id_b",
        PAPER_REVIEW,
        parquet_dir / f"{PAPER_REVIEW.name}.parquet",
    )
