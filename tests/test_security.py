"""Nobody gets in where they don't belong: the SQL sandbox, links planted in the warehouse,
permissions under umask 000, and data that must stay text (artifact markdown)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from authorgraph.pipelines.cli.commands import app
from authorgraph.pipelines.load.lock import writer_lock
from authorgraph.pipelines.load.publish import WarehouseError, run_query, sync_quarantine
from authorgraph.pipelines.load.safe_io import UnsafePathError
from authorgraph.pipelines.load.state import RUN_LOG, append_run_log
from tests.conftest import FIXTURES, ROOT
from tests.test_concurrency import cli_env, run_cli  # noqa: F401  (cli_env: a fixture)

runner = CliRunner()
PRECIOUS = b"precious contents, not the pipeline's\n"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file (following the warehouse's own links) under a folder, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).digest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def victim(tmp_path: Path) -> Path:
    """A file outside the warehouse that a planted link points at."""
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(PRECIOUS)
    return path


# -- `authorgraph sql` reads the warehouse and nothing else ----------------------------------


@pytest.fixture(scope="module")
def sandbox(seeds_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private copy of the seeds warehouse, a secret file and an empty folder beside it."""
    root = tmp_path_factory.mktemp("sandbox")
    warehouse = root / "wh"
    shutil.copytree(seeds_warehouse, warehouse, symlinks=True)
    secret = root / "secret.csv"
    secret.write_text("name,password\nroot,hunter2\n")
    shutil.copy(warehouse / "authorgraph.duckdb", root / "other.duckdb")
    out = root / "out"
    out.mkdir()
    return {"warehouse": warehouse, "secret": secret, "out": out, "root": root}


REFUSED = [
    "COPY papers TO '{papers}' (FORMAT parquet)",
    "COPY (SELECT 1 AS x) TO '{out}/x.csv'",
    "COPY papers TO '/dev/stdout'",
    "EXPORT DATABASE '{out}/export'",
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM '{secret}'",
    "SELECT * FROM read_text('{secret}')",
    "SELECT * FROM read_blob('{secret}')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT count(*) FROM read_parquet('{papers}')",
    "SELECT * FROM glob('{root}/*')",
    "SELECT * FROM sniff_csv('{secret}')",
    "ATTACH '{root}/other.duckdb' AS other",
    "INSTALL httpfs",
    "FORCE INSTALL httpfs FROM 'http://127.0.0.1:9'",
    "LOAD httpfs",
    "LOAD '{root}/evil.duckdb_extension'",
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET lock_configuration = false",
    "SET autoload_known_extensions = true",
    "PRAGMA enable_profiling = 'json'",
    "PRAGMA profile_output = '{out}/profile.json'",
    "SET log_query_path = '{out}/queries.log'",
    "SET temp_directory = '{out}/tmp'",
    "SELECT 1; COPY papers TO '{out}/second.csv'",
    "DELETE FROM papers",
]


