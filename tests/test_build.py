"""The out-of-core build (DuckDB over staged Parquet batches) equals the pure reference rules.

`authorgraph.transforms.tables.build_tables` states first-copy-wins and de-duplication on frames;
the pipeline builds the same tables with DuckDB from batches on disk, under a memory limit, with
some rows reused from the previous version's cache. These tests hold the two to each other.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any, cast

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from authorgraph.pipelines.extract.parsing import BatchResult, batch_path, parse_batch
from authorgraph.pipelines.transform.build import BuildLimits, CacheInputs, build_tables
from authorgraph.transforms.parse import AuthorPage, RawPaper
from authorgraph.transforms.schema import BUILT_TABLES, CORE_TABLES, LEDGER_TABLES
from authorgraph.transforms.tables import build_tables as reference_tables
from authorgraph.transforms.tables import stage_pages
from tests.conftest import PublishSeeds
from tests.test_hypothesis import name, paper

# The tables the reference rules (transforms.tables) state; the review queues have their own
# reference (tests/test_review.py).
RULE_TABLES = (*CORE_TABLES, *LEDGER_TABLES)

NO_REUSE = pa.table({"file_name": pa.array([], pa.string()), "sha256": pa.array([], pa.string())})


def write_batch(batch_dir: Path, number: int, pages: list[tuple[str, AuthorPage]]) -> None:
    """Stage pages as one batch, as a parse worker writes it (a fake content hash per file)."""
    staged = stage_pages(pages)
    sha = pl.DataFrame(
        {"file_name": [n for n, _ in pages], "sha256": [f"h-{n}" for n, _ in pages]},
        schema={"file_name": pl.String(), "sha256": pl.String()},
    )
    batch_dir.mkdir(parents=True, exist_ok=True)
    staged.page_authors.join(sha, on="file_name").write_parquet(
        batch_path(batch_dir, number, "page_authors")
    )
    staged.page_links.join(sha, on="file_name").write_parquet(
        batch_path(batch_dir, number, "page_links")
    )
    staged.variants.write_parquet(batch_path(batch_dir, number, "variants"))


def built(stage_dir: Path) -> dict[str, pl.DataFrame]:
    return {
        t.name: pl.read_parquet(stage_dir / "version" / "parquet" / f"{t.name}.parquet")
        for t in RULE_TABLES
    }


def assert_same_tables(got: dict[str, pl.DataFrame], want: dict[str, pl.DataFrame]) -> None:
    for table in RULE_TABLES:
        assert_frame_equal(got[table.name], want[table.name].select(table.column_names))


pages_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a.txt", "B.txt", "b.txt", "c d.txt", "é.txt", "z.txt"]),
        st.builds(AuthorPage, name_line=name, papers=st.lists(paper, max_size=4).map(tuple)),
    ),
    max_size=6,
    unique_by=lambda p: p[0],
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pages=pages_strategy, cut=st.integers(0, 6), data=st.data())
def test_duckdb_build_equals_the_reference_rules(
    tmp_path_factory: pytest.TempPathFactory,
    pages: list[tuple[str, AuthorPage]],
    cut: int,
    data: st.DataObject,
) -> None:
    # Shared papers make first-copy-wins matter: reuse some drawn papers on several pages.
    if pages:
        shared = data.draw(
            st.lists(
                st.sampled_from(
                    [p for _, pg in pages for p in pg.papers] or [RawPaper("T", "S", None)]
                ),
                max_size=3,
            )
        )
        pages = [(n, AuthorPage(pg.name_line, pg.papers + tuple(shared))) for n, pg in pages]
    stage = tmp_path_factory.mktemp("stage")
    write_batch(stage / "batches", 0, pages[:cut])  # batches in any order and split
    write_batch(stage / "batches", 1, pages[cut:])
    result = build_tables(stage, CacheInputs(stage / "batches", None, NO_REUSE), BuildLimits())
    counts = result.counts
    assert {"cache", "core", "ledger"} <= result.seconds.keys()
    got = built(stage)
    assert_same_tables(got, reference_tables(stage_pages(pages)))
    assert {n: counts[n] for n in got} == {name: frame.height for name, frame in got.items()}


def test_a_build_beyond_its_memory_limit_spills_and_gives_the_same_tables(
    tmp_path: Path,
) -> None:
    """Many pages with long abstracts under a limit below their size (the batches hold each
    text once per listing, 3 on average): DuckDB works in id-prefix parts and spills to the
    staging folder, and the rows agree."""
    # 10,000 distinct papers, 400 random words each (2.4 KB): random texts, so no pair of
    # them is near-equal and the review queues (not what this test is about) stay empty.
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(5000)]
    papers = [
        RawPaper(f"Title {i}", "arXiv.org AI", " ".join(rng.choices(vocabulary, k=400)))
        for i in range(10_000)
    ]
    pages = [
        (
            f"p{n:05d}.txt",
            AuthorPage(
                f"Family{n % 700}, Given",
                tuple(papers[(n * 7 + k) % len(papers)] for k in range(5)),
            ),
        )
        for n in range(6000)
    ]
    for number in range(8):
        write_batch(tmp_path / "batches", number, pages[number::8])
    result = build_tables(
        tmp_path, CacheInputs(tmp_path / "batches", None, NO_REUSE), BuildLimits("128MB", 1)
    )
    assert len(list((tmp_path / "version" / "state" / "variants").glob("part-*"))) == 16
    assert result.counts["papers"] == 10_000 and result.counts["listings"] == 30_000
    assert_same_tables(built(tmp_path), reference_tables(stage_pages(pages)))


@pytest.mark.parametrize("expansions", [(2, 2), (10**6, 10**6), (2, 10**6)])
def test_reused_rows_come_from_the_previous_cache_and_unused_variants_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expansions: tuple[int, int]
) -> None:
    """In one part, or in 256 parts (texts counted as far larger than the limit: the batches
    and the listings split by id prefix first), after a first run in either."""
    from authorgraph.pipelines.transform import build

    kept = ("a.txt", AuthorPage("A, Ann", (RawPaper("Kept", "S", "x y z"),)))
    gone = ("b.txt", AuthorPage("B, Bo", (RawPaper("Gone", "S", None),)))
    edited_old = ("c.txt", AuthorPage("C, Cy", (RawPaper("Old text", "S", None),)))
    edited_new = ("c.txt", AuthorPage("C, Cy", (RawPaper("New text", "S", None),)))
    first = tmp_path / "first"
    write_batch(first / "batches", 0, [kept, gone, edited_old])
    monkeypatch.setattr(build, "TEXT_EXPANSION", expansions[0])
    build_tables(first, CacheInputs(first / "batches", None, NO_REUSE), BuildLimits())
    cache = first / "version" / "state"
    # Next run: a.txt unchanged (reused by name and hash), b.txt deleted, c.txt re-parsed.
    second = tmp_path / "second"
    write_batch(second / "batches", 0, [edited_new])
    reused = pa.table({"file_name": ["a.txt"], "sha256": ["h-a.txt"]})
    monkeypatch.setattr(build, "TEXT_EXPANSION", expansions[1])
    build_tables(second, CacheInputs(second / "batches", cache, reused), BuildLimits())
    assert_same_tables(built(second), reference_tables(stage_pages([kept, edited_new])))
    assert not (second / "split").exists()  # the split by prefix is the build's scratch
    variants = pl.read_parquet(second / "version" / "state" / "variants" / "*.parquet")
    assert sorted(variants["title"]) == ["Kept", "New text"]
    # A cached row whose hash no longer matches is never reused.
    third = tmp_path / "third"
    (third / "batches").mkdir(parents=True)
    stale = pa.table({"file_name": ["a.txt"], "sha256": ["another-hash"]})
    counts = build_tables(third, CacheInputs(third / "batches", cache, stale), BuildLimits()).counts
    assert counts == {t.name: 0 for t in BUILT_TABLES}


def test_a_parse_batch_writes_its_rows_to_disk_and_returns_only_outcomes(
    tmp_path: Path,
) -> None:
    from authorgraph.pipelines.extract.seeds import list_seeds
    from authorgraph.pipelines.load.state import RunState
    from authorgraph.pipelines.stages import plan_files
    from tests.conftest import SEEDS

    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    (seeds / "bad.txt").write_text("not a page")
    _, planned = plan_files(list_seeds(seeds).files, RunState.empty().manifest, False)
    result = parse_batch(planned, 1 << 20, tmp_path / "batches", 7)
    assert isinstance(result, BatchResult)
    assert vars(result).keys() == {"number", "outcomes"}
    assert result.outcomes["file_name"].to_list() == [p.ref.name for p in planned]
    assert result.outcomes["reason_code"].drop_nulls().to_list() == ["MISSING_HEADER"]
    links = pl.read_parquet(batch_path(tmp_path / "batches", 7, "page_links"))
    assert links.height == 33  # the five seeds' listings
    assert links["sha256"].null_count() == 0
    assert sorted(p.name for p in (tmp_path / "batches").iterdir()) == [
        "000007.page_authors.parquet",
        "000007.page_links.parquet",
        "000007.variants.parquet",
    ]


@pytest.mark.parametrize("expansion", [10**5, 10**6])
def test_texts_larger_than_the_limit_are_built_in_parts_with_the_same_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expansion: int
) -> None:
    """Texts counted as far larger than the limit: variants are split by paper id prefix (16
    or 256 parts), papers built part by part in key order; the tables are unchanged."""
    from authorgraph.pipelines.transform import build

    monkeypatch.setattr(build, "TEXT_EXPANSION", expansion)
    pages = [
        (f"p{n:03d}.txt", AuthorPage(f"F{n % 7}, G", (RawPaper(f"T{n % 40}", "S", f"a {n % 3}"),)))
        for n in range(300)
    ]
    write_batch(tmp_path / "batches", 0, pages[:150])
    write_batch(tmp_path / "batches", 1, pages[150:])
    build_tables(tmp_path, CacheInputs(tmp_path / "batches", None, NO_REUSE), BuildLimits("64MB"))
    parts = list((tmp_path / "version" / "state" / "variants").iterdir())
    texts = sorted((tmp_path / "batches").glob("*.variants.parquet"))
    size = build.uncompressed_bytes(texts) * expansion
    assert len(parts) == len(build.id_prefixes(size, 64 * 10**6)) in (16, 256)
    assert_same_tables(built(tmp_path), reference_tables(stage_pages(pages)))


def test_a_memory_limit_too_small_to_build_is_one_named_error(tmp_path: Path) -> None:
    from authorgraph.pipelines.load.errors import MemoryLimitReached, NoSpaceLeft

    abstract = "word " * 2000
    pages = [
        (f"p{n:04d}.txt", AuthorPage("F, G", (RawPaper(f"T{n}", "S", f"{abstract}{n}"),)))
        for n in range(3000)
    ]
    write_batch(tmp_path / "batches", 0, pages)
    inputs = CacheInputs(tmp_path / "batches", None, NO_REUSE)
    with pytest.raises(MemoryLimitReached, match="16MB memory limit") as info:
        build_tables(tmp_path, inputs, BuildLimits("16MB", 1))
    assert isinstance(info.value, NoSpaceLeft)  # exit 6, like a full disk
    assert "\n" not in str(info.value)


class OutOfMemoryOnce:
    """A DuckDB connection whose next `fail` INSERTs raise DuckDB's out-of-memory error before
    they run (what a two-thread insert near the memory limit sometimes does); records the
    statements and each insert's thread count."""

    def __init__(self, con: Any, fail: int) -> None:
        self.con, self.fail = con, fail
        self.threads_of_inserts: list[int] = []
        self.statements: list[str] = []

    def execute(self, query: str, *args: Any) -> Any:
        import duckdb

        self.statements.append(query.split()[0])
        if query.startswith("INSERT"):
            self.threads_of_inserts.append(
                self.con.execute("SELECT current_setting('threads')").fetchone()[0]
            )
            if self.fail:
                self.fail -= 1
                raise duckdb.OutOfMemoryException("could not allocate block (injected)")
        return self.con.execute(query, *args)


