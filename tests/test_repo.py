"""The repository keeps its promises: README commands, CI script and notebooks agree."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_exactly_the_readme_test_command():
    build, test = readme_commands()[:2]
    assert build.endswith("jupyter-book build . && python book/pdf.py")
    assert test.endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    setup, run = test.rsplit(" && ", 1)  # CI runs the tests beside the book build, after the set-up
    assert any(line.startswith(setup) for line in ci) and any(line.startswith(run + " ") for line in ci)
    assert any(line.startswith("jupyter-book build . -W -n --keep-going") for line in ci)
    assert any(line.lstrip("{ ").startswith("python book/pdf.py ") for line in ci)  # the build command's second step


def test_notebooks_are_stored_without_outputs():
    for path in ROOT.glob("notebooks/**/*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, f"{path.name} has stored outputs"


def test_every_chapter_is_in_the_table_of_contents():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    chapters = {f"notebooks/{p.stem}" for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert chapters <= listed
    for entry in listed:
        assert any((ROOT / entry).with_suffix(s).exists() for s in (".md", ".ipynb")), entry


def test_requirements_pin_exact_versions():
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert lines[0] == "-e ."
    assert "torch==2.13.0" in lines
    assert "jupyter-book==1.0.4.post1" in lines
    assert all("==" in line for line in lines[1:])


def test_ci_executes_each_notebook_once_and_a_raising_cell_fails_it():
    """pytest runs no notebook (no nbmake); the book build executes every chapter and fails on an error."""
    pyproject = (ROOT / "pyproject.toml").read_text()  # no tomllib: Python 3.10 is supported
    assert re.search(r'^testpaths = \["tests"\]', pyproject, flags=re.MULTILINE) and "--nbmake" not in pyproject
    execute = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]
    assert execute["execute_notebooks"] in ("cache", "force") and execute["allow_errors"] is False
