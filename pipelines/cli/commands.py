"""The `authorgraph` command line: thin commands that resolve settings and call one function.

Exit codes: 0 done, 1 validation failed (nothing published), 2 usage or input error,
3 `--strict` and some files were rejected, 4 another run holds the warehouse,
5 the warehouse can't be used (a file, read-only, a lock not ours, damaged files),
6 the disk filled up while staging (nothing published), 7 the Prefect server the command used
(kept, or Prefect's temporary one) stopped during it, 120 the output could not be written,
130/143 stopped by SIGINT/SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from authorgraph.pipelines.config import ConfigError, Settings, quiet_libraries, resolve_settings
from authorgraph.pipelines.ops.lifecycle import (
    hard_exit,
    leave,
    output_lost,
    quiet_resource_tracker,
    stops_on_signals,
)

if TYPE_CHECKING:
    import polars as pl

    from authorgraph.expectations.validate import TableInput
    from authorgraph.pipelines.transform.build import KeyChecks

EXIT_VALIDATION, EXIT_USAGE, EXIT_STRICT, EXIT_BUSY = 1, 2, 3, 4
EXIT_WAREHOUSE, EXIT_NO_SPACE, EXIT_SERVER_GONE = 5, 6, 7
# Seconds a command whose kept server ended has to wind down (its own clean-up runs at once;
# what is left is Prefect's client retrying a server that is gone) before it exits anyway.
SERVER_GONE_GRACE = 5.0

app = typer.Typer(
    name="authorgraph",
    help="Turn a folder of author pages into a validated DuckDB + Parquet warehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SeedsOpt = Annotated[
    Path | None,
    typer.Option("--seeds", help="Folder of page files [env AUTHORGRAPH_SEEDS; default seeds/]."),
]
WarehouseOpt = Annotated[
    Path | None,
    typer.Option(
        "--warehouse", help="Warehouse folder [env AUTHORGRAPH_WAREHOUSE; default warehouse/]."
    ),
]


def fail(message: str, code: int) -> typer.Exit:
    """Print one clear line on stderr and return the Exit to raise."""
    err.print(f"authorgraph: {message}", markup=False)
    return typer.Exit(code)


def settings_or_exit(**kwargs: object) -> Settings:
    """Resolve settings; a bad value is a usage error (exit 2)."""
    try:
        return resolve_settings(**kwargs)  # type: ignore[arg-type]  # CLI options by name
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


@app.command()
@stops_on_signals(fail)
def run(
    seeds: SeedsOpt = None,
    warehouse: WarehouseOpt = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 3 when any input file was rejected.")
    ] = False,
    max_file_bytes: Annotated[
        int | None,
        typer.Option("--max-file-bytes", help="Reject files larger than this (default 16 MiB)."),
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Ignore the parse cache; rebuild everything.")
    ] = False,
    full_hash: Annotated[
        bool,
        typer.Option("--full-hash", help="Hash every file, even if its size and mtime match."),
    ] = False,
    wait: Annotated[
        float,
        typer.Option(
            "--wait", min=0, help="Seconds to wait for another run on this warehouse (default 0)."
        ),
    ] = 0.0,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Parallel parse workers [env AUTHORGRAPH_WORKERS]."),
    ] = None,
    runner: Annotated[
        str | None,
        typer.Option(
            "--runner", help="Where parse batches run: pool (default), threads, processes, dask."
        ),
    ] = None,
    dask_address: Annotated[
        str | None,
        typer.Option(
            "--dask-address", help="Dask scheduler (tcp://host:port); default: a local cluster."
        ),
    ] = None,
) -> None:
    """Extract, transform, validate and publish the pages into the warehouse."""
    settings = settings_or_exit(
        seeds=seeds,
        warehouse=warehouse,
        max_file_bytes=max_file_bytes,
        strict=strict or None,
        full_refresh=full_refresh,
        full_hash=full_hash,
        wait_seconds=wait,
        workers=workers,
        runner=runner or ("dask" if dask_address else None),
    )
    preflight(settings)
    kept = use_kept_server()
    quiet_libraries()
    from authorgraph.pipelines.ops.children import validator_ahead

    with stops_if_server_ends(kept, "run"), validator_ahead():
        _run_flow(settings, dask_address)  # (GX imports in a child while Prefect starts)


def _run_flow(settings: Settings, dask_address: str | None) -> None:
    """`run`'s flow call, its failures as one line each, and its summary."""
    from authorgraph.expectations.validate import ValidationFailed
    from authorgraph.pipelines.cli.progress import file_progress
    from authorgraph.pipelines.extract.seeds import SeedsError
    from authorgraph.pipelines.flow import authorgraph_flow, heartbeats_unless_asked
    from authorgraph.pipelines.load.lock import WarehouseBusy
    from authorgraph.pipelines.load.publish import WarehouseError
    from authorgraph.pipelines.ops.runners import DEFAULT_RUNNER, RunnerError, make_task_runner

    try:
        task_runner = make_task_runner(
            settings.runner or DEFAULT_RUNNER, settings.workers, dask_address
        )
    except RunnerError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    try:
        with file_progress(err) as progress, heartbeats_unless_asked():
            summary = authorgraph_flow.with_options(task_runner=task_runner)(settings, progress)
    except ValidationFailed as exc:
        for line in exc.report.failure_lines():
            err.print(f"  FAILED {line}", markup=False)
        raise fail(
            f"validation failed; nothing was published (Data Docs: {exc.report.data_docs_index})",
            EXIT_VALIDATION,
        ) from None
    except WarehouseBusy as exc:
        raise fail(str(exc), EXIT_BUSY) from None
    except (SeedsError, WarehouseError) as exc:
        raise fail(str(exc), warehouse_exit_code(exc)) from None
    print_summary(summary)
    if settings.strict and summary.rejected:
        raise fail(f"--strict: {len(summary.rejected)} file(s) rejected", EXIT_STRICT)


