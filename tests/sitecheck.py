"""Checks for the built website: an internal link checker and a real-browser check.

Both take the folder of a built site (``_build/html``) and report `Problem`s (page, kind, detail);
no problems means the site is fine.

- `check_links` reads the HTML (no browser): every relative or site-absolute ``href``/``src``
  (and the target of a redirect page) must point to an existing file, and a ``#fragment`` must
  name an ``id`` in the target page. External ``http(s)`` links are not fetched, only listed.
- `check_pages` opens every page from disk (``file://``) in headless Chromium, driven by
  Playwright, at a desktop's or a phone's width, waits for MathJax to finish, and reports images
  that did not load, math that was not typeset, local files that failed to load, requests that
  would need the network, JavaScript errors, content cut off at the side (an equation, code block,
  output or table wider than its box without a visible scroll bar, or reaching past the text
  column; a long output taller than its box that does not scroll; inline math running past the
  column), code or outputs whose lines the browser wraps (code keeps the lines it was written
  with and scrolls sideways instead), figures whose smallest text is shown below
  `MIN_FIGURE_TEXT_PX` (`MIN_PHONE_FIGURE_TEXT_PX` at a phone's width), and object reprs such as
  ``<torch._C.Generator at 0x…>`` in cell outputs. It can save a full-page screenshot of
  chosen pages. The browser comes from ``open_browser`` in ``book/browser.py``, which the book's
  PDF printer shares.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
from browser import SETTLE_TIMEOUT_MS  # the book's tooling, shared with book/pdf.py

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Request, Route

DESKTOP, PHONE = 1280, 390  # viewport widths, CSS pixels
# The smallest text a figure may show, in CSS pixels: 10 px is about 7.5 pt, the smallest print size
# that stays readable. A figure's PNG records the height of its smallest text at 100 % (vae.style).
MIN_FIGURE_TEXT_PX = 10.0
# On a phone a figure is shown at the column's width, and each links to its full-size file for a
# closer look (book.css). Below 6 px (4.5 pt) text is a grey smudge even to a young eye, so a figure
# whose text would shrink further keeps a minimum width and scrolls sideways in its own box.
MIN_PHONE_FIGURE_TEXT_PX = 6.0
MIN_TEXT_KEY = "min-text-px"
# What Python prints for an object that has no readable form, e.g. <torch._C.Generator at 0x7f…>,
# [<matplotlib.lines.Line2D at 0x…>], <Axes: title={…}> or Text(0.5, 1.0, 'title').
OBJECT_REPR = re.compile(r"<[\w.]+ (?:object )?at 0x[0-9a-fA-F]+>|<Axes: |^Text\(-?[\d.]+, -?[\d.]+, ", re.MULTILINE)

# Attributes that point at another file, per tag.
LINK_ATTRIBUTES = {"a": "href", "link": "href", "img": "src", "script": "src", "source": "src", "iframe": "src"}
# Schemes that are not files of the site and are not checked.
IGNORED_SCHEMES = {"mailto", "javascript", "data", "tel"}
# Errors that the theme stack logs on every page although readers lose nothing, each with why: none
# now (sphinx-thebe's doubled script and the theme's complaint about an empty colour mode are gone,
# book/site_head.py), so any JavaScript error is reported.
HARMLESS_ERRORS: set[str] = set()


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one page.

    ``page`` is the page's path relative to the site folder (e.g. ``notebooks/05_vae_digits.html``);
    ``kind`` is one of ``broken-link``, ``missing-anchor``, ``missing-image``, ``unrendered-math``,
    ``math-error``, ``missing-file``, ``network-request``, ``js-error``, ``timeout``, ``clipped``,
    ``wrapped``, ``small-text``, ``object-repr``; ``detail`` says what exactly.
    """

    page: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


@dataclass
class LinkReport:
    """What `check_links` found: the problems, and the external links it did not fetch."""

    problems: list[Problem] = field(default_factory=list)
    external: set[str] = field(default_factory=set)


def site_pages(site: Path) -> list[Path]:
    """The HTML pages of a built site, sorted; Sphinx's own folders (``_static`` and the like) are skipped."""
    pages = site.rglob("*.html")
    return sorted(page for page in pages if not any(part.startswith("_") for part in page.relative_to(site).parts))


