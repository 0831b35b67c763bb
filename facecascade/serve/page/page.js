// The facecascade web page: send each chosen or dropped photo to POST /v1/analyze, then draw
// the faces the server found (boxes, 5 landmarks, labels) and list them in a table, with the
// JSON answer and the timings. Plain JavaScript, no framework, no build step.

const ENDPOINT = "/v1/analyze?attributes=top5";
const CONCURRENT = 3; // requests in flight at once; the server batches them
const RETRIES = 3; // tries after a 503 (queue full, models loading)
const LABEL_ATTRIBUTES = 2; // attributes drawn on the canvas (the table has all 5)...
const NARROW_PX = 480; // ...none where the canvas shows narrower than this (a phone)
const MIN_FONT_PX = 11; // the smallest label text on the screen
const COLORS = ["#22c55e", "#38bdf8", "#f97316", "#e879f9", "#facc15", "#f87171", "#a3e635", "#2dd4bf"];
const LANDMARKS = 5; // eyes, nose, mouth corners

const $ = (selector, root = document) => root.querySelector(selector);

// --- small helpers -------------------------------------------------------------------------

function setStatus(message) {
  $("#status").textContent = message;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function attributeName(name) {
  return name.replaceAll("_", " ");
}

function percent(p) {
  return `${Math.round(p * 100)}%`;
}

function topAttributes(face, n = Infinity) {
  const entries = Object.entries(face.attributes || {});
  return entries.sort((a, b) => b[1] - a[1]).slice(0, n);
}

function attributesText(face, n) {
  return topAttributes(face, n)
    .map(([name, p]) => `${attributeName(name)} ${percent(p)}`)
    .join(", ");
}

function boxText(box) {
  return box.map((v) => Math.round(v)).join(", ");
}

function faceColor(index) {
  return COLORS[index % COLORS.length];
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- the request ---------------------------------------------------------------------------

async function readBody(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return { error: `HTTP ${response.status}`, detail: text.slice(0, 500) || response.statusText };
  }
}

async function postOnce(file) {
  const began = performance.now();
  const response = await fetch(ENDPOINT, {
    method: "POST",
    headers: { "Content-Type": file.type || "application/octet-stream" },
    body: file,
  });
  const body = await readBody(response);
  return {
    ok: response.ok,
    status: response.status,
    body,
    serverMs: response.headers.get("X-Process-Time-Ms"),
    roundTripMs: performance.now() - began,
    retryAfter: Number(response.headers.get("Retry-After")) || 1,
  };
}

async function analyze(file) {
  let answer;
  for (let attempt = 0; attempt <= RETRIES; attempt += 1) {
    try {
      answer = await postOnce(file);
    } catch (err) {
      return { ok: false, status: 0, body: { error: "network error", detail: String(err.message || err) } };
    }
    if (answer.status !== 503 || attempt === RETRIES) break;
    await sleep(answer.retryAfter * 1000);
  }
  return answer;
}

function loadImage(file) {
  return new Promise((resolve) => {
    const url = URL.createObjectURL(file);
    const image = new Image();
    const done = (value) => {
      URL.revokeObjectURL(url); // a loaded image stays drawable
      resolve(value);
    };
    image.onload = () => done(image);
    image.onerror = () => done(null); // the server may still read what the browser cannot show
    image.src = url;
  });
}

// --- drawing -------------------------------------------------------------------------------

// Line widths and text sizes in canvas pixels: in proportion to the photo, and text never under
// MIN_FONT_PX on the screen, however much the canvas is scaled down to fit.
function drawStyle(width, height, shownWidth) {
  const side = Math.max(width, height);
  const perScreenPixel = width / (shownWidth || width);
  return {
    line: Math.max(2, Math.round(side / 300)),
    radius: Math.max(2, Math.round(side / 220)),
    font: Math.round(Math.max(MIN_FONT_PX * perScreenPixel, side / 55)),
    attributes: shownWidth && shownWidth < NARROW_PX ? 0 : LABEL_ATTRIBUTES,
  };
}

function drawBox(ctx, box, color, style) {
  const [x1, y1, x2, y2] = box;
  ctx.lineWidth = style.line;
  ctx.strokeStyle = "rgba(0, 0, 0, 0.55)";
  ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  ctx.lineWidth = Math.max(1, style.line - 1);
  ctx.strokeStyle = color;
  ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
}

function drawLandmarks(ctx, points, color, style) {
  for (const [x, y] of points) {
    ctx.beginPath();
    ctx.arc(x, y, style.radius, 0, 2 * Math.PI);
    ctx.fillStyle = color;
    ctx.fill();
    ctx.lineWidth = Math.max(1, style.radius / 2);
    ctx.strokeStyle = "#000";
    ctx.stroke();
  }
}

function overlaps(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

// Where a face's label goes: above its box, else below it, else inside its top, whichever
// first misses the labels already placed and stays on the canvas (else above or below anyway).
function placeLabel(size, box, canvas, placed) {
  const x = Math.max(0, Math.min(box[0], canvas.width - size.width));
  const tops = [box[1] - size.height, box[3], box[1]];
  const fits = (rect) => rect.y >= 0 && rect.y + rect.height <= canvas.height;
  const candidates = tops.map((y) => ({ x, y, ...size })).filter(fits);
  const free = candidates.find((rect) => !placed.some((other) => overlaps(rect, other)));
  return free || candidates[0] || { x, y: 0, ...size };
}

function measureLabel(ctx, lines, style) {
  const pad = Math.round(style.font / 4);
  const lineHeight = Math.round(style.font * 1.2);
  const width = Math.max(...lines.map((line) => ctx.measureText(line).width)) + 2 * pad;
  return { width: Math.ceil(width), height: lines.length * lineHeight + pad, pad, lineHeight };
}

function drawLabel(ctx, lines, box, color, style, placed) {
  ctx.font = `600 ${style.font}px system-ui, sans-serif`;
  const { pad, lineHeight, ...size } = measureLabel(ctx, lines, style);
  const rect = placeLabel(size, box, ctx.canvas, placed);
  placed.push(rect);
  ctx.fillStyle = color;
  ctx.fillRect(rect.x, rect.y, rect.width, rect.height);
  ctx.fillStyle = "#111";
  ctx.textBaseline = "top";
  lines.forEach((line, i) => ctx.fillText(line, rect.x + pad, rect.y + pad + i * lineHeight));
}

function scaleFace(face, sx, sy) {
  const [x1, y1, x2, y2] = face.box;
  return {
    box: [x1 * sx, y1 * sy, x2 * sx, y2 * sy],
    landmarks: (face.landmarks || []).map(([x, y]) => [x * sx, y * sy]),
  };
}

function faceLabel(face, index, style) {
  const lines = [`#${index + 1}  ${face.score.toFixed(2)}`];
  for (const [name, p] of topAttributes(face, style.attributes)) {
    lines.push(`${attributeName(name)} ${percent(p)}`);
  }
  return lines;
}

function drawResult(canvas, image, result) {
  const width = image ? image.naturalWidth : result.width;
  const height = image ? image.naturalHeight : result.height;
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (image) {
    ctx.drawImage(image, 0, 0, width, height);
  } else {
    ctx.fillStyle = "#333";
    ctx.fillRect(0, 0, width, height);
  }
  const style = drawStyle(width, height, canvas.clientWidth);
  const sx = width / result.width;
  const sy = height / result.height;
  const scaled = result.faces.map((face) => scaleFace(face, sx, sy));
  scaled.forEach((face, i) => {
    drawBox(ctx, face.box, faceColor(i), style);
    drawLandmarks(ctx, face.landmarks, faceColor(i), style);
  });
  const placed = []; // the labels last, over every box
  scaled.forEach((face, i) => {
    drawLabel(ctx, faceLabel(result.faces[i], i, style), face.box, faceColor(i), style, placed);
  });
}

function canvasDescription(name, result) {
  if (!result.faces.length) return `${name}: no faces found`;
  const faces = result.faces.map((face, i) => {
    const attributes = attributesText(face, LABEL_ATTRIBUTES);
    return `face ${i + 1} (score ${face.score.toFixed(2)}${attributes ? `; ${attributes}` : ""})`;
  });
  const marked = `${plural(result.faces.length, "face")} marked (box and ${LANDMARKS} landmarks each)`;
  return `${name} with ${marked}: ${faces.join("; ")}`;
}

// --- one result card -----------------------------------------------------------------------

function createCard(file) {
  const root = $("#result-template").content.firstElementChild.cloneNode(true);
  const part = (role) => $(`[data-role="${role}"]`, root);
  root.dataset.file = file.name;
  part("name").textContent = file.name;
  part("meta").textContent = "Waiting…";
  root.setAttribute("aria-busy", "true");
  return { root, part, file };
}

function renderRow(face, index) {
  const row = document.createElement("tr");
  const head = document.createElement("th");
  head.scope = "row";
  head.textContent = String(index + 1);
  head.style.setProperty("--face-color", faceColor(index));
  const cells = [face.score.toFixed(3), boxText(face.box), attributesText(face) || "—"];
  const data = cells.map((text) => Object.assign(document.createElement("td"), { textContent: text }));
  row.append(head, ...data);
  return row;
}

function renderTable(card, result) {
  const rows = result.faces.map(renderRow);
  card.part("rows").replaceChildren(...rows);
  const caption = result.faces.length
    ? `${plural(result.faces.length, "face")} in ${card.file.name}`
    : `No faces found in ${card.file.name}`;
  card.part("table-caption").textContent = caption;
  card.part("table-wrap").setAttribute("aria-label", caption);
}

function timingText(answer) {
  const server = answer.serverMs ? `server ${Number(answer.serverMs).toFixed(1)} ms` : "server time unknown";
  return `${server} · round trip ${Math.round(answer.roundTripMs)} ms`;
}

function renderSuccess(card, answer, image) {
  const result = answer.body;
  const count = result.faces.length;
  const size = `${result.width} × ${result.height} px`;
  card.part("meta").textContent = `${size} · ${plural(count, "face")} · ${timingText(answer)}`;
  card.part("body").hidden = false; // shown first: the drawing depends on the canvas's shown width
  const canvas = card.part("canvas");
  drawResult(canvas, image, result);
  canvas.setAttribute("aria-label", canvasDescription(card.file.name, result));
  const unseen = "This browser cannot display this image; the faces are drawn on a blank.";
  card.part("caption").textContent = image ? "" : unseen;
  renderTable(card, result);
  card.part("json").textContent = JSON.stringify(result, null, 2);
  card.part("copy").addEventListener("click", () => copyJson(card));
  card.root.dataset.faces = String(count);
  card.root.dataset.state = "done";
}

function renderError(card, answer) {
  const { error = "error", detail = "" } = answer.body || {};
  const status = answer.status ? `${answer.status} ` : "";
  const message = card.part("error");
  message.replaceChildren(
    Object.assign(document.createElement("strong"), { textContent: `${status}${error}` }),
    document.createTextNode(detail ? `: ${detail}` : ""),
  );
  message.hidden = false;
  card.part("body").hidden = true;
  card.part("meta").textContent = answer.roundTripMs ? `Failed · ${timingText(answer)}` : "Failed";
  card.root.dataset.state = "error";
  card.root.dataset.error = error;
}

async function copyJson(card) {
  const pre = card.part("json");
  let copied = true;
  try {
    await navigator.clipboard.writeText(pre.textContent);
  } catch {
    copied = copyBySelection(pre); // no clipboard API outside secure contexts (http on a LAN)
  }
  const name = card.file.name;
  setStatus(copied ? `Copied the JSON of ${name}.` : `Could not copy; the JSON of ${name} is selected instead.`);
}

function copyBySelection(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  return document.execCommand("copy");
}

async function processCard(card) {
  card.root.dataset.state = "running";
  card.part("meta").textContent = "Analyzing…";
  const [first, image] = await Promise.all([analyze(card.file), loadImage(card.file)]);
  let answer = first;
  try {
    if (answer.ok) renderSuccess(card, answer, image);
  } catch (err) {
    answer = { ...answer, ok: false, body: { error: "cannot show the answer", detail: String(err) } };
  }
  if (!answer.ok) renderError(card, answer);
  card.root.removeAttribute("aria-busy");
  return answer;
}

// --- a batch of files ----------------------------------------------------------------------

async function runPool(cards, worker, limit) {
  const queue = [...cards];
  const results = [];
  const lanes = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) {
      const card = queue.shift();
      results.push({ card, answer: await worker(card) });
    }
  });
  await Promise.all(lanes);
  return results;
}

