"""The benchmark generator's expected.json matches what authorgraph's transform stage builds.

A tiny run (no Prefect, no GX): it proves the generator's own bookkeeping is right, so the
benchmark's correctness check means something, and that the two peers (pandas and polars) build
the same counts and write their Parquet, so the benchmark compares like with like. The
benchmarks themselves never run here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from authorgraph.pipelines import stages
from authorgraph.pipelines.config import Settings
from tests.benchmarks import pandas_peer, polars_peer
from tests.benchmarks.bench import parse_sizes
from tests.benchmarks.generate import REALDATA, generate


@pytest.mark.parametrize("realdata", [REALDATA, Path("/nonexistent/arxiv_papers.json")])
def test_generator_expectations_match_transform(tmp_path: Path, realdata: Path) -> None:
    expected = generate(30, tmp_path / "corpus", seed=4, realdata=realdata)
    assert expected["realdata"] == realdata.is_file()
    assert json.loads((tmp_path / "corpus" / "expected.json").read_text()) == expected
    settings = Settings(seeds=tmp_path / "corpus" / "pages", warehouse=tmp_path / "wh")
    transformed = stages.transform(stages.extract(settings), settings, "bench")
    counts = transformed.row_counts
    assert counts["authors"] == expected["authors"]
    assert counts["papers"] == expected["papers"]
    assert counts["authorship"] == expected["authorship"]
    rejected = transformed.tables["rejected_files"].select("file_name", "reason_code").to_dicts()
    assert rejected == expected["rejected_files"]
    assert transformed.files_read == expected["files"]
    # The peers skip the rejected files instead of reporting them: the data tables must match.
    want = {name: expected[name] for name in ("authors", "papers", "authorship")}
    for peer in (pandas_peer, polars_peer):
        out = tmp_path / peer.__name__.rsplit(".", 1)[-1]
        assert peer.run(tmp_path / "corpus" / "pages", out) == want, peer.__name__
        written = {p.stem: pq.read_metadata(p).num_rows for p in out.glob("*.parquet")}
        assert written == want, peer.__name__


def test_generator_is_deterministic(tmp_path: Path) -> None:
    first = generate(12, tmp_path / "a", seed=9)
    second = generate(12, tmp_path / "b", seed=9)
    names = sorted(p.name for p in (tmp_path / "a" / "pages").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b" / "pages").iterdir())
    for name in names:
        a = (tmp_path / "a" / "pages" / name).read_bytes()
        assert a == (tmp_path / "b" / "pages" / name).read_bytes()
    first.pop("generate_seconds")
    second.pop("generate_seconds")
    assert first == second


def test_size_flags() -> None:
    assert parse_sizes(None, large=False) == [1_000, 20_000]
    assert parse_sizes(None, large=True) == [1_000, 20_000, 200_000]
    assert parse_sizes(["5000"], large=False, huge=True) == [5_000, 2_000_000]
