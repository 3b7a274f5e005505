"""Release the assignments: student notebooks (``otter assign``) and the checks that grade them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from classroom.grading import grade, load_checks, possible_points

ROOT = Path(__file__).resolve().parents[1]
MASTERS = ROOT / "notebooks" / "assignments"
WEBSITE = ROOT / "book" / "assignments"
DEFAULT_RELEASE = ROOT / "_build" / "classroom"


def assignment_names(masters: str | os.PathLike = MASTERS) -> list[str]:
    """The names of the master notebooks in ``masters``, sorted."""
    return sorted(p.stem for p in Path(masters).glob("*.ipynb"))


def questions(master: str | os.PathLike) -> list[str]:
    """The question names of a master notebook, in order."""
    names = []
    for cell in nbformat.read(master, as_version=4).cells:
        if cell.cell_type in ("markdown", "raw") and "# BEGIN QUESTION" in cell.source:
            names.append(re.search(r"^name:\s*(\S+)", cell.source, flags=re.MULTILINE).group(1))
    return names


def website_copy(student_notebook: Path) -> nbformat.NotebookNode:
    """The student notebook as the book offers it: otter gives the cells it adds random ids, so
    number every cell instead, and the copy changes only when the assignment does."""
    nb = nbformat.read(student_notebook, as_version=4)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


def release(
    out: str | os.PathLike = DEFAULT_RELEASE,
    names: list[str] | None = None,
    website: bool = False,
    masters: str | os.PathLike = MASTERS,
    verify: bool = True,
) -> dict[str, Path]:
    """Release each master notebook ``masters/NAME.ipynb`` with its checks ``masters/NAME_checks.py``.

    Writes ``out/NAME/student/NAME.ipynb`` (to hand out: solutions removed, public self-checks kept)
    and ``out/NAME/autograder/`` (the solutions notebook and ``checks.py``, which :func:`grade`
    uses). Raises ``RuntimeError`` when ``otter assign`` fails or when the solutions notebook does not
    earn every point of the checks, graded as a submission would be (``verify=False`` skips that
    grading, for callers that grade the solutions themselves). With ``website=True`` the student
    notebooks are also copied to ``book/assignments/``. Returns the folder of each assignment.
    """
    masters = Path(masters)
    available = assignment_names(masters)
    for n in names or []:
        if n not in available:
            raise ValueError(f"no assignment named {n!r}; the assignments in {masters} are {available}")
    names = names or available
    if not names:
        raise ValueError(f"no master notebooks in {masters}")
    out = Path(out).resolve()
    folders = {}
    for name in names:
        target = out / name
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "otter", "assign", "--no-pdfs", str(masters / f"{name}.ipynb"), str(target)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"otter assign failed for {name}:\n{(done.stdout + done.stderr)[-4000:]}")
        for stray in (target / "autograder").glob("*-autograder_*.zip"):
            stray.unlink()  # otter's own autograder: grading uses checks.py instead
        shutil.copyfile(masters / f"{name}_checks.py", target / "autograder" / "checks.py")
        _check_questions(target, name, questions(masters / f"{name}.ipynb"))
        if verify:
            _check_solutions(target, name)
        if website:
            WEBSITE.mkdir(exist_ok=True)
            nbformat.write(website_copy(target / "student" / f"{name}.ipynb"), WEBSITE / f"{name}.ipynb")
        folders[name] = target
    return folders


def _check_questions(target: Path, name: str, asked: list[str]) -> None:
    """The checks must grade the questions the master asks, in its order."""
    possible = possible_points(load_checks(target / "autograder" / "checks.py").CHECKS)
    if list(possible) != asked:
        raise RuntimeError(f"the checks of {name} grade the questions {list(possible)}, the master asks {asked}")


def _check_solutions(target: Path, name: str) -> None:
    """Grade the solutions notebook like a submission; it must earn every point of every question."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(target / "autograder" / f"{name}.ipynb", Path(tmp) / "solutions.ipynb")
        (result,) = grade(tmp, target.parent, name, timeout=300, out=Path(tmp) / "grades.csv")
    if result.scores != result.possible:
        raise RuntimeError(f"the solutions of {name} fail their checks:\n{result.report()}")
