"""The classroom assignments: each releases, its solutions pass its checks, its handout fails them,
and grading a folder of submissions is offline, robust and bounded in time."""

import ast
import copy
import csv
import json
import re
import time

import nbformat
import pytest

otter = pytest.importorskip(
    "otter", reason="the classroom tests need otter-grader: pip install -r requirements-classroom.txt"
)

from vae import classroom

NAMES = classroom.assignment_names()
CELL_TIMEOUT = 20  # seconds one cell may run while these tests grade
TOTAL_TIMEOUT = 60  # seconds one submission may run while these tests grade


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """All assignments released once; otter assign fails if a master's solutions fail a check."""
    out = tmp_path_factory.mktemp("release")
    classroom.release(out)
    return out


def solutions(released, name):
    return nbformat.read(released / name / "autograder" / f"{name}.ipynb", as_version=4)


def handout(released, name):
    return nbformat.read(released / name / "student" / f"{name}.ipynb", as_version=4)


def edit(nb, starts_with, new_source):
    """Replace the source of the one cell that starts with ``starts_with``; delete it if None."""
    (i,) = [i for i, c in enumerate(nb.cells) if c.source.startswith(starts_with)]
    if new_source is None:
        del nb.cells[i]
    else:
        nb.cells[i].source = new_source(nb.cells[i].source)
    return nb


def submissions(released, name):
    """Submitted notebooks by student: a correct one, the untouched handout, and for some assignments
    ones that raise, loop, lack a cell, ignore the time limit, or carry a known mistake."""
    subs = {"correct": solutions(released, name), "empty": handout(released, name)}
    if name == "a1_em_mixture":
        subs["raises"] = edit(solutions(released, name), "def e_step", lambda s: "scale = np.lgosumexp(0)\n" + s)
        subs["loops"] = edit(
            solutions(released, name), "weights_hat, means_hat", lambda s: "while True:\n    pass\n" + s
        )
        subs["deleted"] = edit(solutions(released, name), "def m_step", None)
        busy = "import time\nwhile True:\n    try:\n        time.sleep(100)\n    except BaseException:\n        pass\n"
        subs["always_busy"] = edit(solutions(released, name), "def log_likelihood", lambda s: busy + s)
    if name == "a3_gaussian_kl":
        wrong_sign = "kl = (mu**2 + sigma**2 + sp.log(sigma**2) - 1) / 2\nkl"
        subs["wrong_sign"] = edit(solutions(released, name), "kl = ", lambda s: wrong_sign)
    return subs


@pytest.fixture(scope="module")
def graded(released, tmp_path_factory):
    """For each assignment: its grades by student, the CSV rows, the folder and the grading time."""
    results = {}
    for name in NAMES:
        folder = tmp_path_factory.mktemp(f"submitted-{name}")
        for student, nb in submissions(released, name).items():
            nbformat.write(nb, folder / f"{student}.ipynb")
        started, start = time.time(), time.monotonic()
        grades = classroom.grade(
            folder, name, released, timeout=CELL_TIMEOUT, total_timeout=TOTAL_TIMEOUT, jobs=2, out=folder / "grades.csv"
        )
        elapsed = time.monotonic() - start
        with open(folder / "grades.csv", newline="") as f:
            rows = {row["student"]: row for row in csv.DictReader(f)}
        results[name] = {
            "grades": {g.student: g for g in grades},
            "rows": rows,
            "folder": folder,
            "elapsed": elapsed,
            "started": started,
        }
    return results


@pytest.mark.parametrize("name", NAMES)
def test_the_master_solutions_pass_every_check(graded, name):
    correct = graded[name]["grades"]["correct"]
    assert correct.scores == correct.possible and correct.note == "" and correct.errors == [], correct.report()
    assert sum(correct.possible.values()) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_the_handout_run_as_handed_out_fails_every_question(graded, name):
    empty = graded[name]["grades"]["empty"]
    assert set(empty.scores) == set(classroom.questions(name))
    assert all(score == 0 for score in empty.scores.values())


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
    assert {s: [float(rows[s][c]) for c in columns] for s in rows} == expected, rows
    assert rows["loops"]["note"] == "" and "TimeoutError" in " ".join(graded["a1_em_mixture"]["grades"]["loops"].errors)
    assert rows["always_busy"]["note"] == f"stopped after {TOTAL_TIMEOUT} s in all; no score"


def test_grading_is_bounded_by_the_time_limits(graded):
    """Six submissions on two workers, each stopped after TOTAL_TIMEOUT at the latest, and no
    notebook kernel outlives its submission."""
    import psutil

    assert graded["a1_em_mixture"]["elapsed"] < 3 * TOTAL_TIMEOUT + 30
    started = min(g["started"] for g in graded.values())
    kernels = [
        p
        for p in psutil.process_iter(["cmdline", "create_time", "cwd"])
        if "ipykernel_launcher" in " ".join(p.info["cmdline"] or []) and p.info["create_time"] >= started
    ]
    assert [p.pid for p in kernels if str(p.info["cwd"]).endswith("autograder/submission")] == []  # where otter runs