def _read(page: Path) -> BeautifulSoup:
    return BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")


def _redirect(soup: BeautifulSoup) -> str | None:
    """Where a redirect page (``<meta http-equiv="refresh" content="0; url=...">``) sends the reader, else None."""
    meta = soup.find("meta", attrs={"http-equiv": lambda value: value and value.lower() == "refresh"})
    if meta is None:
        return None
    _, _, url = meta.get("content", "").partition("url=")
    return url.strip()


def _references(soup: BeautifulSoup) -> Iterator[tuple[str, str]]:
    """Every URL a page refers to, each with a short description of where it is (``<a href=...>``)."""
    for tag_name, attribute in LINK_ATTRIBUTES.items():
        for tag in soup.find_all(tag_name, attrs={attribute: True}):
            url = tag[attribute].strip()
            yield f"<{tag_name} {attribute}={url!r}>", url
    redirect = _redirect(soup)
    if redirect is not None:
        yield f"redirect to {redirect!r}", redirect


def _anchors(page: Path, cache: dict[Path, set[str]]) -> set[str]:
    """The ``id``s (and old-style ``<a name>``s) defined in an HTML page."""
    if page not in cache:
        soup = _read(page)
        ids = {tag["id"] for tag in soup.find_all(id=True)}
        cache[page] = ids | {tag["name"] for tag in soup.find_all("a", attrs={"name": True})}
    return cache[page]


def check_links(site: Path) -> LinkReport:
    """Check every internal link and resource reference in the site's HTML pages.

    A reference is internal when it has no scheme (``../_images/x.png``, ``#section``) or is
    absolute to the site (``/book/intro.html``). It must resolve to an existing file (a folder
    means its ``index.html``); when it carries a fragment and points at an HTML page, that page
    must define the fragment as an ``id``. ``http(s)`` links are collected in ``external``.
    """
    site = site.resolve()
    report = LinkReport()
    anchor_cache: dict[Path, set[str]] = {}
    for page in site_pages(site):
        name = page.relative_to(site).as_posix()
        for where, url in _references(_read(page)):
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") or url.startswith("//"):
                report.external.add(url)
                continue
            if parts.scheme in IGNORED_SCHEMES or not url:
                continue
            if parts.scheme:
                report.problems.append(Problem(name, "broken-link", f"{where}: unexpected scheme"))
                continue
            path = unquote(parts.path)
            target = site / path.lstrip("/") if path.startswith("/") else page.parent / path if path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                report.problems.append(Problem(name, "broken-link", f"{where}: no such file"))
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in _anchors(target, anchor_cache):
                    report.problems.append(Problem(name, "missing-anchor", f"{where}: no id {parts.fragment!r}"))
    return report


# Waits until MathJax 3 has finished its first typesetting (if MathJax is there at all), the fonts
# are ready and every image has loaded or failed (lazy images are made eager), or the time is up.
# Resolves to "done" or "timeout".
_SETTLE = r"""async (timeoutMs) => {
    const images = Array.from(document.images);
    images.forEach(img => { img.loading = "eager"; });
    const settled = Promise.all([
        (window.MathJax && MathJax.startup && MathJax.startup.promise) || null,
        document.fonts.ready,
        ...images.filter(img => !img.complete).map(img => new Promise(resolve => {
            img.addEventListener("load", resolve);
            img.addEventListener("error", resolve);
        })),
    ]);
    const timer = new Promise(resolve => setTimeout(() => resolve("timeout"), timeoutMs));
    return Promise.race([settled.then(() => "done"), timer]);
}"""

# The images that did not load.
_BROKEN_IMAGES = r"""() => Array.from(document.images)
    .filter(img => img.naturalWidth === 0)
    .map(img => img.getAttribute("src"))"""