def test_an_insert_that_runs_out_of_memory_is_retried_once_on_one_thread(tmp_path: Path) -> None:
    """The retry runs on one thread after a checkpoint, inserts every row once (the injected
    failure comes before the statement runs; DuckDB rolls a statement that ran out back whole),
    and the connection gets its threads back; a second failure is the caller's (`build_tables`
    names it: MemoryLimitReached)."""
    import duckdb

    from authorgraph.pipelines.transform.build import insert

    with duckdb.connect(str(tmp_path / "t.duckdb"), config={"threads": 2}) as con:
        con.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
        once = OutOfMemoryOnce(con, fail=1)
        insert(cast(duckdb.DuckDBPyConnection, once), "t", "SELECT range AS k FROM range(1000)")
        assert con.execute("SELECT count(*), count(DISTINCT k) FROM t").fetchone() == (1000, 1000)
        assert once.threads_of_inserts == [2, 1] and "CHECKPOINT" in once.statements
        assert con.execute("SELECT current_setting('threads')").fetchone() == (2,)
        twice = OutOfMemoryOnce(con, fail=2)
        with pytest.raises(duckdb.OutOfMemoryException):
            insert(cast(duckdb.DuckDBPyConnection, twice), "t", "SELECT 1000 + range FROM range(9)")
        assert con.execute("SELECT count(*) FROM t").fetchone() == (1000,)
        assert con.execute("SELECT current_setting('threads')").fetchone() == (2,)


