"""Every number the prose quotes from a computation is glued from it, never typed by hand.

A chapter's prose may quote what its code printed only through ``{glue:text}`` (see
:func:`vae.glue`), so that text and output cannot disagree. This test reads the chapters as the
build executed them and flags any number in a markdown cell that equals a number the chapter's
code printed but did not contain: a result, typed by hand.

What counts: numbers with a decimal point (``97.64``, ``0.09``, ``3e-9``) and percentages
(``81%``), in running prose, solutions included. Not checked: math (``$...$``, equations), code
spans and blocks, MyST roles and labels, and the exercises' statements (which set inputs).

Solutions are held to a stricter rule, since a reader cannot see which of their numbers a cell
printed: every number in a solution's prose must be glued or be an input that the chapter's code
contains. A solution that quotes results therefore runs in the build (sphinx-exercise's gated
``{solution-start}`` ... ``{solution-end}``, with code cells between).
A decimal matches an output if the output, rounded to as many places, equals it; a percentage
must appear as printed. Numbers that also appear in the chapter's code (a β of 0.1, a threshold of
0.01) are inputs, not results, and pass. ``ALLOWED`` lists the few true constants left.

It needs the executed notebooks, which the book build leaves in ``_build/jupyter_execute``::

    VAE_SITE=_build/html python -m pytest tests/test_prose.py -p no:nbmake -o addopts=""
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = os.environ.get("VAE_SITE")
EXECUTED = Path(SITE).resolve().parent / "jupyter_execute" / "notebooks" if SITE else None
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))

NUMBER = re.compile(r"(?<![\w.])[-−]?(?:\d+\.\d+(?:e[-−]?\d+)?|\d+e[-−]?\d+|\d+(?:\.\d+)?%)(?![\w.]?\d)")
# chapter -> prose numbers that are inputs or true constants, though the code never writes them
ALLOWED: dict[str, set[str]] = {
    "04_elbo": {"0.05"},  # the grid's spacing, 10 / 200, which a printed gap happens to equal
}

STRIP = [
    re.compile(r"^(`{3,}|:{3,})\{exercise\}.*?^\1\s*$", re.S | re.M),  # exercises' statements
    re.compile(r"^(`{3,}).*?^\1\s*$", re.S | re.M),  # code blocks and other fenced directives' code
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S),
    re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$"),  # inline math
    re.compile(r"\{[\w:-]+\}`[^`]*`"),  # roles: glue, ref, numref, eq, cite
    re.compile(r"`[^`\n]*`"),  # code spans
    re.compile(r"^\([\w-]+\)=\s*$", re.M),  # labels
    re.compile(r"^:[\w-]+:.*$", re.M),  # directive options
    re.compile(r"\]\([^)]*\)"),  # link targets
]


SOLUTION = re.compile(r"^(`{3,}|:{3,})\{solution\}.*?^\1\s*$", re.S | re.M)


def prose(markdown: str) -> str:
    markdown = SOLUTION.sub(lambda m: m.group(0).split("\n", 1)[1].rsplit("\n", 1)[0], markdown)  # its text, not its fences
    for pattern in STRIP:
        markdown = pattern.sub(" ", markdown)
    return markdown


def numbers(text: str) -> list[str]:
    return [m.replace("−", "-") for m in NUMBER.findall(text)]


def decimals(token: str) -> int:
    mantissa = token.rstrip("%").split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def output_text(cell: dict) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":  # not progress bars
            parts.append("".join(output["text"]))
        elif "text/plain" in output.get("data", {}):
            parts.append("".join(output["data"]["text/plain"]))
    return "\n".join(parts)


def typed_results(notebook: dict, allowed: set[str]) -> list[str]:
    """Numbers in the prose that equal a number the code printed but does not itself contain."""
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    output = "\n".join(output_text(c) for c in code)
    printed = numbers(output) + re.findall(r"(?<![\w.])-?\d+(?![\w.]?\d)", output)
    inputs = {float(t.rstrip("%")) for t in numbers("\n".join("".join(c["source"]) for c in code))}
    found = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for token in numbers(prose("".join(cell["source"]))):
            if token in allowed or float(token.rstrip("%")) in inputs:
                continue
            if token.endswith("%"):
                hit = token in printed
            else:
                places = decimals(token)
                hit = any(
                    not t.endswith("%") and decimals(t) >= places and round(float(t), places) == float(token)
                    for t in printed
                )
            if hit:
                found.append(token)
    return found


def solutions(notebook: dict) -> list[str]:
    """The markdown of every solution: ``{solution}`` blocks, and the cells between a gated
    ``{solution-start}`` and its ``{solution-end}``."""
    found, inside = [], False
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        found += [m.group(0) for m in SOLUTION.finditer(text)]
        if "{solution-start}" in text:
            inside = True
        if inside:
            found.append(text)
        if "{solution-end}" in text:
            inside = False
    return found


def typed_in_solutions(notebook: dict, allowed: set[str]) -> list[str]:
    """Numbers in solutions' prose that are neither glued nor inputs the chapter's code contains."""
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    inputs = {float(t.rstrip("%")) for t in numbers(code)}
    return [token for text in solutions(notebook) for token in numbers(prose(text))
            if token not in allowed and float(token.rstrip("%")) not in inputs]


def test_the_prose_filter_keeps_running_text_only():
    text = "ELBO of $-97.6$ nats, or -97.64 here; `x = 0.25`; {glue:text}`a:.2f`; 81% of cells\n$$1.5$$"
    assert numbers(prose(text)) == ["-97.64", "81%"]


def test_a_typed_result_is_found_and_a_glued_one_is_not():
    notebook = {"cells": [
        {"cell_type": "code", "source": ["beta = 0.1\nprint(f'{-97.6412:.2f}', 0.81)"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["-97.64 0.8100\n"]},
                     {"output_type": "stream", "name": "stderr", "text": ["0.3 done\n"]}]},
        {"cell_type": "markdown", "source": ["With beta 0.1 the ELBO is −97.64, about −97.6 nats; "
                                             "{glue:text}`elbo:.2f` is glued; 0.3 is not printed."]},
    ]}
    assert typed_results(notebook, set()) == ["-97.64", "-97.6"]


def test_a_number_typed_into_a_solution_is_found_in_either_syntax():
    code = {"cell_type": "code", "source": ["k = 0.5\nprint(1.25)"], "outputs": []}
    legacy = {"cell_type": "markdown", "source": ["````{solution} ex-a\n:class: dropdown\nWith k = 0.5 it "
                                                  "gives about 1.3, or 40%.\n```python\nx = 2.5\n```\n````\n"]}
    gated = [{"cell_type": "markdown", "source": ["````{solution-start} ex-b\n:class: dropdown\n````"]},
             {"cell_type": "markdown", "source": ["It gives {glue:text}`b:.2f`, not 7.25."]},
             {"cell_type": "markdown", "source": ["````{solution-end}\n````"]},
             {"cell_type": "markdown", "source": ["Outside a solution 9.5 is not this test's business."]}]
    assert typed_in_solutions({"cells": [code, legacy, *gated]}, set()) == ["1.3", "40%", "7.25"]


@pytest.mark.skipif(not SITE, reason="set VAE_SITE to a built site, e.g. VAE_SITE=_build/html")
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_book_chapter_quotes_computed_numbers_only_through_glue(chapter):
    notebook = json.loads((EXECUTED / f"{chapter}.ipynb").read_text())
    typed = typed_results(notebook, ALLOWED.get(chapter, set()))
    assert typed == [], f"{chapter}: numbers typed by hand that the code computes; glue them: {typed}"
    in_solutions = typed_in_solutions(notebook, ALLOWED.get(chapter, set()))
    assert in_solutions == [], f"{chapter}: numbers in solutions that no code computes; run and glue them: {in_solutions}"