# Looks at the math of the article body: math elements MathJax left untouched, TeX errors it
# reported, and TeX delimiters left as plain text outside code (a reader would see them raw).
_MATH_STATE = r"""() => {
    const body = document.querySelector("article") || document.querySelector("[role=main]") || document.body;
    const untouched = Array.from(body.querySelectorAll(".math"))
        .filter(el => !el.querySelector("mjx-container"))
        .map(el => el.textContent.trim().slice(0, 60));
    const errors = Array.from(body.querySelectorAll("mjx-merror"))
        .map(el => el.getAttribute("data-mjx-error") || el.textContent);
    const walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT, {
        acceptNode: node => node.parentElement.closest("pre, code, script, style, textarea, mjx-container")
            ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
    });
    const raw = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (const delimiter of ["$$", "\\[", "\\("]) {
            const at = node.textContent.indexOf(delimiter);
            if (at >= 0) raw.push(node.textContent.slice(at, at + 60).trim());
        }
    }
    return {untouched, errors, raw};
}"""


# Boxes whose content may be wider than the text column: display equations, code, cell outputs and
# tables. Each must fit, or scroll with a visible scroll bar (at least 4 px tall), and none may reach
# past the right edge of the article. Returns one line per box that fails.
_CLIPPED = r"""() => {
    const article = document.querySelector("article") || document.body;
    const right = article.getBoundingClientRect().right;
    const boxes = article.querySelectorAll('mjx-container[display="true"], div.highlight pre, '
        + 'div.cell_output .output, .pst-scrollable-table-container, table, mjx-container:not([display="true"])');
    // A box inside a scrolling box is shown through it; only the outer box must fit the column.
    const insideScroller = box => {
        for (let el = box.parentElement; el && el !== article; el = el.parentElement) {
            if (["auto", "scroll"].includes(getComputedStyle(el).overflowX)) return true;
        }
        return false;
    };
    const describe = box => (box.closest("div.math") ? "equation "
            : box.matches("mjx-container") ? "inline math " : box.tagName.toLowerCase() + " ")
        + JSON.stringify(box.textContent.trim().replace(/\s+/g, " ").slice(0, 50));
    const clipped = [];
    for (const box of boxes) {
        const style = getComputedStyle(box);
        // Inline math is measured only against the column's edge, unless it is made to scroll.
        const inlineMath = box.matches('mjx-container:not([display="true"])') && style.overflowX === "visible";
        if (box.scrollWidth > box.clientWidth + 1 && !inlineMath) {
            const scrolls = style.overflowX === "auto" || style.overflowX === "scroll";
            const bar = box.offsetHeight - box.clientHeight
                - parseFloat(style.borderTopWidth) - parseFloat(style.borderBottomWidth);
            if (!scrolls || bar < 4 || style.scrollbarWidth === "none") {
                clipped.push(`${describe(box)} is ${box.scrollWidth} px wide in a ${box.clientWidth} px box `
                    + "with no visible scroll bar");
            }
        }
        // A box shorter than its content must scroll (a long output in a box of limited height).
        if (box.scrollHeight > box.clientHeight + 1 && !["auto", "scroll", "visible"].includes(style.overflowY)
                && !inlineMath) {
            clipped.push(`${describe(box)} is ${box.scrollHeight} px tall in a ${box.clientHeight} px box that does not scroll`);
        }
        const edge = box.getBoundingClientRect().right;
        if (edge > right + 1 && !insideScroller(box)) clipped.push(`${describe(box)} reaches ${Math.round(edge - right)} px past the text column`);
    }
    return clipped;
}"""

# Code and outputs whose lines the browser wraps: each <pre> whose content is taller than it is with
# its lines kept (white-space: pre). Returns one line per such block.
_WRAPPED = r"""() => {
    const wrapped = [];
    for (const pre of document.querySelectorAll("article pre")) {
        const style = getComputedStyle(pre);
        if (["pre", "nowrap"].includes(style.whiteSpace) || style.display === "none") continue;
        const height = pre.scrollHeight;
        const before = pre.style.getPropertyValue("white-space");
        pre.style.setProperty("white-space", "pre", "important");
        const kept = pre.scrollHeight;
        pre.style.setProperty("white-space", before);
        if (height > kept + 2) {
            const where = pre.closest(".cell_output") ? "output" : "code";
            const text = pre.textContent.split("\n").reduce((a, b) => (b.length > a.length ? b : a), "");
            wrapped.push(`${where} ${JSON.stringify(text.trim().slice(0, 50))} wraps its lines `
                + `(white-space: ${style.whiteSpace}; ${kept} px tall with its lines kept, ${height} px wrapped)`);
        }
    }
    return wrapped;
}"""

