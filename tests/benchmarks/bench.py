"""The benchmark of issue 10: authorgraph's targets, measured beside its peers.

    python -m tests.benchmarks.bench                 # 1k and 20k pages
    python -m tests.benchmarks.bench --large         # adds 200k (minutes, ~2 GB of pages)
    python -m tests.benchmarks.bench --huge          # adds 2M (hours, ~21 GB of pages)
    python -m tests.benchmarks.bench --pages 5000 --out bench-results/5k.json

Per size it generates (or reuses) a seeded corpus, then measures, each in its own subprocess:
the floor (read every byte), the two peers (`pandas_peer.py`, `polars_peer.py`: the plain
script a user would write, Parquet included), the plain stage functions of
`authorgraph.pipelines.stages` (no Prefect), and whole `authorgraph run`s: a full run, a no-change
re-run and a re-run with 1% of the files changed. Start-up is a warm `authorgraph run` on
`seeds/` beside a no-op Prefect flow run in a fresh process. Every table is checked against the
generator's expected.json. Page-cache state: every measurement runs after a warm-up read (warm
cache).

Peak RSS is of the whole process tree: a thread polls the child and all its descendants with
psutil every POLL_SECONDS and keeps the largest sum of their RSS (shared pages count once per
process, so it errs high; a spike shorter than the interval can be missed). The largest single
process (wait4's ru_maxrss) is recorded beside it. It ends with one table: target, measured,
the peers' figures, met or not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from authorgraph.pipelines.config import quiet_libraries
from tests.benchmarks.generate import DEFAULT_SEED, GENERATOR_VERSION, generate

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SIZES = [1_000, 20_000]
REFERENCE_SIZE = 20_000  # the size issue 10's speed and re-run targets are stated at
LARGE_SIZE = 200_000
HUGE_SIZE = 2_000_000
PEERLESS_ABOVE = LARGE_SIZE  # the peers hold every page in memory
MB = 1_000_000
GIB = 1024**3
CHANGED_SHARE = 0.01
POLL_SECONDS = 0.1
STARTUP_REPEATS = 2  # start-up is noisy (Prefect's local server): the faster of two warm runs
NOOP_FLOW = "from prefect import flow\n@flow\ndef noop():\n    return None\nnoop()\n"


@dataclass(frozen=True)
class Targets:
    """Issues 10 and 12's targets."""

    work_vs_pandas: float = 0.5  # work beyond start-up, 20k pages, <= x the pandas peer's time
    parse_parquet_mbps: float = 150.0  # parse + Parquet, 20k pages
    startup_over_noop_s: float = 2.0  # warm run on seeds/ <= a no-op Prefect flow run + this
    startup_server_s: float = 3.0  # the same with a local Prefect server already running
    rss_large_gib: float = 1.5  # whole process tree, 200k pages
    rss_huge_gib: float = 1.65  # whole process tree, 2M pages
    nochange_share: float = 0.05  # re-run with no change, of a full run's work
    onepct_share: float = 0.15  # re-run with 1% of the files edited, of a full run's work
    explain_share: float = 0.15  # ledger + review queues + drift alarm, of a run without them


TARGETS = Targets()
#: The stage worker's timings that are issue 12's additions.
EXPLAIN_STEPS = ("build_ledger", "build_review", "drift_stats", "ledger_checks")

Result = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Workers: each runs in its own process and prints one JSON line (its timings and peak RSS).
# --------------------------------------------------------------------------------------------


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _page_files(pages: Path) -> list[Path]:
    return sorted(p for p in pages.iterdir() if p.is_file() and not p.name.startswith("."))


def worker_floor(pages: Path) -> Result:
    """The floor: open and read every byte of every file, nothing else."""
    start = time.perf_counter()
    total = 0
    for path in _page_files(pages):
        with path.open("rb") as handle:
            total += len(handle.read())
    return {"seconds": time.perf_counter() - start, "bytes": total}


def worker_peer(pages: Path, module: str) -> Result:
    """A peer (`pandas` or `polars`): its import excluded, its Parquet writing included."""
    t0 = time.perf_counter()
    peer = __import__(f"tests.benchmarks.{module}_peer", fromlist=["run"])
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"{module}-peer-") as out:
        counts = peer.run(pages, Path(out))
        t2 = time.perf_counter()
        parquet_bytes = sum(p.stat().st_size for p in Path(out).glob("*.parquet"))
    return {
        "import_seconds": t1 - t0,
        "seconds": t2 - t1,
        "counts": counts,
        "parquet_bytes": parquet_bytes,
    }


