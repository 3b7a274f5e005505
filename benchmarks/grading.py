"""Grading under load: the master solutions graded many times while other work keeps every core busy.

Each assignment is released once into a temporary folder; a folder of ``--copies`` copies of its
master solution is graded with ``--jobs`` at a time while ``--busy`` CPU-bound processes run
beside the grader (start a book build in another terminal for more). It reports, per assignment,
the scores (every copy must get full marks) and the wall time of the grading run.

    python benchmarks/grading.py [--copies 20] [--jobs 2] [--busy 2] [--assignment a1_em_mixture ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # classroom/ lives beside vae/, not installed
import classroom  # noqa: E402


def spin(_: int) -> None:
    """Keep one core busy until terminated."""
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--busy", type=int, default=2)
    parser.add_argument("--assignment", nargs="*", default=classroom.assignment_names())
    args = parser.parse_args()

    busy = [multiprocessing.Process(target=spin, args=(i,), daemon=True) for i in range(args.busy)]
    for process in busy:
        process.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            release = Path(tmp) / "release"
            classroom.release(release, verify=False)
            print(f"{args.copies} copies of each master solution, {args.jobs} graded at a time, "
                  f"{args.busy} CPU-bound processes beside the grader")
            print(f"{'assignment':16s} {'full marks':>10s} {'scores':>14s} {'wall s':>7s}")
            for name in args.assignment:
                folder = Path(tmp) / f"submitted-{name}"
                folder.mkdir()
                master = release / name / "autograder" / f"{name}.ipynb"
                for i in range(args.copies):
                    shutil.copy(master, folder / f"student{i:02d}.ipynb")
                start = time.perf_counter()
                grades = classroom.grade(folder, release, name, jobs=args.jobs)
                wall = time.perf_counter() - start
                possible = sum(grades[0].possible.values())
                scores = sorted(g.total for g in grades)
                full = sum(score == possible for score in scores)
                print(f"{name:16s} {full:>4d} of {len(grades):<3d} {scores[0]:6.1f}..{scores[-1]:<6.1f} {wall:7.1f}"
                      f"   (full marks: {possible:g})")
    finally:
        for process in busy:
            process.terminate()


if __name__ == "__main__":
    main()