def test_a_known_mistake_passes_the_public_checks_but_not_the_hidden_ones(graded):
    """The printed KL with +log(sigma^2): zero at the prior and right for sigma = 1, wrong elsewhere."""
    wrong = graded["a3_gaussian_kl"]["grades"]["wrong_sign"]
    assert wrong.scores == {"densities": 2, "log_ratio": 2, "kl": 1, "kl_logvar": 1}
    assert "wrong sign" in wrong.feedback["kl"] and "2.1945" in wrong.feedback["kl_logvar"]


def test_feedback_says_what_was_expected(graded):
    folder = graded["a1_em_mixture"]["folder"]
    raises = (folder / "feedback" / "raises.txt").read_text()
    assert raises.startswith("raises: 5 / 12 points")
    assert "AttributeError: module 'numpy' has no attribute 'lgosumexp'" in raises
    assert "1 / (1 + exp(-2)), about 0.8808" in raises
    assert (folder / "feedback" / "correct.txt").read_text().startswith("correct: 12 / 12 points")


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
    assert "SOLUTION" not in student and "hidden=True" not in student
    hidden_tests = [
        re.search(r"^def (\w+)", c.source, re.MULTILINE).group(1) for c in master.cells if "hidden: true" in c.source
    ]
    assert hidden_tests and [t for t in hidden_tests if t in student] == []


@pytest.mark.parametrize("name", NAMES)
def test_each_question_states_the_points_the_autograder_gives(released, name):
    master = nbformat.read(classroom.MASTERS / f"{name}.ipynb", as_version=4)
    stated = {}
    for begin, heading in zip(master.cells, master.cells[1:]):
        if "# BEGIN QUESTION" in begin.source:
            question = re.search(r"name: (\w+)", begin.source).group(1)
            stated[question] = float(re.search(r"\((\d+) points\)", heading.source).group(1))
    assert stated == classroom.question_points(classroom.autograder_zip(released, name))


@pytest.mark.parametrize("name", NAMES)
def test_every_question_has_public_and_hidden_checks_that_say_what_was_expected(released, name):
    import zipfile

    from otter.test_files import ExceptionTestFile

    with zipfile.ZipFile(classroom.autograder_zip(released, name)) as zf:
        tests = [ExceptionTestFile.from_string(zf.read(n).decode()) for n in zf.namelist() if n.startswith("tests/")]
    assert sorted(t.name for t in tests) == sorted(classroom.questions(name))
    for t in tests:
        assert {case.hidden for case in t.test_cases} == {False, True}, t.name
        assert all(len(case.failure_message or "") > 40 for case in t.test_cases), t.name


def same_tests(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with the hidden tests that otter writes into its metadata parsed: otter prints them with
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
    assert same_tests(offered) == same_tests(fresh), f"book/assignments/{name}.ipynb is stale: run python -m vae.classroom release --website"
    assert (
        f"{{download}}`{name}.ipynb <assignments/{name}.ipynb>`"
        in (classroom.ROOT / "book" / "instructors.md").read_text()
    )


def test_release_fails_when_a_master_solution_fails_its_checks(tmp_path, monkeypatch):
    master = nbformat.read(classroom.MASTERS / "a3_gaussian_kl.ipynb", as_version=4)
    edit(master, "kl = ", lambda s: s.replace("kl = sp.simplify", "kl = -sp.simplify"))  # a KL below zero
    monkeypatch.setattr(classroom, "MASTERS", tmp_path / "masters")
    (tmp_path / "masters").mkdir()
    nbformat.write(master, tmp_path / "masters" / "a3_gaussian_kl.ipynb")
    with pytest.raises(RuntimeError, match="otter assign failed for a3_gaussian_kl"):
        classroom.release(tmp_path / "out")


def test_grading_rejects_bad_arguments(released, tmp_path):
    with pytest.raises(ValueError, match="no assignment named 'a9'"):
        classroom.grade(tmp_path, "a9", released)
    with pytest.raises(FileNotFoundError, match="no submitted notebooks"):
        classroom.grade(tmp_path, "a1_em_mixture", released)
    with pytest.raises(ValueError, match="timeout must be a finite positive number"):
        classroom.grade(tmp_path, "a1_em_mixture", released, timeout=0)


def test_the_classroom_extra_pins_exact_versions_that_agree_with_the_book():
    def pins(path):
        lines = [line for line in (classroom.ROOT / path).read_text().splitlines() if line and line[0] not in "#-"]
        assert all("==" in line for line in lines), path
        return dict(line.lower().replace("_", "-").split("==") for line in lines)

    extra, book = pins("requirements-classroom.txt"), pins("requirements.txt")
    assert (classroom.ROOT / "requirements-classroom.txt").read_text().count("-r requirements.txt\n") == 1
    assert extra["otter-grader"] == otter.__version__
    assert {p: v for p, v in extra.items() if book.get(p, v) != v} == {}
