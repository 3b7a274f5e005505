"""The interactive figures of chapters 4 and 9 (vae/web_figures.py, book/_static/elbo-explorer.js and
book/_static/beta-explorer.js).

The first tests need no site: the ELBO explorer's JavaScript, run under node, must compute the same
ELBO, log p(x) and KL(q || p(z|x)) as the library (``vae.tractable.GridPosterior``) on the data the
page carries, within 1e-3 nats; the library's values on a stored window must match its values on the
whole grid; the β explorer's images must decode to the stored grey levels. They skip without node.

The last tests drive the figures on a built site, from ``file://``, when ``VAE_SITE`` names it (they
then fail, not skip, without a browser)::

    VAE_SITE=_build/html python -m pytest tests/test_interactive_figures.py -p no:nbmake -o addopts=""

They move q by the page's API, the arrow keys, a mouse drag of its centre and of a handle, a slider
and a finger at a phone's width, and compare what the page shows with the library's values at the
same q; they move the β slider by keys, a click and a tap; they check that nothing sticks out at
390 px, that the figures print without their controls, that the embedded data stay small, and they
save screenshots at 1280 and 390 px in ``_build/screenshots/interactive`` (next to ``html``).
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

import vae
from vae import tractable, web_figures

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
ELBO_SCRIPT = ROOT / "book" / "_static" / "elbo-explorer.js"
BETA_SCRIPT = ROOT / "book" / "_static" / "beta-explorer.js"
TOLERANCE = 1e-3  # nats, between the page's values and the library's at the same q
REAL_SITE = os.environ.get("VAE_SITE")
needs_real_site = pytest.mark.skipif(not REAL_SITE, reason="set VAE_SITE to a built site, e.g. VAE_SITE=_build/html")
ELBO_PAGE, BETA_PAGE = "notebooks/04_elbo.html", "notebooks/09_going_further.html"
PHONE = 390


# ---- Without a site ----

@pytest.fixture(scope="module")
def posterior_setup():
    """A small 2-D VAE (random, with weights scaled up so that its posteriors are narrow, as if trained),
    its exact posteriors on the chapter's kind of grid, and its encoder's Gaussians."""
    torch.manual_seed(0)
    model = vae.VAE(64, [32], latent_dim=2, likelihood="categorical").eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(2.5)
    x = torch.randint(0, 17, (4, 64), generator=torch.Generator().manual_seed(1))
    grid = tractable.latent_grid(2, n=121, limit=3.0)
    exact = tractable.grid_posterior(model.likelihood, x, grid)
    # An encoder's guesses as a trained one makes them: near each posterior, a little off and too wide.
    post_mean, post_var = exact.moments()
    mean, logvar = (post_mean + 0.7 * post_var.sqrt()).float(), (1.5 * post_var).log().float()
    return exact, x, mean, logvar


@pytest.fixture(scope="module")
def elbo_data(posterior_setup) -> dict:
    exact, x, mean, logvar = posterior_setup
    data = web_figures.elbo_explorer_data(exact, x, [0, 2, 3], mean, logvar, labels=[1, 2, 3])
    return json.loads(web_figures.to_json(data))


def run_node(program: str, payload: object) -> object:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript's maths is checked in the browser tests only")
    done = subprocess.run([node, "-e", program], input=json.dumps(payload), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def node_elbo_values(data: dict, queries: list[tuple[int, list[float], list[float]]]) -> list[dict]:
    """The JavaScript's {elbo, logPx, kl} for each (image, mean, logvar), under node."""
    program = f"""
        const maths = require({json.dumps(str(ELBO_SCRIPT))});
        const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
        const windows = input.data.images.map(maths.readWindow);
        const out = input.queries.map(([k, m, lv]) => maths.values(windows[k], m, lv));
        process.stdout.write(JSON.stringify(out));
    """
    return run_node(program, {"data": data, "queries": queries})


