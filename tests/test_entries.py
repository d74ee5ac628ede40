"""Which folder entries are page files (rules E1-E6), with real files made here: symlinks,
FIFOs, sockets, names git can't hold, vanished and oversized files. One odd entry never
stops the others."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from authorgraph.pipelines import stages
from authorgraph.pipelines.config import Settings
from authorgraph.pipelines.extract import seeds as extract_module
from authorgraph.pipelines.extract.seeds import escape_file_name, list_seeds
from authorgraph.transforms.parse import RawPaper, render_author_page
from tests.conftest import FIXTURES, run_stages, transform_only
from tests.test_concurrency import cli_env  # noqa: F401 (a fixture)

GOOD = {"authors": 5, "papers": 25, "authorship": 33}


def page(name: str, title: str) -> bytes:
    """A valid page with one paper of its own (so loading it would show in the counts)."""
    paper = RawPaper(title, "arXiv.org Artificial Intelligence", f"About {title}.")
    return render_author_page(name, [paper]).encode()


def counts(out: stages.Transformed) -> dict[str, int]:
    return {name: out.tables[name].height for name in GOOD}


def rejected(out: stages.Transformed) -> dict[str, dict[str, object]]:
    return {r["file_name"]: r for r in out.tables["rejected_files"].to_dicts()}


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Turn a hang (a FIFO opened for reading) into a failure instead of a stuck suite."""

    def timeout(signum: int, frame: object) -> None:
        raise TimeoutError("the run blocked: something opened a FIFO")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_e1_links_inside_load_and_hidden_names_are_skipped(seeds_copy: Path, settings_for) -> None:
    inner = seeds_copy / "inner"
    inner.mkdir()
    (inner / "lena.txt").write_bytes(page("Linked, Lena", "A Linked Paper"))
    (seeds_copy / "linked.txt").symlink_to(Path("inner") / "lena.txt")
    (seeds_copy / "roundabout.txt").symlink_to(Path("..") / "seeds" / "inner" / "lena.txt")
    # A hidden file is never read, even a broken one.
    (seeds_copy / ".hidden.txt").write_bytes((FIXTURES / "bad" / "binary_content.txt").read_bytes())
    out = transform_only(settings_for(seeds_copy))
    assert rejected(out) == {}
    assert counts(out) == {"authors": 6, "papers": 26, "authorship": 34}
    assert out.files_skipped == 1  # the folder `inner`
    sources = set(out.tables["authorship"]["source_file"])
    assert "linked.txt" in sources and ".hidden.txt" not in sources


def test_e2_dirs_fifos_sockets_are_skipped_never_opened(
    seeds_copy: Path, settings_for, no_hang: None
) -> None:
    os.mkfifo(seeds_copy / "pipe.txt")
    (seeds_copy / "folder.txt").mkdir()
    (seeds_copy / "to_pipe.txt").symlink_to("pipe.txt")  # inside, but not a regular file
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(seeds_copy / "sock.txt"))
        out = transform_only(settings_for(seeds_copy))
    assert rejected(out) == {}
    assert out.files_skipped == 4
    assert counts(out) == GOOD


