"""Grade a folder of submitted notebooks, each in its own sandbox, with checks run outside it.

For each submission the grader starts a fresh interpreter in a new sandbox (:mod:`classroom.worker`):
it runs the submission's code cells, then answers the grader's requests over a pair of pipes the
grader opened. The grader sends the checks' probe cells one at a time, each with inputs drawn for
this submission alone and a fresh random nonce, and accepts exactly one answer per request: a line
with that nonce, holding only the names that probe cell records, within the time limit. Anything
else on the pipe ends the run without a score. The record that is scored lives in the grader's
process; once the last answer is in, the sandbox is ended, so nothing the submission leaves behind
can add to it, change it or finish it.
"""

from __future__ import annotations

import builtins
import csv
import hashlib
import importlib.util
import io
import json
import os
import queue
import re
import secrets
import shutil
import stat
import tempfile
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from classroom import sandbox
from classroom.checks import Check, plain, probe_cells
from vae.validation import check_positive, check_positive_int

WORKER = Path(__file__).with_name("worker.py")
MAX_NOTEBOOK = 20 * 2**20  # bytes of a submitted notebook
MAX_REPLY = 16 * 2**20  # bytes of one answer from the sandbox
MAX_CELLS = 2000  # cells of a submitted notebook
WALL_FACTOR = 3  # a cell may run WALL_FACTOR times its processor-time limit in wall-clock time
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20", "|", "%")
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


# ---------------------------------------------------------------------------------------------
# File names and the CSV


