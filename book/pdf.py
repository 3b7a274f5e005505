"""Print the built website as one book: ``SITE/vae-book.pdf``.

    python book/pdf.py [SITE]        (default: _build/html, after ``jupyter-book build .``)

The pages of the book (the introduction, the chapters, the glossary and the bibliography, in the
order of ``_toc.yml``) are joined into one document and printed by headless Chromium or Chrome
(``book/browser.py``, shared with the website test), so that the PDF reads as a book:

- a title page, then the contents: every chapter and section with its page number;
- each chapter starts on a new page and is a bookmark, with its sections as bookmarks under it;
  every page has its number (Chromium's footer template), counted from the title page, and after a
  chapter's first page a running head: the chapter's title and the book's (printed by Chromium on
  their own, then laid over the pages);
- links between pages of the book become links inside the PDF; links to parts of the site that
  are not in the book keep their text only, and links to the web stay;
- what only works on screen is left out: the "Show code cell source" toggles and the code they
  hide, the animation's buttons (its image shows the last frame), the interactive explorer's
  button (its canvases print as they stand), the page's own contents box, the launch buttons. The
  solutions of the exercises are printed open.

Each page is first opened on its own, with its scripts (which draw the animations and the
explorer) but without MathJax; the joined document is typeset once. The contents' page numbers
come from a first printing (the PDF destination Chromium makes of each heading that a link points
to), and the book is printed again with them (the same length, so the same pages). Offline, like
the rest of the build. Without a browser it says in one line how to get the PDF and exits with
success, so that a build still succeeds without it (``.ci/run`` checks that with a PATH that has no
browser); ``VAE_BOOK_NO_BROWSER=1`` makes it behave so on any machine.
"""

from __future__ import annotations

import datetime
import html
import io
import os
import re
import sys
import time
from pathlib import Path

import yaml
from browser import SETTLE_TIMEOUT_MS, find_chromium, open_browser  # book/, beside this file
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, StreamObject

ROOT = Path(__file__).resolve().parents[1]

PDF_NAME = "vae-book.pdf"
TITLE = "Variational Autoencoders, Step by Step"
REFERENCE_PAGES = ["book/glossary", "book/bibliography"]  # from the toc's reference part, in the PDF
NO_BROWSER_ENV = "VAE_BOOK_NO_BROWSER"  # set to 1: behave as on a machine without Chromium or Chrome
MARGIN = {"top": "20mm", "bottom": "18mm", "left": "16mm", "right": "16mm"}
PLACEHOLDER = "000"  # a page number in the first printing's contents, as wide as the real ones

