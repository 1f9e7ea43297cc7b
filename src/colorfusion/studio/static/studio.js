// colorfusion studio: the page. It draws and sends points; every colour comes from the server
// (the package): the result, the suggested colours, the gamut, the full-resolution download.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  info: null,
  photo: null,        // the open photo's record (/api/photos ...)
  hints: [],          // [{x, y, hex}] in the photo's own pixels
  selected: -1,       // index of the point being edited
  undo: [],           // snapshots of {hints, selected}
  redo: [],
  recent: [],         // colours used lately
  hintsByName: {},    // every photo's points, by its name (the hints file's keys)
  folder: null,       // {name, photos}
  busy: 0,
  version: 0,         // results shown so far
};

// === Talking to the server ===

function wireHints(hints = state.hints) {
  return hints.map((h) => [h.x, h.y, h.hex]);
}

async function failure(response) {
  try {
    const body = await response.json();
    if (body && body.error) return new Error(body.error);
  } catch (e) { /* not JSON */ }
  return new Error(`the studio answered ${response.status} ${response.statusText}`);
}

async function post(url, body, as = "json") {
  const response = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return as === "blob" ? response : response.json();
}

async function busy(text, work) {
  state.busy += 1;
  showBusy(text);
  try {
    return await work();
  } finally {
    state.busy -= 1;
    showBusy(text);
  }
}

function showBusy(text) {
  document.body.dataset.busy = state.busy > 0 ? "1" : "0";
  $("status-text").textContent = state.busy > 0 ? text : "Ready";
}

function showError(error) {
  $("message-text").textContent = error.message || String(error);
  $("message").hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
  $("message-text").textContent = "";
}

// === Opening photos ===

async function openFile(file) {
  clearMessage();
  const limit = state.info.limits.upload_bytes;
  if (file.size > limit) {
    showError(new Error(`${file.name}: too large (${Math.round(file.size / 1e6)} MB; the studio takes files up to ${Math.round(limit / 1e6)} MB)`));
    return;
  }
  await busy("Opening…", async () => {
    try {
      const response = await fetch(`/api/photos?name=${encodeURIComponent(file.name)}`, {method: "POST", body: file});
      if (!response.ok) throw await failure(response);
      await setPhoto(await response.json());
    } catch (error) {
      showError(error);
    }
  });
}

async function openFolderPhoto(name) {
  clearMessage();
  await busy("Opening…", async () => {
    try {
      const response = await fetch(`/api/folder/open?path=${encodeURIComponent(name)}`, {method: "POST"});
      if (!response.ok) throw await failure(response);
      await setPhoto(await response.json());
    } catch (error) {
      showError(error);
    }
  });
  markCurrentThumb();
}

async function setPhoto(record) {
  if (state.photo) state.hintsByName[state.photo.name] = state.hints;
  state.photo = record;
  state.hints = (state.hintsByName[record.name] || []).map((h) => ({...h}));
  state.selected = -1;
  state.undo = [];
  state.redo = [];
  $("empty").hidden = true;
  $("work").hidden = false;
  $("palette").hidden = false;
  for (const id of ["download", "save-hints", "load-hints"]) $(id).disabled = false;
  $("bw").src = record.gray;
  $("before").src = record.gray;
  $("original").src = record.original;
  $("original-toggle").hidden = !record.is_colour;
  $("show-original").checked = false;
  $("original").hidden = true;
  $("bw").hidden = false;
  for (const id of ["stage-bw", "stage-result"]) {
    $(id).style.aspectRatio = `${record.display_width} / ${record.display_height}`;
    $(id).style.setProperty("--aspect", String(record.display_width / record.display_height));
  }
  document.title = `${record.name} - colorfusion studio`;
  showPoint();
  render();
  await refresh();
}

// === The result, kept up to date: the latest hints win ===

let inFlight = null;
let again = false;

async function refresh() {
  if (!state.photo) return;
  if (inFlight) {
    again = true;
    return inFlight;
  }
  inFlight = busy("Colorizing…", async () => {
    try {
      do {
        again = false;
        const photo = state.photo;
        const response = await post(`/api/photos/${photo.id}/result`, {hints: wireHints()}, "blob");
        const blob = await response.blob();
        if (photo === state.photo && !again) await showResult(blob);
      } while (again);
    } catch (error) {
      showError(error);
    }
  });
  try {
    await inFlight;
  } finally {
    inFlight = null;
  }
}

