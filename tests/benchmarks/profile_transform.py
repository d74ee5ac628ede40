"""Profile the transform stage (read + parse + normalize + build tables) with pyinstrument.

    pip install -e '.[dev,bench]'
    python -m tests.benchmarks.profile_transform --pages 20000 [--html profile.html]

Uses the benchmark's cached corpus (generated on first use).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.benchmarks.bench import ROOT, corpus_for
from tests.benchmarks.generate import DEFAULT_SEED


def main(argv: list[str] | None = None) -> None:
    """Run extract + transform once under pyinstrument and print the call tree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--cache", type=Path, default=ROOT / "bench-results" / "corpus")
    parser.add_argument("--html", type=Path, default=None)
    args = parser.parse_args(argv)
    from pyinstrument import Profiler

    from authorgraph.pipelines import stages
    from authorgraph.pipelines.config import Settings

    pages, _ = corpus_for(args.pages, args.cache, DEFAULT_SEED)
    settings = Settings(seeds=pages, warehouse=ROOT / "bench-results" / "profile-warehouse")
    profiler = Profiler(interval=0.001)
    profiler.start()
    stages.transform(stages.extract(settings), settings, "bench")
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        args.html.write_text(profiler.output_html(), encoding="utf-8")


if __name__ == "__main__":
    main()
