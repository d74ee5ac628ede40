"""`authorgraph report`: one self-contained HTML page about the published warehouse.

Everything is inline (CSS, and the charts as base64 SVG made with matplotlib; the co-author graph
laid out with networkx), so the page opens offline. Data is read over the read-only connection.
Names, titles and subjects are drawn as plain text: matplotlib's mathtext is off, so a `$` in
the data is a dollar sign, never a formula (an unbalanced one used to crash the report).
The page is written to a fresh temporary file and renamed over `--out`, so a symlink planted
at that name is replaced, never followed.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import matplotlib
import networkx as nx
from matplotlib.figure import Figure

from authorgraph.pipelines.load.layout import DATA_DOCS_DIR
from authorgraph.pipelines.load.publish import DUCKDB_FILE, connect_read_only
from authorgraph.pipelines.load.safe_io import atomic_write

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

TOP_AUTHORS = 10
#: The co-author graph draws at most this many authors: those with the most co-authors.
GRAPH_AUTHORS = 20
#: Above this many edges the graph drops its edge labels (edge width still shows the count).
LABELLED_EDGES = 25
COLOR = "#3b6ea5"
ACCENT = "#d98c2b"
# Every text artist is made (and drawn) with these: data is text, `$...$` is not mathtext.
PLAIN_TEXT: dict[RcKeyType, bool] = {"text.parse_math": False, "text.usetex": False}


@dataclass(frozen=True)
class ReportData:
    """What the page shows, read from the warehouse."""

    counts: dict[str, int]
    top_authors: list[tuple[str, int, str]]  # display name, papers, subjects
    subjects: list[tuple[str, int, int]]  # subject (or source), papers, authors
    authors: dict[str, tuple[str, int]]  # author_id -> (display name, papers), graph's only
    edges: list[tuple[str, str, int]]  # author_id_a, author_id_b, shared papers, among them
    rejected: list[tuple[str, str, int | None, str]]  # file, reason, line, message
    # suite, expectation, column, status, observed (JSON), description; empty when the
    # warehouse predates the table
    validation: list[tuple[str, str, str | None, str, str, str | None]]
    # (reason, pairs) per queue, and the top pairs with their evidence
    paper_reasons: list[tuple[str, int]] = field(default_factory=list)
    paper_pairs: list[tuple[object, ...]] = field(default_factory=list)
    author_reasons: list[tuple[str, int]] = field(default_factory=list)
    author_pairs: list[tuple[object, ...]] = field(default_factory=list)


def _fetch(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple[Any, ...]]:
    """The rows; Any: their column types are the query's, which mypy cannot see."""
    return con.execute(query).fetchall()


def read_report_data(warehouse: Path) -> ReportData:
    """Read the numbers, the views and the rejected files over a read-only connection."""
    con = connect_read_only(warehouse)
    try:
        counts = {
            name: int(_fetch(con, f"select count(*) from {name}")[0][0])
            for name in ("authors", "papers", "authorship", "rejected_files")
        }
        counts["rejected files"] = counts.pop("rejected_files")
        pairs = _fetch(con, "select count(*) from analytics.coauthors")
        counts["co-author pairs"] = int(pairs[0][0])
        top = _fetch(
            con,
            "select display_name, papers_count, array_to_string(subjects, ', ') "
            "from analytics.author_summary order by papers_count desc, display_name "
            f"limit {TOP_AUTHORS}",
        )
        subjects = _fetch(
            con,
            "select coalesce(subject, source), papers_count, authors_count "
            "from analytics.subject_counts order by papers_count desc, 1",
        )
        # The graph: the authors with the most co-authors (then papers, then id), and the
        # edges among them; the page states the cut.
        con.execute(
            "create temp table graph_authors as "
            "with ends as (select author_id_a as author_id from analytics.coauthors "
            "union all select author_id_b from analytics.coauthors), "
            "degree as (select author_id, count(*) as degree from ends group by 1) "
            "select s.author_id, s.display_name, s.papers_count from analytics.author_summary s "
            "left join degree d using (author_id) "
            "order by coalesce(d.degree, 0) desc, s.papers_count desc, s.author_id "
            f"limit {GRAPH_AUTHORS}"
        )
        authors = {
            a: (n, p)
            for a, n, p in _fetch(
                con, "select author_id, display_name, papers_count from graph_authors"
            )
        }
        edges = _fetch(
            con,
            "select author_id_a, author_id_b, shared_papers from analytics.coauthors "
            "semi join graph_authors a on a.author_id = author_id_a "
            "semi join graph_authors b on b.author_id = author_id_b "
            "order by author_id_a, author_id_b",
        )
        rejected = _fetch(
            con, "select file_name, reason_code, line, message from rejected_files order by 1"
        )
        validation = []
        if _has_table(con, "validation_results"):
            validation = _fetch(
                con,
                "select suite, expectation, column_name, status, observed, description "
                "from validation_results order by ordinal",
            )
        queues = _review_queues(con) if _has_table(con, "paper_review") else ([], [], [], [])
    finally:
        con.close()
    return ReportData(counts, top, subjects, authors, edges, rejected, validation, *queues)


