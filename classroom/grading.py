"""Grade a folder of submitted notebooks, each in its own sandbox, with checks run outside it."""

from __future__ import annotations

import builtins
import csv
import hashlib
import importlib.util
import json
import os
import queue
import re
import secrets
import shutil
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import nbformat
import numpy as np

from classroom import sandbox
from classroom.checks import Check, plain, probe_cells
from vae.validation import check_positive, check_positive_int

RUNNER = Path(__file__).with_name("runner.py")
MAX_NOTEBOOK = 20 * 2**20  # bytes of a submitted notebook
MAX_PROBE = 16 * 2**20  # bytes of the probe's results
FIRST_UID = 61000  # as root, concurrent sandboxes run as FIRST_UID, FIRST_UID + 1, ...
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BUILTIN_ERRORS = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}


@dataclass
class Grade:
    """One student's result: points per question, a note on what went wrong, feedback per question
    (instructor-written messages only) and the cells that raised."""

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


def load_checks(path: str | os.PathLike) -> ModuleType:
    """The checks module at ``path`` (``NAME_checks.py`` of a master, or ``checks.py`` of a release)."""
    spec = importlib.util.spec_from_file_location(f"classroom_checks_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def possible_points(checks: list[Check]) -> dict[str, float]:
    """Points per question, in the order the checks first name them."""
    points: dict[str, float] = {}
    for c in checks:
        points[c.question] = points.get(c.question, 0.0) + float(c.points)
    return points


def student_name(path: Path) -> str | None:
    """The student a submitted file is named after, or None when the name cannot be used as one (a
    name such as ``...ipynb``, a hidden file, control characters or over 100 characters)."""
    stem = path.name[: -len(".ipynb")]
    if not stem or stem.startswith(".") or len(stem) > 100 or any(not ch.isprintable() for ch in stem):
        return None
    return stem


def _row_name(path: Path) -> str:
    """The student's name, or for a file that cannot name one, its file name with odd characters escaped."""
    return student_name(path) or path.name.encode("unicode_escape").decode()


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading apostrophe if a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p).encode() + b"\0")
        h.update(p.read_bytes() if p.is_file() else b"<missing>")
    return h.hexdigest()


def _read_result(path: Path, limit: int):
    """Parsed JSON from a file the sandbox wrote, if it is a regular file under ``limit`` bytes (not
    a link, and not a pipe, which could block the grader)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        data = f.read(limit + 1)
    if len(data) > limit:
        return None
    try:
        return plain(json.loads(data))
    except (ValueError, RecursionError):
        return None


def _cell_errors(nb: nbformat.NotebookNode, reported) -> list[str]:
    """What the runner reported per cell, as text the grader writes: the cell's number and first line
    (from the submitted file) and the name of a built-in exception, never an error message."""
    if not isinstance(reported, list):
        return []
    errors = []
    for i, (cell, ename) in enumerate(zip(nb.cells, reported)):
        if ename is None or cell.cell_type != "code":
            continue
        first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
        first = "".join(ch for ch in first[:60] if ch.isprintable())
        kind = ename if ename in BUILTIN_ERRORS else "an exception"
        errors.append(f"cell {i + 1} (starting `{first}`) raised {kind}")
    return errors


def _score(checks: list[Check], inputs: dict, results) -> tuple[dict[str, float], dict[str, str]]:
    """Points and feedback per question from the probe's results, each question capped at its points."""
    possible = possible_points(checks)
    scores = dict.fromkeys(possible, 0.0)
    failed: dict[str, list[str]] = {q: [] for q in possible}
    for c in checks:
        if not isinstance(results, dict):
            failed[c.question].append(f"  - check {c.name}: {c.message}\n    (the notebook produced no results)")
            continue
        try:
            c.test(inputs, results)
        except KeyError:
            failed[c.question].append(f"  - check {c.name}: {c.message}\n    (the notebook did not get this far)")
        except AssertionError as err:
            detail = f"\n    ({str(err)[:300]})" if str(err) else ""
            failed[c.question].append(f"  - check {c.name}: {c.message}{detail}")
        except Exception:  # noqa: BLE001 - any failure of a check fails only that check
            failed[c.question].append(f"  - check {c.name}: {c.message}\n    (got a value of the wrong kind)")
        else:
            scores[c.question] += float(c.points)
    scores = {q: min(scores[q], possible[q]) for q in possible}
    return scores, {q: "\n".join(lines) for q, lines in failed.items() if lines}


@dataclass(frozen=True)
class Assignment:
    """What grading one assignment needs: its name and its checks module."""

    name: str
    checks: ModuleType

    @property
    def possible(self) -> dict[str, float]:
        return possible_points(self.checks.CHECKS)


