"""Candidate search for near-equal abstracts: MinHash signatures and LSH band keys, vectorized.

Per chunk of abstracts (Arrow strings), in polars and numpy, with no Python loop per abstract
or per word:
1. words: exactly the rule's `casefold().split()` (Python casefolds a text that is not ASCII,
   an ASCII one is lowercased, the same thing; Arrow splits on Python's whitespace), so the
   signatures are of the very sets the exact check compares: a pair's chance of being found
   is the one computed from its similarity (an approximation of the words, `lower` instead of
   `casefold` or spaces only, once missed a pair at 0.917 whose words differ by `ß`/`SS`);
2. each word hashed (polars), each run of 3 words of one abstract mixed into a 64-bit shingle
   hash;
3. one-permutation MinHash: the hash picks one of `BINS` bins and each bin keeps its smallest
   value (a sort, not a loop); an empty bin takes the value of the first non-empty bin in its
   own fixed random order of the bins (optimal densification, Shrivastava 2017), so short
   abstracts still get `BINS` comparable values and a 3-gram that differs between two texts
   changes bins spread at random. (Rotation densification, the next non-empty bin, copied a
   value over a run of neighbouring bins: with strided bands one run could touch every band,
   and a pair at 0.917 of 23 3-grams was missed.);
4. LSH: `BANDS` bands of `ROWS` bins (strided), each hashed to a 64-bit key. Two abstracts
   of similarity J share a band's key with probability about J**ROWS.
"""

from __future__ import annotations

import functools
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from authorgraph.transforms.schema import arrow_array

BANDS = 20
ROWS = 5
BINS = BANDS * ROWS
#: Abstracts per chunk: the chunk's bytes set the memory (about 50 bytes per text byte).
CHUNK_ROWS = 4096
_DOC_BITS = 12  # CHUNK_ROWS fits
_BIN_BITS = 8  # up to 256 bins
_VALUE_BITS = 64 - _DOC_BITS - _BIN_BITS
assert 1 << _DOC_BITS >= CHUNK_ROWS and 1 << _BIN_BITS >= BINS

