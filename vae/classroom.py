"""Graded homework from the book: release the assignments and grade submissions offline.

Built on otter-grader, which instructors install with ``pip install -r requirements-classroom.txt``
(readers of the book do not need it). Two commands, run from a clone of the repository::

    python -m vae.classroom release [--out DIR] [--website] [NAME ...]
    python -m vae.classroom grade SUBMISSIONS --assignment NAME [--release DIR] [--timeout S]
                                  [--total-timeout S] [--jobs N] [--out CSV]

``release`` runs ``otter assign`` on every master notebook in ``notebooks/assignments/``: it writes
the student notebook and the autograder of each into ``DIR/NAME/`` (default ``_build/classroom``,
which git ignores) and fails if the master's own solutions do not pass all of its checks. With
``--website`` it also refreshes the copies of the student notebooks that the book offers for download
(``book/assignments/``).

``grade`` grades every ``*.ipynb`` in SUBMISSIONS (one notebook per student, named after the student)
with ``otter run``, without Docker, each in its own process. It writes a CSV of points per question
and a feedback file per student. Each cell of a submission may run for at most ``--timeout``
seconds and a whole submission for ``--total-timeout`` seconds (default: ten times that plus a
minute). A cell that raises or runs out of time, or a deleted cell, costs only the questions that
depend on it; a submission that cannot be graded at all gets no points and a note in the CSV.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from vae.checks import check_positive, check_positive_int

ROOT = Path(__file__).resolve().parents[1]
MASTERS = ROOT / "notebooks" / "assignments"
WEBSITE = ROOT / "book" / "assignments"
DEFAULT_RELEASE = ROOT / "_build" / "classroom"

# Every cell of a graded submission runs under a wall-clock alarm that raises TimeoutError, an
# ordinary exception: a hanging cell then fails like a cell that raises, and a hanging check fails
# only its own test case. The timer repeats, so each further test that hangs fails in turn.
TIME_LIMIT_CELL = """\
import signal as _signal
from IPython import get_ipython as _get_ipython


def _over_time(signum, frame):
    raise TimeoutError("stopped after {seconds:g} s, the time limit for one cell")


_signal.signal(_signal.SIGALRM, _over_time)
_get_ipython().events.register("pre_run_cell", lambda info: _signal.setitimer(_signal.ITIMER_REAL, {seconds}, {seconds}))
_get_ipython().events.register("post_run_cell", lambda result: _signal.setitimer(_signal.ITIMER_REAL, 0))
"""


def _require_otter() -> None:
    if importlib.util.find_spec("otter") is None:
        raise ModuleNotFoundError(
            "the classroom commands need otter-grader: run `pip install -r requirements-classroom.txt`"
        )


def _grading_env() -> dict[str, str]:
    """The environment for kernels that run assignments: one thread each, as many may run at once
    and the assignments' networks are too small to gain from more."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def assignment_names() -> list[str]:
    """The names of the master notebooks in ``notebooks/assignments/``, sorted."""
    return sorted(p.stem for p in MASTERS.glob("*.ipynb"))


def _check_name(name: str) -> str:
    names = assignment_names()
    if name not in names:
        raise ValueError(f"no assignment named {name!r}; the assignments are {names}")
    return name


def website_copy(student_notebook: Path) -> nbformat.NotebookNode:
    """The student notebook as the book offers it: otter gives the cells it adds random ids, so
    number every cell instead, and the copy changes only when the assignment does."""
    nb = nbformat.read(student_notebook, as_version=4)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


def release(
    out: str | os.PathLike = DEFAULT_RELEASE, names: list[str] | None = None, website: bool = False
) -> dict[str, Path]:
    """Run ``otter assign`` on each master; return the folder written for each assignment.

    Each ``out/NAME/`` is replaced and holds ``student/NAME.ipynb`` (to hand out) and
    ``autograder/`` (the solutions notebook and the autograder zip that :func:`grade` uses).
    Raises ``RuntimeError`` when otter fails, in particular when the master's solutions do not pass
    every check. With ``website=True`` the student notebooks are also copied to ``book/assignments/``.
    """
    _require_otter()
    names = [_check_name(n) for n in names] if names else assignment_names()
    if not names:
        raise ValueError(f"no master notebooks in {MASTERS}")
    out = Path(out).resolve()
    folders = {}
    for name in names:
        target = out / name
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "otter", "assign", "--no-pdfs", str(MASTERS / f"{name}.ipynb"), str(target)]
        done = subprocess.run(command, env=_grading_env(), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"otter assign failed for {name}:\n{(done.stdout + done.stderr)[-4000:]}")
        if website:
            WEBSITE.mkdir(exist_ok=True)
            nbformat.write(website_copy(target / "student" / f"{name}.ipynb"), WEBSITE / f"{name}.ipynb")
        folders[name] = target
    return folders