function summary(results) {
  const failed = results.filter((r) => !r.answer.ok);
  const faces = results.reduce((n, r) => n + (r.answer.ok ? r.answer.body.faces.length : 0), 0);
  const done = results.length - failed.length;
  const parts = done ? [`Done: ${plural(faces, "face")} in ${plural(done, "photo")}.`] : [];
  if (failed.length) {
    const names = failed.map((r) => `${r.card.file.name} (${r.answer.body.error || "error"})`).join(", ");
    parts.push(`${plural(failed.length, "file")} failed: ${names}.`);
  }
  return parts.join(" ");
}

async function handleFiles(fileList) {
  const files = Array.from(fileList || []);
  if (!files.length) return;
  const cards = files.map(createCard);
  $("#results").prepend(...cards.map((card) => card.root));
  $("#clear-results").disabled = false;
  setStatus(`Analyzing ${plural(files.length, "photo")}…`);
  const results = await runPool(cards, processCard, CONCURRENT);
  setStatus(summary(results));
}

// --- wiring --------------------------------------------------------------------------------

function openPicker() {
  $("#file-input").click();
}

function onDropZoneKey(event) {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault(); // no page scroll on Space
    openPicker();
  }
}

function hasFiles(event) {
  return Array.from(event.dataTransfer?.types || []).includes("Files");
}

