"""The classroom assignments: each releases, its solutions earn every point, its handout none,
submissions that break lose only what they break, and the student notebooks hide the solutions."""

import ast
import copy
import json
import re
import shutil

import nbformat
import pytest
from conftest import LIMITS

otter = pytest.importorskip(
    "otter", reason="the classroom tests need otter-grader: pip install -r requirements-classroom.txt"
)

import classroom
from classroom.grading import load_checks, possible_points

NAMES = classroom.assignment_names()


def checks(name):
    return load_checks(classroom.MASTERS / f"{name}_checks.py").CHECKS


@pytest.mark.parametrize("name", NAMES)
def test_the_master_solutions_earn_every_point(graded, name):
    correct = graded[name]["grades"]["correct"]
    assert correct.scores == correct.possible and correct.note == "" and correct.errors == [], correct.report()
    assert sum(correct.possible.values()) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_the_handout_run_as_handed_out_earns_nothing(graded, name):
    empty = graded[name]["grades"]["empty"]
    assert list(empty.scores) == classroom.questions(classroom.MASTERS / f"{name}.ipynb")
    assert all(score == 0 for score in empty.scores.values()) and empty.note == ""


def test_a_broken_submission_loses_only_the_questions_it_breaks(graded):
    rows = graded["a1_em_mixture"]["rows"]
    columns = ["log_likelihood", "e_step", "m_step", "run_em", "clusters", "total"]
    expected = {
        "correct": [2, 3, 3, 2, 2, 12],
        "empty": [0, 0, 0, 0, 0, 0],
        "raises": [2, 0, 3, 0, 0, 5],  # e_step is never defined; run_em and the fit need it
        "loops": [2, 3, 3, 2, 0, 10],  # the fitting cell hits the time limit
        "deleted": [2, 3, 0, 0, 0, 5],  # no m_step; run_em and the fit need it
        "always_busy": [0, 0, 0, 0, 0, 0],  # swallows every time-out: stopped as a whole
    }
    assert {s: [float(rows[s][c]) for c in columns] for s in expected} == expected, rows
    grades = graded["a1_em_mixture"]["grades"]
    assert rows["loops"]["note"] == "" and "raised KeyboardInterrupt" in " ".join(grades["loops"].errors)
    total = LIMITS["a1_em_mixture"]["total_timeout"]
    assert rows["always_busy"]["note"] == f"stopped after {total} s in all; no score"


def test_a_known_mistake_passes_the_public_checks_but_not_the_hidden_ones(graded):
    """The printed KL with +log(sigma^2): zero at the prior and right for sigma = 1, wrong elsewhere."""
    wrong = graded["a3_gaussian_kl"]["grades"]["wrong_sign"]
    assert wrong.scores == {"densities": 2, "log_ratio": 2, "kl": 1, "kl_logvar": 1}
    assert "wrong sign" in wrong.feedback["kl"] and "2.1945" in wrong.feedback["kl_logvar"]


def test_each_known_slip_of_the_iwae_assignment_costs_its_own_check(graded):
    """Assignment 4: exponentiating the log-weights before averaging them (right for moderate
    log-weights, inf or -inf far from 0), beta on the reconstruction term instead of the rate (right
    at beta = 1), and the amortisation gap with the wrong sign each lose the graded check that names
    them and nothing else; the first two pass the public checks."""
    a4 = graded["a4_iwae_beta"]
    full = {"beta_vae": 4, "log_mean_exp": 3, "log_weights": 3, "iwae_bound": 3, "gaps": 2}
    naive, wrong = a4["grades"]["naive_exp"], a4["grades"]["wrong_terms"]
    assert naive.scores == {**full, "log_mean_exp": 2} and naive.note == "", naive.report()
    assert wrong.scores == {**full, "beta_vae": 3, "gaps": 1} and wrong.note == "", wrong.report()
    naive_feedback, wrong_feedback = a4["feedback"]["naive_exp"], a4["feedback"]["wrong_terms"]
    assert "check no overflow" in naive_feedback and "expected finite values for log-weights" in naive_feedback
    assert "check beta weighs the rate" in wrong_feedback and "check amortisation" in wrong_feedback
    assert "check approximation" not in wrong_feedback and "check the honest choice" not in wrong_feedback