def autograder_zip(release_dir: str | os.PathLike, name: str) -> Path:
    """The autograder zip that :func:`release` wrote for assignment ``name``."""
    zips = sorted((Path(release_dir) / name / "autograder").glob("*-autograder_*.zip"))
    if len(zips) != 1:
        raise FileNotFoundError(
            f"expected one autograder zip in {Path(release_dir) / name / 'autograder'}, found {len(zips)}; "
            f"run `python -m vae.classroom release --out {release_dir}` first"
        )
    return zips[0]


def questions(name: str) -> list[str]:
    """The question names of assignment ``name``, in the order of its master notebook."""
    names = []
    for cell in nbformat.read(MASTERS / f"{_check_name(name)}.ipynb", as_version=4).cells:
        if cell.cell_type in ("markdown", "raw") and "# BEGIN QUESTION" in cell.source:
            names.append(re.search(r"^name:\s*(\S+)", cell.source, flags=re.MULTILINE).group(1))
    return names


def question_points(zip_path: str | os.PathLike) -> dict[str, float]:
    """Points possible per question, read from the tests in an autograder zip."""
    _require_otter()
    from otter.test_files import ExceptionTestFile

    with zipfile.ZipFile(zip_path) as zf:
        tests = [
            ExceptionTestFile.from_string(zf.read(n).decode(), path=n) for n in zf.namelist() if n.startswith("tests/")
        ]
    return {t.name: float(t.possible) for t in tests}


@dataclass
class Grade:
    """One student's result: points per question, a note on what went wrong, feedback text."""

    student: str
    scores: dict[str, float]
    possible: dict[str, float]
    note: str = ""
    feedback: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.scores.values())

    def report(self) -> str:
        """Plain-text feedback: the score of each question and what each failed check expected."""
        lines = [f"{self.student}: {self.total:g} / {sum(self.possible.values()):g} points"]
        if self.note:
            lines.append(f"note: {self.note}")
        if self.errors:
            lines.append("errors while running the notebook:")
            lines += [f"  - {e}" for e in self.errors]
        for q, possible in self.possible.items():
            lines.append(f"\n{q}: {self.scores.get(q, 0.0):g} / {possible:g}")
            if self.feedback.get(q):
                lines.append(self.feedback[q])
        return "\n".join(lines) + "\n"


def _feedback(test_file) -> str:
    """What each failed test case of one question expected, and the error it got."""
    lines = []
    for result in test_file.test_case_results:
        if not result.passed:
            case = result.test_case
            error = (result.message or "").strip().splitlines()[-1:] or ["failed"]
            kind = "hidden check" if case.hidden else "check"
            lines.append(f"  - {kind} {case.name}: {case.failure_message or 'failed'}\n    ({error[0]})")
    return "\n".join(lines)


def _kill_tree(pid: int) -> None:
    """Kill a process and everything it started (the notebook kernel runs in its own session)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        processes = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for p in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(processes, timeout=10)


def grade_submission(
    notebook: Path,
    assignment: str,
    zip_path: Path,
    possible: dict[str, float],
    timeout: float,
    total_timeout: float,
    work: Path,
) -> Grade:
    """Grade one notebook with ``otter run`` in its own process, in the folder ``work/STUDENT``.

    The copy that is graded is named ``ASSIGNMENT.ipynb``, the name its otter cells expect; it
    gets a first cell that limits every later cell to ``timeout`` seconds, and the standard
    Python 3 kernel whatever kernel the student used. The process and its kernel are killed after
    ``total_timeout`` seconds; the student then gets no points.
    """
    student = notebook.stem
    folder = work / student
    folder.mkdir()
    try:
        nb = nbformat.read(notebook, as_version=4)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells.insert(0, nbformat.v4.new_code_cell(TIME_LIMIT_CELL.format(seconds=timeout)))
        nbformat.write(nb, folder / f"{assignment}.ipynb")
    except Exception as err:  # noqa: BLE001 - whatever a file does wrong costs its own student only
        return Grade(student, dict.fromkeys(possible, 0.0), possible, f"not a readable notebook: {err}")
    command = [
        sys.executable,
        "-m",
        "otter",
        "run",
        "--no-logo",
        "-p",
        "-a",
        str(zip_path),
        "-o",
        ".",
        f"{assignment}.ipynb",
    ]
    with open(folder / "otter.log", "w") as log:
        proc = subprocess.Popen(command, cwd=folder, env=_grading_env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            proc.wait(total_timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc.pid)
            proc.wait()
            return Grade(
                student, dict.fromkeys(possible, 0.0), possible, f"stopped after {total_timeout:g} s in all; no score"
            )
    if not (folder / "results.pkl").is_file():
        last = (folder / "otter.log").read_text().strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return Grade(student, dict.fromkeys(possible, 0.0), possible, f"could not be graded: {last[0]}")
    import dill

    with open(folder / "results.pkl", "rb") as f:
        results = dill.load(f)
    scores = {q: float(results.results[q].score) if q in results.results else 0.0 for q in possible}
    feedback = {q: _feedback(results.results[q]) for q in possible if q in results.results}
    note = f"grading failed: {results.catastrophic_error}" if results.catastrophic_error else ""
    return Grade(student, scores, possible, note, feedback, _cell_errors(results.notebook))


def _cell_errors(executed: nbformat.NotebookNode | None) -> list[str]:
    """The errors raised by the cells of an executed notebook, each with the cell's first line."""
    errors = []
    for cell in executed.cells if executed is not None else []:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.output_type == "error":
                first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                errors.append(f"the cell starting `{first_line}` raised {output.ename}: {output.evalue}")
    return errors