def random_queries(data: dict, n: int, seed: int) -> list[tuple[int, list[float], list[float]]]:
    """Gaussians q that the page allows on each window: widths from one grid cell to a fifth of the
    half-width, centres four widths inside the edge."""
    rng = np.random.default_rng(seed)
    queries = []
    for k, image in enumerate(data["images"]):
        half = image["step"] * (image["n"] - 1) / 2
        for _ in range(n):
            s = np.exp(rng.uniform(np.log(image["step"]), np.log(half / 5), 2))
            m = np.array(image["centre"]) + rng.uniform(-1, 1, 2) * (half - 4 * s)
            queries.append((k, m.tolist(), (2 * np.log(s)).tolist()))
    return queries


def test_javascript_elbo_and_kl_equal_the_librarys(elbo_data):
    queries = random_queries(elbo_data, 12, seed=0)
    for image in elbo_data["images"]:  # and the two stored Gaussians
        k = elbo_data["images"].index(image)
        queries += [(k, image[key]["mean"], image[key]["logvar"]) for key in ("encoder", "best")]
    js = node_elbo_values(elbo_data, queries)
    for (k, m, lv), got in zip(queries, js):
        want = web_figures.elbo_values(elbo_data["images"][k], m, lv)
        assert abs(got["elbo"] - want["elbo"]) < TOLERANCE, (k, m, lv)
        assert abs(got["kl"] - want["kl"]) < TOLERANCE, (k, m, lv)
        assert abs(got["logPx"] - want["log_px"]) < TOLERANCE
        assert got["kl"] > -TOLERANCE  # the ELBO is a lower bound on the window's log p(x)
        # the identity log p(x) = ELBO + KL, with the KL summed independently on the grid
        assert abs(want["kl"] - want["kl_sum"]) < 0.05 * max(1.0, want["kl"]), (k, m, lv)
    for image, got in zip(elbo_data["images"], node_elbo_values(elbo_data, [(k, *[image["encoder"][key]
                          for key in ("mean", "logvar")]) for k, image in enumerate(elbo_data["images"])])):
        assert abs(got["elbo"] - image["encoder"]["elbo"]) < 1e-9  # the marks drawn are the page's own values


def test_the_stored_window_gives_the_librarys_values_on_the_whole_grid(posterior_setup, elbo_data):
    """The window's sums, in coordinates centred on it, are the whole grid's, up to the 16-bit rounding."""
    exact = posterior_setup[0]
    fidelity = elbo_data["fidelity"]
    assert fidelity["window_log_px"] < 2e-3 and fidelity["encoder_elbo"] < 2e-3 and fidelity["best_elbo"] < 2e-3
    for k, i in enumerate([0, 2, 3]):
        image = elbo_data["images"][k]
        one = tractable.GridPosterior(exact.grid, *(t[i:i + 1] for t in (exact.log_lik, exact.log_evidence,
                                                                          exact.log_density)))
        for m, lv in [(q[1], q[2]) for q in random_queries({"images": [image]}, 5, seed=k)]:
            whole = float(one.elbo(torch.tensor([m], dtype=torch.float64), torch.tensor([lv], dtype=torch.float64)))
            # q's tails beyond the window, where log p(x|z) is far lower, are left out: a little, far out
            assert abs(web_figures.elbo_values(image, m, lv)["elbo"] - whole) < 5e-3 + 1e-3 * (image["log_px"] - whole)
        assert abs(image["log_px"] - float(exact.log_evidence[i])) < 2e-3
        # the best Gaussian is at least as good as the encoder's, and no q beats log p(x)
        assert image["encoder"]["elbo"] <= image["best"]["elbo"] + 1e-9 <= image["log_px"] + 1e-9