# Figures in cell outputs: each image's file, its CSS width (its width attribute, or its natural
# width) and the width it is shown at.
_FIGURES = r"""() => Array.from(document.querySelectorAll("article .cell_output img"))
    .filter(img => img.naturalWidth > 0 && !img.getAttribute("src").startsWith("data:"))
    .map(img => ({src: img.getAttribute("src"), css: Number(img.getAttribute("width")) || img.naturalWidth,
                  shown: img.getBoundingClientRect().width}))"""

# The text of every cell output.
_OUTPUT_TEXT = r"""() => Array.from(document.querySelectorAll("article .cell_output")).map(el => el.textContent)"""


def _figure_text_sizes(page_url: str, figures: list[dict]) -> Iterator[tuple[str, float | None]]:
    """Each figure's source and the height of its smallest text as shown, in CSS pixels: the height
    recorded in the PNG (`MIN_TEXT_KEY`, at 100 %) scaled by the shown width over the CSS width.
    None for a PNG that records no size; figures in other formats are left out."""
    for figure in figures:
        path = Path(unquote(urlsplit(page_url).path)).parent / unquote(urlsplit(figure["src"]).path)
        with Image.open(path) as image:
            if image.format != "PNG":
                continue
            recorded = image.text.get(MIN_TEXT_KEY)
        yield figure["src"], None if recorded is None else float(recorded) * figure["shown"] / figure["css"]


def _small_figure_text(page_url: str, figures: list[dict], minimum: float = MIN_FIGURE_TEXT_PX) -> list[str]:
    """Figures whose smallest text, as recorded in the PNG and scaled to its shown width, is below
    ``minimum``, and PNG figures that record no size for it."""
    found = []
    for src, shown in _figure_text_sizes(page_url, figures):
        if shown is None:
            found.append(f"{src} records no size for its smallest text (draw it with vae.use_book_style)")
        elif shown < minimum:
            found.append(f"{src}: smallest text {shown:.1f} px < {minimum:g} px as shown")
    return found


def _check_page(
    context: BrowserContext, name: str, url: str, screenshot: Path | None, min_figure_text: float, extra_css: str
) -> list[Problem]:
    """Open one page in a new tab of the context and return its problems; save a screenshot if asked.
    Figures' smallest text must be shown at least ``min_figure_text`` CSS pixels tall; ``extra_css``,
    if any, is added to the page once it has loaded (to plant a fault)."""
    problems: list[Problem] = []

    def refuse_network(route: Route) -> None:
        # The site must work offline: any request leaving the disk is refused and reported.
        problems.append(Problem(name, "network-request", route.request.url))
        route.abort()

    def failed_request(request: Request) -> None:
        if request.url.startswith("file:"):
            problems.append(Problem(name, "missing-file", f"{unquote(request.url)} ({request.failure})"))

    def script_error(text: str) -> None:
        if text not in HARMLESS_ERRORS:
            problems.append(Problem(name, "js-error", text))

    def console_message(message: ConsoleMessage) -> None:
        # A file that failed to load is already reported by failed_request.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            script_error(message.text)

    tab = context.new_page()
    try:
        tab.route("http://*/**", refuse_network)
        tab.route("https://*/**", refuse_network)
        tab.on("requestfailed", failed_request)
        tab.on("console", console_message)
        tab.on("pageerror", lambda error: script_error(str(error)))
        tab.goto(url, wait_until="load")
        if extra_css:
            tab.add_style_tag(content=extra_css)
        if tab.evaluate(_SETTLE, SETTLE_TIMEOUT_MS) == "timeout":
            busy = f"MathJax, fonts or images still busy after {SETTLE_TIMEOUT_MS} ms"
            problems.append(Problem(name, "timeout", busy))
        for src in tab.evaluate(_BROKEN_IMAGES):
            problems.append(Problem(name, "missing-image", f"<img src={src!r}> did not load"))
        math = tab.evaluate(_MATH_STATE)
        problems += [Problem(name, "unrendered-math", f"not typeset: {tex!r}") for tex in math["untouched"]]
        problems += [Problem(name, "unrendered-math", f"raw TeX in the text: {text!r}") for text in math["raw"]]
        problems += [Problem(name, "math-error", error) for error in math["errors"]]
        problems += [Problem(name, "clipped", detail) for detail in tab.evaluate(_CLIPPED)]
        problems += [Problem(name, "wrapped", detail) for detail in tab.evaluate(_WRAPPED)]
        small = _small_figure_text(url, tab.evaluate(_FIGURES), min_figure_text)
        problems += [Problem(name, "small-text", text) for text in small]
        for text in tab.evaluate(_OUTPUT_TEXT):
            problems += [Problem(name, "object-repr", match[0]) for match in OBJECT_REPR.finditer(text)]
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(screenshot), full_page=True)
    finally:
        tab.close()
    return problems


