"""Measure the flow's parse fan-out under each task runner (not part of the test suite).

    .venv/bin/python -m tests.benchmarks.runners [PAGES]

Builds a corpus of PAGES pages (default 2000) by copying seeds/ with perturbed author names and
titles, then times one full-refresh run per runner on it and on seeds/: threads, processes,
dask (a LocalCluster), and the in-task ProcessPool (stages.parse_files, workers=2).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from authorgraph.pipelines.config import quiet_libraries

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
quiet_libraries()

ROOT = Path(__file__).resolve().parents[2]


def make_corpus(target: Path, pages: int) -> Path:
    """`pages` files: each seed page with its name line and titles suffixed by a copy number."""
    target.mkdir(parents=True, exist_ok=True)
    seeds = sorted((ROOT / "seeds").iterdir())
    for n in range(pages):
        seed = seeds[n % len(seeds)]
        lines = seed.read_text(encoding="utf-8").split("\n")
        name_index = [i for i, line in enumerate(lines) if line.strip()][2]
        lines[name_index] = lines[name_index].rstrip() + f" Copy{n}"
        text = "\n".join(lines).replace("\n\n\n", f" v{n % 50}\n\n\n")
        (target / f"{n:05d}_{seed.name}").write_text(text, encoding="utf-8")
    return target


def main() -> None:
    from prefect import flow

    from authorgraph.pipelines import flow as flows
    from authorgraph.pipelines.config import Settings
    from authorgraph.pipelines.ops.runners import make_task_runner

    @flow(name="authorgraph-in-task-pool", validate_parameters=False)
    def in_task_pool(settings: Settings) -> None:
        flows.run_pipeline(replace(settings, runner="pool"))  # parse_files inside transform

    pages = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    tmp = Path(tempfile.mkdtemp(prefix="authorgraph-bench-"))
    corpora = {"seeds": ROOT / "seeds", f"{pages} pages": make_corpus(tmp / "corpus", pages)}
    flows.authorgraph_flow(Settings(seeds=ROOT / "seeds", warehouse=tmp / "warm"))  # warm-up
    for label, seeds in corpora.items():
        for runner in ("threads", "processes", "dask", "in-task pool"):
            settings = Settings(
                seeds=seeds, warehouse=tmp / f"wh-{runner}", workers=2, full_refresh=True
            )
            started = time.perf_counter()
            if runner == "in-task pool":
                in_task_pool(settings)
            else:
                task_runner = make_task_runner(runner, settings.workers)
                flows.authorgraph_flow.with_options(task_runner=task_runner)(settings)
            print(f"{label:>12} {runner:>13}: {time.perf_counter() - started:6.2f} s", flush=True)


if __name__ == "__main__":
    main()
