"""Shared by the tests. For the classroom tests: one release of every assignment, and one grading
run per assignment of every test submission (ordinary and adversarial), with short limits. For the
browser tests (the site's and the interactive figures'): a headless Chromium."""

import csv
import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import submissions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
from browser import HOW_TO_INSTALL, find_chromium, open_browser

# Seconds one cell, and one submission in all, may run in these tests: generous, for a loaded machine.
LIMITS = {
    "a1_em_mixture": {"timeout": 10, "total_timeout": 60},
    "a2_vae_digits": {"timeout": 150, "total_timeout": 400},
    "a3_gaussian_kl": {"timeout": 60, "total_timeout": 150},
    "a4_iwae_beta": {"timeout": 60, "total_timeout": 240},
}


def _classroom():
    pytest.importorskip(
        "otter", reason="the classroom tests need otter-grader: pip install -r requirements-classroom.txt"
    )
    import classroom
    from classroom import sandbox

    if not sandbox.available():
        pytest.skip("grading needs bubblewrap: apt-get install bubblewrap")
    return classroom


@pytest.fixture(scope="session")
def released(tmp_path_factory):
    """Every assignment released once (the grading runs below grade the solutions themselves)."""
    out = tmp_path_factory.mktemp("release")
    _classroom().release(out, verify=False)
    return out


def notebook(released, name, folder):
    """A fresh copy of the released solutions (folder "autograder") or handout (folder "student")."""
    return nbformat.read(released / name / folder / f"{name}.ipynb", as_version=4)


def digests(paths):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in paths}


@pytest.fixture(scope="session")
def graded(released, tmp_path_factory):
    """For each assignment, one grading run of all its test submissions: the grades and feedback by
    student, the CSV's rows and raw text, the folder, and the release and victim files' digests
    before and after."""
    classroom = _classroom()
    results = {}
    for name in classroom.assignment_names():
        folder = tmp_path_factory.mktemp(f"submitted-{name}")
        temp = tmp_path_factory.mktemp(f"temp-{name}")
        solutions = functools.partial(notebook, released, name, "autograder")
        handout = functools.partial(notebook, released, name, "student")
        subs = {
            **submissions.ordinary(solutions, handout, name),
            **submissions.adversarial(solutions, handout, name),
            **submissions.channel_attacks(solutions, handout, name),
        }
        submissions.write(folder, subs)
        watched = [
            released / name / "autograder" / "checks.py",
            folder / "zz_victim.ipynb",
            folder / "zz_victim2.ipynb",
        ]
        before = digests(watched)
        start = time.monotonic()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(tempfile, "tempdir", str(temp))
            # Three at once on two cores: the submission that ignores the time limits mostly sleeps.
            grades = classroom.grade(folder, released, name, jobs=3, out=folder / "grades.csv", **LIMITS[name])
        elapsed = time.monotonic() - start
        text = (folder / "grades.csv").read_text()
        time.sleep(3)  # long enough for a process left behind to touch the CSV
        with open(folder / "grades.csv", newline="") as f:
            rows = {row["student"]: row for row in csv.DictReader(f)}
        results[name] = {
            "grades": {g.student: g for g in grades},
            "feedback": {p.stem: p.read_text() for p in (folder / "feedback").glob("*.txt")},
            "rows": rows,
            "csv": text,
            "csv_later": (folder / "grades.csv").read_text(),
            "folder": folder,
            "temp": temp,
            "elapsed": elapsed,
            "before": before,
            "after": digests(watched),
        }
    return results


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium, shared by the tests of one module (the site's and the interactive figures').

    Without it the tests skip, except when ``VAE_SITE`` asks for the real check: then they fail.
    """
    missing = None
    if find_chromium() is None:
        missing = f"no Chromium or Chrome found ({HOW_TO_INSTALL})"
    elif importlib.util.find_spec("playwright") is None:
        missing = "playwright is not installed (pip install -r requirements.txt)"
    if missing and os.environ.get("VAE_SITE"):
        pytest.fail(missing)
    if missing:
        pytest.skip(missing)
    with open_browser() as chromium:
        yield chromium