class EveryInsertOutOfMemoryOnce:
    """A DuckDB connection on which each distinct INSERT raises DuckDB's out-of-memory error
    the first time it is run; `failed` counts them."""

    def __init__(self, con: Any) -> None:
        self.con, self.seen, self.failed = con, set[str](), 0

    def execute(self, query: str, *args: Any) -> Any:
        import duckdb

        if query.startswith("INSERT") and query not in self.seen:
            self.seen.add(query)
            self.failed += 1
            raise duckdb.OutOfMemoryException("could not allocate block (injected)")
        return self.con.execute(query, *args)

    def __getattr__(self, name: str) -> Any:  # the rest of the connection, as it is
        return getattr(self.con, name)


def test_a_build_whose_inserts_each_run_out_once_gives_the_same_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeds_warehouse: Path
) -> None:
    """Every insert of a build failing once (each core, ledger and review table): the build
    still succeeds, with the tables of a build that never ran out (the session's)."""
    from contextlib import contextmanager

    from authorgraph.pipelines.transform import build
    from authorgraph.transforms.parse import parse_author_page
    from tests.conftest import SEEDS

    real = build.staging_connection
    made: list[EveryInsertOutOfMemoryOnce] = []

    @contextmanager
    def failing(*args: Any, **kwargs: Any) -> Any:
        with real(*args, **kwargs) as con:
            made.append(EveryInsertOutOfMemoryOnce(con))
            yield made[-1]

    monkeypatch.setattr(build, "staging_connection", failing)
    pages = [(path.name, parse_author_page(path.read_bytes())) for path in sorted(SEEDS.iterdir())]
    write_batch(tmp_path / "batches", 0, pages)
    built = build_tables(tmp_path, CacheInputs(tmp_path / "batches", None, NO_REUSE), BuildLimits())
    assert sum(c.failed for c in made) == len(BUILT_TABLES)  # each table's insert, once
    for table in BUILT_TABLES:
        ours = pl.read_parquet(tmp_path / "version" / "parquet" / f"{table.name}.parquet")
        published = pl.read_parquet(seeds_warehouse / "parquet" / f"{table.name}.parquet")
        assert_frame_equal(ours, published)
        assert built.counts[table.name] == published.height


