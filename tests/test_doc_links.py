"""Every relative link in README.md and docs/*.md leads somewhere: an existing file or folder of
the repository and, for `#anchor` links, an existing heading (GitHub's anchor rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.markdown import DOC_FILES, anchors, broken_links, github_slug, relative_links


@pytest.mark.parametrize("path", DOC_FILES, ids=[str(p.relative_to(ROOT)) for p in DOC_FILES])
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_the_docs_are_linked_from_the_readme() -> None:
    """docs/ exists, and the README links every file in it (nothing there is unreachable)."""
    docs = [p for p in DOC_FILES if p.parent.name == "docs"]
    assert docs
    linked = {target.partition("#")[0] for _, target in relative_links(ROOT / "README.md")}
    assert {f"docs/{p.name}" for p in docs} <= linked


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Query it", "query-it"),
        ("Which entries are page files (E1-E6)", "which-entries-are-page-files-e1-e6"),
        (
            "A Prefect server kept between runs: `authorgraph server`",
            "a-prefect-server-kept-between-runs-authorgraph-server",
        ),
        ("DuckDB 1.x readers", "duckdb-1x-readers"),
        ("Issue 10's targets, as `make bench`", "issue-10s-targets-as-make-bench"),
        ("Dependencies, and why each is there", "dependencies-and-why-each-is-there"),
        ("snake_case and [a link](x.md)", "snake_case-and-a-link"),
        ("Données → Ünïcode", "données--ünïcode"),
    ],
)
def test_github_slugs(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_the_checker_finds_missing_files_anchors_and_escapes(tmp_path: Path) -> None:
    """The checker itself can fail: each kind of broken link in a made-up doc is reported, and
    links inside code blocks, code spans and absolute URLs are left alone."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("")
    (tmp_path / "other.md").write_text("# Other\n\n## Same\n\n## Same\n")
    doc = tmp_path / "docs" / "guide.md"
    doc.write_text(
        "# Guide\n\n## Set up: `make`\n\n"
        "[ok file](../src/a.py) [ok folder](../src) [ok anchor](#set-up-make)\n"
        "[ok other](../other.md#same-1) [web](https://example.com/x.md) [mail](mailto:a@b)\n"
        "[missing](../src/b.py) [bad anchor](#setup)\n"
        "[bad other anchor](../other.md#same-2) [outside](../../etc/passwd)\n"
        "`[in a span](nowhere.md)`\n\n"
        "```md\n[in a block](nowhere.md)\n# not a heading\n```\n"
    )
    assert anchors(doc) == {"guide", "set-up-make"}
    assert [problem.split(": ", 1)[1] for problem in broken_links(doc, root=tmp_path)] == [
        "../src/b.py: no such file",
        "#setup: no heading with anchor #setup",
        "../other.md#same-2: no heading with anchor #same-2",
        "../../etc/passwd: outside the repository",
    ]
    assert broken_links(doc, root=tmp_path)[0].startswith("docs/guide.md:7: ")