def preflight(settings: Settings) -> None:
    """Report a missing seeds folder, an unusable warehouse or (without `--wait`) one another
    run is publishing to at once, before Prefect starts and before any folder is created (the
    flow checks again under the lock)."""
    from authorgraph.pipelines.extract.seeds import SeedsError, check_seeds
    from authorgraph.pipelines.load.errors import WarehouseError
    from authorgraph.pipelines.load.folder import check_warehouse
    from authorgraph.pipelines.load.lock import WarehouseBusy, held_by_another

    try:
        check_seeds(settings.seeds)
        check_warehouse(settings.warehouse)
    except (SeedsError, WarehouseError) as exc:
        raise fail(str(exc), warehouse_exit_code(exc)) from None
    if settings.wait_seconds <= 0 and held_by_another(settings.warehouse):
        raise fail(str(WarehouseBusy(settings.warehouse)), EXIT_BUSY)


def warehouse_exit_code(exc: Exception) -> int:
    """The documented exit code for a named warehouse or seeds error."""
    from authorgraph.pipelines.load.errors import NoSpaceLeft, WarehouseDamaged, WarehouseUnusable

    if isinstance(exc, NoSpaceLeft):
        return EXIT_NO_SPACE
    if isinstance(exc, (WarehouseUnusable, WarehouseDamaged)):
        return EXIT_WAREHOUSE
    return EXIT_USAGE


def print_summary(summary: object) -> None:
    """The short report printed after a run."""
    from authorgraph.pipelines.flow import RunSummary

    assert isinstance(summary, RunSummary)
    counts = summary.row_counts
    out.print(f"authorgraph run {summary.run_id}", markup=False)
    record = summary.record
    out.print(
        f"  files: {summary.files_read} read, {summary.files_loaded} loaded, "
        f"{len(summary.rejected)} rejected ({record['files_parsed']} parsed, "
        f"{record['files_reused']} unchanged and reused, {record['files_deleted']} deleted)"
        + (
            f"; {summary.files_skipped} skipped (not regular files)"
            if summary.files_skipped
            else ""
        ),
        markup=False,
    )
    for rejected in summary.rejected:
        r = rejected.rejection
        where = f" (line {r.line})" if r.line else ""
        out.print(
            f"    rejected {rejected.file_name}{where}: {r.reason_code}: {r.message}",
            markup=False,
        )
    out.print(
        f"  rows: authors {counts['authors']}, papers {counts['papers']}, "
        f"authorship {counts['authorship']}",
        markup=False,
    )
    if "paper_review" in counts:
        out.print(
            f"  to review: paper pairs {counts['paper_review']}, author pairs "
            f"{counts['author_review']} (flagged, never merged)",
            markup=False,
        )
    out.print(f"  validation: {summary.validation.headline()}", markup=False)
    out.print(f"  duckdb: {summary.duckdb_path}", markup=False)
    out.print(f"  data docs: {summary.data_docs_index}", markup=False)
    for warning in summary.warnings:
        err.print(f"authorgraph: warning: {warning}", markup=False)