def test_a_window_at_the_origin_is_the_librarys_own_grid(posterior_setup):
    """With the window the whole grid, elbo_values is GridPosterior.elbo and .kl on the stored values, exactly."""
    exact, *_ = posterior_setup
    n = len(exact.grid.axis)
    values = exact.log_lik[1].reshape(n, n).numpy()
    image = {"centre": [0.0, 0.0], "step": float(exact.grid.axis[1] - exact.grid.axis[0]), "n": n,
             "log_lik": web_figures._encode_levels(values)}
    stored = torch.as_tensor(web_figures.decode_levels(image["log_lik"])).reshape(1, -1)
    assert np.abs(stored.numpy() - values.reshape(1, -1)).max() <= image["log_lik"]["scale"] / 2 + 1e-9
    log_joint = stored + exact.grid.log_prior()
    log_evidence = torch.logsumexp(log_joint, 1) + exact.grid.log_cell
    library = tractable.GridPosterior(exact.grid, stored, log_evidence, log_joint - log_evidence[:, None])
    for m, lv in [([0.3, -0.4], [-2.0, -3.0]), ([-1.0, 1.2], [-1.0, -1.5])]:
        got = web_figures.elbo_values(image, m, lv)
        mt, lvt = torch.tensor([m], dtype=torch.float64), torch.tensor([lv], dtype=torch.float64)
        assert got["elbo"] == pytest.approx(float(library.elbo(mt, lvt)), abs=1e-9)
        assert got["kl_sum"] == pytest.approx(float(library.kl(mt, lvt)), abs=1e-9)
        assert got["log_px"] == pytest.approx(float(log_evidence), abs=1e-9)


def test_the_elbo_document_is_small_and_refused_for_other_latents(posterior_setup, elbo_data):
    _, x, mean, logvar = posterior_setup
    assert len(web_figures.to_json(elbo_data)) < 60_000
    for image in elbo_data["images"]:
        assert image["n"] % 2 == 1 and len(image["pixels"]) == 64 and image["label"] in (1, 2, 3)
        half = image["step"] * (image["n"] - 1) / 2
        assert web_figures.MIN_HALF - 1e-9 <= half <= web_figures.MAX_HALF + 1e-9
        mean_q = np.array(image["encoder"]["mean"])
        assert (np.abs(mean_q - image["centre"]) <= half).all()  # the encoder's q is on the window
    one_d = tractable.grid_posterior(lambda z: vae.VAE(64, [8], latent_dim=1).likelihood(z), x,
                                     tractable.latent_grid(1, 21, 3.0))
    with pytest.raises(ValueError, match="2-D latent plane"):
        web_figures.elbo_explorer_data(one_d, x, [0], mean[:, :1], logvar[:, :1])


@pytest.fixture(scope="module")
def beta_setup():
    torch.manual_seed(0)
    sweep = {beta: vae.VAE(64, [32], latent_dim=3, likelihood="categorical") for beta in (0.1, 1.0, 10.0)}
    scores = {beta: {"elbo": -90.0 - beta, "rec": -80.0 - 2 * beta, "kl": 10.0 / (1 + beta)} for beta in sweep}
    x = torch.randint(0, 17, (10, 64), generator=torch.Generator().manual_seed(2))
    z = torch.randn(10, 3)
    return sweep, scores, x, z


def test_the_beta_document_holds_each_models_images_as_grey_levels(beta_setup):
    sweep, scores, x, z = beta_setup
    data = web_figures.beta_explorer_data(sweep, scores, x, z, train_scores=scores)
    assert [m["beta"] for m in data["models"]] == [0.1, 1.0, 10.0] and data["start"] == 1
    for model, beta in zip(data["models"], sorted(sweep)):
        assert model["rate"] == pytest.approx(scores[beta]["kl"], abs=1e-4)
        assert model["distortion"] == pytest.approx(-scores[beta]["rec"], abs=1e-4)
        with torch.no_grad():
            recon = sweep[beta].eval().decode(sweep[beta].encode(x)[0])
            samples = sweep[beta].decode(z)
        for texts, images in ((model["reconstructions"], recon), (model["samples"], samples)):
            stored = np.array([web_figures.levels_from_text(t) for t in texts])
            assert np.abs(stored - images.numpy()).max() <= 0.5 + 1e-6  # the mean image, rounded to a level
    assert [web_figures.levels_from_text(t) for t in data["digits"]] == x.tolist()
    assert len(web_figures.to_json(data)) < 8_000
    with pytest.raises(ValueError, match="every beta"):
        web_figures.beta_explorer_data(sweep, {1.0: scores[1.0]}, x, z)