@pytest.mark.parametrize("statement", REFUSED)
def test_sql_refuses_everything_but_reading_the_warehouse(
    sandbox: dict[str, Path], statement: str
) -> None:
    warehouse = sandbox["warehouse"]
    query = statement.format(
        papers=warehouse / "parquet" / "papers.parquet",
        **{k: v for k, v in sandbox.items() if k != "warehouse"},
    )
    before = snapshot(warehouse)
    result = runner.invoke(app, ["sql", query, "--warehouse", str(warehouse)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("authorgraph: query failed: "), result.output
    assert "hunter2" not in result.output and "root:" not in result.output
    assert snapshot(warehouse) == before  # the published files are byte-identical
    assert list(sandbox["out"].iterdir()) == []  # nothing written outside


def test_sql_still_reads_tables_views_and_metadata(sandbox: dict[str, Path]) -> None:
    warehouse = sandbox["warehouse"]
    assert run_query(warehouse, "select count(*) from papers")[1] == [(25,)]
    columns, rows = run_query(
        warehouse, "select display_name from analytics.author_summary order by 1"
    )
    assert columns == ["display_name"] and len(rows) == 5
    assert run_query(warehouse, "select count(*) from analytics.coauthors")[1] == [(10,)]
    assert run_query(warehouse, "pragma table_info('papers')")[1][0][1] == "paper_id"
    settings = run_query(
        warehouse,
        "select name, value from duckdb_settings() where name in "
        "('enable_external_access', 'lock_configuration') order by name",
    )[1]
    assert settings == [("enable_external_access", "false"), ("lock_configuration", "true")]


def test_sql_cli_process_refuses_copy_over_the_published_parquet(
    sandbox: dict[str, Path],
) -> None:
    """The real `authorgraph sql` process: one line on stderr, exit 2, nothing overwritten."""
    warehouse = sandbox["warehouse"]
    papers = warehouse / "parquet" / "papers.parquet"
    before = papers.read_bytes()
    query = f"COPY (SELECT 'pwned' AS title) TO '{papers}' (FORMAT parquet)"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "authorgraph.pipelines",
            "sql",
            query,
            "--warehouse",
            str(warehouse),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 2, process.stderr
    assert process.stdout == ""
    assert len(process.stderr.strip().splitlines()) == 1, process.stderr
    assert "disabled by configuration" in process.stderr
    assert papers.read_bytes() == before


# -- nothing is written through a link planted in the warehouse ------------------------------


def test_lock_refuses_a_planted_symlink_or_hard_link(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    warehouse.mkdir()
    target = victim(tmp_path)
    lock = warehouse / ".lock"
    for plant in (
        lambda: lock.symlink_to(target),
        lambda: lock.symlink_to(tmp_path / "outside" / "created-by-lock"),  # dangling
        lambda: os.link(target, lock),
    ):
        plant()
        with pytest.raises(UnsafePathError, match=r"\.lock"), writer_lock(warehouse):
            pass
        lock.unlink()
    assert target.read_bytes() == PRECIOUS
    assert sorted(p.name for p in target.parent.iterdir()) == ["victim.txt"]
    with writer_lock(warehouse):  # a real lock file still works
        assert lock.read_text() == f"{os.getpid()}\n"


def test_run_cli_refuses_a_planted_lock_with_one_line(
    seeds_copy: Path,
    tmp_path: Path,
    cli_env: dict[str, str],  # noqa: F811
) -> None:
    warehouse = tmp_path / "wh"
    warehouse.mkdir()
    target = victim(tmp_path)
    (warehouse / ".lock").symlink_to(target)
    code, _, err = run_cli(seeds_copy, warehouse, cli_env)
    assert code == 5, err  # the warehouse can't be used as it is
    assert "authorgraph: refusing to write" in err and ".lock: it is a symlink" in err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("authorgraph:")] == [
        f"authorgraph: refusing to write {warehouse / '.lock'}: it is a symlink"
    ]
    assert target.read_bytes() == PRECIOUS
    assert not (warehouse / "authorgraph.duckdb").exists()


def test_run_log_refuses_a_planted_symlink_or_hard_link(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    warehouse.mkdir()
    target = victim(tmp_path)
    log = warehouse / RUN_LOG
    for plant in (lambda: log.symlink_to(target), lambda: os.link(target, log)):
        plant()
        with pytest.raises(UnsafePathError, match=r"run_log\.jsonl"):
            append_run_log(warehouse, {"run_id": "r1", "status": "validation_failed"})
        log.unlink()
    assert target.read_bytes() == PRECIOUS
    append_run_log(warehouse, {"run_id": "r1"})
    assert log.read_text() == '{"run_id": "r1"}\n'
    assert issubclass(UnsafePathError, WarehouseError)  # the CLI prints it as one line, exit 2


def test_quarantine_replaces_planted_links_and_never_follows_them(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    warehouse.mkdir()
    target = victim(tmp_path)
    outside = target.parent
    source = tmp_path / "bad.txt"
    source.write_bytes(b"the rejected page")
    # The quarantine folder itself is a link to a folder outside (that holds other files).
    (warehouse / "quarantine").symlink_to(outside, target_is_directory=True)
    sync_quarantine({"bad.txt": source}, warehouse / "quarantine")
    quarantine = warehouse / "quarantine"
    assert quarantine.is_dir() and not quarantine.is_symlink()
    assert (quarantine / "bad.txt").read_bytes() == b"the rejected page"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    # A copy's name, and the temporary names an older version used, planted as links.
    (quarantine / "bad.txt").unlink()
    (quarantine / "bad.txt").symlink_to(target)
    (quarantine / ".bad.txt.tmp").symlink_to(target)
    sync_quarantine({"bad.txt": source}, quarantine)
    assert not (quarantine / "bad.txt").is_symlink()
    assert (quarantine / "bad.txt").read_bytes() == b"the rejected page"
    assert not (quarantine / ".bad.txt.tmp").exists()
    # A copy no longer rejected that is a link: the link goes, its target stays.
    (quarantine / "gone.txt").symlink_to(target)
    sync_quarantine({}, quarantine)
    assert list(quarantine.iterdir()) == []
    assert target.read_bytes() == PRECIOUS


def test_report_replaces_a_planted_report_link(seeds_warehouse: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    shutil.copytree(seeds_warehouse, warehouse, symlinks=True)
    target = victim(tmp_path)
    (warehouse / "report.html").symlink_to(target)
    (warehouse / ".report.html.tmp").symlink_to(target)  # the old fixed temporary name
    result = runner.invoke(app, ["report", "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    report = warehouse / "report.html"
    assert not report.is_symlink() and "<h1>authorgraph report</h1>" in report.read_text()
    assert target.read_bytes() == PRECIOUS


def test_validate_replaces_a_planted_data_docs_link(seeds_warehouse: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    shutil.copytree(seeds_warehouse, warehouse, symlinks=True)
    target = victim(tmp_path)
    shutil.rmtree(warehouse / "data_docs")
    (warehouse / "data_docs").symlink_to(target.parent, target_is_directory=True)
    result = runner.invoke(app, ["validate", "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    docs = warehouse / "data_docs"
    assert not docs.is_symlink() and (docs / "index.html").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["victim.txt"]
    assert target.read_bytes() == PRECIOUS
    assert not [p for p in warehouse.iterdir() if p.name.startswith(".data_docs")]


# -- nothing any command writes is group- or world-writable ----------------------------------


@pytest.mark.waits(12)
def test_nothing_any_command_writes_is_group_or_world_writable(
    seeds_copy: Path,
    tmp_path: Path,
    cli_env: dict[str, str],  # noqa: F811
) -> None:
    """One CLI run, validate and report under umask 0; the run's input also has awkward file
    names (a leading dash, quotes and SQL, non-ASCII), which are just data."""
    names = ["-leading dash.txt", 'it\'s "quoted"; drop table papers;--.txt', "ünï cødé 名前.txt"]
    for name, source in zip(names, sorted(seeds_copy.iterdir())[:3], strict=True):
        source.rename(seeds_copy / name)
    shutil.copy(FIXTURES / "bad" / "missing_header.txt", seeds_copy / "-bad; name'.txt")
    shutil.copy(FIXTURES / "bad" / "incomplete_paper.txt", seeds_copy / "zz_bad.txt")
    warehouse = tmp_path / "wh"
    for command in (
        ["run", "--seeds", str(seeds_copy)],
        ["validate"],
        ["report"],
    ):
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "authorgraph.pipelines",
                *command,
                "--warehouse",
                str(warehouse),
            ],
            cwd=ROOT,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=lambda: os.umask(0),  # the most permissive umask a user could have
        )
        assert process.returncode == 0, process.stderr
    assert (warehouse / "quarantine" / "zz_bad.txt").is_file()
    assert (warehouse / "quarantine" / "-bad; name'.txt").is_file()
    con = duckdb.connect(str(warehouse / "authorgraph.duckdb"), read_only=True)
    try:
        sources = {
            r[0] for r in con.execute("select distinct source_file from authorship").fetchall()
        }
        rejected = con.execute("select file_name from rejected_files order by 1").fetchall()
        papers = con.execute("select count(*) from papers").fetchone()
    finally:
        con.close()
    assert set(names) <= sources
    assert rejected == [("-bad; name'.txt",), ("zz_bad.txt",)]
    assert papers == (25,)
    assert (warehouse / "report.html").is_file() and (warehouse / "data_docs").is_dir()
    writable = [
        f"{path} {stat.filemode(path.lstat().st_mode)}"
        for path in [warehouse, *warehouse.rglob("*")]
        if not path.is_symlink() and path.lstat().st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ]
    assert writable == []


# -- the Prefect artifact shows data as text --------------------------------------------------

HOSTILE = "<img src=x onerror=alert(1)>[x](http://e)![i](http://e/i.png)"


def test_artifact_markdown_renders_data_as_text() -> None:
    from markdown_it import MarkdownIt

    from authorgraph.pipelines.artifacts import run_markdown
    from authorgraph.pipelines.extract.seeds import RejectedFile, Rejection

    name = f"{HOSTILE} `tick` *em* _u_ a|b <http://x> www.e.com &amp; ~~s~~\nsecond line"
    record = {
        "run_id": "20260101T000000Z-x",
        "status": "published",
        "files_read": 1,
        "files_parsed": 1,
        "files_reused": 0,
        "files_rejected": 1,
        "files_deleted": 0,
    }
    rejected = [RejectedFile(name, Rejection("MISSING_HEADER", name, 1))]
    markdown = run_markdown(
        record, rejected, {"authors": 0}, "passed (1 expectations)", [f"s: {name}"], None
    )
    rendered = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)
    body = rendered.split("</h1>", 1)[1].replace("<strong>published</strong>", "")
    for tag in ("<img", "<a ", "<a>", "<code", "<em", "<strong", "<s>", "<del", "<br"):
        assert tag not in body, tag
    # The rejected row is one table row whose cells hold the name as text, escaped once.
    row = next(line for line in markdown.splitlines() if "MISSING" in line)
    assert row.count(" | ") == 3 and "\n" not in row
    text = (
        "&lt;img src=x onerror=alert(1)&gt;[x](http://e)![i](http://e/i.png) `tick` *em* _u_ "
        "a|b &lt;http://x&gt; www.e.com &amp;amp; ~~s~~ second line"
    )
    assert rendered.count(f"<td>{text}</td>") == 2
    assert f"<li>FAILED s: {text}</li>" in rendered