@app.command()
@stops_on_signals(fail)
def serve(
    cron: Annotated[
        str | None, typer.Option("--cron", help='Cron schedule, e.g. "0 * * * *" (the default).')
    ] = None,
    interval: Annotated[
        float | None, typer.Option("--interval", min=1, help="Run every SECONDS instead.")
    ] = None,
    seeds: SeedsOpt = None,
    warehouse: WarehouseOpt = None,
    wait: Annotated[
        float,
        typer.Option("--wait", min=0, help="Seconds a run waits for another writer (default 0)."),
    ] = 0.0,
) -> None:
    """Serve the flow as a Prefect deployment on a schedule until stopped (Ctrl-C)."""
    if cron is not None and interval is not None:
        raise fail("give either --cron or --interval, not both", EXIT_USAGE)
    settings = settings_or_exit(seeds=seeds, warehouse=warehouse)
    if not settings.seeds.is_dir():
        raise fail(f"seeds folder not found: {settings.seeds}", EXIT_USAGE)
    kept = use_kept_server()
    quiet_libraries()
    from authorgraph.pipelines.ops.serve import ServerError, serve_forever

    try:
        with stops_if_server_ends(kept, "serve"):
            serve_forever(
                settings.seeds,
                settings.warehouse,
                wait,
                None if interval is not None else (cron or "0 * * * *"),
                interval,
                lambda line: out.print(line, markup=False),
            )
    except ServerError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


@app.command()
def validate(warehouse: WarehouseOpt = None) -> None:
    """Re-run the suites against the published tables."""
    settings = settings_or_exit(warehouse=warehouse)
    quiet_libraries()
    import tempfile

    from authorgraph.expectations.validate import TableUnreadable, validate_tables
    from authorgraph.pipelines.load.folder import check_data_docs
    from authorgraph.pipelines.load.publish import WarehouseError, deny_world_write

    deny_world_write()
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="authorgraph-validate-") as scratch:
        try:
            check_data_docs(settings.data_docs_dir)
            tables, stats, key_parts = published_inputs(settings, Path(scratch), warnings)
        except WarehouseError as exc:
            raise fail(str(exc), warehouse_exit_code(exc)) from None
        try:
            report = validate_tables(
                tables, settings.data_docs_dir, page_stats=stats, key_parts=key_parts
            )
        except TableUnreadable as exc:
            raise fail(str(exc), EXIT_WAREHOUSE) from None
        except OSError as exc:
            raise fail(
                f"cannot write Data Docs into {settings.data_docs_dir}: {exc.strerror or exc}",
                EXIT_WAREHOUSE,
            ) from None
    out.print(f"validation: {report.headline()}", markup=False)
    out.print(f"data docs: {report.data_docs_index}", markup=False)
    for warning in warnings + report.warnings:
        err.print(f"authorgraph: warning: {warning}", markup=False)
    if not report.success:
        for line in report.failure_lines():
            err.print(f"  FAILED {line}", markup=False)
        raise typer.Exit(EXIT_VALIDATION)