def test_javascript_reads_the_grey_levels_as_python_does(beta_setup):
    sweep, scores, x, z = beta_setup
    data = web_figures.beta_explorer_data(sweep, scores, x, z)
    texts = data["models"][0]["reconstructions"] + data["digits"]
    program = f"""
        const maths = require({json.dumps(str(BETA_SCRIPT))});
        const texts = JSON.parse(require("fs").readFileSync(0, "utf8"));
        process.stdout.write(JSON.stringify(texts.map(maths.levels)));
    """
    assert run_node(program, texts) == [web_figures.levels_from_text(t) for t in texts]


def test_the_html_embeds_the_data_safely_and_a_still_for_other_front_ends(posterior_setup, beta_setup):
    matplotlib.pyplot.close("all")  # figures other tests left open are not this one's
    exact, x, mean, logvar = posterior_setup
    shown = web_figures.show_elbo_explorer(exact, x, [1], mean, logvar, names=["</script><b>"], label='a "q"')
    assert shown.html.count("</script>") == 2 and 'data-label="a &quot;q&quot;"' in shown.html
    assert 'src="../_static/elbo-explorer.js"' in shown.html and "://" not in shown.html
    inline = shown.html.split('class="elbo-explorer-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(inline)["images"][0]["name"] == "</script><b>"
    bundle = shown._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG") and "ELBO explorer" in bundle["text/plain"]
    beta = web_figures.show_beta_explorer(*beta_setup)
    assert 'src="../_static/beta-explorer.js"' in beta.html and 'class="beta-explorer"' in beta.html
    assert base64.b64decode(beta._repr_mimebundle_()["image/png"]).startswith(b"\x89PNG")
    assert not matplotlib.pyplot.get_fignums()


# ---- On a built site ----

def embedded(page: Path, kind: str) -> dict:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    script = soup.select_one(f".{kind} script.{kind}-data")
    assert script is not None, f"{page.name} has no {kind}"
    return json.loads(script.string)


def open_page(browser, page: Path, ready: str, *, width: int, touch: bool = False):
    """A tab with the chapter open from file://, its figure started; and the list of errors it logs."""
    sys.path.insert(0, str(ROOT / "tests"))
    from sitecheck import HARMLESS_ERRORS

    context = browser.new_context(viewport={"width": width, "height": 900}, has_touch=touch,
                                  device_scale_factor=2 if touch else 1)
    tab = context.new_page()
    errors: list[str] = []

    def log(text: str) -> None:
        if text not in HARMLESS_ERRORS:
            errors.append(text)

    def from_the_theme(message) -> bool:  # the theme's own scripts: tests/test_site.py checks those
        return "/_static/scripts/" in (message.location or {}).get("url", "")

    tab.on("console", lambda message: message.type == "error" and not from_the_theme(message) and log(message.text))
    tab.on("pageerror", lambda error: log(str(error)))
    for pattern in ("http://*/**", "https://*/**"):
        tab.route(pattern, lambda route: (errors.append(f"network: {route.request.url}"), route.abort()))
    tab.goto(page.resolve().as_uri(), wait_until="load")
    tab.wait_for_function(f"() => window.{ready} !== undefined", timeout=10_000)
    return context, tab, errors


def screenshots() -> Path:
    folder = Path(REAL_SITE).resolve().parent / "screenshots" / "interactive"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def assert_shows_the_librarys_values(tab, data: dict, where: str) -> dict:
    """The page's ELBO and KL at its current q equal the library's there; returns q."""
    state = tab.evaluate("() => ({q: elboExplorer.q(), values: elboExplorer.values(), image: elboExplorer.image()})")
    q, got = state["q"], state["values"]
    want = web_figures.elbo_values(data["images"][state["image"]], q["mean"], q["logvar"])
    assert abs(got["elbo"] - want["elbo"]) < TOLERANCE, f"{where}: ELBO {got['elbo']} against {want['elbo']}"
    assert abs(got["kl"] - want["kl"]) < TOLERANCE, f"{where}: KL {got['kl']} against {want['kl']}"
    readout = tab.locator(".elbo-explorer .ex-readout").inner_text()
    assert f"{abs(want['elbo']):.2f}" in readout and f"{abs(want['kl']):.2f}" in readout, readout
    return q


def no_overflow(tab, selector: str) -> None:
    overflow = tab.evaluate(f"""() => {{
        const article = document.querySelector('article').getBoundingClientRect();
        return Array.from(document.querySelectorAll('{selector} *')).map(el => el.getBoundingClientRect())
            .filter(box => box.width > 0 && (box.right > article.right + 1 || box.left < article.left - 1)).length;
    }}""")
    assert overflow == 0
    assert tab.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


@needs_real_site
def test_elbo_explorer_shows_the_librarys_elbo_by_api_keys_mouse_and_slider(browser) -> None:
    page = Path(REAL_SITE) / ELBO_PAGE
    data = embedded(page, "elbo-explorer")
    assert max(data["fidelity"][k] for k in ("window_log_px", "encoder_elbo", "best_elbo")) < 5e-3
    context, tab, errors = open_page(browser, page, "elboExplorer", width=1280)
    try:
        # The API, on every image: the page's values at allowed q's against the library's.
        for k, m, lv in random_queries(data, 4, seed=3):
            s = [math.exp(v / 2) for v in lv]
            got = tab.evaluate("([k, m, s]) => { elboExplorer.setImage(k); elboExplorer.setQ(m[0], m[1], s[0], s[1]);"
                               " return [elboExplorer.q(), elboExplorer.values()]; }", [k, m, s])
            assert got[0]["mean"] == pytest.approx(m, abs=1e-12)
            want = web_figures.elbo_values(data["images"][k], got[0]["mean"], got[0]["logvar"])
            assert abs(got[1]["elbo"] - want["elbo"]) < TOLERANCE and abs(got[1]["kl"] - want["kl"]) < TOLERANCE
        # The image chooser, then the keyboard: Home is the encoder's q, arrows step one grid cell.
        tab.select_option(".elbo-explorer select", "1")
        assert tab.evaluate("() => elboExplorer.image()") == 1
        image = data["images"][1]
        plane = tab.locator(".elbo-explorer canvas.ex-plane-canvas").first
        assert plane.get_attribute("aria-label") and plane.get_attribute("tabindex") == "0"
        plane.focus()
        tab.keyboard.press("Home")
        q = assert_shows_the_librarys_values(tab, data, "Home")
        assert q["mean"] == pytest.approx(image["encoder"]["mean"], abs=1e-9)
        assert tab.evaluate("() => elboExplorer.values().elbo") == pytest.approx(image["encoder"]["elbo"], abs=1e-9)
        for key in ["ArrowRight"] * 3 + ["ArrowUp"] * 2 + ["Shift+ArrowLeft"]:
            tab.keyboard.press(key)
        tab.wait_for_timeout(50)
        q = assert_shows_the_librarys_values(tab, data, "keyboard")
        step = image["step"]
        assert q["mean"] == pytest.approx([image["encoder"]["mean"][0] - 2 * step,
                                           image["encoder"]["mean"][1] + 2 * step], abs=1e-9)
        # The button: the best Gaussian.
        tab.locator(".elbo-explorer .ex-button", has_text="best").click()
        q = assert_shows_the_librarys_values(tab, data, "best button")
        assert q["mean"] == pytest.approx(image["best"]["mean"], abs=1e-9)
        # The mouse: press on the plane, drag the centre, release.
        c = image["centre"]
        start, end = tab.evaluate("([c]) => [elboExplorer.clientPoint(c[0] - 0.2, c[1] + 0.1), "
                                  "elboExplorer.clientPoint(c[0] + 0.15, c[1] - 0.1)]", [c])
        tab.mouse.move(start["x"] + 30, start["y"] + 30)  # away from q's handles
        tab.mouse.down()
        tab.mouse.move(end["x"], end["y"], steps=8)
        tab.mouse.up()
        tab.wait_for_timeout(50)
        q = assert_shows_the_librarys_values(tab, data, "mouse drag")
        assert q["mean"] == pytest.approx([c[0] + 0.15, c[1] - 0.1], abs=0.02)
        # A handle: drag the z1 handle outwards, and s1 follows.
        s_before = q["s"]
        handle = tab.evaluate("([m, s]) => elboExplorer.clientPoint(m[0] + s[0], m[1])", [q["mean"], q["s"]])
        target = tab.evaluate("([m, s]) => elboExplorer.clientPoint(m[0] + s[0] + 0.1, m[1])", [q["mean"], q["s"]])
        tab.mouse.move(handle["x"], handle["y"])
        tab.mouse.down()
        tab.mouse.move(target["x"], target["y"], steps=5)
        tab.mouse.up()
        tab.wait_for_timeout(50)
        q = assert_shows_the_librarys_values(tab, data, "handle drag")
        assert q["mean"] == pytest.approx(tab.evaluate("() => elboExplorer.q().mean"), abs=1e-12)
        assert q["s"][0] == pytest.approx(s_before[0] + 0.1, abs=0.02) and q["s"][1] == pytest.approx(s_before[1])
        # A slider, by the keyboard: s2 grows.
        slider = tab.locator(".elbo-explorer .ex-slider input").nth(1)
        slider.focus()
        for _ in range(5):
            tab.keyboard.press("ArrowRight")
        q2 = assert_shows_the_librarys_values(tab, data, "slider")
        assert q2["s"][1] > q["s"][1] * 1.05 and slider.get_attribute("aria-valuetext").startswith("s")
        assert errors == [], errors
    finally:
        context.close()


@needs_real_site
def test_elbo_explorer_follows_a_finger_fits_a_phone_and_prints(browser) -> None:
    page = Path(REAL_SITE) / ELBO_PAGE
    data = embedded(page, "elbo-explorer")
    folder = screenshots()
    context, tab, errors = open_page(browser, page, "elboExplorer", width=PHONE, touch=True)
    try:
        root = tab.locator(".elbo-explorer").first
        root.scroll_into_view_if_needed()
        tab.evaluate("() => elboExplorer.setImage(2)")
        c = data["images"][2]["centre"]
        point = tab.evaluate("([c]) => elboExplorer.clientPoint(c[0] - 0.1, c[1] + 0.05)", [c])
        tab.touchscreen.tap(point["x"], point["y"])
        tab.wait_for_timeout(50)
        q = assert_shows_the_librarys_values(tab, data, "tap")
        assert q["mean"] == pytest.approx([c[0] - 0.1, c[1] + 0.05], abs=0.02)
        no_overflow(tab, ".elbo-explorer")
        root.screenshot(path=str(folder / f"04_elbo-{PHONE}px.png"))
        assert errors == [], errors
    finally:
        context.close()
    context, tab, errors = open_page(browser, page, "elboExplorer", width=1280)
    try:
        root = tab.locator(".elbo-explorer").first
        tab.evaluate("() => { elboExplorer.setImage(1); }")
        root.screenshot(path=str(folder / "04_elbo-1280px.png"))
        tab.emulate_media(media="print")
        shown = tab.evaluate("""() => Object.fromEntries(['.ex-plane-canvas', '.ex-gauge', '.ex-readout', '.ex-button',
            '.ex-hint', '.ex-sliders'].map(s => [s, getComputedStyle(document.querySelector('.elbo-explorer ' + s)).display !== 'none']))""")
        assert shown == {".ex-plane-canvas": True, ".ex-gauge": True, ".ex-readout": True, ".ex-button": False,
                         ".ex-hint": False, ".ex-sliders": False}
        assert len(tab.pdf(format="A4")) > 10_000
        assert errors == [], errors
    finally:
        context.close()
    for width in ("1280px", f"{PHONE}px"):
        assert (folder / f"04_elbo-{width}.png").stat().st_size > 5_000


def drawn_levels(tab, row: int) -> list[list[int]]:
    """The grey levels the k-th row of images shows, read back from its canvases."""
    return tab.evaluate("""(row) => Array.from(document.querySelectorAll('.beta-explorer .bx-row')[row]
        .querySelectorAll('canvas')).map(c => Array.from(c.getContext('2d').getImageData(0, 0, 8, 8).data
        .filter((_, i) => i % 4 === 0)).map(g => Math.round((255 - g) / 255 * 16)))""", row)


@needs_real_site
def test_beta_explorer_moves_by_keys_click_and_shows_each_models_data(browser) -> None:
    page = Path(REAL_SITE) / BETA_PAGE
    data = embedded(page, "beta-explorer")
    assert len(web_figures.to_json(data)) < 20_000
    context, tab, errors = open_page(browser, page, "betaExplorer", width=1280)
    try:
        for k, model in enumerate(data["models"]):
            shown = tab.evaluate("(k) => { betaExplorer.setIndex(k); return betaExplorer.model(); }", k)
            assert shown == pytest.approx({key: model[key] for key in ("beta", "rate", "distortion", "elbo")})
            assert drawn_levels(tab, 1) == [web_figures.levels_from_text(t) for t in model["reconstructions"]]
            assert drawn_levels(tab, 2) == [web_figures.levels_from_text(t) for t in model["samples"]]
        assert drawn_levels(tab, 0) == [web_figures.levels_from_text(t) for t in data["digits"]]
        # The keyboard, on the slider.
        slider = tab.locator(".beta-explorer input[type=range]").first
        assert slider.get_attribute("aria-label")
        slider.focus()
        tab.keyboard.press("Home")
        assert tab.evaluate("() => betaExplorer.index()") == 0
        tab.keyboard.press("ArrowRight")
        tab.keyboard.press("ArrowRight")
        assert tab.evaluate("() => betaExplorer.index()") == 2
        assert slider.get_attribute("aria-valuetext") == f"β = {data['models'][2]['beta']:g}"
        # The mouse: a click on the last point of the curve.
        point = tab.evaluate(f"() => betaExplorer.clientPoint({len(data['models']) - 1})")
        tab.mouse.click(point["x"], point["y"])
        assert tab.evaluate("() => betaExplorer.index()") == len(data["models"]) - 1
        readout = tab.locator(".beta-explorer .bx-readout").inner_text()
        assert f"{data['models'][-1]['rate']:.2f}" in readout
        tab.evaluate(f"() => betaExplorer.setIndex({data['start']})")
        tab.locator(".beta-explorer").first.screenshot(path=str(screenshots() / "09_going_further-1280px.png"))
        tab.emulate_media(media="print")
        shown = tab.evaluate("""() => Object.fromEntries(['.bx-curve', '.bx-strip canvas', '.bx-control', '.bx-hint']
            .map(s => [s, getComputedStyle(document.querySelector('.beta-explorer ' + s)).display !== 'none']))""")
        assert shown == {".bx-curve": True, ".bx-strip canvas": True, ".bx-control": False, ".bx-hint": False}
        assert errors == [], errors
    finally:
        context.close()


@needs_real_site
def test_beta_explorer_follows_a_finger_and_fits_a_phone(browser) -> None:
    page = Path(REAL_SITE) / BETA_PAGE
    data = embedded(page, "beta-explorer")
    context, tab, errors = open_page(browser, page, "betaExplorer", width=PHONE, touch=True)
    try:
        root = tab.locator(".beta-explorer").first
        root.scroll_into_view_if_needed()
        point = tab.evaluate("() => betaExplorer.clientPoint(0)")
        tab.touchscreen.tap(point["x"], point["y"])
        tab.wait_for_timeout(50)
        assert tab.evaluate("() => betaExplorer.index()") == 0
        no_overflow(tab, ".beta-explorer")
        width = tab.evaluate("() => document.querySelector('.beta-explorer .bx-strip canvas').getBoundingClientRect().width")
        assert width >= 24  # each digit stays readable at a phone's width
        tab.evaluate(f"() => betaExplorer.setIndex({data['start']})")
        root.screenshot(path=str(screenshots() / f"09_going_further-{PHONE}px.png"))
        assert errors == [], errors
    finally:
        context.close()