REVIEW_TOP = 15


def _review_queues(
    con: duckdb.DuckDBPyConnection,
) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Pairs per reason in each queue, and the top pairs with what makes them look alike."""
    paper_reasons = _fetch(con, "select reason, count(*) from paper_review group by 1 order by 1")
    papers = _fetch(
        con,
        "select r.reason, round(r.score, 3), a.title, b.title, a.source, b.source "
        "from paper_review r join papers a on a.paper_id = r.paper_id_a "
        "join papers b on b.paper_id = r.paper_id_b "
        "order by r.score desc nulls last, r.paper_id_a, r.paper_id_b "
        f"limit {REVIEW_TOP}",
    )
    author_reasons = _fetch(con, "select reason, count(*) from author_review group by 1 order by 1")
    authors = _fetch(
        con,
        "select r.reason, a.display_name, b.display_name, r.shared_coauthors "
        "from author_review r join authors a on a.author_id = r.author_id_a "
        "join authors b on b.author_id = r.author_id_b "
        "order by r.shared_coauthors desc, r.author_id_a, r.author_id_b "
        f"limit {REVIEW_TOP}",
    )
    return paper_reasons, papers, author_reasons, authors


def review_section(data: ReportData) -> str:
    """The review queues: how many pairs per reason, and the most alike pairs (never merged)."""
    parts = [
        "<p>Pairs that may be one paper or one person, for a person to decide; nothing is "
        "merged (<code>paper_review</code>, <code>author_review</code>).</p>"
    ]
    for title, reasons, pairs, header in (
        (
            "paper_review",
            data.paper_reasons,
            data.paper_pairs,
            ["reason", "score", "title a", "title b", "source a", "source b"],
        ),
        (
            "author_review",
            data.author_reasons,
            data.author_pairs,
            ["reason", "author a", "author b", "shared co-authors"],
        ),
    ):
        parts.append(f"<h3>{title}</h3>")
        if not reasons:
            parts.append('<p class="ok">No pairs to review.</p>')
            continue
        summary = ", ".join(f"{reason}: {n}" for reason, n in reasons)
        parts.append(f"<p>{html.escape(summary)}. The top {len(pairs)}:</p>")
        parts.append(_table(header, [tuple(_score(v) for v in row) for row in pairs]))
    return "\n".join(parts)


def _score(value: object) -> object:
    return f"{value:.3f}" if isinstance(value, float) else value


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'main' and table_name = ?",
        [name],
    ).fetchone()
    return bool(found and found[0])


def validation_section(rows: list[tuple[str, str, str | None, str, str, str | None]]) -> str:
    """Every suite and expectation with its status and observed value: GX's own Data Docs
    load their scripts from CDNs and show an empty list offline."""
    if not rows:
        return "<p>No validation results are stored in this warehouse (run it again).</p>"
    counts: dict[str, int] = {}
    for _, _, _, status, _, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    parts = [f"<p>{len(rows)} expectations: {html.escape(summary)}.</p>"]
    suites: dict[str, list[tuple[object, ...]]] = {}
    for suite, expectation, column, status, observed, description in rows:
        shown = f'<span class="{html.escape(status)}">{html.escape(status)}</span>'
        suites.setdefault(suite, []).append(
            (expectation, column, _Raw(shown), _observed(observed), description)
        )
    for suite, items in suites.items():
        parts.append(f"<h3>{html.escape(suite)}</h3>")
        parts.append(_table(["expectation", "column", "status", "observed", "meaning"], items))
    return "\n".join(parts)


def _observed(text: str) -> str:
    """The stored observation (JSON) as `key: value` pairs for a reader."""
    try:
        seen = json.loads(text)
    except ValueError:
        return text
    if not isinstance(seen, dict):
        return str(seen)
    parts = []
    for key, value in seen.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)


@dataclass(frozen=True)
class _Raw:
    """Markup made here (never from data): put in a cell as it is."""

    markup: str


def _svg(figure: Figure) -> str:
    """The figure as an inline <img> (base64 SVG; text as paths, so no fonts are needed)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # A name in a script no installed font has (CJK without a CJK font) is drawn as boxes;
        # the tables beside each chart show it as text. Not worth a warning per glyph.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="chart" src="data:image/svg+xml;base64,{encoded}">'