def grade(
    submissions: str | os.PathLike,
    assignment: str,
    release_dir: str | os.PathLike = DEFAULT_RELEASE,
    timeout: float = 120.0,
    total_timeout: float | None = None,
    jobs: int = 1,
    out: str | os.PathLike | None = None,
) -> list[Grade]:
    """Grade every ``*.ipynb`` in ``submissions`` against the released autograder of ``assignment``.

    ``timeout`` is the limit in seconds for one cell and ``total_timeout`` for a whole submission
    (default ``10 * timeout + 60``); ``jobs`` submissions are graded at once. Writes the CSV ``out``
    (default ``submissions/grades.csv``) with a row per student (points per question, total, note)
    and a ``feedback/STUDENT.txt`` beside it. Returns the grades, sorted by student.
    """
    _require_otter()
    check_positive("timeout", timeout)
    total_timeout = 10 * timeout + 60 if total_timeout is None else check_positive("total_timeout", total_timeout)
    check_positive_int("jobs", jobs)
    _check_name(assignment)
    folder = Path(submissions)
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no submitted notebooks (*.ipynb) in {folder}")
    zip_path = autograder_zip(release_dir, assignment)
    points = question_points(zip_path)
    if set(points) != set(questions(assignment)):
        raise ValueError(f"the release in {release_dir} is out of date for {assignment}: run `release` again")
    possible = {q: points[q] for q in questions(assignment)}
    out = Path(out) if out is not None else folder / "grades.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(jobs) as pool:
        grades = list(
            pool.map(
                lambda nb: grade_submission(nb, assignment, zip_path, possible, timeout, total_timeout, Path(tmp)),
                notebooks,
            )
        )
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *possible, "total", "note"])
        for g in grades:
            writer.writerow([g.student, *(f"{g.scores[q]:g}" for q in possible), f"{g.total:g}", g.note])
    feedback = out.parent / "feedback"
    feedback.mkdir(exist_ok=True)
    for g in grades:
        (feedback / f"{g.student}.txt").write_text(g.report())
    return grades


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vae.classroom", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rel = commands.add_parser("release", help="build the student notebooks and autograders")
    rel.add_argument(
        "names", nargs="*", metavar="NAME", help=f"assignments to release (default: all of {assignment_names()})"
    )
    rel.add_argument("--out", default=DEFAULT_RELEASE, help="output folder (default: _build/classroom)")
    rel.add_argument("--website", action="store_true", help="also refresh the downloads in book/assignments/")
    gra = commands.add_parser("grade", help="grade a folder of submitted notebooks offline")
    gra.add_argument("submissions", help="folder of submitted notebooks, one STUDENT.ipynb each")
    gra.add_argument("--assignment", required=True, choices=assignment_names())
    gra.add_argument(
        "--release", default=DEFAULT_RELEASE, help="the folder `release` wrote (default: _build/classroom)"
    )
    gra.add_argument("--timeout", type=float, default=120.0, help="seconds one cell may run (default: 120)")
    gra.add_argument("--total-timeout", type=float, help="seconds one submission may run (default: 10 * TIMEOUT + 60)")
    gra.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default: 1)")
    gra.add_argument("--out", help="CSV to write, with a feedback folder beside it (default: SUBMISSIONS/grades.csv)")
    args = parser.parse_args(argv)
    if args.command == "release":
        for name, folder in release(args.out, args.names, args.website).items():
            print(f"{name}: hand out {folder / 'student' / (name + '.ipynb')}")
    else:
        grades = grade(
            args.submissions, args.assignment, args.release, args.timeout, args.total_timeout, args.jobs, args.out
        )
        for g in grades:
            print(f"{g.student}: {g.total:g} / {sum(g.possible.values()):g}" + (f"  ({g.note})" if g.note else ""))


if __name__ == "__main__":
    main()
