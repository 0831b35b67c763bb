// The facecascade web page: send each chosen or dropped photo to POST /v1/analyze, then draw
// the faces the server found (boxes, 5 landmarks, labels) and list them in a table, with the
// JSON answer and the timings. Plain JavaScript, no framework, no build step.

const ENDPOINT = "/v1/analyze?attributes=top5";
const CONCURRENT = 3; // requests in flight at once; the server batches them
const RETRIES = 3; // tries after a 503 (queue full, models loading)
const LABEL_ATTRIBUTES = 2; // attributes drawn on the canvas (the table has all 5)
const COLORS = ["#22c55e", "#38bdf8", "#f97316", "#e879f9", "#facc15", "#f87171", "#a3e635", "#2dd4bf"];
const LANDMARKS = ["left eye", "right eye", "nose", "left mouth corner", "right mouth corner"];

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

function drawStyle(width, height) {
  const side = Math.max(width, height);
  return {
    line: Math.max(2, Math.round(side / 300)),
    radius: Math.max(2, Math.round(side / 220)),
    font: Math.max(12, Math.round(side / 50)),
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

function drawLabel(ctx, lines, box, color, style, canvasWidth) {
  const pad = Math.round(style.font / 4);
  const lineHeight = Math.round(style.font * 1.2);
  ctx.font = `600 ${style.font}px system-ui, sans-serif`;
  const width = Math.max(...lines.map((line) => ctx.measureText(line).width)) + 2 * pad;
  const height = lines.length * lineHeight + pad;
  const x = Math.max(0, Math.min(box[0], canvasWidth - width));
  const y = box[1] - height >= 0 ? box[1] - height : box[3]; // above the box, else below
  ctx.fillStyle = color;
  ctx.fillRect(x, y, width, height);
  ctx.fillStyle = "#111";
  ctx.textBaseline = "top";
  lines.forEach((line, i) => ctx.fillText(line, x + pad, y + pad + i * lineHeight));
}

function scaleFace(face, sx, sy) {
  const [x1, y1, x2, y2] = face.box;
  return {
    box: [x1 * sx, y1 * sy, x2 * sx, y2 * sy],
    landmarks: (face.landmarks || []).map(([x, y]) => [x * sx, y * sy]),
  };
}

function faceLabel(face, index) {
  const lines = [`#${index + 1}  ${face.score.toFixed(2)}`];
  const attributes = attributesText(face, LABEL_ATTRIBUTES);
  if (attributes) lines.push(attributes);
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
  const style = drawStyle(width, height);
  const sx = width / result.width;
  const sy = height / result.height;
  result.faces.forEach((face, i) => {
    const color = COLORS[i % COLORS.length];
    const scaled = scaleFace(face, sx, sy);
    drawBox(ctx, scaled.box, color, style);
    drawLandmarks(ctx, scaled.landmarks, color, style);
    drawLabel(ctx, faceLabel(face, i), scaled.box, color, style, width);
  });
}

function canvasDescription(name, result) {
  if (!result.faces.length) return `${name}: no faces found`;
  const faces = result.faces.map((face, i) => {
    const attributes = attributesText(face, LABEL_ATTRIBUTES);
    return `face ${i + 1} (score ${face.score.toFixed(2)}${attributes ? `; ${attributes}` : ""})`;
  });
  return `${name} with ${plural(result.faces.length, "face")} marked by boxes and ${LANDMARKS.length} landmarks each (${LANDMARKS.join(", ")}): ${faces.join("; ")}`;
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
  head.style.setProperty("--face-color", COLORS[index % COLORS.length]);
  const cells = [face.score.toFixed(3), boxText(face.box), attributesText(face) || "—"];
  row.append(head, ...cells.map((text) => Object.assign(document.createElement("td"), { textContent: text })));
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
  card.part("meta").textContent = `${result.width} × ${result.height} px · ${plural(count, "face")} · ${timingText(answer)}`;
  const canvas = card.part("canvas");
  drawResult(canvas, image, result);
  canvas.setAttribute("aria-label", canvasDescription(card.file.name, result));
  card.part("caption").textContent = image ? "" : "This browser cannot display this image; the boxes are drawn on a blank.";
  renderTable(card, result);
  card.part("json").textContent = JSON.stringify(result, null, 2);
  card.part("copy").addEventListener("click", () => copyJson(card));
  card.part("body").hidden = false;
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
  card.part("meta").textContent = answer.roundTripMs ? `Failed · ${timingText(answer)}` : "Failed";
  card.root.dataset.state = "error";
  card.root.dataset.error = error;
}

async function copyJson(card) {
  const text = card.part("json").textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    copyBySelection(card.part("json")); // no clipboard API outside secure contexts (http on a LAN)
  }
  setStatus(`Copied the JSON of ${card.file.name}.`);
}

function copyBySelection(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  document.execCommand("copy");
}

async function processCard(card) {
  card.root.dataset.state = "running";
  card.part("meta").textContent = "Analyzing…";
  const [answer, image] = await Promise.all([analyze(card.file), loadImage(card.file)]);
  if (answer.ok) {
    renderSuccess(card, answer, image);
  } else {
    renderError(card, answer);
  }
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
  let text = `Done: ${plural(faces, "face")} in ${plural(done, "photo")}.`;
  if (failed.length) {
    const names = failed.map((r) => `${r.card.file.name} (${r.answer.body.error})`).join(", ");
    text += ` ${plural(failed.length, "file")} failed: ${names}.`;
  }
  return text;
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
