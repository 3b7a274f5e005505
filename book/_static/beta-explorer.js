/* The β explorer (chapter 9): one slider over the models of a sweep over the KL weight β.

   A chapter page holds a <div class="beta-explorer"> with its data as inline JSON
   (<script type="application/json" class="beta-explorer-data">, written by vae/web_figures.py): for
   each β, the test rate R and distortion D (and the training ones), and the mean images of its
   reconstructions of a few test digits and of a few prior samples, rounded to the 17 grey levels,
   one character per pixel (0-9, a-g). The reader moves the slider (mouse, touch or the arrow keys)
   or clicks a point of the curve; the rate-distortion curve marks that β, with its line of equal
   ELBO, -(D + R), and the images change. Plain JavaScript, no library and no network: it works
   from file:// too. The chapter's models have an 8-dimensional code, so no decoder runs here.

   For tests: window.betaExplorers lists the figures, window.betaExplorer is the first, with
   setIndex(k), index(), model() (the β, rate, distortion and ELBO shown), images() (the grey levels
   drawn) and clientPoint(k) (where the k-th point of the curve is on the screen). Under node,
   require() gives levels(text).
*/
(function () {
  "use strict";

  const DIGITS = "0123456789abcdefg";
  const levels = text => Array.from(text, c => DIGITS.indexOf(c));

  if (typeof module !== "undefined" && module.exports) module.exports = { levels };
  if (typeof document === "undefined") return;

  const CURVE_MAX = 380, CURVE_HEIGHT = 250;

  function element(tag, className, parent, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    if (parent) parent.appendChild(el);
    return el;
  }

  const minus = text => text.replace(/-/g, "\u2212");
  const fmt = (v, digits) => minus(v.toFixed(digits));
  const betaText = b => String(Number(b.toPrecision(3)));

  function niceStep(span, target) {
    const raw = span / target, power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
    return 10 * power;
  }

  function BetaExplorer(root, data) {
    const models = data.models;
    const [height, width] = data.image_shape;
    let index = data.start || 0, curveWidth = 0;

    root.textContent = "";
    root.classList.add("beta-explorer-live");
    const label = root.dataset.label || "\u03b2 explorer";
    const figure = element("div", "bx-figure", root);
    const left = element("div", "bx-left", figure);
    const curve = element("canvas", "bx-curve", left);
    curve.setAttribute("role", "img");
    const control = element("label", "bx-control", left);
    element("span", "bx-control-name", control, "\u03b2");
    const slider = element("input", "", control);
    slider.type = "range"; slider.min = "0"; slider.max = String(models.length - 1); slider.step = "1";
    slider.setAttribute("aria-label", label + ": the KL weight \u03b2 of the model shown");
    const ticks = element("div", "bx-ticks", left);
    ticks.setAttribute("aria-hidden", "true");
    models.forEach(model => element("span", "", ticks, betaText(model.beta)));
    const readout = element("p", "bx-readout", left);
    readout.setAttribute("aria-live", "polite");
    element("p", "bx-hint", left, "Move the slider, or click a point of the curve.");

    const right = element("div", "bx-right", figure);
    const rows = [["test digits", () => data.digits], ["reconstructions", () => models[index].reconstructions],
      ["samples from the prior", () => models[index].samples]].map(([name, images]) => {
      const box = element("figure", "bx-row", right);
      element("figcaption", "", box, name);
      const strip = element("div", "bx-strip", box);
      const canvases = images().map(() => {
        const canvas = element("canvas", "", strip);
        canvas.width = width; canvas.height = height;
        return canvas;
      });
      canvases.forEach(c => c.setAttribute("aria-hidden", "true"));
      strip.setAttribute("role", "img");
      return { name, images, canvases, strip };
    });

    // The plot's ranges: every point, test and training, with a margin.
    const points = models.flatMap(m => [[m.rate, m.distortion]].concat(
      m.train_rate === undefined ? [] : [[m.train_rate, m.train_distortion]]));
    const rMax = Math.max(...points.map(p => p[0])) * 1.08 + 0.5;
    const dLow = Math.min(...points.map(p => p[1])), dHigh = Math.max(...points.map(p => p[1]));
    const dMin = dLow - 0.08 * (dHigh - dLow) - 1, dMax = dHigh + 0.08 * (dHigh - dLow) + 1;
    const pad = { left: 46, right: 10, top: 10, bottom: 36 };
    const X = r => pad.left + r / rMax * (curveWidth - pad.left - pad.right);
    const Y = d => pad.top + (dMax - d) / (dMax - dMin) * (CURVE_HEIGHT - pad.top - pad.bottom);

    function drawCurve() {
      const ratio = Math.max(window.devicePixelRatio || 1, 2);
      const ctx = curve.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, curveWidth, CURVE_HEIGHT);
      const x0 = pad.left, x1 = curveWidth - pad.right, y0 = CURVE_HEIGHT - pad.bottom, y1 = pad.top;
      ctx.font = "11px sans-serif"; ctx.lineWidth = 1;
      const rTick = niceStep(rMax, 5), dTick = niceStep(dMax - dMin, 5);
      ctx.fillStyle = "#555555";
      ctx.textAlign = "center"; ctx.textBaseline = "top";
      for (let r = 0; r <= rMax; r += rTick) {
        ctx.strokeStyle = "#ececec"; ctx.beginPath(); ctx.moveTo(X(r), y0); ctx.lineTo(X(r), y1); ctx.stroke();
        ctx.fillText(fmt(r, rTick < 1 ? 1 : 0), X(r), y0 + 3);
      }
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      for (let d = Math.ceil(dMin / dTick) * dTick; d <= dMax; d += dTick) {
        ctx.strokeStyle = "#ececec"; ctx.beginPath(); ctx.moveTo(x0, Y(d)); ctx.lineTo(x1, Y(d)); ctx.stroke();
        ctx.fillText(fmt(d, dTick < 1 ? 1 : 0), x0 - 4, Y(d));
      }
      ctx.strokeStyle = "#888888"; ctx.strokeRect(x0, y1, x1 - x0, y0 - y1);
      ctx.fillStyle = "#333333"; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
      ctx.fillText("rate R = KL (nats)", (x0 + x1) / 2, CURVE_HEIGHT - 1);
      ctx.save(); ctx.translate(11, (y0 + y1) / 2); ctx.rotate(-Math.PI / 2);
      ctx.textBaseline = "middle"; ctx.fillText("distortion D (nats)", 0, 0); ctx.restore();
      ctx.save();
      ctx.beginPath(); ctx.rect(x0, y1, x1 - x0, y0 - y1); ctx.clip();
      // The line of equal ELBO through the chosen test point: D + R = const.
      const chosen = models[index], total = chosen.rate + chosen.distortion;
      ctx.strokeStyle = "#777777"; ctx.setLineDash([2, 3]);
      ctx.beginPath(); ctx.moveTo(X(0), Y(total)); ctx.lineTo(X(rMax), Y(total - rMax)); ctx.stroke();
      ctx.setLineDash([]);
      // Training points (squares, dashed) and test points (circles).
      const series = (rate, distortion, colour, dash, markerShape) => {
        ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = 1.6; ctx.setLineDash(dash);
        ctx.beginPath();
        models.forEach((m, k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, X(rate(m)), Y(distortion(m))));
        ctx.stroke(); ctx.setLineDash([]);
        models.forEach(m => {
          const x = X(rate(m)), y = Y(distortion(m));
          ctx.beginPath();
          if (markerShape === "s") ctx.rect(x - 3.5, y - 3.5, 7, 7); else ctx.arc(x, y, 4, 0, 2 * Math.PI);
          ctx.fill();
        });
      };
      if (models[0].train_rate !== undefined) {
        series(m => m.train_rate, m => m.train_distortion, data.colours.train, [5, 3], "s");
      }
      series(m => m.rate, m => m.distortion, data.colours.test, [], "o");
      ctx.restore();
      // The chosen model: a ring and its β.
      const cx = X(chosen.rate), cy = Y(chosen.distortion);
      ctx.strokeStyle = "#000000"; ctx.lineWidth = 2.5;
      ctx.beginPath(); ctx.arc(cx, cy, 9, 0, 2 * Math.PI); ctx.stroke();
      ctx.font = "bold 13px sans-serif"; ctx.fillStyle = "#000000";
      ctx.textAlign = cx > (x0 + x1) / 2 ? "right" : "left"; ctx.textBaseline = "bottom";
      ctx.fillText("\u03b2 = " + betaText(chosen.beta), cx + (ctx.textAlign === "left" ? 10 : -10), cy - 8);
      // A small key.
      ctx.font = "11px sans-serif"; ctx.textAlign = "right"; ctx.textBaseline = "top";
      ctx.fillStyle = data.colours.test; ctx.fillText("\u25cf test digits", x1 - 4, y1 + 4);
      if (models[0].train_rate !== undefined) {
        ctx.fillStyle = data.colours.train; ctx.fillText("\u25a0 training digits", x1 - 4, y1 + 18);
      }
      ctx.fillStyle = "#666666"; ctx.fillText("\u00b7\u00b7\u00b7 equal ELBO", x1 - 4, y1 + 32);
    }

    function drawImages() {
      rows.forEach(row => {
        const texts = row.images();
        row.canvases.forEach((canvas, k) => {
          const ctx = canvas.getContext("2d");
          const picture = ctx.createImageData(width, height);
          levels(texts[k]).forEach((v, d) => {
            const grey = Math.round(255 * (1 - v / 16));  // gray_r over the 17 levels, as the book draws digits
            picture.data.set([grey, grey, grey, 255], 4 * d);
          });
          ctx.putImageData(picture, 0, 0);
        });
      });
    }

    function render() {
      const chosen = models[index];
      drawCurve();
      drawImages();
      slider.value = String(index);
      const text = "\u03b2 = " + betaText(chosen.beta);
      slider.setAttribute("aria-valuetext", text);
      readout.textContent = text + ": rate " + chosen.rate.toFixed(2) + " + distortion " + chosen.distortion.toFixed(2) +
        " = \u2212ELBO " + (-chosen.elbo).toFixed(2) + " nats";
      curve.setAttribute("aria-label", "Rate\u2013distortion curve of the " + models.length + " models, " + text +
        " marked at rate " + chosen.rate.toFixed(2) + " and distortion " + chosen.distortion.toFixed(2) + " nats");
      rows.forEach(row => row.strip.setAttribute("aria-label", row.name + " of the model with " + text));
    }

    function setIndex(k) {
      index = Math.max(0, Math.min(models.length - 1, Math.round(Number(k))));
      render();
    }

    function layout() {
      const available = Math.floor(root.getBoundingClientRect().width);
      const size = Math.max(240, Math.min(CURVE_MAX, available));
      if (size === curveWidth) return;
      const ratio = Math.max(window.devicePixelRatio || 1, 2);
      curveWidth = size;
      curve.width = Math.round(size * ratio); curve.height = Math.round(CURVE_HEIGHT * ratio);
      curve.style.width = size + "px"; curve.style.height = CURVE_HEIGHT + "px";
      left.style.width = size + "px";
      render();
    }

    // A click, tap or drag on the curve picks the nearest test point.
    let dragging = null;
    const pick = event => {
      const box = curve.getBoundingClientRect();
      const px = event.clientX - box.left, py = event.clientY - box.top;
      let best = index, distance = Infinity;
      models.forEach((m, k) => {
        const d = Math.hypot(X(m.rate) - px, Y(m.distortion) - py);
        if (d < distance) { distance = d; best = k; }
      });
      if (best !== index) setIndex(best);
    };
    curve.addEventListener("pointerdown", event => {
      if (event.button !== 0) return;
      dragging = event.pointerId;
      try { curve.setPointerCapture(event.pointerId); } catch (e) { /* synthetic events have no capture */ }
      pick(event);
      event.preventDefault();
    });
    curve.addEventListener("pointermove", event => { if (dragging === event.pointerId) pick(event); });
    const release = event => { if (dragging === event.pointerId) dragging = null; };
    curve.addEventListener("pointerup", release);
    curve.addEventListener("pointercancel", release);
    slider.addEventListener("input", () => setIndex(slider.value));

    layout();
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(() => layout()).observe(root);
    } else {
      window.addEventListener("resize", layout);
    }

    return {
      element: root,
      data,
      setIndex,
      index: () => index,
      model: () => {
        const m = models[index];
        return { beta: m.beta, rate: m.rate, distortion: m.distortion, elbo: m.elbo };
      },
      images: () => Object.fromEntries(rows.map(row => [row.name, row.images().map(levels)])),
      clientPoint: k => {
        const box = curve.getBoundingClientRect();
        return { x: box.left + X(models[k].rate), y: box.top + Y(models[k].distortion) };
      },
    };
  }

  function start() {
    window.betaExplorers = window.betaExplorers || [];
    document.querySelectorAll(".beta-explorer:not(.beta-explorer-live)").forEach(root => {
      const source = root.querySelector("script.beta-explorer-data");
      if (source) window.betaExplorers.push(BetaExplorer(root, JSON.parse(source.textContent)));
    });
    window.betaExplorer = window.betaExplorers[0];
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