# In each page, once its scripts have run: the animation at its last frame, canvases as images,
# web controls out, ids made unique in the book ("<page slug>--<id>"), links between the book's
# pages pointed inside the book. Returns the article's HTML (math still as TeX) and its headings.
_PREPARE = r"""({slug, slugs}) => {
    const article = document.querySelector("article.bd-article");
    for (const button of article.querySelectorAll('.animation button[title="Last frame"]')) button.click();
    for (const canvas of article.querySelectorAll("canvas")) {
        const img = document.createElement("img");
        try { img.src = canvas.toDataURL("image/png"); } catch (e) { continue; }
        img.className = canvas.className;
        img.style.width = (canvas.style.width || canvas.getBoundingClientRect().width + "px");
        img.alt = canvas.getAttribute("aria-label") || "";
        canvas.replaceWith(img);
    }
    const controls = [".anim-controls", "details.above-input", ".headerlink", "button", ".lx-hint",
                      "script", "#searchbox", ".copybtn", ".toggle-button", "dialog"];
    for (const el of article.querySelectorAll(controls.join(", "))) el.remove();
    for (const details of article.querySelectorAll("details")) {
        details.open = true;
        details.querySelector(":scope > summary")?.remove();
    }
    for (const el of article.querySelectorAll(".toggle-hidden")) el.classList.remove("toggle-hidden");
    // A section's id moves to its heading: a link then leads to the page that shows the heading,
    // not to the foot of the page before, where the section may begin when its heading moves on.
    // A label's target just above the heading (an empty span) goes too; links to it are sent to the
    // heading (`aliases`): Chromium keeps one PDF destination where two elements start together.
    const aliases = {};
    for (const section of article.querySelectorAll("section[id]")) {
        const heading = section.querySelector(":scope > :is(h1, h2, h3, h4, h5, h6)");
        if (!heading || heading.id) continue;
        heading.id = section.id;
        section.removeAttribute("id");
        for (let el = heading.previousElementSibling; el; el = heading.previousElementSibling) {
            if (!(el.tagName === "SPAN" && el.id && !el.textContent.trim())) break;
            aliases[`${slug}--${el.id}`] = `${slug}--${heading.id}`;
            el.remove();
        }
    }
    for (const el of article.querySelectorAll("[id]")) el.id = `${slug}--${el.id}`;
    const here = location.href.split("#")[0];
    for (const link of article.querySelectorAll("a[href]")) {
        const url = new URL(link.getAttribute("href"), here);
        if (url.protocol === "http:" || url.protocol === "https:" || url.protocol === "mailto:") continue;
        const target = url.href.split("#")[0];
        const fragment = decodeURIComponent(url.hash.slice(1));
        const page = target === here ? slug : slugs[target];
        if (page === undefined) {
            link.removeAttribute("href");  // a page of the site that is not in the book, or a file
        } else {
            link.setAttribute("href", "#" + (fragment ? `${page}--${fragment}` : page));
        }
    }
    // A heading's text for the bookmarks, its math as plain letters; its HTML for the contents.
    const symbols = {alpha: "α", beta: "β", gamma: "γ", theta: "θ", phi: "ϕ", sigma: "σ", mu: "μ"};
    const plain = tex => tex.replace(/^\\\(|\\\)$/g, "").replace(/\\mathcal\{N\}/g, "𝒩")
        .replace(/\\math(?:rm|bf|it)\{([^}]*)\}/g, "$1")
        .replace(/\\([a-zA-Z]+)/g, (all, name) => symbols[name] ?? name).replace(/[{}]/g, "");
    const headings = Array.from(article.querySelectorAll("h1, h2")).map(h => {
        const copy = h.cloneNode(true);
        for (const math of copy.querySelectorAll(".math")) math.replaceWith(plain(math.textContent.trim()));
        const shown = h.cloneNode(true);
        for (const el of shown.querySelectorAll("[id]")) el.removeAttribute("id");
        return {level: Number(h.tagName[1]), id: h.id || h.closest("[id]")?.id || "",
                text: copy.textContent.trim(), html: shown.innerHTML};
    });
    return {html: article.innerHTML, headings, aliases};
}"""

# The joined book in the first page's frame: everything but the article goes, and MathJax typesets
# the new article. Resolves when the math, the fonts and the images are done.
_ASSEMBLE = r"""async (book) => {
    const article = document.querySelector("article.bd-article");
    article.innerHTML = book;
    for (const el of document.querySelectorAll(".bd-sidebar-primary, .bd-sidebar-secondary, .bd-header, "
            + ".bd-header-article, .prev-next-area, footer, .bd-footer, .bd-footer-content, #pst-back-to-top, "
            + "#jb-print-docs-body")) {
        el.remove();
    }
    if (window.MathJax && MathJax.typesetPromise) {
        await MathJax.startup.promise;
        MathJax.typesetClear();
        await MathJax.typesetPromise([article]);
    }
    await document.fonts.ready;
    await Promise.all(Array.from(document.images).filter(img => !img.complete).map(img =>
        new Promise(resolve => { img.onload = img.onerror = resolve; })));
    return document.querySelectorAll("article mjx-merror").length;
}"""

HEADER = "<span></span>"  # the running heads are laid over the pages afterwards (`running_heads`)
FOOTER = '<div style="font: 9px sans-serif; color: #444; width: 100%; text-align: center"><span class="pageNumber"></span></div>'


