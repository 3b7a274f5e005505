"""Book build time: each chapter executed from scratch, then the whole forced build.

Each notebook in the table of contents is run top to bottom in a fresh kernel (as the build does,
with nbclient), and its wall time reported. Then ``jupyter-book build`` runs into an empty temporary
folder, so no execution cache exists and every notebook is executed again.

    python benchmarks/build.py [--no-build]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-build", action="store_true", help="time the notebooks only, not the book build")
    args = parser.parse_args()

    print(f"{os.cpu_count()} CPU cores, Python {sys.version.split()[0]}")
    print(f"{'notebook':44s} {'seconds':>8s}")
    total = 0.0
    for path in chapters():
        seconds = execute(path)
        total += seconds
        print(f"{path.relative_to(ROOT).as_posix():44s} {seconds:8.1f}", flush=True)
    print(f"{'all notebooks':44s} {total:8.1f}")

    if not args.no_build:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run(["jupyter-book", "build", str(ROOT), "--path-output", out, "-W", "-n", "--keep-going", "-q"],
                           check=True, stdout=subprocess.DEVNULL)
            print(f"{'forced book build (jupyter-book build)':44s} {time.perf_counter() - start:8.1f}")


if __name__ == "__main__":
    main()