U64 = npt.NDArray[np.uint64]
_WORD_SEED = 20261127
_rng = np.random.default_rng(20261127)  # fixed: keys are comparable across runs
_WORD_MUL = _rng.integers(1, 1 << 63, size=3, dtype=np.uint64) | np.uint64(1)
_BAND_MUL = _rng.integers(1, 1 << 63, size=16, dtype=np.uint64) | np.uint64(1)
_RANK_MUL = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: U64) -> U64:
    """splitmix64's finalizer (in place, wrapping): spreads every input bit over the output."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def split_words(texts: list[str]) -> pa.ListArray[Any]:
    """Each text's words as by `str.split()`, as Arrow lists, but with empty strings where
    runs of whitespace end (the callers drop them). Arrow's whitespace is Python's
    (tests/test_review.py checks every code point).

    Each text loses its trailing whitespace first: pyarrow's `utf8_split_whitespace` (26.0)
    reads past the end of the last value of its data buffer, and when the byte there (padding
    nobody wrote: polars leaves it as it was) is a UTF-8 continuation byte, a trailing
    whitespace character is kept as (part of) the last word. That made an abstract ending in
    "\n" score 9/11 instead of 1.0 against its own words, now and then."""
    return pc.utf8_split_whitespace(arrow_array([t.rstrip() for t in texts], pa.large_string()))


def shingle_hashes(texts: pa.Array) -> tuple[npt.NDArray[np.int64], U64]:
    """(text index, 64-bit hash) of every word 3-gram of every text (no nulls in `texts`)."""
    values = cast("list[str]", texts.to_pylist())  # no nulls (see `signatures`)
    lists = split_words([t.lower() if t.isascii() else t.casefold() for t in values])
    words = (
        pl.DataFrame({"word": pl.Series(lists)})
        .with_row_index("index")
        .explode("word")
        .filter(pl.col("word") != "")
        .select("index", pl.col("word").hash(_WORD_SEED))
    )
    text = words["index"].to_numpy().astype(np.int64)
    hashed = words["word"].to_numpy()
    with np.errstate(over="ignore"):
        same = text[:-2] == text[2:]
        shingles = hashed[:-2] * _WORD_MUL[0] + hashed[1:-1] * _WORD_MUL[1]
        shingles += hashed[2:] * _WORD_MUL[2]
        return text[:-2][same], _mix(shingles[same])


def signatures(texts: pa.Array, bins: int = BINS) -> tuple[U64, npt.NDArray[np.bool_]]:
    """One-permutation MinHash signatures, shape (len(texts), bins), densified, and which texts
    have any 3-gram (the others' signatures are meaningless). At most CHUNK_ROWS texts, no
    nulls."""
    count = len(texts)
    if count > CHUNK_ROWS or not 0 < bins <= 1 << _BIN_BITS:
        raise ValueError(f"at most {CHUNK_ROWS} texts and {1 << _BIN_BITS} bins per call")
    text, hashes = shingle_hashes(texts)
    with np.errstate(over="ignore"):
        bin_of = ((hashes >> np.uint64(32)) * np.uint64(bins)) >> np.uint64(32)
        value_mask = np.uint64((1 << _VALUE_BITS) - 1)
        packed = (text.astype(np.uint64) << np.uint64(64 - _DOC_BITS)) | (
            bin_of << np.uint64(_VALUE_BITS)
        )
        packed |= hashes & value_mask
    # Sorted, the first value of each (text, bin) is its minimum.
    packed = pl.Series(packed, dtype=pl.UInt64).sort().to_numpy()
    cell = packed >> np.uint64(_VALUE_BITS)
    first = np.ones(len(packed), dtype=bool)
    first[1:] = cell[1:] != cell[:-1]
    cell = cell[first]
    flat = (cell >> np.uint64(_BIN_BITS)).astype(np.int64) * bins + (
        cell & np.uint64((1 << _BIN_BITS) - 1)
    ).astype(np.int64)
    empty = np.uint64(1 << 63)
    table = np.full(count * bins, empty, dtype=np.uint64)
    table[flat] = packed[first] & value_mask
    grid = table.reshape(count, bins)
    filled = grid != empty
    valid = filled.any(axis=1)
    # Optimal densification: bin j takes the value of the first filled bin in its donor order
    # (a non-empty bin is first in its own order), plus a multiple of that bin's rank in it.
    order = _donor_orders(bins)
    donor = np.broadcast_to(np.arange(bins), grid.shape).copy()
    rank = np.zeros(grid.shape, np.int64)
    rows, cells = np.nonzero(~filled & valid[:, None])  # empty bins of texts with a 3-gram
    for step in range(1, bins):  # each round resolves the empty bins whose next donor is filled
        if not len(rows):
            break
        candidate = order[cells, step]
        hit = filled[rows, candidate]
        donor[rows[hit], cells[hit]] = candidate[hit]
        rank[rows[hit], cells[hit]] = step
        rows, cells = rows[~hit], cells[~hit]
    with np.errstate(over="ignore"):
        dense = np.take_along_axis(grid, donor, axis=1) + rank.astype(np.uint64) * _RANK_MUL
    return dense, valid


@functools.cache
def _donor_orders(bins: int) -> npt.NDArray[np.int64]:
    """Per bin, a fixed random order of all bins starting with itself (shape (bins, bins)):
    where an empty bin looks for a value. Fixed, so signatures compare across runs."""
    rng = np.random.default_rng(_WORD_SEED + bins)
    orders = np.empty((bins, bins), np.int64)
    for j in range(bins):
        others = rng.permutation(np.delete(np.arange(bins), j))
        orders[j] = np.concatenate([[j], others])
    return orders


def keys_of(dense: U64, bands: int = BANDS, rows: int = ROWS) -> U64:
    """LSH band keys of signatures, shape (len(dense), bands): band b hashes bins b, b + bands,
    b + 2 * bands, ... (the keys of signatures made before the change to optimal
    densification are not comparable, and none are kept between runs)."""
    with np.errstate(over="ignore"):
        keys = (dense.reshape(len(dense), rows, bands) * _BAND_MUL[:rows, None]).sum(
            axis=1, dtype=np.uint64
        )
    return _mix(keys)


def fingerprints(dense: U64) -> npt.NDArray[np.uint16]:
    """16 bits of each signature value: enough to count equal bins (a chance match of two
    different values is 1 in 65,536), at a quarter of the size."""
    return (_mix(dense.copy()) >> np.uint64(48)).astype(np.uint16)


def estimated_similarity(
    a: npt.NDArray[np.uint16], b: npt.NDArray[np.uint16]
) -> npt.NDArray[np.float64]:
    """The share of equal bins of paired fingerprints (rows of `a` and `b`): an unbiased
    estimate of the texts' similarity, standard deviation about sqrt(J(1-J)/BINS)."""
    return np.asarray((a == b).mean(axis=1), dtype=np.float64)
