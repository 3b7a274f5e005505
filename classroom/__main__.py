"""The command line: ``python -m classroom release|grade ...`` (see ``classroom/__init__.py``)."""

import argparse

import classroom
from classroom.release import DEFAULT_RELEASE, MASTERS, release


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m classroom", description=classroom.__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rel = commands.add_parser("release", help="build the student notebooks and release the checks")
    rel.add_argument("names", nargs="*", metavar="NAME", help="assignments to release (default: all)")
    rel.add_argument("--masters", default=MASTERS, help="folder of master notebooks and their checks")
    rel.add_argument("--out", default=DEFAULT_RELEASE, help="output folder (default: _build/classroom)")
    rel.add_argument("--website", action="store_true", help="also refresh the downloads in book/assignments/")
    gra = commands.add_parser("grade", help="grade a folder of submitted notebooks offline")
    gra.add_argument("submissions", help="folder of submitted notebooks, one STUDENT.ipynb each")
    gra.add_argument("--assignment", required=True, help="the assignment's name, e.g. a1_em_mixture")
    gra.add_argument(
        "--release", default=DEFAULT_RELEASE, help="the folder `release` wrote (default: _build/classroom)"
    )
    gra.add_argument("--timeout", type=float, default=120.0, help="seconds one cell may run (default: 120)")
    gra.add_argument("--total-timeout", type=float, help="seconds one submission may run (default: 10 * TIMEOUT + 60)")
    gra.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default: 1)")
    gra.add_argument("--out", help="CSV to write, with a feedback folder beside it (default: SUBMISSIONS/grades.csv)")
    args = parser.parse_args(argv)
    if args.command == "release":
        for name, folder in release(args.out, args.names, args.website, args.masters).items():
            print(f"{name}: hand out {folder / 'student' / (name + '.ipynb')}")
    else:
        grades = classroom.grade(
            args.submissions, args.release, args.assignment, args.timeout, args.total_timeout, args.jobs, args.out
        )
        for g in grades:
            print(f"{g.student}: {g.total:g} / {sum(g.possible.values()):g}" + (f"  ({g.note})" if g.note else ""))


if __name__ == "__main__":
    main()
