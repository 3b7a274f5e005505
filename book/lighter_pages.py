"""A Sphinx extension that leaves out of the built site the parts of MathJax the book never loads.

sphinx-mathjax-offline copies all of MathJax 3 (24 MB) into ``_static/mathjax``. Pages load only
``tex-chtml.js``, which fetches the TeX extensions it autoloads (``input/tex/extensions``), the
CommonHTML fonts (``output/chtml/fonts``), and on a reader's request the menu's accessibility parts
(``ui``, ``a11y``, ``sre``). Everything else (the SVG and MathML variants, the Node.js entry
points) is deleted from the output once the build has finished. The browser test of the site
reports any file a page asks for and does not find.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx

MATHJAX_KEEP = {"tex-chtml.js", "input", "output", "ui", "a11y", "sre"}
MATHJAX_OUTPUT_KEEP = {"chtml"}


def _prune_mathjax(app: Sphinx, exception: Exception | None) -> None:
    mathjax = Path(app.outdir) / "_static" / "mathjax"
    if exception is not None or app.builder.format != "html" or not mathjax.is_dir():
        return
    for path in [*mathjax.iterdir(), *(mathjax / "output").iterdir()]:
        keep = MATHJAX_OUTPUT_KEEP if path.parent.name == "output" else MATHJAX_KEEP
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def setup(app: Sphinx) -> dict[str, bool]:
    app.connect("build-finished", _prune_mathjax, priority=900)  # after sphinx-mathjax-offline copies it
    return {"parallel_read_safe": True, "parallel_write_safe": True}