def bar_chart(labels: list[str], values: list[int], xlabel: str) -> str:
    """A horizontal bar chart, largest on top, each bar labelled with its value."""
    with matplotlib.rc_context(PLAIN_TEXT):
        return _bar_chart(labels, values, xlabel)


def _bar_chart(labels: list[str], values: list[int], xlabel: str) -> str:
    figure = Figure(figsize=(7.5, 0.45 * len(labels) + 1.0))
    ax = figure.subplots()
    bars = ax.barh(labels[::-1], values[::-1], color=COLOR)
    ax.bar_label(bars, padding=3)
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max(values, default=1) * 1.15)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(figure)


def coauthor_graph(data: ReportData) -> str:
    """The co-author graph: node size by papers, edge width and label by shared papers."""
    with matplotlib.rc_context(PLAIN_TEXT):
        return _coauthor_graph(data)


def _coauthor_graph(data: ReportData) -> str:
    graph: nx.Graph[str] = nx.Graph()
    for author_id, (name, papers) in sorted(data.authors.items(), key=lambda kv: kv[1]):
        graph.add_node(author_id, name=name, papers=papers)
    for a, b, shared in data.edges:
        graph.add_edge(a, b, shared=shared)
    # A circle reads best: nodes never overlap and every label has room. Few authors are
    # drawn (GRAPH_AUTHORS), so the circle stays legible.
    layout = nx.circular_layout(graph)
    figure = Figure(figsize=(9, 7.5))
    ax = figure.subplots()
    most = max((graph.edges[e]["shared"] for e in graph.edges), default=1)
    widths = [0.8 + 4 * graph.edges[e]["shared"] / most for e in graph.edges]
    nx.draw_networkx_edges(graph, layout, ax=ax, width=widths, edge_color="#9aa5b1")
    if graph.number_of_edges() <= LABELLED_EDGES:
        nx.draw_networkx_edge_labels(
            graph,
            layout,
            ax=ax,
            edge_labels={e: graph.edges[e]["shared"] for e in graph.edges},
            font_size=9,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"},
        )
    biggest = max((graph.nodes[n]["papers"] for n in graph.nodes), default=1) or 1
    sizes = [150 + 650 * graph.nodes[n]["papers"] / biggest for n in graph.nodes]
    nx.draw_networkx_nodes(graph, layout, ax=ax, node_size=sizes, node_color=ACCENT)
    below = {n: (x, y - 0.12) for n, (x, y) in layout.items()}
    nx.draw_networkx_labels(
        graph,
        below,
        ax=ax,
        labels={n: f"{graph.nodes[n]['name']} ({graph.nodes[n]['papers']})" for n in graph.nodes},
        font_size=9,
        bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "#cbd2d9"},
    )
    ax.margins(0.15)
    ax.set_axis_off()
    return _svg(figure)