def test_e3_links_out_dangling_or_looping_are_never_read_or_copied(
    seeds_copy: Path, tmp_path: Path, settings_for
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(page("Outside, Olga", "A Secret Paper"))  # would load if followed
    links = {
        "out.txt": outside,
        "passwd.txt": Path("/etc/passwd"),
        "environ.txt": Path("/proc/self/environ"),
        "dangling.txt": seeds_copy / "missing.txt",
        "loop_a.txt": seeds_copy / "loop_b.txt",
        "loop_b.txt": seeds_copy / "loop_a.txt",
    }
    for name, target in links.items():
        (seeds_copy / name).symlink_to(target)
    settings = settings_for(seeds_copy)
    out = run_stages(settings)
    rows = rejected(out)
    assert set(rows) == set(links)
    for row in rows.values():
        assert row["reason_code"] == "UNSAFE_LINK"
        assert row["sha256"] is None and row["quarantined"] is False
    assert "outside the seeds folder" in str(rows["out.txt"]["message"])
    assert "dangles" in str(rows["dangling.txt"]["message"])
    assert "loops" in str(rows["loop_a.txt"]["message"])
    assert counts(out) == GOOD
    quarantine = settings.quarantine_dir
    assert not quarantine.exists() or not any(quarantine.iterdir())


def test_e4_a_file_that_vanishes_after_listing_is_rejected_and_rechecked(
    seeds_copy: Path, settings_for
) -> None:
    settings = settings_for(seeds_copy)
    victim = sorted(seeds_copy.iterdir())[0]
    kept = victim.read_bytes(), victim.stat()
    extracted = stages.extract(settings)
    victim.unlink()  # deleted between listing and reading
    out = stages.transform(extracted, settings, "vanish")
    row = rejected(out)[victim.name]
    assert row["reason_code"] == "UNREADABLE_FILE" and row["sha256"] is None
    assert "No such file" in str(row["message"]) and row["quarantined"] is False
    assert counts(out)["authors"] == 4
    # Publish that, then put the file back with the same size and mtime: E4 is decided
    # afresh on every run, so it loads although the manifest's size and mtime match.
    report = stages.validate(out, settings)
    with stages.exclusive_run(settings):
        stages.load(out, settings, stages.run_record("vanish", _now(), out, report, settings))
    victim.write_bytes(kept[0])
    os.utime(victim, ns=(kept[1].st_atime_ns, kept[1].st_mtime_ns))
    again = run_stages(settings)
    assert rejected(again) == {} and counts(again) == GOOD


def _now() -> datetime:

    return datetime.now(UTC)


def test_e5_bad_names_are_rejected_escaped_and_spaced_names_load(
    seeds_copy: Path, settings_for
) -> None:
    folder = os.fsencode(seeds_copy)
    bad = [b"bad\xffname.txt", b"cr\rname.txt", b"lf\nname.txt", b"tab\tname.txt", b"esc\x1b.txt"]
    for number, raw in enumerate(bad):
        with open(os.path.join(folder, raw), "wb") as handle:
            handle.write(page(f"Bad, Name{number}", f"Bad Name Paper {number}"))
    # A bad name that is also a link out: the name is checked first.
    os.symlink(b"/etc/passwd", os.path.join(folder, b"link\xfe.txt"))
    # Valid names: spaces at the edges are data; a literal backslash sequence is data too and
    # must not collide with the escaped form of the bad name above.
    (seeds_copy / " spaced .txt").write_bytes(page("Spaced, Sam", "A Spaced Paper"))
    (seeds_copy / "bad\\xffname.txt").write_bytes(page("Literal, Lee", "A Literal Paper"))
    out = run_stages(settings_for(seeds_copy))  # validation passes, the run publishes
    rows = rejected(out)
    expected = {
        "/bad\\xffname.txt",
        "/cr\\rname.txt",
        "/lf\\nname.txt",
        "/tab\\tname.txt",
        "/esc\\x1b.txt",
        "/link\\xfe.txt",
    }
    assert set(rows) == expected
    for row in rows.values():
        assert row["reason_code"] == "BAD_FILE_NAME"
        assert row["sha256"] is None and row["quarantined"] is False
    sources = set(out.tables["authorship"]["source_file"])
    assert {" spaced .txt", "bad\\xffname.txt"} <= sources
    assert counts(out) == {"authors": 7, "papers": 27, "authorship": 35}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"a\xffb", "/a\\xffb"),
        (b"a\\b\rc", "/a\\\\b\\rc"),
        (b"\xe2\x82", "/\\xe2\\x82"),
        ("é\u0085".encode(), "/é\\x85"),
    ],
)
def test_escaped_names_are_printable_and_never_a_valid_name(raw: bytes, shown: str) -> None:
    name = os.fsdecode(raw)
    assert escape_file_name(name) == shown
    assert shown.isprintable() and "/" in shown  # no real file name holds "/"


