// latentatlas explorer front end: plain JavaScript, no build step, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("plane");
const ctx = canvas.getContext("2d");
const pointsLayer = document.createElement("canvas"); // the real z-points, redrawn only when plane or view change
const DRAG_PIXELS = 5; // a press that moves less than this is a click, otherwise a path
const HOVER_PIXELS = 8;

const state = {
  info: null,
  basis: "axes",
  plane: [0, 1],
  geometry: null, // /api/plane answer
  points: null, // Float32Array, x0 y0 x1 y1 ...
  rows: null, // Int32Array: z-point store row of each display point
  view: null, // [xmin, xmax, ymin, ymax]
  base: "centre",
  clicked: null, // [x, y] of the last decoded point
  path: null, // {start, end, points}
  samples: null, // {sampler, n, seed, points}
  drag: null,
  hovered: -1,
  requestId: 0,
  colour: null, // {column, bins: Uint8Array (255: no value), order: indices sorted by bin, palette}
};

// Colour-blind-safe steps for numbers (viridis), two colours for yes/no columns, ten for categories.
const VIRIDIS = ["#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#fde725"];
const BINARY = ["#1f77b4", "#d62728"];
const CATEGORIES = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const MISSING = 255;

// ---------------------------------------------------------------- server calls

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).detail || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  const type = response.headers.get("Content-Type") || "";
  return type.includes("application/json") ? response.json() : response.arrayBuffer();
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function report(error) { setStatus(error.message || String(error), true); }

// ---------------------------------------------------------------- coordinates

function size() {
  const rect = canvas.getBoundingClientRect();
  return {width: rect.width, height: rect.height};
}

const MARGIN = {left: 58, right: 14, top: 14, bottom: 42};

function toPixel(x, y) {
  const {width, height} = size();
  const [x0, x1, y0, y1] = state.view;
  return [
    MARGIN.left + (x - x0) / (x1 - x0) * (width - MARGIN.left - MARGIN.right),
    height - MARGIN.bottom - (y - y0) / (y1 - y0) * (height - MARGIN.top - MARGIN.bottom),
  ];
}

function toData(px, py) {
  const {width, height} = size();
  const [x0, x1, y0, y1] = state.view;
  return [
    x0 + (px - MARGIN.left) / (width - MARGIN.left - MARGIN.right) * (x1 - x0),
    y0 + (height - MARGIN.bottom - py) / (height - MARGIN.top - MARGIN.bottom) * (y1 - y0),
  ];
}

function eventPixel(event) {
  const rect = canvas.getBoundingClientRect();
  return [event.clientX - rect.left, event.clientY - rect.top];
}

