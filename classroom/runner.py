"""Runs inside the sandbox: one submission, then the checker's probe cells, in one notebook kernel.

Usage: ``python runner.py NOTEBOOK CELL_SECONDS < probe.json``, where probe.json is a JSON list of
the probe cells' sources (read before any of the submission runs). Each cell may run for
CELL_SECONDS; a cell over time is interrupted and the run goes on. Writes ``cells.json`` beside the
notebook: for each cell of the submission, the name of the exception it raised, or null.
Nothing here is trusted: the grader validates everything this writes.
"""

import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main() -> None:
    notebook, seconds = Path(sys.argv[1]), float(sys.argv[2])
    probe = json.load(sys.stdin)
    nb = nbformat.read(notebook, as_version=4)
    submitted = len(nb.cells)
    nb.cells += [nbformat.v4.new_code_cell(source) for source in probe]
    client = NotebookClient(
        nb,
        timeout=seconds,
        interrupt_on_timeout=True,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    try:
        client.execute()
    finally:
        errors = [
            next((out.get("ename") for out in cell.get("outputs", []) if out.get("output_type") == "error"), None)
            for cell in nb.cells[:submitted]
        ]
        (notebook.parent / "cells.json").write_text(json.dumps(errors))


if __name__ == "__main__":
    main()