def test_e6_an_oversized_file_is_hashed_once_and_never_copied(
    seeds_copy: Path, settings_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = seeds_copy / "huge.txt"
    with open(huge, "wb") as handle:  # a sparse file 4 times the default limit (16 MiB): each
        handle.truncate(64 * 1024**2)  # GiB hashed costs 3 s of CPU; 2**31 bytes: test_parse
    opened: list[Path] = []
    real_open = extract_module._open_regular

    def spy(path: str | Path) -> int:
        opened.append(Path(path))
        return real_open(path)

    monkeypatch.setattr(extract_module, "_open_regular", spy)
    settings = settings_for(seeds_copy)
    out = run_stages(settings)
    row = rejected(out)["huge.txt"]
    assert row["reason_code"] == "FILE_TOO_LARGE" and row["quarantined"] is False
    assert len(str(row["sha256"])) == 64
    assert "67,108,864 bytes" in str(row["message"])
    assert opened.count(huge) == 1  # hashed once, as a stream
    assert not (settings.quarantine_dir / "huge.txt").exists()
    run_stages(settings)  # same size and mtime: not read again
    assert opened.count(huge) == 1


def test_raising_the_size_limit_loads_the_file_without_a_full_refresh(
    seeds_copy: Path, settings_for
) -> None:
    (seeds_copy / "big.txt").write_bytes(page("Big, Bea", "A Big Paper " + "x" * 30_000))
    out = run_stages(settings_for(seeds_copy, max_file_bytes=20_000))
    assert rejected(out)["big.txt"]["reason_code"] == "FILE_TOO_LARGE"
    assert "20,000-byte limit" in str(rejected(out)["big.txt"]["message"])
    again = run_stages(settings_for(seeds_copy, max_file_bytes=64_000))
    assert rejected(again) == {}
    assert counts(again)["authors"] == 6


def test_listing_order_is_code_point_order_of_stored_names(seeds_copy: Path) -> None:
    (seeds_copy / "Zebra.txt").write_bytes(page("Zebra, Zoe", "Z"))
    (seeds_copy / "ähnlich.txt").write_bytes(page("Ähnlich, Ari", "Ä"))
    names = [ref.name for ref in list_seeds(seeds_copy).files]
    assert names == sorted(names) and names[-1] == "ähnlich.txt"


def test_published_rejected_files_have_null_hashes_and_copy_flags(
    seeds_copy: Path, settings_for
) -> None:
    (seeds_copy / "out.txt").symlink_to("/etc/hostname")
    (seeds_copy / "empty.txt").write_bytes(b"")
    settings = settings_for(seeds_copy)
    run_stages(settings)
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        rows = con.execute(
            "select file_name, sha256, quarantined from rejected_files order by 1"
        ).fetchall()
        manifest = dict(con.execute("select file_name, sha256 from manifest").fetchall())
    finally:
        con.close()
    assert rows == [("empty.txt", hashlib.sha256(b"").hexdigest(), True), ("out.txt", None, False)]
    assert manifest["out.txt"] is None
    assert (settings.quarantine_dir / "empty.txt").read_bytes() == b""


@pytest.mark.waits(14)
def test_cli_unreadable_files_links_and_fifos_never_stop_the_run(
    seeds_copy: Path,
    tmp_path: Path,
    cli_env: dict[str, str],  # noqa: F811
) -> None:
    """The real CLI, without the capabilities that let root read a chmod-000 file."""
    from tests.test_exit_codes import NO_DAC, authorgraph

    locked = seeds_copy / "locked.txt"
    locked.write_bytes(page("Locked, Lou", "A Locked Paper"))
    locked_big = seeds_copy / "locked_big.txt"
    locked_big.write_bytes(page("Big, Bo", "B" * 30_000))
    for path in (locked, locked_big):
        path.chmod(0o000)
    os.mkfifo(seeds_copy / "pipe.txt")
    (seeds_copy / "passwd.txt").symlink_to("/etc/passwd")
    warehouse = tmp_path / "wh"
    args = ("run", "--seeds", str(seeds_copy), "--warehouse", str(warehouse))
    result = authorgraph(*args, "--strict", "--max-file-bytes", "20000", env=cli_env, wrap=NO_DAC)
    assert result.returncode == 3, result.stderr  # --strict: files were rejected
    assert "Traceback" not in result.stderr
    assert "1 skipped" in result.stdout
    con = duckdb.connect(str(warehouse / "authorgraph.duckdb"), read_only=True)
    try:
        rows = dict(con.execute("select file_name, reason_code from rejected_files").fetchall())
        authors = con.execute("select count(*) from authors").fetchone()
    finally:
        con.close()
    # Unreadable comes before too-large: the size alone never hides a permission problem.
    assert rows == {
        "locked.txt": "UNREADABLE_FILE",
        "locked_big.txt": "UNREADABLE_FILE",
        "passwd.txt": "UNSAFE_LINK",
    }
    assert authors == (5,)
    # Unreadable files are read again on every run; while they stay so, their rows (none)
    # are unchanged, so the run carries the published tables over instead of rebuilding.
    result = authorgraph(*args, "--strict", "--max-file-bytes", "20000", env=cli_env, wrap=NO_DAC)
    assert result.returncode == 3, result.stderr
    assert "(2 parsed, 5 unchanged and reused" in result.stdout
    assert "validation: tables unchanged" in result.stdout
    # Fixed permissions load on the next run, though size and mtime did not change; the
    # FIFO is only skipped, so --strict has nothing to complain about.
    locked.chmod(0o644)
    locked_big.chmod(0o644)
    (seeds_copy / "passwd.txt").unlink()
    # In-process: the CLI's part (exit 3, one summary) was the first run's.
    again = run_stages(Settings(seeds_copy, warehouse, max_file_bytes=64_000, strict=True))
    assert again.files_rejected == 0  # so --strict exits 0
    assert again.files_read - again.files_rejected == 7  # "7 loaded"


@pytest.mark.parametrize("fails", ["opening", "mid-listing"])
def test_a_folder_that_cannot_be_listed_is_one_named_error(
    seeds_copy: Path, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    """The listing is read one entry at a time: an OSError when the folder is opened, or
    one from the middle of the listing (EIO after the first entry), is the same SeedsError
    naming the folder, never a traceback. (Root reads any folder, so the errors are raised
    by a stand-in for os.scandir over the real folder.)"""
    real_scandir = os.scandir

    class Failing:
        def __init__(self, path: Path) -> None:
            if fails == "opening":
                raise PermissionError(13, "Permission denied")
            self.entries = real_scandir(path)

        def __enter__(self) -> Failing:
            return self

        def __exit__(self, *exc: object) -> None:
            self.entries.close()

        def __iter__(self) -> Iterator[os.DirEntry[str]]:
            yield next(self.entries)
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(extract_module.os, "scandir", Failing)
    reason = "Permission denied" if fails == "opening" else "Input/output error"
    with pytest.raises(extract_module.SeedsError) as caught:
        list_seeds(seeds_copy)
    assert str(caught.value) == f"cannot list the seeds folder {seeds_copy}: {reason}"