def published_inputs(
    settings: Settings, scratch: Path, warnings: list[str]
) -> tuple[dict[str, TableInput], pl.DataFrame | None, dict[str, list[Path]]]:
    """What `validate` judges: the published tables, the page statistics and the ledger's
    counts, and the whole-table checks' inputs staged under `scratch` (a suite that cannot
    be fed is named in `warnings`); the tables, page statistics and key partitions."""
    import duckdb
    import polars as pl
    import pyarrow as pa

    from authorgraph.expectations.validate import RELATIONSHIPS, TableUnreadable
    from authorgraph.pipelines.load.publish import (
        PARQUET_DIR,
        STATE_DIR,
        current_version,
        read_published_tables,
    )
    from authorgraph.pipelines.transform.drift import page_stats
    from authorgraph.transforms.schema import CORE_TABLES

    version = current_version(settings.warehouse)
    if version is None:  # no versioned publish: the DuckDB file (or the error saying there is none)
        published = read_published_tables(settings.warehouse)
        return {t.name: pl.DataFrame(published[t.name]) for t in CORE_TABLES}, None, {}
    # the published Parquet files, read a chunk at a time
    tables: dict[str, TableInput] = {
        t.name: version / PARQUET_DIR / f"{t.name}.parquet" for t in CORE_TABLES
    }
    stats = None
    try:  # the page statistics of the published parse cache (layout drift)
        stats = page_stats(version / STATE_DIR)
    except OSError as exc:
        warnings.append(f"the layout_drift suite was not run: {exc}")
    try:  # the listing ledger's invariants
        tables["ledger"] = published_ledger_checks(version)
    except OSError as exc:
        warnings.append(f"the ledger suite was not run: {exc}")
    key_parts: dict[str, list[Path]] = {}
    # a damaged file: the suites read the tables themselves and name it
    with contextlib.suppress(OSError, duckdb.Error, pa.ArrowException, TableUnreadable):
        keys = published_key_checks(tables, scratch)
        key_parts = keys.parts
        if keys.relationships is not None:
            tables[RELATIONSHIPS] = keys.relationships
    return tables, stats, key_parts


def published_key_checks(tables: dict[str, TableInput], scratch: Path) -> KeyChecks:
    """What the whole-table suites read for a published version (`key_checks`), under
    `scratch`: its key columns split on disk, so that a large table is never held whole."""
    from authorgraph.expectations.validate import key_columns, key_part_counts
    from authorgraph.pipelines.transform.build import BuildLimits, key_checks

    paths = {n: t for n, t in tables.items() if isinstance(t, Path)}
    parts = key_part_counts(tables)
    return key_checks(paths, key_columns(), parts, scratch / "checks", BuildLimits())


def published_ledger_checks(version: Path) -> pl.DataFrame:
    """The ledger suite's one row of violation counts for a published version."""
    import tempfile

    import polars as pl

    from authorgraph.pipelines.load.publish import PARQUET_DIR, STATE_DIR
    from authorgraph.pipelines.transform.build import BuildLimits, ledger_checks

    paths = {n: version / PARQUET_DIR / f"{n}.parquet" for n in ("papers", "authorship")}
    paths["listings"] = version / PARQUET_DIR / "listings.parquet"
    paths["page_links"] = version / STATE_DIR / "page_links.parquet"
    import duckdb

    with tempfile.TemporaryDirectory(prefix="authorgraph-ledger-") as tmp:
        try:
            checks = ledger_checks(paths, Path(tmp) / "ledger.parquet", BuildLimits())
        except duckdb.Error as exc:  # a damaged file: the table suites say which, in one line
            raise OSError(" ".join(str(exc).split())) from None
        return pl.read_parquet(checks)


@app.command()
def sql(
    query: Annotated[
        str | None, typer.Argument(help="The SQL to run (read-only); `-` reads it from stdin.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Read the SQL from this file.", dir_okay=False)
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="Output format: table, csv or json.")
    ] = "table",
    warehouse: WarehouseOpt = None,
) -> None:
    """Run a read-only SQL query against the published DuckDB file and print the result."""
    from authorgraph.pipelines.cli.formats import FORMATS, to_csv, to_json, to_rich_table
    from authorgraph.pipelines.load.publish import WarehouseError, run_query

    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}", EXIT_USAGE)
    if (query is None) == (file is None):
        raise fail("give the SQL either as an argument (`-` for stdin) or with --file", EXIT_USAGE)
    try:
        text = file.read_text(encoding="utf-8") if file else query
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}", EXIT_USAGE) from None
    if text == "-":
        text = sys.stdin.read()
    settings = settings_or_exit(warehouse=warehouse)
    try:
        columns, rows = run_query(settings.warehouse, str(text))
    except WarehouseError as exc:
        raise fail(str(exc), warehouse_exit_code(exc)) from None
    try:
        if fmt == "table":
            out.print(to_rich_table(columns, rows))
        else:
            sys.stdout.write(to_csv(columns, rows) if fmt == "csv" else to_json(columns, rows))
    except OSError as exc:  # a full disk, a closed pipe
        output_lost(exc)


