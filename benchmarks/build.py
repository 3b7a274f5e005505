"""Book build time: each chapter executed from scratch, then the whole forced build.

Each notebook in the table of contents is run top to bottom in a fresh kernel (as the build does,
with nbclient), and its wall time reported. Then ``jupyter-book build`` runs into an empty temporary
folder, so no execution cache exists and every notebook is executed again.

    python benchmarks/build.py [--no-build]

The results are printed and written, as the table and summary that the benchmarks page includes,
to ``book/_data/build_times.md`` (``--out`` to write elsewhere): the page shows what the script
measured, never a hand-copied number. With ``--no-build`` the forced build's row is left out.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "_data" / "build_times.md"


def chapters() -> list[Path]:
    """The notebooks of the table of contents, in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [ROOT / c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [f.with_suffix(".ipynb") for f in files if f.with_suffix(".ipynb").exists()]


def execute(path: Path) -> float:
    """Seconds to run every cell of ``path`` in a new kernel, in the notebook's own folder."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def report(times: dict[str, float], build: float | None) -> str:
    """The Markdown the benchmarks page includes: a sentence on the machine, the table of seconds per
    notebook (and for the forced build), and a summary computed from the same numbers."""
    total = sum(times.values())
    slowest = max(times, key=times.get)
    machine = f"{os.cpu_count()} CPU cores ({platform.machine()}), Python {sys.version.split()[0]}"
    if hasattr(os, "getloadavg"):  # a busy machine slows every notebook down: say how busy it was
        machine += f", load average {os.getloadavg()[1]:.1f} over the last 5 minutes"
    lines = [
        f"Measured on {datetime.date.today().isoformat()} by `python benchmarks/build.py`, on {machine}:",
        "",
        "| notebook | seconds |",
        "| --- | ---: |",
        *(f"| `{name}` | {seconds:.1f} |" for name, seconds in times.items()),
        f"| **all {len(times)} notebooks** | {total:.1f} |",
    ]
    if build is not None:
        lines.append(f"| **forced book build** (`jupyter-book build` into an empty folder) | {build:.1f} |")
    lines += [
        "",
        f"The slowest chapter, `{slowest}`, runs in {times[slowest]:.1f} seconds; all {len(times)} take "
        f"{total:.0f} seconds together"
        + (f", and the forced build of the whole site {build:.0f} seconds." if build is not None else "."),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-build", action="store_true", help="time the notebooks only, not the book build")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write the page's table (default: {OUT})")
    args = parser.parse_args()

    print(f"{os.cpu_count()} CPU cores, Python {sys.version.split()[0]}")
    print(f"{'notebook':44s} {'seconds':>8s}")
    times: dict[str, float] = {}
    for path in chapters():
        name = path.relative_to(ROOT).as_posix()
        times[name] = execute(path)
        print(f"{name:44s} {times[name]:8.1f}", flush=True)
    print(f"{'all notebooks':44s} {sum(times.values()):8.1f}")

    build = None
    if not args.no_build:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run(["jupyter-book", "build", str(ROOT), "--path-output", out, "-W", "-n", "--keep-going", "-q"],
                           check=True, stdout=subprocess.DEVNULL)
            build = time.perf_counter() - start
            print(f"{'forced book build (jupyter-book build)':44s} {build:8.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(times, build))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
