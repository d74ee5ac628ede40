"""The shape of the codebase: one-way imports, pure transforms, documented commands."""

from __future__ import annotations

import ast
import re

import pytest

from tests.conftest import ROOT

FORBIDDEN_IN_TRANSFORMS = {
    "prefect",
    "duckdb",
    "great_expectations",
    "pipelines",
    "warehouse",
    "expectations",
}


def imported_modules(package: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_transforms_are_pure() -> None:
    assert imported_modules("transforms") & FORBIDDEN_IN_TRANSFORMS == set()


@pytest.mark.parametrize("package", ["expectations", "warehouse"])
def test_middle_layers_do_not_import_pipelines_or_each_other(package: str) -> None:
    other = {"expectations", "warehouse"} - {package}
    assert imported_modules(package) & ({"pipelines", "prefect"} | other) == set()


def test_readme_documents_every_command() -> None:
    """The README's command table has a row for every command (and the server group's
    subcommands), and the README names its two make targets."""
    from pipelines.cli import app

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = "\n".join(re.findall(r"^\| `authorgraph .*$", readme, flags=re.MULTILINE))
    commands = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]
    assert commands
    for command in commands:
        assert re.search(rf"^\| `authorgraph {command}\b", rows, flags=re.MULTILINE), command
    for group in app.registered_groups:  # `authorgraph server start|stop|status`
        assert group.typer_instance is not None
        names = [c.name for c in group.typer_instance.registered_commands]
        assert names and re.search(rf"`authorgraph {group.name} {'.+'.join(names)}", rows)
    for target in ("make run", "make test"):
        assert target in readme


def test_every_reason_code_is_documented_and_has_a_fixture() -> None:
    """docs/format.md, the input contract's home, gives every reason code a row of its table, in
    the order they are checked (the order of REASON_CODES)."""
    from pipelines.extract import AFRESH_CODES
    from transforms.schema import REASON_CODES

    contract = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `([A-Z0-9_]+)` \|", contract, flags=re.MULTILINE)
    fixtures = {p.stem.upper() for p in (ROOT / "tests" / "fixtures" / "bad").iterdir()}
    # Entries git can't hold (bad names, links out, unreadable files) are made by the tests.
    made_by_tests = (ROOT / "tests" / "test_entries.py").read_text()
    assert documented == list(REASON_CODES)
    for code in REASON_CODES:
        assert code in (made_by_tests if code in AFRESH_CODES else fixtures)
