"""The website checks catch what they promise to, and the built book passes them.

The first tests build a small site in a temporary folder, with an image, links to anchors and
math typeset by the MathJax that the book ships (from the ``sphinx-mathjax-offline`` package), then
plant one fault at a time in a copy and assert that the checks report exactly that fault. The
browser tests skip when Chromium or Playwright is missing.

The last tests check a real build, when ``VAE_SITE`` names its folder (they then fail, not skip,
without a browser)::

    VAE_SITE=_build/html python -m pytest tests/test_site.py -p no:nbmake -o addopts="" -k book

They check every page at a desktop's width and chapters 3, 4, 8 and 10 at a phone's, save screenshots
of the intro and every chapter (and of chapters 3, 4, 8 and 10 at the phone's width, in ``390px/``) in
``_build/screenshots`` (next to ``html``), and plant faults in a copy of the site to show that the
checks catch them there too. They also check the PDF that ``python book/pdf.py`` printed from the
site (``tests/pdfcheck.py``: title page, contents with page numbers, page numbers and running heads,
no web controls, bookmarks for every chapter and section), so run it first, as ``.ci/run`` does.

The ``explorer`` tests (``-k explorer``) drive the latent explorer of chapters 5 and 8 from
``file://``: they move its cross by its JavaScript API, the arrow keys, a mouse drag, a tap and a
touch drag, compare the page's decoded image with the library's on the weights the page carries
(within 1e-3 grey levels), check it fits a phone and prints without its controls, and save
screenshots at 1280 and 390 px in ``_build/screenshots/explorer``.
"""

import contextlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sitecheck import (
    DESKTOP,
    HARMLESS_ERRORS,
    MIN_PHONE_FIGURE_TEXT_PX,
    MIN_TEXT_KEY,
    PHONE,
    Problem,
    check_links,
    check_pages,
    figure_text_sizes,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
from browser import MACOS_CHROME

REAL_SITE = os.environ.get("VAE_SITE")
needs_real_site = pytest.mark.skipif(not REAL_SITE, reason="set VAE_SITE to a built site, e.g. VAE_SITE=_build/html")

# Pages shaped like Jupyter Book's: the same MathJax configuration and script, math in elements of
# class "math" inside a section that MathJax otherwise ignores, and an index.html that redirects.
REDIRECT = '<meta http-equiv="Refresh" content="0; url=start.html" />'
PAGE = """<!DOCTYPE html>
<html><head><title>{title}</title>
<script>window.MathJax = {{
    "options": {{"processHtmlClass": "tex2jax_process|mathjax_process|math|output_area"}}}}</script>
<script defer="defer" src="_static/mathjax/tex-chtml.js"></script>
</head><body><article class="bd-article">
<section class="tex2jax_ignore mathjax_ignore" id="top"><h1>{title}</h1>
{body}
</section></article></body></html>
"""
START = """<p>The area under <span class="math notranslate nohighlight">\\(y = x\\)</span> is in
<a href="chapter.html#eq-area">the equation</a> of <a href="chapter.html">the chapter</a>; see also
<a href="https://example.org/paper">the paper</a>.</p>
<img src="_images/dot.png" alt="a red square">
<div class="cell_output"><div class="output"><pre>ELBO -80.5 nats</pre></div>
<img src="_images/plot.png" width="300" height="150" alt="a plot"></div>"""
CHAPTER = """<div class="math notranslate nohighlight" id="eq-area">\\[\\int_0^1 x \\, dx = \\frac{1}{2}\\]</div>
<p><a href="start.html#top">Back to the start</a>.</p>"""


def save_figure(path: Path, smallest_text_px: float | None) -> None:
    """A 2x PNG figure, 600 by 300 pixels, recording its smallest text as `vae.style.png` does."""
    info = PngInfo()
    if smallest_text_px is not None:
        info.add_text(MIN_TEXT_KEY, f"{smallest_text_px:.2f}")
    Image.new("RGB", (600, 300), "white").save(path, pnginfo=info)


def mathjax_folder() -> Path:
    """The MathJax that ``sphinx-mathjax-offline`` copies into every built site."""
    try:
        package = importlib.metadata.distribution("sphinx-mathjax-offline")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("sphinx-mathjax-offline is not installed (pip install -r requirements.txt)")
    return Path(package.locate_file("sphinx-mathjax-offline/static/mathjax"))


@pytest.fixture(scope="module")
def clean_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site without faults: two pages, start.html and chapter.html, and index.html leading to the first."""
    site = tmp_path_factory.mktemp("site")
    (site / "index.html").write_text(REDIRECT)
    (site / "start.html").write_text(PAGE.format(title="Start", body=START))
    (site / "chapter.html").write_text(PAGE.format(title="Chapter", body=CHAPTER))
    (site / "_images").mkdir()
    Image.new("RGB", (40, 40), "red").save(site / "_images" / "dot.png")
    save_figure(site / "_images" / "plot.png", smallest_text_px=12.5)
    # The MathJax bundle and the fonts it draws math with.
    mathjax, copy = mathjax_folder(), site / "_static" / "mathjax"
    copy.mkdir(parents=True)
    shutil.copy(mathjax / "tex-chtml.js", copy)
    shutil.copytree(mathjax / "output" / "chtml" / "fonts", copy / "output" / "chtml" / "fonts")
    return site


@pytest.fixture
def site(clean_site: Path, tmp_path: Path) -> Path:
    """A copy of the clean site that a test may damage."""
    return Path(shutil.copytree(clean_site, tmp_path / "html"))




def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in a file, making sure ``old`` was there."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new))


def redirect_to_nowhere(site: Path) -> None:
    edit(site / "index.html", "url=start.html", "url=begin.html")


def broken_link(site: Path) -> None:
    edit(site / "start.html", 'href="chapter.html"', 'href="chapter-two.html"')


def missing_anchor(site: Path) -> None:
    edit(site / "chapter.html", 'id="eq-area"', "")


def missing_image(site: Path) -> None:
    (site / "_images" / "dot.png").unlink()


def mathjax_script_removed(site: Path) -> None:
    edit(site / "chapter.html", '<script defer="defer" src="_static/mathjax/tex-chtml.js"></script>', "")


def mathjax_not_shipped(site: Path) -> None:
    (site / "_static" / "mathjax" / "tex-chtml.js").unlink()


def dollar_math_left_as_text(site: Path) -> None:
    edit(site / "chapter.html", "<p><a", "<p>$$ a^2 + b^2 = c^2 $$</p><p><a")


def tex_error(site: Path) -> None:
    edit(site / "chapter.html", "\\frac{1}{2}", "\\frac{1}{2}^2^3")


def needs_network(site: Path) -> None:
    edit(site / "start.html", "</head>", '<script src="https://cdn.example.org/library.js"></script></head>')


def equation_cut_off(site: Path) -> None:
    terms = " + ".join(f"x_{{{i}}}" for i in range(60))
    edit(site / "chapter.html", "<p><a", f'<div class="math" style="overflow: hidden">\\[{terms}\\]</div><p><a')


def code_without_scroll_bar(site: Path) -> None:
    long_line = "total = " + " + ".join(f"term_{i}" for i in range(40))
    code = f'<div class="highlight"><pre style="overflow-x: auto; scrollbar-width: none">{long_line}</pre></div>'
    edit(site / "chapter.html", "<p><a", code + "<p><a")


def table_past_the_column(site: Path) -> None:
    edit(site / "chapter.html", "<p><a", '<table style="width: 3000px"><tr><td>wide</td></tr></table><p><a')


def figure_text_too_small(site: Path) -> None:
    save_figure(site / "_images" / "plot.png", smallest_text_px=6.0)


def figure_shrunk(site: Path) -> None:
    edit(site / "start.html", 'width="300" height="150"', 'width="300" height="150" style="width: 100px"')


def figure_without_text_record(site: Path) -> None:
    save_figure(site / "_images" / "plot.png", smallest_text_px=None)


def object_repr_in_output(site: Path) -> None:
    edit(site / "start.html", "ELBO -80.5 nats", "&lt;torch._C.Generator at 0x7f3a2c0e1b30&gt;")


def script_error(site: Path) -> None:
    edit(site / "start.html", "</body>", "<script>undefinedFunction();</script></body>")


# Each fault, with the (page, kind) pairs that the link checker and the browser check must report.
FAULTS: dict[str, tuple[Callable[[Path], None], set[tuple[str, str]], set[tuple[str, str]]]] = {
    "redirect to nowhere": (redirect_to_nowhere, {("index.html", "broken-link")}, set()),
    "broken link": (broken_link, {("start.html", "broken-link")}, set()),
    "missing anchor": (missing_anchor, {("start.html", "missing-anchor")}, set()),
    "missing image": (
        missing_image,
        {("start.html", "broken-link")},
        {("start.html", "missing-image"), ("start.html", "missing-file")},
    ),
    "MathJax script removed": (mathjax_script_removed, set(), {("chapter.html", "unrendered-math")}),
    "MathJax not shipped": (
        mathjax_not_shipped,
        {("start.html", "broken-link"), ("chapter.html", "broken-link")},
        {(page, kind) for page in ("start.html", "chapter.html") for kind in ("missing-file", "unrendered-math")},
    ),
    "$$ left as text": (dollar_math_left_as_text, set(), {("chapter.html", "unrendered-math")}),
    "TeX error": (tex_error, set(), {("chapter.html", "math-error")}),
    "network request": (needs_network, set(), {("start.html", "network-request")}),
    "equation cut off": (equation_cut_off, set(), {("chapter.html", "clipped")}),
    "code without a scroll bar": (code_without_scroll_bar, set(), {("chapter.html", "clipped")}),
    "table past the column": (table_past_the_column, set(), {("chapter.html", "clipped")}),
    "figure text too small": (figure_text_too_small, set(), {("start.html", "small-text")}),
    "figure shrunk": (figure_shrunk, set(), {("start.html", "small-text")}),
    "figure without text record": (figure_without_text_record, set(), {("start.html", "small-text")}),
    "object repr in an output": (object_repr_in_output, set(), {("start.html", "object-repr")}),
    "script error": (script_error, set(), {("start.html", "js-error")}),
}


def found(problems: list[Problem]) -> set[tuple[str, str]]:
    """The (page, kind) pairs of the problems, for comparing with a fault's expected ones."""
    return {(problem.page, problem.kind) for problem in problems}


def test_link_checker_passes_the_clean_site(clean_site: Path) -> None:
    report = check_links(clean_site)
    assert report.problems == []
    assert report.external == {"https://example.org/paper"}


def test_browser_check_passes_the_clean_site(clean_site: Path, browser) -> None:
    problems = check_pages(browser, clean_site)
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize("fault", FAULTS)
def test_link_checker_reports_the_planted_fault(site: Path, fault: str) -> None:
    plant, expected, _ = FAULTS[fault]
    plant(site)
    assert found(check_links(site).problems) == expected


@pytest.mark.parametrize("fault", [fault for fault, (_, _, in_browser) in FAULTS.items() if in_browser])
def test_browser_check_reports_the_planted_fault(site: Path, browser, fault: str) -> None:
    plant, _, expected = FAULTS[fault]
    plant(site)
    assert found(check_pages(browser, site)) == expected


def test_screenshots_show_whole_pages(site: Path, browser, tmp_path: Path) -> None:
    edit(site / "chapter.html", "</article>", '<div style="height: 3000px"></div></article>')
    check_pages(browser, site, screenshot_dir=tmp_path / "shots", screenshot_pages={"chapter.html"})
    assert [path.name for path in (tmp_path / "shots").rglob("*.png")] == ["chapter.png"]
    with Image.open(tmp_path / "shots" / "chapter.png") as shot:
        assert 1280 - 20 <= shot.width <= 1280 and shot.height > 3000  # less the page's scroll bar


@needs_real_site
def test_book_has_no_broken_internal_links() -> None:
    problems = check_links(Path(REAL_SITE)).problems
    assert problems == [], "\n".join(map(str, problems))


@needs_real_site
def test_book_renders_in_a_browser(browser) -> None:
    site = Path(REAL_SITE).resolve()
    chapters = sorted(path.relative_to(site).as_posix() for path in site.glob("notebooks/*.html"))
    assert len(chapters) >= 2, f"no chapters in {site}"
    shown = ["book/intro.html", *chapters]
    screenshots = site.parent / "screenshots"
    # Chapters 3, 4, 8 and 10 (the widest math, code and figures) again at a phone's width, with screenshots.
    on_phone = [page for page in chapters if Path(page).name[:2] in {"03", "04", "08", "10"}]
    assert PHONE_CHAPTERS <= set(on_phone)  # test_book_check_sees_code_that_wraps relies on it
    shots = [(screenshots / page).with_suffix(".png") for page in shown]
    shots += [(screenshots / f"{PHONE}px" / page).with_suffix(".png") for page in on_phone]
    for shot in shots:  # only these: the explorer's screenshots, beside them, may be written meanwhile
        shot.unlink(missing_ok=True)
    problems = check_pages(browser, site, screenshot_dir=screenshots, screenshot_pages=shown)
    problems += check_pages(
        browser, site, pages=on_phone, width=PHONE, screenshot_dir=screenshots / f"{PHONE}px", screenshot_pages=on_phone
    )
    assert problems == [], "\n".join(map(str, problems))
    for shot in shots:
        assert shot.stat().st_size > 10_000, shot


@needs_real_site
def test_book_copy_with_planted_faults_fails(browser, tmp_path: Path) -> None:
    """A chapter with a figure and math, given a broken link, a deleted figure and no MathJax, is caught."""
    site = Path(shutil.copytree(Path(REAL_SITE), tmp_path / "html"))
    chapters = sorted(site.glob("notebooks/*.html"))
    page = next((p for p in chapters if "_images/" in p.read_text() and 'class="math' in p.read_text()), None)
    assert page is not None, "no chapter with both a figure and math"
    html = page.read_text()
    link = re.search(r'(<a [^>]*href=")[\w./-]+\.html', html)
    figure = re.search(r'src="([\w./-]*_images/[^"]+)"', html)
    mathjax = re.search(r"<script[^>]*mathjax[^>]*></script>", html)
    assert link and figure and mathjax
    page.write_text(html.replace(link[0], link[1] + "no-such-page.html", 1).replace(mathjax[0], ""))
    (page.parent / figure[1]).unlink()
    name = page.relative_to(site).as_posix()
    assert (name, "broken-link") in found(check_links(site).problems)
    assert {(name, "missing-image"), (name, "unrendered-math")} <= found(check_pages(browser, site, pages={name}))


@needs_real_site
def test_book_pdf_reads_as_a_book() -> None:
    """``python book/pdf.py`` has printed the site as a book: title page, contents with page numbers,
    a running head and a number on every page, no web controls, bookmarks for every chapter and
    section, no links into the file system (tests/pdfcheck.py)."""
    pytest.importorskip("pypdf")
    from pdf import PDF_NAME
    from pdfcheck import check_pdf

    pdf = Path(REAL_SITE) / PDF_NAME
    assert pdf.is_file(), f"no {pdf}: run `python book/pdf.py {REAL_SITE}`"
    problems = check_pdf(pdf, Path(REAL_SITE))
    assert problems == [], "\n".join(problems)


@needs_real_site
def test_book_pdf_check_catches_a_pdf_that_is_not_a_book(tmp_path: Path) -> None:
    """Pages of the book without the title page before them and without bookmarks are caught."""
    pypdf = pytest.importorskip("pypdf")
    from pdf import PDF_NAME
    from pdfcheck import check_pdf

    writer = pypdf.PdfWriter()
    for page in pypdf.PdfReader(Path(REAL_SITE) / PDF_NAME).pages[1:12]:  # no title page, no outline
        writer.add_page(page)
    damaged = tmp_path / PDF_NAME
    with damaged.open("wb") as file:
        writer.write(file)
    problems = "\n".join(check_pdf(damaged, Path(REAL_SITE)))
    assert "page 1 is not a title page" in problems
    assert "top-level bookmarks" in problems
    assert "does not end with its number" in problems


def test_pdf_without_a_browser_says_in_one_line_how_to_get_it(tmp_path: Path) -> None:
    """No Chromium or Chrome anywhere: ``python book/pdf.py`` explains in one line and succeeds."""
    pytest.importorskip("pypdf")
    if MACOS_CHROME.is_file():
        pytest.skip("Chrome is installed in /Applications, where no PATH can hide it")
    (tmp_path / "index.html").write_text("<!DOCTYPE html><title>a built site</title>")
    pdf = Path(__file__).resolve().parents[1] / "book" / "pdf.py"
    env = {**os.environ, "PATH": str(tmp_path)}  # a PATH without any browser
    run = subprocess.run([sys.executable, str(pdf), str(tmp_path)], capture_output=True, text=True, env=env,
                         check=False)
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == 1 and "install Chromium" in run.stdout and "python book/pdf.py" in run.stdout
    assert not (tmp_path / "vae-book.pdf").exists()


# ---- The latent explorer on the built chapters (vae/export.py, book/_static/latent-explorer.js) ----

EXPLORER_PAGES = ["notebooks/05_vae_digits.html", "notebooks/08_latent_space.html"]
EXPLORER_TOLERANCE = 1e-3  # grey levels, between the page's decoder and the library's on the same weights
# Codes to visit: the origin, a point on each side, one beyond the prior's 3σ circle.
EXPLORER_CODES = [(0.0, 0.0), (1.25, -0.5), (-2.0, 1.5), (0.4, 2.2), (3.2, -3.1)]


def embedded_model(page: Path) -> dict:
    """The model a chapter page carries: the JSON inside its explorer, read from the HTML file."""
    import json

    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    script = soup.select_one(".latent-explorer script.latent-explorer-data")
    assert script is not None, f"{page.name} has no latent explorer"
    return json.loads(script.string)


def library_means(data: dict, codes: list[tuple[float, float]]) -> list[list[float]]:
    """The library's mean images at ``codes``, from the weights the page carries."""
    import torch

    from vae import export

    return export.decode_data(data, torch.tensor(codes, dtype=torch.float32)).tolist()


@contextlib.contextmanager
def open_explorer(browser, page: Path, *, width: int, touch: bool = False) -> Iterator[tuple[object, list[str]]]:
    """A tab with the chapter open from file://, its explorer started, and the list of errors it logs;
    the tab's browser context is closed on leaving."""
    context = browser.new_context(viewport={"width": width, "height": 900}, has_touch=touch,
                                  device_scale_factor=2 if touch else 1)
    try:
        tab = context.new_page()
        errors: list[str] = []
        def log(text: str) -> None:
            if text not in HARMLESS_ERRORS:  # what the theme logs on every page (tests/sitecheck.py says why)
                errors.append(text)

        tab.on("console", lambda message: message.type == "error" and log(message.text))
        tab.on("pageerror", lambda error: log(str(error)))
        tab.route("http://*/**", lambda route: (errors.append(f"network: {route.request.url}"), route.abort()))
        tab.route("https://*/**", lambda route: (errors.append(f"network: {route.request.url}"), route.abort()))
        tab.goto(page.resolve().as_uri(), wait_until="load")
        tab.wait_for_function("() => window.latentExplorer !== undefined", timeout=10_000)
        yield tab, errors
    finally:
        context.close()


def explorer_screenshots() -> Path:
    """The folder of the explorer's screenshots, ``_build/screenshots/explorer`` beside the site."""
    folder = Path(REAL_SITE).resolve().parent / "screenshots" / "explorer"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def explorer_state(tab) -> dict:
    return tab.evaluate("() => ({code: latentExplorer.code(), pixels: latentExplorer.pixels(), "
                        "sample: latentExplorer.samplePixels()})")


def assert_decodes_like_the_library(tab, data: dict, where: str) -> list[float]:
    """The page's mean image at its current code equals the library's there; returns the code."""
    state = explorer_state(tab)
    expected = library_means(data, [tuple(state["code"])])[0]
    worst = max(abs(a - b) for a, b in zip(state["pixels"], expected))
    assert worst < EXPLORER_TOLERANCE, f"{where}: the page's mean image is {worst:.2g} grey levels off at {state['code']}"
    assert len(state["sample"]) == 64 and all(float(v).is_integer() and 0 <= v <= 16 for v in state["sample"])
    return state["code"]


@needs_real_site
@pytest.mark.parametrize("chapter", EXPLORER_PAGES)
def test_explorer_decodes_like_the_library_by_api_keys_and_mouse(browser, chapter: str) -> None:
    """setCode, the arrow keys and a mouse drag each move the cross; the page then shows the library's image."""
    page = Path(REAL_SITE) / chapter
    data = embedded_model(page)
    assert data["fidelity"]["max_abs_error"] < 0.1  # the stored weights stay close to the trained model's
    with open_explorer(browser, page, width=1280) as (tab, errors):
        # The API: the page's pixels at several codes, against the library's at the same codes.
        pixels = [tab.evaluate("([z1, z2]) => { latentExplorer.setCode(z1, z2); return latentExplorer.pixels(); }",
                               list(code)) for code in EXPLORER_CODES]
        expected = library_means(data, EXPLORER_CODES)
        worst = max(abs(a - b) for got, want in zip(pixels, expected) for a, b in zip(got, want))
        assert worst < EXPLORER_TOLERANCE, f"setCode: {worst:.2g} grey levels off"
        # The keyboard: Home goes to the origin, arrows step by 0.1, with Shift by 0.5.
        plane = tab.locator(".latent-explorer canvas.lx-plane-canvas").first
        assert plane.get_attribute("aria-label") and plane.get_attribute("tabindex") == "0"
        plane.focus()
        tab.keyboard.press("Home")
        for key in ["ArrowRight"] * 5 + ["ArrowUp"] * 3 + ["Shift+ArrowDown"]:
            tab.keyboard.press(key)
        tab.wait_for_timeout(50)
        code = assert_decodes_like_the_library(tab, data, "keyboard")
        assert code == pytest.approx([0.5, -0.2], abs=1e-9)
        # The mouse: press at one code, drag to another, release.
        start, end = tab.evaluate("() => [latentExplorer.clientPoint(-1, 1), latentExplorer.clientPoint(1.5, -0.75)]")
        tab.mouse.move(start["x"], start["y"])
        tab.mouse.down()
        assert tab.evaluate("() => latentExplorer.code()") == pytest.approx([-1, 1], abs=0.05)
        tab.mouse.move(end["x"], end["y"], steps=8)
        tab.mouse.up()
        tab.wait_for_timeout(50)
        code = assert_decodes_like_the_library(tab, data, "mouse drag")
        assert code == pytest.approx([1.5, -0.75], abs=0.05)
        # The figure drew what it computed: the mean image's canvas holds the grey of each pixel.
        drawn = tab.evaluate("""() => {
            const canvas = document.querySelectorAll('.latent-explorer .lx-image canvas')[0];
            return Array.from(canvas.getContext('2d').getImageData(0, 0, 8, 8).data.filter((_, i) => i % 4 === 0));
        }""")
        means = tab.evaluate("() => latentExplorer.pixels()")
        assert all(abs(grey - round(255 * (1 - min(max(m / 16, 0), 1)))) <= 1 for grey, m in zip(drawn, means))
        assert errors == [], errors


@needs_real_site
@pytest.mark.parametrize("chapter", EXPLORER_PAGES)
def test_explorer_follows_a_finger_on_a_phone_and_fits_its_column(browser, chapter: str) -> None:
    """At a phone's width (390 px, touch): a tap and a touch drag move the cross, and nothing sticks out."""
    page = Path(REAL_SITE) / chapter
    data = embedded_model(page)
    screenshots = explorer_screenshots()
    with open_explorer(browser, page, width=PHONE, touch=True) as (tab, errors):
        root = tab.locator(".latent-explorer").first
        root.scroll_into_view_if_needed()
        point = tab.evaluate("() => latentExplorer.clientPoint(-1.5, -1)")
        tab.touchscreen.tap(point["x"], point["y"])  # real touch events, which Chromium turns into pointer events
        tab.wait_for_timeout(50)
        code = assert_decodes_like_the_library(tab, data, "tap")
        assert code == pytest.approx([-1.5, -1], abs=0.05)
        # A drag: touch pointer events, as a finger sends them.
        tab.evaluate("""() => {
            const canvas = document.querySelector('.latent-explorer canvas.lx-plane-canvas');
            const at = (type, z1, z2) => {
                const p = latentExplorer.clientPoint(z1, z2);
                canvas.dispatchEvent(new PointerEvent(type, {pointerId: 7, pointerType: 'touch', isPrimary: true,
                    clientX: p.x, clientY: p.y, bubbles: true, cancelable: true, button: 0, buttons: 1}));
            };
            at('pointerdown', 0, 0);
            for (let t = 1; t <= 10; t++) at('pointermove', 0.2 * t, 0.1 * t);
            at('pointerup', 2, 1);
        }""")
        tab.wait_for_timeout(50)
        code = assert_decodes_like_the_library(tab, data, "touch drag")
        assert code == pytest.approx([2, 1], abs=0.05)
        # The figure fits the phone's column: no part of it reaches past the article's edge.
        overflow = tab.evaluate("""() => {
            const article = document.querySelector('article').getBoundingClientRect();
            return Array.from(document.querySelectorAll('.latent-explorer *'))
                .map(el => el.getBoundingClientRect())
                .filter(box => box.width > 0 && (box.right > article.right + 1 || box.left < article.left - 1)).length;
        }""")
        assert overflow == 0
        assert tab.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        root.screenshot(path=str(screenshots / f"{Path(chapter).stem}-{PHONE}px.png"))
        assert errors == [], errors


@needs_real_site
@pytest.mark.parametrize("chapter", EXPLORER_PAGES)
def test_explorer_prints_as_a_still_and_is_screenshotted(browser, chapter: str) -> None:
    """On paper the plane and the images print as they stand, without the button and the hint."""
    page = Path(REAL_SITE) / chapter
    screenshots = explorer_screenshots()
    with open_explorer(browser, page, width=1280) as (tab, errors):
        root = tab.locator(".latent-explorer").first
        tab.evaluate("() => latentExplorer.setCode(0.8, -1.1)")
        root.screenshot(path=str(screenshots / f"{Path(chapter).stem}-1280px.png"))
        tab.emulate_media(media="print")
        shown = tab.evaluate("""() => Object.fromEntries(['.lx-plane-canvas', '.lx-image canvas', '.lx-button', '.lx-hint']
            .map(s => [s, getComputedStyle(document.querySelector('.latent-explorer ' + s)).display !== 'none']))""")
        assert shown == {".lx-plane-canvas": True, ".lx-image canvas": True, ".lx-button": False, ".lx-hint": False}
        assert len(tab.pdf(format="A4")) > 10_000
        assert errors == [], errors
    for width in ("1280px", f"{PHONE}px"):
        shot = screenshots / f"{Path(chapter).stem}-{width}.png"
        if shot.exists():
            assert shot.stat().st_size > 5_000

# ---- Read anywhere (issue 23): code keeps its lines, inline math stays on a phone's screen, figure
# text on a phone, one search entry, pages that describe themselves, the PDF as a book (above). ----

LONG_OUTPUT = "epoch  loss  " + "  ".join(f"column_{i}" for i in range(30))


def test_browser_check_reports_wrapped_code(site: Path, browser) -> None:
    """A page whose code wraps its lines (``pre-wrap``) is reported at a desktop's and a phone's width."""
    edit(site / "start.html", "ELBO -80.5 nats", LONG_OUTPUT)
    edit(site / "start.html", "</head>", "<style>pre { white-space: pre-wrap; }</style></head>")
    for width in (DESKTOP, PHONE):
        assert found(check_pages(browser, site, width=width)) == {("start.html", "wrapped")}, width


def test_browser_check_accepts_code_that_scrolls(site: Path, browser) -> None:
    """The same long line kept whole in a box that scrolls, with its scroll bar, is fine."""
    edit(site / "start.html", "ELBO -80.5 nats", LONG_OUTPUT)
    edit(site / "start.html", "</head>", "<style>pre { white-space: pre; overflow-x: auto; }</style></head>")
    for width in (DESKTOP, PHONE):
        problems = check_pages(browser, site, width=width)
        assert problems == [], "\n".join(map(str, problems))


def test_browser_check_reports_a_long_output_cut_to_its_box(site: Path, browser) -> None:
    rows = "\n".join(f"epoch {i}" for i in range(80))
    edit(site / "start.html", "ELBO -80.5 nats", rows)
    edit(site / "start.html", "</head>", "<style>.output { max-height: 10em; overflow: hidden; }</style></head>")
    assert found(check_pages(browser, site)) == {("start.html", "clipped")}


def test_browser_check_reports_inline_math_past_a_phone_edge(site: Path, browser) -> None:
    """Inline math wider than a phone's column runs past its edge unless the page lets it break."""
    terms = " + ".join(f"x_{{{i}}}" for i in range(30))
    edit(site / "chapter.html", "<p><a", f'<p>so that <span class="math">\\({terms}\\)</span> holds.</p><p><a')
    assert found(check_pages(browser, site, width=PHONE)) == {("chapter.html", "clipped")}


def test_figure_text_is_measured_at_a_phone_width(site: Path, browser) -> None:
    """At a phone's width a figure is shown no wider than the column, so its text no larger; a
    figure whose text falls below the phone's minimum there is reported."""
    desktop = figure_text_sizes(browser, site)["start.html"]["_images/plot.png"]
    phone = figure_text_sizes(browser, site, width=PHONE)["start.html"]["_images/plot.png"]
    assert desktop == pytest.approx(12.5) and phone <= desktop
    save_figure(site / "_images" / "plot.png", smallest_text_px=MIN_PHONE_FIGURE_TEXT_PX - 1)
    assert found(check_pages(browser, site, width=PHONE)) == {("start.html", "small-text")}


PHONE_CHAPTERS = {"notebooks/04_elbo.html", "notebooks/10_better_priors.html"}


@needs_real_site
def test_book_check_sees_code_that_wraps(browser) -> None:
    """With the old rule (``pre-wrap``) planted on chapters 4 and 10, the check reports wrapped code
    blocks at a desktop's and a phone's width (`test_book_renders_in_a_browser` checks the same pages,
    as built, at both widths)."""
    site = Path(REAL_SITE)
    for width in (DESKTOP, PHONE):
        planted = check_pages(
            browser, site, pages=PHONE_CHAPTERS, width=width, extra_css="pre { white-space: pre-wrap !important; }"
        )
        assert {kind for _, kind in found(planted)} == {"wrapped"}, width
        assert {page for page, _ in found(planted)} == PHONE_CHAPTERS


@needs_real_site
def test_book_inline_math_fits_a_phone_and_the_check_sees_it_cut_off(browser) -> None:
    """Chapter 4 has the longest inline formulas: on a phone they break rather than run past the edge
    (the whole-site test checks that); with MathJax's unbreakable inline math planted back, the check
    reports them."""
    site, page = Path(REAL_SITE), "notebooks/04_elbo.html"
    unbreakable = (
        'mjx-container:not([display="true"]) > mjx-math { display: inline-block !important; '
        "white-space: nowrap !important; }"
    )
    planted = check_pages(browser, site, pages={page}, width=PHONE, extra_css=unbreakable)
    assert any(p.kind == "clipped" and "inline math" in p.detail for p in planted), "\n".join(map(str, planted))


@needs_real_site
def test_book_figure_text_on_a_phone(browser, capsys) -> None:
    """Every figure's smallest text at a phone's width, reported; none below the phone's minimum."""
    sizes = figure_text_sizes(browser, Path(REAL_SITE), width=PHONE)
    shown = sorted((size, page, src) for page, figures in sizes.items() for src, size in figures.items() if size)
    assert shown, "no figures measured"
    with capsys.disabled():
        print(
            f"\nsmallest figure text at {PHONE} px: {shown[0][0]:.1f} px ({shown[0][1]}), "
            f"median {shown[len(shown) // 2][0]:.1f} px over {len(shown)} figures"
        )
    assert shown[0][0] >= MIN_PHONE_FIGURE_TEXT_PX


@needs_real_site
def test_book_has_one_search_entry(browser) -> None:
    """One search entry is shown at each width: the sidebar's field, or the header's icon on a phone."""
    page = (Path(REAL_SITE) / "notebooks" / "04_elbo.html").resolve().as_uri()
    for width in (DESKTOP, 1000, PHONE):
        context = browser.new_context(viewport={"width": width, "height": 900})
        tab = context.new_page()
        tab.goto(page, wait_until="load")
        visible = tab.evaluate("""() => Array.from(document.querySelectorAll(".search-button__button"))
            .filter(el => { const box = el.getBoundingClientRect(); return box.width > 0 && box.height > 0
                && getComputedStyle(el).visibility !== "hidden"; }).length""")
        context.close()
        assert visible == 1, f"{visible} search entries at {width} px"


@needs_real_site
def test_book_pages_describe_themselves() -> None:
    """Every page has a description, OpenGraph tags and the favicon, and no thebe; the 404 page is built."""
    from bs4 import BeautifulSoup
    from sitecheck import site_pages

    site = Path(REAL_SITE)
    for page in site_pages(site):
        html = page.read_text(encoding="utf-8")
        soup = BeautifulSoup(html, "html.parser")
        if soup.find("meta", attrs={"http-equiv": re.compile("refresh", re.IGNORECASE)}):
            continue
        name = page.relative_to(site).as_posix()
        assert soup.find("meta", attrs={"name": "description"}), name
        title = soup.find("meta", attrs={"property": "og:title"})
        assert title and "<" not in title["content"], name
        assert soup.find("link", attrs={"rel": "icon"}), name
        assert "thebe" not in html.lower(), name
    assert "Page not found" in (site / "404.html").read_text(encoding="utf-8")