def worker_stages(pages: Path, workdir: Path) -> Result:
    """The plain stage functions, timed one by one (no Prefect)."""
    t0 = time.perf_counter()
    from datetime import UTC, datetime

    from authorgraph.pipelines import stages
    from authorgraph.pipelines.config import Settings, default_workers
    from authorgraph.pipelines.extract.seeds import hash_file

    times: dict[str, float] = {"import": time.perf_counter() - t0}
    settings = Settings(seeds=pages, warehouse=workdir / "warehouse", workers=default_workers())

    def timed(name: str, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        value = fn(*args)
        times[name] = time.perf_counter() - start
        return value

    run_id, started = stages.new_run_id(), datetime.now(UTC)
    extracted = timed("extract", stages.extract, settings)  # discover + hash (first run)
    # Parse (worker processes), then DuckDB builds the tables and writes their Parquet.
    transformed = timed("transform", stages.transform, extracted, settings, run_id)
    times.update({f"build_{step}": sec for step, sec in transformed.seconds.items()})
    report = timed("validate", stages.validate, transformed, settings)
    # The explainable dataset's parts inside validate, timed again on their own (issue 12):
    # the page statistics (drift alarm) and the ledger's violation counts.
    timed("drift_stats", stages.run_page_stats, transformed, settings)
    timed("ledger_checks", stages.ledger_checks_for, transformed, settings)
    record = stages.run_record(run_id, started, transformed, report, settings)
    timed("load", stages.load, transformed, settings, record)
    # Hashing alone (part of extract on a first run; later runs hash only changed files).
    timed("hash_only", lambda: [hash_file(f.ref.path) for f in extracted.to_read])
    counts = dict(transformed.row_counts)
    rejected = transformed.rejected_files.select("file_name", "reason_code").to_dicts()
    return {
        "times": times,
        "counts": counts,
        "rejected_files": rejected,
        "validation_success": report.success,
        "expectations": report.evaluated,
    }


WORKERS = {
    "floor": worker_floor,
    "pandas": lambda pages: worker_peer(pages, "pandas"),
    "polars": lambda pages: worker_peer(pages, "polars"),
}


def worker_main(argv: list[str]) -> None:
    """`bench _worker KIND PAGES [WORKDIR]`: run one measurement and print its JSON."""
    kind, pages = argv[0], Path(argv[1])
    result = worker_stages(pages, Path(argv[2])) if kind == "stages" else WORKERS[kind](pages)
    result["worker_rss_mib"] = _rss_mib()
    print("BENCH-RESULT " + json.dumps(result))


# --------------------------------------------------------------------------------------------
# The driver.
# --------------------------------------------------------------------------------------------


def bench_env(prefect_home: Path) -> dict[str, str]:
    """Offline, quiet libraries; a private PREFECT_HOME; no AUTHORGRAPH_* overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHORGRAPH_")}
    env.pop("PREFECT_API_URL", None)
    env.update(PREFECT_HOME=str(prefect_home), PYTHONPATH=str(ROOT))
    quiet_libraries(env, override=True)
    return env


def tree_rss(root: psutil.Process) -> int:
    """Bytes of RSS of `root` and every descendant, summed."""
    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):  # gone between the listing and the read
            total += proc.memory_info().rss
    return total


class TreeRssPoller(threading.Thread):
    """Poll a process tree's summed RSS until stopped; keep the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, tree_rss(self.root))
            self.done.wait(POLL_SECONDS)


def measure(cmd: list[str], env: dict[str, str]) -> Result:
    """Run one subprocess; return wall time, peak RSS (tree and single process), exit code."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        poller = TreeRssPoller(proc.pid)
        poller.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        poller.done.set()
        poller.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    result: Result = {
        "wall": wall,
        "tree_rss_mib": poller.peak / 2**20,  # the whole process tree, polled
        "rss_mib": usage.ru_maxrss / 1024,  # the largest single process (wait4)
        "rc": proc.returncode,
    }
    for line in stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            result.update(json.loads(line.removeprefix("BENCH-RESULT ")))
    if proc.returncode != 0:
        result["stderr_tail"] = stderr[-2000:]
        result["stdout_tail"] = stdout[-2000:]
    return result


def worker(kind: str, pages: Path, env: dict[str, str], *extra: str) -> Result:
    """Run one worker measurement in a fresh interpreter."""
    cmd = [sys.executable, "-m", "tests.benchmarks.bench", "_worker", kind, str(pages), *extra]
    result = measure(cmd, env)
    if result["rc"] != 0:
        raise RuntimeError(f"worker {kind} failed: {result.get('stderr_tail', '')}")
    return result


def authorgraph_run(pages: Path, warehouse: Path, env: dict[str, str]) -> Result:
    """One whole `authorgraph run` as a user would start it."""
    cmd = [sys.executable, "-m", "authorgraph.pipelines", "run", "--seeds", str(pages)]
    return measure([*cmd, "--warehouse", str(warehouse)], env)


def published_counts(warehouse: Path) -> dict[str, int]:
    """Row counts of the published Parquet tables."""
    import pyarrow.parquet as pq

    return {
        p.stem: pq.read_metadata(p).num_rows
        for p in sorted((warehouse / "parquet").glob("*.parquet"))
    }


def check(counts: dict[str, int], expected: Result, rejected: bool = True) -> Result:
    """Compare table counts with expected.json (the peers report no rejected files)."""
    want = {
        "authors": expected["authors"],
        "papers": expected["papers"],
        "authorship": expected["authorship"],
    }
    if rejected:
        want["rejected_files"] = expected["rejected"]
    got = {k: counts.get(k) for k in want}
    return {"pass": got == want, "got": got, "expected": want}


def corpus_for(pages: int, cache: Path, seed: int) -> tuple[Path, Result]:
    """Generate the corpus for `pages`, or reuse a cached one from the same generator."""
    folder = cache / f"v{GENERATOR_VERSION}-s{seed}-{pages}"
    marker = folder / "expected.json"
    if marker.is_file():
        expected = json.loads(marker.read_text(encoding="utf-8"))
        files = len(_page_files(folder / "pages"))
        if expected.get("generator_version") == GENERATOR_VERSION and files == expected["files"]:
            expected["reused"] = True
            return folder / "pages", expected
    marker.unlink(missing_ok=True)
    expected = generate(pages, folder, seed)
    return folder / "pages", expected


def revised_source(page: bytes) -> bytes:
    """The page with its first paper's source line revised: a new text of that paper (a new
    variant; the paper's stored text moves to it when this page lists the paper first), with
    the same papers, authors and links."""
    head, gap, papers = page.partition(b"\n\n\n")
    title, field_gap, rest = papers.partition(b"\n\n")
    source, tail_gap, tail = rest.partition(b"\n\n")
    return head + gap + title + field_gap + source + b" (revised)" + tail_gap + tail


def with_newline(page: bytes) -> bytes:
    """The page with a newline added: new bytes, the same rows."""
    return page + b"\n"


def change_files(
    pages: Path, expected: Result, edit: Callable[[bytes], bytes]
) -> dict[Path, tuple[bytes, int]]:
    """Apply `edit` to 1% of the valid pages; return their originals (bytes, mtime)."""
    rejected = {r["file_name"] for r in expected["rejected_files"]}
    files = [p for p in _page_files(pages) if p.name not in rejected]
    step = max(1, round(1 / CHANGED_SHARE))
    originals: dict[Path, tuple[bytes, int]] = {}
    for path in files[::step]:
        originals[path] = (path.read_bytes(), path.stat().st_mtime_ns)
        path.write_bytes(edit(originals[path][0]))
    return originals


def restore_files(originals: dict[Path, tuple[bytes, int]]) -> None:
    """Put changed pages back, modification time included, so the cached corpus stays valid."""
    for path, (data, mtime_ns) in originals.items():
        path.write_bytes(data)
        os.utime(path, ns=(mtime_ns, mtime_ns))


def noop_flow(env: dict[str, str]) -> Result:
    """A no-op Prefect flow run in a fresh process (interpreter, import and local server)."""
    result = measure([sys.executable, "-c", NOOP_FLOW], env)
    if result["rc"] != 0:
        raise RuntimeError(f"no-op flow failed: {result.get('stderr_tail', '')}")
    return result


def seeds_runs(env: dict[str, str], repeats: int) -> list[Result]:
    """`repeats` warm `authorgraph run`s on seeds/, each into a new warehouse."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="authorgraph-bench-") as tmp:
        for i in range(repeats):
            run = authorgraph_run(ROOT / "seeds", Path(tmp) / f"w{i}", env)
            if run["rc"] != 0:
                raise RuntimeError(f"authorgraph run on seeds/ failed: {run.get('stderr_tail')}")
            runs.append(run)
    return runs


def has_server_command(env: dict[str, str]) -> bool:
    """Whether the CLI has an `authorgraph server` command."""
    cmd = [sys.executable, "-m", "authorgraph.pipelines", "server", "--help"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True).returncode == 0


def bench_startup(env: dict[str, str], api_url: str | None) -> Result:
    """Start-up: a warm run on seeds/ beside a no-op flow run; the same with a server if any."""
    print("start-up: authorgraph run on seeds/ and a no-op Prefect flow", flush=True)
    cold = seeds_runs(env, 1)[0]  # a fresh PREFECT_HOME: migrations; warms it for the rest
    warms = seeds_runs(env, STARTUP_REPEATS)
    noops = [noop_flow(env) for _ in range(STARTUP_REPEATS)]
    warm = min(warms, key=lambda r: r["wall"])
    noop = min(noops, key=lambda r: r["wall"])
    res: Result = {
        "seeds_run_cold": cold,
        "seeds_run_warm": warm,
        "seeds_run_warm_walls": [r["wall"] for r in warms],
        "noop_flow": noop,
        "noop_flow_walls": [r["wall"] for r in noops],
    }
    print(f"  warm run {warm['wall']:.2f}s, no-op flow {noop['wall']:.2f}s")
    if api_url:
        served = seeds_runs({**env, "PREFECT_API_URL": api_url}, STARTUP_REPEATS + 1)[1:]
        where = api_url
    elif has_server_command(env):
        served, where = kept_server_runs(env)
    else:
        res["server_note"] = "no `authorgraph server` command and no PREFECT_API_URL"
        return res
    res["seeds_run_server"] = min(served, key=lambda r: r["wall"])
    res["seeds_run_server_walls"] = [r["wall"] for r in served]
    print(f"  warm run with the server at {where}: {res['seeds_run_server']['wall']:.2f}s")
    return res


def kept_server_runs(env: dict[str, str]) -> tuple[list[Result], str]:
    """Warm runs on seeds/ that find a server kept by `authorgraph server start` (in a
    private AUTHORGRAPH_SERVER_DIR), as a user's runs would; the first warms it, and it is
    stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="authorgraph-bench-server-") as tmp:
        served_env = {**env, "AUTHORGRAPH_SERVER_DIR": tmp}
        command = [sys.executable, "-m", "authorgraph.pipelines", "server"]
        started = subprocess.run(
            [*command, "start"], cwd=ROOT, env=served_env, capture_output=True, text=True
        )
        if started.returncode != 0:
            raise RuntimeError(f"authorgraph server start failed: {started.stderr[-2000:]}")
        try:
            return seeds_runs(served_env, STARTUP_REPEATS + 1)[1:], "a kept server"
        finally:
            subprocess.run([*command, "stop"], cwd=ROOT, env=served_env, capture_output=True)


def bench_size(
    pages_n: int, cache: Path, seed: int, env: dict[str, str], startup: float, skip_runs: bool
) -> Result:
    """Every measurement for one corpus size."""
    print(f"\n== {pages_n:,} pages ==", flush=True)
    t0 = time.perf_counter()
    pages, expected = corpus_for(pages_n, cache, seed)
    gen_s = time.perf_counter() - t0
    size_mb = expected["bytes"] / MB
    reused = " (cached)" if expected.get("reused") else ""
    print(f"  corpus: {expected['files']:,} files, {size_mb:.1f} MB, {gen_s:.1f}s{reused}")
    res: Result = {"pages": pages_n, "files": expected["files"], "bytes": expected["bytes"]}
    res["expected"] = {k: v for k, v in expected.items() if k != "rejected_files"}
    res["generate_seconds"] = None if expected.get("reused") else gen_s

    worker("floor", pages, env)  # warm-up: every later measurement sees a warm page cache
    res["floor"] = worker("floor", pages, env)
    print(f"  floor: {res['floor']['seconds']:.2f}s")
    if pages_n > PEERLESS_ABOVE:
        print(f"  peers skipped above {PEERLESS_ABOVE:,} pages (they hold every page in memory)")
    else:
        for peer in ("pandas", "polars"):
            res[peer] = worker(peer, pages, env)
            res[peer]["check"] = check(res[peer]["counts"], expected, rejected=False)
            ok = "counts == expected.json" if res[peer]["check"]["pass"] else "COUNTS DIFFER"
            print(f"  {peer} peer: {res[peer]['seconds']:.2f}s, {ok}")
    # The stage functions are out of core: timed at every size.
    with tempfile.TemporaryDirectory(prefix="authorgraph-bench-") as tmp:
        res["stages"] = worker("stages", pages, env, tmp)
    stage_check = check(res["stages"]["counts"], expected)
    stage_check["rejected_match"] = res["stages"]["rejected_files"] == expected["rejected_files"]
    stage_check["pass"] = stage_check["pass"] and stage_check["rejected_match"]
    res["stages"]["check"] = stage_check
    t = res["stages"]["times"]
    print("  stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items()))
    if skip_runs:
        return res
    with tempfile.TemporaryDirectory(prefix="authorgraph-bench-") as tmp:
        warehouse = Path(tmp) / "warehouse"
        runs: Result = {}
        for label in ("full", "nochange"):
            runs[label] = authorgraph_run(pages, warehouse, env)
            runs[label]["check"] = check(published_counts(warehouse), expected)
            print(f"  run {label}: {runs[label]['wall']:.2f}s rc={runs[label]['rc']}")
        # 1% of the pages get new data (a paper's source line), then, on top, new bytes only
        # (a newline): the first re-run builds, the second finds the published rows.
        originals = change_files(pages, expected, revised_source)
        try:
            for label in ("onepct", "onepct_bytes"):
                if label == "onepct_bytes":
                    for path in originals:
                        path.write_bytes(with_newline(path.read_bytes()))
                runs[label] = authorgraph_run(pages, warehouse, env)
                runs[label]["changed_files"] = len(originals)
                runs[label]["check"] = check(published_counts(warehouse), expected)
                print(f"  run {label}: {runs[label]['wall']:.2f}s ({len(originals)} files changed)")
        finally:
            restore_files(originals)
    for run in runs.values():
        # Work beyond start-up; a re-run faster than the warm run on seeds/ did none measurable.
        run["beyond_startup"] = max(0.0, run["wall"] - startup)
    res["runs"] = runs
    return res


def derive(res: Result) -> Result:
    """Throughputs and the issue's ratios for one size."""
    mb = res["bytes"] / MB
    d: Result = {"floor_mbps": mb / res["floor"]["seconds"]}
    for peer in ("pandas", "polars"):
        if peer in res:
            d[f"{peer}_mbps"] = mb / res[peer]["seconds"]
    if "stages" in res:
        t = res["stages"]["times"]
        tp = t["transform"]  # parse, the DuckDB build and every table's Parquet
        d.update(transform_parquet_seconds=tp, transform_parquet_mbps=mb / tp)
        # Issue 12: the ledger, the review queues and the drift alarm, against the run's work
        # without them (their checks inside validate were timed again on their own).
        explain = sum(t.get(k, 0.0) for k in EXPLAIN_STEPS)
        work = t["transform"] + t["validate"] + t["load"]
        if work > explain:
            d.update(explain_seconds=explain, explain_share=explain / (work - explain))
    runs = res.get("runs")
    if runs and runs["full"]["beyond_startup"] > 0:
        full = runs["full"]["beyond_startup"]
        d.update(
            run_mbps=mb / full,
            run_pages_per_s=res["pages"] / full,
            nochange_share=runs["nochange"]["beyond_startup"] / full,
            onepct_share=runs["onepct"]["beyond_startup"] / full,
            onepct_bytes_share=runs["onepct_bytes"]["beyond_startup"] / full,
        )
        if "pandas" in res:
            d["work_vs_pandas"] = full / res["pandas"]["seconds"]
    return d


def size_label(pages: int) -> str:
    """20000 -> '20k', 2000000 -> '2M', 300 -> '300'."""
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if pages % scale == 0:
            return f"{pages // scale}{unit}"
    return f"{pages:,}"


def reference(sizes: dict[str, Result]) -> Result | None:
    """The size the speed and re-run targets are read at: 20k, else the largest with runs."""
    if str(REFERENCE_SIZE) in sizes:
        return sizes[str(REFERENCE_SIZE)]
    usable = [r for r in sizes.values() if r["pages"] <= LARGE_SIZE and "stages" in r]
    return max(usable, key=lambda r: r["pages"], default=None)


def targets(report: Result) -> list[Result]:
    """One row per target of issue 10: measured value, target, the peers' figures, met or not."""
    rows: list[Result] = []
    tg = TARGETS

    def add(name: str, value: float | None, target: str, met: bool | None, **peers: Any) -> None:
        rows.append({"target": name, "measured": value, "goal": target, "met": met, **peers})

    def s(seconds: float | None) -> str | None:
        return None if seconds is None else f"{seconds:.2f} s"

    sizes = report["sizes"]
    ref = reference(sizes)
    if ref is not None:
        n = size_label(ref["pages"])
        d = ref["derived"]
        pandas, polars = (ref.get(k, {}).get("seconds") for k in ("pandas", "polars"))
        floor = ref["floor"]["seconds"]
        if "runs" in ref:
            work = ref["runs"]["full"]["beyond_startup"]
            limit = tg.work_vs_pandas * pandas if pandas else None
            add(
                f"work beyond start-up, {n} pages (s)",
                work,
                f"<= {tg.work_vs_pandas}x pandas = {limit:.2f}" if limit else "-",
                None if limit is None else work <= limit,
                pandas=s(pandas),
                polars=s(polars),
                floor=s(floor),
            )
        if "transform_parquet_mbps" in d:
            mbps = d["transform_parquet_mbps"]
            add(
                f"parse + Parquet, {n} pages (MB/s)",
                mbps,
                f">= {tg.parse_parquet_mbps:.0f}",
                mbps >= tg.parse_parquet_mbps,
                pandas=f"{d['pandas_mbps']:.0f} MB/s",
                polars=f"{d['polars_mbps']:.0f} MB/s",
                floor=f"{d['floor_mbps']:.0f} MB/s",
            )
    st = report["startup"]
    warm, noop = st["seeds_run_warm"]["wall"], st["noop_flow"]["wall"]
    limit = noop + tg.startup_over_noop_s
    add(
        "start-up: warm run on seeds/ (s)",
        warm,
        f"<= no-op flow {noop:.2f} + {tg.startup_over_noop_s:.0f} = {limit:.2f}",
        warm <= limit,
    )
    if "seeds_run_server" in st:
        served = st["seeds_run_server"]["wall"]
        add(
            "start-up: the same, server running (s)",
            served,
            f"<= {tg.startup_server_s:.0f}",
            served <= tg.startup_server_s,
        )
    else:
        add("start-up: the same, server running (s)", None, f"<= {tg.startup_server_s:.0f}", None)
        rows[-1]["note"] = f"not measured: {st['server_note']}"
    for size, goal in ((LARGE_SIZE, tg.rss_large_gib), (HUGE_SIZE, tg.rss_huge_gib)):
        big = sizes.get(str(size))
        label = f"peak RSS, process tree, {size_label(size)} pages (GiB)"
        if big is None or "runs" not in big:
            add(label, None, f"<= {goal}", None)
            flag = "--large" if size == LARGE_SIZE else "--huge"
            rows[-1]["note"] = f"not measured: needs {flag}"
            continue
        rss = max(r["tree_rss_mib"] for r in big["runs"].values()) / 1024

        def peer_rss(key: str, big: Result = big) -> str | None:
            return f"{big[key]['tree_rss_mib'] / 1024:.2f} GiB" if key in big else None

        add(
            label,
            rss,
            f"<= {goal}",
            rss <= goal,
            pandas=peer_rss("pandas"),
            polars=peer_rss("polars"),
            floor=peer_rss("floor"),
        )
    if ref is not None and "nochange_share" in ref["derived"]:
        d = ref["derived"]
        n = size_label(ref["pages"])
        add(
            f"no-change re-run / full run work, {n}",
            d["nochange_share"],
            f"<= {tg.nochange_share:.2f}",
            d["nochange_share"] <= tg.nochange_share,
        )
        add(
            f"1%-edited re-run (new data) / full run work, {n}",
            d["onepct_share"],
            f"<= {tg.onepct_share:.2f}",
            d["onepct_share"] <= tg.onepct_share,
        )
        add(
            f"1% new bytes, same rows / full run work, {n}",
            d["onepct_bytes_share"],
            f"<= {tg.onepct_share:.2f}",
            d["onepct_bytes_share"] <= tg.onepct_share,
        )
    for size_key, res in sorted(sizes.items(), key=lambda kv: int(kv[0])):
        share = res.get("derived", {}).get("explain_share")
        if share is not None:
            add(
                f"ledger + review queues + drift alarm, {size_label(int(size_key))} (share)",
                share,
                f"<= {tg.explain_share:.2f}",
                share <= tg.explain_share,
                note=", ".join(
                    f"{k} {res['stages']['times'].get(k, 0):.1f} s" for k in EXPLAIN_STEPS
                ),
            )
    checks = [res["stages"]["check"]["pass"] for res in sizes.values() if "stages" in res]
    checks += [r["check"]["pass"] for res in sizes.values() for r in res.get("runs", {}).values()]
    ok = all(checks)
    add("tables == expected.json, every size", float(ok), "all pass", ok)
    peers = {
        peer: all(res[peer]["check"]["pass"] for res in sizes.values() if peer in res)
        for peer in ("pandas", "polars")
    }
    rows[-1].update({p: "counts match" if v else "COUNTS DIFFER" for p, v in peers.items()})
    return rows


def machine() -> Result:
    """Where the numbers were measured."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(
            int(line.split()[1]) / 1024**2
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem = None
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "shared": "other work may run on this machine at the same time: see the load averages",
    }


def print_report(report: Result) -> None:
    """The raw figures per size, then issue 10's table."""
    sizes = report["sizes"]
    cols = list(sizes)
    print("\n" + "=" * 100)
    m = report["machine"]
    print(f"machine: {m['cpus']} CPUs, {m['cpu']}, {m['mem_gib']:.0f} GiB, Python {m['python']}")
    print(f"load average at start {m['loadavg_start']}, at end {report.get('loadavg_end')}")
    s = report["startup"]
    warms = ", ".join(f"{w:.2f}" for w in s["seeds_run_warm_walls"])
    noops = ", ".join(f"{w:.2f}" for w in s["noop_flow_walls"])
    print(
        f"start-up: authorgraph run on seeds/ {s['seeds_run_warm']['wall']:.2f}s warm "
        f"(runs: {warms}), {s['seeds_run_cold']['wall']:.2f}s with a fresh PREFECT_HOME; "
        f"no-op Prefect flow {s['noop_flow']['wall']:.2f}s (runs: {noops})"
    )

    def row(label: str, fn: Any, fmt: str = "{:>12.2f}") -> None:
        cells = []
        for c in cols:
            try:
                value = fn(sizes[c])
                cells.append(fmt.format(value) if value is not None else f"{'-':>12}")
            except (KeyError, TypeError):
                cells.append(f"{'-':>12}")
        print(f"{label:<40}" + "".join(cells))

    print(f"\n{'':<40}" + "".join(f"{int(c):>12,}" for c in cols))
    row("corpus MB", lambda r: r["bytes"] / MB, "{:>12.1f}")
    row("floor: read every byte (s)", lambda r: r["floor"]["seconds"])
    for peer in ("pandas", "polars"):
        row(f"{peer} peer, Parquet included (s)", lambda r, p=peer: r[p]["seconds"])
        row(f"{peer} peer peak RSS (MiB)", lambda r, p=peer: r[p]["tree_rss_mib"], "{:>12.0f}")
    for stage in ("extract", "transform", "validate", "load", "hash_only"):
        row(f"stage {stage} (s)", lambda r, s=stage: r["stages"]["times"][s])
    row("stages peak RSS, tree (MiB)", lambda r: r["stages"]["tree_rss_mib"], "{:>12.0f}")
    row("run full (s)", lambda r: r["runs"]["full"]["wall"])
    row("run full beyond start-up (s)", lambda r: r["runs"]["full"]["beyond_startup"])
    row("run peak RSS, tree (MiB)", lambda r: r["runs"]["full"]["tree_rss_mib"], "{:>12.0f}")
    row("run peak RSS, largest process (MiB)", lambda r: r["runs"]["full"]["rss_mib"], "{:>12.0f}")
    row("run no-change re-run (s)", lambda r: r["runs"]["nochange"]["wall"])
    row("run 1%-changed re-run (s)", lambda r: r["runs"]["onepct"]["wall"])
    row("run 1% new bytes, same rows (s)", lambda r: r["runs"]["onepct_bytes"]["wall"])
    row("run pages/s (beyond start-up)", lambda r: r["derived"]["run_pages_per_s"], "{:>12.0f}")

    print("\nissue 10 and 12's targets:")
    head = ("target", "measured", "goal", "pandas", "polars", "floor", "met?")
    widths = (52, 9, 32, 13, 13, 13, 4)
    lines = [head, tuple("-" * w for w in widths)]
    notes = []
    for t in report["targets"]:
        value = t["measured"]
        measured = "-" if value is None else f"{value:.2f}"
        if "note" in t:
            notes.append(f"  {t['target']}: {t['note']}")
        if value is None:
            measured = "n/m"
        met = {True: "yes", False: "NO", None: "-"}[t["met"]]
        peers = (t.get(k) or "-" for k in ("pandas", "polars", "floor"))
        lines.append((t["target"], measured, t["goal"], *peers, met))
    for line in lines:
        print(" ".join(f"{cell:<{w}}" for cell, w in zip(line, widths, strict=True)).rstrip())
    print("\n".join(notes))
    print(
        "work = a run's wall time minus the warm start-up run on seeds/; re-run shares are of "
        "the full run's work; peak RSS sums the whole process tree (psutil, polled every "
        f"{POLL_SECONDS} s). The machine may be shared: see the load averages above."
    )


def parse_sizes(values: list[str] | None, large: bool, huge: bool = False) -> list[int]:
    """`--pages 1000 --pages 20000` or `--pages 1000,20000`; `--large` adds 200k, `--huge` 2M."""
    sizes = [int(v) for raw in values for v in raw.split(",") if v] if values else DEFAULT_SIZES
    sizes = list(sizes)
    for flag, size in ((large, LARGE_SIZE), (huge, HUGE_SIZE)):
        if flag and size not in sizes:
            sizes.append(size)
    return sorted(set(sizes))


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write its JSON."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_worker":
        worker_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description="authorgraph benchmark (issue 10)")
    parser.add_argument("--pages", action="append", help="corpus size(s): N or N,M (repeatable)")
    parser.add_argument("--large", action="store_true", help=f"also run {LARGE_SIZE:,} pages")
    parser.add_argument(
        "--huge", action="store_true", help=f"also run {HUGE_SIZE:,} pages (hours, ~21 GB)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "results.json")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench-results" / "corpus")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--skip-runs", action="store_true", help="stage functions only, no `authorgraph run`"
    )
    args = parser.parse_args(argv)
    sizes = parse_sizes(args.pages, args.large, args.huge)
    if HUGE_SIZE in sizes:
        print(
            f"--huge: {HUGE_SIZE:,} pages is about 21 GB of generated pages and takes hours "
            "(generation alone is about an hour on 2 cores); peers and stage functions are "
            "skipped at that size, only the floor and whole runs are measured.",
            flush=True,
        )
    api_url = os.environ.get("PREFECT_API_URL")
    prefect_home = Path(tempfile.mkdtemp(prefix="authorgraph-bench-prefect-"))
    env = bench_env(prefect_home)
    report: Result = {"machine": machine(), "seed": args.seed, "sizes": {}}
    report["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        report["startup"] = bench_startup(env, api_url)
        startup = report["startup"]["seeds_run_warm"]["wall"]
        for n in sizes:
            res = bench_size(n, args.cache, args.seed, env, startup, args.skip_runs)
            res["derived"] = derive(res)
            report["sizes"][str(n)] = res
        report["targets"] = targets(report)
    finally:
        shutil.rmtree(prefect_home, ignore_errors=True)
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print_report(report)
    print(f"\nresults: {args.out}")
    failed = [t for t in report["targets"] if t["target"].startswith("tables") and not t["met"]]
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