function niceTicks(low, high, count) {
  const span = high - low;
  const step0 = Math.pow(10, Math.floor(Math.log10(span / count)));
  const step = [1, 2, 5, 10].map((m) => m * step0).find((s) => span / s <= count) || 10 * step0;
  const ticks = [];
  for (let t = Math.ceil(low / step) * step; t <= high + 1e-12; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

// ---------------------------------------------------------------- drawing

function resizeCanvas() {
  const {width, height} = size();
  const ratio = window.devicePixelRatio || 1;
  for (const c of [canvas, pointsLayer]) {
    c.width = Math.round(width * ratio);
    c.height = Math.round(height * ratio);
  }
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  pointsLayer.getContext("2d").setTransform(ratio, 0, 0, ratio, 0, 0);
}

function renderPoints() {
  const layer = pointsLayer.getContext("2d");
  const {width, height} = size();
  layer.clearRect(0, 0, width, height);
  if (!state.points) return;
  const n = state.points.length / 2;
  // Fewer points can be drawn larger and more opaque; tens of thousands stay readable as a density.
  const radius = n > 20000 ? 1.0 : n > 5000 ? 1.4 : 2.0;
  layer.globalAlpha = n > 20000 ? 0.25 : n > 5000 ? 0.4 : 0.6;
  layer.fillStyle = "#1f77b4";
  layer.save();
  layer.beginPath();
  layer.rect(MARGIN.left, MARGIN.top, width - MARGIN.left - MARGIN.right, height - MARGIN.top - MARGIN.bottom);
  layer.clip();
  const colour = state.colour && state.colour.bins.length === n ? state.colour : null;
  let current = -1;
  for (let k = 0; k < n; k++) {
    const i = colour ? colour.order[k] : k;
    if (colour && colour.bins[i] !== current) {
      current = colour.bins[i];
      layer.fillStyle = current === MISSING ? "#c8ccd2" : colour.palette[current];
    }
    const [px, py] = toPixel(state.points[2 * i], state.points[2 * i + 1]);
    layer.fillRect(px - radius, py - radius, 2 * radius, 2 * radius);
  }
  layer.restore();
  layer.globalAlpha = 1;
}

function drawAxes() {
  const {width, height} = size();
  const [x0, x1, y0, y1] = state.view;
  ctx.strokeStyle = "#9aa3ad";
  ctx.fillStyle = "#3b444f";
  ctx.lineWidth = 1;
  ctx.strokeRect(MARGIN.left, MARGIN.top, width - MARGIN.left - MARGIN.right, height - MARGIN.top - MARGIN.bottom);
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of niceTicks(x0, x1, 8)) {
    const [px] = toPixel(t, y0);
    ctx.beginPath(); ctx.moveTo(px, height - MARGIN.bottom); ctx.lineTo(px, height - MARGIN.bottom + 4); ctx.stroke();
    ctx.fillText(+t.toPrecision(4), px, height - MARGIN.bottom + 6);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of niceTicks(y0, y1, 8)) {
    const [, py] = toPixel(x0, t);
    ctx.beginPath(); ctx.moveTo(MARGIN.left - 4, py); ctx.lineTo(MARGIN.left, py); ctx.stroke();
    ctx.fillText(+t.toPrecision(4), MARGIN.left - 6, py);
  }
  const labels = state.geometry ? state.geometry.labels : ["", ""];
  ctx.font = "13px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  ctx.fillText(labels[0], (MARGIN.left + width - MARGIN.right) / 2, height - 4);
  ctx.save();
  ctx.translate(14, (MARGIN.top + height - MARGIN.bottom) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText(labels[1], 0, 0);
  ctx.restore();
}

function drawEllipse(ellipse) {
  const [cx, cy] = ellipse.centre;
  const [a, b] = ellipse.half_axes;
  const angle = ellipse.angle_deg * Math.PI / 180;
  ctx.beginPath();
  for (let k = 0; k <= 96; k++) {
    const t = 2 * Math.PI * k / 96;
    const ex = a * Math.cos(t), ey = b * Math.sin(t);
    const [px, py] = toPixel(cx + ex * Math.cos(angle) - ey * Math.sin(angle), cy + ex * Math.sin(angle) + ey * Math.cos(angle));
    if (k === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
  }
  ctx.stroke();
}

function marker(x, y, fill, radius, stroke = "#000") {
  const [px, py] = toPixel(x, y);
  ctx.beginPath();
  ctx.arc(px, py, radius, 0, 2 * Math.PI);
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = stroke;
  ctx.stroke();
}

function draw() {
  const {width, height} = size();
  ctx.clearRect(0, 0, width, height);
  if (!state.view) return;
  ctx.drawImage(pointsLayer, 0, 0, width, height);
  ctx.save();
  ctx.beginPath();
  ctx.rect(MARGIN.left, MARGIN.top, width - MARGIN.left - MARGIN.right, height - MARGIN.top - MARGIN.bottom);
  ctx.clip();
  if (state.geometry) {
    ctx.lineWidth = 1.3;
    ctx.setLineDash([6, 4]);
    state.geometry.ellipses.forEach((e, k) => { ctx.strokeStyle = ["#222", "#555", "#888"][k % 3]; drawEllipse(e); });
    ctx.setLineDash([]);
  }
  if (state.samples) for (const [x, y] of state.samples.points) marker(x, y, "#d62728", 3.2, "#7a1010");
  if (state.path && state.path.points) {
    ctx.strokeStyle = "#111";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    state.path.points.forEach(([x, y], k) => { const [px, py] = toPixel(x, y); if (k) ctx.lineTo(px, py); else ctx.moveTo(px, py); });
    ctx.stroke();
    for (const [x, y] of state.path.points) marker(x, y, "#111", 2.5, "#111");
  }
  if (state.drag && state.drag.moved) {
    ctx.strokeStyle = "#111";
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(...state.drag.startPixel);
    ctx.lineTo(...state.drag.pixel);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  if (state.geometry) {
    if (state.geometry.origin) marker(...state.geometry.origin, "gold", 6); // the UMAP map has no origin
    marker(...state.geometry.centre, "darkorange", 6);
  }
  if (state.hovered >= 0) marker(state.points[2 * state.hovered], state.points[2 * state.hovered + 1], "#1f77b4", 5, "#fff");
  if (state.clicked) marker(...state.clicked, "#fff", 5, "#111");
  ctx.restore();
  drawAxes();
}

// ---------------------------------------------------------------- loading a plane

function readPlaneInputs() {
  if ($("basis").value === "umap") return [0, 1];
  const dim = state.info.latent_dim;
  const x = Number($("axis-x").value), y = Number($("axis-y").value);
  for (const v of [x, y]) {
    if (!Number.isInteger(v) || v < 0 || v >= dim) throw new Error(`axes are whole numbers 0..${dim - 1}`);
  }
  if (x === y) throw new Error("choose two different axes");
  return [x, y];
}

async function loadPlane() {
  let plane;
  try { plane = readPlaneInputs(); } catch (error) { report(error); return; }
  state.basis = $("basis").value;
  state.plane = plane;
  const query = `basis=${state.basis}&x=${plane[0]}&y=${plane[1]}&run=${state.info.token}`;
  setStatus(state.basis === "umap" ? "computing the UMAP map (the first time takes a while)…" : "loading plane…");
  if (state.basis === "umap" && state.samples) clearSamples(); // sampled vectors cannot be placed on the map
  try {
    const [geometry, buffer] = await Promise.all([api(`/api/plane?${query}`), api(`/api/points?${query}`)]);
    state.geometry = geometry;
    state.points = new Float32Array(buffer);
    state.view = geometry.bounds.slice();
    state.clicked = null;
    state.path = null;
    state.hovered = -1;
    renderPoints();
    draw();
    setStatus(`${geometry.count} real z-points in plane ${geometry.labels.join(", ")}`);
    if (state.samples) await drawSamples(false);
  } catch (error) { report(error); }
}

// ---------------------------------------------------------------- actions

function planeRequest() { return {basis: state.basis, plane: state.plane, base: state.base}; }

function faceText(face) {
  if (face === null || face === undefined) return "";
  return face ? '<span class="face-yes">face found</span>' : '<span class="face-no">no face found</span>';
}

async function decodeAt(x, y) {
  const id = ++state.requestId; // an older, slower answer must not overwrite a newer click
  state.clicked = [x, y];
  draw();
  try {
    const answer = await api("/api/decode", {...planeRequest(), coords: [x, y]});
    if (id !== state.requestId) return;
    const img = $("decoded");
    img.src = answer.image;
    img.hidden = false;
    const labels = state.geometry.labels;
    const where = answer.row === null
      ? `${labels[0]} = ${x.toPrecision(4)}, ${labels[1]} = ${y.toPrecision(4)}`
      : `the real z-point #${answer.row} nearest the click on the map`;
    $("decoded-info").innerHTML =
      `${where}<br>` +
      `Mahalanobis distance ${answer.distance.toFixed(2)}: ` +
      `<b>${answer.percentile.toFixed(1)} %</b> of the real z-points lie closer to the centre<br>${faceText(answer.face)}`;
    setStatus("decoded");
  } catch (error) { report(error); }
}

async function decodePath(start, end) {
  const steps = Math.max(2, Math.min(Math.floor(Number($("steps").value)) || 8, state.info.limits.max_steps));
  $("steps").value = steps;
  const method = $("method").value;
  state.path = {start, end, points: [start, end]};
  draw();
  setStatus("decoding path…");
  try {
    const answer = await api("/api/path", {...planeRequest(), start, end, steps, method});
    state.path.points = answer.points;
    fillStrip($("strip"), answer);
    const faces = answer.faces ? answer.faces.filter(Boolean).length : 0;
    $("strip-title").textContent = `Path (${method}, ${steps} images, ${faces} with a face)`;
    draw();
    setStatus("path decoded");
  } catch (error) { report(error); }
}

function fillStrip(container, answer) {
  container.replaceChildren();
  answer.images.forEach((src, k) => {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.src = src;
    img.alt = `decoded image ${k + 1}`;
    const caption = document.createElement("figcaption");
    caption.textContent = `${answer.percentiles[k].toFixed(0)} %` + (answer.faces ? (answer.faces[k] ? " · face" : " · no face") : "");
    if (answer.faces && !answer.faces[k]) figure.classList.add("no-face");
    figure.append(img, caption);
    container.append(figure);
  });
}

async function drawSamples(withImages = true) {
  const sampler = $("sampler").value;
  const n = Math.max(1, Math.min(Math.floor(Number($("sample-n").value)) || 16, state.info.limits.max_samples));
  const seed = Math.max(0, Math.floor(Number($("sample-seed").value) || 0));
  $("sample-n").value = n;
  setStatus(`sampling ${n} from ${sampler}…`);
  try {
    const answer = await api("/api/sample", {sampler, n, seed, basis: state.basis, plane: state.plane, images: withImages});
    state.samples = {sampler, n, seed, points: answer.points};
    if (includeInView(answer.points)) renderPoints();
    if (withImages) {
      fillStrip($("samples"), answer);
      const faces = answer.faces ? answer.faces.filter(Boolean).length : 0;
      const median = [...answer.percentiles].sort((a, b) => a - b)[Math.floor(answer.percentiles.length / 2)];
      $("samples-title").textContent =
        `Samples: ${sampler}, n ${n}, seed ${seed} (${faces} of ${n} with a face, median Mahalanobis percentile ${median.toFixed(0)} %)`;
    }
    draw();
    setStatus(`${n} samples from ${sampler}`);
  } catch (error) { report(error); }
}

function includeInView(points) {
  // Samples far outside the bulk (the uniform box) are the point of the exercise: keep them in sight.
  let [x0, x1, y0, y1] = state.view;
  const [bx0, bx1, by0, by1] = [x0, x1, y0, y1];
  for (const [x, y] of points) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  if (x0 === bx0 && x1 === bx1 && y0 === by0 && y1 === by1) return false;
  const [padX, padY] = [0.04 * (x1 - x0), 0.04 * (y1 - y0)];
  state.view = [x0 - (x0 < bx0 ? padX : 0), x1 + (x1 > bx1 ? padX : 0), y0 - (y0 < by0 ? padY : 0), y1 + (y1 > by1 ? padY : 0)];
  return true;
}

function nearestPoint(px, py) {
  if (!state.points) return -1;
  let best = -1, bestDistance = HOVER_PIXELS * HOVER_PIXELS;
  const n = state.points.length / 2;
  for (let i = 0; i < n; i++) {
    const [qx, qy] = toPixel(state.points[2 * i], state.points[2 * i + 1]);
    const d = (qx - px) * (qx - px) + (qy - py) * (qy - py);
    if (d < bestDistance) { bestDistance = d; best = i; }
  }
  return best;
}

async function showHovered(i) {
  if (i === state.hovered) return;
  state.hovered = i;
  draw();
  if (i < 0) return;
  const row = state.rows[i];
  const img = $("hovered");
  img.src = `/api/image/${row}?run=${state.info.token}`;
  img.hidden = false;
  try {
    const point = await api(`/api/point/${row}`);
    if (state.hovered !== i) return;
    $("hovered-info").innerHTML =
      `z-point #${point.index} (${point.subset}${point.image_id ? ", " + point.image_id : ""})<br>` +
      `Mahalanobis distance ${point.distance.toFixed(2)}: ${point.percentile.toFixed(1)} % of the real z-points lie closer to the centre`;
  } catch (error) { report(error); }
}

function setBase(i) {
  state.base = state.rows[i];
  $("base-info").innerHTML = `held at real z-point <b>#${state.base}</b>`;
  $("base-reset").hidden = false;
  setStatus(`other components now held at z-point #${state.base}`);
}

// ---------------------------------------------------------------- events

canvas.addEventListener("pointerdown", (event) => {
  if (!state.view || event.button !== 0) return;
  const pixel = eventPixel(event);
  state.drag = {startPixel: pixel, pixel, start: toData(...pixel), moved: false, shift: event.shiftKey};
  canvas.setPointerCapture(event.pointerId);
});

let hoverFrame = 0;
canvas.addEventListener("pointermove", (event) => {
  if (!state.view) return;
  const pixel = eventPixel(event);
  if (state.drag) {
    state.drag.pixel = pixel;
    const [dx, dy] = [pixel[0] - state.drag.startPixel[0], pixel[1] - state.drag.startPixel[1]];
    if (dx * dx + dy * dy > DRAG_PIXELS * DRAG_PIXELS) state.drag.moved = true;
    draw();
    return;
  }
  if (hoverFrame) return; // one nearest-point search per animation frame is plenty
  hoverFrame = requestAnimationFrame(() => { hoverFrame = 0; showHovered(nearestPoint(...pixel)); });
});

canvas.addEventListener("pointerup", (event) => {
  const drag = state.drag;
  state.drag = null;
  if (!drag) return;
  const pixel = eventPixel(event);
  if (drag.moved && state.basis === "umap") {
    setStatus("paths need a linear basis (latent or principal axes): the UMAP map has no inverse", true);
  } else if (drag.moved) {
    decodePath(drag.start, toData(...pixel));
  } else if (drag.shift) {
    const i = nearestPoint(...pixel);
    if (i >= 0) setBase(i); else setStatus("Shift+click on a real (blue) point to hold the other components at it", true);
  } else {
    decodeAt(...toData(...pixel));
  }
});

canvas.addEventListener("pointerleave", () => { if (!state.drag) showHovered(-1); });

canvas.addEventListener("wheel", (event) => {
  if (!state.view) return;
  event.preventDefault();
  const [cx, cy] = toData(...eventPixel(event));
  const factor = Math.exp(event.deltaY * 0.0015);
  const [x0, x1, y0, y1] = state.view;
  state.view = [cx + (x0 - cx) * factor, cx + (x1 - cx) * factor, cy + (y0 - cy) * factor, cy + (y1 - cy) * factor];
  renderPoints();
  draw();
}, {passive: false});

$("reset-view").addEventListener("click", () => { if (state.geometry) { state.view = state.geometry.bounds.slice(); renderPoints(); draw(); } });
$("base-reset").addEventListener("click", () => {
  state.base = "centre";
  $("base-info").innerHTML = "held at the <b>centre</b>";
  $("base-reset").hidden = true;
});
$("basis").addEventListener("change", () => {
  // Principal axes are sorted by variance, so PC 0 and PC 1 are the natural first plane.
  const basis = $("basis").value;
  [$("axis-x").value, $("axis-y").value] = basis === "axes" ? state.info.default_plane : [0, 1];
  $("axis-x").disabled = $("axis-y").disabled = basis === "umap";
  showAxisHint();
  loadPlane();
});

function showAxisHint() {
  const info = state.info;
  if ($("basis").value === "umap") {
    $("top-axes").textContent = "UMAP keeps neighbourhoods, not distances; a click decodes the nearest real z-point.";
    return;
  }
  $("top-axes").textContent = $("basis").value === "pca"
    ? `Principal axes by variance: PC[0] ${(100 * info.pca_explained[0]).toFixed(0)} %, PC[1] ${(100 * info.pca_explained[1]).toFixed(0)} %, PC[2] ${(100 * (info.pca_explained[2] || 0)).toFixed(0)} %`
    : `Widest axes: ${info.top_axes.slice(0, 8).join(", ")}`;
}
for (const id of ["axis-x", "axis-y"]) $(id).addEventListener("change", loadPlane);
$("sample").addEventListener("click", () => drawSamples(true));
function clearSamples() {
  state.samples = null;
  $("samples").replaceChildren();
  $("samples-title").textContent = "Samples";
  draw();
}
$("sample-clear").addEventListener("click", clearSamples);

// ---------------------------------------------------------------- colouring by an attribute or factor

function binsOf(column, values) {
  const bins = new Uint8Array(values.length);
  const span = column.max - column.min;
  values.forEach((v, i) => {
    if (Number.isNaN(v)) bins[i] = MISSING;
    else if (column.kind === "category") bins[i] = v % CATEGORIES.length;
    else if (column.kind === "binary") bins[i] = v > column.min ? 1 : 0;
    else bins[i] = span > 0 ? Math.min(VIRIDIS.length - 1, Math.floor((v - column.min) / span * VIRIDIS.length)) : 0;
  });
  return bins;
}

function showLegend(column) {
  const legend = $("colour-legend");
  legend.replaceChildren();
  if (!column) return;
  const entry = (colour, text) => {
    const item = document.createElement("span");
    const dot = document.createElement("i");
    dot.className = "dot";
    dot.style.background = colour;
    item.append(dot, document.createTextNode(` ${text}  `));
    legend.append(item);
  };
  if (column.kind === "category") column.labels.forEach((label, k) => entry(CATEGORIES[k % CATEGORIES.length], label));
  else if (column.kind === "binary") { entry(BINARY[0], String(column.min)); entry(BINARY[1], String(column.max)); }
  else { entry(VIRIDIS[0], column.min.toPrecision(3)); entry(VIRIDIS[VIRIDIS.length - 1], column.max.toPrecision(3)); }
}

async function loadColour() {
  const name = $("colour").value;
  const column = state.info.columns.find((c) => c.name === name);
  if (!column) {
    state.colour = null;
  } else {
    try {
      const values = new Float32Array(await api(`/api/column/${encodeURIComponent(name)}?run=${state.info.token}`));
      const bins = binsOf(column, values);
      const order = Uint32Array.from(bins.keys()).sort((a, b) => bins[a] - bins[b]);
      const palette = column.kind === "category" ? CATEGORIES : column.kind === "binary" ? BINARY : VIRIDIS;
      state.colour = {column: name, bins, order, palette};
    } catch (error) { report(error); return; }
  }
  showLegend(column);
  renderPoints();
  draw();
  setStatus(column ? `points coloured by ${name}` : "points in one colour");
}
$("colour").addEventListener("change", loadColour);
window.addEventListener("resize", () => { resizeCanvas(); renderPoints(); draw(); });

// ---------------------------------------------------------------- start

async function start() {
  try {
    const [info, rows] = await Promise.all([api("/api/info"), api("/api/rows")]);
    state.info = info;
    state.rows = new Int32Array(rows);
    $("run-info").textContent =
      `run ${info.run}: ${info.n_points} z-points of dimension ${info.latent_dim}, images ${info.image_size}×${info.image_size}`;
    $("n-display").textContent = `(${info.n_display} shown)`;
    $("axis-x").max = $("axis-y").max = info.latent_dim - 1;
    [$("axis-x").value, $("axis-y").value] = info.default_plane;
    showAxisHint();
    $("steps").max = info.limits.max_steps;
    $("sample-n").max = info.limits.max_samples;
    for (const name of info.samplers) $("sampler").append(new Option(name, name));
    for (const column of info.columns) $("colour").append(new Option(`${column.name} (${column.kind})`, column.name));
    if (info.regions_note) $("colour").title = info.regions_note; // why there is no region column
    if (info.samplers.includes("gaussian")) $("sampler").value = "gaussian";
    resizeCanvas();
    await loadPlane();
    document.body.dataset.ready = "1"; // the end-to-end tests wait for this
  } catch (error) { report(error); }
}

start();
