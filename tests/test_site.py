"""The website checks catch what they promise to, and the built book passes them.

The first tests build a small site in a temporary folder, with an image, links to anchors and
math typeset by the MathJax that the book ships (from the ``sphinx-mathjax-offline`` package), then
plant one fault at a time in a copy and assert that the checks report exactly that fault. The
browser tests skip when Chromium or Playwright is missing.

The last tests check a real build, when ``VAE_SITE`` names its folder (they then fail, not skip,
without a browser)::

    VAE_SITE=_build/html python -m pytest tests/test_site.py -p no:nbmake -o addopts="" -k book

They check every page at a desktop's width and chapters 3, 4 and 8 at a phone's, save screenshots
of the intro and every chapter (and of chapters 3, 4 and 8 at the phone's width, in ``390px/``) in
``_build/screenshots`` (next to ``html``), and plant faults in a copy of the site to show that the
checks catch them there too.
"""

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
from sitecheck import MIN_TEXT_KEY, PHONE, Problem, check_links, check_pages

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
from browser import HOW_TO_INSTALL, MACOS_CHROME, find_chromium, open_browser

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


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium, shared by the tests of this file.

    Without it the tests skip, except when ``VAE_SITE`` asks for the real check: then they fail.
    """
    missing = None
    if find_chromium() is None:
        missing = f"no Chromium or Chrome found ({HOW_TO_INSTALL})"
    elif importlib.util.find_spec("playwright") is None:
        missing = "playwright is not installed (pip install -r requirements.txt)"
    if missing and REAL_SITE:
        pytest.fail(missing)
    if missing:
        pytest.skip(missing)
    with open_browser() as browser:
        yield browser


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
    shutil.rmtree(screenshots, ignore_errors=True)
    problems = check_pages(browser, site, screenshot_dir=screenshots, screenshot_pages=shown)
    # Chapters 3, 4 and 8 (the widest math, code and figures) again at a phone's width, with screenshots.
    on_phone = [page for page in chapters if Path(page).name[:2] in {"03", "04", "08"}]
    problems += check_pages(
        browser, site, pages=on_phone, width=PHONE, screenshot_dir=screenshots / f"{PHONE}px", screenshot_pages=on_phone
    )
    assert problems == [], "\n".join(map(str, problems))
    for page in shown:
        assert (screenshots / page).with_suffix(".png").stat().st_size > 10_000, page
    for page in on_phone:
        assert (screenshots / f"{PHONE}px" / page).with_suffix(".png").stat().st_size > 10_000, page


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
def test_book_pdf_has_a_bookmark_per_page_in_reading_order() -> None:
    """``python book/pdf.py`` has printed the site: one bookmark per page of the book, in toc order."""
    pypdf = pytest.importorskip("pypdf")
    from pdf import PDF_NAME, book_pages

    reader = pypdf.PdfReader(Path(REAL_SITE) / PDF_NAME)
    titles = [item.title for item in reader.outline]
    assert len(titles) == len(book_pages()) and titles[-1] == "Bibliography"
    assert [title.split(".")[0] for title in titles[1:-2]] == [str(n) for n in range(1, len(titles) - 2)]
    pages = [reader.get_destination_page_number(item) for item in reader.outline]
    assert pages == sorted(pages) and len(reader.pages) > 2 * len(titles)


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
