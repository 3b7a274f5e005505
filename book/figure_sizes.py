"""A Sphinx extension: figures whose notebook output states their size get ``width`` and ``height``
HTML attributes instead of a fixed CSS size.

The book's figures (``vae.use_book_style``) tell the notebook how large to show them. Sphinx would
write that as ``style="width: …px; height: …px"``, which fixes the height when the column is
narrower than the figure (a phone) and so squashes it. As attributes, the browser reserves the right
space before the image arrives (the page does not jump while it loads) and ``book.css`` lets the
image shrink with the column, keeping its shape. Sphinx links every such image to its full-size file.
"""

from __future__ import annotations

import re

from sphinx.application import Sphinx

SIZE_STYLE = re.compile(r' style="width: ([0-9.]+)px; height: ([0-9.]+)px;"')


def _use_size_attributes(app: Sphinx) -> None:
    base = app.registry.get_translator_class(app.builder) or app.builder.default_translator_class

    class SizedImages(base):
        def visit_image(self, node) -> None:
            start = len(self.body)
            super().visit_image(node)
            self.body[start:] = [SIZE_STYLE.sub(r' width="\1" height="\2"', part) for part in self.body[start:]]

    app.set_translator(app.builder.name, SizedImages, override=True)


def setup(app: Sphinx) -> dict[str, bool]:
    # After the theme has put its own translator in place (at the default priority, 500).
    app.connect("builder-inited", _use_size_attributes, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