function wireDragAndDrop() {
  const zone = $("#drop-zone");
  let depth = 0; // dragenter/dragleave fire for every child crossed
  const highlight = (on) => zone.classList.toggle("dragging", on);
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    highlight(true);
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) highlight(false);
  });
  document.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault(); // allow a drop anywhere on the page, never open the file instead
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    highlight(false);
    handleFiles(event.dataTransfer.files);
  });
}

function clearResults() {
  $("#results").replaceChildren();
  $("#clear-results").disabled = true;
  setStatus("Results cleared.");
  $("#drop-zone").focus();
}

async function showModels() {
  try {
    const response = await fetch("/v1/models");
    if (!response.ok) return;
    const models = await response.json();
    const names = models.map((m) => `${m.role} ${m.name}`).join(", ");
    $("#models").textContent = names ? `Models: ${names}.` : "";
  } catch {
    // the footer line is a nicety; the page works without it
  }
}

function init() {
  const input = $("#file-input");
  input.addEventListener("change", () => {
    const files = Array.from(input.files);
    input.value = ""; // the same file chosen again fires change again
    handleFiles(files);
  });
  const zone = $("#drop-zone");
  zone.addEventListener("click", openPicker);
  zone.addEventListener("keydown", onDropZoneKey);
  $("#clear-results").addEventListener("click", clearResults);
  wireDragAndDrop();
  showModels();
  document.body.dataset.ready = "true";
}

init();