def decode_name(raw: bytes | str) -> str | None:
    """A file name as text in Unicode's composed form (NFC), or None when it is not UTF-8."""
    if isinstance(raw, str):
        raw = os.fsencode(raw)
    try:
        return unicodedata.normalize("NFC", raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def student_name(path: Path | bytes | str) -> str | None:
    """The student a submitted file is named after (NFC), or None when the name cannot be used as
    one (not UTF-8, a name such as ``...ipynb``, a hidden file, control characters or over 100
    characters)."""
    raw = os.fsencode(path.name if isinstance(path, Path) else os.path.basename(path))
    name = decode_name(raw)
    if name is None or not name.endswith(".ipynb"):
        return None
    stem = name[: -len(".ipynb")]
    if not stem or stem.startswith(".") or len(stem) > 100 or any(not ch.isprintable() for ch in stem):
        return None
    return stem


def _row_name(raw: bytes) -> str:
    """The student's name, or for a file that cannot name one, its file name with odd bytes escaped."""
    name = student_name(raw)
    if name is not None:
        return name
    text = raw.decode("utf-8", errors="backslashreplace")
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)[:200]


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading apostrophe if a spreadsheet would read it as a formula: it starts,
    after any spaces, with ``= + - @`` or their full-width forms, or starts with a tab or return."""
    if text.startswith(("\t", "\r", "\n")) or text.lstrip(" \u3000\u00a0").startswith(FORMULA_START):
        return "'" + text
    return text


# ---------------------------------------------------------------------------------------------
# Reading a submission


def read_capped(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file (not a link, pipe or device) of at most
    ``limit`` bytes; ValueError otherwise. The size is checked before anything is read, so a huge
    sparse file costs nothing."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > limit:
            raise ValueError("over the size limit")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError("over the size limit")
    return data


def code_cells(data: bytes) -> list[str]:
    """The sources of a notebook's code cells (nbformat 4), checked field by field; ValueError for
    anything else."""
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        raise ValueError("not a version 4 notebook")
    if len(nb["cells"]) > MAX_CELLS:
        raise ValueError("too many cells")
    sources = []
    for cell in nb["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise ValueError("a cell of the wrong kind")
        source = cell.get("source", "")
        if isinstance(source, list) and all(type(s) is str for s in source):
            source = "".join(source)
        if type(source) is not str:
            raise ValueError("a cell whose source is not text")
        if cell["cell_type"] == "code":
            sources.append(source)
    return sources


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(os.fsencode(p) + b"\0")
        try:
            info = os.stat(p, follow_symlinks=False)
            h.update(f"{info.st_mode}:{info.st_size}:{info.st_mtime_ns}:{info.st_ino}".encode())
            if stat.S_ISREG(info.st_mode) and info.st_size <= MAX_NOTEBOOK:
                h.update(read_capped(p, MAX_NOTEBOOK))
        except (OSError, ValueError):
            h.update(b"<unreadable>")
    return h.hexdigest()


def _cell_errors(sources: list[str], reported) -> list[str]:
    """What the worker reported per cell, as text the grader writes: the code cell's number, its
    line count and the name of a built-in exception; never an error message, and no text of the
    submission (not even its own code, which could carry anything)."""
    if not isinstance(reported, list):
        return []
    errors = []
    for i, (source, ename) in enumerate(zip(sources, reported)):
        if ename is None:
            continue
        lines = len(source.splitlines())
        kind = ename if isinstance(ename, str) and ename in BUILTIN_ERRORS else "an exception"
        errors.append(f"code cell {i + 1} ({lines} line{'s' if lines != 1 else ''}) raised {kind}")
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


RECORDED = re.compile(r"""\brecord\(\s*["'](\w+)["']""")


class Interference(Exception):
    """The sandbox broke the conversation while still running: it wrote something the grader did not
    ask for, or did not say "ready" (for example because it closed its end of the channel)."""


def _converse(box: sandbox.Sandbox, assignment: Assignment, inputs: dict) -> tuple[list, dict]:
    """The cell errors and the probe's results, one request and one answer at a time."""
    if box.receive(64) != b"ready":
        raise Interference if not box.timed_out and box.proc.poll() is None else EOFError

    def ask(request: dict):
        nonce = secrets.token_hex(16)
        if not box.send(json.dumps({"nonce": nonce, **request}).encode() + b"\n"):
            raise EOFError
        line = box.receive(MAX_REPLY)
        if line is None:
            raise EOFError
        try:
            answer = json.loads(line)
        except (ValueError, RecursionError):
            raise Interference from None
        if not isinstance(answer, dict) or answer.get("nonce") != nonce:
            raise Interference
        return answer

    def checked(value):
        try:
            return plain(value)
        except (ValueError, RecursionError):
            return {"type": "invalid"}

    errors = checked(ask({"op": "errors"}).get("errors"))
    public = {k: v for k, v in inputs.items() if not k.startswith("_")}  # "_" names stay here
    results: dict = {}
    follow_up = getattr(assignment.checks, "follow_up", None)
    for cell in probe_cells(assignment.checks.PROBE):
        extra = {}
        if follow_up is not None:
            try:
                extra = follow_up(inputs, results) or {}
            except Exception:  # noqa: BLE001 - a bad earlier answer leaves the later inputs out
                extra = {}
        try:
            answer = ask({"op": "probe", "code": cell, "inputs": {**public, **extra}})
        except EOFError:
            break
        got = answer.get("results")
        if isinstance(got, dict):
            for name in RECORDED.findall(cell):  # only what this cell records, once
                if name in got and name not in results:
                    results[name] = checked(got[name])
    return errors, results


def grade_notebook(
    path: Path,
    assignment: Assignment,
    limits: sandbox.Limits,
    cell_timeout: float,
    work: Path,
    uid: int | None,
    mplconfig: Path | None = None,
) -> Grade:
    """Grade one submitted notebook in its own sandbox (its files under ``work`` are removed before
    returning)."""
    student = student_name(path) or _row_name(os.fsencode(path.name))
    possible = assignment.possible
    zero = dict.fromkeys(possible, 0.0)
    try:
        data = read_capped(path, MAX_NOTEBOOK)
        sources = code_cells(data)
    except (OSError, ValueError) as err:
        reason = "not a regular file under 20 MiB" if isinstance(err, OSError) or "file" in str(err) else str(err)
        if isinstance(err, ValueError) and str(err) == "over the size limit":
            reason = "over 20 MiB"
        return Grade(student, zero, possible, f"not a readable notebook ({reason}); no score")
    inputs = assignment.checks.draw(np.random.default_rng(secrets.randbits(128)))
    folder = Path(tempfile.mkdtemp(dir=work))
    try:
        os.chmod(folder, 0o755)
        cells = folder / "cells.json"
        cells.write_text(json.dumps(sources))
        cells.chmod(0o644)
        notebook = folder / "notebook.ipynb"  # otter.Notebook(NAME.ipynb) looks for it
        notebook.write_bytes(data)
        notebook.chmod(0o644)
        command = ["python", "-s", "/opt/classroom/worker.py", "/opt/classroom/cells.json"]
        command += ["{requests}", "{replies}", f"{cell_timeout:g}", f"{WALL_FACTOR * cell_timeout:g}"]
        files = {
            "/opt/classroom/worker.py": WORKER,
            "/opt/classroom/cells.json": cells,
            f"{sandbox.HOME}/{assignment.name}.ipynb": notebook,
        }
        with sandbox.start(command, limits, files=files, uid=uid, mplconfig=mplconfig) as box:
            try:
                reported, results = _converse(box, assignment, inputs)
            except Interference:
                return Grade(student, zero, possible, "the notebook interfered with the grader's channel (wrote to it unasked or closed it); no score")
            except EOFError:
                if box.timed_out:
                    return Grade(student, zero, possible, f"stopped after {limits.seconds:g} s in all; no score")
                return Grade(student, zero, possible, "the notebook could not be run to the end; no score")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    errors = _cell_errors(sources, reported)
    scores, feedback = _score(assignment.checks.CHECKS, inputs, results)
    return Grade(student, scores, possible, "", feedback, errors)


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

    ``timeout``: seconds of processor time one cell may use (and three times that in wall-clock
    time); ``total_timeout``: seconds one submission may run in all (default ``10 * timeout + 60``);
    ``jobs`` submissions are graded at once; ``memory`` bytes per submission (all its processes,
    where a memory cgroup can be used, else each process's address space) and ``processes``
    processes per submission. Writes the CSV ``out`` (default ``submissions/grades.csv``): a row per
    file (points per question, total, note), and a ``feedback/STUDENT.txt`` beside it. Returns the
    grades, sorted by file name.
    """
    check_positive("timeout", timeout)
    total_timeout = 10 * timeout + 60 if total_timeout is None else check_positive("total_timeout", total_timeout)
    check_positive_int("jobs", jobs)
    folder = Path(submissions)
    checks_file = Path(release_dir) / assignment / "autograder" / "checks.py"
    if not re.fullmatch(r"\w+", assignment) or not checks_file.is_file():
        raise ValueError(f"no released assignment named {assignment!r} in {release_dir}: run `release` first")
    raw_names = sorted(n for n in os.listdir(os.fsencode(folder)) if n.endswith(b".ipynb"))
    if not raw_names:
        raise FileNotFoundError(f"no submitted notebooks (*.ipynb) in {folder}")
    released = Assignment(assignment, load_checks(checks_file))
    possible = released.possible
    limits = sandbox.Limits(total_timeout, memory, processes)
    out = Path(out) if out is not None else folder / "grades.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [Path(os.fsdecode(os.path.join(os.fsencode(folder), n))) for n in raw_names]
    watched = [checks_file, *paths]
    digest = _digest(watched)
    by_name: dict[str, list[bytes]] = {}
    for raw in raw_names:
        name = student_name(raw)
        if name is not None:
            by_name.setdefault(name, []).append(raw)
    slots: queue.Queue[None] = queue.Queue()
    for _ in range(jobs):
        slots.put(None)

    def zero(name: str, note: str) -> Grade:
        return Grade(name, dict.fromkeys(possible, 0.0), possible, note)

    def one(raw: bytes, path: Path, mplconfig) -> Grade:
        name = student_name(raw)
        if name is None:
            return zero(_row_name(raw), "not graded: the file name cannot name a student")
        if len(by_name[name]) > 1:
            return zero(name, f"not graded: {len(by_name[name])} files have this name (in different Unicode forms)")
        if _digest(watched) != digest:
            return zero(name, "not graded: files changed during grading")
        slots.get()
        try:
            with sandbox.lease_uid() as uid:
                return grade_notebook(path, released, limits, timeout, work, uid, mplconfig)
        except Exception:  # noqa: BLE001 - whatever goes wrong with one file costs its row only
            return zero(name, "not graded: the grader failed on this file")
        finally:
            slots.put(None)

    grades: list[Grade] = []
    try:
        with tempfile.TemporaryDirectory(prefix="classroom-") as tmp:
            work = Path(tmp)
            os.chmod(work, 0o711)
            mplconfig = sandbox.build_font_cache(work / "mplconfig")
            seen: set[str] = set()
            todo = []
            for raw, path in zip(raw_names, paths):
                name = student_name(raw)
                if name is not None and len(by_name[name]) > 1:
                    if name in seen:
                        continue  # one row for the files whose names are the same text
                    seen.add(name)
                todo.append((raw, path))
            with ThreadPoolExecutor(jobs) as pool:
                grades = list(pool.map(lambda item: one(*item, mplconfig), todo))
    finally:
        _write(out, possible, grades, raw_names)
    return grades


def _feedback_folder(parent: Path) -> Path | None:
    """``parent/feedback``, or ``feedback-2``, ... when something other than a folder has the name."""
    for k in range(1, 100):
        candidate = parent / ("feedback" if k == 1 else f"feedback-{k}")
        try:
            candidate.mkdir(exist_ok=True)
        except OSError:
            continue
        if candidate.is_dir() and not candidate.is_symlink():
            return candidate
    return None


def _write_text(path: Path, text: str) -> bool:
    """Write ``path`` through a temporary file in its folder; False when that cannot be done (a
    folder or something else in the way)."""
    tmp = path.with_name(f".{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise OSError("something other than a file is in the way")
        os.replace(tmp, path)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False


def _write(out: Path, possible: dict[str, float], grades: list[Grade], raw_names: list[bytes]) -> None:
    """The feedback files, then the CSV (always, with a row per student even if grading stopped early)."""
    done = {g.student for g in grades}
    rows = list(grades)
    for raw in raw_names:
        name = _row_name(raw)
        if name not in done:
            done.add(name)
            rows.append(Grade(name, dict.fromkeys(possible, 0.0), possible, "not graded"))
    feedback = _feedback_folder(out.parent)
    for g in grades:
        if student_name(g.student + ".ipynb") != g.student:
            continue
        if feedback is None or not _write_text(feedback / f"{g.student}.txt", g.report()):
            g.note = "; ".join(filter(None, [g.note, "its feedback file could not be written"]))
    lines = [["student", *possible, "total", "note"]]
    for g in rows:
        cells = [g.student, *(f"{g.scores[q]:g}" for q in possible), f"{g.total:g}", g.note]
        lines.append([spreadsheet_safe(c) for c in cells])
    text = io.StringIO()
    csv.writer(text).writerows(lines)
    if not _write_text(out, text.getvalue()):
        raise OSError(f"could not write {out}")