def book_pages(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """The pages of the PDF, without suffix: the root, every numbered chapter, then `REFERENCE_PAGES`."""
    parts = yaml.safe_load(toc.read_text())["parts"]
    chapters = [entry["file"] for part in parts if part.get("numbered") for entry in part["chapters"]]
    return [yaml.safe_load(toc.read_text())["root"], *chapters, *REFERENCE_PAGES]


def slug(page: str) -> str:
    """The id of a page's chapter in the book: ``notebooks/04_elbo`` is ``page-04_elbo``."""
    return "page-" + re.sub(r"[^\w-]", "-", page.rsplit("/", 1)[-1])


def title_page() -> str:
    today = datetime.date.today().strftime("%-d %B %Y")
    return (
        '<section class="pdf-title-page" id="title-page">'
        '<img class="pdf-logo" src="../_static/logo.svg" alt="">'
        f'<p class="pdf-title">{html.escape(TITLE)}</p>'
        '<p class="pdf-subtitle">From the autoencoder and the EM algorithm to the ELBO, the '
        "reparameterisation trick and learned priors, with code that runs on a laptop</p>"
        '<p class="pdf-author">The authors of the VAE book</p>'
        f'<p class="pdf-date">Printed from the website on {today}. The interactive figures show '
        "their last state; the website has them live.</p>"
        "</section>"
    )


def contents(headings: list[dict], numbers: dict[str, int] | None) -> str:
    """The contents: every chapter (h1) and section (h2) with its page number (`PLACEHOLDER` when unknown)."""
    rows = []
    for heading in headings:
        number = str(numbers.get(heading["id"], "")) if numbers is not None else PLACEHOLDER
        kind = "pdf-toc-chapter" if heading["level"] == 1 else "pdf-toc-section"
        rows.append(
            f'<li class="{kind}"><a href="#{heading["id"]}"><span class="pdf-toc-text">{heading["html"]}'
            f'</span><span class="pdf-toc-dots"></span><span class="pdf-toc-page">{number}</span></a></li>'
        )
    return f'<section class="pdf-contents" id="contents"><h1>Contents</h1><ol>{"".join(rows)}</ol></section>'


def heading_pages(pdf: bytes, headings: list[dict]) -> dict[str, int]:
    """Each heading's page index in the printed PDF (0-based), from the named destination Chromium
    writes for every element that a link of the document points to (the contents link to them all)."""
    reader = PdfReader(io.BytesIO(pdf))
    destinations = {name.lstrip("/"): dest for name, dest in reader.named_destinations.items()}
    return {
        heading["id"]: reader.get_destination_page_number(destinations[heading["id"]])
        for heading in headings
        if heading["id"] in destinations
    }


def add_bookmarks(writer: PdfWriter, headings: list[dict], pages: dict[str, int]) -> None:
    """Bookmarks: the contents, then every chapter (h1) with its sections (h2) under it."""
    writer.add_outline_item("Contents", 1)
    chapter = None
    for heading in headings:
        if heading["id"] not in pages:
            continue
        title = " ".join(heading["text"].split())
        if heading["level"] == 1:
            chapter = writer.add_outline_item(title, pages[heading["id"]])
        else:
            writer.add_outline_item(title, pages[heading["id"]], parent=chapter)


def running_heads(headings: list[dict], pages_of: dict[str, int], count: int) -> str:
    """A document of ``count`` pages, each blank but for the running head of the book's page with the
    same number: the current chapter's title on the left, the book's on the right. The title page,
    the contents and each chapter's first page have none."""
    starts = sorted((pages_of[h["id"]], h["text"]) for h in headings if h["level"] == 1 and h["id"] in pages_of)
    first_chapter = starts[0][0] if starts else count
    heads = []
    for index in range(count):
        chapter = [text for start, text in starts if start <= index]
        if index < first_chapter or index in {start for start, _ in starts}:
            heads.append('<div class="head"></div>')
        else:
            heads.append(f'<div class="head"><span>{html.escape(chapter[-1])}</span><span>{html.escape(TITLE)}</span></div>')
    style = (
        "@page { size: A4; margin: 0 } body { margin: 0 } .head { height: 100mm; box-sizing: border-box; "
        f"padding: 9mm {MARGIN['right']} 0 {MARGIN['left']}; font: 8px sans-serif; color: #666; display: flex; "
        "justify-content: space-between; break-after: page }"
    )
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{style}</style></head><body>{''.join(heads)}</body></html>"


def overlay(writer: PdfWriter, page, head) -> None:
    """Draw ``head`` (a page of another PDF) over ``page``: as a form XObject that the page draws
    last, so that the page's own drawing is kept as it is (merging pages would rewrite it, uncompressed)."""
    form = StreamObject()
    form._data = head.get_contents().get_data() if head.get_contents() is not None else b""
    form.update({
        NameObject("/Type"): NameObject("/XObject"),
        NameObject("/Subtype"): NameObject("/Form"),
        NameObject("/BBox"): ArrayObject(head.mediabox),
        NameObject("/Resources"): writer._add_object(head["/Resources"].clone(writer)) if "/Resources" in head
        else DictionaryObject(),
    })
    form = writer._add_object(form.flate_encode())
    resources = page[NameObject("/Resources")].get_object()
    xobjects = resources.get("/XObject")
    if xobjects is None:
        xobjects = resources[NameObject("/XObject")] = DictionaryObject()
    xobjects = xobjects.get_object()
    xobjects[NameObject("/RunningHead")] = form
    streams = []
    for data in (b"q\n", b"\nQ\nq /RunningHead Do Q\n"):
        stream = StreamObject()
        stream._data = data
        streams.append(writer._add_object(stream))
    contents = page.get("/Contents")
    contents = list(contents.get_object()) if isinstance(contents.get_object(), ArrayObject) else [contents]
    page[NameObject("/Contents")] = ArrayObject([streams[0], *contents, streams[1]])


def print_book(site: Path, out: Path | None = None) -> Path:
    """Print the book's pages from ``site`` as one PDF, ``site/vae-book.pdf`` unless ``out``; return its path."""
    site = site.resolve()
    pages = book_pages()
    uris = {(site / f"{page}.html").as_uri(): slug(page) for page in pages}
    chapters, headings, first, aliases = [], [], {}, {}
    with open_browser() as browser:
        context = browser.new_context(viewport={"width": 900, "height": 1200})
        context.route(re.compile(r"^https?://"), lambda route: route.abort())
        for page in pages:
            tab = context.new_page()
            tab.route(re.compile(r"/mathjax/"), lambda route: route.abort())  # typeset once, in the book
            tab.goto((site / f"{page}.html").as_uri(), wait_until="load")
            tab.wait_for_timeout(300)  # the animations start on a timer of 0 ms after the load
            prepared = tab.evaluate(_PREPARE, {"slug": slug(page), "slugs": uris})
            tab.close()
            headings += prepared["headings"]
            aliases.update(prepared["aliases"])
            first[slug(page)] = prepared["headings"][0]["id"] if prepared["headings"] else ""
            chapters.append(f'<section class="pdf-chapter">{prepared["html"]}</section>')
        # A link to a page leads to its title (the chapter's wrapper may begin at the foot of the page
        # before the one its title starts).
        aliases.update(first)
        for n, chapter in enumerate(chapters):
            chapters[n] = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{aliases.get(m[1], m[1])}"', chapter)
        # The joined book, in the frame of the first page (its stylesheets, its MathJax).
        tab = context.new_page()
        tab.goto((site / f"{pages[0]}.html").as_uri(), wait_until="load")
        tab.evaluate(f"() => Promise.race([window.MathJax?.startup?.promise, "
                     f"new Promise(r => setTimeout(r, {SETTLE_TIMEOUT_MS}))])")
        numbers = None
        for _ in range(3):  # placeholders first, then the page numbers they make room for
            book = title_page() + contents(headings, numbers) + "".join(chapters)
            errors = tab.evaluate(_ASSEMBLE, book)
            if errors:
                raise RuntimeError(f"MathJax reported {errors} errors in the joined book")
            tab.emulate_media(media="print")
            pdf = tab.pdf(format="A4", print_background=True, display_header_footer=True,
                          header_template=HEADER, footer_template=FOOTER, margin=MARGIN)
            pages_of = heading_pages(pdf, headings)
            found = {name: index + 1 for name, index in pages_of.items()}  # as the footer counts
            if numbers == found:
                break
            numbers = found
        missing = [heading["text"] for heading in headings if heading["id"] not in pages_of]
        if missing:
            raise RuntimeError(f"headings not found in the printed book: {missing}")
        count = len(PdfReader(io.BytesIO(pdf)).pages)
        tab.set_content(running_heads(headings, pages_of, count))
        heads = PdfReader(io.BytesIO(tab.pdf(format="A4", margin={"top": "0", "bottom": "0", "left": "0", "right": "0"})))
        tab.close()
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    if len(heads.pages) != count:
        raise RuntimeError(f"{len(heads.pages)} running heads for {count} pages")
    for page, head in zip(writer.pages, heads.pages):
        overlay(writer, page, head)
    add_bookmarks(writer, headings, pages_of)
    writer.page_mode = "/UseOutlines"
    writer.add_metadata({"/Title": TITLE, "/Author": "The authors of the VAE book"})
    out = out or site / PDF_NAME
    with out.open("wb") as file:
        writer.write(file)
    return out


if __name__ == "__main__":
    site = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "_build" / "html")
    if not (site / "index.html").is_file():
        sys.exit(f"no built site in {site}: run `jupyter-book build .` first")
    if os.environ.get(NO_BROWSER_ENV) == "1" or find_chromium() is None:
        print("no PDF: it is printed with Chromium or Chrome and none was found; install Chromium "
              "(e.g. apt-get install chromium), then rerun `python book/pdf.py`")
        sys.exit(0)
    start = time.perf_counter()
    path = print_book(site)
    seconds = time.perf_counter() - start
    print(f"{path}: {len(PdfReader(path).pages)} pages, {path.stat().st_size / 1e6:.1f} MB, {seconds:.0f} s")