def test_the_loss_doctor_names_a_flipped_kl_in_the_feedback(graded):
    """Assignment 2's feedback runs vae.diagnose_loss on the student's elbo: silent on a correct one,
    naming the sign of the KL when the KL is added, for no points either way."""
    a2 = graded["a2_vae_digits"]
    assert "loss doctor" not in a2["feedback"]["correct"]
    assert "check loss doctor" in a2["feedback"]["kl_sign"] and "kl-sign" in a2["feedback"]["kl_sign"]
    assert a2["grades"]["kl_sign"].scores["elbo"] == 1  # the flat decoder's KL is 0; the known terms fail


def test_feedback_says_what_was_expected_and_what_came_back(graded):
    feedback = graded["a1_em_mixture"]["feedback"]
    raises = feedback["raises"]
    assert raises.startswith("raises: 5 / 12 points")
    assert re.search(r"code cell \d+ \(\d+ lines\) raised AttributeError\n", raises)
    assert "lgosumexp" not in raises  # no text of the submission, its code included
    assert "1 / (1 + exp(-2)), about 0.8808" in raises and "(got an error (NameError))" in raises
    assert feedback["correct"].startswith("correct: 12 / 12 points")
    wrong = graded["a3_gaussian_kl"]["feedback"]["wrong_sign"]
    assert re.search(r"expected an array of shape \(5,\): \[[-0-9.e, ]+\], got an array of shape \(5,\)", wrong)


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def solution_snippets(master):
    """Code that otter must remove: lines in BEGIN/END SOLUTION blocks and the right-hand sides of
    lines marked # SOLUTION, leaving out code that the master also shows outside its solutions."""
    snippets, visible, inside = set(), set(), False
    for cell in master.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            text = line.strip()
            if text == "# BEGIN SOLUTION":
                inside = True
            elif text == "# END SOLUTION":
                inside = False
            elif text.endswith("# SOLUTION"):
                snippets.add(text.removesuffix("# SOLUTION").split("=", 1)[-1].strip())
            elif inside:
                snippets.add(text)
            else:
                visible.add(text)
    return {s for s in snippets - visible if len(s) >= 8}


@pytest.mark.parametrize("name", NAMES)
def test_no_solution_text_in_the_student_notebook(released, name):
    master = nbformat.read(classroom.MASTERS / f"{name}.ipynb", as_version=4)
    student = "\n".join(_strings(json.loads((released / name / "student" / f"{name}.ipynb").read_text())))
    snippets = solution_snippets(master)
    assert len(snippets) >= 4
    assert [s for s in snippets if s in student] == []
    assert "SOLUTION" not in student and "_checks" not in student


@pytest.mark.parametrize("name", NAMES)
def test_the_release_holds_the_checks_and_no_otter_autograder(released, name):
    files = sorted(p.name for p in (released / name / "autograder").iterdir())
    assert "checks.py" in files and not [f for f in files if f.endswith(".zip")], files


@pytest.mark.parametrize("name", NAMES)
def test_each_question_states_the_points_the_checks_give(name):
    master = nbformat.read(classroom.MASTERS / f"{name}.ipynb", as_version=4)
    stated = {}
    for begin, heading in zip(master.cells, master.cells[1:]):
        if "# BEGIN QUESTION" in begin.source:
            question = re.search(r"name: (\w+)", begin.source).group(1)
            stated[question] = float(re.search(r"\((\d+) points\)", heading.source).group(1))
    assert stated == possible_points(checks(name))


