"""Submissions written to gain marks without the work, or to take them from others: each gains
nothing, changes no one else's row or file, sees none of the grader's files, and the run always
writes its CSV. They are graded in the same run as the ordinary submissions (see conftest.py)."""

import csv
import io
import re

import pytest

import classroom
from classroom.grading import spreadsheet_safe, student_name

# What each adversarial submission earns: the patches start from the untouched handout, the
# other attacks are notebooks of their own cells only, and copy_forward starts from the solutions.
EXPECTED = {
    "a1_em_mixture": {
        "patch_runner": 0,
        "patch_numpy": 0,
        "tamper_autograder": 0,
        "hundred_points": 0,
        "vandal": 0,
        "linger": 0,
        "leak": 0,
        "snoop": 0,  # would define a correct Question 1 if it saw any of the grader's files
        "memory_bomb": 0,
        "fork_bomb": 0,
        "zz_victim": 0,
        "zz_victim2": 0,
    },
    # The solutions with a forward pass that returns its input and no training: the shapes, the
    # sampler, the KL and the ELBO are right; the averaged images and the trained model are not.
    "a2_vae_digits": {"patch_runner": 0, "patch_torch": 0, "copy_forward": 12, "zz_victim": 0, "zz_victim2": 0},
    "a3_gaussian_kl": {"patch_runner": 0, "zz_victim": 0, "zz_victim2": 0},
}
BAD_NAMES = {"...ipynb": "not graded: the file name cannot name a student"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_adversarial_submission_gains_points(graded, name):
    rows = graded[name]["rows"]
    assert {s: float(rows[s]["total"]) for s in EXPECTED[name]} == EXPECTED[name]
    assert all(rows[s]["note"] == "" for s in EXPECTED[name] if s != "memory_bomb"), rows


def test_a_forward_pass_that_copies_its_input_does_not_pass_the_trained_model_checks(graded):
    copy = graded["a2_vae_digits"]["grades"]["copy_forward"]
    assert copy.scores == {"vae_model": 3, "reparameterize": 3, "gaussian_kl": 4, "elbo": 2, "training": 0}
    assert "expected a test -ELBO below 44.36 nats, got 4" in copy.feedback["training"]  # about 44 nats


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_release_and_classmates_files_are_untouched(graded, name):
    result = graded[name]
    assert result["after"] == result["before"]
    assert result["csv_later"] == result["csv"]  # nothing left behind edits the CSV afterwards


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_file_gets_a_row_and_nothing_is_left_in_temp(graded, name):
    result = graded[name]
    files = sorted(p.name for p in result["folder"].glob("*.ipynb"))
    rows = list(csv.reader(io.StringIO(result["csv"])))
    assert len(rows) == 1 + len(files)
    assert sorted(result["rows"]) == sorted(spreadsheet_safe(student_name(result["folder"] / f) or f) for f in files)
    assert list(result["temp"].iterdir()) == []


def test_a_bad_file_name_costs_that_file_only(graded):
    rows = graded["a1_em_mixture"]["rows"]
    assert rows["...ipynb"]["total"] == "0" and rows["...ipynb"]["note"] == BAD_NAMES["...ipynb"]
    assert rows["correct"]["total"] == "12"


def test_names_that_spreadsheets_read_as_formulas_are_escaped(graded):
    text = graded["a1_em_mixture"]["csv"]
    assert "\n'=1+2," in text and "\n'@SUM(A1)," in text
    assert not re.search(r"^[=+\-@\t\r]", text, flags=re.MULTILINE)
    assert [spreadsheet_safe(s) for s in ("=A1", "+1", "-1", "@x", "\tx", "\rx", "ana")] == [
        "'=A1",
        "'+1",
        "'-1",
        "'@x",
        "'\tx",
        "'\rx",
        "ana",
    ]


def hidden_text(name):
    """Lines of the checks' code: any of them in a student's feedback would leak the hidden checks."""
    source = (classroom.MASTERS / f"{name}_checks.py").read_text()
    lines = {line.strip() for line in source.splitlines()}
    return {line for line in lines if len(line) >= 25 and not line.startswith(('"', "Check(", "#"))}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_feedback_holds_hidden_checks_or_raw_errors(graded, name):
    secrets = hidden_text(name)
    assert len(secrets) > 20
    for student, text in graded[name]["feedback"].items():
        assert [s for s in secrets if s in text] == [], student
        assert "HIDDEN:" not in text and "Traceback" not in text and "def " not in text, student
    leak = graded["a1_em_mixture"]["feedback"]["leak"]
    assert "raised RuntimeError" in leak


def test_the_memory_bomb_is_stopped_by_the_memory_limit(graded):
    grade = graded["a1_em_mixture"]["grades"]["memory_bomb"]
    assert any("raised MemoryError" in e for e in grade.errors), grade.report()


@pytest.mark.parametrize("bad", ["", ".hidden", "..", "a\nb", "x" * 101])
def test_names_that_cannot_name_a_student(tmp_path, bad):
    assert student_name(tmp_path / f"{bad}.ipynb") is None
    assert student_name(tmp_path / "José Ñ.ipynb") == "José Ñ"