def _cell(value: object) -> str:
    """One escaped table cell; numbers right-aligned."""
    if isinstance(value, _Raw):
        return f"<td>{value.markup}</td>"
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def _table(header: list[str], rows: Sequence[tuple[object, ...]]) -> str:
    """An HTML table with every value escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; color: #1f2933; }
h1 { margin-bottom: 0.2rem; } .meta { color: #616e7c; margin-top: 0; }
.counts { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1.5rem 0; }
.count { border: 1px solid #cbd2d9; border-radius: 8px; padding: 0.8rem 1.2rem; min-width: 7rem; }
.count b { display: block; font-size: 1.8rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border-bottom: 1px solid #e4e7eb; padding: 0.3rem 0.8rem; text-align: left; }
td.num, th.num { text-align: right; }
img { max-width: 100%; }
.ok, .passed { color: #2f8132; } .failed { color: #b42318; font-weight: bold; }
.warning { color: #b54708; }
"""


def _graph_cut(data: ReportData) -> str:
    """What part of the graph is drawn (all of it, or the best-connected authors)."""
    total = data.counts["authors"]
    if len(data.authors) >= total:
        return f"All {total} authors are shown."
    return (
        f"Shown: the {len(data.authors)} authors with the most co-authors, of {total}, and "
        "the edges among them (the whole graph is <code>analytics.coauthors</code>)."
    )


def render_report(data: ReportData, data_docs_link: str | None, source: str) -> str:
    """The whole page as one HTML string (all values escaped, all images inline)."""
    counts = "".join(
        f'<div class="count"><b>{n}</b>{html.escape(name)}</div>' for name, n in data.counts.items()
    )
    names = [n for n, _, _ in data.top_authors]
    papers = [p for _, p, _ in data.top_authors]
    if data.rejected:
        rejected = _table(["file", "reason", "line", "message"], data.rejected)
    else:
        rejected = '<p class="ok">No file was rejected.</p>'
    if data_docs_link:
        docs = f'<a href="{html.escape(data_docs_link)}">Great Expectations Data Docs</a>'
    else:
        docs = "No Data Docs found next to the warehouse (run <code>authorgraph run</code>)."
    graph = coauthor_graph(data) if data.authors else "<p>No authors.</p>"
    authors_chart = bar_chart(names, papers, "papers") if names else "<p>No authors.</p>"
    subject_chart = (
        bar_chart([s for s, _, _ in data.subjects], [p for _, p, _ in data.subjects], "papers")
        if data.subjects
        else "<p>No papers.</p>"
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>authorgraph report</title><style>{CSS}</style></head>
<body>
<h1>authorgraph report</h1>
<p class="meta">{html.escape(source)} · generated {generated}</p>
<div class="counts">{counts}</div>
<h2>Top authors by papers</h2>
{authors_chart}
{_table(["author", "papers", "subjects"], data.top_authors)}
<h2>Papers per subject</h2>
{subject_chart}
{_table(["subject (or source)", "papers", "authors"], data.subjects)}
<h2>Co-author graph</h2>
<p>Authors are linked when their pages list a common paper; edge width (and, on a small graph,
the edge label) counts shared papers, node size grows with the author's papers.
{_graph_cut(data)}</p>
{graph}
<h2>Review queues</h2>
{review_section(data)}
<h2>Rejected files</h2>
{rejected}
<h2>Validation results</h2>
{validation_section(data.validation)}
<p>{docs}</p>
</body></html>
"""


def write_report(warehouse: Path, out: Path) -> Path:
    """Read the warehouse and write the report to `out`; return its path."""
    data = read_report_data(warehouse)
    index = warehouse / DATA_DOCS_DIR / "index.html"
    link = os.path.relpath(index.resolve(), out.parent.resolve()) if index.exists() else None
    page = render_report(data, link, str(warehouse / DUCKDB_FILE))
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(out, page.encode("utf-8"))
