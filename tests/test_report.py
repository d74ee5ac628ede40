"""`authorgraph report`: one self-contained HTML page with the warehouse's numbers (no Prefect)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from authorgraph.pipelines.cli.commands import app
from authorgraph.pipelines.cli.report import read_report_data

if TYPE_CHECKING:
    from authorgraph.pipelines.config import Settings

runner = CliRunner()


def test_report_is_written_and_shows_the_numbers(seeds_warehouse: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    shutil.copytree(seeds_warehouse, warehouse)
    assert (warehouse / "data_docs" / "index.html").is_file()
    out = tmp_path / "out" / "report.html"
    result = runner.invoke(app, ["report", "--warehouse", str(warehouse), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"report: {out}" in result.output
    page = out.read_text(encoding="utf-8")
    counts = dict(
        (label, int(n)) for n, label in re.findall(r'<div class="count"><b>(\d+)</b>([^<]+)', page)
    )
    assert counts == {
        "authors": 5,
        "papers": 25,
        "authorship": 33,
        "rejected files": 0,
        "co-author pairs": 10,
    }
    assert '<td>Koray Kavukcuoglu</td><td class="num">10</td>' in page
    assert '<td>Artificial Intelligence</td><td class="num">20</td><td class="num">5</td>' in page
    assert "No file was rejected." in page
    assert page.count('src="data:image/svg+xml;base64,') == 3  # two bar charts and the graph
    assert '<a href="../wh/data_docs/index.html">' in page
    # Self-contained: nothing is fetched from the network, no script, no external stylesheet.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page and "<link" not in page


def test_report_lists_rejected_files_escaped(seeds_warehouse: Path, tmp_path: Path) -> None:
    import duckdb

    warehouse = tmp_path / "wh"
    shutil.copytree(seeds_warehouse, warehouse)
    shutil.rmtree(warehouse / "data_docs")
    con = duckdb.connect(str(warehouse / "authorgraph.duckdb"))
    try:
        con.execute(
            "insert into rejected_files values (?, ?, ?, ?, ?, ?)",
            ["<b>bad</b>.txt", "0" * 64, "INCOMPLETE_PAPER", 15, "add the source line", True],
        )
    finally:
        con.close()
    assert read_report_data(warehouse).counts["rejected files"] == 1
    result = runner.invoke(app, ["report", "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    page = (warehouse / "report.html").read_text(encoding="utf-8")
    assert "<td>&lt;b&gt;bad&lt;/b&gt;.txt</td><td>INCOMPLETE_PAPER</td>" in page
    assert "<b>bad</b>" not in page
    assert "No Data Docs found" in page


def test_report_without_a_warehouse_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--warehouse", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "no published warehouse" in result.output


def test_dollar_signs_in_names_titles_and_subjects_are_drawn_as_text(
    tmp_path: Path, settings_for: Callable[..., Settings]
) -> None:
    """`$x^$` would be a broken mathtext formula; `$5 and $6` one that eats the text between."""
    from tests.conftest import run_stages

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    paper = "{title}\n\narXiv.org {subject}\n\nAn abstract about {title}."
    pages = {
        "a.txt": ("$x^$", ["Costs $x^$ more", "Shared $5 and $6"], "$5 and $6"),
        "b.txt": ("$5 and $6", ["Shared $5 and $6", "Solo $\\frac{1}{0"], "Math $^$"),
    }
    for file_name, (name, titles, subject) in pages.items():
        papers = "\n\n\n".join(paper.format(title=t, subject=subject) for t in titles)
        body = f"Goto\n\nCollaborating Authors\n\n\u00a0{name}\n\n\n{papers}"
        (seeds / file_name).write_text(body, encoding="utf-8")
    settings = settings_for(seeds)
    run_stages(settings)
    warehouse = settings.warehouse
    data = read_report_data(warehouse)
    assert sorted(n for n, _ in data.authors.values()) == ["$5 and $6", "$x^$"]
    assert data.counts["co-author pairs"] == 1
    result = runner.invoke(app, ["report", "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    page = (warehouse / "report.html").read_text(encoding="utf-8")
    assert "<td>$x^$</td>" in page and "<td>$5 and $6</td>" in page
    assert page.count('src="data:image/svg+xml;base64,') == 3


class _Page(HTMLParser):
    """The report's headings and every URL it would load."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: dict[str, list[str]] = {"h2": [], "h3": []}
        self.loads: list[str] = []
        self.tags: set[str] = set()
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self._open = tag if tag in self.headings else None
        self.loads += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "data")]

    def handle_data(self, data: str) -> None:
        if self._open:
            self.headings[self._open].append(data.strip())
            self._open = None


def test_report_page_has_every_section_and_loads_nothing(
    seeds_warehouse: Path, tmp_path: Path
) -> None:
    """Parsed as HTML: every section is there, the validation results list every suite the
    run judged, and nothing is fetched (only inline data: images and the local Data Docs)."""
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--warehouse", str(seeds_warehouse), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = _Page()
    page.feed(out.read_text(encoding="utf-8"))
    assert page.headings["h2"] == [
        "Top authors by papers",
        "Papers per subject",
        "Co-author graph",
        "Review queues",
        "Rejected files",
        "Validation results",
    ]
    suites = [s for s in page.headings["h3"] if not s.startswith("paper_") and "author_" not in s]
    assert suites == [
        "authors",
        "papers",
        "authorship",
        "ledger",
        "authorship_relationships",
        "layout_drift",
    ]
    assert not {"script", "link", "iframe", "object", "embed"} & page.tags
    for url in page.loads:
        assert url.startswith("data:image/svg+xml;base64,") or not re.match(r"\w+:|//", url), url
    data = read_report_data(seeds_warehouse)
    assert {row[3] for row in data.validation} <= {"passed", "warning"}
    assert len(data.validation) == 74