def _pages(site: Path, pages: Collection[str] | None) -> Iterator[tuple[str, Path]]:
    """The site's pages as (path relative to ``site``, file), only ``pages`` if given, without the
    redirect pages (``index.html``: `check_links` checks where they lead)."""
    site = site.resolve()
    for page in site_pages(site):
        name = page.relative_to(site).as_posix()
        if (pages is None or name in pages) and _redirect(_read(page)) is None:
            yield name, page


def check_pages(
    browser: Browser,
    site: Path,
    *,
    pages: Collection[str] | None = None,
    screenshot_dir: Path | None = None,
    screenshot_pages: Collection[str] = (),
    width: int = DESKTOP,
    extra_css: str = "",
) -> list[Problem]:
    """Open the pages of the site in the browser and return what is wrong with them.

    The pages share one fresh browser context (no stored state from earlier runs), ``width`` CSS
    pixels wide (`DESKTOP`, or `PHONE` for a phone's layout). Figure text must be at least
    `MIN_FIGURE_TEXT_PX` tall at a desktop's width and `MIN_PHONE_FIGURE_TEXT_PX` below it: a phone
    shows a figure smaller, and the reader can open it full size. ``extra_css`` is added to every
    page (to plant a fault).
    Redirect pages (``index.html``) are skipped: `check_links` checks where they lead.
    ``pages`` limits the check to these pages, given as paths relative to ``site`` (default: all).
    ``screenshot_pages`` are page paths relative to ``site`` too (e.g. ``book/intro.html``); each is
    saved as a full-page PNG in ``screenshot_dir`` under the same relative path with ``.png``.
    """
    problems: list[Problem] = []
    minimum = MIN_FIGURE_TEXT_PX if width >= DESKTOP else MIN_PHONE_FIGURE_TEXT_PX
    with browser.new_context(viewport={"width": width, "height": 900}) as context:
        for name, page in _pages(site, pages):
            shoot = screenshot_dir is not None and name in screenshot_pages
            screenshot = screenshot_dir / Path(name).with_suffix(".png") if shoot else None
            problems += _check_page(context, name, page.as_uri(), screenshot, minimum, extra_css)
    return problems


def figure_text_sizes(browser: Browser, site: Path, *, pages: Collection[str] | None = None,
                      width: int = DESKTOP) -> dict[str, dict[str, float | None]]:
    """The height of each figure's smallest text as shown at ``width``, in CSS pixels (None where the
    PNG records none), by page (relative to ``site``) and image source: what `check_pages` compares
    with its minimum, for reporting. MathJax is not loaded: typeset math changes no figure's width."""
    sizes: dict[str, dict[str, float | None]] = {}
    with browser.new_context(viewport={"width": width, "height": 900}) as context:
        context.route("http*://*/**", lambda route: route.abort())
        context.route("**/mathjax/**", lambda route: route.abort())
        for name, page in _pages(site, pages):
            tab = context.new_page()
            try:
                tab.goto(page.as_uri(), wait_until="load")
                tab.evaluate(_SETTLE, SETTLE_TIMEOUT_MS)
                found = dict(_figure_text_sizes(page.as_uri(), tab.evaluate(_FIGURES)))
            finally:
                tab.close()
            if found:
                sizes[name] = found
    return sizes