@app.command()
def report(
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out", help="HTML file to write [default: <warehouse>/report.html].", dir_okay=False
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Write one self-contained HTML page: counts, top authors, subjects, co-author graph."""
    settings = settings_or_exit(warehouse=warehouse)
    from authorgraph.pipelines.cli.report import write_report
    from authorgraph.pipelines.load.publish import WarehouseError, deny_world_write

    deny_world_write()
    try:
        path = write_report(settings.warehouse, out_file or settings.warehouse / "report.html")
    except WarehouseError as exc:
        raise fail(str(exc), warehouse_exit_code(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write the report: {exc}", EXIT_USAGE) from None
    out.print(f"report: {path}", markup=False)


def use_kept_server() -> tuple[str, int] | None:
    """Point Prefect at the server `authorgraph server start` keeps, when it is up and no
    PREFECT_API_URL is set: then no temporary server is started and stopped for this run.
    Returns the server's URL and pid when it is used."""
    from authorgraph.pipelines.ops.server import kept_server

    if "PREFECT_API_URL" in os.environ:
        return None
    kept = kept_server()
    if kept is not None:
        os.environ["PREFECT_API_URL"] = kept[0]
    return kept


@contextlib.contextmanager
def stops_if_server_ends(kept: tuple[str, int] | None, command: str) -> Iterator[None]:
    """While inside, when the Prefect server this command uses ends (the kept server, or else
    Prefect's temporary server once it has started one): print one line, silence the
    tracebacks of Prefect's client that would follow, interrupt the command like Ctrl-C (its
    clean-up runs; nothing half-written is published) and exit 7, after `SERVER_GONE_GRACE`
    seconds at most. A server that ends after the block (the command's own exit, which stops
    a temporary server) is ignored. A server given by PREFECT_API_URL is not watched."""
    from authorgraph.pipelines.ops.server import watch_process, watch_temporary_server

    gone, done = threading.Event(), threading.Event()

    def on_gone(url: str, pid: int, which: str, hint: str) -> None:
        if done.is_set():
            return
        gone.set()
        err.print(
            f"authorgraph: {which} at {url} (pid {pid}) stopped; {command} stopped and the "
            f"warehouse keeps its last complete version{hint}",
            markup=False,
        )
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(SERVER_GONE_GRACE)
        hard_exit(EXIT_SERVER_GONE)

    if kept is not None:
        url, pid = kept
        hint = (
            " (`authorgraph server start` starts it again; without it, a run starts a "
            "temporary server)"
        )
        watch_process(pid, lambda: on_gone(url, pid, "the Prefect server", hint))
    elif not os.environ.get("PREFECT_API_URL"):
        watch_temporary_server(
            lambda url, pid: on_gone(url, pid, "Prefect's temporary server", ""), done
        )
    try:
        yield
    except BaseException:
        if gone.is_set():  # its line is printed; the failure is the server's end
            raise typer.Exit(EXIT_SERVER_GONE) from None
        raise
    finally:
        done.set()


server_app = typer.Typer(
    help="Keep a local Prefect server between runs (`run` and `serve` use it while it is up).",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start() -> None:
    """Start a local Prefect server on 127.0.0.1 that outlives this command."""
    from authorgraph.pipelines.ops.server import ServerError, start_server

    quiet_libraries()
    try:
        start_server(lambda line: out.print(line, markup=False))
    except ServerError as exc:
        raise fail(str(exc).splitlines()[0], EXIT_USAGE) from None


@server_app.command("stop")
def server_stop() -> None:
    """Stop the server `server start` started."""
    from authorgraph.pipelines.ops.server import stop_server

    out.print("stopped" if stop_server() else "no server was running", markup=False)


@server_app.command("status")
def server_status() -> None:
    """Say whether the kept server is up, and where (exit 1 when it is not)."""
    from authorgraph.pipelines.ops.server import running_server

    url = running_server()
    out.print(f"running at {url}" if url else "not running", markup=False)
    if url is None:
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point: the CLI, then `leave` (no interpreter teardown: a run
    ends 0.3 s sooner)."""
    quiet_resource_tracker()
    try:
        app()
    except SystemExit as done:
        leave(done.code)
    leave(0)
