"""The shape of the codebase: one-way imports, pure transforms, documented commands."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import ROOT

if TYPE_CHECKING:
    from typer.models import CommandInfo

#: The folders that install as `authorgraph.<folder>` (pyproject's package-dir).
PACKAGES = ("pipelines", "transforms", "expectations", "warehouse")
LIBRARIES = {"prefect", "prefect_dask", "dask", "distributed", "duckdb", "great_expectations"}
#: The stage subpackages of pipelines/ and the surfaces (and orchestration) they never import.
STAGES = ("extract", "transform", "load")
OUTER = (
    "authorgraph.pipelines.cli",
    "authorgraph.pipelines.ops",
    "authorgraph.pipelines.flow",
    "authorgraph.pipelines.stages",
    "authorgraph.pipelines.artifacts",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["authorgraph", *parts])


def imports_of(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names |= {f"{module}.{a.name}" for a in node.names} | {module}
    return names


def imported_modules(folder: str) -> set[str]:
    return {name for path in (ROOT / folder).rglob("*.py") for name in imports_of(path)}


def under(names: set[str], *prefixes: str) -> set[str]:
    return {n for n in names for p in prefixes if n == p or n.startswith(p + ".")}


def test_transforms_are_pure() -> None:
    names = imported_modules("transforms")
    assert under(names, *LIBRARIES) == set()
    assert under(names, "authorgraph") - under(names, "authorgraph.transforms") == set()


def test_expectations_import_neither_pipelines_nor_the_load_side() -> None:
    names = imported_modules("expectations")
    assert under(names, "authorgraph.pipelines", "authorgraph.warehouse", "prefect") == set()


def test_load_side_imports_only_itself_and_transforms() -> None:
    names = under(imported_modules("pipelines/load"), "authorgraph", "prefect")
    allowed = under(names, "authorgraph.pipelines.load", "authorgraph.transforms")
    assert names - allowed == set()


@pytest.mark.parametrize("stage", STAGES)
def test_stages_do_not_import_orchestration_or_surfaces(stage: str) -> None:
    assert under(imported_modules(f"pipelines/{stage}"), *OUTER) == set()


def test_no_bare_top_level_imports() -> None:
    """Code, tests and benchmarks import the folders as `authorgraph.<folder>` only: a bare
    `transforms` (or `pipelines`, ...) would be whichever package of that name is installed."""
    paths = [p for folder in (*PACKAGES, "tests") for p in (ROOT / folder).rglob("*.py")]
    assert len(paths) > 40
    bare = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in paths
        for name in imports_of(path)
        if name.split(".")[0] in PACKAGES
    }
    assert bare == set()


def test_warehouse_holds_no_python() -> None:
    """warehouse/ is the warehouse: SQL views and built files, never code."""
    assert list((ROOT / "warehouse" / "sql").glob("*.sql"))
    assert [p for p in (ROOT / "warehouse").rglob("*.py")] == []


def _command_name(command: CommandInfo) -> str:
    """A command's name on the command line: the one given, else its function's."""
    if command.name:
        return command.name
    assert command.callback is not None
    return command.callback.__name__


def test_readme_documents_every_command() -> None:
    """The README's command table has a row for every command (and the server group's
    subcommands), and the README names its two make targets."""
    from authorgraph.pipelines.cli.commands import app

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = "\n".join(re.findall(r"^\| `authorgraph .*$", readme, flags=re.MULTILINE))
    commands = [_command_name(c) for c in app.registered_commands]
    assert commands
    for command in commands:
        assert re.search(rf"^\| `authorgraph {command}\b", rows, flags=re.MULTILINE), command
    for group in app.registered_groups:  # `authorgraph server start|stop|status`
        assert group.typer_instance is not None
        names = [_command_name(c) for c in group.typer_instance.registered_commands]
        assert names and re.search(rf"`authorgraph {group.name} {'.+'.join(names)}", rows)
    for target in ("make run", "make test"):
        assert target in readme


def test_every_reason_code_is_documented_and_has_a_fixture() -> None:
    """docs/format.md, the input contract's home, gives every reason code a row of its table, in
    the order they are checked (the order of REASON_CODES)."""
    from authorgraph.pipelines.extract.seeds import AFRESH_CODES
    from authorgraph.transforms.schema import REASON_CODES

    contract = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `([A-Z0-9_]+)` \|", contract, flags=re.MULTILINE)
    fixtures = {p.stem.upper() for p in (ROOT / "tests" / "fixtures" / "bad").iterdir()}
    # Entries git can't hold (bad names, links out, unreadable files) are made by the tests.
    made_by_tests = (ROOT / "tests" / "test_entries.py").read_text()
    assert documented == list(REASON_CODES)
    for code in REASON_CODES:
        assert code in (made_by_tests if code in AFRESH_CODES else fixtures)


def test_the_flow_imports_neither_gx_nor_pandas_until_a_run_needs_them() -> None:
    """Start-up: importing the flow (what every `authorgraph run` does) leaves out Great
    Expectations (4 s; imported when a validation runs) and pandas (0.3 s; pyarrow imports it
    as soon as any Arrow table is built, so the declared schemas map their types directly)."""
    import subprocess
    import sys

    code = "import sys, authorgraph.pipelines.flow; print(sorted({*sys.argv[1:]} & {*sys.modules}))"
    heavy = ["great_expectations", "pandas"]
    result = subprocess.run(
        [sys.executable, "-c", code, *heavy], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_a_runs_own_process_extracts_and_transforms_without_pandas(tmp_path: Path) -> None:
    """Only validation needs pandas (GX validates pandas frames), and a CLI run validates in
    its own child process. pyarrow imports pandas on many conversions (a list or NumPy array
    into Arrow, `to_numpy`): 0.22 s on every run's critical path, so the run's own process
    converts through polars (`transforms.schema.arrow_array`, `numpy_of`). The corpus is
    seeds/ plus a page whose paper shares a title with a seed's and not its abstract, so the
    review's scoring runs too; the run happens in a fresh interpreter."""
    import shutil
    import subprocess
    import sys

    from tests.conftest import SEEDS

    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    text = min(seeds.iterdir()).read_text(encoding="utf-8")
    assert "Pathak, Shreya" in text and "multimodal" in text
    edited = text.replace("Pathak, Shreya", "Doe, Jane").replace("multimodal", "multi-modal", 1)
    (seeds / "doe.txt").write_text(edited, encoding="utf-8")
    script = f"""
import sys
from pathlib import Path
from authorgraph.pipelines import stages
from authorgraph.pipelines.config import Settings
settings = Settings(seeds=Path({str(seeds)!r}), warehouse=Path({str(tmp_path / "wh")!r}))
transformed = stages.transform(stages.extract(settings), settings, "test-run")
imported = "pandas" in sys.modules
import duckdb
review = transformed.table_path("paper_review")
print(imported, duckdb.sql(f"select reason from '{{review}}'").fetchall())
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=1) == ["False", "[('SAME_TITLE',)]\n"], result.stdout
