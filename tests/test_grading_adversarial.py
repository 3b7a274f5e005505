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
        "forged_results": 0,
        "post_run_hook": 0,
        "cached_answers": 0,
        "always_equal": 0,
        "exception_leak": 0,
        "environ_snoop": 0,
        "tmp_fill": 0,
    },
    # The solutions with a forward pass that returns its input and no training: the shapes, the
    # sampler, the KL and the ELBO are right; the averaged images and the trained model are not.
    "a2_vae_digits": {"patch_runner": 0, "patch_torch": 0, "copy_forward": 12, "zz_victim": 0, "zz_victim2": 0},
    "a3_gaussian_kl": {"patch_runner": 0, "zz_victim": 0, "zz_victim2": 0},
    "a4_iwae_beta": {"patch_runner": 0, "zz_victim": 0, "zz_victim2": 0},
}
BAD_NAMES = {"...ipynb": "not graded: the file name cannot name a student"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_adversarial_submission_gains_points(graded, name):
    rows = graded[name]["rows"]
    assert {s: float(rows[s]["total"]) for s in EXPECTED[name]} == EXPECTED[name]
    ended = {"memory_bomb", "forged_results", "post_run_hook"}  # end the interpreter, or write to the channel
    assert all(rows[s]["note"] == "" for s in EXPECTED[name] if s not in ended), rows


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
    tricky = (
        "=A1",
        "+1",
        "-1",
        "@x",
        "\tx",
        "\rx",
        " =A1",
        "  +1",
        "\uff1dA1",
        "\uff0b1",
        "\uff0d1",
        "\uff20x",
        " \uff1dx",
    )
    assert [spreadsheet_safe(s) for s in tricky] == ["'" + s for s in tricky]
    assert [spreadsheet_safe(s) for s in ("ana", "José Ñ", "a=b", "1-2")] == ["ana", "José Ñ", "a=b", "1-2"]


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
    assert "raised RuntimeError" in leak  # a built-in exception, named by the grader


def test_the_memory_bomb_is_stopped_by_the_memory_limit(graded):
    grade = graded["a1_em_mixture"]["grades"]["memory_bomb"]
    assert any("raised MemoryError" in e for e in grade.errors), grade.report()


@pytest.mark.parametrize("bad", ["", ".hidden", "..", "a\nb", "x" * 101])
def test_names_that_cannot_name_a_student(tmp_path, bad):
    assert student_name(tmp_path / f"{bad}.ipynb") is None
    assert student_name(tmp_path / "José Ñ.ipynb") == "José Ñ"


def test_forged_results_and_hooks_gain_nothing_and_are_named(graded):
    """A results file, answer lines written to every descriptor, hooks after each cell and at exit:
    the grader reads no file, and a line it did not ask for ends that run without a score."""
    grades = graded["a1_em_mixture"]["grades"]
    for student in ("forged_results", "post_run_hook"):
        assert grades[student].total == 0 and "no score" in grades[student].note, grades[student].report()
    assert grades["correct"].total == 12 and grades["correct"].note == ""


def test_answers_learnt_by_heart_and_always_equal_objects_gain_nothing(graded):
    grades = graded["a1_em_mixture"]["grades"]
    assert grades["cached_answers"].scores == dict.fromkeys(grades["cached_answers"].possible, 0.0)
    assert grades["always_equal"].scores == dict.fromkeys(grades["always_equal"].possible, 0.0)


def test_feedback_names_no_exception_class_the_submission_made(graded):
    text = graded["a1_em_mixture"]["feedback"]["exception_leak"]
    assert "LEAKED" not in text and "HIDDEN" not in text
    assert "raised Exception" in text and "got an error (ArithmeticError)" in text  # the nearest built-in class
    assert "ValueError" not in text  # its own class named ValueError is not the built-in


def test_the_sandbox_shows_no_environment_of_the_grader_and_caps_its_disk(graded):
    grades = graded["a1_em_mixture"]["grades"]
    assert grades["environ_snoop"].scores["log_likelihood"] == 0
    assert grades["tmp_fill"].scores["log_likelihood"] == 0 and grades["tmp_fill"].note == ""


def test_a_decoder_that_remembers_or_looks_up_the_public_digits_earns_no_training_points(graded):
    """The trained-model checks encode held-out images (binarised afresh, so none is in the public
    digits set) in one request, and decode codes drawn by the grader, shuffled among codes from the
    prior, in another: a decoder that gives back what the encoder saw, or the public digit it looked
    up, earns nothing that the same untrained submission does not."""
    grades = graded["a2_vae_digits"]["grades"]
    baseline = grades["untrained"].scores
    assert baseline["training"] == 0
    for student in ("memorising_decoder", "lookup_table"):
        assert grades[student].scores["training"] == 0, grades[student].report()
        assert grades[student].total <= sum(baseline.values()), grades[student].report()


def test_patched_sympy_printing_gains_nothing(graded):
    """The unevaluated integral and the unexpanded log-ratio score the same with sympy's printing
    patched as without: the form is checked by evaluating, never by printing."""
    grades = graded["a3_gaussian_kl"]["grades"]
    patched, plain = grades["patched_printing"], grades["unevaluated"]
    assert all(patched.scores[q] <= plain.scores[q] for q in plain.scores), (patched.report(), plain.report())
    assert plain.scores["kl"] < 3 and plain.scores["log_ratio"] < 2


MALFORMED = {
    "bad_types": '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "source": 5}]}',
    "not_cells": '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": "x = 1"}',
    "deep": "[" * 100_000 + "]" * 100_000,
    "binary": b"\xff\xfe\x00\x01 not a notebook",
}


@pytest.fixture(scope="module")
def malformed(released, tmp_path_factory):
    """One grading run of a correct notebook among files that are not notebooks in every way we know
    of, with odd names and a stray file where the feedback folder goes."""
    import os

    import nbformat

    folder = tmp_path_factory.mktemp("malformed")
    correct = nbformat.read(released / "a1_em_mixture" / "autograder" / "a1_em_mixture.ipynb", as_version=4)
    nbformat.write(correct, folder / "correct.ipynb")
    for name, text in MALFORMED.items():
        (folder / f"{name}.ipynb").write_bytes(text if isinstance(text, bytes) else text.encode())
    with open(folder / "sparse.ipynb", "wb") as f:
        f.truncate(64 * 2**30)  # 64 GiB, none of it on disk
    os.mkfifo(folder / "pipe.ipynb")
    (folder / "dir.ipynb").mkdir()
    (folder / "link.ipynb").symlink_to("/etc/shadow")
    tiny = nbformat.v4.new_notebook()
    tiny.cells = [nbformat.v4.new_code_cell("x = 1")]
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.ipynb"), "w") as f:  # a name that is not UTF-8
        nbformat.write(tiny, f)
    nbformat.write(tiny, folder / "Jos\u00e9.ipynb")  # NFC
    nbformat.write(tiny, folder / "Jose\u0301.ipynb")  # NFD: the same name to a reader
    (folder / "feedback").write_text("a stray file where the feedback folder goes")
    grades = classroom.grade(folder, released, "a1_em_mixture", timeout=30, total_timeout=120, jobs=2)
    with open(folder / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    return {"folder": folder, "grades": grades, "rows": rows}


def test_malformed_files_cost_only_their_own_row(malformed):
    rows = malformed["rows"]
    assert rows["correct"]["total"] == "12" and rows["correct"]["note"] == ""
    for name in [*MALFORMED, "sparse", "pipe", "dir", "link"]:
        assert rows[name]["total"] == "0" and rows[name]["note"].startswith("not a readable notebook"), rows[name]
    assert rows["caf\\xe9.ipynb"]["note"] == "not graded: the file name cannot name a student"
    assert len(rows) == 1 + len(MALFORMED) + 4 + 2  # José in two Unicode forms: one row
    assert rows["Jos\u00e9"]["note"].startswith("not graded: 2 files have this name")


def test_the_feedback_goes_beside_a_stray_file_and_every_row_has_its_file(malformed):
    folder = malformed["folder"]
    assert (folder / "feedback").read_text().startswith("a stray file")
    written = sorted(p.stem for p in (folder / "feedback-2").glob("*.txt"))
    assert "correct" in written and (folder / "feedback-2" / "correct.txt").read_text().startswith("correct: 12 / 12")