function showResult(blob) {
  return new Promise((resolve) => {
    const image = $("result");
    const old = image.src;
    image.onload = () => {
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      state.version += 1;
      image.dataset.version = String(state.version);
      resolve();
    };
    image.onerror = () => resolve();
    image.src = URL.createObjectURL(blob);
  });
}

// === Points ===

function snapshot() {
  state.undo.push({hints: state.hints.map((h) => ({...h})), selected: state.selected});
  if (state.undo.length > 200) state.undo.shift();
  state.redo = [];
}

function restore(from, to) {
  if (!from.length) return;
  to.push({hints: state.hints.map((h) => ({...h})), selected: state.selected});
  const previous = from.pop();
  state.hints = previous.hints;
  state.selected = Math.min(previous.selected, state.hints.length - 1);
  render();
  showPoint();
  refresh();
}

function photoPoint(event, stage) {
  const box = stage.getBoundingClientRect();
  const photo = state.photo;
  const x = Math.floor((event.clientX - box.left) / box.width * photo.width);
  const y = Math.floor((event.clientY - box.top) / box.height * photo.height);
  return [Math.min(Math.max(x, 0), photo.width - 1), Math.min(Math.max(y, 0), photo.height - 1)];
}

async function suggestAt(x, y, others) {
  return post(`/api/photos/${state.photo.id}/suggest`, {x, y, hints: wireHints(others)});
}

async function addPoint(x, y) {
  clearMessage();
  let found;
  try {
    found = await busy("Finding colours…", () => suggestAt(x, y, state.hints));
  } catch (error) {
    showError(error);
    return;
  }
  snapshot();
  state.hints.push({x, y, hex: found.colours[0].hex});
  state.selected = state.hints.length - 1;
  render();
  showPoint(found);
  await refresh();
}

async function selectPoint(index) {
  state.selected = index;
  render();
  showPoint();
  if (index < 0) return;
  const hint = state.hints[index];
  try {
    const found = await suggestAt(hint.x, hint.y, state.hints.filter((_, i) => i !== index));
    if (state.selected === index) showPoint(found);
  } catch (error) {
    showError(error);
  }
}

async function setColour(hex, record = true) {
  if (state.selected < 0) return;
  hex = hex.toLowerCase();
  if (record) snapshot();
  state.hints[state.selected].hex = hex;
  state.recent = [hex, ...state.recent.filter((c) => c !== hex)].slice(0, 10);
  render();
  showPoint(null);
  await refresh();
}

async function deletePoint() {
  if (state.selected < 0) return;
  snapshot();
  state.hints.splice(state.selected, 1);
  state.selected = -1;
  render();
  showPoint();
  await refresh();
}

// === Drawing ===

function render() {
  for (const id of ["marks-bw", "marks-result"]) {
    const layer = $(id);
    layer.replaceChildren();
    if (!state.photo) continue;
    state.hints.forEach((hint, index) => {
      const mark = document.createElement("div");
      mark.className = "mark" + (index === state.selected ? " selected" : "");
      mark.style.left = `${(hint.x + 0.5) / state.photo.width * 100}%`;
      mark.style.top = `${(hint.y + 0.5) / state.photo.height * 100}%`;
      mark.style.background = hint.hex;
      mark.dataset.index = String(index);
      mark.title = `(${hint.x}, ${hint.y}) ${hint.hex}`;
      mark.addEventListener("pointerdown", (event) => dragPoint(event, index, mark));
      layer.append(mark);
    });
  }
  $("undo").disabled = !state.undo.length;
  $("redo").disabled = !state.redo.length;
}

function swatch(hex, label, onPick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "swatch";
  button.style.background = hex;
  button.dataset.hex = hex;
  button.title = label ? `${hex} ${label}` : hex;
  if (label) {
    const text = document.createElement("span");
    text.textContent = label;
    button.append(text);
  }
  button.addEventListener("click", () => onPick(hex));
  return button;
}

function showPoint(found) {
  const tools = $("point-tools");
  if (state.selected < 0 || !state.photo) {
    tools.hidden = true;
    $("point-info").textContent = "Click the photo where a colour is wrong.";
    return;
  }
  const hint = state.hints[state.selected];
  tools.hidden = false;
  $("point-info").textContent = `Point ${state.selected + 1} at (${hint.x}, ${hint.y}): ${hint.hex}`;
  $("custom").value = hint.hex;
  $("recent").replaceChildren(...state.recent.map((hex) => swatch(hex, "", (c) => setColour(c))));
  if (found) {
    $("suggestions").replaceChildren(...found.colours.map((c) =>
      swatch(c.hex, `${Math.round(c.probability * 100)}%`, (hex) => setColour(hex))));
    drawGamut(found.gamut);
  }
}