def grade_notebook(
    path: Path, assignment: Assignment, limits: sandbox.Limits, cell_timeout: float, work: Path, uid: int | None
) -> Grade:
    """Grade one submitted notebook in its own sandbox under ``work`` (removed before returning)."""
    student = student_name(path)
    possible = assignment.possible
    zero = dict.fromkeys(possible, 0.0)
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_NOTEBOOK:
            raise ValueError("not a regular file under 20 MiB")
        nb = nbformat.read(path, as_version=4)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    except Exception as err:  # noqa: BLE001 - whatever a file does wrong costs its own student only
        return Grade(student, zero, possible, f"not a readable notebook ({type(err).__name__})")
    inputs = assignment.checks.draw(np.random.default_rng(secrets.randbits(64)))
    home = Path(tempfile.mkdtemp(dir=work))
    try:
        nbformat.write(nb, home / f"{assignment.name}.ipynb")
        finished = sandbox.run(
            ["python", "/opt/classroom/runner.py", f"{assignment.name}.ipynb", f"{cell_timeout:g}"],
            home,
            limits,
            stdin=json.dumps(probe_cells(assignment.checks.PROBE, inputs)).encode(),
            files={"/opt/classroom/runner.py": RUNNER},
            uid=uid,
        )
        if finished.timed_out:
            return Grade(student, zero, possible, f"stopped after {limits.seconds:g} s in all; no score")
        results = _read_result(home / ".probe.json", MAX_PROBE)
        errors = _cell_errors(nb, _read_result(home / "cells.json", 2**20))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    scores, feedback = _score(assignment.checks.CHECKS, inputs, results)
    note = "" if results is not None else "the notebook could not be run to the end; no score"
    return Grade(student, scores, possible, note, feedback, errors)


def grade(
    submissions: str | os.PathLike,
    release_dir: str | os.PathLike,
    assignment: str,
    timeout: float = 120.0,
    total_timeout: float | None = None,
    jobs: int = 1,
    out: str | os.PathLike | None = None,
    memory: int = sandbox.Limits.memory,
    processes: int = sandbox.Limits.processes,
) -> list[Grade]:
    """Grade every ``*.ipynb`` in ``submissions`` with the checks released in ``release_dir/assignment``.

    ``timeout``: seconds one cell may run; ``total_timeout``: seconds one submission may run in all
    (default ``10 * timeout + 60``); ``jobs`` submissions are graded at once; ``memory`` bytes of
    address space per process and ``processes`` processes per submission. Writes the CSV ``out``
    (default ``submissions/grades.csv``): a row per file (points per question, total, note), and a
    ``feedback/STUDENT.txt`` beside it. Returns the grades, sorted by file name.
    """
    check_positive("timeout", timeout)
    total_timeout = 10 * timeout + 60 if total_timeout is None else check_positive("total_timeout", total_timeout)
    check_positive_int("jobs", jobs)
    folder = Path(submissions)
    checks_file = Path(release_dir) / assignment / "autograder" / "checks.py"
    if not re.fullmatch(r"\w+", assignment) or not checks_file.is_file():
        raise ValueError(f"no released assignment named {assignment!r} in {release_dir}: run `release` first")
    notebooks = sorted(p for p in folder.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no submitted notebooks (*.ipynb) in {folder}")
    released = Assignment(assignment, load_checks(checks_file))
    possible = released.possible
    limits = sandbox.Limits(total_timeout, memory, processes)
    out = Path(out) if out is not None else folder / "grades.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    watched = [checks_file, *notebooks]
    digest = _digest(watched)
    uids: queue.Queue[int | None] = queue.Queue()
    for i in range(jobs):
        uids.put(FIRST_UID + i if os.geteuid() == 0 else None)

    def one(path: Path) -> Grade:
        if student_name(path) is None:
            return Grade(
                _row_name(path),
                dict.fromkeys(possible, 0.0),
                possible,
                "not graded: the file name cannot name a student",
            )
        if _digest(watched) != digest:
            return Grade(
                student_name(path), dict.fromkeys(possible, 0.0), possible, "not graded: files changed during grading"
            )
        uid = uids.get()
        try:
            return grade_notebook(path, released, limits, timeout, work, uid)
        finally:
            uids.put(uid)

    grades = []
    try:
        with tempfile.TemporaryDirectory(prefix="classroom-") as tmp, ThreadPoolExecutor(jobs) as pool:
            work = Path(tmp)
            os.chmod(work, 0o711)
            grades = list(pool.map(one, notebooks))
    finally:
        _write(out, possible, grades, notebooks)
    return grades


def _write(out: Path, possible: dict[str, float], grades: list[Grade], notebooks: list[Path]) -> None:
    """The CSV (always, with a row per file even if grading stopped early) and the feedback files."""
    done = {g.student for g in grades}
    missing = [n for n in map(_row_name, notebooks) if n not in done]
    rows = [*grades, *(Grade(m, dict.fromkeys(possible, 0.0), possible, "not graded") for m in missing)]
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *possible, "total", "note"])
        for g in rows:
            cells = [g.student, *(f"{g.scores[q]:g}" for q in possible), f"{g.total:g}", g.note]
            writer.writerow([spreadsheet_safe(c) for c in cells])
    feedback = out.parent / "feedback"
    feedback.mkdir(exist_ok=True)
    for g in grades:
        if student_name(Path(g.student + ".ipynb")) == g.student:
            (feedback / f"{g.student}.txt").write_text(g.report())
