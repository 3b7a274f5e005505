/* The ELBO explorer (chapter 4): move a Gaussian q over a true posterior and watch the ELBO.

   A chapter page holds a <div class="elbo-explorer"> with its data as inline JSON
   (<script type="application/json" class="elbo-explorer-data">, written by vae/web_figures.py): for
   a few test images, log p(x|z) on a square window of the chapter's grid around the image's
   posterior, the encoder's q and the best diagonal Gaussian. This script draws the posterior
   p(z|x) as a heat map, the encoder's q (white) and the best Gaussian (dashed orange), and a third
   Gaussian q = N(m, diag s^2) (blue) that the reader moves: drag its centre or its two handles
   (mouse, pen or touch), use the arrow keys, or the two width sliders. Beside it, live: the ELBO
   of q, log p(x) and their difference, KL(q || p(z|x)), on a scale with the encoder's and the best
   Gaussian's ELBO marked. Plain JavaScript, no library and no network: it works from file:// too.

   The maths is the library's (vae.tractable.GridPosterior on the window):
     w_k(i) = softmax_i log N(z_k(i); m_k, s_k)            q's mass on each cell, per axis
     ELBO   = sum_ij w_1(i) w_2(j) log p(x | z_ij) - KL(q || N(0, I))   (closed form)
     log p(x) = logsumexp_ij [log p(x | z_ij) + log N(z_ij; 0, I)] + log(cell area)
     KL(q || p(z|x)) = log p(x) - ELBO.

   For tests: window.elboExplorers lists the figures, window.elboExplorer is the first, with
   setImage(k), setQ(m1, m2, s1, s2), q(), values() ({elbo, kl, logPx}), valuesAt(m, logvar) and
   clientPoint(z1, z2). Under node, require() gives the maths (readWindow, values).
*/
(function () {
  "use strict";

  // ---- The maths, shared with node ----

  function bytesFromBase64(text) {
    if (typeof atob === "function") {
      const binary = atob(text);
      const bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      return bytes;
    }
    return new Uint8Array(Buffer.from(text, "base64"));  // node
  }

  // 16-bit levels as float64 values: offset + scale * level.
  function readLevels(stored) {
    const bytes = bytesFromBase64(stored.data);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const size = stored.shape.reduce((a, b) => a * b, 1);
    if (stored.dtype !== "uint16" || bytes.byteLength !== 2 * size) {
      throw new Error("ELBO explorer: a stored window does not match its shape");
    }
    const out = new Float64Array(size);
    for (let i = 0; i < size; i++) out[i] = stored.offset + stored.scale * view.getUint16(2 * i, true);
    return out;
  }

  const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

  // One image's window: its axes, log p(x|z) [n * n] indexed [i1 * n + i2], the log prior, log p(x).
  function readWindow(image) {
    const n = image.n, step = image.step;
    const axes = image.centre.map(c => Float64Array.from({ length: n }, (_, i) => c + step * (i - (n - 1) / 2)));
    const logLik = readLevels(image.log_lik);
    const logJoint = new Float64Array(n * n);
    let top = -Infinity;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const z1 = axes[0][i], z2 = axes[1][j];
        const v = logLik[i * n + j] - 0.5 * (z1 * z1 + z2 * z2) - 2 * LOG_SQRT_2PI;
        logJoint[i * n + j] = v;
        if (v > top) top = v;
      }
    }
    let sum = 0;
    for (let g = 0; g < n * n; g++) sum += Math.exp(logJoint[g] - top);
    const logPx = top + Math.log(sum) + 2 * Math.log(step);
    return { n, step, axes, logLik, logJoint, logPx, half: step * (n - 1) / 2, centre: image.centre };
  }

  // q's mass on each cell along one axis: softmax of log N(axis; m, exp(logvar / 2)).
  function axisWeights(axis, m, logvar) {
    const scale = Math.exp(0.5 * Math.max(logvar, -200));
    const logs = Array.from(axis, z => -((z - m) ** 2) / (2 * scale * scale) - Math.log(scale) - LOG_SQRT_2PI);
    const top = Math.max(...logs);
    const w = Float64Array.from(logs, v => Math.exp(v - top));
    const total = w.reduce((a, b) => a + b, 0);
    return w.map(v => v / total);
  }

  // KL(N(m, diag exp(logvar)) || N(0, I)), as vae.priors.gaussian_kl writes it.
  function gaussianKl(m, logvar) {
    let kl = 0;
    for (let k = 0; k < 2; k++) kl += 0.5 * (Math.expm1(logvar[k]) - logvar[k] + m[k] * m[k]);
    return kl;
  }

  function values(win, m, logvar) {
    const w1 = axisWeights(win.axes[0], m[0], logvar[0]), w2 = axisWeights(win.axes[1], m[1], logvar[1]);
    let expectation = 0;
    for (let i = 0; i < win.n; i++) {
      if (w1[i] === 0) continue;
      let row = 0;
      for (let j = 0; j < win.n; j++) row += w2[j] * win.logLik[i * win.n + j];
      expectation += w1[i] * row;
    }
    const elbo = expectation - gaussianKl(m, logvar);
    return { elbo, logPx: win.logPx, kl: win.logPx - elbo };
  }

  const maths = { readLevels, readWindow, axisWeights, gaussianKl, values };
  if (typeof module !== "undefined" && module.exports) module.exports = maths;
  if (typeof document === "undefined") return;

  // ---- The figure ----

  const PLANE_MAX = 340, GAUGE_HEIGHT = 100;  // CSS pixels
  const MAGMA = ["#000004", "#0a0822", "#1d1147", "#36106b", "#51127c", "#6a1c81", "#832681", "#9c2e7f",
    "#b73779", "#d0416f", "#e75263", "#f56b5c", "#fc8961", "#fea772", "#fec488", "#fde2a3", "#fcfdbf"]
    .map(h => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16)));
  const MARGIN = 4;    // q's centre stays this many of its deviations inside the window

  function magma(t) {
    const x = Math.max(0, Math.min(1, t)) * (MAGMA.length - 1);
    const i = Math.min(MAGMA.length - 2, Math.floor(x)), f = x - i;
    return MAGMA[i].map((c, k) => Math.round(c + f * (MAGMA[i + 1][k] - c)));
  }

  function element(tag, className, parent, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    if (parent) parent.appendChild(el);
    return el;
  }

  const minus = text => text.replace(/-/g, "\u2212");
  const fmt = (v, digits) => minus(v.toFixed(digits));

  function niceStep(span, target) {
    const raw = span / target, power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
    return 10 * power;
  }

  function ellipse(ctx, x, y, rx, ry) {
    ctx.beginPath();
    ctx.ellipse(x, y, Math.max(rx, 0.5), Math.max(ry, 0.5), 0, 0, 2 * Math.PI);
    ctx.stroke();
  }

  function ElboExplorer(root, data) {
    const windows = data.images.map(readWindow);
    const colours = data.colours;
    let index = 0, win = windows[0], image = data.images[0];
    let m = [0, 0], s = [0.1, 0.1], current = null;
    let planeSize = 0, gaugeWidth = 0, heat = null, dragging = null, pending = false;

    root.textContent = "";
    root.classList.add("elbo-explorer-live");
    const label = root.dataset.label || "ELBO explorer";
    const figure = element("div", "ex-figure", root);
    const planeBox = element("div", "ex-plane", figure);
    const plane = element("canvas", "ex-plane-canvas", planeBox);
    plane.tabIndex = 0;
    plane.setAttribute("role", "application");
    plane.setAttribute("aria-roledescription", "two-dimensional slider");
    plane.setAttribute("aria-label", label + ": the latent plane with the true posterior. Drag the blue " +
      "Gaussian's centre or its two square handles, or use the arrow keys to move it (Shift for larger steps, " +
      "Home for the encoder's q).");
    const sliders = element("div", "ex-sliders", planeBox);
    const widthInputs = [0, 1].map(k => {
      const row = element("label", "ex-slider", sliders);
      element("span", "ex-slider-name", row, k ? "s\u2082" : "s\u2081");
      const input = element("input", "", row);
      input.type = "range";
      input.step = "0.01";
      input.setAttribute("aria-label", "standard deviation of q along z" + (k ? "\u2082" : "\u2081"));
      const shown = element("output", "ex-slider-value", row);
      input.addEventListener("input", () => {
        s[k] = Math.pow(10, Number(input.value));
        update(true);
      });
      return { input, shown };
    });

    const side = element("div", "ex-side", figure);
    const top = element("div", "ex-top", side);
    const chooser = element("label", "ex-chooser", top);
    element("span", "", chooser, "Test image ");
    const select = element("select", "", chooser);
    data.images.forEach((im, k) => {
      const option = element("option", "", select, im.name + (im.label === null ? "" : " (a " + im.label + ")"));
      option.value = String(k);
    });
    const digit = element("canvas", "ex-digit", top);
    digit.setAttribute("role", "img");
    const gauge = element("canvas", "ex-gauge", side);
    gauge.setAttribute("aria-hidden", "true");
    const readout = element("p", "ex-readout", side);
    readout.setAttribute("aria-live", "polite");
    const buttons = element("div", "ex-buttons", side);
    const toEncoder = element("button", "ex-button", buttons, "q = the encoder's");
    const toBest = element("button", "ex-button", buttons, "q = the best Gaussian");
    toEncoder.type = toBest.type = "button";
    const key = element("p", "ex-key", side);
    key.innerHTML = '<span class="ex-swatch ex-q"></span> your q &nbsp; <span class="ex-swatch ex-enc"></span> ' +
      "encoder's q &nbsp; <span class=\"ex-swatch ex-best\"></span> best Gaussian (1 and 2 standard deviations)";
    element("p", "ex-hint", side, "Drag the blue centre or its square handles, or click the plane and use " +
      "the arrow keys; the sliders set the widths.");

    // q is at least one grid cell wide (the grid cannot resolve a narrower one) and at most a fifth
    // of the window's half-width.
    const sMin = () => win.step;
    const sMax = () => win.half / 5;
    const toScreen = (z1, z2) => [(z1 - win.centre[0] + win.half) / (2 * win.half) * planeSize,
      (win.centre[1] + win.half - z2) / (2 * win.half) * planeSize];
    const toCode = (px, py) => [win.centre[0] - win.half + px / planeSize * 2 * win.half,
      win.centre[1] + win.half - py / planeSize * 2 * win.half];

    // Keep q on the window: widths in [sMin, sMax], the centre MARGIN deviations inside.
    function constrain() {
      for (let k = 0; k < 2; k++) {
        s[k] = Math.max(sMin(), Math.min(sMax(), s[k]));
        const room = win.half - MARGIN * s[k];
        m[k] = Math.max(win.centre[k] - room, Math.min(win.centre[k] + room, m[k]));
      }
    }
    const logvar = () => s.map(v => 2 * Math.log(v));

    function drawHeat() {
      const n = win.n;
      heat = document.createElement("canvas");
      heat.width = heat.height = n;
      const ctx = heat.getContext("2d");
      const picture = ctx.createImageData(n, n);
      let top = -Infinity;
      for (const v of win.logJoint) if (v > top) top = v;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          const [r, g, b] = magma(Math.exp(win.logJoint[i * n + j] - top));
          const p = 4 * ((n - 1 - j) * n + i);  // z2 upwards
          picture.data[p] = r; picture.data[p + 1] = g; picture.data[p + 2] = b; picture.data[p + 3] = 255;
        }
      }
      ctx.putImageData(picture, 0, 0);
    }

    function drawPlane() {
      const ratio = Math.max(window.devicePixelRatio || 1, 2);
      const ctx = plane.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.imageSmoothingEnabled = true;
      const cell = planeSize / (win.n - 1);  // each grid value at its point: the image spans half a cell more
      ctx.drawImage(heat, -cell / 2, -cell / 2, planeSize + cell, planeSize + cell);
      // Ticks at a round spacing.
      const tick = niceStep(2 * win.half, 4);
      ctx.font = "11px sans-serif";
      ctx.fillStyle = "rgba(255,255,255,0.85)";
      ctx.strokeStyle = "rgba(255,255,255,0.18)";
      ctx.lineWidth = 1;
      const digits = tick < 0.1 ? 2 : tick < 1 ? 1 : 0;
      for (let k = 0; k < 2; k++) {
        const lo = win.centre[k] - win.half, hi = win.centre[k] + win.half;
        for (let v = Math.ceil(lo / tick) * tick; v <= hi + 1e-9; v += tick) {
          const [x, y] = toScreen(v, v);
          ctx.beginPath();
          if (k === 0) { ctx.moveTo(x, 0); ctx.lineTo(x, planeSize); } else { ctx.moveTo(0, y); ctx.lineTo(planeSize, y); }
          ctx.stroke();
          if (k === 0 && x > 14 && x < planeSize - 14) {
            ctx.textAlign = "center"; ctx.textBaseline = "bottom";
            ctx.fillText(fmt(v, digits), x, planeSize - 2);
          } else if (k === 1 && y > 14 && y < planeSize - 18) {
            ctx.textAlign = "left"; ctx.textBaseline = "middle";
            ctx.fillText(fmt(v, digits), 3, y);
          }
        }
      }
      ctx.font = "italic 13px serif";
      ctx.textAlign = "right"; ctx.textBaseline = "bottom";
      ctx.fillText("z\u2081", planeSize - 4, planeSize - 14);
      ctx.textAlign = "left"; ctx.textBaseline = "top";
      ctx.fillText("z\u2082", 22, 4);
      const scale = planeSize / (2 * win.half);
      const gaussian = (mean, sd, colour, width, dash) => {
        const [x, y] = toScreen(mean[0], mean[1]);
        ctx.setLineDash(dash);
        for (const [halo, lw] of [["rgba(0,0,0,0.45)", width + 2], [colour, width]]) {
          ctx.strokeStyle = halo; ctx.lineWidth = lw;
          for (const r of [1, 2]) ellipse(ctx, x, y, r * sd[0] * scale, r * sd[1] * scale);
        }
        ctx.setLineDash([]);
      };
      gaussian(image.encoder.mean, image.encoder.logvar.map(v => Math.exp(0.5 * v)), colours.encoder, 1.3, []);
      gaussian(image.best.mean, image.best.logvar.map(v => Math.exp(0.5 * v)), colours.best, 1.5, [6, 4]);
      gaussian(m, s, colours.q, 2.2, []);
      // The centre and the two handles.
      const [x, y] = toScreen(m[0], m[1]);
      const focused = document.activeElement === plane;
      ctx.fillStyle = colours.q; ctx.strokeStyle = "#000000"; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      for (const [hx, hy] of handles()) {
        ctx.fillRect(hx - 5, hy - 5, 10, 10); ctx.strokeRect(hx - 5, hy - 5, 10, 10);
      }
      if (focused) {
        ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 2;
        ctx.beginPath(); ctx.arc(x, y, 10, 0, 2 * Math.PI); ctx.stroke();
      }
    }

    function handles() {
      const [x, y] = toScreen(m[0], m[1]);
      const scale = planeSize / (2 * win.half);
      return [[x + s[0] * scale, y], [x, y - s[1] * scale]];
    }

    function drawDigit() {
      const [h, w] = data.image_shape;
      digit.width = w; digit.height = h;
      const ctx = digit.getContext("2d");
      const picture = ctx.createImageData(w, h);
      image.pixels.forEach((v, d) => {
        const grey = Math.round(255 * (1 - Math.max(0, Math.min(1, v / data.max_value))));
        picture.data.set([grey, grey, grey, 255], 4 * d);
      });
      ctx.putImageData(picture, 0, 0);
      digit.setAttribute("aria-label", "The test image: " + select.options[index].textContent);
    }

    // The nats scale: log p(x) at the right, the ELBOs of the encoder's and the best q marked, and the
    // current ELBO as a bar; the gap between the bar and log p(x) is KL(q || p(z|x)).
    function drawGauge() {
      const ratio = Math.max(window.devicePixelRatio || 1, 2);
      const height = GAUGE_HEIGHT;
      const ctx = gauge.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, gaugeWidth, height);
      const right = win.logPx;
      const span = Math.max(2, 1.25 * (right - image.encoder.elbo));
      const left = right - span, pad = 14, inner = gaugeWidth - 2 * pad;
      const X = v => pad + (Math.max(left, Math.min(right, v)) - left) / span * inner;
      const axisY = 62;
      ctx.fillStyle = "#f2f2f2"; ctx.fillRect(pad, axisY - 20, inner, 20);
      // The bar: the ELBO, and the KL from it to log p(x).
      const e = current.elbo;
      ctx.fillStyle = "#0072B2";
      ctx.fillRect(pad, axisY - 20, X(e) - pad, 20);
      ctx.fillStyle = "rgba(213,94,0,0.35)";
      ctx.fillRect(X(e), axisY - 20, X(right) - X(e), 20);
      ctx.strokeStyle = "#444444"; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(pad, axisY); ctx.lineTo(pad + inner, axisY); ctx.stroke();
      ctx.font = "11px sans-serif"; ctx.fillStyle = "#444444";
      const tick = niceStep(span, 4);
      ctx.textAlign = "center"; ctx.textBaseline = "top";
      for (let v = Math.ceil(left / tick) * tick; v <= right; v += tick) {
        ctx.beginPath(); ctx.moveTo(X(v), axisY); ctx.lineTo(X(v), axisY + 4); ctx.stroke();
        ctx.fillText(fmt(v, tick < 1 ? 1 : 0), X(v), axisY + 5);
      }
      // Marks: log p(x), the best Gaussian's ELBO, the encoder's ELBO.
      // Each on its own row of labels, so that close values do not overwrite each other.
      const mark = (v, colour, dash, text, row) => {
        const y = 11 + 12 * row;
        ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.setLineDash(dash);
        ctx.beginPath(); ctx.moveTo(X(v), y + 1); ctx.lineTo(X(v), axisY + 2); ctx.stroke();
        ctx.setLineDash([]);
        const w = ctx.measureText(text).width;
        const x = Math.max(2, Math.min(gaugeWidth - 2 - w, X(v) - w / 2));
        ctx.fillStyle = "#222222"; ctx.textAlign = "left"; ctx.textBaseline = "bottom";
        ctx.fillText(text, x, y);
      };
      mark(right, "#000000", [], "log p(x)", 0);
      mark(image.best.elbo, colours.best, [4, 3], "best Gaussian", 1);
      mark(image.encoder.elbo, "#666666", [], "encoder", 2);
      if (e < left) {
        ctx.fillStyle = "#ffffff"; ctx.textAlign = "left"; ctx.textBaseline = "middle";
        ctx.fillText("\u25c0 " + fmt(e, 1), pad + 3, axisY - 10);
      }
      ctx.fillStyle = "#444444"; ctx.textAlign = "right"; ctx.textBaseline = "bottom";
      ctx.fillText("nats", gaugeWidth - 2, height - 1);
    }

    function render() {
      pending = false;
      drawPlane();
      drawGauge();
      const where = "q: m = (" + fmt(m[0], 2) + ", " + fmt(m[1], 2) + "), s = (" + s[0].toFixed(3) + ", " + s[1].toFixed(3) + ")";
      readout.innerHTML = "";
      element("span", "ex-elbo", readout, "ELBO " + fmt(current.elbo, 2));
      readout.appendChild(document.createTextNode(" + "));
      element("span", "ex-kl", readout, "KL(q \u2016 p(z|x)) " + fmt(current.kl, 2));
      readout.appendChild(document.createTextNode(" = log p(x) " + fmt(current.logPx, 2) + " nats"));
      element("span", "ex-where", readout, where);
      plane.setAttribute("aria-valuetext", where + "; ELBO " + fmt(current.elbo, 2) + ", KL " + fmt(current.kl, 2) + " nats");
      widthInputs.forEach(({ input, shown }, k) => {
        input.min = String(Math.log10(sMin())); input.max = String(Math.log10(sMax()));
        input.value = String(Math.log10(s[k]));
        shown.textContent = s[k].toFixed(3);
        input.setAttribute("aria-valuetext", (k ? "s\u2082" : "s\u2081") + " = " + s[k].toFixed(3));
      });
    }

    function update(now) {
      constrain();
      current = values(win, m, logvar());
      if (now) {
        render();
      } else if (!pending) {
        pending = true;
        window.requestAnimationFrame(render);
      }
    }

    function setImage(k) {
      index = Math.max(0, Math.min(windows.length - 1, Number(k)));
      win = windows[index]; image = data.images[index];
      select.value = String(index);
      drawHeat();
      drawDigit();
      setTo(image.encoder);
    }

    function setTo(q) {
      m = q.mean.slice();
      s = q.logvar.map(v => Math.exp(0.5 * v));
      update(true);
    }

    function layout() {
      const available = Math.floor(root.getBoundingClientRect().width);
      const size = Math.max(220, Math.min(PLANE_MAX, available));
      gauge.style.width = "100%";
      const width = Math.max(200, Math.min(PLANE_MAX, Math.floor(gauge.getBoundingClientRect().width) || available));
      if (size === planeSize && width === gaugeWidth) return;
      const ratio = Math.max(window.devicePixelRatio || 1, 2);
      planeSize = size; gaugeWidth = width;
      plane.width = plane.height = Math.round(size * ratio);
      plane.style.width = plane.style.height = size + "px";
      gauge.width = Math.round(width * ratio); gauge.height = Math.round(GAUGE_HEIGHT * ratio);
      gauge.style.height = GAUGE_HEIGHT + "px";
      sliders.style.width = size + "px";
      if (current) render();
    }

    function pointerCode(event) {
      const box = plane.getBoundingClientRect();
      return [event.clientX - box.left, event.clientY - box.top];
    }

    plane.addEventListener("pointerdown", event => {
      if (event.button !== 0) return;
      const [px, py] = pointerCode(event);
      const near = handles().findIndex(([hx, hy]) => Math.abs(px - hx) <= 11 && Math.abs(py - hy) <= 11);
      dragging = { id: event.pointerId, what: near >= 0 ? "width" + near : "centre" };
      try { plane.setPointerCapture(event.pointerId); } catch (e) { /* synthetic events have no capture */ }
      plane.focus({ preventScroll: true });
      move(px, py);
      event.preventDefault();
    });
    function move(px, py) {
      const z = toCode(px, py);
      if (dragging.what === "centre") {
        m = z;
      } else {
        const k = dragging.what === "width0" ? 0 : 1;
        s[k] = Math.abs(z[k] - m[k]);
      }
      update(false);
    }
    plane.addEventListener("pointermove", event => {
      if (dragging && dragging.id === event.pointerId) move(...pointerCode(event));
    });
    const release = event => { if (dragging && dragging.id === event.pointerId) dragging = null; };
    plane.addEventListener("pointerup", release);
    plane.addEventListener("pointercancel", release);
    plane.addEventListener("keydown", event => {
      const step = win.step * (event.shiftKey ? 5 : 1);
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      if (event.key in moves) {
        m = [m[0] + moves[event.key][0], m[1] + moves[event.key][1]];
        update(false);
      } else if (event.key === "Home") {
        setTo(image.encoder);
      } else {
        return;
      }
      event.preventDefault();
    });
    plane.addEventListener("focus", () => render());
    plane.addEventListener("blur", () => render());
    select.addEventListener("change", () => setImage(select.value));
    toEncoder.addEventListener("click", () => setTo(image.encoder));
    toBest.addEventListener("click", () => setTo(image.best));

    layout();
    setImage(0);
    if (typeof ResizeObserver === "function") {
      const observer = new ResizeObserver(() => layout());
      observer.observe(root);
      observer.observe(side);
    } else {
      window.addEventListener("resize", layout);
    }

    return {
      element: root,
      data,
      setImage: k => setImage(k),
      image: () => index,
      setQ: (m1, m2, s1, s2) => { m = [Number(m1), Number(m2)]; s = [Number(s1), Number(s2)]; update(true); },
      q: () => ({ mean: m.slice(), s: s.slice(), logvar: logvar() }),
      values: () => Object.assign({}, current),
      valuesAt: (mean, lv) => values(win, mean, lv),
      clientPoint: (z1, z2) => {
        const box = plane.getBoundingClientRect();
        const [x, y] = toScreen(z1, z2);
        return { x: box.left + x, y: box.top + y };
      },
    };
  }

  function start() {
    window.elboExplorers = window.elboExplorers || [];
    document.querySelectorAll(".elbo-explorer:not(.elbo-explorer-live)").forEach(root => {
      const source = root.querySelector("script.elbo-explorer-data");
      if (source) window.elboExplorers.push(ElboExplorer(root, JSON.parse(source.textContent)));
    });
    window.elboExplorer = window.elboExplorers[0];
  }

  window.elboExplorerMaths = maths;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