function drawGamut(url) {
  const canvas = $("gamut");
  const image = new Image();
  image.onload = () => {
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
  };
  image.src = url;
}

// === Dragging a point ===

function dragPoint(event, index, mark) {
  event.preventDefault();
  event.stopPropagation();
  const stage = mark.closest(".stage");
  const start = {x: event.clientX, y: event.clientY};
  let moved = false;
  mark.setPointerCapture(event.pointerId);
  const move = (e) => {
    if (Math.abs(e.clientX - start.x) + Math.abs(e.clientY - start.y) > 3) moved = true;
    if (!moved) return;
    const box = stage.getBoundingClientRect();
    mark.style.left = `${Math.min(Math.max((e.clientX - box.left) / box.width, 0), 1) * 100}%`;
    mark.style.top = `${Math.min(Math.max((e.clientY - box.top) / box.height, 0), 1) * 100}%`;
  };
  const up = (e) => {
    mark.removeEventListener("pointermove", move);
    mark.removeEventListener("pointerup", up);
    if (!moved) {
      selectPoint(index);
      return;
    }
    const [x, y] = photoPoint(e, stage);
    snapshot();
    state.hints[index] = {...state.hints[index], x, y};
    selectPoint(index);
    refresh();
  };
  mark.addEventListener("pointermove", move);
  mark.addEventListener("pointerup", up);
}

// === Files: download, hints ===

function saveBlob(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

async function download() {
  clearMessage();
  await busy("Colorizing at full resolution…", async () => {
    try {
      const response = await post(`/api/photos/${state.photo.id}/download`, {hints: wireHints()}, "blob");
      const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
      saveBlob(await response.blob(), match ? match[1] : "colorized.png");
    } catch (error) {
      showError(error);
    }
  });
}

function saveHints() {
  if (state.photo) state.hintsByName[state.photo.name] = state.hints;
  // {"photo.jpg": [[x, y, "#rrggbb"], ...], ...}: one photo a line, as `colorize --hints` reads it.
  const lines = Object.entries(state.hintsByName).filter(([, hints]) => hints.length)
    .map(([name, hints]) => `  ${JSON.stringify(name)}: ${JSON.stringify(wireHints(hints))}`);
  saveBlob(new Blob([`{\n${lines.join(",\n")}\n}\n`], {type: "application/json"}), "hints.json");
}

async function loadHints(file) {
  clearMessage();
  try {
    const data = JSON.parse(await file.text());
    if (!data || typeof data !== "object" || Array.isArray(data)) throw new Error("expected {\"photo.jpg\": [[x, y, \"#rrggbb\"], ...]}");
    const parse = (list) => {
      if (!Array.isArray(list)) throw new Error("each photo's hints must be a list of [x, y, \"#rrggbb\"]");
      return list.map((h) => {
        if (!Array.isArray(h) || h.length !== 3 || typeof h[2] !== "string") throw new Error(`bad hint ${JSON.stringify(h)}`);
        return {x: Number(h[0]), y: Number(h[1]), hex: h[2].toLowerCase()};
      });
    };
    const name = state.photo.name;
    const base = name.split("/").pop();
    const keys = Object.keys(data);
    const key = name in data ? name : base in data ? base : keys.length === 1 ? keys[0] : null;
    for (const other of keys) if (other !== key) state.hintsByName[other] = parse(data[other]);
    if (key === null) throw new Error(`no hints for ${name} in this file (it has ${keys.join(", ") || "none"})`);
    const hints = parse(data[key]);
    snapshot();
    state.hints = hints;
    state.selected = -1;
    render();
    showPoint();
    await refresh();
  } catch (error) {
    showError(new Error(`${file.name}: ${error.message}`));
  }
}

// === Folder ===

async function loadFolder() {
  const response = await fetch("/api/folder");
  if (!response.ok) throw await failure(response);
  state.folder = await response.json();
  $("folder").hidden = state.folder.photos.length < 2;
  $("folder-name").textContent = state.folder.name;
  $("thumbs").replaceChildren(...state.folder.photos.map((name) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.name = name;
    button.title = name;
    const image = document.createElement("img");
    image.loading = "lazy";
    image.alt = name;
    image.src = `/api/folder/thumb?path=${encodeURIComponent(name)}`;
    const label = document.createElement("span");
    label.textContent = name;
    button.append(image, label);
    button.addEventListener("click", () => openFolderPhoto(name));
    item.append(button);
    return item;
  }));
  if (state.folder.photos.length) await openFolderPhoto(state.folder.photos[0]);
}