def test_a_large_build_runs_in_a_child_process_with_the_same_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeds_warehouse: Path
) -> None:
    """Forced isolation (as for inputs over 64 MiB): the DuckDB build, page statistics,
    ledger checks and key checks (what the whole-table suites read) run in spawned children,
    the run validates, and the published tables equal an in-process build's (the session's
    `seeds_warehouse`)."""
    import os

    from authorgraph.pipelines import stages
    from authorgraph.pipelines.config import Settings
    from authorgraph.pipelines.ops import children as child_processes
    from tests.conftest import SEEDS, run_stages

    children: list[int] = []
    isolated_steps: list[str] = []
    real_call = child_processes._Child.call

    def spy(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        isolated_steps.append(fn.__name__)
        children.append(self.process.pid)
        return real_call(self, fn, *args, **kwargs)

    # seeds/ is far below the threshold: `seeds_warehouse` was built inline, in its run's process.
    assert sum(p.stat().st_size for p in SEEDS.iterdir()) * 100 < stages.ISOLATE_BYTES
    monkeypatch.setattr(child_processes._Child, "call", spy)
    monkeypatch.setattr(stages, "ISOLATE_BYTES", 0)
    isolated = run_stages(Settings(seeds=SEEDS, warehouse=tmp_path / "isolated")).tables
    assert children and os.getpid() not in children
    steps = ["build_tables", "page_stats", "ledger_checks", "key_checks"]
    assert isolated_steps == steps  # first run
    for table in BUILT_TABLES:
        inline = pl.read_parquet(seeds_warehouse / "parquet" / f"{table.name}.parquet")
        assert_frame_equal(isolated[table.name], inline)


@pytest.mark.parametrize(
    ("run", "isolate_bytes", "expected"),
    [
        ("first", 0, ["release", "release", "build_tables in a child"]),
        ("edited", "page", ["same_rows in a child", "release", "build_tables in a child"]),
        ("edited", 64 * 2**20, ["same_rows", "build_tables"]),
    ],
)
def test_the_validating_child_is_released_before_a_large_parse_or_a_large_build(
    run: str,
    isolate_bytes: int | str,
    expected: list[str],
    seeds_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    publish_seeds: PublishSeeds,
) -> None:
    """The child that imported GX ahead (about 200 MiB) is released when more than
    ISOLATE_BYTES of pages are to be parsed (a first run of a large corpus), or when the build
    goes to a DuckDB child (a large cache); a re-run with little to parse and a small build
    keeps it, and validates there instead of importing GX after the build (1.3 s of a 20k-page
    re-run). `page`: exactly the edited page's size, so its parse is not large but the build,
    which also reads the cache, is."""
    from authorgraph.pipelines import stages
    from authorgraph.pipelines.config import Settings
    from authorgraph.pipelines.ops import children

    settings = Settings(seeds=seeds_copy, warehouse=tmp_path / "wh")
    edited = seeds_copy / "002_928ee7f537c5860a.txt"
    if run == "edited":
        publish_seeds(settings)
        edited.write_text(
            edited.read_text().replace(
                "\n\n\n", "\n\n\nA New First Paper\n\nA Source\n\nAn abstract.\n\n", 1
            )
        )
    events: list[str] = []

    def in_child(isolate: bool, fn: Any, *args: Any) -> Any:
        events.append(fn.__name__ + (" in a child" if isolate else ""))
        return fn(*args)  # here: the decisions are under test, not the child

    monkeypatch.setattr(children, "release", lambda: events.append("release"))
    monkeypatch.setattr(stages, "in_child", in_child)
    limit = edited.stat().st_size if isolate_bytes == "page" else isolate_bytes
    monkeypatch.setattr(stages, "ISOLATE_BYTES", limit)
    transformed = stages.transform(stages.extract(settings), settings, "test-run")
    assert events == expected
    assert transformed.counts["papers"] == (26 if run == "edited" else 25)


def test_keys_too_large_for_the_memory_limit_are_named_in_comments_not_enforced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB's key index must fit in memory: when the listings' keys would not (here: a
    key counted as far larger than the limit), the staged file holds the same tables
    without key constraints, and each table's COMMENT names its keys and why."""
    import duckdb

    from authorgraph.pipelines.load.publish import DUCKDB_FILE, KEYS_NOT_ENFORCED
    from authorgraph.pipelines.transform import build

    pages = [
        (f"p{n}.txt", AuthorPage(f"F{n}, G", (RawPaper(f"T{n % 4}", "S", f"a b c {n}"),)))
        for n in range(12)
    ]
    write_batch(tmp_path / "batches", 0, pages)
    inputs = CacheInputs(tmp_path / "batches", None, NO_REUSE)
    assert build_tables(tmp_path, inputs, BuildLimits()).keys_enforced  # 12 listings fit
    monkeypatch.setattr(build, "KEY_INDEX_BYTES", 10**9)
    result = build_tables(tmp_path, inputs, BuildLimits())
    assert not result.keys_enforced
    assert_same_tables(built(tmp_path), reference_tables(stage_pages(pages)))
    with duckdb.connect(str(tmp_path / DUCKDB_FILE), read_only=True) as con:
        keyed = con.execute(
            "SELECT count(*) FROM duckdb_constraints() "
            "WHERE constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY')"
        ).fetchone()
        comments = dict(con.execute("SELECT table_name, comment FROM duckdb_tables()").fetchall())
    assert keyed == (0,)
    assert KEYS_NOT_ENFORCED in comments["papers"]
    assert "PRIMARY KEY (author_id, paper_id)" in comments["authorship"]
    assert "FOREIGN KEY (paper_id_a) REFERENCES papers (paper_id)" in comments["paper_review"]


def test_each_queue_is_unchanged_while_the_columns_it_reads_are(tmp_path: Path) -> None:
    """A queue is unchanged when only columns it never reads differ; any change to a title,
    an abstract (null included), a name, a link, or a row added or gone changes its own."""
    import duckdb
    import pyarrow.parquet as pq

    from authorgraph.pipelines.transform.build import unchanged_queues

    base: dict[str, dict[str, list[Any]]] = {
        "papers": {
            "paper_id": ["p1", "p2"],
            "title": ["A", "B"],
            "source": ["arXiv.org AI", "Venue"],
            "abstract": ["one two three", None],
        },
        "authors": {
            "author_id": ["a1", "a2"],
            "display_name": ["Ann Lee", "Bo"],
            "family_name": ["Lee", None],
            "given_name": ["Ann", None],
        },
        "authorship": {"author_id": ["a1", "a2"], "paper_id": ["p1", "p2"]},
    }

    def folder(name: str, table: str | None = None, **columns: list[Any]) -> Path:
        out = tmp_path / name
        out.mkdir()
        for t, data in base.items():
            pq.write_table(pa.table(data | (columns if t == table else {})), out / f"{t}.parquet")
        return out

    old = folder("old")
    con = duckdb.connect()
    both, papers, authors = {"paper_review", "author_review"}, {"paper_review"}, {"author_review"}
    cases: dict[str, tuple[set[str], tuple[str, dict[str, list[Any]]]]] = {
        "source": (both, ("papers", {"source": ["elsewhere", "Venue"]})),
        "title": (authors, ("papers", {"title": ["A", "b"]})),
        "abstract": (authors, ("papers", {"abstract": ["one two three", "now one"]})),
        "name": (papers, ("authors", {"given_name": ["A.", None]})),
        "link": (papers, ("authorship", {"paper_id": ["p2", "p2"]})),
        "gone": (authors, ("papers", {k: v[:1] for k, v in base["papers"].items()})),
    }
    assert unchanged_queues(con, old, old) == both
    for case, (expected, (table, columns)) in cases.items():
        new = folder(case, table, **columns)
        assert unchanged_queues(con, new, old) == expected, case
        assert unchanged_queues(con, old, new) == expected, case  # a row added, or back


def test_rows_not_in_gives_each_new_or_changed_row(seeds_warehouse: Path, tmp_path: Path) -> None:
    """What a re-run's row-level checks see: the rows of each core table whose key is new or
    whose values changed (nulls included), as a set difference of whole rows gives them."""
    from authorgraph.pipelines.transform.build import rows_not_in

    published = seeds_warehouse / "current" / "parquet"
    old = {t.name: published / f"{t.name}.parquet" for t in CORE_TABLES}
    frames = {name: pl.read_parquet(path) for name, path in old.items()}
    frames["papers"] = frames["papers"].with_columns(
        source=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("Elsewhere")).otherwise("source")
    )
    frames["authors"] = frames["authors"].with_columns(
        given_name=pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise("given_name")
    )
    extra = frames["authorship"].head(1).with_columns(paper_id=pl.lit("0" * 16))
    frames["authorship"] = pl.concat([frames["authorship"].slice(1), extra])
    new = {table: tmp_path / f"{table}.parquet" for table in frames}
    for table, frame in frames.items():
        frame.write_parquet(new[table])
    got = rows_not_in(new, old, tmp_path / "changed", BuildLimits())
    for table, frame in frames.items():
        expected = frame.join(
            pl.read_parquet(old[table]), on=frame.columns, how="anti", nulls_equal=True
        )
        assert expected.height == 1, table  # one row changed or added in each
        assert_frame_equal(pl.read_parquet(got[table]), expected)
