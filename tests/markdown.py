"""Just enough Markdown reading for the docs tests: fenced blocks, headings, links, anchors.

Follows GitHub's rendering where it matters here: ``` and ~~~ fences (indented inside list
items too), ATX headings outside fences, inline links outside code, and GitHub's heading slugs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

#: Every Markdown file whose SQL examples and links the tests keep working.
DOC_FILES: list[Path] = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_HEADING = re.compile(r"^#{1,6}[ \t]+(?P<text>.*?)(?:[ \t]+#+)?[ \t]*$")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", flags=re.DOTALL)
# [text](target) or [text](target "title"); text may hold one level of brackets; ![alt](src) too.
_LINK = re.compile(
    r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # [text]
    r"\(\s*<?(?P<target>[^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)"  # (target "title")
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts (1-based line of the opening fence), its info
    string's first word (the language, lower-cased) and its text with the fence's indent removed."""

    path: Path
    line: int
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def split_fences(path: Path) -> tuple[list[Block], list[str]]:
    """The fenced blocks of a file, and its lines with every fenced line blanked (prose only)."""
    blocks: list[Block] = []
    prose: list[str] = []
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        opening = _FENCE_OPEN.match(lines[i])
        if not opening:
            prose.append(lines[i])
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        start = i
        i += 1
        while i < len(lines) and not closing.match(lines[i]):
            line = lines[i]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            i += 1
        i += 1  # the closing fence (or the end of the file)
        words = opening["info"].split()
        blocks.append(Block(path, start + 1, words[0].lower() if words else "", "\n".join(body)))
        prose.extend([""] * (min(i, len(lines)) - start))
    return blocks, prose


def sql_blocks(path: Path) -> list[Block]:
    return [b for b in split_fences(path)[0] if b.language == "sql"]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text lower-cased, everything but letters,
    digits, `_`, `-` and spaces dropped (backticks, colons, dots, parentheses...), spaces to `-`."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", heading)  # links -> text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a file; repeated headings get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in split_fences(path)[1]:
        heading = _HEADING.match(line)
        if not heading:
            continue
        slug = github_slug(heading["text"])
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every link outside code that is not an absolute URL (http:, mailto:...)."""
    prose = "\n".join(split_fences(path)[1])
    # Blank code spans but keep their newlines, so line numbers stay right.
    prose = _CODE_SPAN.sub(lambda m: "\n" * m.group(0).count("\n"), prose)
    links: list[tuple[int, str]] = []
    for match in _LINK.finditer(prose):
        target = match["target"]
        if not _SCHEME.match(target):
            links.append((prose.count("\n", 0, match.start()) + 1, target))
    return links


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of `path` that leads nowhere: a missing file or folder, a path outside
    the repository (GitHub can't follow it), or a `#anchor` with no such heading."""
    problems: list[str] = []
    root = root.resolve()
    for line, target in relative_links(path):
        where = f"{path.relative_to(root)}:{line}: {target}"
        file_part, _, anchor = target.partition("#")
        if not file_part and not anchor:
            problems.append(f"{where}: empty link")
            continue
        resolved = (path.parent / file_part).resolve() if file_part else path.resolve()
        if not resolved.is_relative_to(root):
            problems.append(f"{where}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{where}: no such file")
        elif anchor:
            if resolved.suffix != ".md":
                problems.append(f"{where}: an anchor into a file that is not Markdown")
            elif anchor not in anchors(resolved):
                problems.append(f"{where}: no heading with anchor #{anchor}")
    return problems