@pytest.mark.parametrize("name", NAMES)
def test_every_question_has_self_checks_and_graded_checks_that_say_what_was_expected(released, name):
    student = nbformat.read(released / name / "student" / f"{name}.ipynb", as_version=4)
    public = {key.removesuffix(".py") for key in student.metadata["otter"]["tests"]}
    assert public == set(classroom.questions(classroom.MASTERS / f"{name}.ipynb"))
    graded_checks = checks(name)
    assert {c.question for c in graded_checks} == public
    assert all(len(c.message) > 40 for c in graded_checks)
    assert len({(c.question, c.name) for c in graded_checks}) == len(graded_checks)


def same_tests(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with the public tests that otter writes into its metadata parsed: otter prints them with
    ``ast.unparse``, whose spelling varies between Python versions ("a, b = f()" or "(a, b) = f()")."""
    nb = copy.deepcopy(nb)
    tests = nb.metadata.get("otter", {}).get("tests", {})
    for key, code in tests.items():
        tests[key] = ast.dump(ast.parse(code))
    return nb


@pytest.mark.parametrize("name", NAMES)
def test_the_website_offers_the_current_student_notebook(released, name):
    fresh = classroom.website_copy(released / name / "student" / f"{name}.ipynb")
    offered = nbformat.read(classroom.WEBSITE / f"{name}.ipynb", as_version=4)
    assert same_tests(offered) == same_tests(fresh), (
        f"book/assignments/{name}.ipynb is stale: run python -m classroom release --website"
    )
    assert (
        f"{{download}}`{name}.ipynb <assignments/{name}.ipynb>`"
        in (classroom.WEBSITE.parent / "instructors.md").read_text()
    )


def test_release_fails_when_a_master_solution_fails_its_checks(tmp_path):
    """The KL with the wrong sign of log(sigma^2) passes the public self-checks, not the graded ones."""
    masters = tmp_path / "masters"
    masters.mkdir()
    master = nbformat.read(classroom.MASTERS / "a3_gaussian_kl.ipynb", as_version=4)
    (cell,) = [c for c in master.cells if c.source.startswith("kl = ")]
    cell.source = "kl = (mu**2 + sigma**2 + sp.log(sigma**2) - 1) / 2  # SOLUTION\nkl"
    nbformat.write(master, masters / "a3_gaussian_kl.ipynb")
    shutil.copy(classroom.MASTERS / "a3_gaussian_kl_checks.py", masters)
    with pytest.raises(RuntimeError, match="the solutions of a3_gaussian_kl fail their checks"):
        classroom.release(tmp_path / "out", masters=masters)


def test_grading_rejects_bad_arguments(released, tmp_path):
    with pytest.raises(ValueError, match="no released assignment named 'a9'"):
        classroom.grade(tmp_path, released, "a9")
    with pytest.raises(ValueError, match="no released assignment named '../a1'"):
        classroom.grade(tmp_path, released, "../a1")
    with pytest.raises(FileNotFoundError, match="no submitted notebooks"):
        classroom.grade(tmp_path, released, "a1_em_mixture")
    with pytest.raises(ValueError, match="timeout must be a finite positive number"):
        classroom.grade(tmp_path, released, "a1_em_mixture", timeout=0)


def test_the_classroom_extra_pins_exact_versions_that_agree_with_the_book():
    root = classroom.MASTERS.parents[1]

    def pins(path):
        lines = [line for line in (root / path).read_text().splitlines() if line and line[0] not in "#-"]
        assert all("==" in line for line in lines), path
        return dict(line.lower().replace("_", "-").split("==") for line in lines)

    extra, book = pins("requirements-classroom.txt"), pins("requirements.txt")
    assert (root / "requirements-classroom.txt").read_text().count("-r requirements.txt\n") == 1
    assert extra["otter-grader"] == otter.__version__
    assert {p: v for p, v in extra.items() if book.get(p, v) != v} == {}
