"""Checks for the book's PDF (``python book/pdf.py``), against the built site it was printed from.

`check_pdf` reads the PDF with pypdf and returns what is wrong, one line each; an empty list means
the PDF reads as a book:

- the first page is a title page: the book's title and little else;
- the next page is the contents, and each chapter's line there ends with the page the chapter's
  bookmark leads to;
- every page shows its own number on a line of its own, at the end (before the running head),
  and every page past the contents, but a
  chapter's first, the running head (with the book's title);
- no page shows the text of a web control (code toggles, animation and explorer buttons, the
  page's own contents box, the launch and download menus);
- every page of the book (`book_pages`) has a bookmark, in order, and every numbered chapter's
  sections (its ``h2`` headings in the site) are bookmarks under it, with their numbers; each
  bookmark leads to a page that shows its heading's first words;
- no link points into the file system, and every link inside the PDF has a destination.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

from bs4 import BeautifulSoup
from pypdf import PdfReader
from pypdf.generic import ArrayObject, NameObject, TextStringObject

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
from pdf import TITLE, book_pages  # the book's tooling

# Text that only a web page shows; none of it may reach the paper.
WEB_CONTROLS = (
    "Show code cell",
    "Hide code cell",
    "Copy to clipboard",
    "Launch Binder",
    "Open in Colab",
    "Download source file",
    "Tap the figure",
    "Search this book",
    "Once Loop Reflect",
)


def _words(text: str) -> str:
    """The text with its whitespace collapsed and its ligatures undone ("ﬁ" is "fi")."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _outline(reader: PdfReader) -> list[tuple[str, int, list]]:
    """The bookmarks: (title, page index, children as the same triples)."""

    def walk(items) -> list:
        found: list = []
        for item in items:
            if isinstance(item, list):
                if found:
                    found[-1][2].extend(walk(item))
            else:
                found.append((_words(item.title), reader.get_destination_page_number(item), []))
        return found

    return walk(reader.outline)


def _site_headings(site: Path, page: str) -> tuple[str, list[str]]:
    """A page's title (``h1``) and its sections' numbers (``4.1.``) or, unnumbered, titles, from the site."""
    soup = BeautifulSoup((site / f"{page}.html").read_text(encoding="utf-8"), "html.parser")
    article = soup.select_one("article.bd-article") or soup
    for link in article.select("a.headerlink"):
        link.decompose()
    title = _words(article.find("h1").get_text())
    sections = []
    for heading in article.find_all("h2"):
        number = heading.select_one(".section-number")
        sections.append(_words(number.get_text()) if number else _words(heading.get_text()))
    return title, sections


def check_pdf(pdf: Path, site: Path) -> list[str]:
    """What is wrong with the book's PDF ``pdf``, printed from the site in ``site``."""
    reader = PdfReader(pdf)
    texts = [page.extract_text() or "" for page in reader.pages]
    problems = []

    # The title page, then the contents.
    first = _words(texts[0]) if texts else ""
    if TITLE not in first.replace(",\n", ", ") or len(first.split()) > 80:
        problems.append(f"page 1 is not a title page: {first[:120]!r}")
    contents_pages = [i for i, text in enumerate(texts[1:6], start=1) if re.search(r"^Contents$", text, re.MULTILINE)]
    if not contents_pages or contents_pages[0] != 1:
        problems.append("page 2 is not the contents")
    contents = _words(" ".join(texts[i] for i in range(1, 6)))

    # The page's number on every page; a running head on every page but the title page, the
    # contents and the first page of each chapter.
    chapter_starts = {index for _, index, _ in _outline(reader)} if reader.outline else set()
    first_chapter = min((index for title, index, _ in _outline(reader) if title != "Contents"), default=2)
    for i, text in enumerate(texts):
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        if str(i + 1) not in lines[-2:]:  # the footer's number, then the running head if any
            problems.append(f"page {i + 1} does not end with its number (last lines {lines[-2:]})")
        if i > first_chapter and TITLE not in _words(text) and i not in chapter_starts:
            problems.append(f"page {i + 1} has no running head")
        for control in WEB_CONTROLS:
            if control in text:
                problems.append(f"page {i + 1} shows web control text {control!r}")

    # Bookmarks: one per page of the book, in order, chapters with their sections.
    outline = [entry for entry in _outline(reader) if entry[0] != "Contents"]
    pages = book_pages()
    if len(outline) != len(pages):
        problems.append(f"{len(outline)} top-level bookmarks (besides the contents) for {len(pages)} pages of the book")
    for page, (title, index, children) in zip(pages, outline):
        expected_title, sections = _site_headings(site, page)
        if _words(title) != expected_title and not expected_title.startswith(title.split(" ")[0]):
            problems.append(f"bookmark {title!r} where {page} is {expected_title!r}")
        got = [child[0] for child in children]
        for number, child in zip(sections, got):
            if not child.startswith(number):
                problems.append(f"{page}: bookmark {child!r} where the site has section {number!r}")
        if len(got) != len(sections):
            problems.append(f"{page}: {len(got)} section bookmarks for {len(sections)} sections")
        for heading, at in [(title, index), *((child[0], child[1]) for child in children)]:
            shown = _words(texts[at]) if at < len(texts) else ""
            words = re.sub(r"^[\d.]+\s*", "", heading).split()[:3]
            if not all(word in shown for word in words if word.isalpha()):
                problems.append(f"bookmark {heading!r} leads to page {at + 1}, which does not show it")
        # A long title may wrap at a hyphen in the contents ("importance-" / "weighted").
        match = re.search(re.escape(title).replace(r"\-", r"\-\s?") + r"\s*(\d+)", contents)
        if title != TITLE and (match is None or int(match[1]) != index + 1):
            problems.append(f"the contents give {title!r} page {match[1] if match else None}, its bookmark {index + 1}")

    # Links: none into the file system; the internal ones lead somewhere.
    names = set(reader.named_destinations)
    for i, page in enumerate(reader.pages):
        for annotation in page.get("/Annots") or []:
            annotation = annotation.get_object()
            action = annotation.get("/A") or {}
            uri = str(action.get("/URI", ""))
            if uri.startswith("file:"):
                problems.append(f"page {i + 1} links into the file system: {uri}")
            dest = annotation.get("/Dest") or action.get("/D")
            if isinstance(dest, (NameObject, TextStringObject, str)) and str(dest) not in names \
                    and "/" + str(dest).lstrip("/") not in names:
                problems.append(f"page {i + 1} links to {dest!r}, which the PDF does not define")
            elif isinstance(dest, ArrayObject) and not dest:
                problems.append(f"page {i + 1} has a link without a destination")
    return problems
