"""authorgraph installs one importable name: other packages called `transforms`, `pipelines`,
`expectations` or `warehouse` (PyPI has the first three) work beside it in one environment.

One subprocess, started outside the checkout (so only the installed `authorgraph` is reachable)
with a folder of such packages on PYTHONPATH: the CLI, the parser, the views' SQL and a spawned
process pool (its workers import the parser afresh, by name) all work, and the other packages
stay what they are. No network: the look-alikes are written here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import SEEDS

LOOK_ALIKES = ("transforms", "pipelines", "expectations", "warehouse")

SCRIPT = """
import json, sys
from pathlib import Path

import expectations, pipelines, transforms, warehouse
from authorgraph.expectations.validate import SUITES_DIR
from authorgraph.pipelines.cli.commands import app
from authorgraph.pipelines.config import Settings
from authorgraph.pipelines.extract.parsing import parse_files
from authorgraph.pipelines.extract.seeds import PlannedFile, list_seeds
from authorgraph.pipelines.load.views import view_names
from authorgraph.pipelines import stages
from authorgraph.transforms.parse import parse_author_page

seeds, out = Path(sys.argv[1]), Path(sys.argv[2])
files = list_seeds(seeds).files[:4]
page = parse_author_page(Path(files[0].path).read_bytes())
settings = Settings(seeds=seeds, warehouse=out / "wh", workers=2, batch_files=1)
planned = [PlannedFile(ref, None, False) for ref in files]
batches = list(parse_files(planned, settings, out / "batches"))
print(json.dumps({
    "markers": [m.MARKER for m in (transforms, pipelines, expectations, warehouse)],
    "bare": {n: sys.modules[n].__file__ for n in sys.modules if n.split(".")[0] in sys.argv[3:]},
    "commands": len(app.registered_commands),
    "views": view_names(),
    "suites": sorted(p.name for p in SUITES_DIR.glob("*.json")),
    "name_line": page.name_line,
    "batches": [b.outcomes["reason_code"].is_null().to_list() for b in batches],
    "stages": stages.__name__,
}))
"""


def test_authorgraph_works_beside_packages_with_its_folder_names(tmp_path: Path) -> None:
    others = tmp_path / "others"
    for name in LOOK_ALIKES:
        (others / name).mkdir(parents=True)
        (others / name / "__init__.py").write_text(f"MARKER = 'the other {name}'\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(others)}
    process = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(SEEDS), str(tmp_path), *LOOK_ALIKES],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    seen = json.loads(process.stdout.splitlines()[-1])
    assert seen["markers"] == [f"the other {name}" for name in LOOK_ALIKES]
    # Every bare name is the look-alike (nothing of the checkout's under those names).
    assert seen["bare"] == {n: str(others / n / "__init__.py") for n in LOOK_ALIKES}
    assert seen["commands"] > 3
    assert seen["views"] and all(v.startswith("analytics.") for v in seen["views"])
    assert "papers.json" in seen["suites"]
    assert seen["name_line"]
    assert seen["batches"] == [[True]] * 4
    assert seen["stages"] == "authorgraph.pipelines.stages"


def test_the_cli_runs_as_a_module_outside_the_checkout(tmp_path: Path) -> None:
    """`python -m authorgraph.pipelines` (what tests and docs run) needs no checkout on sys.path,
    and a `pipelines` package elsewhere on the path does not shadow it."""
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "__init__.py").write_text("raise ImportError('the other one')\n")
    process = subprocess.run(
        [sys.executable, "-m", "authorgraph.pipelines", "--help"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr
    assert "authorgraph" in process.stdout
