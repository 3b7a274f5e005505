/* The latent explorer: a trained VAE's decoder, run in the reader's browser with no kernel.

   A chapter page holds one or more <div class="latent-explorer"> elements, each with the model as
   inline JSON (<script type="application/json" class="latent-explorer-data">, written by
   vae/export.py: the decoder's layers, its likelihood and the codes of the test digits). This script
   turns each into a figure: the 2-D code plane with the codes (the book's colour and marker per
   digit) and the prior's 1, 2 and 3 standard-deviation circles, a cross the reader drags (mouse, pen
   or touch) or moves with the arrow keys, and the image decoded at the cross, its mean and a sample
   from p(x|z), redrawn as it moves. Plain JavaScript, no library and no network: it works from
   file:// too.

   The maths is the library's: each Linear layer (weight [out, in], bias [out]), LeakyReLU between
   them, then the likelihood's mean (categorical: a softmax over the grey levels of each pixel and
   the sum of level x probability; Bernoulli: the sigmoid; Gaussian: the output itself).

   For tests and curious readers: window.latentExplorers lists the figures of the page and
   window.latentExplorer is the first, with setCode(z1, z2), code(), pixels() (the mean image, in
   grey levels), samplePixels(), decode([z1, z2]) and clientPoint(z1, z2) (where a code is on the
   screen). Under node, require() gives the maths (readModel, decoderOutputs, meanImage).
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

  function halfToFloat(bits) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    if (exponent === 0) return sign * Math.pow(2, -14) * (fraction / 1024);
    if (exponent === 31) return fraction ? NaN : sign * Infinity;
    return sign * Math.pow(2, exponent - 15) * (1 + fraction / 1024);
  }

  // A stored tensor ({dtype, shape, data: little-endian bytes in base64}) as a Float32Array.
  function readTensor(stored) {
    const bytes = bytesFromBase64(stored.data);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const size = stored.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(size);
    if (stored.dtype === "float32") {
      for (let i = 0; i < size; i++) out[i] = view.getFloat32(4 * i, true);
    } else if (stored.dtype === "float16") {
      for (let i = 0; i < size; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
    } else if (stored.dtype === "int8") {  // levels times a scale per row
      const scale = readTensor(stored.scale);
      const columns = size / stored.shape[0];
      for (let i = 0; i < size; i++) out[i] = Math.fround(view.getInt8(i) * scale[Math.floor(i / columns)]);
    } else {
      throw new Error("latent explorer: unknown dtype " + stored.dtype);
    }
    if (bytes.byteLength !== size * { float32: 4, float16: 2, int8: 1 }[stored.dtype]) {
      throw new Error("latent explorer: a tensor's bytes do not match its shape");
    }
    return out;
  }

  // The document's layers as {weight, bias, nIn, nOut, slope} with Float32Array weights.
  function readModel(data) {
    const layers = data.layers.map(layer => ({
      weight: readTensor(layer.weight),
      bias: readTensor(layer.bias),
      nOut: layer.weight.shape[0],
      nIn: layer.weight.shape[1],
      slope: layer.slope,
    }));
    return {
      layers,
      likelihood: data.likelihood,
      nLevels: data.n_levels,
      logSigma: data.log_sigma,
      inputDim: data.input_dim,
    };
  }

  // The decoder's outputs h for a code z (an array), in double precision.
  function decoderOutputs(model, z) {
    let h = Float64Array.from(z);
    for (const layer of model.layers) {
      const out = new Float64Array(layer.nOut);
      const w = layer.weight;
      for (let j = 0; j < layer.nOut; j++) {
        let sum = layer.bias[j];
        const row = j * layer.nIn;
        for (let i = 0; i < layer.nIn; i++) sum += w[row + i] * h[i];
        if (layer.slope !== null && sum < 0) sum *= layer.slope;
        out[j] = sum;
      }
      h = out;
    }
    return h;
  }

  // Per pixel, the likelihood's parameters: probabilities of each grey level (categorical, [D][K]),
  // of a 1 (Bernoulli) or the mean (Gaussian).
  function pixelDistributions(model, h) {
    const D = model.inputDim;
    if (model.likelihood === "categorical") {
      const K = model.nLevels;
      const probs = [];
      for (let d = 0; d < D; d++) {
        let top = -Infinity;
        for (let k = 0; k < K; k++) top = Math.max(top, h[d * K + k]);
        const p = new Float64Array(K);
        let total = 0;
        for (let k = 0; k < K; k++) total += (p[k] = Math.exp(h[d * K + k] - top));
        for (let k = 0; k < K; k++) p[k] /= total;
        probs.push(p);
      }
      return probs;
    }
    if (model.likelihood === "bernoulli") return Array.from(h, v => 1 / (1 + Math.exp(-v)));
    return Array.from(h);
  }

  // The mean image of p(x|z) [D], in the units of model.decode (grey levels for a categorical).
  function meanImage(model, z) {
    const dist = pixelDistributions(model, decoderOutputs(model, z));
    if (model.likelihood !== "categorical") return Float64Array.from(dist);
    return Float64Array.from(dist, p => p.reduce((sum, q, k) => sum + k * q, 0));
  }

  // A sample from p(x|z) that uses the noise `u` (uniforms in [0, 1), two per pixel): the same noise
  // gives samples that change smoothly as z moves.
  function sampleImage(model, z, u) {
    const dist = pixelDistributions(model, decoderOutputs(model, z));
    const D = model.inputDim;
    const out = new Float64Array(D);
    for (let d = 0; d < D; d++) {
      if (model.likelihood === "categorical") {
        let cumulative = 0, k = 0;
        for (; k < dist[d].length - 1; k++) {
          cumulative += dist[d][k];
          if (u[d] < cumulative) break;
        }
        out[d] = k;
      } else if (model.likelihood === "bernoulli") {
        out[d] = u[d] < dist[d] ? 1 : 0;
      } else {  // Gaussian, by Box and Muller
        const normal = Math.sqrt(-2 * Math.log(1 - u[d])) * Math.cos(2 * Math.PI * u[D + d]);
        out[d] = dist[d] + Math.exp(model.logSigma[d]) * normal;
      }
    }
    return out;
  }

  // A small seeded generator (mulberry32), so that a page shows the same first sample every time.
  function generator(seed) {
    let state = seed >>> 0;
    return () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  const maths = { readModel, readTensor, decoderOutputs, meanImage, sampleImage, halfToFloat };
  if (typeof module !== "undefined" && module.exports) {
    module.exports = maths;
  }
  if (typeof document === "undefined") return;

  // ---- The figure ----

  const STEP = 0.1, BIG_STEP = 0.5;  // arrow keys, with Shift
  const PLANE_MAX = 340;             // CSS pixels
  const IMAGE_SIZE = 104;            // CSS pixels per decoded image

  function marker(ctx, kind, x, y, r) {
    const polygon = (points) => {
      ctx.beginPath();
      points.forEach(([px, py], i) => (i ? ctx.lineTo(x + px * r, y + py * r) : ctx.moveTo(x + px * r, y + py * r)));
      ctx.closePath();
      ctx.fill();
    };
    const t = 0.38;  // half the width of the arms of P and X
    switch (kind) {
      case "s": ctx.fillRect(x - 0.8 * r, y - 0.8 * r, 1.6 * r, 1.6 * r); break;
      case "^": polygon([[0, -1.1], [1, 0.7], [-1, 0.7]]); break;
      case "v": polygon([[0, 1.1], [1, -0.7], [-1, -0.7]]); break;
      case "<": polygon([[-1.1, 0], [0.7, -1], [0.7, 1]]); break;
      case ">": polygon([[1.1, 0], [-0.7, -1], [-0.7, 1]]); break;
      case "D": polygon([[0, -1.1], [0.8, 0], [0, 1.1], [-0.8, 0]]); break;
      case "P": polygon([[-t, -1], [t, -1], [t, -t], [1, -t], [1, t], [t, t], [t, 1], [-t, 1], [-t, t], [-1, t], [-1, -t], [-t, -t]]); break;
      case "X": {
        ctx.save(); ctx.translate(x, y); ctx.rotate(Math.PI / 4); ctx.translate(-x, -y);
        polygon([[-t, -1.1], [t, -1.1], [t, -t], [1.1, -t], [1.1, t], [t, t], [t, 1.1], [-t, 1.1], [-t, t], [-1.1, t], [-1.1, -t], [-t, -t]]);
        ctx.restore();
        break;
      }
      case "p": polygon([0, 1, 2, 3, 4].map(i => [Math.sin(2 * Math.PI * i / 5), -Math.cos(2 * Math.PI * i / 5)])); break;
      default: ctx.beginPath(); ctx.arc(x, y, 0.85 * r, 0, 2 * Math.PI); ctx.fill();
    }
  }

  function element(tag, className, parent, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    if (parent) parent.appendChild(el);
    return el;
  }

  function median(values) {
    const sorted = Float64Array.from(values).sort();
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }

  const format = v => (v < 0 ? "\u2212" : "") + Math.abs(v).toFixed(2);

  function Explorer(root, data, index) {
    const model = readModel(data);
    const extent = data.extent;
    const [height, width] = data.image_shape;
    const random = generator(20240 + index);
    let noise = Array.from({ length: 2 * model.inputDim }, random);
    let z = [0, 0];
    let mean = meanImage(model, z), sample = sampleImage(model, z, noise);
    let planeSize = 0, pending = false, dragging = null;

    root.textContent = "";
    root.classList.add("latent-explorer-live");
    const figure = element("div", "lx-figure", root);
    const planeBox = element("div", "lx-plane", figure);
    const plane = element("canvas", "lx-plane-canvas", planeBox);
    plane.tabIndex = 0;
    plane.setAttribute("role", "application");
    plane.setAttribute("aria-roledescription", "two-dimensional slider");
    plane.setAttribute("aria-label", (root.dataset.label || "Latent code explorer") +
      ": the code plane. Drag the cross, or use the arrow keys to move it (Shift for larger steps, Home for the origin).");
    const legend = element("div", "lx-legend", planeBox);
    legend.setAttribute("aria-hidden", "true");
    const side = element("div", "lx-side", figure);
    const images = element("div", "lx-images", side);
    const panels = ["mean image", "a sample"].map(caption => {
      const box = element("figure", "lx-image", images);
      const canvas = element("canvas", "", box);
      canvas.width = width; canvas.height = height;
      canvas.setAttribute("role", "img");
      element("figcaption", "", box, caption);
      return canvas;
    });
    const readout = element("p", "lx-readout", side);
    readout.setAttribute("aria-live", "polite");
    const resample = element("button", "lx-button", side, "new sample");
    resample.type = "button";
    element("p", "lx-hint", side, "Drag the cross over the plane, or click it and use the arrow keys.");

    // The legend: each digit's marker and colour.
    const present = new Set(data.labels);
    for (let digit = 0; digit < 10; digit++) {
      if (!present.has(digit)) continue;
      const entry = element("span", "lx-key", legend);
      const swatch = element("canvas", "", entry);
      const ratio = window.devicePixelRatio || 1;
      swatch.width = swatch.height = Math.round(12 * ratio);
      swatch.style.width = swatch.style.height = "12px";
      const ctx = swatch.getContext("2d");
      ctx.scale(ratio, ratio);
      ctx.fillStyle = data.digit_colours[digit];
      marker(ctx, data.digit_markers[digit], 6, 6, 5);
      element("span", "", entry, String(digit));
    }

    // Each digit's median code, where its name is written.
    const names = [];
    for (const digit of present) {
      const here = data.codes.filter((_, n) => data.labels[n] === digit);
      names.push([digit, median(here.map(c => c[0])), median(here.map(c => c[1]))]);
    }

    const toScreen = (z1, z2) => [(z1 + extent) / (2 * extent) * planeSize, (extent - z2) / (2 * extent) * planeSize];
    const toCode = (px, py) => [px / planeSize * 2 * extent - extent, extent - py / planeSize * 2 * extent];
    const clamp = v => Math.max(-extent, Math.min(extent, v));

    let background = null;  // the plane without the cross, redrawn when its size changes

    function drawBackground() {
      const ratio = Math.max(window.devicePixelRatio || 1, 2);  // 2x at least: crisp when printed
      background = document.createElement("canvas");
      background.width = background.height = Math.round(planeSize * ratio);
      const ctx = background.getContext("2d");
      ctx.scale(ratio, ratio);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, planeSize, planeSize);
      // Grid lines and tick labels at whole numbers.
      ctx.font = "11px sans-serif";
      ctx.lineWidth = 1;
      for (let v = Math.ceil(-extent); v <= extent; v++) {
        const [x, y] = toScreen(v, v);
        ctx.strokeStyle = v === 0 ? "#c8c8c8" : "#ececec";
        ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, planeSize); ctx.stroke();
        ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(planeSize, y); ctx.stroke();
        if (v !== 0 && Math.abs(v) < extent - 0.25) {
          ctx.fillStyle = "#666666";
          ctx.textAlign = "center"; ctx.textBaseline = "bottom";
          ctx.fillText(String(v).replace("-", "\u2212"), x, planeSize - 2);
          ctx.textAlign = "left"; ctx.textBaseline = "middle";
          ctx.fillText(String(v).replace("-", "\u2212"), 3, y);
        }
      }
      ctx.fillStyle = "#333333";
      ctx.font = "italic 13px serif";
      ctx.textAlign = "right"; ctx.textBaseline = "bottom";
      ctx.fillText("z\u2081", planeSize - 4, toScreen(0, 0)[1] - 2);
      ctx.textAlign = "left"; ctx.textBaseline = "top";
      ctx.fillText("z\u2082", toScreen(0, 0)[0] + 4, 4);
      // The prior's 1, 2 and 3 standard-deviation circles.
      if (data.prior) {
        ctx.strokeStyle = "#888888";
        ctx.setLineDash([5, 4]);
        for (const r of [1, 2, 3]) {
          const [cx, cy] = toScreen(0, 0);
          ctx.beginPath(); ctx.arc(cx, cy, r / (2 * extent) * planeSize, 0, 2 * Math.PI); ctx.stroke();
        }
        ctx.setLineDash([]);
      }
      // The codes, then each digit's name at its median.
      const r = planeSize < 300 ? 2.6 : 3;
      data.codes.forEach(([z1, z2], n) => {
        const [x, y] = toScreen(z1, z2);
        ctx.fillStyle = data.digit_colours[data.labels[n]];
        marker(ctx, data.digit_markers[data.labels[n]], x, y, r);
      });
      ctx.font = "bold 15px sans-serif";
      ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.lineWidth = 3; ctx.strokeStyle = "#ffffff"; ctx.fillStyle = "#111111";
      for (const [digit, z1, z2] of names) {
        const [x, y] = toScreen(z1, z2);
        ctx.strokeText(String(digit), x, y);
        ctx.fillText(String(digit), x, y);
      }
      ctx.lineWidth = 1;
    }

    function drawPlane() {
      const ratio = Math.max(window.devicePixelRatio || 1, 2);
      const ctx = plane.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.drawImage(background, 0, 0, plane.width, plane.height);
      ctx.scale(ratio, ratio);
      const [x, y] = toScreen(z[0], z[1]);
      const arm = 11;
      for (const [colour, lineWidth] of [["#ffffff", 5], ["#000000", 2]]) {
        ctx.strokeStyle = colour; ctx.lineWidth = lineWidth;
        ctx.beginPath();
        ctx.moveTo(x - arm, y); ctx.lineTo(x + arm, y);
        ctx.moveTo(x, y - arm); ctx.lineTo(x, y + arm);
        ctx.stroke();
      }
      if (document.activeElement === plane) {
        ctx.strokeStyle = "#0b63ce"; ctx.lineWidth = 2;
        ctx.beginPath(); ctx.arc(x, y, arm + 4, 0, 2 * Math.PI); ctx.stroke();
      }
    }

    function drawImage(canvas, pixels) {
      const ctx = canvas.getContext("2d");
      const picture = ctx.createImageData(width, height);
      for (let d = 0; d < pixels.length; d++) {
        // gray_r from 0 to max_value, as the book's figures draw digits
        const level = Math.max(0, Math.min(1, pixels[d] / data.max_value));
        const grey = Math.round(255 * (1 - level));
        picture.data.set([grey, grey, grey, 255], 4 * d);
      }
      ctx.putImageData(picture, 0, 0);
    }

    function render() {
      pending = false;
      drawPlane();
      drawImage(panels[0], mean);
      drawImage(panels[1], sample);
      const where = "z = (" + format(z[0]) + ", " + format(z[1]) + ")";
      readout.textContent = where;
      panels[0].setAttribute("aria-label", "The mean image decoded at " + where);
      panels[1].setAttribute("aria-label", "A sample from p(x | z) at " + where);
      plane.setAttribute("aria-valuetext", where);
    }

    function update() {
      mean = meanImage(model, z);
      sample = sampleImage(model, z, noise);
      if (!pending) {
        pending = true;
        window.requestAnimationFrame(render);
      }
    }

    function setCode(z1, z2) {
      z = [clamp(Number(z1)), clamp(Number(z2))];
      mean = meanImage(model, z);
      sample = sampleImage(model, z, noise);
      render();  // at once, so that a test reads what is drawn
    }

    function layout() {
      const available = Math.floor(planeBox.parentElement.getBoundingClientRect().width);
      const size = Math.max(200, Math.min(PLANE_MAX, available));
      if (size === planeSize && background) return;
      planeSize = size;
      const ratio = Math.max(window.devicePixelRatio || 1, 2);
      plane.width = plane.height = Math.round(size * ratio);
      plane.style.width = plane.style.height = size + "px";
      legend.style.maxWidth = size + "px";
      drawBackground();
      render();
    }

    function fromPointer(event) {
      const box = plane.getBoundingClientRect();
      const [z1, z2] = toCode(event.clientX - box.left, event.clientY - box.top);
      z = [clamp(z1), clamp(z2)];
      update();
    }

    plane.addEventListener("pointerdown", event => {
      if (event.button !== 0) return;
      dragging = event.pointerId;
      try { plane.setPointerCapture(event.pointerId); } catch (e) { /* synthetic events have no capture */ }
      plane.focus({ preventScroll: true });
      fromPointer(event);
      event.preventDefault();
    });
    plane.addEventListener("pointermove", event => {
      if (dragging === event.pointerId) fromPointer(event);
    });
    const release = event => { if (dragging === event.pointerId) dragging = null; };
    plane.addEventListener("pointerup", release);
    plane.addEventListener("pointercancel", release);
    plane.addEventListener("keydown", event => {
      const step = event.shiftKey ? BIG_STEP : STEP;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      if (event.key in moves) {
        z = [clamp(z[0] + moves[event.key][0]), clamp(z[1] + moves[event.key][1])];
      } else if (event.key === "Home") {
        z = [0, 0];
      } else {
        return;
      }
      event.preventDefault();
      update();
    });
    plane.addEventListener("focus", () => render());
    plane.addEventListener("blur", () => render());
    resample.addEventListener("click", () => {
      noise = Array.from({ length: 2 * model.inputDim }, random);
      update();
    });

    layout();
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(() => layout()).observe(root);
    } else {
      window.addEventListener("resize", layout);
    }

    return {
      element: root,
      data,
      setCode,
      code: () => z.slice(),
      pixels: () => Array.from(mean),
      samplePixels: () => Array.from(sample),
      decode: code => Array.from(meanImage(model, code)),
      clientPoint: (z1, z2) => {
        const box = plane.getBoundingClientRect();
        const [x, y] = toScreen(z1, z2);
        return { x: box.left + x, y: box.top + y };
      },
    };
  }

  function start() {
    window.latentExplorers = window.latentExplorers || [];
    document.querySelectorAll(".latent-explorer:not(.latent-explorer-live)").forEach(root => {
      const source = root.querySelector("script.latent-explorer-data");
      if (!source) return;
      const explorer = Explorer(root, JSON.parse(source.textContent), window.latentExplorers.length);
      window.latentExplorers.push(explorer);
    });
    window.latentExplorer = window.latentExplorers[0];
  }

  window.latentExplorerMaths = maths;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
