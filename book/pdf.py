"""Print the built website to one PDF, the whole book in reading order: ``SITE/vae-book.pdf``.

    python book/pdf.py [SITE]        (default: _build/html, after ``jupyter-book build .``)

Each page of the book (the introduction, the chapters, the glossary and the bibliography, in the
order of ``_toc.yml``) is opened in headless Chromium or Chrome (``book/browser.py``, shared with
the website test), printed with the theme's print style once its math is typeset, and the pages are
joined with a bookmark per page. Links between pages become plain text (they would point into the
reader's file system); links within a page and to the web stay. Offline, like the rest of the build.
Without a browser it says in one line how to get the PDF and exits with success, so that a build
still succeeds without it.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import yaml
from browser import SETTLE_TIMEOUT_MS, find_chromium, open_browser  # book/, beside this file
from pypdf import PdfReader, PdfWriter

ROOT = Path(__file__).resolve().parents[1]

PDF_NAME = "vae-book.pdf"
REFERENCE_PAGES = ["book/glossary", "book/bibliography"]  # from the toc's reference part, in the PDF

# Links to other pages of the site would open files on the reader's disk: keep their text only.
_UNLINK_OTHER_PAGES = r"""() => {
    for (const link of document.querySelectorAll("article a.reference.internal")) {
        if (!link.getAttribute("href").startsWith("#")) link.removeAttribute("href");
    }
}"""


def book_pages(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """The pages of the PDF, without suffix: the root, every numbered chapter, then `REFERENCE_PAGES`."""
    parts = yaml.safe_load(toc.read_text())["parts"]
    chapters = [entry["file"] for part in parts if part.get("numbered") for entry in part["chapters"]]
    return [yaml.safe_load(toc.read_text())["root"], *chapters, *REFERENCE_PAGES]


def print_book(site: Path) -> Path:
    """Print the book's pages from ``site`` and join them into ``site/vae-book.pdf``; return its path."""
    writer = PdfWriter()
    with open_browser() as browser:
        context = browser.new_context()
        for page in book_pages():
            tab = context.new_page()
            tab.goto((site / f"{page}.html").resolve().as_uri(), wait_until="load")
            tab.evaluate(f"() => Promise.race([window.MathJax?.startup?.promise, "
                         f"new Promise(r => setTimeout(r, {SETTLE_TIMEOUT_MS}))])")
            tab.evaluate(_UNLINK_OTHER_PAGES)
            data = tab.pdf(format="A4", print_background=True, outline=False,
                           margin={"top": "16mm", "bottom": "16mm", "left": "15mm", "right": "15mm"})
            title = tab.title().split(" — ")[0].strip()
            tab.close()
            start = len(writer.pages)
            writer.append(PdfReader(io.BytesIO(data)))
            writer.add_outline_item(title, start)
    out = site / PDF_NAME
    writer.add_metadata({"/Title": "Variational Autoencoders, Step by Step"})
    with out.open("wb") as file:
        writer.write(file)
    return out


if __name__ == "__main__":
    site = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "_build" / "html")
    if not (site / "index.html").is_file():
        sys.exit(f"no built site in {site}: run `jupyter-book build .` first")
    if find_chromium() is None:
        print("no PDF: it is printed with Chromium or Chrome and none was found; install Chromium "
              "(e.g. apt-get install chromium), then rerun `python book/pdf.py`")
        sys.exit(0)
    path = print_book(site)
    print(f"{path}: {len(PdfReader(path).pages)} pages, {path.stat().st_size / 1e6:.1f} MB")