function markCurrentThumb() {
  for (const button of document.querySelectorAll("#thumbs button")) {
    button.classList.toggle("current", !!state.photo && button.dataset.name === state.photo.name);
  }
}

function step(delta) {
  if (!state.folder || !state.folder.photos.length) return;
  const photos = state.folder.photos;
  const index = state.photo ? photos.indexOf(state.photo.name) : -1;
  openFolderPhoto(photos[(index + delta + photos.length) % photos.length]);
}

// === Wiring ===

function wire() {
  const pick = () => $("file").click();
  $("open").addEventListener("click", pick);
  $("open-2").addEventListener("click", pick);
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (file) openFile(file);
  });
  $("message-close").addEventListener("click", clearMessage);
  $("undo").addEventListener("click", () => restore(state.undo, state.redo));
  $("redo").addEventListener("click", () => restore(state.redo, state.undo));
  $("download").addEventListener("click", download);
  $("save-hints").addEventListener("click", saveHints);
  $("load-hints").addEventListener("click", () => $("hints-file").click());
  $("hints-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (file) loadHints(file);
  });
  $("delete-hint").addEventListener("click", deletePoint);
  $("prev").addEventListener("click", () => step(-1));
  $("next").addEventListener("click", () => step(1));
  $("show-original").addEventListener("change", (event) => {
    $("original").hidden = !event.target.checked;
    $("bw").hidden = event.target.checked;
  });
  $("compare").addEventListener("input", (event) => {
    // A wipe at the slider's position: before (B&W) on its left, after (colorized) on its right.
    $("before").style.clipPath = `inset(0 ${100 - Number(event.target.value)}% 0 0)`;
  });
  $("before").style.clipPath = "inset(0 100% 0 0)";
  // The colour picker: live while it moves, one undo step per pick.
  let picking = false;
  $("custom").addEventListener("input", (event) => {
    if (!picking) snapshot();
    picking = true;
    setColour(event.target.value, false);
  });
  $("custom").addEventListener("change", () => { picking = false; });
  $("gamut").addEventListener("click", (event) => {
    const canvas = $("gamut");
    const box = canvas.getBoundingClientRect();
    const x = Math.floor((event.clientX - box.left) / box.width * canvas.width);
    const y = Math.floor((event.clientY - box.top) / box.height * canvas.height);
    const [r, g, b, a] = canvas.getContext("2d").getImageData(x, y, 1, 1).data;
    if (a < 128) return;  // outside the gamut: no such colour at this lightness
    setColour("#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join(""));
  });
  for (const id of ["stage-bw", "stage-result"]) {
    $(id).addEventListener("click", (event) => {
      if (!state.photo || event.target.classList.contains("mark")) return;
      const [x, y] = photoPoint(event, $(id));
      addPoint(x, y);
    });
  }
  document.addEventListener("keydown", (event) => {
    if (event.target.tagName === "INPUT") return;
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && key === "z") {
      event.preventDefault();
      if (event.shiftKey) restore(state.redo, state.undo); else restore(state.undo, state.redo);
    } else if ((event.ctrlKey || event.metaKey) && key === "y") {
      event.preventDefault();
      restore(state.redo, state.undo);
    } else if (key === "delete" || key === "backspace") {
      deletePoint();
    } else if (key === "arrowright" && state.folder) {
      step(1);
    } else if (key === "arrowleft" && state.folder) {
      step(-1);
    }
  });
  // Drop a photo anywhere on the page.
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    document.body.classList.add("dropping");
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) document.body.classList.remove("dropping");
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    document.body.classList.remove("dropping");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) openFile(file);
  });
}

async function start() {
  wire();
  try {
    const response = await fetch("/api/info");
    if (!response.ok) throw await failure(response);
    state.info = await response.json();
    const limits = state.info.limits;
    $("limits").textContent = `JPEG, PNG, TIFF, WebP, BMP or GIF; up to ${Math.round(limits.upload_bytes / 1e6)} MB and ${Math.round(limits.pixels / 1e6)} megapixels. Nothing leaves this computer.`;
    if (!state.info.takes_hints) showError(new Error("this model takes no colour hints: the page shows its automatic colorization only"));
    if (state.info.folder) await loadFolder();
  } catch (error) {
    showError(error);
  }
  document.body.dataset.ready = "1";
}

start();
