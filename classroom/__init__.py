"""Graded homework from the book: release the assignments and grade submissions offline.

Instructor tooling, beside the book's library: run from a clone of the repository, with the
instructors' extra installed (``pip install -r requirements-classroom.txt``) and bubblewrap
(``apt-get install bubblewrap``)::

    python -m classroom release [--masters DIR] [--out DIR] [--website] [NAME ...]
    python -m classroom grade SUBMISSIONS --assignment NAME [--release DIR] [--timeout S]
                              [--total-timeout S] [--jobs N] [--out CSV]

``release`` turns each master notebook (``notebooks/assignments/NAME.ipynb``, or ``--masters DIR``)
into a student notebook with ``otter assign`` and copies the master's checks (``NAME_checks.py``)
beside it; it fails unless the master's solutions earn every point. ``grade`` runs every submitted
notebook in a fresh interpreter in its own sandbox (:mod:`classroom.sandbox`), then asks that
interpreter, one request at a time over pipes the grader opened, to call the student's functions on
inputs the checks draw for that submission, and compares the plain numbers that come back in its
own process (:mod:`classroom.grading`). Modules: ``sandbox`` (bubblewrap and the limits),
``worker`` (what runs inside it), ``checks`` (what a check is, and the comparisons), ``grading``
and ``release``.
"""

from classroom.grading import Grade, grade
from classroom.release import DEFAULT_RELEASE, MASTERS, WEBSITE, assignment_names, questions, release, website_copy

__all__ = [
    "DEFAULT_RELEASE",
    "MASTERS",
    "WEBSITE",
    "Grade",
    "assignment_names",
    "grade",
    "questions",
    "release",
    "website_copy",
]
